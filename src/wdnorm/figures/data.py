"""Table helpers shared by the figures: reading the CSVs, the verdicts' intervals, the
grid and the paired-by-seed views of runs.csv. No plotting here.

Statistical conventions (the figures show data; the verdicts are in claims.json):
intervals are the verdicts' own -- the Hodges-Lehmann shift of paired differences with
its 95% distribution-free CI, from :func:`wdnorm.claims.stats.hodges_lehmann` (none where
n is too small for the level) -- and diverged or collapsed runs are outcomes, kept and
marked, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..claims.stats import hodges_lehmann
from ..frames import as_bool, read_table

GRID_KIND = "grid"
#: Run kinds in arm order (wdnorm.engine.Member.kind).
EQUIVALENT_KINDS = ("exact", "schedule", "mimic")
STATUSES = ("ok", "diverged", "collapsed")
#: The protocol of the main grid (runs.csv's ``protocol``); other protocols are
#: variants trained beside it, which only the protocols figure (C9) shows.
MAIN_PROTOCOL = "main"
#: Level of the intervals, the verdicts' own.
CI_LEVEL = 0.95


def read_tables(paths: Mapping[str, str | Path]) -> dict[str, pd.DataFrame]:
    """{name: DataFrame} from {name: csv path}; an empty or missing file is an empty
    table (the figure then draws a "no data" panel)."""
    return {name: read_table(path) if Path(path).is_file() else pd.DataFrame()
            for name, path in paths.items()}


def with_columns(frame: pd.DataFrame, *names: str) -> pd.DataFrame:
    """``frame`` with every missing column of ``names`` added (empty tables have none)."""
    missing = [n for n in names if n not in frame]
    return frame.assign(**{n: np.nan for n in missing}) if missing else frame


def main_protocol(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the main protocol; every row of tables from before protocols
    existed (no ``protocol`` column)."""
    if "protocol" not in frame:
        return frame
    return frame[frame["protocol"].fillna(MAIN_PROTOCOL) == MAIN_PROTOCOL]


def hl_shift(values) -> float:
    """The Hodges-Lehmann estimate of the shift of paired differences ``values``."""
    return hodges_lehmann(values, CI_LEVEL)[0]


def hl_interval(values) -> tuple[float, float]:
    """Its 95% distribution-free CI; (nan, nan) where n is too small for the level
    (the bounds are infinite there: nothing to draw)."""
    _, lo, hi = hodges_lehmann(values, CI_LEVEL)
    return (lo, hi) if np.isfinite(lo) and np.isfinite(hi) else (math.nan, math.nan)


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


def paired(frame: pd.DataFrame, reference, value: str = "test_acc",
           keep_reference: bool = False) -> pd.DataFrame:
    """The rows of ``frame`` that are not the reference arm (boolean mask ``reference``;
    it too with ``keep_reference``), of seeds that have one, with ``pp``: ``value`` minus
    the same seed's reference value, in percentage points -- the paired contrast of a
    seed-paired design."""
    reference = np.asarray(reference, dtype=bool)
    base = frame[reference].drop_duplicates("seed").set_index("seed")[value].astype(float)
    rows = frame[(keep_reference | ~reference) & frame["seed"].isin(base.index).to_numpy()]
    return rows.assign(pp=100 * (rows[value].astype(float).to_numpy()
                                 - base.loc[rows["seed"]].to_numpy()))


def status_rates(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group: runs, and the count of each status."""
    status = pd.Categorical(column(frame, "status", "ok").fillna("ok"), categories=STATUSES)
    counts = pd.crosstab([frame[k] for k in by], status).reindex(columns=list(STATUSES),
                                                                 fill_value=0)
    return counts.assign(runs=counts.sum(axis=1)).reset_index()


def sorted_unique(values: Iterable[float]) -> list[float]:
    return sorted({float(v) for v in values if np.isfinite(float(v))})
