"""The ``verzuim`` command's first hour: ``--version``, flags in --help, warnings to a log."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import verzuimmodel
from cohort_factory import small_cohort
from verzuimmodel import _cli_log, cli, outputs
from verzuimmodel.cli import app
from verzuimmodel.cohort import Cohort
from verzuimmodel.errors import ConvergenceWarning

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parent.parent / "data" / "example"


# -- --version ------------------------------------------------------------------------------------


def test_version_prints_the_package_version():
    assert verzuimmodel.__version__ == importlib.metadata.version("verzuimmodel")
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"verzuimmodel {verzuimmodel.__version__}\n"
    assert result.stderr == ""


def test_version_from_the_installed_command():
    script = Path(sys.executable).with_name("verzuim")
    if not script.exists():
        pytest.skip("the verzuim script is not installed beside this Python")
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"verzuimmodel {verzuimmodel.__version__}\n"


# -- flags in --help ------------------------------------------------------------------------------


def _commands(command, path=()):
    """(path, click command) of the group ``command`` and of every command below it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_every_command_is_checked():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "simulate", "validate", "import", "mapping", "mapping template", "monitor", "calibrate", "diagnose",
            "power", "report"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "verzuim" for p, _ in COMMANDS])
def test_help_shows_flags_as_pairs_without_a_type(path, command):
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout
    ctx = typer.Context(command)
    flags = [p for p in command.get_params(ctx) if getattr(p, "is_flag", False)]
    assert any("--help" in p.opts for p in flags)
    for p in flags:
        if p.is_eager:                       # --help, --version: actions, not settings
            continue
        assert p.secondary_opts == [f"--no-{p.opts[0][2:]}"], p.opts
        row = next(line for line in result.stdout.splitlines() if re.match(rf"\W*{re.escape(p.opts[0])}\s", line))
        assert p.secondary_opts[0] in row, row


def test_boolean_flags_still_work(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_simulate", lambda scenario, seed: Cohort(**small_cohort()))
    printed = []
    monkeypatch.setattr(cli, "_calibration", printed.append)
    out = tmp_path / "c"
    result = runner.invoke(app, ["simulate", "--out", str(out), "--format", "csv", "--no-calibration"])
    assert result.exit_code == 0, result.output
    assert printed == [] and (out / "pupils.csv").is_file()
    result = runner.invoke(app, ["simulate", "--out", str(out), "--calibration", "--no-overwrite"])
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert printed == [] and (out / "pupils.csv").is_file()
    result = runner.invoke(app, ["simulate", "--out", str(out), "--calibration", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert len(printed) == 1 and (out / "pupils.parquet").is_file() and not (out / "pupils.csv").exists()


# -- warnings: a log in the output directory, a line per kind on stderr ------------------------------


def test_report_warnings_go_to_the_log(tmp_path):
    """The example export separates M@ZL from the outcome: the Cox fits warn."""
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "--data", str(EXAMPLE), "--out", str(out), "--no-pdf", "--n-sims", "0",
                                 "--lang", "en"])
    assert result.exit_code == 0, result.output
    log = (out / _cli_log.LOG_NAME).read_text(encoding="utf-8").splitlines()
    lines = log[1:]
    assert log[0].startswith("verzuim report: ")
    assert lines and all(re.fullmatch(r"verzuimmodel\.errors\.ConvergenceWarning at verzuimmodel/survival/"
                                      r"\w+\.py:\d+: CoxPH: the coefficient of '\w+' may be infinite .*", line)
                         for line in lines), log
    assert "mazl" in "\n".join(lines)
    assert str(tmp_path) not in "\n".join(log)
    summary = [line for line in result.stderr.splitlines() if "warning" in line]
    assert summary == [f"{len(lines)} convergence warning{'s' if len(lines) > 1 else ''}; details in "
                       f"{out / _cli_log.LOG_NAME}"]
    assert ".py:" not in result.stderr and "CoxPH(" not in result.stderr      # no source line
    assert _cli_log.LOG_NAME in outputs._owned_names(out)


def _warning_simulator(scenario, seed):
    warnings.warn("the fit did not converge", ConvergenceWarning)
    warnings.warn("a second fit did not converge", ConvergenceWarning)
    warnings.warn("division by zero", RuntimeWarning)
    return Cohort(**small_cohort())


def test_log_belongs_to_the_output(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_simulate", _warning_simulator)
    out = tmp_path / "c"
    result = runner.invoke(app, ["simulate", "--out", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    log = out / _cli_log.LOG_NAME
    assert result.stderr.splitlines()[-2:] == [f"2 convergence warnings; details in {log}",
                                               f"1 runtime warning; details in {log}"]
    text = log.read_text(encoding="utf-8")
    assert "ConvergenceWarning at test_cli_usability.py:" in text and "the fit did not converge" in text
    assert "RuntimeWarning at test_cli_usability.py:" in text and "division by zero" in text
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0      # the cohort reads as before
    monkeypatch.setattr(cli, "_simulate", lambda scenario, seed: Cohort(**small_cohort()))
    result = runner.invoke(app, ["simulate", "--out", str(out), "--overwrite"])   # the log does not block it
    assert result.exit_code == 0, result.output
    assert not log.exists() and "warning" not in result.stderr


def test_no_log_without_an_output_directory(tmp_path, monkeypatch, capsys):
    with _cli_log.captured_warnings("verzuim calibrate"):
        warnings.warn("CoxPH: the coefficient of 'mazl' may be infinite", ConvergenceWarning)
    assert capsys.readouterr().err == "1 convergence warning; CoxPH: the coefficient of 'mazl' may be infinite\n"
    assert list(tmp_path.iterdir()) == []


def test_no_log_after_bad_input(tmp_path, capsys):
    """Exit code 2: nothing was written, so ``--out`` (an earlier output) gets no log."""
    out = tmp_path / "c"
    with outputs.output_directory(out) as tmp:
        (tmp / "a.csv").write_text("x\n")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(typer.Exit), _cli_log.captured_warnings("verzuim simulate", out):
        warnings.warn("a warning", UserWarning)
        warnings.warn("another warning", UserWarning)
        raise typer.Exit(code=2)
    assert sorted(p.name for p in out.iterdir()) == before
    assert capsys.readouterr().err == "2 user warnings; the first: a warning\n"


def test_a_users_file_is_never_replaced(tmp_path, capsys):
    out = tmp_path / "run"
    with outputs.run_directory(out, names=["diagnosis.csv"]):
        pass
    (out / _cli_log.LOG_NAME).write_text("my notes\n")
    with _cli_log.captured_warnings("verzuim diagnose", out):
        warnings.warn("a fit warned", UserWarning)
    assert (out / _cli_log.LOG_NAME).read_text() == "my notes\n"
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warnings not logged: ") and "not replacing it" in err[0]
    assert err[1:] == ["1 user warning; a fit warned"]
    assert _cli_log.LOG_NAME not in outputs._owned_names(out)


@pytest.mark.parametrize(("category", "words"), [
    (ConvergenceWarning, "convergence"), (RuntimeWarning, "runtime"), (UserWarning, "user"), (Warning, "other"),
    (type("DegenerateDataWarning", (UserWarning,), {}), "degenerate data"),
    (type("HTTPWarning", (UserWarning,), {}), "http")])
def test_kind_of_warning_in_words(category, words):
    assert _cli_log.kind(category) == words
