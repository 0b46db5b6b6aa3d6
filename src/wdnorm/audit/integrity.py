"""Integrity: nothing under the results tree is a link (or a special file); every file of
every run matches its ``MANIFEST.sha256``; every slab's ``slab.json`` (written last by
its training job) lists exactly the slab's run directories with the sha256 of each
one's manifest. Stale run directories (:mod:`.stale`) are not part of the results and
not checked."""

from __future__ import annotations

from pathlib import Path

from .. import fileio
from ..layout import RUN_FILES
from . import tree
from .common import RUN_DEPTH, SLAB_FILE, RunRef, SlabRef, find_slabs, read_json
from .report import Check
from .stale import Stale


def check_integrity(listing: tree.Listing, refs: list[RunRef], stale: Stale,
                    config_given: bool) -> Check:
    check = Check("integrity")
    root = listing.root
    slabs = [s for s in find_slabs(listing) if s not in stale.slabs]
    # links inside a checked run directory or at a slab.json are named where they are read
    check.problems += listing.refusals(skip=tuple(r.rel for r in refs)
                                       + tuple(f"{s.rel}/{SLAB_FILE}" for s in slabs))
    contents = listing.grouped(RUN_DEPTH)
    verified = 0
    for ref in refs:
        problems = run_problems(root, ref, contents.get(ref.rel, tree.Listing(root)))
        check.problems += problems
        verified += not problems
    for slab in slabs:
        check.problems += slab_problems(root, slab, [r for r in refs if r.slab == slab],
                                        config_given)
    check.details = {"runs": len(refs), "verified": verified, "slabs": len(slabs)}
    if stale.runs:
        check.notes.append(f"{len(stale.runs)} stale run directories not checked (see "
                           "completeness)")
        check.details["stale"] = len(stale.runs)
    if not refs:
        check.problems.append("no run directories under runs/")
    return check.finish(f"{verified} of {len(refs)} run directories match their manifests; "
                        f"{len(slabs)} slab.json checked")


def run_problems(root: Path, ref: RunRef, contents: tree.Listing) -> list[str]:
    """What is wrong with one run directory's files against its manifest (``contents``:
    its entries, from the tree's listing)."""
    refused = [f"{ref.rel}/{line}" for line in contents.refusals()]
    if fileio.MANIFEST_NAME not in contents.files:
        return refused + [f"{ref.rel}: no {fileio.MANIFEST_NAME} (incomplete run)"]
    manifest_path = ref.path(root) / fileio.MANIFEST_NAME
    try:
        tree.check(root, manifest_path)
        manifest = fileio.read_manifest(manifest_path)
    except (OSError, ValueError) as error:
        return refused + [f"{ref.rel}/{fileio.MANIFEST_NAME}: unreadable ({error})"]
    on_disk = contents.files - {fileio.MANIFEST_NAME}
    out = refused
    for name, digest in sorted(manifest.items()):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            out.append(f"{ref.rel}/{fileio.MANIFEST_NAME}: entry {name!r} points outside "
                       "the run directory")
        elif name in contents.links or name in contents.others:
            continue  # named above: never read through
        elif name not in on_disk:
            out.append(f"{ref.rel}/{name}: missing (listed in the manifest)")
        elif tree.sha256(root, ref.path(root) / name) != digest:
            out.append(f"{ref.rel}/{name}: sha256 differs from the manifest")
    out += [f"{ref.rel}/{name}: extra file, not in the manifest"
            for name in sorted(on_disk - set(manifest))]
    out += [f"{ref.rel}/{name}: not in the manifest (incomplete run)"
            for name in RUN_FILES if name not in manifest]
    return out


def slab_problems(root: Path, slab: SlabRef, refs: list[RunRef],
                  config_given: bool = True) -> list[str]:
    """What is wrong with a slab's ``slab.json`` against its place and its runs."""
    where = f"{slab.rel}/{SLAB_FILE}"
    record, error = read_json(root, slab.path(root) / SLAB_FILE)
    if error == "missing":
        return [f"{where}: missing (the slab's training job did not finish)"]
    if error or not isinstance(record, dict):
        return [f"{where}: {error or 'not a JSON object'}"]
    out = [f"{where}: {key} {record.get(key)!r} does not match its place ({expected!r})"
           for key, expected in (("dataset", slab.dataset), ("optimiser", slab.optimiser),
                                 ("arch", slab.arch)) if record.get(key) != expected]
    members, manifests = record.get("members"), record.get("manifests")
    if not isinstance(members, list) or not isinstance(manifests, dict):
        return out + [f"{where}: lacks its members list or manifests map"]
    on_disk = {r.run_id: r for r in refs}
    out += [f"{where}: member {run} has no run directory"
            for run in members if run not in on_disk]
    # with a config, unlisted directories outside its grid are stale, not here
    hint = "" if config_given else " (with --config, one outside its grid is stale)"
    out += [f"{slab.rel}/{run}: run directory not listed in {SLAB_FILE}{hint}"
            for run in sorted(set(on_disk) - set(members))]
    out += [f"{where}: manifests and members differ ({', '.join(sorted(map(str, diff)))})"
            for diff in [set(manifests) ^ set(members)] if diff]
    for run, digest in sorted(manifests.items()):
        manifest = slab.path(root) / str(run) / fileio.MANIFEST_NAME
        if run in on_disk and tree.is_file(root, manifest) and \
                tree.sha256(root, manifest) != digest:
            out.append(f"{slab.rel}/{run}/{fileio.MANIFEST_NAME}: sha256 differs from the "
                       f"one {SLAB_FILE} records")
    return out
