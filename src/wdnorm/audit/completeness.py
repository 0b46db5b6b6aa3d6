"""Completeness: every run of the config (every member of every slab, all run kinds, from
:func:`wdnorm.grid.slab_members`) is present and finished (has a manifest). Runs present
but not in the config are notes."""

from __future__ import annotations

from . import tree
from .common import RunRef, SlabRef, expected_runs, has_manifest
from .report import Check


def check_completeness(listing: tree.Listing, refs: list[RunRef],
                       config: dict | None) -> Check:
    check = Check("completeness")
    if config is None:
        return check.skip(f"{len(refs)} runs found; pass --config to check them against "
                          "the config's grid")
    expected = expected_runs(config)
    missing = [r for r in expected if not has_manifest(listing, r)]
    check.problems += _missing_lines(listing, expected, missing)
    extra = sorted(set(refs) - set(expected))
    if extra:
        check.notes.append(f"{len(extra)} run directories are not in the config's grid")
        check.notes += [f"not in the grid: {r.rel}" for r in extra]
    present = len(expected) - len(missing)
    check.details = {"expected": len(expected), "present": present,
                     "missing": [r.rel for r in missing], "not_in_grid": [r.rel for r in extra]}
    return check.finish(f"{present} of {len(expected)} runs of the config's grid present")


def _missing_lines(listing: tree.Listing, expected: list[RunRef],
                   missing: list[RunRef]) -> list[str]:
    """One line per missing run; one per slab when a whole slab is absent."""
    by_slab: dict[SlabRef, list[RunRef]] = {}
    for ref in expected:
        by_slab.setdefault(ref.slab, []).append(ref)
    out = []
    for slab, members in sorted(by_slab.items()):
        gone = [r for r in members if r in missing]
        if len(gone) == len(members) > 1 and slab.rel not in listing.dirs:
            out.append(f"{slab.rel}/: all {len(gone)} runs missing")
            continue
        out += [f"{r.rel}: {_why_missing(listing, r)}" for r in gone]
    return out


def _why_missing(listing: tree.Listing, ref: RunRef) -> str:
    if ref.rel in listing.links:
        return "a symbolic link, not followed (integrity names it)"
    return "incomplete (no manifest)" if ref.rel in listing.dirs else "missing"
