"""``verzuim diagnose`` and ``verzuim power``: outputs, resuming, and one-line errors with exit code 2."""

from __future__ import annotations

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from verzuimmodel.cli import app
from verzuimmodel.evaluate import cli as evaluate_cli
from verzuimmodel.evaluate.diagnose import DIAGNOSIS_COLUMNS

runner = CliRunner()

DESIGN = """name = "parallel, 8 schools"
estimators = ["cluster_means", "gee"]

[trial]
type = "parallel"
n_clusters = 8
cluster_size = 10
icc = 0.05
effect = 0.5
"""


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(evaluate_cli, "console", Console(width=250))


@pytest.fixture
def design_file(tmp_path):
    path = tmp_path / "design.toml"
    path.write_text(DESIGN)
    return path


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
    return lines[0]


def test_diagnose_writes_csv_and_png_and_resumes(design_file, tmp_path):
    out = tmp_path / "out"
    args = ["diagnose", str(design_file), "--sims", "12", "--seed", "2", "--out", str(out), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    tidy = pd.read_csv(out / "diagnosis.csv")
    assert list(tidy.columns) == DIAGNOSIS_COLUMNS and tidy["estimator"].tolist() == ["cluster_means", "gee"]
    assert (out / "diagnosis.png").read_bytes()[:4] == b"\x89PNG"
    assert "parallel, 8 schools" in result.stdout and "cluster_means" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [".verzuimmodel-output", "diagnosis.csv", "diagnosis.png",
                                                     "replicates", "warnings.csv"]
    assert "note:" not in result.stdout and pd.read_csv(out / "warnings.csv").empty    # no fit warned
    again = runner.invoke(app, [*args[:-1], "--backend", "processes", "--workers", "2", "--no-progress"])
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(pd.read_csv(out / "diagnosis.csv"), tidy)


RARE_DESIGN = """name = "rare events"
estimators = ["gee_logit"]

[trial]
type = "parallel"
n_clusters = 8
cluster_size = 10
icc = 0.05
effect = 0.5
outcome = "binary"
control_risk = 0.03
"""


def test_diagnose_counts_and_notes_warned_fits(tmp_path):
    from verzuimmodel.evaluate.diagnose import WARNED_COLUMNS

    path = tmp_path / "rare.toml"
    path.write_text(RARE_DESIGN)
    out = tmp_path / "out"
    args = ["diagnose", str(path), "--sims", "30", "--seed", "3", "--out", str(out), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    tidy = pd.read_csv(out / "diagnosis.csv").iloc[0]
    by_type = pd.read_csv(out / "warnings.csv")
    n_ok = tidy["n_sims"] - tidy["n_failed"]
    assert tidy["n_warned"] > 0 and tidy["n_used"] == n_ok                    # included by default
    assert list(by_type.columns) == WARNED_COLUMNS and (by_type["estimator"] == "gee_logit").all()
    assert by_type["n_warned"].max() <= tidy["n_warned"] <= by_type["n_warned"].sum()
    note = f"note: gee_logit: {tidy['n_warned']} of {n_ok} successful fits warned"
    assert note in result.stdout and "The measures include these fits" in result.stdout
    for kind, n in zip(by_type["warning_type"], by_type["n_warned"]):
        assert f"{kind} {n}" in result.stdout
    # the same replicates (read back, not rerun), measured without the warned fits
    excluded = runner.invoke(app, [*args, "--warned", "exclude"])
    assert excluded.exit_code == 0, excluded.output
    ex = pd.read_csv(out / "diagnosis.csv").iloc[0]
    assert ex["n_warned"] == tidy["n_warned"] and ex["n_used"] == n_ok - tidy["n_warned"]
    assert ex["mean_estimate"] != tidy["mean_estimate"]
    assert note in excluded.stdout and "The measures leave these fits out" in excluded.stdout
    bad = runner.invoke(app, [*args, "--warned", "bad"])
    assert bad.exit_code == 2 and "Invalid value for '--warned'" in bad.stderr


def test_power_writes_csv_and_png(design_file, tmp_path):
    out = tmp_path / "power"
    result = runner.invoke(app, ["power", str(design_file), "--vary", "n_clusters=6,10", "--sims", "10",
                                 "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "power.csv")
    assert table["n_clusters"].tolist() == [6, 6, 10, 10]
    assert {"power", "power_mcse", "formula_power"} <= set(table.columns)
    assert (out / "power.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("text, message", [
    (DESIGN.replace("icc = 0.05", 'icc = "low"'), "design key 'trial.icc': expected a number"),
    (DESIGN.replace("n_clusters = 8", "n_clusters = 3"), "design key 'trial.n_clusters'"),
    (DESIGN.replace('"gee"]', '"nope"]'), "unknown estimator 'nope'"),
    (DESIGN + "\n[extra]\nx = 1\n", "design key 'extra': unknown key"),
    ("estimators = [", "invalid TOML"),
])
def test_bad_design_file_exit_2(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    for cmd in (["diagnose", str(path)], ["power", str(path), "--vary", "n_clusters=6,8"]):
        line = error_line(runner.invoke(app, [*cmd, "--sims", "2", "--out", str(out), "--no-progress"]))
        assert message in line and "bad.toml" in line
        assert not out.exists()  # nothing written


@pytest.mark.parametrize("extra, message", [
    (["--sims", "0"], "n_sims"),
    (["--seed", "-1"], "seed"),
    (["--scheduler", "tcp://localhost:1"], "--scheduler: only used with --backend dask"),
    (["--backend", "processes", "--workers", "0"], "workers"),
    (["--backend", "dask", "--scheduler", "tcp://localhost:1", "--workers", "2"], "--workers: with --scheduler"),
])
def test_bad_options_exit_2(design_file, tmp_path, extra, message):
    result = runner.invoke(app, ["diagnose", str(design_file), "--out", str(tmp_path / "o"), "--no-progress", *extra])
    assert message in error_line(result)


def test_missing_design_file_and_bad_out(design_file, tmp_path):
    assert "design file not found" in error_line(
        runner.invoke(app, ["diagnose", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]))
    (tmp_path / "file").write_text("x")
    assert "not a directory" in error_line(
        runner.invoke(app, ["diagnose", str(design_file), "--out", str(tmp_path / "file"), "--sims", "2"]))


@pytest.mark.parametrize("vary, message", [
    ("n_clusters", "expected NAME=VALUE1,VALUE2"),
    ("n_clusters=", "expected NAME=VALUE1,VALUE2"),
    ("clusters=4,6", "trial parameter 'clusters': unknown"),
    ("n_clusters=8,2", "trial key 'n_clusters'"),
    ("icc=low", "trial key 'icc': expected a number"),
])
def test_power_bad_vary_exit_2(design_file, tmp_path, vary, message):
    out = tmp_path / "o"
    result = runner.invoke(app, ["power", str(design_file), "--vary", vary, "--sims", "2", "--out", str(out)])
    assert message in error_line(result)
    assert not out.exists()


# -- outputs: never destroy what the package did not write; one writer; formulas ------------------

def test_diagnose_never_writes_into_a_users_directory(design_file, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "diagnosis.csv").write_text("my own table\n")
    for extra in ([], ["--overwrite"]):
        line = error_line(runner.invoke(app, ["diagnose", str(design_file), "--sims", "2", "--out", str(out),
                                              "--no-progress", *extra]))
        assert str(out) in line and "did not write" in line
        assert [p.name for p in out.iterdir()] == ["diagnosis.csv"]
        assert (out / "diagnosis.csv").read_text() == "my own table\n"


def test_diagnose_another_run_in_the_same_directory_needs_overwrite(design_file, tmp_path):
    out = tmp_path / "out"
    args = ["diagnose", str(design_file), "--sims", "4", "--out", str(out), "--no-progress"]
    assert runner.invoke(app, [*args, "--seed", "1"]).exit_code == 0
    first = (out / "diagnosis.csv").read_bytes()
    line = error_line(runner.invoke(app, [*args, "--seed", "2"]))
    assert str(out / "replicates") in line and "--overwrite" in line
    assert (out / "diagnosis.csv").read_bytes() == first
    again = runner.invoke(app, [*args, "--seed", "2", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert (out / "diagnosis.csv").read_bytes() != first


def test_diagnose_second_writer_gets_a_clear_error(design_file, tmp_path):
    from verzuimmodel.outputs import output_lock

    out = tmp_path / "out"
    with output_lock(out):
        line = error_line(runner.invoke(app, ["diagnose", str(design_file), "--sims", "2", "--out", str(out),
                                              "--no-progress"]))
    assert str(out) in line and "another process" in line
    assert not out.exists()


@pytest.fixture
def formula_estimator():
    """cluster_means registered under a name a spreadsheet would run as a formula."""
    from verzuimmodel.effects import registry
    from verzuimmodel.evaluate import trials

    name = '=HYPERLINK("http://evil.example","x")'
    registry.register(name, estimand="effect", data="trial", scale="identity")(trials.cluster_means)
    yield name
    registry._REGISTRY.pop(name, None)


def test_diagnosis_csv_escapes_text_and_keeps_numbers(tmp_path, formula_estimator):
    import csv

    design = tmp_path / "design.toml"
    design.write_text(DESIGN.replace('"gee"]', "'" + formula_estimator + "']"))
    out = tmp_path / "out"
    result = runner.invoke(app, ["diagnose", str(design), "--sims", "6", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    with open(out / "diagnosis.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["estimator"] for r in rows] == ["cluster_means", "'" + formula_estimator]
    tidy = pd.read_csv(out / "diagnosis.csv")
    for column in ("bias", "emp_se", "coverage", "power", "n_sims"):
        assert pd.api.types.is_numeric_dtype(tidy[column]), column
    assert all(not r["bias"].startswith("'") for r in rows)
    negative = [r["bias"] for r in rows if float(r["bias"]) < 0]
    assert all(v.startswith("-") for v in negative)               # a negative number is written as a number
