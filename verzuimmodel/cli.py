"""The ``verzuim`` command.

::

    verzuim simulate --scenario default --seed 1 --out output/default [--format csv] [--calibration] [--overwrite]
    verzuim validate output/default
    verzuim import EXPORT --mapping koppeling.toml --out cohort [--format csv] [--overwrite]
    verzuim validate EXPORT --mapping koppeling.toml
    verzuim mapping template [--out koppeling.toml]            (all three: verzuimmodel.importing)
    verzuim calibrate --scenario default --seed 1
    verzuim calibrate --data output/default                   (one's own cohort against the same targets)
    verzuim monitor output/default --out monitor [--by region] [--overwrite]
    verzuim report --scenario default --seed 1 --out reports [--data DIR] [--lang en] [--overwrite]
    verzuim diagnose design.toml --out runs/d [--backend dask --scheduler tcp://host:8786] [--warned exclude]
    verzuim power design.toml --vary n_clusters=6,8,10 --out runs/p      (both: verzuimmodel.evaluate.cli)
    verzuim --version

Exit codes: 0 success; 1 ``calibrate`` found a solid calibration target out of range (in a simulated
cohort or in one's own, ``--data``), or
``report`` wrote report.html but not report.pdf (no Chromium, or it failed to print); 2 bad input
(invalid cohort, missing file, bad scenario, bad option, an output directory that may not be
written: nothing is written), reported as one line ``error: ...`` on stderr.

Messages are in Dutch or English (:mod:`verzuimmodel.i18n`): ``--lang nl|en`` before or after the
subcommand (``verzuim --lang nl validate DIR``, ``verzuim validate DIR --lang nl``), by default the
environment variable ``VERZUIM_LANG``, then the locale (Dutch if ``LC_ALL``, ``LC_MESSAGES`` or ``LANG``
starts with ``nl``). A validation error names the file and the row as the user's file numbers it.
``report --lang`` also chooses the report's language, which is Dutch unless a ``--lang`` is given.

Outputs (:mod:`verzuimmodel.outputs`) are written atomically, so bad input never leaves partial
files. ``--out`` must be a new or empty directory; an earlier output of the same kind is replaced
only with ``--overwrite``, and a directory verzuimmodel did not write (or one to which other files
were added) never. A second command writing the same ``--out`` at the same time is refused (exit 2).
Text cells of the CSV files that a spreadsheet would run as formulas are escaped.

Every boolean option is a pair, ``--calibration/--no-calibration``. A command's warnings (a fit that
did not converge, ...) are summarised on stderr as one line per kind and listed in ``verzuim.log``
in its output directory (:mod:`verzuimmodel._cli_log`).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import _cli_app
from ._cli_errors import bad_input, error_line
from .cohort import Cohort
from .i18n import InputError, LocalizedFileNotFoundError, Message, format_number, text
from .io import check_target, read_cohort, write_cohort
from .outputs import output_directory, to_csv

__all__ = ["app"]

app = _cli_app.Typer(            # flags shown without a type; every command's warnings logged
    name="verzuim",
    help="Simulate, validate and calibrate pupil cohorts for school absence research.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold pupil data
)

console = Console()
"""Results (tables) go to stdout."""

status_console = Console(stderr=True)
"""Progress spinners go to stderr, so stdout holds only results."""


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_cli_app.show_version, is_eager=True,
                                          help="Print the version of verzuimmodel and exit.")] = False,
) -> None:
    """Simulate, validate and calibrate pupil cohorts for school absence research."""


class OutputFormat(str, Enum):
    """File format of a written cohort."""

    parquet = "parquet"
    csv = "csv"


OverwriteOption = Annotated[bool, typer.Option(
    "--overwrite/--no-overwrite", help="Replace an earlier output of verzuimmodel in --out. A directory "
                                       "verzuimmodel did not write (or one to which other files were added) is "
                                       "never replaced.")]

ScenarioOption = Annotated[str, typer.Option(
    "--scenario", help="'default', 'national', the name of a scenario shipped with the package, or a .toml file.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the random number generator.")]


def _load_scenario(spec: str) -> Any:
    """The scenario ``spec``: ``default``, ``national``, another shipped name, or a TOML file."""
    from .simulate import Scenario

    return Scenario.load(spec)


def _simulate(scenario: Any, seed: int) -> Cohort:
    """Simulate a cohort, with a spinner."""
    from .simulate import simulate

    with status_console.status(text("cli.simulating")):
        return simulate(scenario, seed=seed)


def _frame_table(df: pd.DataFrame, title: str) -> Table:
    """A rich table of a DataFrame; numbers to 4 significant digits, booleans as yes/no (ja/nee), in the
    language of the messages."""
    table = Table(title=escape(title))
    for column in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[column]) and not pd.api.types.is_bool_dtype(df[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in df.itertuples(index=False, name=None):
        table.add_row(*(_cell(v) for v in row))
    return table


def _cell(value: Any) -> str:
    """A value as rich markup for a table cell."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return f"[green]{escape(text('cli.yes'))}[/green]" if value else f"[red]{escape(text('cli.no'))}[/red]"
    if isinstance(value, (float, np.floating)):
        return format_number(value, ".4g")
    if isinstance(value, (int, np.integer)):
        return format_number(value, ",")
    return escape(str(value))


def _counts_table(cohort: Cohort, title: str) -> Table:
    return _frame_table(cohort.summary(), title)


CALIBRATION_COLUMNS = ("target_id", "target", "low", "high", "simulated", "within_range", "use")
"""Columns of the calibration table that are printed."""


def _calibration(cohort: Cohort) -> pd.DataFrame:
    """The calibration table of a cohort (:func:`verzuimmodel.calibration.compare`), printed."""
    from .calibration import compare

    table = compare(cohort)
    shown = [c for c in (*CALIBRATION_COLUMNS, "strength") if c in table.columns]
    console.print(_frame_table(table[shown], text("cli.calibration_title")))
    return table


def _failed_solid(table: pd.DataFrame) -> pd.DataFrame:
    """Solid targets (column ``use``, or ``strength``) whose simulated value is outside their range.

    A target without a range (``within_range`` missing) cannot fail.
    """
    strength = table["use"] if "use" in table.columns else table["strength"]
    within = table["within_range"].astype("boolean").fillna(True).astype(bool)
    return table[(strength == "solid").to_numpy() & ~within.to_numpy()]


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(
        "--out", help="Directory to write the cohort to: new or empty (an earlier cohort: with --overwrite).")],
    scenario: ScenarioOption = "default",
    seed: SeedOption = 1,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="File format of the tables.")] = OutputFormat.parquet,
    calibration: Annotated[bool, typer.Option("--calibration/--no-calibration",
                                              help="Also print the calibration table.")] = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate a cohort and write it to a directory."""
    with bad_input():
        check_target(out, overwrite)  # before the long simulation
        loaded = _load_scenario(scenario)
    cohort = _simulate(loaded, seed)
    with bad_input(), status_console.status(text("cli.writing", path=str(out))):
        write_cohort(cohort, out, fmt=fmt.value, overwrite=overwrite)
    console.print(_counts_table(cohort, text("cli.cohort_written", path=str(out))))
    if calibration:
        _calibration(cohort)


MappingOption = Annotated[Path, typer.Option(
    "--mapping", help="Import mapping (TOML) of the export: see `verzuim mapping template` and data/README.md.")]


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Cohort directory or .xlsx workbook (with --mapping: the export).",
                                         show_default=False)],
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="Check a municipality's own export with this import mapping (nothing is written).")]
    = None,
) -> None:
    """Read and validate a cohort (or an export with --mapping); exit code 2 if it is invalid."""
    with bad_input(), status_console.status(text("cli.reading", path=str(path))):
        if mapping is None:
            cohort = read_cohort(path)
        else:
            from .importing import read_export

            cohort, log = read_export(path, mapping)
    if mapping is not None:
        console.print(_frame_table(log, text("cli.import_log_title")))
    console.print(_counts_table(cohort, str(path)))
    console.print(f"[green]{escape(text('cli.valid'))}[/green]")


@app.command("import")
def import_command(
    export: Annotated[Path, typer.Argument(help="The export: a folder with a file per table (CSV or Excel) or an "
                                                ".xlsx workbook with a sheet per table.", show_default=False)],
    mapping: MappingOption,
    out: Annotated[Path, typer.Option(
        "--out", help="Directory to write the cohort and import_log.csv to: new or empty (an earlier cohort: "
                      "with --overwrite).")],
    fmt: Annotated[OutputFormat, typer.Option("--format", help="File format of the tables.")] = OutputFormat.parquet,
    overwrite: OverwriteOption = False,
) -> None:
    """Import a municipality's own export with a mapping: write a validated cohort and a log of what was
    mapped, coerced and dropped (counts, never identifiers)."""
    from . import importing

    with bad_input(), status_console.status(text("cli.importing", path=str(export))):
        cohort, log = importing.import_export(export, mapping, out, fmt=fmt.value, overwrite=overwrite)
    console.print(_counts_table(cohort, text("cli.cohort_imported", path=str(out))))
    coerced = int(log.loc[log["action"].isin(["coerced", "code"]), "count"].sum())
    console.print(escape(text("cli.coerced", n=coerced, log=str(out / importing.LOG_FILE))))


mapping_app = _cli_app.Typer(help="Import mappings for `verzuim import` (see data/README.md).", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")


@mapping_app.command("template")
def mapping_template(
    out: Annotated[Path | None, typer.Option(
        "--out", help="File to write the template to (it must not exist); without --out it is printed.")] = None,
) -> None:
    """The Dutch import mapping template, to adapt to an export."""
    from . import importing

    if out is None:
        typer.echo(importing.template_text(), nl=False)
        return
    with bad_input():
        importing.write_template(out)
    console.print(escape(text("cli.template_written", path=str(out))))


@app.command()
def monitor(
    path: Annotated[Path, typer.Argument(help="Cohort directory or workbook (as `verzuim validate`).")],
    out: Annotated[Path, typer.Option(
        "--out", help="Directory for the monitor tables and charts: new or empty (an earlier monitor: with "
                      "--overwrite).")],
    by: Annotated[str, typer.Option("--by", help="'region', 'school' or 'all'.")] = "region",
    overwrite: OverwriteOption = False,
) -> None:
    """The quarterly thuiszitters monitor: stock and flow per quarter (CSV and charts). Counts under 10 are
    hidden, and so are the cells they could be worked out from; the tables of every --by on the same data
    are protected as one publication."""
    from .monitor import tables

    with bad_input():
        if by not in ("region", "school", "all"):
            raise InputError(Message("cli.bad_option", option="--by", got=repr(by),
                                     expected="'region', 'school', 'all'"))
        cohort = read_cohort(path)
        group = None if by == "all" else by
        with status_console.status(text("cli.counting")), output_directory(out, overwrite) as tmp:
            mt = tables(cohort, by=group)          # quarterly and durations protected together
            table, durations = mt.quarterly, mt.durations
            coded_table, coded_durations = mt.coded()      # hidden: "x"; does not apply: empty
            to_csv(coded_table, tmp / "quarterly.csv")
            to_csv(coded_durations, tmp / "durations.csv")
            if len(table):
                _monitor_charts(table, durations, tmp)
    if table.empty:
        what = Message("cli.no_episodes" if cohort.episodes.empty else "cli.no_monitored_case")
        console.print(escape(text("cli.monitor_empty", what=what, path=str(out))))
        return
    last = table.loc[table["quarter"] == table["quarter"].max(),
                     ["quarter", "group", "case_type", "stock_start", "inflow", "outflow", "stock_end", "turnover"]]
    counts = ["stock_start", "inflow", "outflow", "stock_end"]
    last[counts] = last[counts].astype(object).where(last[counts].notna(), "x")
    console.print(_frame_table(last, text("cli.last_quarter", path=str(out))))


def _monitor_charts(table: pd.DataFrame, durations: pd.DataFrame, folder: Path) -> None:
    """Stock and flow per case type, and the running durations of LRV, as PNG files in ``folder``."""
    import matplotlib.pyplot as plt

    from . import plotting

    for case in ("LRV", "LRV_3m", "AV", "5a"):
        fig = plotting.stock_flow(table, case)
        fig.savefig(folder / f"stock_flow_{case}.png", dpi=120)
        plt.close(fig)
    fig = plotting.running_durations(durations, "LRV")
    fig.savefig(folder / "durations_LRV.png", dpi=120)
    plt.close(fig)


@app.command()
def calibrate(
    scenario: Annotated[str | None, typer.Option(
        "--scenario", help="'default' (the default), 'national', the name of a scenario shipped with the package, "
                           "or a .toml file.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the random number generator (default 1).")]
    = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help=(
        "Average the figures over this many cohorts (streams of SeedSequence(seed)), with their Monte "
        "Carlo error: the scenario's calibration rather than one cohort's."))] = 1,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Compare this cohort (directory or .xlsx workbook, read and validated as `verzuim validate` "
                       "does) with the targets instead of simulating one.")] = None,
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="With --data: the data are a municipality's own export, read with this import "
                          "mapping (as `verzuim validate --mapping`; nothing is written).")] = None,
) -> None:
    """Simulate a cohort (or several), or read one's own (--data, an export with --mapping), and compare
    it with the calibration targets; exit code 1 if a solid target is out of range."""
    if data is not None:
        _calibrate_data(data, scenario, seed, seeds, mapping)
        return
    if mapping is not None:
        with bad_input():
            raise InputError(Message("cli.mapping_needs_data"))
    with bad_input():
        loaded = _load_scenario("default" if scenario is None else scenario)
    seed = 1 if seed is None else seed
    if seeds == 1:
        table = _calibration(_simulate(loaded, seed))
    else:
        from .calibration import compare_seeds

        with status_console.status(text("cli.simulating_many", n=seeds)):
            table = compare_seeds(loaded, n_seeds=seeds, seed=seed)
        shown = [c for c in (*CALIBRATION_COLUMNS, "mcse", "share_within") if c in table.columns]
        console.print(_frame_table(table[shown], text("cli.calibration_mean_title", n=seeds)))
    _exit_if_failed(table)


def _exit_if_failed(table: pd.DataFrame) -> None:
    """Exit with code 1, naming them on stderr, if solid targets are out of range."""
    failed = _failed_solid(table)
    if len(failed):
        typer.echo(text("cli.targets_out_of_range", n=len(failed), targets=", ".join(map(str, failed["target_id"]))),
                   err=True)
        raise typer.Exit(code=1)


def _calibrate_data(data: Path, scenario: str | None, seed: int | None, seeds: int, mapping: Path | None) -> None:
    """``calibrate --data``: one's own cohort (or export, with ``mapping``), read and validated as by
    ``validate``, against the targets."""
    from .calibration import compare

    with bad_input():
        given = [name for name, value in (("--scenario", scenario), ("--seed", seed)) if value is not None]
        if seeds != 1:
            given.append("--seeds")
        if given:
            raise InputError(Message("cli.not_with_data", option=given[0]))
        with status_console.status(text("cli.reading", path=str(data))):
            if mapping is None:
                cohort = read_cohort(data)
            else:
                from .importing import read_export

                cohort, _ = read_export(data, mapping)
        table = compare(cohort)             # the same table; the figures are the data's, not simulated
    shown = [c for c in (*CALIBRATION_COLUMNS, "strength") if c in table.columns]
    console.print(_frame_table(table[shown].rename(columns={"simulated": "observed"}),
                               text("cli.calibration_data_title", path=str(data))))
    _exit_if_failed(table)


# -- evaluation commands (code in verzuimmodel.evaluate.cli) --------------------------------------
from .evaluate.cli import diagnose_command, power_command  # noqa: E402

app.command("diagnose")(diagnose_command)
app.command("power")(power_command)


@app.command()
def report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(
        "--out", help="Directory for report.html and report.pdf (written atomically): new or empty (an earlier "
                      "report: with --overwrite).")] = Path("reports"),
    scenario: Annotated[str | None, typer.Option(
        "--scenario", help="Scenario to simulate ('default', 'national', a shipped name or a .toml file); with "
                           "--data, the design the diagnosis simulates. Default: 'default' without --data; with "
                           "--data, a scenario fitted to the data (regions like yours: Scenario.from_cohort), or "
                           "the data's own when they were simulated.")] = None,
    seed: SeedOption = 1,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Report on this cohort (directory or .xlsx workbook) instead of a simulated one.")] = None,
    lang: Annotated[str | None, typer.Option(
        "--lang", callback=_cli_app.remember_language, is_eager=True,
        help="Language of the report and of the messages: 'nl' or 'en'. Default: the --lang given before "
             "'report', else Dutch for the report (the messages: VERZUIM_LANG, then the locale).")] = None,
    n_sims: Annotated[int | None, typer.Option(
        "--n-sims", help="Simulated studies for the design diagnosis (0: no diagnosis).")] = None,
    section: Annotated[list[str] | None, typer.Option(
        "--section", help="Optional section to add: 'monitor' (quarterly monitor) or 'schools' (schools of at "
                          "least 10 pupils, by identifier). Repeat for both.")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also print report.pdf with headless Chromium.")] = True,
    backend: Annotated[str, typer.Option("--backend", help="Where the diagnosis runs: serial, processes or dask.")]
    = "processes",
    overwrite: OverwriteOption = False,
) -> None:
    """Write the effect report (HTML and PDF): return to school, the PO approach's effect, the quality of
    the evidence; counts under 10 hidden. Without Chromium, or if it fails to print, report.html is
    written all the same and the error says how to get the PDF (exit 1; --no-pdf leaves the PDF out)."""
    from . import report as _report

    lang = _cli_app.chosen_language(ctx) or "nl"     # checked by the command; the report is Dutch by default
    with bad_input():
        if backend not in ("serial", "processes", "dask"):
            raise InputError(Message("cli.bad_option", option="--backend", got=repr(backend),
                                     expected="'serial', 'processes', 'dask'"))
        if n_sims is not None and n_sims < 0:
            raise InputError(Message("cli.bad_n_sims", got=n_sims))
        extra = list(section or [])
        unknown = [s for s in extra if s not in _report.OPTIONAL_SECTIONS]
        if unknown:
            raise InputError(Message("cli.bad_option", option="--section", got=repr(unknown[0]),
                                     expected=", ".join(repr(s) for s in _report.OPTIONAL_SECTIONS)))
        if data is not None and not data.exists():
            raise LocalizedFileNotFoundError(Message("cli.data_not_found", path=str(data)))
        with _report.pdf_not_made() as missing:      # no Chromium, or it failed: the HTML is written all the same
            html = _report.build(data, scenario=scenario, seed=seed, lang=lang, out=out,
                                 n_sims=_report.DEFAULT_N_SIMS if n_sims is None else n_sims,
                                 sections=[*_report.DEFAULT_SECTIONS, *extra], pdf=pdf, backend=backend,
                                 progress=True, overwrite=overwrite)
    files = ", ".join(str(p) for p in (html, html.with_name(_report.PDF_NAME)) if p.exists())
    console.print(escape(text("cli.report_written", files=files)))
    if missing:
        typer.echo(error_line(missing[0]), err=True)
        raise typer.Exit(code=1)
