"""claims.json and CLAIMS.md from :func:`decide_all`'s result: the answer first, then the
verdict table (id, title, verdict, test, n, key numbers), then one section per claim."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from . import common as c


def jsonable(obj):
    """Plain JSON types; NaN and inf become null (claims.json is strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return c.fnum(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "item"):
        return jsonable(obj.item())
    return str(obj)


def escape(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def compact(obj) -> str:
    if isinstance(obj, Mapping):
        return ", ".join(f"{k}={compact(v)}" for k, v in obj.items())
    if isinstance(obj, float):
        return c.fmt(obj) if math.isfinite(obj) else "n/a"
    return str(obj)


def stability_text(x: Mapping) -> str:
    """'0.97 of 200 resamples' or 'FRAGILE: 0.71 of 200 resamples'."""
    s = x.get("stability") or {}
    if not s.get("resamples"):
        return s.get("note", "n/a")
    share = f"{s['agreement']:.2f} of {s['resamples']} seed resamples agree"
    return f"FRAGILE: {share}" if s.get("fragile") else share


def verdict_table(items) -> list[str]:
    lines = ["| claim | verdict | stability | test | n | key numbers |",
             "|---|---|---|---|---|---|"]
    for x in items:
        fragile = " (fragile)" if (x.get("stability") or {}).get("fragile") else ""
        lines.append("| " + " | ".join(escape(v) for v in (
            f"{x['id']} {x['title']}", f"**{x['verdict']}**{fragile}", stability_text(x),
            x["test"], compact(x["n"]), x["key_numbers"])) + " |")
    return lines


def claim_section(x: Mapping) -> list[str]:
    tables = ", ".join(f"`{t}`" for t in x["tables"])
    fragile = " (fragile)" if (x.get("stability") or {}).get("fragile") else ""
    return [f"## {x['id']} {x['title']}: {x['verdict']}{fragile}", "", x["summary"], "",
            f"- Test: {x['test']}", f"- Rule: {x['rule']}",
            f"- Stability: {stability_text(x)}",
            f"- Tolerance: `{compact(x['tolerance'])}`", f"- n: `{compact(x['n'])}`",
            f"- Article: {x['prediction_article']}",
            f"- Literature: {x['prediction_literature']}",
            f"- Tables: {tables}", f"- Figure: `{x['figure']}`", ""]


def render_markdown(result: Mapping) -> str:
    """CLAIMS.md."""
    ans = result.get("answer") or {}
    lines = ["# Claims: is weight decay useless without residual connections?", "",
             f"**{ans.get('question', '')}**", "", f"**Answer.** {ans.get('headline', '')}", "",
             *[f"- {line}" for line in ans.get("by_protocol") or []], "",
             f"In full (C6 {ans.get('verdict', 'n/a')} under the main protocol): "
             f"{ans.get('text', '')}", "",
             "Verdicts are computed from the tables by `wdnorm.claims`, never hard-coded; "
             "the full numbers are in `claims.json`.", ""]
    lines += verdict_table(result["claims"]) + [""]
    for x in result["claims"]:
        lines += claim_section(x)
    lines += ["## Naming", "", "| name | formula | article | standard |", "|---|---|---|---|"]
    for arch, m in (result.get("naming") or {}).items():
        lines.append(f"| `{arch}` | {escape(m['formula'])} | {m['article_name']} | "
                     f"{m['standard_name']} |")
    lines += ["", "## Inputs", "", "| table | rows | sha256 |", "|---|---|---|"]
    for name, meta in (result.get("inputs") or {}).items():
        lines.append(f"| `{meta['path']}` | {meta['rows']} | `{meta['sha256']}` |")
    return "\n".join(lines) + "\n"


def closing_summary(result: Mapping, paths: Mapping[str, str]) -> str:
    """What the end of a run prints: the question, the answer, one line per verdict
    (fragile ones marked) and where the verdicts, tables, figures and report are."""
    ans = result.get("answer") or {}
    lines = [f"{ans.get('question', '')}", f"Answer: {ans.get('headline', '')}",
             *[f"  {line}" for line in ans.get("by_protocol") or []], ""]
    for x in result.get("claims") or []:
        fragile = " (fragile)" if (x.get("stability") or {}).get("fragile") else ""
        lines.append(f"  {x['id']} {x['verdict']}{fragile}: {x['title']}")
    lines += [""] + [f"{name}: {where}" for name, where in paths.items()]
    return "\n".join(lines)
