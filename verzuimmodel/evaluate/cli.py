"""The ``verzuim diagnose`` and ``verzuim power`` commands (registered in :mod:`verzuimmodel.cli`).

::

    verzuim diagnose design.toml --sims 1000 --seed 1 --backend dask --scheduler tcp://host:8786 --out runs/sw
    verzuim diagnose design.toml --sims 1000 --warned exclude --out runs/sw      # measures without warned fits
    verzuim power design.toml --vary n_clusters=6,8,10,12 --sims 500 --seed 1 --out runs/sw-power

``diagnose`` writes ``diagnosis.csv`` (the tidy table), ``warnings.csv`` (per estimator and
warning type, the fits that raised it), ``diagnosis.png`` and keeps the replicates in
``replicates/`` (a Parquet dataset; running the same command again resumes or reuses it; with
another ``--warned`` it recomputes the measures from the stored replicates). When fits warned it
prints a note saying how many, of which types, and whether the measures include them.
``power`` writes ``power.csv`` and ``power.png`` (replicates under ``replicates/<point>/``).
Bad input (a bad design file, option or output directory) is one line ``error: ...`` on stderr
and exit code 2; result files are written to a temporary name and then renamed. The command's own
messages are in the language chosen with ``--lang`` (:mod:`verzuimmodel.i18n`); messages of the
design file's checks are English.

``--out`` is a run directory (:func:`verzuimmodel.outputs.run_directory`): new or empty, or the
directory of an earlier run, which is resumed (the same design and seed) or, with ``--overwrite``,
started afresh. A directory verzuimmodel did not write is never written into, and while a run
writes ``--out`` a second run on it is refused. Text cells of the CSV tables that a spreadsheet
would run as formulas are escaped (:func:`verzuimmodel.outputs.escape_formulas`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._cli_errors import bad_input
from ..i18n import InputError, Message, format_number, text
from ..outputs import run_directory, to_csv, write_file

__all__ = ["diagnose_command", "power_command"]

console = Console()
"""Results go to stdout; progress bars go to stderr."""

SHOWN = ["estimator", "n_sims", "n_failed", "n_warned", "n_used", "bias", "bias_mcse", "emp_se", "model_se",
         "coverage", "power"]


class BackendChoice(str, Enum):
    """Where the replicates run."""

    serial = "serial"
    processes = "processes"
    dask = "dask"


class WarnedChoice(str, Enum):
    """Whether fits that raised a warning count in the performance measures."""

    include = "include"
    exclude = "exclude"


DesignArgument = Annotated[Path, typer.Argument(help="Design file (TOML).", show_default=False)]
SimsOption = Annotated[int, typer.Option("--sims", help="Number of simulated replicates (per point).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed; replicate i uses stream i of SeedSequence(seed).")]
OutOption = Annotated[Path, typer.Option(
    "--out", help="Output directory: new or empty, or an earlier run's (resumed; another design or seed needs "
                  "--overwrite). Never a directory verzuimmodel did not write.")]
OverwriteOption = Annotated[bool, typer.Option(
    "--overwrite/--no-overwrite", help="Discard the earlier run in --out and start afresh (never a directory "
                                       "verzuimmodel did not write, or one to which other files were added).")]
BackendOption = Annotated[BackendChoice, typer.Option("--backend", help="Where the replicates run.")]
SchedulerOption = Annotated[str | None, typer.Option(
    "--scheduler", help="dask scheduler address, e.g. tcp://host:8786 (default: a local cluster).")]
WorkersOption = Annotated[int | None, typer.Option("--workers", help="Worker processes (default: CPUs).")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")]
WarnedOption = Annotated[WarnedChoice, typer.Option(
    "--warned", help="Whether fits that raised a warning (separation, no convergence, a boundary fit, ...) count in "
                     "the measures. 'exclude' conditions the measures on a fit not warning, which can itself bias "
                     "them; n_warned counts them either way.")]


RUN_NAMES = ("diagnosis.csv", "warnings.csv", "diagnosis.png", "power.csv", "power.png", "replicates", ".*.tmp-*")
"""What ``diagnose`` and ``power`` write into ``--out`` (with temporary files of killed runs)."""


def _run_dir(out: Path, overwrite: bool):
    """``--out`` as a locked run directory (a run written before the marker existed is recognised)."""
    def legacy(p: Path) -> bool:
        rep = p / "replicates"
        return rep.is_dir() and any((q / "diagnose.json").is_file() for q in [rep, *rep.iterdir()])

    return run_directory(out, overwrite, names=RUN_NAMES, legacy=legacy)


def _save_figure(fig, target: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        write_file(target, lambda p: fig.savefig(p, dpi=120, format="png"))
    finally:
        plt.close(fig)


def _table(df: pd.DataFrame, title: str) -> Table:
    table = Table(title=escape(title))
    for c in df.columns:
        table.add_column(str(c), justify="right" if pd.api.types.is_numeric_dtype(df[c]) else "left")
    for row in df.itertuples(index=False, name=None):
        table.add_row(*("" if pd.isna(v) else format_number(v, ".4g") if isinstance(v, float) else escape(str(v))
                        for v in row))
    return table


def _check_run(sims: int, seed: int, backend: BackendChoice, scheduler: str | None, workers: int | None) -> None:
    """The run options, checked before any output directory is made."""
    if sims < 1:
        raise InputError(Message("evaluate.bad_sims", got=sims))
    if seed < 0:
        raise InputError(Message("evaluate.bad_seed", got=seed))
    if scheduler is not None and backend is not BackendChoice.dask:
        raise InputError(Message("evaluate.scheduler_without_dask"))
    if workers is not None and workers < 1:
        raise InputError(Message("evaluate.bad_workers", got=workers))
    if workers is not None and backend is BackendChoice.serial:
        raise InputError(Message("evaluate.workers_serial"))
    if workers is not None and scheduler is not None:
        raise InputError(Message("evaluate.workers_scheduler"))


def _parse_vary(specs: list[str]) -> dict[str, list[Any]]:
    vary: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not items:
            raise InputError(Message("evaluate.bad_vary", spec=spec))
        if name in vary:
            raise InputError(Message("evaluate.vary_twice", name=name))
        vary[name] = [_value(v) for v in items]
    if not vary:
        raise InputError(Message("evaluate.no_vary"))
    return vary


def _value(text: str) -> Any:
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def diagnose_command(
    design_file: DesignArgument,
    out: OutOption,
    sims: SimsOption = 1000,
    seed: SeedOption = 1,
    backend: BackendOption = BackendChoice.serial,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    progress: ProgressOption = True,
    overwrite: OverwriteOption = False,
    warned: WarnedOption = WarnedChoice.include,
) -> None:
    """Diagnose a design: bias, SEs, coverage and power of its estimators over simulated replicates."""
    from . import Design, diagnose
    from .plots import plot_diagnosis

    with ExitStack() as locked:
        with bad_input():
            design = Design.from_toml(design_file)
            _check_run(sims, seed, backend, scheduler, workers)
            locked.enter_context(_run_dir(out, overwrite))
            diag = diagnose(design, n_sims=sims, seed=seed, backend=backend.value, scheduler=scheduler,
                            workers=workers, path=out / "replicates", progress=progress, warned=warned.value)
        tidy = diag.tidy()
        by_type = diag.warned_by_type()
        write_file(out / "diagnosis.csv", lambda p: to_csv(tidy, p))
        write_file(out / "warnings.csv", lambda p: to_csv(by_type, p))
        _save_figure(plot_diagnosis(tidy, level=1 - design.alpha), out / "diagnosis.png")
    keys = list(dict.fromkeys(design.targets.values()))
    console.print(_table(tidy[SHOWN], text("evaluate.diagnosis_title", name=design.name, sims=sims, n=len(keys),
                                           estimands=", ".join(keys))))
    for line in _warned_note(tidy, by_type, warned.value):
        console.print(escape(line))
    if len(diag.failures):
        typer.echo(text("evaluate.failed_fits", n=int(tidy["n_failed"].sum()),
                        error=str(diag.failures["error"].iloc[0])), err=True)
    console.print(escape(text("evaluate.written", files=", ".join(
        str(out / name) for name in ("diagnosis.csv", "warnings.csv", "diagnosis.png")))))


def _warned_note(tidy: pd.DataFrame, by_type: pd.DataFrame, warned: str) -> list[str]:
    """Lines saying which estimators' fits warned, of which types, and whether the measures count them
    (nothing when no fit warned)."""
    lines = []
    for row in tidy[tidy["n_warned"] > 0].itertuples(index=False):
        types = by_type[by_type["estimator"] == row.estimator]
        kinds = ", ".join(f"{t} {n}" for t, n in zip(types["warning_type"], types["n_warned"]))
        ok = row.n_sims - row.n_failed
        lines.append(text("evaluate.warned_note", estimator=row.estimator, n=int(row.n_warned), ok=int(ok),
                          kinds=kinds))
    if not lines:
        return []
    lines.append(text("evaluate.warned_included" if warned == "include" else "evaluate.warned_excluded"))
    return lines


def power_command(
    design_file: DesignArgument,
    out: OutOption,
    vary: Annotated[list[str], typer.Option(
        "--vary", help="Parameter and values, e.g. n_clusters=6,8,10,12 (repeat for a grid).")],
    sims: SimsOption = 500,
    seed: SeedOption = 1,
    target: Annotated[float, typer.Option("--target", help="Target power (a line in the plot).")] = 0.8,
    backend: BackendOption = BackendChoice.serial,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = None,
    progress: ProgressOption = True,
    overwrite: OverwriteOption = False,
    warned: WarnedOption = WarnedChoice.include,
) -> None:
    """Simulated power over a grid of design parameters (a power curve)."""
    from . import Design, power_curve
    from .plots import plot_power_curve

    with bad_input():
        design = Design.from_toml(design_file)
        grid = _parse_vary(vary)
        _check_run(sims, seed, backend, scheduler, workers)
        if not 0 < target < 1:
            raise InputError(Message("evaluate.bad_target", got=target))
        for combo in _points(grid):  # every point valid before any runs
            design.with_parameters(combo)
    with ExitStack() as locked:
        with bad_input():
            locked.enter_context(_run_dir(out, overwrite))
            table = power_curve(design, vary=grid, n_sims=sims, seed=seed, backend=backend.value,
                                scheduler=scheduler, workers=workers, path=out / "replicates", progress=progress,
                                warned=warned.value)
        write_file(out / "power.csv", lambda p: to_csv(table, p))
        _save_figure(plot_power_curve(table, target_power=target), out / "power.png")
    shown = [*grid, "estimator", "power", "power_mcse", "formula_power", "n_failed", "n_warned"]
    console.print(_table(table[shown], text("evaluate.power_title", name=design.name, sims=sims)))
    console.print(escape(text("evaluate.written", files=f"{out / 'power.csv'}, {out / 'power.png'}")))


def _points(grid: dict[str, list]) -> Iterator[dict]:
    import itertools

    for combo in itertools.product(*grid.values()):
        yield dict(zip(grid, combo))
