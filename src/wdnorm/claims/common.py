"""What every claim module shares: the claim record, tolerances and settings look-ups,
table selections (run kind, status, booleans read back from CSV), groups and their
labels, the architecture roles asked of :mod:`wdnorm.archs`, and number formatting."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import archs
from ..frames import as_bool  # noqa: F401  (the claims read booleans as c.as_bool)

VERDICTS = ("supported", "refuted", "inconclusive")
GROUP = ("dataset", "optimiser", "arch")
STATUSES = ("ok", "diverged", "collapsed")
DEFAULT_ALPHA = 0.05


# --------------------------------------------------------------------------- settings

def tolerances(settings: Mapping | None, defaults: Mapping) -> dict:
    """A claim's ``defaults`` overridden (only its keys) by ``settings["tolerances"]``,
    or by ``settings["claims"]["tolerances"]`` -- where a config states them."""
    override = {**(claims_settings(settings).get("tolerances") or {}),
                **((settings or {}).get("tolerances") or {})}
    return {k: override.get(k, v) for k, v in defaults.items()}


def claims_settings(settings: Mapping | None) -> dict:
    return dict((settings or {}).get("claims") or {})


def alpha(settings: Mapping | None) -> float:
    return float(claims_settings(settings).get("alpha", DEFAULT_ALPHA))


def claims_weight_decay(settings: Mapping | None) -> float | None:
    wd = claims_settings(settings).get("weight_decay")
    return None if wd is None else float(wd)


def optimiser_setting(settings: Mapping | None, optimiser: str, key: str):
    return ((settings or {}).get("optimisers") or {}).get(optimiser, {}).get(key)


# --------------------------------------------------------------------------- archs

def record(arch: str):
    """The registry record of ``arch``, or None for a name the registry does not know."""
    return archs.REGISTRY.get(str(arch))


def is_invariant(arch: str) -> bool:
    """A predicted scale symmetry of the hidden layers (per layer or joint)."""
    r = record(arch)
    return bool(r and r.invariant)


def is_headline(arch: str) -> bool:
    """The article's subject: normalised, no residual connection, scale-invariant (ln, bn)."""
    r = record(arch)
    return bool(r and r.role == "headline")


def is_contrast(arch: str) -> bool:
    """No symmetry and no norm (plain, res): the positive control of C6 and the
    architectures where C7's exact equivalent must fail."""
    r = record(arch)
    return bool(r and r.role == "control")


def naming() -> dict:
    """Formula and article / standard names of every registered architecture."""
    return {a.name: {"formula": a.formula, "article_name": a.article_name,
                     "standard_name": a.standard_name} for a in archs.REGISTRY.values()}


# --------------------------------------------------------------------------- tables

def empty(df) -> bool:
    return df is None or len(df) == 0


def healthy(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"].fillna("ok") == "ok"] if "status" in df.columns else df


def of_kind(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Rows of one run kind; a table without a ``kind`` column holds grid runs only."""
    if "kind" not in df.columns:
        return df if kind == "grid" else df.iloc[0:0]
    return df[df["kind"] == kind]


def close(series: pd.Series, value: float) -> pd.Series:
    return pd.Series(np.isclose(series.astype(float), float(value), rtol=1e-9, atol=0.0),
                     index=series.index)


def status_counts(df: pd.DataFrame) -> dict:
    """Runs per status (ok / diverged / collapsed, and any other value found)."""
    if "status" not in df.columns:
        return {"runs": int(len(df)), "ok": int(len(df)), "diverged": 0, "collapsed": 0}
    counts = df["status"].fillna("ok").value_counts().to_dict()
    out = {"runs": int(len(df))}
    out.update({s: int(counts.pop(s, 0)) for s in STATUSES})
    out.update({str(k): int(v) for k, v in counts.items()})
    return out


def paired(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> tuple[np.ndarray, list]:
    """(a − b per seed over the seeds both arms have, those seeds); non-finite
    differences dropped."""
    if metric not in a.columns or metric not in b.columns:
        return np.array([]), []
    # a dict join, not a merge: this runs for every cell of every bootstrap resample
    other = dict(zip(b["seed"].tolist(), b[metric].to_numpy(dtype=float)))
    seeds = [s for s in a["seed"].tolist() if s in other]
    mine = dict(zip(a["seed"].tolist(), a[metric].to_numpy(dtype=float)))
    d = np.array([mine[s] - other[s] for s in seeds], dtype=np.float64)
    keep = np.isfinite(d)
    return d[keep], [int(s) for s, k in zip(seeds, keep) if k]


def groups(df: pd.DataFrame, keys=GROUP):
    """(key dict, frame) per group of the ``keys`` the frame has, in table order."""
    present = [k for k in keys if k in df.columns]
    if not present:
        yield {}, df
        return
    for values, g in df.groupby(present, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        yield dict(zip(present, values)), g


class Labeller:
    """Group names. In claims.json a group is always named by its whole key,
    'dataset/optimiser/arch' (stable, whatever the config holds); in the summaries'
    text by the arch alone when the frames hold one dataset and one optimiser."""

    def __init__(self, *frames: pd.DataFrame | None):
        self.multi = any(col in df.columns and df[col].nunique() > 1
                         for df in frames if df is not None for col in ("dataset", "optimiser"))

    @staticmethod
    def key(key: Mapping) -> str:
        return "/".join(str(key[k]) for k in GROUP if k in key)

    def __call__(self, key: Mapping) -> str:
        return self.key(key)

    def short(self, name: str) -> str:
        """A group's name in text: its last part unless the frames hold several
        settings."""
        return name if self.multi else name.rsplit("/", 1)[-1]

    def display(self, mapping: Mapping) -> dict:
        """``mapping`` keyed by :meth:`short` names (for the summaries)."""
        return {self.short(k): v for k, v in mapping.items()}

    def setting(self, key: Mapping) -> str:
        return "/".join(str(key[k]) for k in ("dataset", "optimiser") if k in key) or "-"


# --------------------------------------------------------------------------- records

@dataclass
class Decision:
    """What a claim's ``decide`` returns: its verdict and what it measured. The claim's
    fixed fields (test, rule, tolerances, tables, figure, predictions) come from its
    record (:class:`wdnorm.claims.registry.Claim`)."""
    verdict: str
    summary: str
    key_numbers: str = "no data"
    n: Any = 0
    measured: dict = field(default_factory=dict)

    def __post_init__(self):
        assert self.verdict in VERDICTS, self.verdict


def fnum(x) -> float | None:
    """A JSON-friendly float (None for NaN/inf/missing)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt(x, digits: int = 3) -> str:
    """Short number for summaries."""
    x = fnum(x)
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    return f"{x:.{max(1, digits - 1)}e}"


def pp(x) -> str:
    """An accuracy difference in percentage points."""
    x = fnum(x)
    return "n/a" if x is None else f"{100 * x:+.2f} pp"


def pvalue(p) -> str:
    p = fnum(p)
    return "n/a" if p is None else (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}")


def ci_pp(effect: Mapping) -> str:
    """'+1.20 pp [+0.40, +2.10]' from an effect record (HL estimate and CI)."""
    lo, hi = fnum(effect.get("ci_low")), fnum(effect.get("ci_high"))
    bounds = (f"[{pp(lo) if lo is not None else '−∞'}, {pp(hi) if hi is not None else '+∞'}]"
              .replace(" pp", ""))
    return f"{pp(effect.get('hl'))} {bounds}"


def failures_note(cell: Mapping) -> str:
    """' (diverged: WD 9/10, no-WD 10/10)' when runs of either arm diverged or collapsed
    (they are scored as outcomes; see ``effects.NOT_COMPARABLE``)."""
    arms = cell.get("arms") or {}
    parts = []
    for status in ("diverged", "collapsed"):
        counts = [f"{label} {arms[arm][status]}/{arms[arm]['runs']}"
                  for label, arm in (("WD", "weight_decay"), ("no-WD", "no_weight_decay"))
                  if (arms.get(arm) or {}).get(status)]
        if counts:
            parts.append(f"{status}: {', '.join(counts)}")
    return f" ({'; '.join(parts)})" if parts else ""
