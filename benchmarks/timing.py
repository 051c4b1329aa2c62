"""Timing helper shared by the benchmark scripts (run them from the repository root:
``python benchmarks/bench_*.py``; their folder is then on the import path)."""

from __future__ import annotations

import time

import numpy as np


def best_of(fn, repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls of ``fn`` and the last call's result."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
