"""The replicate rows of a diagnosis as a table, and the Parquet store a run keeps them in.

The rows have the columns and dtypes of ``_DTYPES``: those of
:data:`~verzuimmodel.evaluate.diagnose.REPLICATE_COLUMNS` and the two timings. A store is a
directory holding ``diagnose.json`` (the fingerprint of the design and seed the rows belong to, with
the design's name, seed, estimators, targets and TOML) and one Parquet file
``part-<first>-<last>-<id>.parquet`` per finished chunk, each written to a temporary name and then
renamed. It is a run directory of :mod:`verzuimmodel.outputs` (marked, locked while open), which
:func:`~verzuimmodel.evaluate.diagnose` resumes from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from ..outputs import run_directory, write_file
from .design import Design


# -- tables ---------------------------------------------------------------------------------------

_DTYPES = {"replicate": "int64", "estimator": object, "estimand": object, "scale": object, "truth": "float64",
           "true_value": "float64", "coef": "float64", "std_error": "float64", "df": "float64",
           "ci_low": "float64", "ci_high": "float64", "p_value": "float64", "reject": "boolean",
           "covers": "boolean", "n_obs": "Int64", "n_clusters": "Int64", "error": object, "warning": object,
           "warning_types": object, "simulate_seconds": "float64", "fit_seconds": "float64"}


def _frame(cols: dict[str, list] | pd.DataFrame) -> pd.DataFrame:
    """The rows with the declared dtypes (from a chunk's column lists, or a stored table)."""
    if isinstance(cols, pd.DataFrame):
        if "warning_types" not in cols.columns:  # stored before every warning's type was kept: the first one's
            cols = cols.assign(warning_types=cols["warning"].str.split(":", n=1).str[0])
        out = pd.DataFrame({c: cols[c].astype(t) for c, t in _DTYPES.items()})
        for c in ("error", "warning", "warning_types"):
            out[c] = out[c].where(out[c].notna(), None)
        return out
    data = {}
    for c, t in _DTYPES.items():
        v = cols[c]
        if t is object:
            arr = np.empty(len(v), dtype=object)
            arr[:] = v
            data[c] = arr
        elif t in ("boolean", "Int64"):
            data[c] = pd.array(v, dtype=t)
        else:
            data[c] = np.asarray(v, dtype=t)
    return pd.DataFrame(data, copy=False)


def _frame_concat(frames: list[pd.DataFrame], design: Design) -> pd.DataFrame:
    if not frames:
        return _frame({c: [] for c in _DTYPES})
    df = pd.concat(frames, ignore_index=True)
    order = {name: k for k, name in enumerate(design.estimators)}
    df["_order"] = df["estimator"].map(order)
    df = df.sort_values(["replicate", "_order"], kind="stable").drop(columns="_order")
    if df.duplicated(["replicate", "estimator"]).any():  # pragma: no cover - guarded by the store
        raise RuntimeError("a replicate was stored twice")
    return _frame(df.reset_index(drop=True))


# -- the Parquet store ----------------------------------------------------------------------------

class _Store:
    """Replicate rows kept as a Parquet dataset: ``part-<first>-<last>-<id>.parquet`` per chunk.

    ``diagnose.json`` records the fingerprint of the design and seed the rows belong to: of the
    design's data model, estimators, level and the truth key each estimator is scored against.
    The directory is a run directory of :mod:`verzuimmodel.outputs` (marked, locked while open).
    """

    META = "diagnose.json"
    NAMES = (META, "part-*.parquet", ".part-*.tmp", f".{META}.tmp-*")
    """What a store holds (a store holding anything else is never replaced)."""

    @classmethod
    @contextmanager
    def open(cls, path: Path, design: Design, seed: int, overwrite: bool = False) -> Iterator[_Store]:
        """The store at ``path``, locked while the block runs (``overwrite``: emptied first)."""
        if path.exists() and not path.is_dir():
            raise ValueError(f"path '{path}' exists and is not a directory")
        with run_directory(path, overwrite, names=cls.NAMES, legacy=lambda p: (p / cls.META).is_file()):
            yield cls(path, design, seed)

    def __init__(self, path: Path, design: Design, seed: int):
        self.path = path
        fingerprint = hashlib.sha256(_fingerprint_text(design, seed).encode()).hexdigest()
        meta = path / self.META
        if meta.exists():
            stored = json.loads(meta.read_text(encoding="utf-8"))
            if stored.get("fingerprint") != fingerprint:
                raise ValueError(f"path '{path}' holds replicates of another design or seed "
                                 f"({stored.get('name')!r}, seed {stored.get('seed')}); use another path, or "
                                 f"discard them with --overwrite (overwrite=True)")
        else:
            if any(p.name.startswith("part-") for p in path.iterdir()):
                raise ValueError(f"path '{path}' holds replicate files without {self.META}; use another path")
            try:
                toml = design.to_toml()
            except ValueError:
                toml = None
            text = json.dumps({"fingerprint": fingerprint, "name": design.name, "seed": seed,
                               "estimators": list(design.estimators), "targets": design.targets,
                               "design_toml": toml}, indent=2)
            write_file(meta, lambda p: p.write_text(text, encoding="utf-8"))

    def load(self, n_sims: int) -> list[pd.DataFrame]:
        for stale in self.path.glob(".part-*.tmp"):
            stale.unlink(missing_ok=True)
        frames = []
        for f in sorted(self.path.glob("part-*.parquet")):
            df = pd.read_parquet(f)
            df = df[df["replicate"] < n_sims]
            if len(df):
                frames.append(_frame(df))
        return frames

    def write(self, frame: pd.DataFrame) -> None:
        reps = frame["replicate"]
        name = f"part-{reps.min():08d}-{reps.max():08d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.path / f".{name}.tmp"
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, self.path / name)
        finally:
            tmp.unlink(missing_ok=True)


def _fingerprint_text(design: Design, seed: int) -> str:
    """What a stored run belongs to: the design with the truth key of each estimator.

    When every estimator is scored against one key the text is that of the design with that key
    as its estimand (as stored runs were fingerprinted when a design had one estimand), so a run
    stored then resumes as long as its estimators are still scored against the same truth; with
    several keys, the key of each estimator is appended.
    """
    targets = design.targets
    keys = set(targets.values())
    if len(keys) == 1:
        key = keys.pop()
        text = repr(design) if design.estimand == key else repr(dataclasses.replace(design, estimand=key))
        return f"{text}|seed={seed}"
    return f"{design!r}|targets={sorted(targets.items())}|seed={seed}"
