"""The ``verzuim`` command: exit codes, one-line errors, and what it writes and prints."""

from __future__ import annotations

import dataclasses
import json
import re

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cohort_factory import N_PUPILS, small_cohort
from verzuimmodel import cli
from verzuimmodel.cli import app
from verzuimmodel.cohort import Cohort
from verzuimmodel.io import read_cohort, write_cohort
from verzuimmodel.schema import TABLES, validate_cohort

runner = CliRunner()


def error_line(result) -> str:
    """The one-line error of a run that failed on bad input (exit code 2)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output
    return lines[0]


def row_count(output: str, table: str) -> int:
    """The row count printed for ``table`` in a rich table of row counts."""
    match = re.search(rf"│ {table}\s+│\s+([\d,]+) │", output)
    assert match, output
    return int(match.group(1).replace(",", ""))


@pytest.fixture
def cohort_dir(tmp_path):
    return write_cohort(Cohort(**small_cohort()), tmp_path / "cohort", fmt="csv")


@pytest.fixture
def wide_console(monkeypatch):
    """Print results 250 characters wide, so no table cell is wrapped."""
    monkeypatch.setattr(cli, "console", Console(width=250))


# -- validate ---------------------------------------------------------------------------------


def test_validate_good_cohort(cohort_dir):
    result = runner.invoke(app, ["validate", str(cohort_dir)])
    assert result.exit_code == 0, result.output
    assert [row_count(result.stdout, name) for name in TABLES] == [6, N_PUPILS, 2 * N_PUPILS, 6, 4]
    assert result.stdout.splitlines()[-1] == "valid"
    assert result.stderr == ""


def test_validate_bad_cohort(cohort_dir):
    pupils = cohort_dir / "pupils.csv"
    pupils.write_text(pupils.read_text().replace(",vmbo,", ",mbo,", 1))
    assert error_line(runner.invoke(app, ["validate", str(cohort_dir)])) == (
        "error: table 'pupils' (pupils.csv), column 'vo_track': invalid value(s): 'mbo' at line 2; "
        "expected one of 'vmbo', 'havo', 'vwo'")            # data row 1 is line 2, under the header


def test_validate_cross_table_error(cohort_dir):
    interventions = cohort_dir / "interventions.csv"
    interventions.write_text(interventions.read_text().replace("I02,102,", "I02,101,"))
    line = error_line(runner.invoke(app, ["validate", str(cohort_dir)]))
    assert line.startswith("error: table 'interventions' (interventions.csv), column 'pupil_id': pupil differs "
                           "from the pupil of the episode: (pupil_id=101, episode_id=2) at line 3;")


def test_validate_missing_path(tmp_path):
    line = error_line(runner.invoke(app, ["validate", str(tmp_path / "nope")]))
    assert line == f"error: cohort not found: '{tmp_path / 'nope'}' does not exist"


def test_validate_missing_required_table(cohort_dir):
    (cohort_dir / "pupils.csv").unlink()
    line = error_line(runner.invoke(app, ["validate", str(cohort_dir)]))
    assert line.startswith("error: table 'pupils': required table not found; expected one of pupils.parquet")


def test_bad_option_is_a_usage_error(cohort_dir):
    result = runner.invoke(app, ["validate", "--strict", str(cohort_dir)])
    assert result.exit_code == 2
    assert "No such option: --strict" in result.output


def test_missing_argument_is_a_usage_error():
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_bad_format_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "c"), "--format", "xml"])
    assert result.exit_code == 2
    assert "'xml' is not one of 'parquet', 'csv'" in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "c").exists()


# -- simulate and calibrate (need the simulator) ----------------------------------------------


@pytest.fixture(scope="module")
def simulator():
    return pytest.importorskip("verzuimmodel.simulate")


@pytest.fixture(scope="module")
def default_cohort(simulator) -> Cohort:
    return simulator.simulate(simulator.Scenario.default(), seed=1)


def test_simulate_writes_the_seeded_cohort(tmp_path, simulator, default_cohort):
    out = tmp_path / "default"
    result = runner.invoke(app, ["simulate", "--scenario", "default", "--seed", "1", "--out", str(out),
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    back = read_cohort(out)
    expected = validate_cohort(default_cohort.tables)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(back, name), expected[name], obj=name)
        assert row_count(result.stdout, name) == len(expected[name])
    assert back.scenario == simulator.Scenario.default()
    assert back.seed == 1
    truth = json.loads((out / "truth.json").read_text())
    assert truth["po_approach_vo_rate_ratio"] == pytest.approx(default_cohort.truth["po_approach_vo_rate_ratio"])


def test_simulate_from_scenario_file(tmp_path, simulator, default_cohort):
    scenario = dataclasses.replace(simulator.Scenario.default(), name="kleiner")
    path = tmp_path / "kleiner.toml"
    scenario.to_toml(path)
    result = runner.invoke(app, ["simulate", "--scenario", str(path), "--seed", "1", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    back = read_cohort(tmp_path / "c")
    assert back.scenario == scenario
    assert len(back.absence) == len(default_cohort.absence)  # same parameters and seed


@pytest.mark.parametrize(("scenario", "toml", "message"), [
    ("nergens", None, "error: unknown scenario 'nergens'"),
    ("ontbreekt.toml", None, "error: scenario file not found"),
    ("kapot.toml", "population = [", "invalid TOML"),
    ("ongeldig.toml", "[population]\nn_regions = 0\n", "error: scenario key 'population.n_regions'"),
    ("onbekend.toml", "[population]\nn_scholen = 3\n", "error: scenario key 'population.n_scholen': unknown key"),
])
def test_simulate_bad_scenario(tmp_path, monkeypatch, simulator, scenario, toml, message):
    monkeypatch.chdir(tmp_path)
    if toml is not None:
        (tmp_path / scenario).write_text(toml)
    line = error_line(runner.invoke(app, ["simulate", "--scenario", scenario, "--out", "c"]))
    assert message in line
    assert not (tmp_path / "c").exists()


def test_simulate_does_not_replace_other_directories(tmp_path, simulator):
    (tmp_path / "notes.txt").write_text("keep me")
    line = error_line(runner.invoke(app, ["simulate", "--out", str(tmp_path)]))
    assert f"'{tmp_path}' holds files verzuimmodel did not write (notes.txt)" in line
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_simulate_never_replaces_a_real_export(tmp_path, simulator):
    """A directory holding a user's export (files named like the cohort tables) is never replaced,
    not even with --overwrite: only the package's own output (its marker) can be."""
    export = tmp_path / "export"
    export.mkdir()
    for name, df in small_cohort().items():
        df.to_csv(export / f"{name}.csv", index=False)
    before = {p.name: p.read_bytes() for p in export.iterdir()}
    for extra in ([], ["--overwrite"]):
        line = error_line(runner.invoke(app, ["simulate", "--out", str(export), "--format", "csv", *extra]))
        assert str(export) in line and "did not write" in line
        assert {p.name: p.read_bytes() for p in export.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_simulate_replaces_its_own_output_only_with_overwrite(tmp_path, default_cohort):
    out = write_cohort(default_cohort, tmp_path / "c", fmt="csv")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    line = error_line(runner.invoke(app, ["simulate", "--seed", "1", "--out", str(out)]))
    assert str(out) in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    result = runner.invoke(app, ["simulate", "--seed", "1", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "pupils.parquet").is_file() and not (out / "pupils.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_simulate_with_calibration(tmp_path, wide_console, default_cohort):
    from verzuimmodel.calibration import compare

    result = runner.invoke(app, ["simulate", "--seed", "1", "--out", str(tmp_path / "c"), "--calibration"])
    assert result.exit_code == 0, result.output
    assert "Calibration targets" in result.stdout
    for target_id in compare(default_cohort)["target_id"]:
        assert f"│ {target_id} " in result.stdout


def test_calibrate_exit_code_follows_solid_targets(wide_console, default_cohort):
    from verzuimmodel.calibration import compare

    table = compare(default_cohort)
    kind = table["use"] if "use" in table.columns else table["strength"]
    out_of_range = table[(kind == "solid") & (table["within_range"] == False)]  # noqa: E712 (NA is not out)
    result = runner.invoke(app, ["calibrate", "--scenario", "default", "--seed", "1"])
    assert result.exit_code == (1 if len(out_of_range) else 0), result.output
    for target_id in table["target_id"]:
        assert f"│ {target_id} " in result.stdout


def test_calibrate_fails_on_a_solid_target_out_of_range(monkeypatch, simulator):
    import verzuimmodel.calibration

    table = pd.DataFrame({
        "target_id": ["a", "b", "c", "d"], "quantity": "q", "target": 1.0, "low": 0.5, "high": 1.5,
        "simulated": [2.0, 2.0, 1.0, 3.0], "within_range": pd.array([False, False, True, pd.NA], dtype="boolean"),
        "use": ["solid", "prior", "solid", "solid"],
    })
    monkeypatch.setattr(cli, "_simulate", lambda scenario, seed: Cohort(**small_cohort()))
    monkeypatch.setattr(verzuimmodel.calibration, "compare", lambda cohort: table)
    result = runner.invoke(app, ["calibrate"])
    assert result.exit_code == 1
    assert result.stderr == "1 solid calibration target(s) out of range: a\n"
    monkeypatch.setattr(verzuimmodel.calibration, "compare", lambda cohort: table.iloc[1:])
    assert runner.invoke(app, ["calibrate"]).exit_code == 0
