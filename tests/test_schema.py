"""Validation of cohort tables: one rejection test per rule, normalisation, and generated corruptions."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cohort_factory import N_PUPILS, small_cohort
from verzuimmodel.schema import CODE_LISTS, TABLES, SchemaError, empty_table, validate_cohort, validate_table


def rejected(tables: dict[str, pd.DataFrame], table: str, column: str | None, rows: list[int] | None = None
             ) -> SchemaError:
    """Assert that validation fails on ``table``/``column`` at exactly ``rows``; return the error."""
    with pytest.raises(SchemaError) as info:
        validate_cohort(tables)
    err = info.value
    assert (err.table, err.column) == (table, column), str(err)
    message = str(err)
    assert message.startswith(f"table '{table}'" + (f", column '{column}'" if column else "") + ": ")
    if rows is not None:
        assert err.rows == rows
        assert f"at data row(s) {', '.join(map(str, rows[:5]))}" in message
    return err


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return small_cohort()


# -- a valid cohort ---------------------------------------------------------------------------


def test_small_cohort_is_valid_and_normalised(tables):
    out = validate_cohort(tables)
    assert list(out) == list(TABLES)
    assert [len(t) for t in out.values()] == [6, N_PUPILS, 2 * N_PUPILS, 6, 4]
    schools, pupils, absence, episodes, interventions = out.values()
    assert schools["school_id"].dtype == object and schools["school_id"].iloc[0] == "04AA00"
    assert schools["approach_start_year"].dtype == "Int64"
    assert schools["approach_start_year"].isna().sum() == 4
    assert schools["level"].dtype == pd.CategoricalDtype(["po", "vo"])
    assert pupils["pupil_id"].dtype == np.int64
    assert pupils["vo_school_id"].tolist()[11:13] == ["21VO01", None]
    assert pupils["disadvantaged"].dtype == bool and pupils["disadvantaged"].sum() == 7
    assert list(pupils["vo_track"].cat.categories) == list(CODE_LISTS["vo_track"])
    assert pupils["followup_end"].dtype == "datetime64[ns]"
    assert absence["unexcused_hours"].dtype == np.float64
    assert absence["sick_days"].dtype == np.int64 and absence["sick_days"].sum() == 2 * 77
    assert episodes["end_date"].isna().tolist() == [False, False, True, False, False, False]
    assert interventions["episode_id"].tolist() == [1, 2, 3, 6]
    for frame in out.values():
        assert isinstance(frame.index, pd.RangeIndex)


def test_validation_does_not_modify_its_input(tables):
    before = {name: df.copy() for name, df in tables.items()}
    out = validate_cohort(tables)
    out["absence"].loc[0, "sick_days"] = 99
    for name, df in tables.items():
        pd.testing.assert_frame_equal(df, before[name])


def test_text_values_as_read_from_csv_are_converted():
    pupils = small_cohort()["pupils"].head(4).astype(object)
    pupils["pupil_id"] = ["101", " 102 ", "103", "104"]
    pupils["cohort"] = ["2012", "2012.0", 2012, "2016"]
    pupils["disadvantaged"] = ["ja", "Nee", "TRUE", "no"]
    pupils["chronic_illness"] = [1, 0, "yes", "false"]
    pupils["sex"] = [" F", "M ", "F", "M"]
    pupils["vo_track"] = ["vmbo", "", None, "vwo"]
    pupils["followup_end"] = ["2024-07-31", "2024-07-31T00:00:00", 45504, "45504"]  # Excel serial 45504
    out = validate_table("pupils", pupils)
    assert out["pupil_id"].tolist() == [101, 102, 103, 104] and out["pupil_id"].dtype == np.int64
    assert out["cohort"].tolist() == [2012, 2012, 2012, 2016]
    assert out["disadvantaged"].tolist() == [True, False, True, False]
    assert out["chronic_illness"].tolist() == [True, False, True, False]
    assert out["sex"].tolist() == ["F", "M", "F", "M"]
    assert out["vo_track"].isna().tolist() == [False, True, True, False]
    assert (out["followup_end"] == pd.Timestamp("2024-07-31")).all()


def test_rows_are_positions_whatever_the_index(tables):
    pupils = tables["pupils"]
    pupils.index = [7] * len(pupils)
    pupils["followup_end"] = ["45504", "2024-07-31"] * (len(pupils) // 2)  # Excel serial and ISO text
    out = validate_table("pupils", pupils)
    assert isinstance(out.index, pd.RangeIndex)
    assert (out["followup_end"] == pd.Timestamp("2024-07-31")).all()
    pupils.iloc[5, pupils.columns.get_loc("cohort")] = 1800
    with pytest.raises(SchemaError) as info:
        validate_table("pupils", pupils)
    assert info.value.rows == [6]


def test_text_ids_keep_leading_zeros_and_numbers_join_them():
    schools = small_cohort()["schools"]
    schools["school_id"] = ["0412", "12", 13, 14.0, "20VO00", "21VO01"]
    out = validate_table("schools", schools)
    assert out["school_id"].tolist() == ["0412", "12", "13", "14", "20VO00", "21VO01"]


def test_integer_and_text_ids_match_across_tables(tables):
    tables["pupils"]["pupil_id"] = tables["pupils"]["pupil_id"].astype(str)
    tables["absence"]["pupil_id"] = tables["absence"]["pupil_id"].map(lambda i: f"{i}")
    out = validate_cohort(tables)
    assert out["pupils"]["pupil_id"].dtype == np.int64


def test_extra_columns_are_kept_and_optional_columns_checked(tables):
    tables["absence"]["note"] = "x"
    tables["absence"]["sick_days_true"] = tables["absence"]["sick_days"] + 1
    out = validate_cohort(tables)
    assert out["absence"]["note"].tolist() == ["x"] * 2 * N_PUPILS
    assert out["absence"]["sick_days_true"].sum() == 2 * 77 + 2 * N_PUPILS
    tables["absence"].loc[7, "sick_days_true"] = 400
    rejected(tables, "absence", "sick_days_true", [8])


def test_empty_optional_tables_are_valid(tables):
    for name in ("absence", "episodes", "interventions"):
        tables[name] = empty_table(name)
    out = validate_cohort(tables)
    assert len(out["episodes"]) == 0
    assert out["absence"]["sick_days"].dtype == np.int64
    assert out["episodes"]["start_date"].dtype == "datetime64[ns]"


def test_intervention_in_an_open_episode_may_start_late(tables):
    tables["interventions"].loc[2, "start_date"] = pd.Timestamp("2024-01-01")  # episode 3 has no end_date
    validate_cohort(tables)


# -- one rejection per rule -------------------------------------------------------------------


def test_missing_column(tables):
    del tables["pupils"]["sex"]
    err = rejected(tables, "pupils", "sex")
    assert err.rows == []
    assert "missing required column(s) sex" in str(err)
    assert "expected columns pupil_id, po_school_id, vo_school_id, cohort, sex" in str(err)


def test_missing_columns_are_all_named(tables):
    del tables["episodes"]["outcome"], tables["episodes"]["start_date"]
    err = rejected(tables, "episodes", "start_date, outcome")
    assert "missing required column(s) start_date, outcome" in str(err)


@pytest.mark.parametrize(("table", "column", "row", "value"), [
    ("absence", "unexcused_hours", 5, "veel"),
    ("episodes", "start_date", 2, "31-12-2019"),  # not ISO: day-month order is ambiguous
    ("episodes", "start_date", 3, "geen datum"),
    ("schools", "school_id", 1, 2.5),
    ("pupils", "pupil_id", 4, 101.5),  # text would be a valid id, a fraction is not
])
def test_wrong_type(tables, table, column, row, value):
    tables[table][column] = tables[table][column].astype(object)
    tables[table].loc[row, column] = value
    err = rejected(tables, table, column, [row + 1])
    assert "invalid value(s)" in str(err) and repr(value) in str(err) or str(value) in str(err)


@pytest.mark.parametrize("value", [2.5, "abc", "3.5", np.inf])
def test_bad_int(tables, value):
    tables["absence"]["grade"] = tables["absence"]["grade"].astype(object)
    tables["absence"].loc[3, "grade"] = value
    err = rejected(tables, "absence", "grade", [4])
    assert "expected whole numbers from 1 to 8" in str(err)


def test_bad_bool(tables):
    tables["pupils"]["disadvantaged"] = tables["pupils"]["disadvantaged"].astype(object)
    tables["pupils"].loc[0, "disadvantaged"] = "misschien"
    err = rejected(tables, "pupils", "disadvantaged", [1])
    assert "'misschien'" in str(err) and "ja/nee" in str(err)


def test_bool_number_other_than_0_or_1(tables):
    tables["pupils"]["special_needs"] = tables["pupils"]["special_needs"].astype(int)
    tables["pupils"].loc[6, "special_needs"] = 2
    rejected(tables, "pupils", "special_needs", [7])


def test_unknown_code(tables):
    tables["schools"].loc[2, "level"] = "mbo"
    err = rejected(tables, "schools", "level", [3])
    assert "'mbo'" in str(err) and "expected one of 'po', 'vo'" in str(err)


def test_unknown_code_in_categorical_column(tables):
    tables["episodes"]["outcome"] = pd.Categorical(tables["episodes"]["outcome"].replace("work", "x")
                                                   .replace("own_school", "terug"))
    rejected(tables, "episodes", "outcome", [1])


@pytest.mark.parametrize(("table", "column", "row"), [
    ("pupils", "cohort", 7), ("pupils", "followup_end", 0), ("schools", "level", 5),
    ("interventions", "episode_id", 3), ("absence", "pupil_id", 39),
])
def test_missing_value_in_non_nullable_column(tables, table, column, row):
    tables[table][column] = tables[table][column].astype(object)
    tables[table].loc[row, column] = None
    err = rejected(tables, table, column, [row + 1])
    assert "missing value(s)" in str(err)


def test_blank_text_counts_as_missing(tables):
    tables["pupils"]["sex"] = tables["pupils"]["sex"].astype(object)
    tables["pupils"].loc[2, "sex"] = "  "
    rejected(tables, "pupils", "sex", [3])


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("sick_days", 367, "from 0 to 366"), ("enrolled_days", -1, "from 0 to 200"), ("school_year", 1989, "from 1990"),
])
def test_bound_violation(tables, column, value, expected):
    tables["absence"].loc[10, column] = value
    err = rejected(tables, "absence", column, [11])
    assert f"value(s) out of range: {value}" in str(err) and expected in str(err)


def test_many_offending_rows_are_counted(tables):
    tables["absence"]["late_arrivals"] = 5000
    err = rejected(tables, "absence", "late_arrivals", list(range(1, 21)))
    assert err.n_rows == 2 * N_PUPILS
    assert "at data row(s) 1, 2, 3, 4, 5 (and 35 more)" in str(err)


def test_duplicate_id(tables):
    tables["schools"].loc[5, "school_id"] = "04AA00"
    err = rejected(tables, "schools", "school_id", [1, 6])
    assert "duplicate key value(s): (school_id='04AA00')" in str(err)


def test_duplicate_composite_key(tables):
    tables["absence"].loc[3, "school_year"] = 2017  # rows 2 and 3 are pupil 102 in 2017 and 2019
    err = rejected(tables, "absence", "pupil_id, school_year", [3, 4])
    assert "(pupil_id=102, school_year=2017)" in str(err)


FOREIGN_KEYS = [(name, column) for name, table in TABLES.items() for column in table.foreign_keys]


def test_every_foreign_key_is_tested():
    assert len(FOREIGN_KEYS) == 8


@pytest.mark.parametrize(("table", "column"), FOREIGN_KEYS)
def test_orphan_foreign_key(tables, table, column):
    ref_table, ref_column = TABLES[table].foreign_keys[column]
    orphan = "99ZZ99" if tables[ref_table][ref_column].dtype == object else 999
    tables[table][column] = tables[table][column].astype(object)
    tables[table].loc[1, column] = orphan
    err = rejected(tables, table, column, [2])
    assert f"value(s) not in {ref_table}.{ref_column}: {orphan!r}" in str(err)


def test_missing_nullable_foreign_key_is_not_an_orphan(tables):
    tables["pupils"].loc[0, "vo_school_id"] = None
    validate_cohort(tables)


def test_episode_ends_before_it_starts(tables):
    tables["episodes"].loc[1, "end_date"] = pd.Timestamp("2019-01-01")
    err = rejected(tables, "episodes", "end_date", [2])
    assert "(start_date=2019-11-04, end_date=2019-01-01)" in str(err)


def test_missing_end_for_observed_outcome(tables):
    tables["episodes"].loc[0, "end_date"] = None
    err = rejected(tables, "episodes", "end_date", [1])
    assert "missing end_date for an observed outcome: 'own_school'" in str(err)


@pytest.mark.parametrize("start", ["2020-05-01", "2019-09-30"])
def test_intervention_outside_episode(tables, start):
    tables["interventions"].loc[0, "start_date"] = pd.Timestamp(start)  # episode 1: 2019-10-01 to 2020-01-15
    err = rejected(tables, "interventions", "start_date", [1])
    assert start in str(err)


def test_intervention_pupil_differs_from_episode_pupil(tables):
    tables["interventions"].loc[1, "pupil_id"] = 101  # episode 2 is pupil 102's
    err = rejected(tables, "interventions", "pupil_id", [2])
    assert "(pupil_id=101, episode_id=2)" in str(err)


def test_impossible_durations(tables):
    tables["absence"].loc[4, ["sick_days", "luxury_days", "long_absence_days"]] = [150, 30, 30]
    err = rejected(tables, "absence", "enrolled_days", [5])
    assert "sick_days + luxury_days + long_absence_days exceed enrolled_days" in str(err)


def test_more_long_spells_than_reports(tables):
    tables["absence"].loc[12, ["sick_reports", "sick_long_spells"]] = [1, 2]
    rejected(tables, "absence", "sick_long_spells", [13])


def test_vo_year_above_six(tables):
    tables["absence"].loc[1, "grade"] = 7  # pupil 101 in VO
    rejected(tables, "absence", "grade", [2])


def test_absence_level_differs_from_school_level(tables):
    tables["absence"].loc[24, "level"] = "vo"  # pupil 113 in group 6 of a PO school
    err = rejected(tables, "absence", "level", [25])
    assert "(school_id='04AA00', level='vo')" in str(err)


def test_school_type_does_not_belong_to_level(tables):
    tables["schools"].loc[0, "school_type"] = "vo"
    rejected(tables, "schools", "school_type", [1])


@pytest.mark.parametrize(("column", "school"), [("po_school_id", "20VO00"), ("vo_school_id", "04AA00")])
def test_pupil_school_of_the_wrong_level(tables, column, school):
    tables["pupils"].loc[3, column] = school
    rejected(tables, "pupils", column, [4])


def test_followup_ends_before_an_episode_starts(tables):
    tables["pupils"].loc[9, "followup_end"] = pd.Timestamp("2021-01-01")  # pupil 110's episode starts 2021-09-06
    rejected(tables, "pupils", "followup_end", [10])


def test_episode_ends_after_followup_end(tables):
    tables["episodes"].loc[3, "end_date"] = pd.Timestamp("2022-05-01")  # pupil 110 moved away on 2022-03-01
    err = rejected(tables, "episodes", "end_date", [4])
    assert "end_date after the pupil's followup_end: (pupil_id=110, end_date=2022-05-01, followup_end=2022-03-01)" \
        in str(err)
    assert "expected an end_date on or before the pupil's followup_end" in str(err)


def test_episode_may_end_on_followup_end(tables):
    tables["episodes"].loc[3, "end_date"] = pd.Timestamp("2022-03-01")  # censored when the pupil moved away
    validate_cohort(tables)


def test_intervention_after_followup_end(tables):
    tables["pupils"].loc[2, "followup_end"] = pd.Timestamp("2021-07-31")  # pupil 103's episode 3 is open
    tables["interventions"].loc[2, "start_date"] = pd.Timestamp("2021-09-01")
    err = rejected(tables, "interventions", "start_date", [3])
    assert "(pupil_id=103, start_date=2021-09-01, followup_end=2021-07-31)" in str(err)


@pytest.mark.parametrize(("table", "column", "row", "value"), [
    ("episodes", "start_date", 1, "1900-01-01"),
    ("episodes", "start_date", 2, 5),  # Excel serial 5: 1900-01-05
    ("episodes", "end_date", 3, "2215-06-30"),
    ("pupils", "followup_end", 0, "1989-12-31"),
    ("interventions", "start_date", 3, "2102-01-01"),
])
def test_date_outside_the_plausible_range(tables, table, column, row, value):
    tables[table][column] = tables[table][column].astype(object)
    tables[table].loc[row, column] = value
    err = rejected(tables, table, column, [row + 1])
    assert "date(s) out of range" in str(err)
    assert "from 1990-01-01 to 2101-12-31" in str(err)


def test_dates_at_the_ends_of_the_range_are_valid(tables):
    tables["pupils"]["followup_start"] = pd.Timestamp("1990-01-01")
    tables["pupils"].loc[0, "followup_end"] = pd.Timestamp("2101-12-31")
    validate_cohort(tables)


MISSING_TEXT = ["NULL", "null", "NaN", "nan", "None", "NA", "N/A", "n/a", "#N/A", "<NA>", "NaT", "-", " n.v.t. "]


def _assert_refused_as_missing_text(tables, table, column, row, text):
    tables[table][column] = tables[table][column].astype(object)
    tables[table].loc[row, column] = text
    err = rejected(tables, table, column, [row + 1])
    assert f"text that means missing is not an identifier: {text!r}" in str(err)
    nullable = TABLES[table].column(column).nullable
    assert str(err).endswith("expected an identifier, or an empty cell where there is none" if nullable
                             else "expected an identifier in every row (the column may not be empty)")


@pytest.mark.parametrize("text", MISSING_TEXT)
def test_text_for_missing_is_not_an_identifier(tables, text):
    _assert_refused_as_missing_text(tables, "pupils", "vo_school_id", 2, text)  # nullable: an empty cell


@pytest.mark.parametrize(("table", "column", "row"), [
    ("schools", "region_id", 3), ("pupils", "po_school_id", 5), ("absence", "pupil_id", 17),
    ("interventions", "intervention_id", 1),
])
def test_text_for_missing_in_an_identifier_column_that_may_not_be_empty(tables, table, column, row):
    _assert_refused_as_missing_text(tables, table, column, row, "NULL")


def test_identifiers_that_only_contain_missing_text_are_valid(tables):
    tables["schools"]["region_id"] = ["NA1", "NULL-2", "NANA", "n.v.t.1", "-1x", "Nonet"]
    validate_cohort(tables)


def test_missing_and_unknown_tables(tables):
    del tables["interventions"]
    rejected(tables, "interventions", None)
    tables["interventions"], tables["leerlingen"] = empty_table("interventions"), tables["pupils"]
    rejected(tables, "leerlingen", None)


def test_not_a_dataframe(tables):
    tables["schools"] = tables["schools"].to_dict()
    rejected(tables, "schools", None)


def test_schema_error_pickles():
    err = SchemaError("absence", "grade", "value(s) out of range", [4, 9], "whole numbers", n_rows=7)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.table, copy.column, copy.rows, copy.n_rows, str(copy)) == ("absence", "grade", [4, 9], 7, str(err))
    assert str(err) == ("table 'absence', column 'grade': value(s) out of range at data row(s) 4, 9 "
                        "(and 5 more); expected whole numbers")


# -- generated corruptions --------------------------------------------------------------------

_WRONG_TYPE = {"id": 2.5, "int": "abc", "float": "abc", "bool": "maybe", "code": 3, "date": "not a date"}
_FACTORY = small_cohort()


def _corruptions(name: str, column) -> list[str]:
    """The corruptions that make ``column`` of table ``name`` invalid."""
    kinds = ["wrong_type"]
    if column.required:
        kinds.append("delete")
    if not column.nullable:
        kinds.append("null")
    if column.min is not None or column.max is not None:
        kinds.append("out_of_range")
    if column.kind == "code":
        kinds.append("unknown_code")
    if column.name in TABLES[name].key:
        kinds.append("duplicate_key")
    return kinds


_KINDS = ("delete", "wrong_type", "null", "out_of_range", "unknown_code", "duplicate_key")
_TARGETS = {kind: [(name, column) for name, table in TABLES.items() for column in table.columns
                   if column.name in _FACTORY[name].columns and kind in _corruptions(name, column)]
            for kind in _KINDS}
"""For each corruption, the (table, column) pairs it applies to."""


@st.composite
def corruption(draw):
    """A corruption, the table and column it is applied to, its row and another row (for duplicates)."""
    kind = draw(st.sampled_from(_KINDS))
    name, column = draw(st.sampled_from(_TARGETS[kind]))
    n_rows = len(_FACTORY[name])
    row = draw(st.integers(0, n_rows - 1))
    other = draw(st.integers(0, n_rows - 2))
    return name, column, kind, row, other + (other >= row)


def _corrupt(tables, name, column, kind, row, other) -> None:
    df = tables[name]
    if kind == "delete":
        del df[column.name]
        return
    if kind == "duplicate_key":
        key = list(TABLES[name].key)
        df.loc[row, key] = df.loc[other, key].to_numpy()
        return
    if kind == "wrong_type":
        value = _WRONG_TYPE[column.kind]
    elif kind == "out_of_range":
        value = column.max + 1 if column.max is not None else column.min - 1
    else:
        value = {"null": None, "unknown_code": "onbekend"}[kind]
    df[column.name] = df[column.name].astype(object)
    df.loc[row, column.name] = value


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(corruption())
def test_corrupted_cohort_is_rejected_naming_table_column_and_row(case):
    name, column, kind, row, other = case
    tables = small_cohort()
    _corrupt(tables, name, column, kind, row, other)
    with pytest.raises(SchemaError) as info:
        validate_cohort(tables)
    err = info.value
    assert err.table == name
    assert column.name in err.column.split(", ")
    assert f"table '{name}'" in str(err) and column.name in str(err)
    if kind != "delete":
        assert row + 1 in err.rows
        assert "data row(s)" in str(err)


@pytest.mark.slow
def test_fifteen_million_absence_rows_validate_in_seconds():
    import time

    n_pupils, years = 1_500_000, 10
    rng = np.random.default_rng(1)
    schools = pd.DataFrame({"school_id": [1, 2], "region_id": 1, "level": ["po", "vo"], "school_type": ["bo", "vo"],
                            "approach_start_year": None})
    pupil = np.repeat(np.arange(n_pupils), years)
    in_vo = np.tile(np.arange(years) >= 6, n_pupils)
    counts = {c: rng.integers(0, 3, len(pupil)) for c in ("sick_days", "sick_reports", "late_arrivals",
                                                          "luxury_days", "long_absence_days")}
    absence = pd.DataFrame({
        "pupil_id": pupil, "school_id": np.where(in_vo, 2, 1), "school_year": np.tile(np.arange(2010, 2020), n_pupils),
        "level": pd.Categorical.from_codes(in_vo.astype(int), ["po", "vo"]),
        "grade": np.where(in_vo, np.tile(np.arange(years), n_pupils) - 5, np.tile(np.arange(years), n_pupils) + 1),
        "enrolled_days": 190, **counts, "sick_long_spells": counts["sick_reports"] // 2,
        "unexcused_hours": rng.random(len(pupil)),
    })
    pupils = pd.DataFrame({"pupil_id": np.arange(n_pupils), "po_school_id": 1, "vo_school_id": 2, "cohort": 2010,
                           "sex": "F", "disadvantaged": False, "chronic_illness": False, "special_needs": False,
                           "vo_track": "vmbo", "followup_end": pd.Timestamp("2024-07-31")})
    tables = {"schools": schools, "pupils": pupils, "absence": absence,
              "episodes": empty_table("episodes"), "interventions": empty_table("interventions")}
    start = time.perf_counter()
    out = validate_cohort(tables, copy=False)
    assert time.perf_counter() - start < 10
    assert len(out["absence"]) == 15_000_000
