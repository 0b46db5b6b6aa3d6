"""Text of the snakemake report built from claims.json: the verdict table the report
opens on (``results/report/verdicts.rst``, included by workflow/report/workflow.rst) and
each figure's caption with its test and n filled in (``results/captions/{figure}.rst``,
included by workflow/report/figure.rst). reStructuredText, written atomically."""

from __future__ import annotations

from pathlib import Path

from .. import fileio
from .claims_view import ClaimsView
from .registry import REGISTRY, Figure
from .registry import rst_escape as escape

def _figures_of(cid: str) -> str:
    return ", ".join(f"{f.name}.png" for f in REGISTRY.values() if cid in f.claims) or "-"


def verdict_table(claims: ClaimsView) -> str:
    """The answer, then one row per claim: verdict, test, n, key numbers, figure."""
    lines = []
    verdict, text = claims.answer()
    if text:
        head = f"Answer ({escape(verdict)})" if verdict else "Answer"
        lines += [f"**{head}.** {escape(text)}", ""]
    lines += [".. list-table:: Verdicts, computed from the result tables "
              "(``results/claims.json``; rules in ``docs/claims.md``)",
              "   :header-rows: 1", "   :widths: 14 10 18 8 40 10", "",
              "   * - claim", "     - verdict", "     - test", "     - n", "     - key numbers",
              "     - figure"]
    ids = claims.ids() or [c for f in REGISTRY.values() for c in f.claims]
    for cid in sorted(dict.fromkeys(ids), key=lambda c: (len(c), c)):
        title = claims.get(cid).get("title") or ""
        lines += [f"   * - {escape(f'{cid} {title}'.strip())}",
                  f"     - **{escape(claims.verdict(cid))}**",
                  f"     - {escape(claims.test(cid))}",
                  f"     - {escape(claims.n(cid).removeprefix('n = '))}",
                  f"     - {escape(claims.key_numbers(cid)) or '-'}",
                  f"     - {escape(_figures_of(cid))}"]
    return "\n".join(lines) + "\n"


def write_verdicts(claims_path: str | Path, output: str | Path) -> Path:
    return fileio.write_text(output, verdict_table(ClaimsView.load(claims_path)))


def write_caption(record: Figure, claims: ClaimsView, output: str | Path) -> Path:
    return fileio.write_text(output, record.caption_text(claims) + "\n")
