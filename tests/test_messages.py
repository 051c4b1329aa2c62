"""Messages in Dutch and English, with the row numbers of the user's own file.

The catalogue (``verzuimmodel/messages/{nl,en}.toml``) has the same keys and parameters in both
languages and every key the code uses; no validation error or command message is written as an
English literal in the code; the language follows ``--lang``, ``vm.set_language``, ``VERZUIM_LANG`` and
the locale, in that order; a validation error on a file names the file (and sheet) and the row as the
user's file numbers it (a CSV line, a sheet row), also after ``verzuim import`` dropped empty rows.
"""

from __future__ import annotations

import ast
import pickle
import re
import string
import threading
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import verzuimmodel as vm
from cohort_factory import small_cohort
from verzuimmodel import i18n
from verzuimmodel.cli import app
from verzuimmodel.file_rows import csv_lines
from verzuimmodel.importing import MappingError, read_export
from verzuimmodel.io import read_cohort
from verzuimmodel.schema import TABLES, SchemaError, validate_table

runner = CliRunner()
PACKAGE = Path(vm.__file__).resolve().parent

VALIDATION_AND_CLI = ["schema.py", "table_checks.py", "cohort_rules.py", "column_types.py", "validation.py", "io.py",
                      "file_rows.py", "i18n.py", "cli.py", "_cli_app.py", "_cli_errors.py", "_cli_log.py",
                      "evaluate/cli.py", *(f"importing/{p.name}" for p in (PACKAGE / "importing").glob("*.py"))]
"""The modules whose every error and message must come from the catalogue."""


@pytest.fixture
def no_language(monkeypatch):
    """No language set anywhere: not by the session, VERZUIM_LANG or the locale variables."""
    for name in (i18n.ENV_VAR, "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(i18n, "_session", None)


# -- the catalogue -----------------------------------------------------------------------------------


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _forms(entry) -> dict[str, str]:
    return dict(entry) if isinstance(entry, dict) or hasattr(entry, "keys") else {"": entry}


def test_both_languages_have_the_same_keys_and_parameters():
    en, nl = i18n.catalogue("en"), i18n.catalogue("nl")
    assert set(en) == set(nl), set(en) ^ set(nl)
    for key in en:
        en_forms, nl_forms = _forms(en[key]), _forms(nl[key])
        assert set(en_forms) == set(nl_forms), key                    # both plural ({one, other}) or neither
        for form, template in en_forms.items():
            assert "" not in _fields(template) | _fields(nl_forms[form]), key      # named parameters only
            assert _fields(template) == _fields(nl_forms[form]), (key, form)


def _value(spec: str):
    return 1234.5 if spec else "X"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_renders(lang):
    for key, entry in i18n.catalogue(lang).items():
        for n in (1, 2):
            params = {name: _value(spec) for template in _forms(entry).values()
                      for _, name, spec, _ in string.Formatter().parse(template) if name}
            params["n"] = n
            out = i18n.Message(key, **params).render(lang)
            assert not re.search(r"\{[a-z_]*\}", out), (lang, key)            # every parameter filled


def _calls(tree: ast.AST, names: set[str]):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in names:
                yield name, node


def _sources() -> dict[Path, ast.AST]:
    return {p: ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")}


def test_every_key_the_code_uses_is_in_the_catalogue_and_every_key_is_used():
    catalogue = i18n.catalogue("en")
    literal, prefixes = set(), set()
    for path, tree in _sources().items():
        for _, call in _calls(tree, {"Message", "text"}):
            first = call.args[0] if call.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                assert first.value in catalogue, f"{path.name}: {first.value}"
                literal.add(first.value)
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                prefix = first.values[0].value
                assert any(k.startswith(prefix) for k in catalogue), f"{path.name}: {prefix}"
                prefixes.add(prefix)
        for node in ast.walk(tree):                  # keys compared or looked up as text (log.kinds.*, ...)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in catalogue:
                literal.add(node.value)
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                if any(k.startswith(str(node.values[0].value)) for k in catalogue) and "." in str(node.values[0].value):
                    prefixes.add(node.values[0].value)
    unused = [k for k in catalogue if k not in literal and not any(k.startswith(p) for p in prefixes)]
    assert unused == []


# -- no English literal: every validation error and command message goes through a key --------------------

_ERRORS = {"SchemaError": (2, ("expected",)), "MappingError": (1, ("source", "hint")), "ValueError": (0, ()),
           "FileNotFoundError": (0, ()), "FileExistsError": (0, ()), "OSError": (0, ()), "InputError": (0, ()),
           "LocalizedFileNotFoundError": (0, ()), "LocalizedFileExistsError": (0, ())}
"""Errors that reach the user as bad input: the argument holding the problem, and keyword arguments with text."""

_PRINTS = {"echo", "print", "status", "secho"}
"""Calls that write to the terminal (typer.echo, console.print, console.status)."""


def _is_text(node: ast.AST) -> bool:
    """A literal with words in it: a string, an f-string with words outside its fields, or a sum of them.
    Rich markup (``[green]``) is not words."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _has_words(node.value)
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and _has_words(str(v.value)) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _is_text(node.left) or _is_text(node.right)
    if isinstance(node, ast.IfExp):
        return _is_text(node.body) or _is_text(node.orelse)
    return False


def _has_words(text: str) -> bool:
    text = re.sub(r"\[/?[a-z ]+\]", "", text)            # rich markup
    text = re.sub(r"\bverzuimmodel\b", "", text)          # the package's name (``verzuim --version``)
    return bool(re.search(r"[A-Za-z]{2,}", text))


@pytest.mark.parametrize("module", VALIDATION_AND_CLI)
def test_no_error_or_message_is_an_english_literal(module):
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    found = []
    for name, call in _calls(tree, set(_ERRORS) | _PRINTS):
        if name in _ERRORS:
            position, keywords = _ERRORS[name]
            texts = call.args[position:position + 1] + [k.value for k in call.keywords if k.arg in keywords]
        else:
            texts = call.args[:1]
        found += [f"{module}:{call.lineno} {name}" for node in texts if _is_text(node)]
    assert found == []


def test_the_check_finds_a_literal():
    """The check above would catch a SchemaError, a MappingError or a message written as English text."""
    tree = ast.parse('SchemaError("t", "c", f"bad {x}")\nMappingError("k", "x", hint="do " + y)\n'
                     'typer.echo(f"error: {e}")\nconsole.print(f"[green]{text(k)}[/green]")')
    flagged = []
    for name, call in _calls(tree, set(_ERRORS) | _PRINTS):
        position, keywords = _ERRORS.get(name, (0, ()))
        texts = call.args[position:position + 1] + [k.value for k in call.keywords if k.arg in keywords]
        flagged.append(any(_is_text(node) for node in texts))
    assert flagged == [True, True, True, False]


# -- choosing the language ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environ, lang", [
    ({"LANG": "nl_NL.UTF-8"}, "nl"), ({"LANG": "nl_BE"}, "nl"), ({"LC_MESSAGES": "nl_NL", "LANG": "en_GB"}, "nl"),
    ({"LC_ALL": "en_US.UTF-8", "LC_MESSAGES": "nl_NL", "LANG": "nl_NL"}, "en"), ({"LC_ALL": "", "LANG": "nl"}, "nl"),
    ({"LANG": "C.UTF-8"}, "en"), ({"LANG": "de_DE"}, "en"), ({}, "en")])
def test_language_of_the_locale(environ, lang):
    assert i18n.locale_language(environ) == lang


def test_order_of_the_settings(monkeypatch, no_language):
    monkeypatch.setenv("LANG", "nl_NL.UTF-8")
    assert i18n.get_language() == "nl"                      # the locale
    monkeypatch.setenv(i18n.ENV_VAR, "en")
    assert i18n.get_language() == "en"                      # VERZUIM_LANG over the locale
    vm.set_language("nl")
    try:
        assert i18n.get_language() == "nl"                  # vm.set_language over VERZUIM_LANG
        with i18n.language("en"):
            assert i18n.get_language() == "en"              # a language() block over everything
            with i18n.language(None):
                assert i18n.get_language() == "en"          # None: unchanged
        assert i18n.get_language() == "nl"
    finally:
        vm.set_language(None)
    assert i18n.get_language() == "en"


def test_a_language_block_holds_in_its_own_thread_only(no_language):
    seen = []
    with i18n.language("nl"):
        thread = threading.Thread(target=lambda: seen.append(i18n.get_language()))
        thread.start()
        thread.join()
        assert i18n.get_language() == "nl"
    assert seen == ["en"]


def test_unknown_languages_are_refused(monkeypatch, no_language):
    with pytest.raises(ValueError, match="language: got 'fr'; expected 'nl', 'en'"):
        vm.set_language("fr")
    monkeypatch.setenv(i18n.ENV_VAR, "fr")
    with pytest.raises(ValueError, match="VERZUIM_LANG: got 'fr'"):
        i18n.environment_language()
    monkeypatch.setenv("LANG", "nl_NL")
    assert i18n.get_language() == "nl"      # a message is still written (in the locale's language)
    monkeypatch.setenv(i18n.ENV_VAR, "nl_NL.UTF-8")
    assert i18n.environment_language() == "nl"


def test_numbers_in_the_language(no_language):
    m = i18n.Message("io.too_many_rows_for_excel", table="absence", n=1234567, max=1048575)
    assert m.render("en") == ("table 'absence' has 1,234,567 rows, more than fit on an Excel sheet (1,048,575); "
                              "write parquet or csv instead")
    assert m.render("nl") == ("tabel 'absence' heeft 1.234.567 rijen, meer dan op een Excel-blad passen (1.048.575); "
                              "schrijf parquet of csv")
    bound = i18n.Message("expected.from_to", what=i18n.Message("expected.kind_float"), low=0.5, high=2880)
    assert (bound.render("en"), bound.render("nl")) == ("numbers from 0.5 to 2880", "getallen van 0,5 tot en met 2880")
    assert str(bound) == "numbers from 0.5 to 2880"          # as text, a message is its English


# -- validation errors in both languages ----------------------------------------------------------------


def _bad_grade() -> SchemaError:
    absence = small_cohort()["absence"]
    absence.loc[[3, 8], "grade"] = 12
    with pytest.raises(SchemaError) as info:
        validate_table("absence", absence)
    return info.value


def test_a_validation_error_in_both_languages(no_language):
    err = _bad_grade()
    assert err.message("en") == ("table 'absence', column 'grade': value(s) out of range: 12 at data row(s) 4, 9; "
                                 "expected whole numbers from 1 to 8")
    assert err.message("nl") == ("tabel 'absence', kolom 'grade': waarde(n) buiten het bereik: 12 in gegevensrijen "
                                 "4, 9; verwacht: gehele getallen van 1 tot en met 8")
    assert str(err) == err.message("en")
    with i18n.language("nl"):
        assert str(err) == err.message("nl")
    assert (err.message_key, err.params["values"], err.params["rows"], err.params["column"]) == \
        ("schema.out_of_range", "12", [4, 9], "grade")
    copy = pickle.loads(pickle.dumps(err))                 # as from a worker process
    assert (copy.message_key, copy.message("nl"), copy.problem, copy.expected) == \
        (err.message_key, err.message("nl"), err.problem, err.expected)


def test_a_mapping_error_in_both_languages():
    e = MappingError("tables.pupils.columns.sex", i18n.Message("mapping.with_value",
                                                                problem=i18n.Message("mapping.unmapped_code"),
                                                                value="'X'"),
                     source=i18n.Message("mapping.source_column", column="geslacht",
                                         source=i18n.Message("frame.source_file", file="leerlingen.csv")),
                     rows=[4, 9], n_rows=7, unit="line",
                     hint=i18n.Message("mapping.hint_unmapped", codes="sex",
                                       what=i18n.Message("mapping.a_code_of", codes="sex")))
    assert e.message("en") == ("mapping key 'tables.pupils.columns.sex' (column 'geslacht' in leerlingen.csv): "
                               "unmapped code 'X' at lines 4, 9 (and 5 more); add it to [codes.sex] as \"label\" = a "
                               "code of 'sex', or correct the file")
    assert e.message("nl") == ("koppelingssleutel 'tables.pupils.columns.sex' (kolom 'geslacht' in leerlingen.csv): "
                               "niet-gekoppelde code 'X' op regels 4, 9 (en nog 5); voeg hem toe aan [codes.sex] als "
                               "\"label\" = een code van 'sex', of verbeter het bestand")
    assert (e.message_key, e.params["value"], e.key) == ("mapping.unmapped_code", "'X'", "tables.pupils.columns.sex")
    copy = pickle.loads(pickle.dumps(e))
    assert copy.message("nl") == e.message("nl") and copy.unit == "line"


# -- the rows of the user's own file ---------------------------------------------------------------------


def test_csv_lines_follow_blank_lines_and_quoted_line_breaks(tmp_path):
    """pandas skips blank lines (also of blanks only) and a quoted cell may span lines: data row k is then
    not line k + 1. ``csv_lines`` gives the line each row starts on."""
    text = ("id,note\r\n"                 # line 1
            "A1,x\r\n"                    # 2
            "\r\n"                        # 3 blank
            "A2,\"two\r\nlines\"\r\n"     # 4-5
            "   \r\n"                     # 6 blanks only
            ",\r\n"                       # 7 a row of empty cells: a data row
            "A4,y\r\n"                    # 8
            "\r\n\r\n"                    # 9, 10
            "A5,z\r\n")                   # 11
    file = tmp_path / "t.csv"
    file.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))   # with a byte-order mark
    df = pd.read_csv(file, encoding="utf-8-sig", dtype=str)
    assert df["id"].fillna("").tolist() == ["A1", "A2", "", "A4", "A5"]
    lines = csv_lines(file, [1, 2, 3, 4, 5, 6])
    assert lines == [2, 4, 7, 8, 11, 0]                    # row 6 does not exist
    raw = text.split("\r\n")
    for row, line in zip(range(5), lines):
        wanted = df["id"].iloc[row]
        assert raw[line - 1].startswith(wanted if isinstance(wanted, str) else ",")


def _write_csv_cohort(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)


def test_read_cohort_names_the_line_of_the_csv_file(tmp_path, no_language):
    tables = small_cohort()
    tables["absence"].loc[6, "grade"] = 12
    _write_csv_cohort(tmp_path, tables)
    file = tmp_path / "absence.csv"
    lines = file.read_text().splitlines()
    lines[3:3] = ["", "  "]                                  # two blank lines before the bad row
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as info:
        read_cohort(tmp_path)
    err = info.value
    line = 1 + next(i for i, text in enumerate(lines) if text.split(",")[4:5] == ["12"])
    assert line == 10 and err.rows == [7] and err.file_rows == [line]
    assert (err.source.file, err.source.sheet, err.source.unit) == ("absence.csv", None, "line")
    assert err.message("en") == ("table 'absence' (absence.csv), column 'grade': value(s) out of range: 12 at line 10; "
                                 "expected whole numbers from 1 to 8")
    assert err.message("nl") == ("tabel 'absence' (absence.csv), kolom 'grade': waarde(n) buiten het bereik: 12 op "
                                 "regel 10; verwacht: gehele getallen van 1 tot en met 8")


def _write_workbook(path: Path, tables: dict[str, pd.DataFrame]) -> None:
    with pd.ExcelWriter(path) as writer:
        for name, df in tables.items():
            df.to_excel(writer, sheet_name=name, index=False)


def one_line(result, prefix: str) -> str:
    """The one-line error of a run that failed on bad input (exit code 2)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_validate_names_file_column_row_and_expected_in_both_languages(tmp_path, fmt):
    tables = small_cohort()
    tables["pupils"]["vo_track"] = tables["pupils"]["vo_track"].astype(object)
    tables["pupils"].loc[4, "vo_track"] = "mbo"               # data row 5: line 6 of the CSV file, row 6 of the sheet
    if fmt == "csv":
        _write_csv_cohort(tmp_path / "c", tables)
        path, where_en, where_nl, at_en, at_nl = tmp_path / "c", "pupils.csv", "pupils.csv", "line 6", "regel 6"
    else:
        path = tmp_path / "cohort.xlsx"
        _write_workbook(path, tables)
        where_en, where_nl = "sheet 'pupils' of cohort.xlsx", "blad 'pupils' van cohort.xlsx"
        at_en, at_nl = "row 6", "rij 6"
    en = one_line(runner.invoke(app, ["validate", str(path), "--lang", "en"]), "error: ")
    assert en == (f"error: table 'pupils' ({where_en}), column 'vo_track': invalid value(s): 'mbo' at {at_en}; "
                  "expected one of 'vmbo', 'havo', 'vwo'")
    nl = one_line(runner.invoke(app, ["--lang", "nl", "validate", str(path)]), "fout: ")
    assert nl == (f"fout: tabel 'pupils' ({where_nl}), kolom 'vo_track': ongeldige waarde(n): 'mbo' op {at_nl}; "
                  "verwacht: een van 'vmbo', 'havo', 'vwo'")
    # without --lang: VERZUIM_LANG, then the locale
    dutch_locale = {i18n.ENV_VAR: None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": "nl_NL.UTF-8"}
    assert one_line(runner.invoke(app, ["validate", str(path)], env=dutch_locale), "fout: ") == nl
    assert one_line(runner.invoke(app, ["validate", str(path)], env={**dutch_locale, i18n.ENV_VAR: "en"}),
                    "error: ") == en
    # the subcommand's --lang wins over the one before it
    assert one_line(runner.invoke(app, ["--lang", "en", "validate", str(path), "--lang", "nl"]), "fout: ") == nl


def test_command_messages_in_dutch(tmp_path):
    _write_csv_cohort(tmp_path / "c", small_cohort())
    result = runner.invoke(app, ["validate", str(tmp_path / "c"), "--lang", "nl"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "geldig"
    assert i18n.get_language() == "en"                      # the command's language ended with it
    line = one_line(runner.invoke(app, ["monitor", str(tmp_path / "c"), "--out", str(tmp_path / "m"), "--by", "pupil",
                                        "--lang", "nl"]), "fout: ")
    assert line == "fout: --by: 'pupil' gekregen; verwacht een van 'region', 'school', 'all'"


def test_unknown_language_is_bad_input(tmp_path):
    _write_csv_cohort(tmp_path / "c", small_cohort())
    line = one_line(runner.invoke(app, ["validate", str(tmp_path / "c"), "--lang", "fr"]), "error: ")
    assert line == "error: --lang: got 'fr'; expected 'nl', 'en'"
    english_locale = {i18n.ENV_VAR: "frans", "LC_ALL": None, "LC_MESSAGES": None, "LANG": "C.UTF-8"}
    line = one_line(runner.invoke(app, ["validate", str(tmp_path / "c")], env=english_locale), "error: ")
    assert line == "error: VERZUIM_LANG: got 'frans'; expected 'nl', 'en'"
    dutch_locale = {**english_locale, "LANG": "nl_NL.UTF-8"}       # the error itself: in the locale's language
    line = one_line(runner.invoke(app, ["validate", str(tmp_path / "c")], env=dutch_locale), "fout: ")
    assert line == "fout: VERZUIM_LANG: 'frans' gekregen; verwacht: 'nl', 'en'"


# -- verzuim import: the export's own rows, after empty rows were dropped -----------------------------------

FILES = {"schools": "scholen", "pupils": "leerlingen", "absence": "verzuim", "episodes": "dossiers",
         "interventions": "interventies"}


def _mapping(extra: str = "", tables: dict[str, str] | None = None) -> str:
    """A mapping of the export written by :func:`_export`: the package's column names, except ``geslacht``;
    ``extra`` lines at the top and, per table, lines in its ``[tables.X]``."""
    lines = ['[codes.sex]\nV = "F"\n']
    for name, df in small_cohort().items():
        lines.append(f'[tables.{name}]\nfile = "{FILES[name]}.csv"\nsheet = "{FILES[name].title()}"\n'
                     f"{(tables or {}).get(name, '')}\n[tables.{name}.columns]")
        lines += [f'{c} = "{"geslacht" if c == "sex" else c}"' for c in df.columns]
    return extra + "\n" + "\n".join(lines) + "\n"


def _export(folder: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    """The tables as a municipality might export them: ``;``-separated CSV files (or one workbook) with
    Dutch file names, ``geslacht`` with V/M, and an empty row and a blank line in the absence file."""
    tables = {name: df.copy() for name, df in tables.items()}
    tables["pupils"] = tables["pupils"].rename(columns={"sex": "geslacht"})
    tables["pupils"]["geslacht"] = tables["pupils"]["geslacht"].replace({"F": "V"})
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        path = folder / "export.xlsx"
        with pd.ExcelWriter(path) as writer:
            for name, df in tables.items():
                if name == "absence":                     # an empty row after data row 2
                    df = df.astype(object)
                    df = pd.concat([df.iloc[:2], pd.DataFrame([[None] * df.shape[1]], columns=df.columns,
                                                              dtype=object), df.iloc[2:]], ignore_index=True)
                df.to_excel(writer, sheet_name=FILES[name].title(), index=False)
        return path
    for name, df in tables.items():
        file = folder / f"{FILES[name]}.csv"
        df.to_csv(file, sep=";", index=False)
        if name == "absence":
            lines = file.read_text().splitlines()
            lines[3:3] = [";" * (df.shape[1] - 1), ""]    # an empty row and a blank line after data row 2
            file.write_text("\n".join(lines) + "\n")
    return folder


def _line_of(file: Path, column: str, value: str) -> int:
    lines = file.read_text().splitlines()
    at = lines[0].split(";").index(column)
    return 1 + next(i for i, line in enumerate(lines) if line.split(";")[at:at + 1] == [value])


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_import_names_the_row_of_the_export_in_both_languages(tmp_path, fmt):
    tables = small_cohort()
    tables["absence"]["grade"] = tables["absence"]["grade"].astype(object)
    tables["absence"].loc[6, "grade"] = 12                    # a VO year 12
    tables["absence"].loc[6, "level"] = "vo"
    export = _export(tmp_path / "export", tables, fmt)
    (tmp_path / "koppeling.toml").write_text(_mapping())
    if fmt == "csv":
        row = _line_of(export / "verzuim.csv", "grade", "12")
        where_en = where_nl = "verzuim.csv"
        at_en, at_nl = f"line {row}", f"regel {row}"
    else:
        row = 1 + 6 + 1 + 1                                     # the header, 6 rows, the empty row, then this one
        where_en, where_nl = "sheet 'Verzuim' of export.xlsx", "blad 'Verzuim' van export.xlsx"
        at_en, at_nl = f"row {row}", f"rij {row}"
    assert row == {"csv": 10, "xlsx": 9}[fmt]                   # not 8: the file's row, not the table's
    args = ["import", str(export), "--mapping", str(tmp_path / "koppeling.toml"), "--out", str(tmp_path / "out")]
    en = one_line(runner.invoke(app, [*args, "--lang", "en"]), "error: ")
    assert en.startswith(f"error: mapping key 'tables.absence.columns.grade' (column 'grade' in {where_en}): ")
    assert f": 12 at {at_en}; expected " in en
    nl = one_line(runner.invoke(app, [*args, "--lang", "nl"]), "fout: ")
    assert nl.startswith(f"fout: koppelingssleutel 'tables.absence.columns.grade' (kolom 'grade' in {where_nl}): ")
    assert f": 12 op {at_nl}; verwacht: " in nl
    assert not (tmp_path / "out").exists()


def test_import_round_trip_of_the_test_export(tmp_path):
    """The export and mapping of these tests import to the cohort (so the errors above are the bad cells')."""
    export = _export(tmp_path / "export", small_cohort())
    cohort, log = read_export(export, vm.importing.ImportMapping.from_toml(_mapping()))
    assert len(cohort.absence) == len(small_cohort()["absence"])
    assert log.loc[log["detail"] == "empty rows", "count"].tolist() == [2]


def _import_error(tmp_path, tables, extra: str = "", fmt: str = "csv", cells=None, per_table=None) -> MappingError:
    export = _export(tmp_path / "export", tables, fmt)
    if cells:
        import openpyxl

        book = openpyxl.load_workbook(export)
        for (sheet, ref), value in cells.items():
            book[sheet][ref] = value
        book.save(export)
    with pytest.raises(MappingError) as info:
        read_export(export, vm.importing.ImportMapping.from_toml(_mapping(extra, per_table)))
    return info.value


def test_bad_mappings_in_both_languages(tmp_path):
    """Unknown column, ambiguous date, unmapped code, identifier not dropped, formula without a value: one line
    naming the mapping key and the file's row, in either language."""
    tables = small_cohort()
    tables["pupils"] = tables["pupils"].rename(columns={"cohort": "jaargroep"})
    e = _import_error(tmp_path / "1", tables)
    assert e.message("en").startswith("mapping key 'tables.pupils.columns.cohort' (leerlingen.csv): column 'cohort' "
                                      "not found in the header at line 1; columns: 'pupil_id'")
    assert e.message("nl").startswith("koppelingssleutel 'tables.pupils.columns.cohort' (leerlingen.csv): kolom "
                                      "'cohort' niet gevonden in de kopregel op regel 1; kolommen: 'pupil_id'")

    tables = small_cohort()
    for column in ("start_date", "end_date"):                                  # 01-10-2019 ...
        tables["episodes"][column] = tables["episodes"][column].dt.strftime("%d-%m-%Y")
    e = _import_error(tmp_path / "2", tables, per_table={"episodes": "date_formats = ['dd-mm-jjjj', 'mm-dd-jjjj']"})
    assert _line_of(tmp_path / "2" / "export" / "dossiers.csv", "start_date", "01-10-2019") == 2
    assert e.message("en") == ("mapping key 'tables.episodes.columns.start_date' (column 'start_date' in "
                               "dossiers.csv): ambiguous date '01-10-2019' at lines 2, 3, 4, 5, 6 (and 1 more); it "
                               "reads as different dates in the date formats dd-mm-jjjj, mm-dd-jjjj; keep only the "
                               "right one in tables.episodes.date_formats")
    assert e.message("nl") == ("koppelingssleutel 'tables.episodes.columns.start_date' (kolom 'start_date' in "
                               "dossiers.csv): dubbelzinnige datum '01-10-2019' op regels 2, 3, 4, 5, 6 (en nog 1); "
                               "die leest als verschillende datums in de datumformaten dd-mm-jjjj, mm-dd-jjjj; houd "
                               "alleen het juiste over in tables.episodes.date_formats")

    tables = small_cohort()
    tables["episodes"].loc[3, "outcome"] = "naar huis"
    e = _import_error(tmp_path / "3", tables)
    assert e.message("nl") == ("koppelingssleutel 'tables.episodes.columns.outcome' (kolom 'outcome' in dossiers.csv): "
                               "niet-gekoppelde code 'naar huis' op regel 5; voeg hem toe aan [codes.outcome] als "
                               "\"label\" = een code van 'outcome', of verbeter het bestand")
    assert (e.rows, e.unit, e.message_key) == ([5], "line", "mapping.unmapped_code")

    tables = small_cohort()
    tables["pupils"]["BSN"] = "123456782"
    e = _import_error(tmp_path / "4", tables)
    assert e.message("en") == ("mapping key 'tables.pupils.drop' (leerlingen.csv): column 'BSN' looks like a direct "
                               "identifier (a citizen service number (BSN)) and is refused at line 1; leave it out of "
                               "the export, or drop it explicitly: add \"BSN\" to tables.pupils.drop")
    assert e.message("nl") == ("koppelingssleutel 'tables.pupils.drop' (leerlingen.csv): kolom 'BSN' lijkt een direct "
                               "identificerend gegeven (een burgerservicenummer (BSN)) en wordt geweigerd op regel 1; "
                               "laat de kolom weg uit de export, of laat hem uitdrukkelijk weg: zet \"BSN\" in "
                               "tables.pupils.drop")

    e = _import_error(tmp_path / "5", small_cohort(), fmt="xlsx", cells={("Scholen", "E4"): "=2016+1"})
    assert e.message("en") == ("mapping key 'tables.schools.columns.approach_start_year' (column 'approach_start_year' "
                               "in sheet 'Scholen' of export.xlsx): formula without a computed value (cell E4) at row "
                               "4; open and save the file in Excel, or paste values")
    assert e.message("nl") == ("koppelingssleutel 'tables.schools.columns.approach_start_year' (kolom "
                               "'approach_start_year' in blad 'Scholen' van export.xlsx): formule zonder berekende "
                               "waarde (cel E4) op rij 4; open het bestand in Excel en sla het op, of plak de waarden")


def test_tables_are_the_declared_ones():
    """The export of these tests covers every table (so a new table would be noticed here)."""
    assert set(FILES) == set(TABLES)


def test_report_language_follows_lang(tmp_path, monkeypatch):
    """``report``: the report is Dutch unless a --lang is given (before or after ``report``); VERZUIM_LANG
    chooses the messages only."""
    from verzuimmodel import report

    seen = []

    def build(data, *, lang, out, **options):
        seen.append(lang)
        out.mkdir(parents=True, exist_ok=True)
        (out / report.HTML_NAME).write_text("<html></html>")
        return out / report.HTML_NAME

    monkeypatch.setattr(report, "build", build)
    out = ["--out", str(tmp_path / "r"), "--no-pdf", "--overwrite"]
    for args, lang, said in [(["report"], "nl", "Report written: "),
                             (["--lang", "en", "report"], "en", "Report written: "),
                             (["report", "--lang", "en"], "en", "Report written: "),
                             (["--lang", "en", "report", "--lang", "nl"], "nl", "Rapport geschreven: ")]:
        result = runner.invoke(app, [*args, *out])
        assert result.exit_code == 0, result.output
        assert seen[-1] == lang and result.stdout.startswith(said), (args, result.stdout)
    line = one_line(runner.invoke(app, ["report", *out, "--lang", "fr"]), "error: ")
    assert line == "error: --lang: got 'fr'; expected 'nl', 'en'" and len(seen) == 4


def test_import_counts_line_breaks_inside_quoted_cells(tmp_path):
    """A note spanning two lines in row 2 of the file: the bad code in the 4th data row is on line 6, not 5."""
    tables = small_cohort()
    tables["episodes"]["opmerking"] = ["", "belt terug\nna de vakantie", "", "", "", ""]   # not mapped: dropped
    tables["episodes"].loc[3, "outcome"] = "naar huis"
    e = _import_error(tmp_path, tables)
    text = (tmp_path / "export" / "dossiers.csv").read_text()
    assert '"belt terug\nna de vakantie"' in text
    line = 1 + next(i for i, t in enumerate(text.split("\n")) if ";naar huis" in t)
    assert line == 6 and (e.rows, e.unit) == ([6], "line")
    assert e.message("en").endswith(f"unmapped code 'naar huis' at line {line}; add it to [codes.outcome] as "
                                    "\"label\" = a code of 'outcome', or correct the file")
