"""Reading and writing cohorts: formats, round trips, missing and doubled tables, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cohort_factory import N_PUPILS, small_cohort
from verzuimmodel import io
from verzuimmodel.cohort import Cohort
from verzuimmodel.io import OUTPUT_MARKER, read_cohort, write_cohort
from verzuimmodel.schema import TABLES, SchemaError, validate_cohort


@pytest.fixture
def valid() -> dict[str, pd.DataFrame]:
    """The normalised tables of the small cohort."""
    return validate_cohort(small_cohort())


@pytest.fixture
def cohort(valid) -> Cohort:
    return Cohort(**valid)


def assert_tables_equal(cohort: Cohort, expected: dict[str, pd.DataFrame]) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(cohort, name), expected[name], obj=name)


def snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- reading ----------------------------------------------------------------------------------


def test_read_csv_directory(tmp_path, valid):
    for name, df in small_cohort().items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    c = read_cohort(tmp_path)
    assert_tables_equal(c, valid)
    assert c.truth == {} and c.scenario is None and c.seed is None


def test_read_semicolon_csv_with_bom_decimal_comma_and_dutch_booleans(tmp_path, valid):
    tables = small_cohort()
    tables["pupils"]["disadvantaged"] = tables["pupils"]["disadvantaged"].map({True: "ja", False: "nee"})
    for name, df in tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False, sep=";", decimal=",", encoding="utf-8-sig")
    assert "1,5" in (tmp_path / "absence.csv").read_text(encoding="utf-8-sig")
    c = read_cohort(tmp_path)
    assert_tables_equal(c, valid)
    assert c.absence["unexcused_hours"].iloc[2] == 1.5


def test_read_parquet_directory(tmp_path, valid):
    for name, df in small_cohort().items():
        df.to_parquet(tmp_path / f"{name}.parquet", index=False)
    assert_tables_equal(read_cohort(tmp_path), valid)


def test_read_xlsx_directory(tmp_path, valid):
    for name, df in small_cohort().items():
        df.to_excel(tmp_path / f"{name}.xlsx", index=False, sheet_name="Blad1")
    assert_tables_equal(read_cohort(tmp_path), valid)


def test_read_xlsx_workbook_ignores_other_sheets(tmp_path, valid):
    workbook = tmp_path / "cohort.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        pd.DataFrame({"toelichting": ["zie data/README.md"]}).to_excel(writer, sheet_name="toelichting", index=False)
        for name, df in small_cohort().items():
            df.to_excel(writer, sheet_name=name, index=False)
    assert_tables_equal(read_cohort(workbook), valid)


def test_workbook_with_a_table_from_another_file(tmp_path, valid):
    workbook = tmp_path / "cohort.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        for name, df in small_cohort().items():
            if name != "pupils":
                df.to_excel(writer, sheet_name=name, index=False)
    small_cohort()["pupils"].to_parquet(tmp_path / "leerlingen.parquet")
    assert_tables_equal(read_cohort(workbook, tables={"pupils": "leerlingen.parquet"}), valid)


def test_workbook_without_a_required_sheet(tmp_path):
    workbook = tmp_path / "cohort.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        small_cohort()["schools"].to_excel(writer, sheet_name="schools", index=False)
    with pytest.raises(SchemaError) as info:
        read_cohort(workbook)
    assert info.value.table == "pupils"
    assert "a sheet named 'pupils'" in str(info.value) and "(sheets: schools)" in str(info.value)


def test_missing_optional_tables_are_empty(tmp_path, valid):
    for name in ("schools", "pupils"):
        small_cohort()[name].to_csv(tmp_path / f"{name}.csv", index=False)
    c = read_cohort(tmp_path)
    assert [len(t) for t in c.tables.values()] == [6, N_PUPILS, 0, 0, 0]
    assert list(c.absence.columns) == TABLES["absence"].required_columns
    assert c.absence["sick_days"].dtype == np.int64
    assert c.episodes["outcome"].dtype == valid["episodes"]["outcome"].dtype


def test_missing_required_table_names_the_files_looked_for(tmp_path):
    small_cohort()["schools"].to_csv(tmp_path / "schools.csv", index=False)
    with pytest.raises(SchemaError) as info:
        read_cohort(tmp_path)
    assert (info.value.table, info.value.column) == ("pupils", None)
    assert "required table not found" in str(info.value)
    assert "one of pupils.parquet, pupils.csv, pupils.xlsx in" in str(info.value)


def test_two_formats_for_one_table(tmp_path):
    for name, df in small_cohort().items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    small_cohort()["episodes"].to_parquet(tmp_path / "episodes.parquet")
    with pytest.raises(SchemaError) as info:
        read_cohort(tmp_path)
    assert info.value.table == "episodes"
    assert "more than one file for the table: episodes.parquet, episodes.csv" in str(info.value)


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="cohort not found: .*nope' does not exist"):
        read_cohort(tmp_path / "nope")


def test_tables_from_other_file_names(tmp_path, valid):
    for name, df in small_cohort().items():
        df.to_csv(tmp_path / ("leerlingen.csv" if name == "pupils" else f"{name}.csv"), index=False)
    assert_tables_equal(read_cohort(tmp_path, tables={"pupils": "leerlingen.csv"}), valid)
    with pytest.raises(SchemaError, match="table 'leerlingen': unknown table"):
        read_cohort(tmp_path, tables={"leerlingen": "leerlingen.csv"})


def test_invalid_table_in_a_file_reports_its_data_row(tmp_path):
    tables = small_cohort()
    tables["absence"].loc[6, "grade"] = 12
    for name, df in tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    with pytest.raises(SchemaError) as info:
        read_cohort(tmp_path)
    assert (info.value.table, info.value.column, info.value.rows) == ("absence", "grade", [7])
    # data row 7 is line 8 of the file, under the header
    assert (tmp_path / "absence.csv").read_text().splitlines()[7].split(",")[4] == "12"


def test_unreadable_files_name_the_table(tmp_path):
    for name, df in small_cohort().items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / "episodes.csv").write_bytes("episode_id,pupil_id\n1,Zoë\n".encode("latin-1"))
    with pytest.raises(SchemaError, match="table 'episodes': cannot read .*UnicodeDecodeError"):
        read_cohort(tmp_path)
    (tmp_path / "episodes.csv").unlink()
    (tmp_path / "episodes.parquet").write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match="table 'episodes': cannot read .*episodes.parquet"):
        read_cohort(tmp_path)


def _write_workbook(path, tables: dict[str, pd.DataFrame], cells=None, sheet_name=None) -> None:
    """The tables as sheets of a workbook written by openpyxl (formulas get no computed value).

    ``cells`` maps (table, column, data row) to a value written as it is, such as ``"=2016+1"``;
    data row 1 is the first row under the header. ``sheet_name`` names the only sheet instead.
    """
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, df in tables.items():
        sheet = book.create_sheet(sheet_name or name)
        sheet.append(list(df.columns))
        for row in df.astype(object).itertuples(index=False):
            sheet.append([None if pd.isna(v) else v.to_pydatetime() if isinstance(v, pd.Timestamp) else v
                          for v in row])
        for (table, column, data_row), value in (cells or {}).items():
            if table == name:
                sheet.cell(row=data_row + 1, column=list(df.columns).index(column) + 1, value=value)
    book.save(path)


def test_xlsx_formula_without_a_computed_value_is_refused(tmp_path):
    workbook = tmp_path / "cohort.xlsx"
    _write_workbook(workbook, small_cohort(), {("schools", "approach_start_year", 2): "=2016+1"})
    with pytest.raises(SchemaError) as info:
        read_cohort(workbook)  # before: read as missing, the school "never adopted" the approach
    err = info.value
    assert (err.table, err.column, err.rows, err.file_rows) == ("schools", "approach_start_year", [2], [3])
    assert str(err).startswith("table 'schools' (sheet 'schools' of cohort.xlsx), column 'approach_start_year': "
                               "formula without a computed value in cell E3: open and save the file in Excel, or "
                               "paste values at row 3; expected ")


def test_xlsx_formulas_without_computed_values_in_a_file_per_table(tmp_path):
    tables = small_cohort()
    for name, df in tables.items():
        if name != "episodes":
            df.to_excel(tmp_path / f"{name}.xlsx", index=False)
    _write_workbook(tmp_path / "episodes.xlsx", {"episodes": tables["episodes"]}, sheet_name="Blad1",
                    cells={("episodes", "end_date", 1): "=F2+30", ("episodes", "end_date", 4): "=F5+30",
                           ("episodes", "outcome", 6): '=IF(TRUE,"work","censored")'})
    with pytest.raises(SchemaError) as info:
        read_cohort(tmp_path)
    err = info.value
    assert (err.table, err.column, err.rows, err.file_rows) == ("episodes", "end_date", [1, 4], [2, 5])
    assert str(err).startswith("table 'episodes' (sheet 'Blad1' of episodes.xlsx), column 'end_date': formulas "
                               "without a computed value in cells F2, F5: ")
    assert " at rows 2, 5; expected " in str(err)


def test_xlsx_formula_with_a_computed_value_is_read(tmp_path):
    import zipfile

    workbook = tmp_path / "cohort.xlsx"
    _write_workbook(workbook, small_cohort(), {("schools", "approach_start_year", 2): "=2016+1"})
    with zipfile.ZipFile(workbook) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    computed = {n: data.replace(b"<f>2016+1</f><v />", b"<f>2016+1</f><v>2017</v>")     # openpyxl < 3.1.3
                .replace(b"<f>2016+1</f><v></v>", b"<f>2016+1</f><v>2017</v>") for n, data in parts.items()}
    assert computed != parts
    with zipfile.ZipFile(workbook, "w") as z:  # as Excel saves it: the formula and its last value
        for n, data in computed.items():
            z.writestr(n, data)
    assert read_cohort(workbook).schools["approach_start_year"].tolist()[:3] == [2018, 2017, 2019]


def test_xlsx_formula_outside_the_table_columns_is_ignored(tmp_path, valid):
    tables = small_cohort()
    tables["schools"]["toelichting"] = None
    _write_workbook(tmp_path / "cohort.xlsx", tables, {("schools", "toelichting", 1): "=E2+1"})
    assert read_cohort(tmp_path / "cohort.xlsx").schools["approach_start_year"].tolist() == \
        valid["schools"]["approach_start_year"].tolist()


def test_xlsx_error_value_is_refused(tmp_path):
    workbook = tmp_path / "cohort.xlsx"
    _write_workbook(workbook, small_cohort(), {("schools", "approach_start_year", 4): "#N/A"})  # an error cell
    with pytest.raises(SchemaError) as info:
        read_cohort(workbook)  # before: read as missing
    err = info.value
    assert (err.table, err.column, err.rows, err.file_rows) == ("schools", "approach_start_year", [4], [5])
    assert "(sheet 'schools' of cohort.xlsx), column 'approach_start_year': Excel error value(s) '#N/A' in cell E5 " \
           "at row 5; expected" in str(err)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("text", ["NULL", "NA", "nan", "N/A"])
def test_text_for_missing_in_an_identifier_column_is_refused(tmp_path, fmt, text):
    tables = small_cohort()
    tables["pupils"]["vo_school_id"] = tables["pupils"]["vo_school_id"].astype(object)
    tables["pupils"].loc[2, "vo_school_id"] = text  # before: read as missing (the pupil not in VO)
    for name, df in tables.items():
        if fmt == "csv":
            df.to_csv(tmp_path / f"{name}.csv", index=False)
        else:
            df.to_excel(tmp_path / f"{name}.xlsx", index=False)
    with pytest.raises(SchemaError) as info:
        read_cohort(tmp_path)
    err = info.value
    assert (err.table, err.column, err.rows, err.file_rows) == ("pupils", "vo_school_id", [3], [4])
    where = "pupils.csv" if fmt == "csv" else "sheet 'Sheet1' of pupils.xlsx"
    unit = "line" if fmt == "csv" else "row"
    assert str(err).startswith(f"table 'pupils' ({where}), column 'vo_school_id': text that means missing is not an "
                               f"identifier: {text!r} at {unit} 4; expected ")


def test_text_for_missing_in_other_columns_is_still_missing(tmp_path, valid):
    tables = small_cohort()
    tables["pupils"]["vo_track"] = tables["pupils"]["vo_track"].fillna("NA")
    for name, df in tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    assert_tables_equal(read_cohort(tmp_path), valid)


@pytest.mark.parametrize("scenario", ["default", "open_region", "confounded_referral"])
def test_simulated_cohorts_are_valid_when_read_back(tmp_path, scenario):
    vm = pytest.importorskip("verzuimmodel")
    cohort = vm.simulate(vm.Scenario.default() if scenario == "default" else vm.Scenario.load(scenario), seed=1)
    back = read_cohort(cohort.to_parquet(tmp_path / scenario))
    assert [len(t) for t in back.tables.values()] == [len(t) for t in cohort.tables.values()]


# -- writing and round trips ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv", "xlsx"])
def test_round_trip(tmp_path, cohort, valid, fmt):
    path = write_cohort(cohort, tmp_path / "cohort", fmt=fmt)
    assert path == tmp_path / "cohort"
    assert sorted(p.name for p in path.iterdir()) == sorted([OUTPUT_MARKER, *(f"{name}.{fmt}" for name in TABLES)])
    assert_tables_equal(read_cohort(path), valid)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_round_trip_of_empty_tables_and_optional_columns(tmp_path, valid, fmt):
    valid["absence"]["sick_days_true"] = valid["absence"]["sick_days"] + 1
    valid["interventions"] = valid["interventions"].iloc[:0]
    expected = validate_cohort(valid)
    back = read_cohort(write_cohort(Cohort(**valid), tmp_path / "c", fmt=fmt))
    assert_tables_equal(back, expected)
    assert len(back.interventions) == 0


def test_cohort_methods_write(tmp_path, cohort, valid):
    assert_tables_equal(read_cohort(cohort.to_parquet(tmp_path / "p")), valid)
    assert_tables_equal(read_cohort(cohort.to_csv(tmp_path / "c")), valid)


def test_truth_and_seed_round_trip(tmp_path, valid):
    truth = {"po_approach_vo_rate_ratio": np.float64(0.8), "intervention_hr": {"mazl": 1.4},
             "n": np.int64(3), "return_cif": np.array([0.1, 0.25]), "years": (2018, 2019),
             "cif": pd.DataFrame({"day": [90, 180], "cif": [0.3, 0.5]}), "start": pd.Timestamp("2018-08-20")}
    path = write_cohort(Cohort(**valid, truth=truth, seed=7), tmp_path / "sim")
    back = read_cohort(path)
    assert back.truth == {"po_approach_vo_rate_ratio": 0.8, "intervention_hr": {"mazl": 1.4}, "n": 3,
                          "return_cif": [0.1, 0.25], "years": [2018, 2019],
                          "cif": {"day": [90, 180], "cif": [0.3, 0.5]}, "start": "2018-08-20T00:00:00"}
    assert back.seed == 7 and back.scenario is None
    assert json.loads((path / "cohort.json").read_text()) == {"seed": 7}


def test_scenario_round_trip(tmp_path, valid):
    simulate = pytest.importorskip("verzuimmodel.simulate")
    scenario = simulate.Scenario.default()
    path = write_cohort(Cohort(**valid, truth={"x": 1.0}, scenario=scenario, seed=1), tmp_path / "sim")
    assert (path / "scenario.toml").read_text(encoding="utf-8") == scenario.to_toml()
    assert read_cohort(path).scenario == scenario


def test_write_replaces_an_existing_cohort(tmp_path, cohort, valid):
    path = write_cohort(cohort, tmp_path / "cohort", fmt="parquet")
    write_cohort(cohort, path, fmt="csv", overwrite=True)
    assert sorted(p.name for p in path.iterdir()) == sorted([OUTPUT_MARKER, *(f"{name}.csv" for name in TABLES)])
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]
    assert_tables_equal(read_cohort(path), valid)


def test_write_refuses_to_replace_other_directories(tmp_path, cohort):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="holds files verzuimmodel did not write \\(notes.txt\\)"):
        write_cohort(cohort, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError, match="not a directory"):
        write_cohort(cohort, tmp_path / "notes.txt")


def test_write_invalid_cohort_writes_nothing(tmp_path, valid):
    valid["episodes"].loc[0, "end_date"] = pd.Timestamp("2000-01-01")
    with pytest.raises(SchemaError, match="table 'episodes', column 'end_date'"):
        write_cohort(Cohort(**valid), tmp_path / "cohort")
    assert list(tmp_path.iterdir()) == []


def test_write_unknown_format(tmp_path, cohort):
    with pytest.raises(ValueError, match="unknown format 'json'"):
        write_cohort(cohort, tmp_path / "c", fmt="json")


def test_write_too_many_rows_for_excel(tmp_path, cohort, monkeypatch):
    monkeypatch.setattr(io, "_EXCEL_MAX_ROWS", 30)
    with pytest.raises(ValueError, match="table 'absence' has 40 rows, more than fit on an Excel sheet"):
        write_cohort(cohort, tmp_path / "c", fmt="xlsx")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_cohort_and_no_temporary_directory(tmp_path, cohort, monkeypatch):
    path = write_cohort(cohort, tmp_path / "cohort", fmt="csv")
    before = snapshot(path)
    written = []

    def fail_on_absence(df, file, name):
        if name == "absence":
            raise OSError("disk full")
        io._write_parquet(df, file, name)
        written.append(file)

    monkeypatch.setitem(io._WRITERS, "parquet", fail_on_absence)
    with pytest.raises(OSError, match="disk full"):
        write_cohort(cohort, path, fmt="parquet", overwrite=True)
    assert [f.name for f in written] == ["schools.parquet", "pupils.parquet"]
    assert not any(f.exists() for f in written)
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]
    assert snapshot(path) == before


# a failed rename while replacing: tests/test_outputs.py (the one helper all outputs use)


def test_write_creates_missing_parents(tmp_path, cohort):
    path = write_cohort(cohort, tmp_path / "output" / "default", fmt="csv")
    assert (path / "pupils.csv").is_file()
    assert [p.name for p in (tmp_path / "output").iterdir()] == ["default"]
