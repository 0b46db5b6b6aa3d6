"""The synthesised answer to the article's question, built from the claims' records (not
from the tables: every number here is one a claim already decided on).

Its verdict is C6's (whether hidden-layer weight decay regularises the normalised
stacked networks under the main protocol, the article's assertion as tested); C8 says
whether it survives tuning each arm, C9 under which protocols it holds -- a verdict
true for one schedule and false for another is two findings, and the answer names
both. C1-C3 say whether the article's premise holds, C7 how much of weight decay's
effect its learning-rate-schedule equivalent explains. Verdicts their stability record
calls fragile are named as such."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import common as c
from .c9_protocols import in_order
from .effects import HARMED, IMPROVED, NOT_COMPARABLE, outcome_text

QUESTION = ("Is weight decay useless as a regulariser of networks with normalisation and "
            "no residual connections?")
PREMISE = ("C1", "C2", "C3")
MECHANISM = ("C4", "C5", "C7")


def verdict_of(x: Mapping) -> str:
    fragile = (x.get("stability") or {}).get("fragile")
    return f"{x['verdict']} (fragile)" if fragile else x["verdict"]


def by_role(per_arch: Mapping, role: str) -> dict:
    return {str(v.get("arch", k)): v for k, v in per_arch.items() if v.get("role") == role}


def main_sentence(c6: Mapping, c8: Mapping | None) -> str:
    m = c6.get("measured") or {}
    wd = m.get("headline_weight_decay")
    per_arch = m.get("per_arch") or {}
    head = ", ".join(outcome_text(a, x) for a, x in by_role(per_arch, "headline").items())
    ctrl = ", ".join(outcome_text(a, x) for a, x in by_role(per_arch, "control").items())
    at = f"at λ* = {wd:g}" if wd is not None else "at the pre-declared λ"
    text = (f"Main protocol ({at} vs λ = 0, C6 {verdict_of(c6)}): normalised stacked nets "
            f"{head or 'n/a'}; norm-free controls {ctrl or 'n/a'} (test-accuracy HL shift "
            f"[95% CI]).")
    if c8:
        text += f" Each arm tuned on the validation split (C8 {verdict_of(c8)}): {c8['key_numbers']}."
        text += edge_sentence((c8.get("measured") or {}).get("edge_selections") or {})
    return text


def edge_sentence(edges: Mapping) -> str:
    """What the grid edges of C8's selections mean for its direction: a better no-WD
    setting beyond the grid could close WD's lead; a better WD setting there could only
    have raised the WD arm's validation score (its edges handicap WD, if anything)."""
    if not edges:  # nothing was tuned
        return ""
    wd, no_wd = edges.get("weight_decay") or [], edges.get("no_weight_decay") or []
    text = ""
    if no_wd:
        text += (f" The no-WD arm is selected at a grid edge for {', '.join(no_wd)}: its "
                 f"tuning may be incomplete there, which can overstate WD's advantage.")
    else:
        text += " The no-WD arm's selected learning rate is interior for every architecture."
    if wd:
        text += (f" The WD arm is selected at a grid edge for {', '.join(wd)}: its tuning may "
                 f"be incomplete there, which if anything handicaps the WD arm.")
    return text


def protocol_sentence(c9: Mapping) -> str:
    per = in_order((c9.get("measured") or {}).get("per_protocol") or {})
    if len(per) < 2:
        return ""
    parts = []
    for name, p in per.items():
        if name == "main":
            continue
        cells = ", ".join(outcome_text(a, x) for a, x in p.get("per_arch", {}).items()
                          if x.get("role") in ("headline", "control"))
        parts.append(f"{name} ({p.get('changes') or 'as listed'}): {p['verdict']}; {cells}")
    o = protocol_outcomes(per)
    lead = {"refuted": "The answer depends on the protocol",
            "supported": "The answer is the same under every protocol",
            "inconclusive": "Not every protocol decides"}[c9["verdict"]]
    return (f"{lead} (C9 {verdict_of(c9)}): weight decay improves a normalised stacked net "
            f"under {', '.join(o['improved']) or 'no protocol'}, not under "
            f"{', '.join(o['not_improved']) or 'any other'}{outcomes_clause(o)}. "
            + "; ".join(parts) + ".")


def protocol_outcomes(per: Mapping) -> dict[str, list]:
    """Protocols by what weight decay did there: ``improved`` (a headline net),
    ``not_improved``, ``failed`` (every run of every headline cell diverged or
    collapsed: no measurement), and for the residual net res: ``res_improved`` of
    ``res_measured``, and ``res_failed``."""
    def outcomes(p, role):
        return [x["test_acc"].get("outcome")
                for x in by_role(p.get("per_arch", {}), role).values()]
    improved = [k for k, p in per.items() if IMPROVED in outcomes(p, "headline")]
    failed = [k for k, p in per.items() if k not in improved and outcomes(p, "headline")
              and set(outcomes(p, "headline")) == {NOT_COMPARABLE}]
    res = {k: p["per_arch"]["res"]["test_acc"].get("outcome") for k, p in per.items()
           if "res" in p.get("per_arch", {})}
    return {"improved": improved,
            "not_improved": [k for k in per if k not in improved and k not in failed],
            "failed": failed,
            "res_measured": [k for k, o in res.items() if o != NOT_COMPARABLE],
            "res_improved": [k for k, o in res.items() if o == IMPROVED],
            "res_failed": [k for k, o in res.items() if o == NOT_COMPARABLE]}


def outcomes_clause(o: Mapping[str, list]) -> str:
    """'; it improves the residual net res under 3 of the 4 protocols that measured it
    (...)' with the protocols where nothing was measured named as such."""
    text = ""
    if o["failed"]:
        text += (f"; under {', '.join(o['failed'])} every headline run of both arms "
                 "diverged or collapsed, so it measured nothing")
    if o["res_measured"]:
        text += (f"; it improves the residual net res under {len(o['res_improved'])} of the "
                 f"{len(o['res_measured'])} protocols that measured it "
                 f"({', '.join(o['res_improved']) or 'none'})")
    if o["res_failed"]:
        text += (f"; every res run of both arms diverged or collapsed under "
                 f"{', '.join(o['res_failed'])}")
    return text


def headline(by_id: Mapping[str, Mapping]) -> str:
    """The answer in one or two sentences: yes, no, or under which protocols."""
    c6 = by_id.get("C6") or {"verdict": "inconclusive"}
    c9 = by_id.get("C9")
    per = ((c9 or {}).get("measured") or {}).get("per_protocol") or {}
    heads = list(by_role(((c6.get("measured") or {}).get("per_arch") or {}), "headline"))
    nets = f"the normalised stacked nets ({', '.join(heads)})" if heads else \
        "the normalised stacked nets"
    if len(per) < 2:
        return {"refuted": f"No: weight decay improves {nets}.",
                "supported": f"Yes: weight decay does not improve {nets} beyond the margin.",
                }.get(c6["verdict"], "Not decided by this run.")
    per = in_order(per)
    o = protocol_outcomes(per)
    harmed = [f"{a} under {k}" for k, p in per.items()
              for a, x in by_role(p.get("per_arch", {}), "headline").items()
              if x["test_acc"].get("outcome") == HARMED]
    lead = {"refuted": "It depends on the training protocol.",
            "supported": ("No, under every protocol tested." if c6["verdict"] == "refuted"
                          else "Yes, under every protocol tested."),
            }.get(c9["verdict"], "Not decided under every protocol.")
    text = (f"{lead} Weight decay improves {nets} under "
            f"{', '.join(o['improved']) or 'no protocol'}"
            f"; not under {', '.join(o['not_improved']) or 'any other'}")
    if harmed:
        text += f" (it harms {', '.join(harmed)})"
    return text + outcomes_clause(o) + "."



def protocol_lines(by_id: Mapping[str, Mapping]) -> list[str]:
    """One line per protocol: its verdict and the headline and control effects."""
    per = (((by_id.get("C9") or {}).get("measured") or {}).get("per_protocol") or {})
    if not per and "C6" in by_id:
        per = {"main": {"verdict": by_id["C6"]["verdict"],
                        "per_arch": (by_id["C6"].get("measured") or {}).get("per_arch") or {}}}
    lines = []
    for name, p in in_order(per).items():
        cells = ", ".join(outcome_text(str(x.get("arch", a)), x)
                          for a, x in (p.get("per_arch") or {}).items()
                          if x.get("role") in ("headline", "control"))
        what = p.get("changes") or "the main grid"
        lines.append(f"{name} ({what}): {p['verdict']}; {cells or 'no runs'}")
    return lines


def context_sentence(by_id: Mapping[str, Mapping]) -> str:
    def verdicts(ids: Sequence[str]) -> str:
        return ", ".join(f"{i} {verdict_of(by_id[i])}" for i in ids if i in by_id)
    slabs = ((by_id.get("C7") or {}).get("measured") or {}).get("slabs") or {}
    shares = [f"{v.get('arch', k)} {c.fmt(s['share'])} [{c.fmt(s.get('ci_low'))}, "
              f"{c.fmt(s.get('ci_high'))}]" for k, v in slabs.items() if v.get("invariant")
              and (s := v.get("share_explained") or {}).get("share") is not None]
    share_txt = (f"; the LR schedule alone explains a share of WD's effect of "
                 f"{', '.join(shares)}" if shares else "")
    return (f"Premise (symmetry, removable penalty, orthogonal gradients): "
            f"{verdicts(PREMISE)}. Mechanism (equilibrium angle, only ηλ matters, WD as an "
            f"LR schedule): {verdicts(MECHANISM)}{share_txt}.")


def answer(claims: Sequence[Mapping]) -> dict:
    """{"question", "headline", "verdict", "text", "by_protocol", "fragile", "verdicts"}:
    ``headline`` answers in a sentence or two, ``text`` with every number."""
    by_id = {x["id"]: x for x in claims}
    c6 = by_id.get("C6", {"verdict": "inconclusive", "measured": {}})
    parts = [main_sentence(c6, by_id.get("C8"))]
    if "C9" in by_id:
        parts.append(protocol_sentence(by_id["C9"]))
    parts.append(context_sentence(by_id))
    fragile = [i for i, x in by_id.items() if (x.get("stability") or {}).get("fragile")]
    if fragile:
        parts.append(f"Fragile under a re-draw of the seeds: {', '.join(fragile)}.")
    return {"question": QUESTION, "headline": headline(by_id),
            "verdict": c6.get("verdict", "inconclusive"),
            "text": " ".join(p for p in parts if p), "by_protocol": protocol_lines(by_id),
            "fragile": fragile,
            "verdicts": {i: x["verdict"] for i, x in by_id.items()}}
