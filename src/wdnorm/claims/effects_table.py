"""``effects.csv``: one row per claim × protocol × setting × architecture × metric of the
weight-decay comparisons the verdicts rest on (C6, C8, C9), flattened from the claims'
records so a reader can plot or re-test them without parsing claims.json.

Units: accuracies and their differences are fractions (``unit`` = "fraction": 0.01 is
one percentage point); p-values are one- or two-sided as their names say; ``outcome``
is the cell's decision at the family-wise α after Holm (improves / harms / no
detectable change; *not comparable* where every run of both arms failed), ``verdict``
the verdict of the protocol (or setting) it belongs to; ``runs_*`` and ``diverged_*``
count each arm's runs and divergences (kept as outcomes).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import effects

COLUMNS = ["claim", "protocol", "factor", "dataset", "optimiser", "arch", "role", "comparison",
           "metric", "unit", "n", "estimate", "ci_low", "ci_high", "ci_level", "mean",
           "p_improves", "p_improves_holm", "p_changes", "p_changes_holm", "outcome",
           "verdict", "runs_wd", "diverged_wd", "runs_no_wd", "diverged_no_wd"]


def _rows(claim: str, protocol: str, factor: str, comparison: str, cell: Mapping,
          key: Mapping, verdict: str) -> list[dict]:
    arms = cell.get("arms") or {}
    counts = {f"{what}_{suffix}": (arms.get(arm) or {}).get(what)
              for arm, suffix in (("weight_decay", "wd"), ("no_weight_decay", "no_wd"))
              for what in ("runs", "diverged")}
    out = []
    for metric in effects.IMPROVES:
        e = cell.get(metric)
        if not isinstance(e, Mapping):
            continue
        out.append(dict(
            claim=claim, protocol=protocol, factor=factor, dataset=key.get("dataset"),
            optimiser=key.get("optimiser"), arch=cell.get("arch"), role=cell.get("role"),
            comparison=comparison, metric=metric, unit="fraction", n=e.get("n"),
            estimate=e.get("hl"), ci_low=e.get("ci_low"), ci_high=e.get("ci_high"),
            ci_level=e.get("ci_level"), mean=e.get("mean"), p_improves=e.get("p_improves"),
            p_improves_holm=e.get("p_improves_holm"), p_changes=e.get("p_changes"),
            p_changes_holm=e.get("p_changes_holm"), outcome=e.get("outcome"),
            verdict=verdict, **counts))
    return out


def _setting(name: str) -> dict:
    parts = name.split("/")
    return dict(zip(("dataset", "optimiser", "arch"), parts)) if len(parts) == 3 else {}


def effects_rows(claims: list[Mapping]) -> pd.DataFrame:
    """The table from decide_all's claim records."""
    by_id = {x["id"]: x for x in claims}
    rows: list[dict] = []
    for cid, comparison in (("C6", "λ* vs λ=0"), ("C8", "tuned WD vs tuned no-WD")):
        m = (by_id.get(cid) or {}).get("measured") or {}
        settings = m.get("per_setting") or {}
        for name, cell in (m.get("per_arch") or {}).items():
            key = _setting(name)
            setting = f"{key.get('dataset')}/{key.get('optimiser')}"
            verdict = (settings.get(setting) or next(iter(settings.values()), {})).get("verdict")
            wd = cell.get("weight_decay")
            label = f"λ={wd:g} vs λ=0" if cid == "C6" and wd is not None else comparison
            rows += _rows(cid, "main", "", label, cell, key, verdict)
    c9 = ((by_id.get("C9") or {}).get("measured") or {}).get("per_protocol") or {}
    for name, p in c9.items():
        key = {"dataset": p.get("data"), "optimiser": p.get("optimiser")}
        wd = p.get("weight_decay")
        comparison = f"λ={wd:g} vs λ=0" if wd is not None else "λ* vs λ=0"
        for cell in (p.get("per_arch") or {}).values():
            rows += _rows("C9", name, p.get("changes", ""), comparison, cell, key,
                          p.get("verdict"))
        for cell in (p.get("tuned") or {}).values():
            rows += _rows("C9", name, p.get("changes", ""), "tuned WD vs tuned no-WD", cell,
                          key, p.get("verdict"))
    return pd.DataFrame(rows, columns=COLUMNS)
