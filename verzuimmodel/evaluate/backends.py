"""Where replicates run: ``serial`` (this process), ``processes`` (a local process pool) or
``dask`` (dask.distributed: a local cluster or a scheduler address).

Work is cut into chunks of replicate indices; :func:`map_chunks` yields each chunk's result as
it finishes (in completion order). What every chunk needs (the design, the estimators) is
serialised once with cloudpickle, so estimators defined in a notebook or a test work on every
backend. Replicate ``i`` draws its data from ``SeedSequence(seed).spawn(n)[i]`` wherever it runs,
so the backend and the number of workers never change the results.

Workers of the ``processes`` backend die with the process that started them, also when it is
killed with ``kill -9`` and cannot shut its pool down (:func:`_die_with_parent`).

On ``dask`` with a scheduler address the workers may run on other hosts (``dask scheduler`` and
``dask worker ADDRESS --nworkers N --nthreads 1``); they must be able to import verzuimmodel and
the modules the estimators come from. A chunk whose worker dies is run again on another worker
(dask's own retry of lost tasks), so a lost worker costs time, not results. Replicates run one at
a time per worker process (:func:`verzuimmodel.evaluate.diagnose`), so a worker with several
threads uses one of them: :func:`map_chunks` warns when it meets such workers.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Literal

import cloudpickle
from threadpoolctl import threadpool_limits

from ..outputs import pid_alive

__all__ = ["BACKENDS", "Backend", "check_arguments", "map_chunks", "default_workers"]

Backend = Literal["serial", "processes", "dask"]
BACKENDS = ("serial", "processes", "dask")

_LOADED: dict[bytes, Any] = {}
"""Per worker process: deserialised payloads by digest (a payload is loaded once per worker)."""


def default_workers() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _call(fn: Callable, payload: bytes, chunk: Sequence[int]):
    """Run ``fn(shared, chunk)`` in a worker, where ``shared`` is the unpickled payload.

    BLAS runs single-threaded in a worker: the workers already use the CPUs, and a multi-threaded
    BLAS in each of them oversubscribes the machine (a 150 x 150 Cholesky factorisation then takes
    hundreds of times longer). The results do not depend on it.
    """
    key = hashlib.sha1(payload).digest()
    shared = _LOADED.get(key)
    if shared is None:
        shared = _LOADED[key] = cloudpickle.loads(payload)
    with threadpool_limits(limits=1):
        return fn(shared, chunk)


def check_arguments(backend: str, workers: int | None, scheduler: Any) -> None:
    """``ValueError`` for an unknown backend or options that do not fit it."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: got {backend!r}; expected one of {', '.join(BACKENDS)}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f"scheduler: only used with backend='dask', not {backend!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: got {workers!r}; expected a positive integer")
    if backend == "serial" and workers not in (None, 1):
        raise ValueError("workers: the serial backend runs in this process; use backend='processes'")
    if scheduler is not None and workers is not None:
        raise ValueError("workers: with a scheduler the replicates run on its workers; workers sets the size of "
                         "a local cluster only")


def map_chunks(fn: Callable[[Any, Sequence[int]], Any], shared: Any, chunks: Sequence[Sequence[int]],
               backend: Backend = "serial", workers: int | None = None, scheduler: Any = None,
               dask_processes: bool = True) -> Iterator[Any]:
    """Yield ``fn(shared, chunk)`` for every chunk, as the chunks finish.

    Parameters
    ----------
    fn : callable
        A module-level function (importable by the workers).
    shared : object
        Passed to every call (pickled once with cloudpickle for the parallel backends).
    chunks : sequence of sequences of int
    backend : {"serial", "processes", "dask"}
    workers : int, optional
        Worker processes (``processes``, or the local dask cluster); default: the CPUs available.
    scheduler : str or distributed.Client, optional
        ``dask`` only: a scheduler address (``"tcp://host:8786"``) or a connected client. Without
        it a ``LocalCluster`` of ``workers`` single-threaded workers is started (and closed).
    dask_processes : bool
        ``dask`` local cluster: worker processes (default) or threads in this process.
    """
    check_arguments(backend, workers, scheduler)
    if not chunks:
        return
    if backend == "serial":
        for chunk in chunks:
            yield fn(shared, chunk)
        return
    payload = cloudpickle.dumps(shared)
    if backend == "processes":
        yield from _processes(fn, payload, chunks, workers or default_workers())
    else:
        yield from _dask(fn, payload, chunks, workers, scheduler, dask_processes)


_PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 1.0
"""How often a worker checks that its parent is alive where ``PR_SET_PDEATHSIG`` is unavailable."""


def _die_with_parent(parent: int) -> None:
    """Initializer of a pool worker: end this worker when process ``parent`` (the pool's owner) ends.

    A pool shuts its workers down when it is closed, but a parent killed with ``kill -9`` closes
    nothing: its workers would wait for work forever, each holding its memory. On Linux the kernel
    sends this worker SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``; strictly, when the
    parent's thread that started the worker ends: the pool is started and used by one thread, the
    one that iterates :func:`map_chunks`); elsewhere a daemon
    thread checks every :data:`PARENT_CHECK_SECONDS` that the parent is still there and otherwise
    ends the worker.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ok = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
        except (OSError, AttributeError):  # pragma: no cover - no libc
            ok = False
        if ok:
            if not pid_alive(parent):  # it died before the signal was set up
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent, os.getppid()), daemon=True,  # pragma: no cover
                     name="verzuimmodel-parent-watch").start()


def _watch_parent(parent: int, ppid: int) -> None:  # pragma: no cover - only where prctl is missing
    """End this worker once the parent is gone (or this worker was handed to another parent)."""
    while pid_alive(parent) and os.getppid() == ppid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _processes(fn, payload: bytes, chunks, workers: int) -> Iterator[Any]:
    pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)), initializer=_die_with_parent,
                               initargs=(os.getpid(),))
    try:
        pending = {pool.submit(_call, fn, payload, chunk) for chunk in chunks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(fn, payload: bytes, chunks, workers: int | None, scheduler, processes: bool) -> Iterator[Any]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=processes,
                               dashboard_address=None)
        client = Client(cluster)
        own_client = True
    elif isinstance(scheduler, Client):
        client, own_client = scheduler, False
    elif isinstance(scheduler, str):
        client, own_client = Client(scheduler), True
    else:
        raise ValueError(f"scheduler: expected an address such as 'tcp://host:8786' or a distributed.Client, "
                         f"got {type(scheduler).__name__}")
    futures = []
    try:
        _warn_threaded(client)
        shared = client.scatter(payload, broadcast=True)
        futures = [client.submit(_call, fn, shared, list(chunk), pure=False) for chunk in chunks]
        # the loop of the client that owns the futures, not that of the current or default client (which may be
        # another one of this process: results then arrive in a burst, seconds late; dask/distributed#4357)
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
    finally:
        if futures:
            client.cancel(futures)
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


def _warn_threaded(client) -> None:
    """Warn when workers have several threads: a worker process runs one replicate at a time."""
    threads = client.nthreads()
    threaded = sorted(a for a, n in threads.items() if n > 1)
    if threaded:
        warnings.warn(f"{len(threaded)} of {len(threads)} dask workers have more than one thread (e.g. {threaded[0]}: "
                      f"{threads[threaded[0]]}); a worker process runs one replicate at a time, so its other threads "
                      f"stay idle. Start workers with one thread and a process per core: dask worker ADDRESS "
                      f"--nworkers N --nthreads 1", UserWarning, stacklevel=4)
