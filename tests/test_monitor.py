"""The quarterly monitor: stock and flow reconcile exactly and match direct counts."""

import pandas as pd
import pytest

import verzuimmodel as vm
from verzuimmodel.cohort import Cohort
from verzuimmodel.monitor import CASE_TYPES, monitored_episodes, quarterly, running_durations
from verzuimmodel.schema import empty_table


@pytest.fixture(scope="module")
def cohort():
    return vm.simulate(vm.Scenario.default(), seed=3)


def hand_made(episodes: list[tuple]) -> Cohort:
    """One region, one PO school, one pupil per episode (episode_type, start, end or None, outcome)."""
    schools = pd.DataFrame({"school_id": [1], "region_id": [1], "level": ["po"], "school_type": ["bo"],
                            "approach_start_year": [None]})
    n = len(episodes)
    pupils = pd.DataFrame({"pupil_id": range(1, n + 1), "po_school_id": 1, "vo_school_id": None, "cohort": 2015,
                           "sex": "F", "disadvantaged": False, "chronic_illness": False, "special_needs": False,
                           "vo_track": None, "followup_end": pd.Timestamp("2021-12-31")})
    e = pd.DataFrame([{"episode_id": i + 1, "pupil_id": i + 1, "school_id": 1, "episode_type": t,
                       "start_date": pd.Timestamp(s), "end_date": pd.Timestamp(b) if b else pd.NaT, "outcome": o}
                      for i, (t, s, b, o) in enumerate(episodes)])
    return Cohort(schools, pupils, empty_table("absence"), e, empty_table("interventions"))


def test_reconciles_exactly(cohort):
    q = quarterly(cohort, min_count=0)
    assert (q["stock_end"] == q["stock_start"] + q["inflow"] - q["outflow"]).all()
    g = q.groupby(["group", "case_type"])
    assert (g["stock_start"].shift(-1).dropna() == q.loc[g["stock_start"].shift(-1).notna(), "stock_end"]).all()
    outcome_cols = [c for c in q.columns if c.startswith("outflow_")]
    assert (q[outcome_cols].sum(axis=1) == q["outflow"]).all()
    assert set(q["case_type"]) == set(CASE_TYPES)


def test_matches_direct_counts(cohort):
    q = quarterly(cohort, by=None, min_count=0)
    e = cohort.episodes
    last = cohort.pupils["followup_end"].max()
    for quarter in ("2019Q4", "2022Q1", "2024Q3"):
        q0 = pd.Period(quarter).start_time
        q1 = q0 + pd.offsets.QuarterBegin(startingMonth=1)
        lrv = e[e["episode_type"] == "LRV"]
        a = lrv["start_date"] + pd.Timedelta(days=28)
        running_at_end = lrv["outcome"].eq("censored") & (lrv["end_date"] >= last)
        b = lrv["end_date"].where(~lrv["outcome"].eq("censored"), lrv["end_date"] + pd.Timedelta(days=1))
        b = b.where(~running_at_end, pd.Timestamp.max)
        ok = a < b
        row = q[(q["quarter"] == quarter) & (q["case_type"] == "LRV")].iloc[0]
        assert row["stock_end"] == ((a < q1) & (b >= q1) & ok).sum()
        assert row["inflow"] == ((a >= q0) & (a < q1) & ok).sum()
        assert row["outflow"] == ((b >= q0) & (b < q1) & ok).sum()


def test_quarter_boundaries():
    c = hand_made([
        ("AV", "2020-01-01", "2020-04-01", "own_school"),    # starts on a quarter's first day, ends on the next's
        ("AV", "2019-12-31", "2020-01-01", "other_school"),  # one day, ends on the first day of 2020Q1
        ("5a", "2020-03-31", None, "censored"),              # still running at the end of the data
        ("LRV", "2019-12-04", "2020-06-30", "work"),          # counts as LRV > 4 weeks from 2020-01-01
        ("LRV", "2020-02-01", "2020-02-20", "own_school"),    # ended before 4 weeks: never an LRV case
    ])
    q = quarterly(c, by=None, min_count=0).set_index(["case_type", "quarter"])
    av = q.loc["AV"]
    assert av.loc["2019Q4", ["stock_start", "inflow", "outflow", "stock_end"]].tolist() == [0, 1, 0, 1]
    assert av.loc["2020Q1", ["stock_start", "inflow", "outflow", "stock_end"]].tolist() == [1, 1, 1, 1]
    assert av.loc["2020Q2", ["stock_start", "inflow", "outflow", "stock_end"]].tolist() == [1, 0, 1, 0]
    assert av.loc["2020Q1", "turnover"] == 1.0
    lrv = q.loc["LRV"]
    assert lrv.loc["2020Q1", ["inflow", "stock_end"]].tolist() == [1, 1]
    assert lrv.loc["2020Q2", ["outflow", "outflow_work", "stock_end"]].tolist() == [1, 1, 0]
    assert lrv["inflow"].sum() == 1
    fivea = q.loc["5a"]
    assert fivea["outflow"].sum() == 0 and fivea.loc["2021Q4", "stock_end"] == 1


def test_recurrence_and_outcome_share(cohort):
    q = quarterly(cohort, by=None, min_count=0)
    assert q["recurrent_inflow"].sum() > 0
    assert (q["recurrent_inflow"] <= q["inflow"]).all()
    s = q["outcome_within_3m"].dropna()
    assert ((s >= 0) & (s <= 1)).all() and len(s) > 10
    assert q.groupby("case_type")["outcome_within_3m"].apply(lambda x: x.iloc[-1]).isna().all()  # too recent


def test_disclosure_control(cohort):
    q = quarterly(cohort)
    from verzuimmodel.monitor.stock import COUNT_COLUMNS

    values = q[COUNT_COLUMNS].stack().dropna()
    assert len(values) > 100
    assert not ((values > 0) & (values < 10)).any()
    d = running_durations(cohort)
    assert not ((d["count"].dropna() > 0) & (d["count"].dropna() < 10)).any()


def test_running_durations_add_up_to_the_stock(cohort):
    q = quarterly(cohort, by=None, min_count=0).set_index(["quarter", "case_type"])["stock_end"]
    d = running_durations(cohort, by=None, min_count=0).groupby(["quarter", "case_type"])["count"].sum()
    common = d.index.intersection(q.index)
    assert len(common) > 20
    assert (d[common] == q[common]).all()


def test_bad_grouping():
    with pytest.raises(ValueError, match="by: got 'province'"):
        monitored_episodes(hand_made([("AV", "2020-01-01", None, "censored")]), by="province")


def test_cli_monitor_writes_tables_and_charts(tmp_path):
    from typer.testing import CliRunner

    from verzuimmodel.cli import app

    cohort_dir = tmp_path / "cohort"
    vm.simulate(vm.Scenario.default(), seed=1).to_parquet(cohort_dir)
    runner = CliRunner()
    r = runner.invoke(app, ["monitor", str(cohort_dir), "--out", str(tmp_path / "mon"), "--by", "all"])
    assert r.exit_code == 0, r.output
    q = pd.read_csv(tmp_path / "mon" / "quarterly.csv", na_values=["x"])
    counts = q[["stock_start", "inflow", "outflow", "stock_end"]].stack()
    assert len(counts) > 50 and not ((counts > 0) & (counts < 10)).any()
    # hidden cells are written "x", cells that do not apply (a share of nothing) are empty
    text = pd.read_csv(tmp_path / "mon" / "quarterly.csv", dtype=str, keep_default_na=False)
    mt = vm.monitor.tables(vm.simulate(vm.Scenario.default(), seed=1), by=None)
    assert mt.hidden.to_numpy().sum() > 20 and ((text == "x").to_numpy() == mt.hidden.to_numpy()).all()
    does_not_apply = mt.quarterly.isna().to_numpy() & ~mt.hidden.to_numpy()
    assert does_not_apply.any() and (text.to_numpy()[does_not_apply] == "").all()
    durations = pd.read_csv(tmp_path / "mon" / "durations.csv", dtype=str, keep_default_na=False)
    assert ((durations["count"] == "x").to_numpy() == mt.durations_hidden.to_numpy()).all()
    assert (tmp_path / "mon" / "stock_flow_LRV.png").stat().st_size > 1000
    assert "pupil_id" not in q.columns
    bad = runner.invoke(app, ["monitor", str(cohort_dir), "--out", str(tmp_path / "x"), "--by", "province"])
    assert bad.exit_code == 2 and "--by" in bad.output
    # an existing directory that verzuimmodel did not write is never replaced
    clash = runner.invoke(app, ["monitor", str(cohort_dir), "--out", str(cohort_dir)])
    assert clash.exit_code == 2 and (cohort_dir / "pupils.parquet").exists()


# -- outputs: never destroy what the package did not write; formulas; no episodes -----------------

def _no_episodes() -> Cohort:
    """A valid cohort without episodes or interventions."""
    from cohort_factory import small_cohort

    from verzuimmodel.schema import validate_cohort

    t = small_cohort()
    t["episodes"], t["interventions"] = empty_table("episodes"), empty_table("interventions")
    return Cohort(**validate_cohort(t))


def _monitor(*args):
    from typer.testing import CliRunner

    from verzuimmodel.cli import app

    return CliRunner().invoke(app, ["monitor", *map(str, args)])


def _error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


def test_cli_monitor_reruns_replace_only_its_own_output_with_overwrite(tmp_path):
    data = hand_made([("AV", "2020-01-01", "2020-04-01", "own_school")]).to_parquet(tmp_path / "cohort")
    out = tmp_path / "mon"
    assert _monitor(data, "--out", out).exit_code == 0
    first = (out / "quarterly.csv").read_bytes()
    line = _error_line(_monitor(data, "--out", out))                 # a rerun must ask
    assert str(out) in line and "--overwrite" in line
    (out / "aantekeningen.docx").write_bytes(b"mijn notities")
    line = _error_line(_monitor(data, "--out", out, "--overwrite"))  # a user's own file: never replaced
    assert "aantekeningen.docx" in line
    assert (out / "aantekeningen.docx").read_bytes() == b"mijn notities"
    assert (out / "quarterly.csv").read_bytes() == first
    (out / "aantekeningen.docx").unlink()
    assert _monitor(data, "--out", out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort", "mon"]


def test_cli_monitor_second_writer_gets_a_clear_error(tmp_path):
    from verzuimmodel.outputs import output_lock

    data = hand_made([("AV", "2020-01-01", "2020-04-01", "own_school")]).to_parquet(tmp_path / "cohort")
    out = tmp_path / "mon"
    with output_lock(out):
        line = _error_line(_monitor(data, "--out", out))
    assert str(out) in line and "another process" in line
    assert not out.exists()


def test_cli_monitor_escapes_formulas_in_its_csv(tmp_path):
    import csv

    c = hand_made([("AV", "2020-01-01", "2020-04-01", "own_school")] * 12)
    evil = '=HYPERLINK("http://evil.example","klik")'
    c = Cohort(c.schools.assign(region_id=evil), c.pupils, c.absence, c.episodes, c.interventions)
    data = c.to_csv(tmp_path / "cohort")
    assert _monitor(data, "--out", tmp_path / "mon", "--by", "region").exit_code == 0
    with open(tmp_path / "mon" / "quarterly.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["group"] for r in rows} == {"'" + evil}
    av = [r for r in rows if r["case_type"] == "AV" and r["quarter"] == "2020Q1"][0]
    assert av["inflow"] == "12" and av["outflow"] == "0"            # numbers stay numbers
    with open(tmp_path / "mon" / "durations.csv", newline="", encoding="utf-8") as f:
        assert {r["group"] for r in csv.DictReader(f)} == {"'" + evil}


def test_quarterly_and_durations_without_episodes_are_empty_tables(cohort):
    empty = _no_episodes()
    q, d = quarterly(empty), running_durations(empty)
    assert list(q.columns) == list(quarterly(cohort).columns) and len(q) == 0
    assert list(d.columns) == list(running_durations(cohort).columns) and len(d) == 0
    assert list(quarterly(empty, by=None, min_count=0).columns) == list(q.columns)


def test_cli_monitor_without_episodes(tmp_path):
    data = _no_episodes().to_parquet(tmp_path / "cohort")
    r = _monitor(data, "--out", tmp_path / "mon")
    assert r.exit_code == 0, r.output
    assert "no episodes in the data" in r.stdout and "Traceback" not in r.output
    q = pd.read_csv(tmp_path / "mon" / "quarterly.csv")
    assert len(q) == 0 and list(q.columns) == list(quarterly(_no_episodes()).columns)
    assert len(pd.read_csv(tmp_path / "mon" / "durations.csv")) == 0
