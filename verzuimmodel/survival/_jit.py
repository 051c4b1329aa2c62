"""numba compilation on first use, shared by the survival modules' compiled kernels."""

from __future__ import annotations

__all__ = ["jit"]

_JITTED: dict = {}


def jit(fn, *helpers):
    """``fn`` compiled by numba, imported on first use (importing the package stays fast) and cached on disk.

    ``helpers`` are the plain functions ``fn`` calls: compiled first and bound under their names in
    their module, as compiled code can only call compiled functions.
    """
    if fn not in _JITTED:
        import numba
        for h in helpers:
            if h not in _JITTED:
                _JITTED[h] = fn.__globals__[h.__name__] = numba.njit(cache=True, nogil=True)(h)
        _JITTED[fn] = numba.njit(cache=True, nogil=True)(fn)
    return _JITTED[fn]
