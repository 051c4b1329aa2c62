"""One BLAS thread for small dense algebra.

The mixed models' per-evaluation matrices (groups x p, a Schur complement) and the target trial's
weight models (covariate patterns x intervals) are small: threaded BLAS on them only adds
synchronisation, and on a busy machine it is several times slower (a GLMM fit: 0.12 s with one
thread against 1.6-40 s with the default threads, measured on two cores under load).
"""

from __future__ import annotations

import contextlib

__all__ = ["single_threaded_blas"]


def single_threaded_blas():
    """A context manager that limits BLAS to one thread (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                    # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
