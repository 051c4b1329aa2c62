"""Build an effect report: cohort -> tidy results -> figures and text -> HTML (+ PDF), atomically."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import jinja2

from ..cohort import Cohort
from ..io import read_cohort
from ..outputs import check_output, output_directory
from .results import DEFAULT_N_SIMS, Results, collect
from .sections import context, messages

__all__ = ["build", "render_html", "SECTIONS", "DEFAULT_SECTIONS", "OPTIONAL_SECTIONS", "DEFAULT_N_SIMS",
           "HTML_NAME", "PDF_NAME", "PdfNotMadeWarning", "pdf_not_made"]

DEFAULT_SECTIONS = ("summary", "return", "approach", "quality", "methods", "glossary")
OPTIONAL_SECTIONS = ("monitor", "signal", "schools")
SECTIONS = ("summary", "return", "approach", "quality", "methods", *OPTIONAL_SECTIONS, "glossary")
"""Report sections in the order they appear. ``schools`` shows school identifiers (schools of at least
10 pupils only) and is therefore never included unless asked for. The glossary (``glossary``,
"Begrippen") comes last and is always included: it explains the technical words the other
sections use."""

HTML_NAME = "report.html"
PDF_NAME = "report.pdf"
PDF_MISSING = ("{html} written, " + PDF_NAME + " not: {reason}. To get the PDF, install Chromium (Debian: apt-get "
               "install chromium; or set VERZUIM_CHROMIUM to a Chromium or Chrome program) and build the report "
               "again, or open " + HTML_NAME + " in a browser and print it to PDF (A4). To leave the PDF out: "
               "pdf=False (verzuim report --no-pdf).")
"""The message of :class:`PdfNotMadeWarning`: what was written, why the PDF was not, how to get it."""
TEMPLATES = Path(__file__).resolve().parent / "templates"


class PdfNotMadeWarning(UserWarning):
    """``report.pdf`` was not made (no Chromium, or Chromium did not print); ``report.html`` was.

    The message says why and how to get the PDF. :func:`build` issues it once per report.
    """


@contextmanager
def pdf_not_made() -> Iterator[list[str]]:
    """Collect the :class:`PdfNotMadeWarning` messages issued in the block (other warnings go on as before).

    For a caller that says itself that the PDF is missing (the ``verzuim report`` command)::

        with pdf_not_made() as missing:
            html = build(...)
        if missing: ...          # missing[0]: why, and how to get the PDF
    """
    missing: list[str] = []
    show = warnings.showwarning

    def catch(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PdfNotMadeWarning):
            missing.append(str(message))
        else:
            show(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", PdfNotMadeWarning)
        warnings.showwarning = catch
        yield missing


def build(cohort: Cohort | str | os.PathLike | None = None, *, scenario: Any = None, seed: int = 1,
          lang: str = "nl", out: str | os.PathLike = "reports/", n_sims: int = DEFAULT_N_SIMS,
          sections: Sequence[str] | None = None, pdf: bool = True, backend: str = "processes",
          progress: bool = True, overwrite: bool = False) -> Path:
    """Write an effect report (``report.html`` and ``report.pdf``) to directory ``out``.

    Parameters
    ----------
    cohort : a Cohort, or a directory / workbook to read one from (:func:`verzuimmodel.read_cohort`).
        Default: simulate ``scenario`` with ``seed``.
    scenario : a Scenario, the name of a shipped scenario, or a scenario TOML file. Simulated when no
        cohort is given (default ``"default"``); with a cohort, the design the diagnosis simulates.
        Default: the cohort's own scenario when it is a simulated cohort, else one fitted to the
        cohort with :meth:`Scenario.from_cohort <verzuimmodel.simulate.scenario.Scenario.from_cohort>`:
        regions like the user's (as many schools and pupils, the same absence, long-term absence and
        roll-out of the approach) with the default true effects; the report says so.
    seed : seed of the simulated cohort and of the diagnosis.
    lang : ``"nl"`` (default) or ``"en"``.
    out : output directory, new or empty; written atomically and locked while the report is made
        (:func:`verzuimmodel.outputs.output_directory`): on any error it is left as it was (a new
        directory is not created), and a second build into it at the same time is refused.
    n_sims : replicates of the design diagnosis (``0`` leaves the diagnosis out).
    sections : the sections to include, from :data:`SECTIONS` (default :data:`DEFAULT_SECTIONS`);
        the glossary is always added.
    pdf : also print ``report.pdf`` with headless Chromium (``VERZUIM_CHROMIUM`` or ``chromium`` on
        PATH: :mod:`.pdf`). When Chromium is missing or does not print, the report is written all
        the same, without ``report.pdf``: see Returns.
    backend : where the diagnosis replicates run (``serial``, ``processes``, ``dask``).
    progress : show a progress bar on stderr.
    overwrite : replace an earlier report in ``out``. A directory verzuimmodel did not write, or
        one to which other files were added, is never replaced.

    Returns
    -------
    pathlib.Path
        The path of ``report.html`` in ``out`` (with its figures inside it). ``report.pdf`` is
        beside it (``path.with_name(PDF_NAME)``) when it was made. When ``pdf=True`` and it could
        not be made (no Chromium; Chromium failed, timed out or wrote nothing), the HTML is written
        all the same and a :class:`PdfNotMadeWarning` says that the PDF is missing, why, and how to
        get it (install Chromium and build again, or open the HTML in a browser and print it to
        PDF). A caller learns that the PDF is missing from that warning (:func:`pdf_not_made`
        collects it) or from ``path.with_name(PDF_NAME)`` not existing.

    Raises
    ------
    ValueError
        Unknown language or section, negative ``n_sims``, an invalid cohort (``SchemaError``) or scenario.
    FileNotFoundError
        The cohort path does not exist.
    FileExistsError
        ``out`` holds files that verzuimmodel did not write, or an earlier report and ``overwrite``
        is false (:class:`~verzuimmodel.outputs.OutputExistsError`).
    OSError
        Another process is writing ``out`` (:class:`~verzuimmodel.outputs.OutputLockedError`).
    """
    m = messages(lang)                                   # ValueError for an unknown language
    chosen = _sections(sections)
    if not isinstance(n_sims, int) or isinstance(n_sims, bool) or n_sims < 0:
        raise ValueError(f"n_sims: got {n_sims!r}; expected a whole number >= 0")
    out = Path(out)
    check_output(out, overwrite)
    data, design_scenario = _load(cohort, scenario, seed)     # bad input fails here, before any output
    missing = None
    with output_directory(out, overwrite) as tmp, \
            _progress(progress, m, n_sims if n_sims and set(chosen) & {"summary", "quality"} else 0) as bar:
        # out is locked while the analyses run: a second build into it fails at once
        results = collect(data, sections=chosen, design_scenario=design_scenario, n_sims=n_sims, seed=seed,
                          backend=backend, step=bar.step, advance=bar.advance)
        bar.step("figures")
        html = render_html(results, lang=lang, sections=chosen)
        bar.step("write")
        (tmp / HTML_NAME).write_text(html, encoding="utf-8")
        if pdf:
            bar.step("pdf")
            missing = _print(tmp / HTML_NAME, tmp / PDF_NAME)
        bar.step("done")
    if missing is not None:               # the HTML is the report all the same
        warnings.warn(PDF_MISSING.format(html=out / HTML_NAME, reason=missing), PdfNotMadeWarning, stacklevel=2)
    return out / HTML_NAME


def _print(html: Path, pdf: Path) -> str | None:
    """Print ``html`` to ``pdf``; None when printed, else why not (the PDF is then removed)."""
    from . import pdf as _pdf

    try:
        _pdf.print_pdf(html, pdf)
    except (_pdf.ChromiumNotFound, _pdf.PdfError) as e:
        pdf.unlink(missing_ok=True)
        return " ".join(str(e).split())
    return None


def render_html(results: Results, lang: str = "nl", sections: Sequence[str] = DEFAULT_SECTIONS) -> str:
    """The self-contained HTML of a report from its results (figures inline, no external resources).

    The glossary lists the terms the rest of the report uses: the page is rendered once without
    it, the terms are found in that text, and the page is rendered again with them.
    """
    from .. import __version__
    from .figures import figures
    from .glossary import glossary, visible_text

    m = messages(lang)
    chosen = _sections(sections)
    figs = figures(results, m, chosen)
    ctx = context(results, m, chosen, figs, __version__)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    template = env.get_template("report.html.j2")
    ctx["sec"]["glossary"] = {"terms": []}
    page = template.render(**ctx)
    ctx["sec"]["glossary"] = glossary(m, visible_text(page))
    return template.render(**ctx)


# -- helpers ------------------------------------------------------------------------------------

def _sections(sections: Sequence[str] | None) -> list[str]:
    if sections is None:
        return list(DEFAULT_SECTIONS)
    if isinstance(sections, str):
        sections = [sections]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown report section {unknown[0]!r}; expected some of {', '.join(SECTIONS)}")
    if not sections:
        raise ValueError(f"sections: expected at least one of {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if s in {*sections, "glossary"}]


def _scenario(spec: Any):
    from ..simulate import Scenario

    if spec is None or isinstance(spec, Scenario):
        return spec
    spec = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(spec, str):
        raise ValueError(f"scenario: expected a Scenario, a scenario name or a .toml file, got {type(spec).__name__}")
    return Scenario.load(spec)


def _load(cohort, scenario, seed: int) -> tuple[Cohort, Any]:
    """The cohort to report on and the scenario to diagnose its design with."""
    from ..schema import validate_cohort
    from ..simulate import simulate

    scen = _scenario(scenario)
    if cohort is None:
        scen = scen if scen is not None else _scenario("default")
        return simulate(scen, seed=seed), scen
    if isinstance(cohort, (str, os.PathLike)):
        data = read_cohort(cohort)                      # FileNotFoundError / SchemaError
    elif isinstance(cohort, Cohort):
        validate_cohort(cohort.tables, copy=True)     # SchemaError for an invalid cohort
        data = cohort
    else:
        raise ValueError(f"cohort: expected a vm.Cohort or a path to one, got {type(cohort).__name__}")
    return data, scen              # None: the cohort's own scenario, or one fitted to it (results.design_scenario)


class _Bar:
    """Progress of a report build: one step per analysis plus one per diagnosis replicate."""

    def __init__(self, progress, task, m):
        self.p, self.task, self.m = progress, task, m

    def step(self, name: str) -> None:
        if self.p is None:
            return
        key, _, detail = name.partition(":")
        label = self.m["progress"].get(key, key)
        if detail:
            label = f"{label} {self.m.label('estimators', detail)}"
        self.p.update(self.task, description=label)
        if key != "done":
            self.p.advance(self.task, 1)
        else:
            self.p.update(self.task, completed=self.p.tasks[0].total)

    def advance(self, n: int) -> None:
        if self.p is not None:
            self.p.advance(self.task, n)


@contextmanager
def _progress(show: bool, m, n_sims: int) -> Iterator[_Bar]:
    if not show:
        yield _Bar(None, None, m)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .results import approach_estimators

    steps = 11 + len(approach_estimators())
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=False) as p:
        task = p.add_task(m["progress"]["return"], total=steps + n_sims)
        yield _Bar(p, task, m)
