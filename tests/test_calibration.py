"""Calibration: the figures are computed as documented, and the default scenario hits its targets."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from verzuimmodel import calibration
from verzuimmodel.simulate import Scenario, simulate


@pytest.fixture(scope="module")
def cohort():
    return simulate(Scenario.default(), seed=1)


def figures(cohort) -> pd.Series:
    return calibration.compare(cohort).set_index("target_id")["simulated"]


def observed_pupil_years(cohort) -> float:
    p = cohort.pupils
    start = pd.to_datetime(p["cohort"].astype(str) + "-08-01")
    return ((p["followup_end"] - start).dt.days + 1).sum() / 365.0


def with_episodes(cohort, rows: list[dict]):
    """The cohort with its episodes replaced by ``rows`` (and no interventions)."""
    pupil = cohort.pupils["pupil_id"].iloc[0]
    school = cohort.pupils["po_school_id"].iloc[0]
    e = pd.DataFrame([{"episode_id": i + 1, "pupil_id": pupil, "school_id": school, **r} for i, r in enumerate(rows)])
    for c in ("start_date", "end_date"):
        e[c] = pd.to_datetime(e[c])
    return dataclasses.replace(cohort, episodes=e, interventions=cohort.interventions.iloc[0:0])


def test_default_scenario_is_calibrated():
    """Mean over 30 cohorts of the default region within range on every solid target.

    One region of 40 PO and 8 VO schools spreads widely between seeds on the national counts
    (see data/README.md), so the scenario's calibration is its mean over cohorts; the test also
    checks that the Monte Carlo error is small enough for the comparison to mean something.
    """
    tab = calibration.compare_seeds(Scenario.default(), n_seeds=30, seed=2024).set_index("target_id")
    solid = tab[tab["use"] == "solid"]
    assert len(solid) == 10
    assert solid["within_range"].all(), solid.loc[~solid["within_range"], ["simulated", "low", "high"]]
    assert (solid["mcse"] < (solid["high"] - solid["low"]) / 3).all()


def test_compare_table(cohort):
    tab = calibration.compare(cohort)
    assert list(tab.columns[:8]) == ["target_id", "quantity", "target", "low", "high", "simulated", "within_range",
                                     "use"]
    assert "mazl_effect_sick_days" not in set(tab["target_id"])      # an effect: no cohort speaks to it
    assert "nl_po_schools" not in set(tab["target_id"])              # national structure: not for one region
    row = tab.set_index("target_id").loc["po_extensive_sick"]
    assert row["within_range"] == (row["low"] <= row["simulated"] <= row["high"])
    assert tab["source"].str.len().gt(5).all()


def test_compare_works_without_simulation_metadata(cohort):
    real = dataclasses.replace(cohort, truth={}, scenario=None, seed=None)
    pd.testing.assert_series_equal(figures(real), figures(cohort))


def test_absence_figures_by_hand(cohort):
    a = cohort.absence
    f = figures(cohort)
    vo = a[a["level"] == "vo"]
    assert f["vo_medical_absence_rate"] == pytest.approx(vo["sick_days"].sum() / vo["enrolled_days"].sum())
    # bo pupil-years, full years, approach not running
    s = cohort.schools.set_index("school_id")
    start = s["approach_start_year"].reindex(a["school_id"]).to_numpy(dtype=float, na_value=np.inf)
    rows = ((a["level"] == "po") & (s["school_type"].reindex(a["school_id"]).to_numpy() == "bo")
            & (start > a["school_year"]) & (a["enrolled_days"] >= 152))
    ext = ((a["sick_days"] > 9) | (a["sick_reports"] > 4))[rows].mean()
    assert f["po_extensive_sick"] == pytest.approx(ext)


def test_mazl_window_probability(cohort):
    """Four short sick reports in a year: the chance that all four fall in one 12-week window is 0.3^4."""
    a = cohort.absence.copy()
    a["sick_reports"], a["sick_long_spells"] = 4, 0
    assert figures(dataclasses.replace(cohort, absence=a))["vmbo_mazl_criterion"] == pytest.approx(0.3**4)
    a["sick_reports"], a["sick_long_spells"] = 1, 1            # one long spell: in the window with chance 0.3
    assert figures(dataclasses.replace(cohort, absence=a))["vmbo_mazl_criterion"] == pytest.approx(0.3)


def test_national_counts_by_hand(cohort):
    scale = calibration.N_LEERPLICHTIG / observed_pupil_years(cohort)
    c = with_episodes(cohort, [
        # LRV of 60 days that ended: one 4w-3m episode
        {"episode_type": "LRV", "start_date": "2017-10-02", "end_date": "2017-12-01", "outcome": "own_school"},
        # LRV running from March 2018 to October 2019: beyond 3 months in school years 2017, 2018 and 2019
        {"episode_type": "LRV", "start_date": "2018-03-01", "end_date": "2019-10-01", "outcome": "other_school"},
        # 5a from June 2019 to September 2020: school years 2018, 2019, 2020
        {"episode_type": "5a", "start_date": "2019-06-01", "end_date": "2020-09-01", "outcome": "censored"},
    ])
    f = figures(c)
    assert f["nl_lrv_4w_3m"] == pytest.approx(1 * scale)
    assert f["nl_lrv_per_year"] == pytest.approx(3 * scale)
    assert f["nl_thuiszit_over_3m"] == pytest.approx(3 * scale)
    assert f["nl_5a_exemptions"] == pytest.approx(3 * scale)
    # pupil-years with any of them: 2017 (both LRVs), 2018, 2019, 2020 -> 4 distinct school years of one pupil
    assert f["nl_thuiszit_rate"] == pytest.approx(1000 * 4 / observed_pupil_years(cohort))


@pytest.mark.slow
def test_national_scenario_is_calibrated():
    """The national scenario (1.47 million pupils; about 30 s and 3 GB): every solid target in range."""
    tab = calibration.compare(simulate(Scenario.national(), seed=1)).set_index("target_id")
    solid = tab[tab["use"] == "solid"]
    assert len(solid) == 10 and solid["within_range"].all()


# -- verzuim calibrate --data: one's own cohort against the same targets ------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "data" / "example"


def _calibrate(monkeypatch, *args):
    from rich.console import Console
    from typer.testing import CliRunner

    from verzuimmodel import cli

    monkeypatch.setattr(cli, "console", Console(width=250))        # no table cell is wrapped
    return CliRunner().invoke(cli.app, ["calibrate", *args])


def test_calibrate_own_data_prints_its_figures_and_exits_on_solid_targets(monkeypatch):
    from verzuimmodel.io import read_cohort

    table = calibration.compare(read_cohort(EXAMPLE))
    result = _calibrate(monkeypatch, "--data", str(EXAMPLE))
    solid_out = table[(table["use"] == "solid") & (table["within_range"] == False)]  # noqa: E712 (NA is not out)
    assert len(solid_out)                       # the example region misses some national figures
    assert result.exit_code == 1, result.output
    assert result.stderr == (f"{len(solid_out)} solid calibration target(s) out of range: "
                             + ", ".join(solid_out["target_id"]) + "\n")
    assert "observed" in result.stdout and "simulated" not in result.stdout
    for row in table.itertuples():              # every figure, computed from the data, in its row
        line = next(line for line in result.stdout.splitlines() if f"│ {row.target_id} " in line)
        assert f"{row.simulated:.4g}" in line
    # nothing simulated: the printed figures are those of the data, not of a default region
    simulated = calibration.compare(simulate(Scenario.default(), seed=1)).set_index("target_id")["simulated"]
    line = next(line for line in result.stdout.splitlines() if "│ po_extensive_sick " in line)
    assert f"{simulated['po_extensive_sick']:.4g}" not in line


def test_calibrate_own_data_bad_input_exits_2(monkeypatch, tmp_path):
    cases = [(["--data", str(tmp_path / "nowhere")], "cohort not found"),
             (["--data", str(tmp_path)], "table 'schools': required table not found"),
             (["--data", str(EXAMPLE), "--seeds", "3"], "--seeds: not used with --data"),
             (["--data", str(EXAMPLE), "--scenario", "national"], "--scenario: not used with --data")]
    for args, message in cases:
        result = _calibrate(monkeypatch, *args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
        assert result.stdout == ""
