"""The synthesised answer to the article's question, built from the claims' records (not
from the tables: every number here is one a claim already decided on).

The answer's verdict is C6's: whether hidden-layer weight decay regularises the
normalised stacked networks is what the article asserts. C1-C3 say whether its premise
(the symmetry, the removable penalty) holds, C4, C5 and C7 whether the literature's
mechanism (WD sets an effective learning rate) explains what WD does instead, and C8
whether C6's answer survives tuning each arm's learning rate (and λ) separately."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import common as c

QUESTION = ("Is weight decay useless as a regulariser of networks with normalisation and "
            "no residual connections?")
PREMISE = ("C1", "C2", "C3")
MECHANISM = ("C4", "C5", "C7")
TUNED = "C8"


def effect_numbers(cell: Mapping) -> dict:
    e = cell.get("test_acc") or {}
    return {"hl": c.fnum(e.get("hl")), "ci_low": c.fnum(e.get("ci_low")),
            "ci_high": c.fnum(e.get("ci_high")),
            "upper_bound_one_sided": c.fnum(e.get("upper_bound_one_sided")),
            "p_improves_holm": c.fnum(e.get("p_improves_holm")), "n": cell.get("n_pairs")}


def key_numbers(c6: Mapping, c7: Mapping) -> dict:
    per_arch = (c6.get("measured") or {}).get("per_arch") or {}
    slabs = (c7.get("measured") or {}).get("slabs") or {}
    return {
        "weight_decay": (c6.get("measured") or {}).get("headline_weight_decay"),
        "headline": {k: effect_numbers(v) for k, v in per_arch.items() if v["role"] == "headline"},
        "positive_controls": {k: dict(effect_numbers(v), improves=v["test_acc"]["improves"])
                              for k, v in per_arch.items() if v["role"] == "control"},
        "share_explained": {k: v["share_explained"] for k, v in slabs.items() if v["invariant"]},
    }


def verdict_sentence(verdict: str, c6: Mapping, numbers: Mapping) -> str:
    wd = numbers["weight_decay"]
    margin = (c6.get("tolerance") or {}).get("margin")
    head = ", ".join(f"{k} {c.ci_pp(v)}" for k, v in numbers["headline"].items()) or "none"
    controls = [f"{k} ({c.ci_pp(v)})" for k, v in numbers["positive_controls"].items()
                if v["improves"]]
    at = f"at λ* = {wd:g}" if wd is not None else "at the pre-declared λ"
    if verdict == "supported":
        return (f"Supported on this data: {at}, hidden-layer weight decay does not improve the "
                f"normalised stacked nets' test accuracy by {100 * margin:g} pp or more "
                f"(HL shift [95% CI]: {head}), although it does improve "
                f"{', '.join(controls)}, so the experiment could have seen a regulariser.")
    if verdict == "refuted":
        return (f"Refuted on this data: {at}, weight decay significantly improves test "
                f"accuracy of a normalised stacked net ({head}).")
    reasons = "; ".join(f"{s}: {v['reason']}" for s, v in
                        ((c6.get("measured") or {}).get("per_setting") or {}).items())
    return (f"Not decided on this data ({reasons or c6.get('summary', 'no C6 data')}); "
            f"headline effects {at}: {head}.")


def context_sentence(by_id: Mapping[str, Mapping], numbers: Mapping) -> str:
    def verdicts(ids: Sequence[str]) -> str:
        return ", ".join(f"{i} {by_id[i]['verdict']}" for i in ids if i in by_id)
    shares = [f"{k} {c.fmt(v['share'])} [{c.fmt(v.get('ci_low'))}, {c.fmt(v.get('ci_high'))}]"
              for k, v in numbers["share_explained"].items() if v.get("share") is not None]
    share_txt = (f"; share of WD's effect the LR schedule alone explains: {', '.join(shares)}"
                 if shares else "")
    tuned = by_id.get(TUNED)
    tuned_txt = (f" Best-tuned WD vs best-tuned no-WD ({TUNED}): {tuned['verdict']} "
                 f"({tuned['key_numbers']})." if tuned else "")
    return (f"Premise (symmetry, removable penalty, orthogonal gradients): {verdicts(PREMISE)}. "
            f"Mechanism (equilibrium angle, only ηλ matters, WD as an LR schedule): "
            f"{verdicts(MECHANISM)}{share_txt}.{tuned_txt}")


def answer(claims: Sequence[Mapping]) -> dict:
    """{"question", "verdict", "text", "key_numbers", "verdicts"}."""
    by_id = {x["id"]: x for x in claims}
    c6, c7 = by_id.get("C6", {}), by_id.get("C7", {})
    verdict = c6.get("verdict", "inconclusive")
    numbers = key_numbers(c6, c7)
    text = verdict_sentence(verdict, c6, numbers) + " " + context_sentence(by_id, numbers)
    return {"question": QUESTION, "verdict": verdict, "text": text, "key_numbers": numbers,
            "verdicts": {i: x["verdict"] for i, x in by_id.items()}}
