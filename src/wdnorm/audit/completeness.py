"""Completeness: every run of the config (every member of every slab, all run kinds, from
:func:`wdnorm.grid.slab_members`) is present and finished (has a manifest). Runs present
but not in the config are notes: stale ones (:mod:`.stale`, left by an earlier config,
read by nothing) apart from those their ``slab.json`` lists (trained with the slab)."""

from __future__ import annotations

from . import tree
from .common import RunRef, SlabRef, expected_runs, has_manifest
from .report import Check
from .stale import Stale

REMOVE_HINT = "wdnorm audit RESULTS_DIR --config YAML --remove-stale deletes them"


def check_completeness(listing: tree.Listing, refs: list[RunRef], config: dict | None,
                       stale: Stale) -> Check:
    check = Check("completeness")
    if config is None:
        return check.skip(f"{len(refs)} runs found; pass --config to check them against "
                          "the config's grid")
    expected = expected_runs(config)
    missing = [r for r in expected if not has_manifest(listing, r)]
    check.problems += _missing_lines(listing, expected, missing)
    extra = sorted(set(refs) - set(expected) - set(stale.runs))
    if stale.runs or stale.slabs:
        check.notes.append(f"{len(stale.runs)} stale run directories (not in the config's "
                           f"grid, not listed in their slab.json; not checked): "
                           f"{REMOVE_HINT}")
        check.notes += [f"stale: {r.rel}" for r in stale.runs]
        check.notes += [f"stale slab (not in the config): {s.rel}/" for s in stale.slabs]
    if extra:
        check.notes.append(f"{len(extra)} run directories are not in the config's grid")
        check.notes += [f"not in the grid: {r.rel}" for r in extra]
    present = len(expected) - len(missing)
    check.details = {"expected": len(expected), "present": present,
                     "missing": [r.rel for r in missing], "not_in_grid": [r.rel for r in extra],
                     "stale": [r.rel for r in stale.runs],
                     "stale_slabs": [s.rel for s in stale.slabs]}
    return check.finish(f"{present} of {len(expected)} runs of the config's grid present"
                        + (f"; {len(stale.runs)} stale" if stale.runs else ""))


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
