"""The snakemake report's own pages, built from claims.json:

- the front page (``results/report/front.rst``, included by workflow/report/workflow.rst):
  the question, the answer and one line per claim (id, verdict, "fragile" where the
  verdict's stability check says so) -- short enough to be read on the first screen,
  which snakemake centres vertically and cannot scroll above;
- the verdict table (``results/report/verdicts.html``, a report item of category
  "Verdicts"): per claim its verdict, stability, test, n, key numbers and figure;
- the configuration (``results/report/configuration.html``, category "Configuration"),
  as YAML;
- each figure's caption with its test and n filled in (``results/captions/{figure}.rst``,
  included by workflow/report/figure.rst).

reStructuredText (HTML rendered from it by docutils, as snakemake's report does), written
atomically."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from .. import fileio
from .claims_view import ClaimsView
from .registry import REGISTRY, Figure
from .registry import rst_escape as escape

_ABOUT = ("Replication of the claim \"weight decay is useless without residual connections\": "
          "MLP architectures named by formula (the article's \"pre/post-norm\" is reversed from "
          "standard usage, see ``docs/architectures.md``) are trained over a grid of weight "
          "decays and seeds, probed for the scaling symmetries that make the hidden-layer L2 "
          "penalty removable, tested against the angular-equilibrium theory of "
          "scale-invariant weights, and compared with learning-rate-schedule equivalents of "
          "weight decay. Each claim gets a verdict computed from the result tables "
          "(``results/claims.json``, ``results/CLAIMS.md``; rules and tests in "
          "``docs/claims.md``); each figure names in its header the verdict, test and n of the "
          "claims it shows.")


def _claim_ids(claims: ClaimsView) -> list[str]:
    ids = claims.ids() or [c for f in REGISTRY.values() for c in f.claims]
    return sorted(dict.fromkeys(ids), key=lambda c: (len(c), c))


def _stability(claims: ClaimsView, cid: str) -> str:
    """"fragile" or "stable", with the agreement and its threshold; "not checked"
    without a stability check (claims.json older than it)."""
    check = claims.stability(cid)
    if "fragile" not in check:
        return "not checked"
    fragile = claims.fragile(cid)
    word = "fragile" if fragile else "stable"
    if all(isinstance(check.get(k), (int, float)) for k in ("agreement", "threshold")):
        relation = "<" if fragile else "≥"
        return f"{word} (agreement {check['agreement']:.2f} {relation} {check['threshold']:.2f})"
    return word


def front_page(claims: ClaimsView) -> str:
    """The question, the answer, one line per claim, and where the rest is."""
    headline, per_protocol = claims.headline()
    question = claims.question() or "Is weight decay useless without residual connections?"
    lines = [f"**{escape(question)}**", "",
             f"**Answer:** {escape(headline) or 'n/a'}", ""]
    lines += [f"- {escape(line)}" for line in per_protocol] + [""]
    verdicts = []
    for cid in _claim_ids(claims):
        fragile = " (⚠ *fragile*)" if claims.fragile(cid) else ""
        verdicts.append(f"**{escape(cid)}** {escape(claims.verdict(cid))}{fragile}")
    # one line for the verdicts: the first screen holds the question and the answer
    lines += ["Verdicts: " + " · ".join(verdicts), "",
              "The answer with every number, each claim's test, n and key numbers: "
              "*Verdicts*; figures: *Figures*; the configuration: *Configuration*."]
    return "\n".join(lines) + "\n"


def verdict_table(claims: ClaimsView) -> str:
    """The answer, then one row per claim: verdict, stability, test, n, key numbers, figure."""
    lines = ["Verdicts", "========", ""]
    verdict, text = claims.answer()
    if text:
        head = f"Answer ({escape(verdict)})" if verdict else "Answer"
        lines += [f"**{head}.** {escape(text)}", ""]
    lines += [".. list-table:: Verdicts, computed from the result tables "
              "(``results/claims.json``; rules in ``docs/claims.md``)",
              "   :header-rows: 1", "   :widths: 12 9 9 18 8 34 10", "",
              "   * - claim", "     - verdict", "     - stability", "     - test", "     - n",
              "     - key numbers", "     - figure"]
    for cid in _claim_ids(claims):
        title = claims.get(cid).get("title") or ""
        lines += [f"   * - {escape(f'{cid} {title}'.strip())}",
                  f"     - **{escape(claims.verdict(cid))}**",
                  f"     - {escape(_stability(claims, cid))}",
                  f"     - {_text_cell(claims.test(cid))}",
                  f"     - {escape(claims.n(cid).removeprefix('n = '))}",
                  f"     - {_text_cell(claims.key_numbers(cid))}",
                  f"     - {escape(_figures_of(cid))}"]
    return "\n".join([*lines, "", "About this workflow", "-------------------", "", _ABOUT]) + "\n"


def _text_cell(text: str) -> str:
    """A table cell of plain text: a line block, so that a text opening on "(a) ..."
    (C7's test) stays text instead of becoming an enumerated list."""
    return f"| {escape(text)}" if text else "n/a"


def _figures_of(cid: str) -> str:
    return ", ".join(f"{f.name}.png" for f in REGISTRY.values() if cid in f.claims) or "none"


_CSS = ("body{font-family:sans-serif;font-size:14px;margin:1.5em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 6px;"
        "vertical-align:top;text-align:left}th{background:#f2f2f2}"
        "pre{background:#f7f7f7;padding:1em;font-size:13px}")


def rst_to_html(text: str, title: str) -> str:
    """A standalone HTML page of reStructuredText (the report shows it in a frame)."""
    from docutils.core import publish_parts  # only the report's pages need it

    parts = publish_parts(text, writer="html5", settings_overrides={
        "halt_level": 2, "embed_stylesheet": False, "stylesheet_path": "",
        "report_level": 5})
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>{parts['html_body']}</body></html>\n")


def configuration_page(config: Mapping) -> str:
    """The run's configuration (schema defaults filled in) as YAML, in an HTML page."""
    import yaml

    # lists of scalars on one line (seeds, weight decays), mappings as blocks
    text = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True,
                          default_flow_style=None, width=88)
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Configuration</title>"
            f"<style>{_CSS}</style></head><body><h1>Configuration</h1><p>The configuration "
            f"the verdicts were computed with, after the schema's defaults "
            f"(<code>config.yaml</code> and <code>src/wdnorm/config.schema.yaml</code>), as "
            f"the report's verdict table was written.</p><pre>{html.escape(text)}</pre>"
            f"</body></html>\n")


def write_pages(claims_path: str | Path, config: Mapping, front: str | Path,
                verdicts: str | Path, configuration: str | Path) -> None:
    claims = ClaimsView.load(claims_path)
    fileio.write_text(front, front_page(claims))
    fileio.write_text(verdicts, rst_to_html(verdict_table(claims), "Verdicts"))
    fileio.write_text(configuration, configuration_page(config))


def write_caption(record: Figure, claims: ClaimsView, output: str | Path) -> Path:
    return fileio.write_text(output, record.caption_text(claims) + "\n")
