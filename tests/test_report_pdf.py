"""A missing or failing Chromium: a clear message, never a traceback.

Without Chromium nothing is written (exit 2, before any work). A Chromium that is there but does
not print leaves report.html (without report.pdf) and says what failed (exit 1). The browser is
found through ``VERZUIM_CHROMIUM``, pointed here at small fake executables.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verzuimmodel import report
from verzuimmodel.cli import app
from verzuimmodel.report.pdf import ChromiumNotFound, PdfError, print_pdf

from degenerate_data import base_cohort

runner = CliRunner()


def _executable(path: Path, script: str) -> Path:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def failing_chromium(tmp_path, monkeypatch) -> Path:
    """A 'Chromium' that complains on stderr and exits with code 3."""
    exe = _executable(tmp_path / "chromium-broken",
                      "echo 'starting' >&2\necho 'ERROR: Missing X server or $DISPLAY' >&2\nexit 3\n")
    monkeypatch.setenv("VERZUIM_CHROMIUM", str(exe))
    return exe


@pytest.fixture
def html(tmp_path) -> Path:
    page = tmp_path / "page.html"
    page.write_text("<!doctype html><title>t</title><p>hello</p>")
    return page


def test_print_pdf_names_the_failure(failing_chromium, html, tmp_path):
    with pytest.raises(PdfError, match=r"could not print the PDF \(exit code 3\): starting ERROR: Missing X server"):
        print_pdf(html, tmp_path / "out.pdf")


def test_print_pdf_without_output(tmp_path, html, monkeypatch):
    exe = _executable(tmp_path / "chromium-silent", "exit 0\n")
    monkeypatch.setenv("VERZUIM_CHROMIUM", str(exe))
    with pytest.raises(PdfError, match="it wrote no PDF"):
        print_pdf(html, tmp_path / "out.pdf")


def test_print_pdf_with_a_browser_that_cannot_start(tmp_path, html, monkeypatch):
    exe = tmp_path / "chromium-not-executable"
    exe.write_text("not a program")
    exe.chmod(0o644)
    monkeypatch.setenv("VERZUIM_CHROMIUM", str(exe))
    with pytest.raises(PdfError, match="could not be started"):
        print_pdf(html, tmp_path / "out.pdf")


def test_print_pdf_without_chromium(tmp_path, html, monkeypatch):
    monkeypatch.setenv("VERZUIM_CHROMIUM", str(tmp_path / "nowhere" / "chromium"))
    with pytest.raises(ChromiumNotFound, match="chromium not found"):
        print_pdf(html, tmp_path / "out.pdf")


@pytest.fixture(scope="module")
def cohort():
    return base_cohort()


def test_build_keeps_the_html_when_chromium_fails(cohort, failing_chromium, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(PdfError, match=r"report\.html written, report\.pdf not: chromium .* \(exit code 3\): start"):
        report.build(cohort, out=out, n_sims=0, progress=False, sections=["methods"])
    assert (out / report.HTML_NAME).is_file() and not (out / report.PDF_NAME).exists()
    assert "<html" in (out / report.HTML_NAME).read_text(encoding="utf-8")


def _stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_cli_failing_chromium_writes_the_html_and_says_why(cohort, failing_chromium, tmp_path):
    data = tmp_path / "cohort"
    cohort.to_parquet(data)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "--data", str(data), "--out", str(out), "--n-sims", "0"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in _stderr_lines(result) if line.startswith("error: ")]
    assert len(errors) == 1 and "report.pdf not" in errors[0] and "exit code 3" in errors[0], result.stderr
    stdout = "".join(result.stdout.split())          # rich wraps long paths
    assert stdout.startswith("Reportwritten:") and stdout.endswith(report.HTML_NAME)
    assert (out / report.HTML_NAME).is_file() and not (out / report.PDF_NAME).exists()


def test_cli_without_chromium_writes_nothing(tmp_path, monkeypatch, cohort):
    monkeypatch.setenv("VERZUIM_CHROMIUM", os.fspath(tmp_path / "nowhere" / "chromium"))
    data = tmp_path / "cohort"
    cohort.to_parquet(data)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "--data", str(data), "--out", str(out), "--n-sims", "0"])
    assert result.exit_code == 2, result.output
    lines = _stderr_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: chromium not found"), result.stderr
    assert "--no-pdf" in lines[0]
    assert not out.exists()
