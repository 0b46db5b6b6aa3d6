"""Read-only access to ``results/claims.json`` for figures, captions and the report.

Figures never compute a verdict: they print what claims.json says (verdict, statistical
test, n per arm, key numbers, tolerances). The file's shape is ``{"claims": [{"id": "C1",
...}, ...], "verdicts": {...}, "answer": ..., "tolerances": {...}}``; a mapping by id in
place of the list is accepted too, and every accessor has a stated fallback, so a figure
still draws when claims.json is missing or older than the figure code. Pure Python (no
pandas, no matplotlib): the report rule imports it without paying for either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import archs

MISSING = "n/a"


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _ints(value) -> list[int]:
    """Every integer in ``value``, nested mappings and lists included."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, float) and value.is_integer():
        return [int(value)]
    if isinstance(value, Mapping):
        return [i for v in value.values() for i in _ints(v)]
    if isinstance(value, (list, tuple)):
        return [i for v in value for i in _ints(v)]
    return []


def _range(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def format_n(n) -> str:
    """A claim's sample size in a few words: ``n = 10``; per architecture (a mapping
    by architecture name) ``n = 8–10 per architecture``; counts of named things
    ``n: 140 cells, 8 architectures``; ``n = n/a`` without any number."""
    values = _ints(n)
    if not values:
        return f"n = {MISSING}"
    if isinstance(n, Mapping) and n and all(k in archs.REGISTRY for k in n):
        return f"n = {_range(values)} per architecture"
    if isinstance(n, Mapping) and n and all(len(_ints(v)) == 1 for v in n.values()):
        return "n: " + ", ".join(f"{_ints(v)[0]} {k}" for k, v in n.items())
    return f"n = {_range(values)}"


def format_test(test) -> str:
    """The statistical test (or numerical check) named by a claim."""
    if isinstance(test, str) and test.strip():
        return " ".join(test.split())
    if isinstance(test, Mapping):
        names = [str(v) for v in test.values() if isinstance(v, str) and v.strip()]
        return "; ".join(dict.fromkeys(names)) or f"test {MISSING}"
    return f"test {MISSING}"


class ClaimsView:
    """The parsed claims.json. ``accessed`` records every claim id asked for, so a test
    can check that a figure reads exactly the claims its registry record declares."""

    def __init__(self, data: Mapping | None = None):
        self.data: Mapping = data if isinstance(data, Mapping) else {}
        self.accessed: set[str] = set()

    @classmethod
    def load(cls, path: str | Path | None) -> "ClaimsView":
        if path is None or not Path(path).is_file():
            return cls({})
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def ids(self) -> list[str]:
        table = self.data.get("claims", {})
        if isinstance(table, list):
            return [str(r["id"]) for r in table if isinstance(r, Mapping) and "id" in r]
        return [str(k) for k in table] if isinstance(table, Mapping) else []

    def get(self, cid: str) -> dict:
        """One claim's record ({} when absent); the top-level ``verdicts`` fills in a
        missing verdict."""
        self.accessed.add(cid)
        table = self.data.get("claims", {})
        record = None
        if isinstance(table, list):
            record = next((r for r in table if isinstance(r, Mapping) and r.get("id") == cid),
                          None)
        elif isinstance(table, Mapping):
            record = table.get(cid)
        record = dict(record) if isinstance(record, Mapping) else {}
        verdicts = self.data.get("verdicts")
        if "verdict" not in record and isinstance(verdicts, Mapping) and cid in verdicts:
            record["verdict"] = verdicts[cid]
        return record

    def verdict(self, cid: str) -> str:
        return str(self.get(cid).get("verdict") or MISSING)

    def test(self, cid: str) -> str:
        return format_test(self.get(cid).get("test"))

    def n(self, cid: str) -> str:
        return format_n(self.get(cid).get("n"))

    def key_numbers(self, cid: str) -> str:
        """The claim's one-line key numbers (its summary where it has none)."""
        record = self.get(cid)
        text = record.get("key_numbers") or record.get("summary") or record.get("title") or ""
        return " ".join(str(text).split())

    def stability(self, cid: str) -> dict:
        """The verdict's stability check (``method``, ``resamples``, ``agreement``,
        ``threshold``, ``fragile``); {} in files older than it."""
        value = self.get(cid).get("stability")
        return dict(value) if isinstance(value, Mapping) else {}

    def fragile(self, cid: str) -> bool:
        """True only where claims.json says the verdict is fragile (it flips under
        resampling more often than its threshold allows)."""
        return self.stability(cid).get("fragile") is True

    def measured(self, cid: str) -> dict:
        value = self.get(cid).get("measured")
        return dict(value) if isinstance(value, Mapping) else {}

    def number(self, cid: str, key: str) -> float | None:
        """A number stated by the claim: at its top level, in its ``tolerance`` (e.g.
        C5's ``margin``) or in ``measured``."""
        record = self.get(cid)
        for source in (record, record.get("tolerance"), record.get("measured")):
            if isinstance(source, Mapping) and _number(source.get(key)) is not None:
                return _number(source[key])
        return None

    def tolerance(self, key: str, default: float) -> float:
        """A tolerance from the top-level ``tolerances`` (e.g. ``c3_cos``), so the lines
        a figure draws are the ones the verdict used; ``default`` without it."""
        table = self.data.get("tolerances")
        value = _number(table.get(key)) if isinstance(table, Mapping) else None
        return float(default) if value is None else value

    def declared_weight_decay(self) -> float | None:
        """The pre-declared λ of C6/C7 (config ``claims.weight_decay``) as claims.json
        states it: top-level ``weight_decay``, else ``settings.claims.weight_decay``."""
        value = _number(self.data.get("weight_decay"))
        block = self.data.get("settings")
        block = block.get("claims") if isinstance(block, Mapping) else None
        if value is None and isinstance(block, Mapping):
            value = _number(block.get("weight_decay"))
        return value

    def question(self) -> str:
        answer = self.data.get("answer")
        return " ".join(str(answer.get("question") or "").split()) \
            if isinstance(answer, Mapping) else ""

    def headline(self) -> tuple[str, list[str]]:
        """(the answer in a sentence or two, one line per protocol)."""
        answer: Any = self.data.get("answer")
        if not isinstance(answer, Mapping):
            return "", []
        return (" ".join(str(answer.get("headline") or "").split()),
                [str(line) for line in answer.get("by_protocol") or []])

    def answer(self) -> tuple[str, str]:
        """(verdict, text) of the synthesised answer to the article's question."""
        answer: Any = self.data.get("answer")
        if not isinstance(answer, Mapping):
            return "", " ".join(str(answer).split()) if answer else ""
        text = answer.get("text") or answer.get("summary") or ""
        return str(answer.get("verdict") or ""), " ".join(str(text).split())
