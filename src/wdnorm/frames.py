"""Tidy tables as data: build one with its contract's columns first, read a CSV back
(empty files included), concatenate per-slab tables, booleans read back from CSV, and
the first step at which a per-step series leaves a tolerance. A leaf module (pandas
and numpy only): probes, tables, claims and figures all read and write through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def frame(rows: list[dict], columns: Sequence[str]) -> pd.DataFrame:
    """Rows as a DataFrame with ``columns`` first, in that order (an empty table keeps
    them), then any extra keys the rows carry: columns may be added, never renamed."""
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in columns]
    return df.reindex(columns=list(columns) + extra)


def read_table(path) -> pd.DataFrame:
    """A CSV table; an empty (0-byte) file reads as an empty DataFrame."""
    path = Path(path)
    if path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def aggregate(paths: Sequence) -> pd.DataFrame:
    """Concatenate tables (empty ones skipped; the union of their columns in first-seen
    order, so a header-only table still contributes its columns). A single path is
    accepted too."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = [f for f in (read_table(p) for p in paths) if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return pd.DataFrame(columns=columns)
    return pd.concat(nonempty, ignore_index=True).reindex(columns=columns)


def as_bool(series: pd.Series) -> pd.Series:
    """Booleans read back from CSV (True/False, 'True'/'False', 1/0)."""
    if series.dtype == bool:
        return series
    return series.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))


def first_exceeding(rel: np.ndarray, tol: float) -> int:
    """Index of the first step whose relative difference exceeds ``tol`` or is not
    finite; ``len(rel)`` when none does."""
    bad = ~(np.asarray(rel) <= tol)
    return int(np.argmax(bad)) if bad.any() else int(len(bad))
