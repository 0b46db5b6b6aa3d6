"""Table helpers shared by the figures: reading the CSVs, intervals, the grid and the
paired-by-seed views of runs.csv. No plotting here.

Statistical conventions (the figures show data; the verdicts are in claims.json):
intervals are 95% Student-t intervals of the mean over seeds (none for one seed), and
diverged or collapsed runs are outcomes, kept and marked, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

GRID_KIND = "grid"
#: Run kinds in arm order (wdnorm.engine.Member.kind).
EQUIVALENT_KINDS = ("exact", "schedule", "mimic")
STATUSES = ("ok", "diverged", "collapsed")

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30; beyond, Fisher's
# expansion in 1/df around the normal quantile is within 1e-4 (scipy.stats would cost
# every figure job a second of import).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
         2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def read_tables(paths: Mapping[str, str | Path]) -> dict[str, pd.DataFrame]:
    """{name: DataFrame} from {name: csv path}; an empty or missing file is an empty
    table (the figure then draws a "no data" panel)."""
    tables = {}
    for name, path in paths.items():
        try:
            tables[name] = pd.read_csv(path)
        except (FileNotFoundError, pd.errors.EmptyDataError):
            tables[name] = pd.DataFrame()
    return tables


def with_columns(frame: pd.DataFrame, *names: str) -> pd.DataFrame:
    """``frame`` with every missing column of ``names`` added (empty tables have none)."""
    missing = [n for n in names if n not in frame]
    return frame.assign(**{n: np.nan for n in missing}) if missing else frame


def t975(df: int) -> float:
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_ci(values) -> tuple[float, float, float]:
    """Mean and 95% t-interval of the mean of the finite ``values``; (mean, nan, nan)
    for one value, all nan for none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if v.size == 1:
        return mean, math.nan, math.nan
    half = t975(v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return mean, mean - half, mean + half


def summarise(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """mean, lo, hi (95% t-interval over rows, i.e. seeds) and n per group."""
    rows = []
    for key, group in frame.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        m, lo, hi = mean_ci(group[value])
        rows.append(dict(zip(by, key), mean=m, lo=lo, hi=hi,
                         n=int(np.isfinite(group[value].astype(float)).sum())))
    return pd.DataFrame(rows, columns=[*by, "mean", "lo", "hi", "n"])


def as_bool(series: pd.Series) -> pd.Series:
    """Booleans read back from CSV (True/False, 'True'/'False', 1/0)."""
    if series.dtype == bool:
        return series
    return series.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))


def column(frame: pd.DataFrame, name: str, default) -> pd.Series:
    """``frame[name]``, or ``default`` for every row where the table lacks the column."""
    return frame[name] if name in frame else pd.Series(default, index=frame.index)


def settings(primary: pd.DataFrame, *others: pd.DataFrame | None,
             keys: Sequence[str] = ("dataset", "optimiser")):
    """[(label, [primary_sub, *other_subs])] per (dataset, optimiser) of ``primary``;
    each other table is filtered on the keys it has. One unlabelled block when the
    primary table is empty or has none of the keys."""
    present = [k for k in keys if k in primary]
    if not present or primary.empty:
        return [("", [primary, *others])]
    blocks = []
    for combo in primary[present].drop_duplicates().itertuples(index=False):
        selection = dict(zip(present, combo))
        subs = []
        for frame in (primary, *others):
            if frame is None:
                subs.append(None)
                continue
            mask = np.ones(len(frame), dtype=bool)
            for k, v in selection.items():
                if k in frame:
                    mask &= (frame[k] == v).to_numpy()
            subs.append(frame[mask])
        blocks.append((" · ".join(str(v) for v in selection.values()), subs))
    return blocks


def kinds(runs: pd.DataFrame) -> pd.Series:
    return column(runs, "kind", GRID_KIND).fillna(GRID_KIND)


def grid_lr(runs: pd.DataFrame) -> float:
    """The grid's learning rate: the optimiser's ``lr`` the runs record, else (tables of
    older runs) that of the grid runs that are not matched pairs."""
    grid = runs[kinds(runs) == GRID_KIND]
    if grid.empty:
        return math.nan
    recorded = pd.to_numeric(column(grid, "grid_lr", math.nan), errors="coerce").dropna()
    if len(recorded):
        return float(recorded.mode().iloc[0])
    plain = grid[~as_bool(column(grid, "is_matched_pair", False))]
    return float((plain if len(plain) else grid)["lr"].mode().iloc[0])


def grid_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The weight-decay grid of one setting: grid runs at the grid learning rate (a
    matched pair stays where its learning rate is the grid's)."""
    grid = runs[kinds(runs) == GRID_KIND]
    lr = grid_lr(runs)
    return grid[np.isclose(grid["lr"].astype(float), lr)] if np.isfinite(lr) else grid


def equivalent_weight_decays(runs: pd.DataFrame) -> list[float]:
    """The λ the equivalent runs stand for (the pre-declared λ of C6/C7)."""
    other = runs[kinds(runs).isin(EQUIVALENT_KINDS)]
    return sorted({float(w) for w in other["weight_decay"]}) if len(other) else []


def claim_weight_decay(runs: pd.DataFrame, stated: float | None) -> float | None:
    """C6's λ: the one claims.json states, else the one the equivalents stand for."""
    if stated is not None:
        return stated
    wds = equivalent_weight_decays(runs)
    return wds[0] if len(wds) == 1 else None


def paired_difference(frame: pd.DataFrame, value: str, by: str = "weight_decay",
                      baseline: float = 0.0) -> pd.DataFrame:
    """Per seed, ``value`` minus the same seed's ``value`` at ``by == baseline``: the
    paired contrast of a seed-paired design. Rows without a baseline seed are left out."""
    base = frame[np.isclose(frame[by].astype(float), baseline)].set_index("seed")[value]
    base = base[~base.index.duplicated()]
    out = frame[frame["seed"].isin(base.index)].copy()
    out["diff"] = out[value].astype(float).to_numpy() - base.loc[out["seed"]].astype(float).to_numpy()
    return out


def status_rates(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group: runs, and the count and share of each status."""
    status = column(frame, "status", "ok").fillna("ok")
    rows = []
    for key, group in frame.assign(_status=status).groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        counts = group["_status"].value_counts()
        row = dict(zip(by, key), runs=len(group))
        for s in STATUSES:
            row[s] = int(counts.get(s, 0))
            row[f"{s}_rate"] = row[s] / len(group)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "runs", *STATUSES, *(f"{s}_rate" for s in STATUSES)])


def sorted_unique(values: Iterable[float]) -> list[float]:
    return sorted({float(v) for v in values if np.isfinite(float(v))})
