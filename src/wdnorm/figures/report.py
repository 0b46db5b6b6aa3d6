"""Text of the snakemake report built from claims.json: the verdict table the report
opens on (``results/report/verdicts.rst``, included by workflow/report/workflow.rst) and
each figure's caption with its test and n filled in (``results/captions/{figure}.rst``,
included by workflow/report/figure.rst). reStructuredText, written atomically."""

from __future__ import annotations

import re
from pathlib import Path

from .. import fileio
from .claims_view import ClaimsView
from .registry import REGISTRY, Figure

_RST_SPECIAL = re.compile(r"([\\`*_|])")


def escape(text: str) -> str:
    """Plain text safe inside reStructuredText (no accidental markup)."""
    return _RST_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _figures_of(cid: str) -> str:
    return ", ".join(f"{f.name}.png" for f in REGISTRY.values() if cid in f.claims) or "-"


def verdict_table(claims: ClaimsView) -> str:
    """The answer, then one row per claim: verdict, test, n, summary, figure."""
    lines = []
    if claims.answer():
        lines += [f"**Answer.** {escape(claims.answer())}", ""]
    lines += [".. list-table:: Verdicts, computed from the result tables "
              "(``results/claims.json``; rules in ``docs/claims.md``)",
              "   :header-rows: 1", "   :widths: 14 10 18 8 40 10", "",
              "   * - claim", "     - verdict", "     - test", "     - n", "     - summary",
              "     - figure"]
    ids = claims.ids() or [c for f in REGISTRY.values() for c in f.claims]
    for cid in sorted(dict.fromkeys(ids), key=lambda c: (len(c), c)):
        title = claims.get(cid).get("title") or ""
        lines += [f"   * - {escape(f'{cid} {title}'.strip())}",
                  f"     - **{escape(claims.verdict(cid))}**",
                  f"     - {escape(claims.test(cid))}",
                  f"     - {escape(claims.n(cid).removeprefix('n = '))}",
                  f"     - {escape(claims.summary(cid)) or '-'}",
                  f"     - {escape(_figures_of(cid))}"]
    return "\n".join(lines) + "\n"


def write_verdicts(claims_path: str | Path, output: str | Path) -> Path:
    return fileio.write_text(output, verdict_table(ClaimsView.load(claims_path)))


def write_caption(record: Figure, claims: ClaimsView, output: str | Path) -> Path:
    return fileio.write_text(output, record.caption_text(claims) + "\n")
