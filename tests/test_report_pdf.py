"""A missing or failing Chromium: the HTML all the same, and a clear message, never a traceback.

Without Chromium, or with one that does not print, the report is written as report.html (with its
figures) and without report.pdf; ``build`` returns the HTML's path and warns
(:class:`~verzuimmodel.report.PdfNotMadeWarning`) why the PDF is missing and how to get it; the
command says so on stderr (exit 1). The browser is found through ``VERZUIM_CHROMIUM``, pointed
here at a missing path and at small fake executables.
"""

from __future__ import annotations

import re
import stat
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verzuimmodel import report
from verzuimmodel.cli import app
from verzuimmodel.report import PdfNotMadeWarning, pdf_not_made
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


@pytest.fixture
def no_chromium(tmp_path, monkeypatch) -> Path:
    """The browser lookup pointed at an executable that does not exist."""
    missing = tmp_path / "nowhere" / "chromium"
    monkeypatch.setenv("VERZUIM_CHROMIUM", str(missing))
    return missing


def test_print_pdf_without_chromium(tmp_path, html, no_chromium):
    where = re.escape(str(no_chromium))
    with pytest.raises(ChromiumNotFound, match=rf"chromium not found: .*VERZUIM_CHROMIUM names '{where}'"):
        print_pdf(html, tmp_path / "out.pdf")


@pytest.fixture(scope="module")
def cohort():
    return base_cohort()


HOW_TO_GET_IT = ("install Chromium (Debian: apt-get install chromium",
                 "open report.html in a browser and print it to PDF")


def _html_with_figures(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', text)) >= 1


@pytest.mark.parametrize("browser", ["failing_chromium", "no_chromium"])
def test_build_writes_the_html_and_warns_when_the_pdf_cannot_be_made(cohort, tmp_path, browser, request):
    request.getfixturevalue(browser)
    out = tmp_path / "r"
    with pytest.warns(PdfNotMadeWarning) as caught:
        html = report.build(cohort, out=out, n_sims=0, progress=False, sections=["monitor"])
    assert html == out / report.HTML_NAME and not (out / report.PDF_NAME).exists()
    _html_with_figures(html)                                   # the stock-and-flow chart is in it
    message = " ".join(str(caught[0].message).split())
    why = r"chromium \(.*\) could not print the PDF \(exit code 3\): start" if browser == "failing_chromium" \
        else "chromium not found"
    assert re.search(rf"report\.html written, report\.pdf not: {why}", message), message
    assert all(h in message for h in HOW_TO_GET_IT), message
    assert sorted(p.name for p in out.iterdir()) == [".verzuimmodel-output", report.HTML_NAME]


def test_pdf_not_made_collects_only_its_warning(cohort, tmp_path, no_chromium):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pdf_not_made() as missing:
            warnings.warn("an unrelated warning", UserWarning)
            report.build(cohort, out=tmp_path / "r", n_sims=0, progress=False, sections=["monitor"])
    assert len(missing) == 1 and "chromium not found" in missing[0]
    assert [str(w.message) for w in seen] == ["an unrelated warning"]            # passed on, not swallowed
    assert not list(tmp_path.glob("r/*.pdf"))


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
    assert all(h in errors[0] for h in HOW_TO_GET_IT) and "--no-pdf" in errors[0]
    stdout = "".join(result.stdout.split())          # rich wraps long paths
    assert stdout.startswith("Reportwritten:") and stdout.endswith(report.HTML_NAME)
    assert (out / report.HTML_NAME).is_file() and not (out / report.PDF_NAME).exists()


def test_cli_without_chromium_writes_the_html_and_says_how_to_get_the_pdf(tmp_path, no_chromium, cohort):
    data = tmp_path / "cohort"
    cohort.to_parquet(data)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["report", "--data", str(data), "--out", str(out), "--n-sims", "0",
                                 "--section", "monitor"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in _stderr_lines(result) if line.startswith("error: ")]
    assert len(errors) == 1 and "report.pdf not: chromium not found" in errors[0], result.stderr
    assert all(h in errors[0] for h in HOW_TO_GET_IT) and "--no-pdf" in errors[0]
    assert not [line for line in _stderr_lines(result) if "pdf not made" in line.lower()]     # said once
    _html_with_figures(out / report.HTML_NAME)
    assert not (out / report.PDF_NAME).exists()
