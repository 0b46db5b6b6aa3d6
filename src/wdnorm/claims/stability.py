"""A verdict's stability under a re-draw of its seeds: the seed bootstrap.

Each resample draws as many seeds as the tables hold, with replacement, and gives every
table with a ``seed`` column the rows of the drawn seeds, each copy under a new seed id,
so all arms of one drawn seed stay paired (C6's λ* and λ = 0 runs, C9's protocols) and n
is unchanged. The claim decides again on every resample; its stability is the share of
re-decisions that reproduce its verdict, and a verdict below the threshold is fragile.

Why the bootstrap and not leave-one-seed-out: floating-point noise (another BLAS thread
count) sends a chaotic run elsewhere, which is what a fresh draw of seeds does to the
whole set; the bootstrap mimics that draw at the same n, so the minimum-seed rules of
the claims see the n they were declared for, where leaving one seed out would fall below
them by construction. Tables without seeds (the probes of C1, C3, C7a) are not resampled:
a claim that reads only those is stable by construction, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..config import defaults
from . import common as c

METHOD = "seed bootstrap (seeds drawn with replacement, arms kept paired)"


def seeds_of(tables: Mapping[str, pd.DataFrame]) -> list[int]:
    found = {int(s) for df in tables.values() if not c.empty(df) and "seed" in df.columns
             for s in df["seed"].dropna().unique()}
    return sorted(found)


def resample(tables: Mapping[str, pd.DataFrame], drawn: np.ndarray) -> dict[str, pd.DataFrame]:
    """The tables with the rows of the ``drawn`` seeds, copy i renamed seed i."""
    mapping = pd.DataFrame({"seed": drawn, "_copy": np.arange(len(drawn))})
    out = {}
    for name, df in tables.items():
        if c.empty(df) or "seed" not in df.columns:
            out[name] = df
            continue
        rows = df.merge(mapping, on="seed", how="inner", sort=False)
        out[name] = rows.drop(columns="seed").rename(columns={"_copy": "seed"})
    return out


def plan(claim, tables: Mapping[str, pd.DataFrame], settings: Mapping | None
         ) -> tuple[dict, dict[str, pd.DataFrame], list[np.ndarray]]:
    """What re-deciding ``claim`` takes: its record so far, its own tables, and the seed
    draws, one per resample, all drawn up front from the configured seed, so the same
    draws come out however the re-decisions are then shared between processes."""
    # the schema's defaults for whatever the settings leave out (callers outside the
    # workflow pass partial settings)
    options = {**defaults("claims", "stability"),
               **(c.claims_settings(settings).get("stability") or {})}
    resamples, threshold = int(options["resamples"]), float(options["threshold"])
    own = claim.rows(tables)
    seeds = np.asarray(seeds_of(own))
    record = {"method": METHOD, "resamples": 0, "threshold": threshold, "seeds": len(seeds)}
    if len(seeds) < 2:
        return record, own, []
    rng = np.random.default_rng(int(options["seed"]))
    return record, own, [rng.choice(seeds, size=len(seeds), replace=True)
                         for _ in range(resamples)]


def redecide(claim, own: Mapping[str, pd.DataFrame], settings: Mapping | None,
             draws: list[np.ndarray]) -> dict[str, int]:
    """How often each verdict comes out of the claim decided again on each draw."""
    counts: dict[str, int] = {}
    for drawn in draws:
        again = claim.decide(resample(own, drawn), settings).verdict
        counts[again] = counts.get(again, 0) + 1
    return counts


def summarise(record: dict, counts: Mapping[str, int], verdict: str) -> dict:
    """The stability record from the re-decisions' ``counts`` (none: not seed-dependent)."""
    resamples = sum(counts.values())
    if not resamples:
        return dict(record, agreement=1.0, fragile=False,
                    note="not seed-dependent: its tables hold no seeds to re-draw")
    agreement = counts.get(verdict, 0) / resamples
    return dict(record, resamples=resamples, agreement=agreement,
                fragile=bool(agreement < record["threshold"]),
                verdicts={k: v / resamples for k, v in sorted(counts.items())})

