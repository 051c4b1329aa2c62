"""Importing a municipality's own export with a mapping (``verzuim import``, ``vm.importing``).

A simulated cohort is written as a realistic Dutch export — Dutch column, file and sheet names, ``;``
separators, decimal commas, ``dd-mm-jjjj`` and ``d-m-jj`` dates, school years as ``2018-2019``, cp1252
with non-ASCII text, ``V``/``M``, ``ja``/``nee``, Dutch labels, a name column, an empty row — as CSV
files and as an Excel workbook; importing it with the shipped template plus a few user lines must
give back the same cohort, with every coercion in the log. Each bad mapping gives one line naming
the mapping key and the row of the user's file, and exit code 2.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import verzuimmodel as vm
from verzuimmodel.cli import app
from verzuimmodel.importing import (LOG_COLUMNS, LOG_FILE, ImportMapping, MappingError, identifier_kind, read_export,
                                    template_text)
from verzuimmodel.io import OUTPUT_MARKER, read_cohort
from verzuimmodel.schema import CODE_LISTS, TABLES, validate_cohort

runner = CliRunner()

USER_LINES = """\
extends = "nl_template"

[tables.pupils]
drop = ["Achternaam"]

[tables.pupils.columns]
sex = "Geslacht leerling"

[tables.absence.columns]
sick_days_true = "ziektedagen_werkelijk"
sick_reports_true = "ziekmeldingen_werkelijk"
sick_long_spells_true = "lange_ziekmeldingen_werkelijk"
late_arrivals_true = "te_laat_werkelijk"
luxury_days_true = "luxeverzuim_dagen_werkelijk"
unexcused_hours_true = "ongeoorloofd_uren_werkelijk"

[tables.episodes]
file = "Verzuimdossiers 2024.csv"
sheet = "Dossiers LRV AV 5a"

[tables.episodes.columns]
outcome = "Resultaat"

[tables.interventions.columns]
start_date = { column = "startdatum", date_formats = ["d-m-jj"] }

[codes.outcome]
"nog lopend" = "censored"
"""
"""The user's lines on top of the shipped template: other names for a few columns, a file and a sheet,
the simulated-only columns, a dropped name column, a date format, one more outcome label."""

LABELS = {
    "sex": {"F": "V", "M": "M"},
    "level": {"po": "PO", "vo": "VO"},
    "school_type": {c.code: c.label_nl for c in CODE_LISTS["school_type"].values()},
    "vo_track": {"vmbo": "VMBO-TL", "havo": "havo", "vwo": "Atheneum"},
    "episode_type": {c.code: c.label_nl for c in CODE_LISTS["episode_type"].values()},
    "outcome": {c.code: c.label_nl for c in CODE_LISTS["outcome"].values()} | {"censored": "nog lopend"},
    "intervention_type": {c.code: c.label_nl for c in CODE_LISTS["intervention_type"].values()},
}
"""The export's label for each code of each code list."""
BOOL = {True: "ja", False: "nee"}
MISSING_TRACK = "n.v.t."
SURNAMES = ["Jansen", "de Vries", "Çelik", "Öztürk", "Bakker"]
REGION = "Regio ’s-Hertogenbosch – Maasland"  # ’ and – exist in cp1252, not in latin-1
SERIAL_DATES = ("pupils", "followup_end")      # written as Excel serial numbers in the workbook


# -- the cohort and its Dutch export ------------------------------------------------------------


@pytest.fixture(scope="module")
def original() -> dict[str, pd.DataFrame]:
    """A small simulated cohort with Dutch identifiers: BRIN-like school codes with leading zeros, a
    region named with non-ASCII characters, pupil pseudonyms."""
    scenario = vm.Scenario.default()
    small = dataclasses.replace(scenario, population=dataclasses.replace(
        scenario.population, n_po_schools=10, n_vo_schools=3, n_cohorts=4))
    tables = {name: df.copy() for name, df in vm.simulate(small, seed=1).tables.items()}
    assert len(tables["episodes"]) and len(tables["interventions"])
    ids = tables["schools"]["school_id"]
    brin = dict(zip(ids, [f"{i:02d}{chr(65 + i % 26)}{chr(65 + i // 26)}00" for i in range(len(ids))]))
    pseudonym = {p: f"L{p:07d}" for p in tables["pupils"]["pupil_id"]}
    tables["schools"]["region_id"] = REGION
    for name, column in [("schools", "school_id"), ("pupils", "po_school_id"), ("pupils", "vo_school_id"),
                         ("absence", "school_id"), ("episodes", "school_id")]:
        tables[name][column] = tables[name][column].astype(object).map(brin)
    for name in ("pupils", "absence", "episodes", "interventions"):
        tables[name]["pupil_id"] = tables[name]["pupil_id"].map(pseudonym)
    return validate_cohort(tables)


@pytest.fixture(scope="module")
def mapping() -> ImportMapping:
    return ImportMapping.from_toml(USER_LINES, name="koppeling.toml")


def _dates(values: pd.Series, formats) -> pd.Series:
    if formats == ("d-m-jj",):
        text = (values.dt.day.astype("Int64").astype(str) + "-" + values.dt.month.astype("Int64").astype(str)
                + "-" + values.dt.strftime("%y"))
    else:
        text = values.dt.strftime("%d-%m-%Y")
    return text.where(values.notna(), "")


def dutch(original, mapping, excel: bool = False) -> dict[str, pd.DataFrame]:
    """The export's tables: Dutch names and labels, rows shuffled, plus a school-name and a surname column."""
    out = {}
    for name, tmap in mapping.tables.items():
        df = original[name]
        nl = {}
        for cm in tmap.columns:
            column, values = TABLES[name].column(cm.name), df[cm.name]
            if column.kind == "code":
                values = values.astype(object).map(LABELS[column.codes])
                values = values.fillna(MISSING_TRACK if cm.name == "vo_track" else "")
            elif column.kind == "bool":
                values = values.map(BOOL)
            elif column.kind == "date" and excel:
                if (name, cm.name) == SERIAL_DATES:
                    values = (values - pd.Timestamp("1899-12-30")).dt.days
            elif column.kind == "date":
                values = _dates(values, cm.date_formats or tmap.format.date_formats)
            elif cm.name == "school_year":
                values = values.astype(str) + "-" + (values + 1).astype(str)
            nl[cm.source] = values
        table = pd.DataFrame(nl)
        if name == "schools":
            table.insert(1, "schoolnaam", [f"Basisschool ‘t Kompas {i}" for i in range(len(table))])
        if name == "pupils":
            table["Achternaam"] = [SURNAMES[i % len(SURNAMES)] for i in range(len(table))]
        out[name] = table.sample(frac=1, random_state=1).reset_index(drop=True)
    return out


def write_csv(tables: dict[str, pd.DataFrame], folder, mapping, blank_row: bool = True):
    """The export as cp1252 ``;`` CSV files with decimal commas and Windows line ends; the schools file
    ends in an empty row, as spreadsheets often write them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        file = folder / mapping.tables[name].file
        df.to_csv(file, sep=";", decimal=",", index=False, encoding="cp1252", lineterminator="\r\n")
        if name == "schools" and blank_row:
            with open(file, "a", encoding="cp1252", newline="") as f:
                f.write(";" * (df.shape[1] - 1) + "\r\n")
    return folder


def write_xlsx(tables: dict[str, pd.DataFrame], path, mapping):
    """The export as one workbook with a Dutch-named sheet per table."""
    with pd.ExcelWriter(path) as writer:
        for name, df in tables.items():
            df.to_excel(writer, sheet_name=mapping.tables[name].sheet, index=False)
    return path


@pytest.fixture(scope="module")
def dutch_csv(original, mapping):
    return dutch(original, mapping)


@pytest.fixture
def export(tmp_path, dutch_csv, mapping):
    return write_csv(dutch_csv, tmp_path / "export", mapping)


@pytest.fixture
def map_file(tmp_path):
    path = tmp_path / "koppeling.toml"
    path.write_text(USER_LINES, encoding="utf-8")
    return path


def error_line(result) -> str:
    """The one-line error of a run that failed on bad input (exit code 2)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def sort(df: pd.DataFrame, name: str) -> pd.DataFrame:
    return df.sort_values(list(TABLES[name].key)).reset_index(drop=True)


def assert_same_cohort(cohort, original) -> None:
    for name in TABLES:
        got, expected = getattr(cohort, name), original[name]
        assert sorted(got.columns) == sorted(expected.columns), name
        pd.testing.assert_frame_equal(sort(got[list(expected.columns)], name), sort(expected, name), obj=name)


def expected_coercions(original, mapping, csv: pd.DataFrame | None, excel: bool) -> set[tuple]:
    """Every value the import must change, from the cohort and the export: ``(table, column, action, detail,
    count)``. ``csv`` holds the CSV files' cells as text (None for the workbook)."""
    found = set()

    def add(table, column, action, detail, n):
        if n:
            found.add((table, column, action, detail, int(n)))

    for name, tmap in mapping.tables.items():
        df = original[name]
        for cm in tmap.columns:
            column, values = TABLES[name].column(cm.name), df[cm.name]
            if column.kind == "code":
                for code, n in values.value_counts().items():
                    if LABELS[column.codes][code] != code:
                        add(name, cm.name, "code", f"label '{LABELS[column.codes][code]}' -> '{code}'", n)
                if cm.name == "vo_track":
                    add(name, cm.name, "coerced", f"text '{MISSING_TRACK}' -> missing", values.isna().sum())
            elif column.kind == "bool":
                for value, n in values.value_counts().items():
                    add(name, cm.name, "code", f"label '{BOOL[value]}' -> {str(value).lower()}", n)
            elif column.kind == "date":
                formats = cm.date_formats or tmap.format.date_formats
                detail = ("Excel serial number -> date" if (name, cm.name) == SERIAL_DATES else
                          "Excel date cell -> date") if excel else f"date as {formats[0]} -> date"
                add(name, cm.name, "coerced", detail, values.notna().sum())
            elif cm.name == "school_year":
                add(name, cm.name, "coerced", "school year 'jjjj-jjjj' -> its first year", len(values))
            elif column.kind == "float" and csv is not None:
                add(name, cm.name, "coerced", "decimal comma -> number",
                    csv[name][cm.source].str.contains(",", regex=False).sum())
    return found


def read_csv_text(folder, mapping) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(folder / tmap.file, sep=";", dtype=str, encoding="cp1252", keep_default_na=False)
            for name, tmap in mapping.tables.items()}


def assert_log(log: pd.DataFrame, original, mapping, csv, excel: bool) -> None:
    assert tuple(log.columns) == LOG_COLUMNS
    got = {tuple(r) for r in log.loc[log["action"].isin(["coerced", "code"]),
                                     ["table", "column", "action", "detail", "count"]].itertuples(index=False)}
    assert got == expected_coercions(original, mapping, csv, excel)
    for name, tmap in mapping.tables.items():
        for cm in tmap.columns:
            row = log[(log["table"] == name) & (log["column"] == cm.name) & (log["action"] == "mapped")]
            assert row["count"].tolist() == [original[name][cm.name].notna().sum()], (name, cm.name)
            assert row["source"].tolist() == [cm.source]
    dropped = log[log["action"] == "dropped"].set_index(["table", "source", "detail"])["count"]
    assert dropped[("schools", "schoolnaam", "column not in the mapping")] == len(original["schools"])
    assert dropped[("pupils", "Achternaam", "listed in drop")] == len(original["pupils"])
    assert (("schools", mapping.tables["schools"].file, "empty rows") in dropped.index) == (not excel)
    text = " ".join(log.astype(str).to_numpy().ravel())
    assert not re.search(r"L\d{7}", text), "a pupil pseudonym in the log"
    assert not any(s in text for s in [*SURNAMES, "Kompas", REGION]), "a cell value in the log"


# -- the round trip -------------------------------------------------------------------------------


def test_csv_export_imports_to_the_same_cohort(tmp_path, original, mapping, export, map_file):
    raw = (export / "scholen.csv").read_bytes()
    assert REGION.encode("cp1252") in raw and b";" in raw and "’".encode("utf-8") not in raw
    assert re.search(r";\d+,\d+;", (export / "verzuim.csv").read_text(encoding="cp1252"))  # decimal commas
    out = tmp_path / "cohort"
    result = runner.invoke(app, ["import", str(export), "--mapping", str(map_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    cohort = read_cohort(out)
    assert_same_cohort(cohort, original)
    log = pd.read_csv(out / LOG_FILE, keep_default_na=False)
    assert_log(log, original, mapping, read_csv_text(export, mapping), excel=False)
    reads = log[log["action"] == "read"].set_index("table")
    assert reads.loc["schools", "count"] == len(original["schools"]) + 1  # the empty row
    assert "encoding cp1252 (detected)" in reads.loc["pupils", "detail"]
    assert "separator ';' (detected)" in reads.loc["pupils", "detail"]
    assert sorted(p.name for p in out.iterdir()) == sorted([OUTPUT_MARKER, LOG_FILE,
                                                            *(f"{name}.parquet" for name in TABLES)])
    again = runner.invoke(app, ["import", str(export), "--mapping", str(map_file), "--out", str(out), "--overwrite"])
    assert again.exit_code == 0, again.output  # the package's own import is replaced with --overwrite


def test_excel_export_imports_to_the_same_cohort(tmp_path, original, mapping, map_file):
    workbook = write_xlsx(dutch(original, mapping, excel=True), tmp_path / "Export gemeente.xlsx", mapping)
    out = tmp_path / "cohort"
    result = runner.invoke(app, ["import", str(workbook), "--mapping", str(map_file), "--out", str(out),
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert_same_cohort(read_cohort(out), original)
    assert_log(pd.read_csv(out / LOG_FILE, keep_default_na=False), original, mapping, None, excel=True)


def test_python_api(original, mapping, export, map_file):
    cohort, log = vm.importing.read_export(export, map_file)
    assert_same_cohort(cohort, original)
    assert tuple(log.columns) == LOG_COLUMNS
    cohort2, log2 = read_export(export, mapping)  # a mapping object does the same
    pd.testing.assert_frame_equal(log, log2)


def test_declared_encoding_and_separator(tmp_path, original, map_file, export):
    text = map_file.read_text(encoding="utf-8").replace('extends = "nl_template"\n', 'extends = "nl_template"\n'
                                                        '[format]\nencoding = "cp1252"\nseparator = ";"\n')
    map_file.write_text(text, encoding="utf-8")
    cohort, log = read_export(export, map_file)
    assert_same_cohort(cohort, original)
    assert log.loc[log["action"] == "read", "detail"].str.contains("encoding cp1252 (declared), separator ';' "
                                                                   "(declared)", regex=False).all()


def test_validate_with_a_mapping_writes_nothing(export, map_file):
    before = sorted(p.name for p in export.parent.rglob("*"))
    result = runner.invoke(app, ["validate", str(export), "--mapping", str(map_file)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "valid"
    assert sorted(p.name for p in export.parent.rglob("*")) == before


# -- bad mappings: one line naming the key and the row of the user's file -------------------------


def run_import(tmp_path, export, map_file):
    out = tmp_path / "cohort"
    line = error_line(runner.invoke(app, ["import", str(export), "--mapping", str(map_file), "--out", str(out)]))
    assert not out.exists()
    return line


def with_lines(map_file, lines: str):
    map_file.write_text(map_file.read_text(encoding="utf-8").replace(
        'extends = "nl_template"\n', 'extends = "nl_template"\n' + lines + "\n"), encoding="utf-8")
    return map_file


def test_unknown_column(tmp_path, export, map_file):
    (export / "leerlingen.csv").write_bytes((export / "leerlingen.csv").read_bytes()
                                            .replace(b"Geslacht leerling", b"Gender"))
    line = run_import(tmp_path, export, map_file)
    assert line.startswith("error: mapping key 'tables.pupils.columns.sex' (leerlingen.csv): column "
                           "'Geslacht leerling' not found in the header at line 1; columns: ")


def _bad_cell(tmp_path, dutch_csv, mapping, table, column, value, at=None):
    """The export with ``value`` in ``column`` of ``table`` at data position ``at``; the file row it lands on."""
    tables = {name: df.copy() for name, df in dutch_csv.items()}
    at = len(tables[table]) // 2 if at is None else at
    if tables[table][column].dtype == float:  # as to_csv(decimal=",") writes them
        tables[table][column] = tables[table][column].astype(str).str.replace(".", ",", regex=False)
    tables[table][column] = tables[table][column].astype(object)
    tables[table].loc[at, column] = value
    return write_csv(tables, tmp_path / "export", mapping), at + 2


def test_unparsable_date(tmp_path, dutch_csv, mapping, map_file):
    export, row = _bad_cell(tmp_path, dutch_csv, mapping, "episodes", "startdatum", "31-02-2019")
    line = run_import(tmp_path, export, map_file)
    assert line == (f"error: mapping key 'tables.episodes.columns.start_date' (column 'startdatum' in Verzuimdossiers "
                    f"2024.csv): unparsable date '31-02-2019' at line {row}; expected a date as dd-mm-jjjj or excel "
                    f"(tables.episodes.columns.start_date.date_formats or format.date_formats)")


def test_ambiguous_date(tmp_path, dutch_csv, export, map_file):
    with_lines(map_file, '[tables.episodes.columns.start_date]\ncolumn = "startdatum"\n'
                         'date_formats = ["dd-mm-jjjj", "mm-dd-jjjj"]')
    parts = dutch_csv["episodes"]["startdatum"].str.split("-", expand=True).astype(int)
    ambiguous = np.flatnonzero((parts[0] <= 12) & (parts[0] != parts[1]))
    line = run_import(tmp_path, export, map_file)
    assert line.startswith(f"error: mapping key 'tables.episodes.columns.start_date' (column 'startdatum' in "
                           f"Verzuimdossiers 2024.csv): ambiguous date "
                           f"'{dutch_csv['episodes']['startdatum'][ambiguous[0]]}' at lines {ambiguous[0] + 2}, ")
    assert f"(and {len(ambiguous) - 5} more)" in line


def test_unmapped_code(tmp_path, dutch_csv, mapping, map_file):
    export, row = _bad_cell(tmp_path, dutch_csv, mapping, "episodes", "Resultaat", "naar huis")
    line = run_import(tmp_path, export, map_file)
    assert line == (f"error: mapping key 'tables.episodes.columns.outcome' (column 'Resultaat' in Verzuimdossiers "
                    f"2024.csv): unmapped code 'naar huis' at line {row}; add it to [codes.outcome] as \"label\" = a "
                    f"code of 'outcome', or correct the file")


def test_decimal_point_in_a_decimal_comma_file(tmp_path, dutch_csv, mapping, map_file):
    export, row = _bad_cell(tmp_path, dutch_csv, mapping, "absence", "ongeoorloofd_uren", "1.5")
    line = run_import(tmp_path, export, map_file)
    assert line.startswith(f"error: mapping key 'tables.absence.columns.unexcused_hours' (column 'ongeoorloofd_uren' "
                           f"in verzuim.csv): number with '.' where the decimal mark is ',': '1.5' at line {row}; "
                           f"set format.decimal = '.'")


def test_invalid_value_names_the_file_row_after_an_empty_row(tmp_path, dutch_csv, mapping, map_file):
    export, row = _bad_cell(tmp_path, dutch_csv, mapping, "absence", "leerjaar", 9, at=5)
    file = export / "verzuim.csv"
    lines = file.read_bytes().split(b"\r\n")
    lines.insert(3, b";" * lines[0].count(b";"))  # an empty row 4 before the bad one
    file.write_bytes(b"\r\n".join(lines))
    line = run_import(tmp_path, export, map_file)
    assert line.startswith(f"error: mapping key 'tables.absence.columns.grade' (column 'leerjaar' in verzuim.csv): "
                           f"value(s) out of range: 9 at line {row + 1}; expected ")


def test_wrong_declared_encoding(tmp_path, export, map_file):
    with_lines(map_file, '[format]\nencoding = "utf-8"')
    first = next(i for i, line in enumerate((export / "scholen.csv").read_bytes().split(b"\n"))
                 if any(b >= 0x80 for b in line))
    line = run_import(tmp_path, export, map_file)
    assert line.startswith("error: mapping key 'format.encoding' (scholen.csv): the file is not utf-8: byte 0x")
    assert f"cannot be read at line {first + 1}; declare its encoding" in line


@pytest.mark.parametrize("cell", ["formula", "error value"])
def test_excel_cells_without_a_usable_value(tmp_path, original, mapping, map_file, cell):
    import openpyxl
    from openpyxl.utils import get_column_letter

    tables = dutch(original, mapping, excel=True)
    tables["absence"] = tables["absence"].head(20)  # smaller and faster: the cell is refused as it is read
    workbook = write_xlsx(tables, tmp_path / "export.xlsx", mapping)
    book = openpyxl.load_workbook(workbook)
    sheet = book[mapping.tables["episodes"].sheet]
    header = [c.value for c in sheet[1]]
    col, row = get_column_letter(header.index("einddatum") + 1), len(original["episodes"]) // 2 + 2
    start = get_column_letter(header.index("startdatum") + 1)
    sheet[f"{col}{row}"] = f"={start}{row}+30" if cell == "formula" else "#N/A"  # openpyxl: no computed value
    book.save(workbook)
    line = run_import(tmp_path, workbook, map_file)
    where = ("error: mapping key 'tables.episodes.columns.end_date' (column 'einddatum' in sheet 'Dossiers LRV AV 5a' "
             "of export.xlsx): ")
    if cell == "formula":
        assert line == (f"{where}formula without a computed value (cell {col}{row}) at row {row}; open and save the "
                        f"file in Excel, or paste values")
    else:
        assert line.startswith(f"{where}Excel error value '#N/A' (cell {col}{row}) at row {row}; ")


def test_other_notations_give_the_same_cohort(tmp_path, original, dutch_csv, mapping, map_file):
    """A constant region, a skipped table, a column's own labels and date format, times of day, Excel serial
    numbers as text, blanks around codes, school years as 2018/19."""
    tables = {name: df.copy() for name, df in dutch_csv.items() if name != "interventions"}
    tables["schools"] = tables["schools"].drop(columns="regio")
    track = original["pupils"]["vo_track"].astype(object).map({"vmbo": "TL", "havo": "HAVO", "vwo": "VWO"})
    order = dutch_csv["pupils"]["pseudoniem"].map(dict(zip(original["pupils"]["pupil_id"], range(len(track)))))
    tables["pupils"]["niveau_vo"] = track.to_numpy()[order].astype(object)
    tables["pupils"]["niveau_vo"] = tables["pupils"]["niveau_vo"].where(tables["pupils"]["niveau_vo"].notna(), "")
    end = pd.to_datetime(tables["pupils"]["einddatum_volgen"], format="%d-%m-%Y")
    tables["pupils"]["einddatum_volgen"] = _dates(end, ("d-m-jj",)) + " 00:00"
    tables["pupils"]["Geslacht leerling"] = " " + tables["pupils"]["Geslacht leerling"] + " "
    start = pd.to_datetime(tables["episodes"]["startdatum"], format="%d-%m-%Y")
    tables["episodes"]["startdatum"] = (start - pd.Timestamp("1899-12-30")).dt.days.astype(str)
    year = tables["absence"]["schooljaar"].str[:4].astype(int)
    tables["absence"]["schooljaar"] = year.astype(str) + "/" + ((year + 1) % 100).map("{:02d}".format)
    export = write_csv(tables, tmp_path / "export", mapping, blank_row=False)
    with_lines(map_file, f"""[tables.schools.columns]
region_id = {{ value = "{REGION}" }}
[tables.pupils.columns.vo_track]
column = "niveau_vo"
codes = {{ TL = "vmbo" }}
[tables.pupils.columns.followup_end]
column = "einddatum_volgen"
date_formats = ["d-m-jj"]
[tables.interventions]
skip = true""")
    cohort, log = read_export(export, map_file)
    expected = dict(original, interventions=validate_cohort({**original, "interventions": original[
        "interventions"].iloc[:0]})["interventions"])
    assert_same_cohort(cohort, expected)
    counts = log.set_index(["table", "column", "detail"])["count"]
    n_pupils = len(original["pupils"])
    assert counts[("schools", "region_id", f"constant value {REGION!r}")] == len(original["schools"])
    assert counts[("pupils", "followup_end", "date as d-m-jj -> date")] == n_pupils
    assert counts[("pupils", "followup_end", "time of day dropped")] == n_pupils
    assert counts[("pupils", "sex", "surrounding blanks removed")] == n_pupils
    assert counts[("pupils", "vo_track", "label 'TL' -> 'vmbo'")] == (original["pupils"]["vo_track"] == "vmbo").sum()
    assert ("pupils", "vo_track", "text 'n.v.t.' -> missing") not in counts.index
    assert counts[("episodes", "start_date", "Excel serial number -> date")] == len(original["episodes"])
    assert counts[("absence", "school_year", "school year 'jjjj-jjjj' -> its first year")] == len(original["absence"])
    assert log.loc[log["table"] == "interventions", "action"].tolist() == ["skipped"]


def test_thousands_mark(tmp_path, dutch_csv, mapping, map_file):
    export, row = _bad_cell(tmp_path, dutch_csv, mapping, "absence", "te_laat", "1.234")
    assert "number with '.' where the decimal mark is ','" in run_import(tmp_path, export, map_file)
    cohort, log = read_export(export, with_lines(map_file, '[format]\nthousands = "."'))
    key = dutch_csv["absence"].loc[row - 2, ["pseudoniem", "schooljaar"]]
    absence = cohort.absence
    at = (absence["pupil_id"] == key["pseudoniem"]) & (absence["school_year"] == int(key["schooljaar"][:4]))
    assert absence.loc[at, "late_arrivals"].tolist() == [int("1.234".replace(".", ""))]
    assert log.loc[log["detail"] == "thousands mark '.' removed", ["column", "count"]].values.tolist() == \
        [["late_arrivals", 1]]


@pytest.mark.parametrize("lines, start", [
    ("[tables.schools]\ncolums = {}", "error: mapping key 'tables.schools.colums' (koppeling.toml): unknown key of a "
                                     "table; expected one of "),
    ("[tables.schools.columns]\ngender = \"geslacht\"", "error: mapping key 'tables.schools.columns.gender' "
                                                       "(koppeling.toml): unknown column of table 'schools'"),
    ("[codes.sex]\nX = \"W\"", "error: mapping key 'codes.sex.X' (koppeling.toml): 'W' is not a code of 'sex'"),
    ("[format]\ndate_formats = [\"dd-maand-jjjj\"]", "error: mapping key 'format.date_formats' (koppeling.toml): "
                                                   "unknown date format 'dd-maand-jjjj'"),
    ("[tables.schools.columns]\nregion_id = false", "error: mapping key 'tables.schools.columns.region_id' "
                                                    "(koppeling.toml): required column not mapped"),
    ("[format\n", "error: mapping key '(syntax)' (koppeling.toml): not valid TOML: "),
])
def test_bad_mapping_file(tmp_path, export, map_file, lines, start):
    assert run_import(tmp_path, export, with_lines(map_file, lines)).startswith(start)


def test_file_or_sheet_not_found(tmp_path, original, mapping, export, map_file):
    (export / "verzuim.csv").rename(export / "verzuim 2024.csv")
    line = run_import(tmp_path, export, map_file)
    assert line.startswith("error: mapping key 'tables.absence.file': file 'verzuim.csv' not found in the export "
                           "folder; files there: ")
    assert "verzuim 2024.csv" in line
    tables = dutch(original, mapping, excel=True)
    workbook = write_xlsx({name: df.head(5) for name, df in tables.items() if name != "episodes"},
                          tmp_path / "export.xlsx", mapping)
    line = run_import(tmp_path, workbook, map_file)
    assert line.startswith("error: mapping key 'tables.episodes.sheet' (export.xlsx): sheet 'Dossiers LRV AV 5a' not "
                           "found; sheets: Scholen, Leerlingen, Verzuim, Interventies")


# -- identifiers, output directory, template -------------------------------------------------------


@pytest.mark.parametrize("name, kind", [("BSN", "a citizen service number (BSN)"), ("Achternaam", "a name"),
                                        ("naam leerling", "a name"), ("E-mail ouder", "an e-mail address"),
                                        ("Tel.nr", "a telephone number"), ("Postcode", "a postcode"),
                                        ("adres", "an address"), ("schoolnaam", None), ("geboortejaar", None),
                                        ("pseudoniem", None)])
def test_identifier_names(name, kind):
    assert identifier_kind(name) == kind


def test_identifier_columns_are_refused_unless_dropped(tmp_path, dutch_csv, mapping, map_file):
    tables = {name: df.copy() for name, df in dutch_csv.items()}
    tables["pupils"]["BSN"] = [f"{123456782 + i * 11}" for i in range(len(tables["pupils"]))]
    export = write_csv(tables, tmp_path / "export", mapping)
    line = run_import(tmp_path, export, map_file)
    assert line == ("error: mapping key 'tables.pupils.drop' (leerlingen.csv): column 'BSN' looks like a direct "
                    "identifier (a citizen service number (BSN)) and is refused at line 1; leave it out of the export, "
                    "or drop it explicitly: add \"BSN\" to tables.pupils.drop")
    with_lines(map_file, "")
    map_file.write_text(map_file.read_text(encoding="utf-8").replace('drop = ["Achternaam"]',
                                                                     'drop = ["Achternaam", "bsn"]'), encoding="utf-8")
    cohort, log = read_export(export, map_file)
    assert log.loc[(log["source"] == "BSN") & (log["action"] == "dropped"), "detail"].tolist() == ["listed in drop"]
    assert "BSN" not in " ".join(map(str, cohort.pupils.columns))


def test_date_of_birth_is_refused_only_with_the_day(tmp_path, dutch_csv, original, mapping, map_file):
    tables = {name: df.copy() for name, df in dutch_csv.items()}
    tables["pupils"]["geboortedatum"] = "2009"  # a year only: not a direct identifier, dropped as not mapped
    cohort, log = read_export(write_csv(tables, tmp_path / "year", mapping), map_file)
    assert_same_cohort(cohort, original)
    assert log.loc[log["source"] == "geboortedatum", "detail"].tolist() == ["column not in the mapping"]
    tables["pupils"].loc[3, "geboortedatum"] = "14-03-2009"
    export = write_csv(tables, tmp_path / "export", mapping)
    line = run_import(tmp_path, export, map_file)
    assert line.startswith("error: mapping key 'tables.pupils.drop' (leerlingen.csv): column 'geboortedatum' looks "
                           "like a direct identifier (a date of birth with the day) and is refused at line 1;")


def test_out_refuses_a_directory_the_package_did_not_write(tmp_path, export, map_file):
    out = tmp_path / "mijn map"
    out.mkdir()
    (out / "notities.txt").write_text("van de leerplichtambtenaar")
    for extra in ([], ["--overwrite"]):
        line = error_line(runner.invoke(app, ["import", str(export), "--mapping", str(map_file), "--out", str(out),
                                              *extra]))
        assert "holds files verzuimmodel did not write (notities.txt)" in line
        assert sorted(p.name for p in out.iterdir()) == ["notities.txt"]
    line = error_line(runner.invoke(app, ["import", str(export), "--mapping", str(map_file), "--out", str(export)]))
    assert "holds files verzuimmodel did not write" in line  # not even into the export itself


def test_mapping_template_command(tmp_path):
    printed = runner.invoke(app, ["mapping", "template"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == template_text()
    out = tmp_path / "koppeling.toml"
    written = runner.invoke(app, ["mapping", "template", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == template_text()
    assert ImportMapping.load(out).tables.keys() == TABLES.keys()
    out.write_text("# mijn eigen koppeling\n", encoding="utf-8")
    line = error_line(runner.invoke(app, ["mapping", "template", "--out", str(out)]))
    assert line == f"error: '{out}' exists; not replacing it: choose another file name"
    assert out.read_text(encoding="utf-8") == "# mijn eigen koppeling\n"
    assert [p.name for p in tmp_path.iterdir()] == ["koppeling.toml"]


def test_template_maps_every_dutch_label_and_required_column():
    template = ImportMapping.template()
    for name, codes in CODE_LISTS.items():
        labels = template.labels(name)
        for code in codes.values():
            assert labels[" ".join(code.label_nl.split()).casefold()] == code.code, (name, code.label_nl)
    assert template.labels("boolean")["ja"] is True and template.labels("boolean")["nee"] is False
    raw = tomllib.loads(template_text())
    for name, table in TABLES.items():
        assert set(raw["tables"][name]["columns"]) == set(table.required_columns), name


def test_mapping_error_is_a_value_error_naming_key_and_rows():
    e = MappingError("codes.sex", "unmapped code 'X'", source="column 'geslacht' in a.csv", rows=[4, 9], n_rows=2)
    assert isinstance(e, ValueError)
    assert str(e) == "mapping key 'codes.sex' (column 'geslacht' in a.csv): unmapped code 'X' at rows 4, 9"


def test_calibrate_reads_an_export_with_its_mapping(export, map_file, original, monkeypatch):
    """``verzuim calibrate --data EXPORT --mapping MAP`` compares the imported cohort, as read by
    ``validate --mapping``, with the targets: the same figures as for the original cohort."""
    from rich.console import Console

    from verzuimmodel import calibration, cli

    expected = calibration.compare(vm.Cohort(**original)).set_index("target_id")["simulated"]
    monkeypatch.setattr(cli, "console", Console(width=250))       # no table cell is wrapped
    result = runner.invoke(app, ["calibrate", "--data", str(export), "--mapping", str(map_file)])
    assert result.exit_code in (0, 1), result.output            # 1: a solid target out of range
    for target, value in expected.dropna().items():
        line = next(line for line in result.stdout.splitlines() if f"│ {target} " in line)
        assert f"{value:.4g}" in line
    alone = runner.invoke(app, ["calibrate", "--mapping", str(map_file)])
    assert alone.exit_code == 2 and alone.stderr.strip() == "error: --mapping: only with --data (the export to read "\
                                                            "with it)"
