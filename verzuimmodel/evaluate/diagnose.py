"""Diagnose a design: run its estimators on many simulated replicates and summarise their performance.

::

    diag = vm.diagnose(design, n_sims=1000, seed=1, backend="processes", path="runs/sw12")
    diag.tidy()          # per estimator: its estimand and the kind of it, bias, empirical and model SE,
                         # coverage, power, ... with MCSEs
    diag.replicates      # one row per replicate and estimator
    diag.failures        # the first error messages of failed fits
    diag.warned_by_type()  # per estimator and warning type: the fits that raised it

Every warning a fit raises is recorded, on every backend: its type (the warning's class name) in
``replicates["warning_types"]`` and the first message in ``replicates["warning"]``. Fits that warned
count in the measures (``warned="include"``, the default) or are left out (``"exclude"``); either
way ``tidy()`` says how many there were (``n_warned``).

Each estimator is scored against the truth of the estimand it declares (its
:class:`~verzuimmodel.effects.Target`), or against the design's forced ``estimand``
(:meth:`Design.target_of <verzuimmodel.evaluate.Design.target_of>`).

Replicate ``i`` uses stream ``i`` of ``np.random.SeedSequence(seed).spawn(n_sims)``, so the numbers
are the same on every backend, for any number of workers and chunk size, and when a stopped run
is resumed from ``path``.
"""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special

from ..effects.registry import Estimator
from .backends import Backend, check_arguments, default_workers, map_chunks
from .design import Design, true_value
from .measures import MEASURES, performance
from .store import _frame, _frame_concat, _Store

__all__ = ["Diagnosis", "diagnose", "REPLICATE_COLUMNS", "DIAGNOSIS_COLUMNS", "WARNED_COLUMNS", "replicate_seed"]

REPLICATE_COLUMNS = ["replicate", "estimator", "estimand", "scale", "truth", "true_value", "coef", "std_error", "df",
                     "ci_low", "ci_high", "p_value", "reject", "covers", "n_obs", "n_clusters", "error", "warning",
                     "warning_types"]
"""Columns of :attr:`Diagnosis.replicates`. ``estimand`` is the truth key the row's estimator is
scored against (:meth:`Design.target_of`); ``truth`` is the replicate's true value of it as given
in its ``truth`` dict; ``coef``, ``ci_low``, ``ci_high`` and ``true_value`` are on the analysis
scale (log scale for ratio estimators); ``error`` is missing for a successful fit; ``warning`` holds
the first warning the fit raised (``"Type: message"``, e.g. a boundary fit, no convergence or
separation), ``warning_types`` the class names of all the warnings it raised, distinct, sorted and
separated by :data:`WARNING_TYPE_SEPARATOR` (both missing when the fit raised none). Warnings of a
fit that failed are kept too."""

DIAGNOSIS_COLUMNS = ["estimator", "estimand", "population", "scope", "contrast", "scale", "n_sims", "n_failed",
                     "n_warned", "n_used", *MEASURES]
"""Columns of :meth:`Diagnosis.tidy`."""

WARNED_COLUMNS = ["estimator", "warning_type", "n_warned"]
"""Columns of :meth:`Diagnosis.warned_by_type`."""

WARNING_TYPE_SEPARATOR = ";"
"""Separates the warning types of one fit in ``replicates["warning_types"]``."""

Warned = Literal["include", "exclude"]
WARNED_CHOICES: tuple[Warned, ...] = ("include", "exclude")
"""Whether fits that raised a warning count in the performance measures (:func:`diagnose`)."""

_TIMING_COLUMNS = ["simulate_seconds", "fit_seconds"]
_MAX_ERROR_CHARS = 300
MAX_FAILURES = 20
"""Failures kept in :attr:`Diagnosis.failures` per estimator (all are counted in ``n_failed``)."""


def replicate_seed(seed: int, i: int) -> np.random.SeedSequence:
    """The seed sequence of replicate ``i``: ``np.random.SeedSequence(seed).spawn(n)[i]`` for any ``n > i``."""
    return np.random.SeedSequence(seed, spawn_key=(i,))


@dataclass(frozen=True)
class _Task:
    """What each chunk of replicates needs (pickled once per worker)."""

    design: Design
    seed: int
    estimators: tuple[Estimator, ...]
    blas_threads: int | None = 1
    targets: tuple[str, ...] = ()
    """The truth key each estimator is scored against (``design.target_of``), in order; empty:
    looked up from the design."""


@dataclass(frozen=True)
class Diagnosis:
    """The result of :func:`diagnose`.

    Attributes
    ----------
    design : Design
    n_sims, seed : int
    replicates : DataFrame
        One row per replicate and estimator (:data:`REPLICATE_COLUMNS`), sorted.
    timings : DataFrame
        ``replicate``, ``estimator``, ``simulate_seconds`` (the replicate's draw, repeated on its
        rows) and ``fit_seconds`` (that estimator's fit).
    wall_seconds : float
        Wall time of the :func:`diagnose` call (of the replicates it ran, when resumed).
    backend : str
    """

    design: Design
    n_sims: int
    seed: int
    replicates: pd.DataFrame = field(repr=False)
    timings: pd.DataFrame = field(repr=False)
    wall_seconds: float = float("nan")
    backend: str = "serial"
    warned: Warned = "include"
    """Whether fits that warned count in :meth:`tidy`'s measures (``"include"`` or ``"exclude"``)."""

    def tidy(self, warned: Warned | None = None) -> pd.DataFrame:
        """Performance of each estimator (:data:`DIAGNOSIS_COLUMNS`), with Monte Carlo SEs.

        ``estimand`` is the truth key the estimator was scored against: its own declared target,
        or the design's forced ``estimand``. ``population`` (``"ATE"``/``"ATT"``), ``scope``
        (``"marginal"``/``"conditional"``) and ``contrast`` (``"ITT"``/``"per_protocol"``) are
        the kind of estimand the estimator *declares* (:class:`~verzuimmodel.effects.Target`),
        also when the design forces another key: then they describe what the estimator
        estimates, not the truth it is compared with (a forced comparison shows as an
        ``estimand`` other than ``vm.effects.get(estimator).target.key``).

        ``n_failed`` fits failed (an exception, or no finite estimate and SE); ``n_warned`` of the
        successful ones raised at least one warning (by type: :meth:`warned_by_type`). The measures
        are computed over the ``n_used`` fits: the successful ones (``n_sims - n_failed``), or with
        ``warned="exclude"`` those that did not warn either (``n_sims - n_failed - n_warned``).

        Leaving warned fits out conditions the measures on a fit not warning. That can itself bias
        them: a fit that warns (separation, a variance on its boundary, no convergence) is often
        one whose data were extreme, so the fits left are not a random sample of the studies the
        design would produce, and the measures describe an analyst who would have discarded
        those studies. Compare both (the default includes every successful fit).

        Measures are on the analysis scale: for ratio estimators (``scale == "log"``) estimates,
        standard errors, intervals and the true value are on the log scale (``true_value`` = mean
        of the log true ratios). ``rel_error_model_se`` is in percent. See :mod:`.measures` for the
        formulas (Morris, White & Crowther 2019, Table 6).

        Parameters
        ----------
        warned : {"include", "exclude"}, optional
            Whether fits that warned count in the measures (default: the diagnosis's ``warned``).
        """
        warned = self.warned if warned is None else _check_warned(warned)
        rows = []
        reps = self.replicates
        for est in self.design.estimator_objects():
            name, target = est.name, est.target
            r = reps[reps["estimator"] == name]
            ok = r["error"].isna()
            has_warned = ok & r["warning_types"].notna()
            used = r[ok & ~has_warned] if warned == "exclude" else r[ok]
            perf = performance(used["coef"], used["std_error"], used["true_value"], used["ci_low"],
                               used["ci_high"], used["p_value"], alpha=self.design.alpha)
            if len(used) == 0:
                perf["true_value"] = float(r["true_value"].mean())
            rows.append({"estimator": name, "estimand": self.design.target_of(name),
                         "population": target.population, "scope": target.scope, "contrast": target.contrast,
                         "scale": r["scale"].iloc[0] if len(r) else None,
                         "n_sims": len(r), "n_failed": int((~ok).sum()), "n_warned": int(has_warned.sum()),
                         "n_used": len(used), **perf})
        return pd.DataFrame(rows, columns=DIAGNOSIS_COLUMNS)

    def warned_by_type(self) -> pd.DataFrame:
        """Successful fits that raised each type of warning (:data:`WARNED_COLUMNS`).

        One row per estimator and warning type (the warning's class name, e.g.
        ``ConvergenceWarning``, ``PerfectSeparationWarning``, ``RuntimeWarning``) that occurred:
        ``n_warned`` successful fits raised at least one warning of that type. A fit that raised
        several types counts once under each, so the counts of an estimator can add up to more
        than its ``n_warned`` in :meth:`tidy`. Estimators in design order, then the most frequent
        type first (ties by name). Empty when no successful fit warned.
        """
        reps = self.replicates
        warned = reps[reps["error"].isna() & reps["warning_types"].notna()]
        if warned.empty:
            return pd.DataFrame({"estimator": pd.Series(dtype=object), "warning_type": pd.Series(dtype=object),
                                 "n_warned": pd.Series(dtype="int64")})
        types = warned.assign(warning_type=warned["warning_types"].str.split(WARNING_TYPE_SEPARATOR))
        types = types.explode("warning_type")
        counts = types.groupby(["estimator", "warning_type"], sort=False).size().rename("n_warned").reset_index()
        order = {name: k for k, name in enumerate(self.design.estimators)}
        counts = counts.assign(_order=counts["estimator"].map(order), _neg=-counts["n_warned"])
        counts = counts.sort_values(["_order", "_neg", "warning_type"], kind="stable")
        return counts[WARNED_COLUMNS].astype({"n_warned": "int64"}).reset_index(drop=True)

    @property
    def failures(self) -> pd.DataFrame:
        """The first :data:`MAX_FAILURES` failed fits per estimator: replicate, estimator, error."""
        f = self.replicates.loc[self.replicates["error"].notna(), ["replicate", "estimator", "error"]]
        return f.groupby("estimator", sort=False).head(MAX_FAILURES).reset_index(drop=True)


def diagnose(design: Design, n_sims: int = 1000, seed: int = 1, backend: Backend = "serial",
             scheduler: Any = None, workers: int | None = None, path: str | os.PathLike | None = None,
             progress: bool = True, chunk_size: int | None = None,
             on_chunk: Callable[[pd.DataFrame], None] | None = None, dask_processes: bool = True,
             blas_threads: int | None = 1, label: str | None = None, overwrite: bool = False,
             warned: Warned = "include") -> Diagnosis:
    """Run every estimator of ``design`` on ``n_sims`` simulated replicates.

    Parameters
    ----------
    design : Design
    n_sims : int
        Number of replicates.
    seed : int
        Replicate ``i`` draws its data from ``np.random.SeedSequence(seed).spawn(n_sims)[i]``.
    backend : {"serial", "processes", "dask"}
        Where the replicates run; the results do not depend on it.
    scheduler : str or distributed.Client, optional
        ``dask`` only: a scheduler address such as ``"tcp://host:8786"`` or a client; by default a
        local cluster of ``workers`` processes is started. The workers of a scheduler must be able
        to import verzuimmodel (the same version) and any module an estimator comes from. A worker
        process runs one replicate at a time (see Notes), so start workers with one thread each
        and as many processes as cores (``dask worker ADDRESS --nworkers N --nthreads 1``). A
        worker that dies mid-run loses only the replicates it was running: dask runs them again
        elsewhere, with the same numbers.
    workers : int, optional
        Worker processes for ``processes`` and the local dask cluster (default: the CPUs available).
    path : path, optional
        A directory to keep the replicate results in, as a Parquet dataset with one file per
        finished chunk (each written to a temporary name, then renamed). A run that was stopped
        resumes from there: replicates already stored are read, not rerun, and the final numbers
        equal those of an uninterrupted run. The directory belongs to one design and seed;
        another design or seed raises ``ValueError``. A larger ``n_sims`` extends a stored run.
        It must be new, empty or such a store (marked ``.verzuimmodel-output``, see
        :func:`verzuimmodel.outputs.run_directory`), and is locked while the run writes it: a
        second run on the same ``path`` raises :class:`~verzuimmodel.outputs.OutputLockedError`.
    progress : bool
        Show a progress bar on stderr.
    chunk_size : int, optional
        Replicates per chunk (the unit of work, of checkpointing and of progress). Default: about
        eight chunks per worker, at most 50 replicates each.
    on_chunk : callable, optional
        Called with the rows of each finished chunk after it is stored.
    dask_processes : bool
        For the local dask cluster: processes (default) or threads of this process (the same
        results, but one replicate at a time: see Notes).
    blas_threads : int or None
        Threads BLAS may use inside each fit while replicates run (default 1: the parallelism is
        over replicates); ``None`` leaves the BLAS settings alone.
    label : str, optional
        Text of the progress bar (default: the design's name).
    overwrite : bool
        Discard the replicates stored in ``path`` and start afresh (also those of another design
        or seed). A directory that verzuimmodel did not write is never touched.
    warned : {"include", "exclude"}
        Whether fits that raised a warning count in the performance measures of ``tidy()``
        (they are always recorded and counted in ``n_warned``). ``"exclude"`` conditions the
        measures on a fit not warning, which can itself bias them (see :meth:`Diagnosis.tidy`).

    Returns
    -------
    Diagnosis
        ``tidy()`` gives per estimator the Morris et al. (2019) performance measures with Monte
        Carlo SEs, each against the estimand the estimator declares (or the design's forced
        ``estimand``), with the declared kind of it (ATE/ATT, marginal/conditional,
        ITT/per protocol). For estimators with ``scale="log"`` (ratios) they are computed on the log
        scale, with true value ``log(truth)``; the true value is taken from each replicate's
        ``truth`` (it may vary between replicates) and ``true_value`` reports its mean. Power is
        the share of replicates rejecting ``H0: no effect`` at ``design.alpha``. Failed fits
        (exceptions, non-finite estimates or SEs) are counted in ``n_failed`` and listed in
        ``failures``; they never disappear silently. Every warning a fit raises is recorded
        (whatever the warning filters of the process say): the types in
        ``replicates["warning_types"]``, the first message in ``replicates["warning"]``; fits that
        warned are counted in ``n_warned`` (per type: ``warned_by_type()``), on every backend alike.

    Raises
    ------
    ValueError
        Bad arguments; a replicate's truth lacks an estimator's estimand (or it is not a number, or
        not a positive ratio for a log-scale estimator); ``path`` holds another design's replicates.
    FileExistsError
        ``path`` is a directory that verzuimmodel did not write
        (:class:`~verzuimmodel.outputs.OutputExistsError`).
    OSError
        Another run is writing ``path`` (:class:`~verzuimmodel.outputs.OutputLockedError`).
    ImportError
        An estimator needs a module that is not available.

    Notes
    -----
    Python's warning filters are process-wide state (until Python 3.14), so warnings can be
    recorded per fit only while one replicate runs in a process at a time. Each process therefore
    runs its replicates one after the other, also where several threads could run them (a dask
    worker with ``nthreads > 1``, or the threads of ``dask_processes=False``): parallelism comes
    from processes. The results are the same either way.
    """
    if not isinstance(design, Design):
        raise ValueError(f"design: expected a vm.Design, got {type(design).__name__}")
    if not _is_int(n_sims) or n_sims < 1:
        raise ValueError(f"n_sims: got {n_sims!r}; expected a positive integer")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed: got {seed!r}; expected a non-negative integer")
    if chunk_size is not None and (not _is_int(chunk_size) or chunk_size < 1):
        raise ValueError(f"chunk_size: got {chunk_size!r}; expected a positive integer")
    check_arguments(backend, workers, scheduler)
    warned = _check_warned(warned)
    task = _Task(design, int(seed), design.estimator_objects(), blas_threads,
                 tuple(design.target_of(name) for name in design.estimators))
    opened = _Store.open(Path(path), design, int(seed), overwrite) if path is not None else nullcontext()
    with opened as store:  # locked: one run at a time writes a store
        frames = store.load(n_sims) if store is not None else []
        done = set()
        for f in frames:
            done.update(f["replicate"].tolist())
        todo = [i for i in range(n_sims) if i not in done]
        n_workers = 1 if backend == "serial" else (workers or default_workers())
        size = chunk_size or max(1, min(50, math.ceil(len(todo) / (8 * n_workers))))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        t0 = time.perf_counter()
        bar = _progress(progress, label or design.name, n_sims, n_sims - len(todo))
        with bar as advance, _blas_limit(blas_threads):  # here too: threads of a dask LocalCluster share it
            with closing(map_chunks(_run_chunk, task, chunks, backend=backend, workers=workers,
                                    scheduler=scheduler, dask_processes=dask_processes)) as results:
                for cols in results:
                    frame = _frame(cols)
                    if store is not None:
                        store.write(frame)
                    frames.append(frame)
                    advance(frame["replicate"].nunique())
                    if on_chunk is not None:
                        on_chunk(frame)
        wall = time.perf_counter() - t0
    allrows = _frame_concat(frames, design)
    return Diagnosis(design=design, n_sims=n_sims, seed=int(seed),
                     replicates=allrows[REPLICATE_COLUMNS].reset_index(drop=True),
                     timings=allrows[["replicate", "estimator", *_TIMING_COLUMNS]].reset_index(drop=True),
                     wall_seconds=wall, backend=backend, warned=warned)


# -- one chunk of replicates (runs in a worker) ---------------------------------------------------

def _run_chunk(task: _Task, indices) -> dict[str, list]:
    with _blas_limit(task.blas_threads):
        return _run_replicates(task, indices)


def _blas_limit(n: int | None):
    """Limit BLAS/OpenMP threads while replicates run (parallelism is over replicates; threaded
    BLAS on the small matrices of one fit only contends for the same cores)."""
    if n is None:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return nullcontext()
    return threadpool_limits(limits=n)


def _run_replicates(task: _Task, indices) -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in [*REPLICATE_COLUMNS, *_TIMING_COLUMNS]}
    design = task.design
    alpha = design.alpha
    targets = task.targets or tuple(design.target_of(e.name) for e in task.estimators)
    for i in indices:
        with _ONE_REPLICATE_AT_A_TIME:  # the warning filters are process-wide (see _recording)
            t0 = time.perf_counter()
            sim_error, data = None, None
            try:
                data = design.draw(replicate_seed(task.seed, int(i)))
            except ImportError:
                raise
            except Exception as e:  # a failed draw fails every estimator of this replicate
                sim_error = "simulate: " + _message(e)
            sim_s = time.perf_counter() - t0
            truths = {key: math.nan for key in targets}
            if sim_error is None:
                for key in truths:
                    names = ", ".join(e.name for e, k in zip(task.estimators, targets) if k == key)
                    truths[key] = _truth(data.truth, key, int(i), names)
            for est, key in zip(task.estimators, targets):
                row = _fit(est, data if sim_error is None else None, truths[key], key, alpha, sim_error)
                cols["replicate"].append(int(i))
                for k, v in row.items():
                    cols[k].append(v)
                cols["simulate_seconds"].append(sim_s)
            del data  # before the next draw: one replicate's data in memory at a time
    return cols


def _truth(truth: dict, key: str, i: int, names: str) -> float:
    """The true value of estimand ``key`` (of estimators ``names``) in replicate ``i``'s ``truth``."""
    try:
        value = true_value(truth, key)
    except KeyError:
        raise ValueError(f"estimand '{key}' is not in the truth of replicate {i} (the estimand of {names}); "
                         f"its keys are {', '.join(map(str, truth))}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"estimand '{key}' (of {names}): the truth is {value!r}, expected a number")
    return float(value)


_ONE_REPLICATE_AT_A_TIME = threading.RLock()
"""Held while a replicate runs: one replicate at a time per process (see :func:`_recording`)."""


@contextmanager
def _recording() -> Iterator[list[tuple[str, str]]]:
    """Record every warning this thread raises in the block, as ``(class name, message)``.

    Every warning is recorded, also a repeat of an earlier one and whatever the filters of the
    process say (``"always"``); warnings that code inside the block silences or turns into errors
    with its own ``catch_warnings`` stay so. Warnings raised meanwhile by other threads of the
    process (e.g. a dask worker's event loop) are not recorded: they go to the process's
    ``warnings.showwarning`` (under the ``"always"`` filter while the block runs).

    The filters and ``warnings.showwarning`` are process-wide, and ``catch_warnings`` restores
    them on exit, so two threads inside such blocks at once would corrupt each other's record
    (and that of any ``catch_warnings`` inside an estimator). The caller holds
    :data:`_ONE_REPLICATE_AT_A_TIME`, so in one process one replicate records at a time.
    """
    caught: list[tuple[str, str]] = []
    me = threading.get_ident()
    with warnings.catch_warnings():
        shown = warnings.showwarning
        warnings.simplefilter("always")

        def show(message, category, filename, lineno, file=None, line=None):
            if threading.get_ident() == me:
                caught.append((category.__name__, str(message)))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield caught


def _fit(est: Estimator, data, truth: float, estimand: str, alpha: float, sim_error: str | None) -> dict[str, Any]:
    log = est.scale == "log"
    if log and sim_error is None and not truth > 0:
        raise ValueError(f"estimator '{est.name}' is on the log scale but the true value of the estimand is "
                         f"{truth!r}; expected a positive ratio")
    tv = math.log(truth) if log and truth > 0 else truth
    row: dict[str, Any] = {"estimator": est.name, "estimand": estimand, "scale": est.scale, "truth": truth,
                           "true_value": tv, "coef": math.nan, "std_error": math.nan, "df": math.nan,
                           "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "reject": None,
                           "covers": None, "n_obs": None, "n_clusters": None, "error": sim_error, "warning": None,
                           "warning_types": None, "fit_seconds": 0.0}
    if sim_error is not None:
        return row
    t0 = time.perf_counter()
    caught: list[tuple[str, str]] = []
    try:
        try:
            with _recording() as caught:
                e = est.fn(data)
        finally:  # the warnings of a fit that raised are kept as well
            if caught:
                kind, text = caught[0]
                row["warning"] = " ".join(f"{kind}: {text}".split())[:_MAX_ERROR_CHARS]
                row["warning_types"] = WARNING_TYPE_SEPARATOR.join(sorted({k for k, _ in caught}))
        coef, se = float(e.coef), float(e.std_error)
        dof = math.nan if e.df is None else float(e.df)
        if not (math.isfinite(coef) and math.isfinite(se) and se > 0):
            raise FloatingPointError(f"non-finite estimate or standard error (coef={coef!r}, std_error={se!r})")
        if not (math.isnan(dof) or dof > 0):
            raise FloatingPointError(f"degrees of freedom must be positive, got {dof!r}")
    except ImportError:
        raise
    except Exception as ex:
        row["fit_seconds"] = time.perf_counter() - t0
        row["error"] = _message(ex)
        return row
    row["fit_seconds"] = time.perf_counter() - t0
    if math.isfinite(dof):  # scipy.special: the same values as scipy.stats.t, without its overhead
        q = float(special.stdtrit(dof, 1 - alpha / 2))
        p = float(2 * special.stdtr(dof, -abs(coef / se)))
    else:
        q = float(special.ndtri(1 - alpha / 2))
        p = float(2 * special.ndtr(-abs(coef / se)))
    lo, hi = coef - q * se, coef + q * se
    row.update(coef=coef, std_error=se, df=dof, ci_low=lo, ci_high=hi, p_value=p, reject=bool(p <= alpha),
               covers=bool(lo <= tv <= hi), n_obs=e.n_obs, n_clusters=e.n_clusters)
    return row


def _message(e: BaseException) -> str:
    msg = " ".join(f"{type(e).__name__}: {e}".split())
    return msg[:_MAX_ERROR_CHARS]


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _check_warned(warned: Any) -> Warned:
    if warned not in WARNED_CHOICES:
        raise ValueError(f"warned: got {warned!r}; expected 'include' (fits that warned count in the measures) "
                         f"or 'exclude' (they are left out)")
    return warned


# -- progress -------------------------------------------------------------------------------------

class _progress:
    """A rich progress bar on stderr (or nothing); the context value advances it."""

    def __init__(self, show: bool, label: str, total: int, completed: int):
        self.show, self.label, self.total, self.completed = show, label, total, completed

    def __enter__(self):
        if not self.show:
            self._cm = nullcontext()
            return lambda n: None
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self._cm = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        bar = self._cm.__enter__()
        task = bar.add_task(self.label, total=self.total, completed=self.completed)
        return lambda n: bar.advance(task, n)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
