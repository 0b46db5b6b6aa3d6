"""Provenance: every run has a complete ``provenance.json`` whose ``config_hash`` matches
its config values, whose run (dataset, kind, member, optimiser name and settings) matches
its metrics and its folder, made by this checkout's training code
(:func:`wdnorm.provenance.code_version`) and -- with a config -- from that config's
values (:func:`wdnorm.provenance.training_values`); whose recorded slab settings and
steps are what its config values give (:mod:`.settings`). Runs are grouped by code
version, config settings, package versions, device and thread count; differences there
are notes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..config import learning_rates
from .. import protocols
from .. import provenance as records
from ..layout import run_id
from . import tree
from .common import GRID, RunRef, differences, prepared_file, read_json, same
from .report import Check
from .settings import slab_settings_problems

# Provenance fields a run needs to be audited (wdnorm.provenance.collect writes them).
REQUIRED = ("config_values", "config_hash", "code", "packages", "device", "device_name",
            "threads", "seed", "wall_seconds", "dataset_sha256")
CODE_FIELDS = ("package_version", "git_commit", "git_dirty", "training_code_sha256")


def check_provenance(root: Path, refs: list[RunRef], config: dict | None, data_dir: Path,
                     strict_code: bool = False, current_code: dict | None = None) -> Check:
    check = Check("provenance")
    current = current_code if current_code is not None else records.code_version()
    seen: dict[str, dict[str, Any]] = {k: {} for k in ("code", "settings", "packages",
                                                        "device", "threads", "dataset")}
    code_notes: dict[str, list[str]] = {}
    for ref in refs:
        prov, problems = read_provenance(root, ref)
        check.problems += problems
        if prov is None:
            continue
        values = prov["config_values"]
        metrics, error = read_json(root, ref.path(root) / "metrics.json")
        if error or not isinstance(metrics, dict):
            check.problems.append(f"{ref.rel}/metrics.json: {error or 'not a JSON object'}")
            metrics = None
        found = identity_problems(ref, values, prov, metrics)
        found += optimiser_problems(ref, values)
        found += slab_settings_problems(ref, values, metrics)
        if config is not None:
            found += config_problems(ref, values, config)
        problem, note = code_problem(prov["code"], current, strict_code)
        found += [problem] if problem else []
        check.problems += [f"{ref.rel}: {p}" for p in found]
        if note:
            code_notes.setdefault(note, []).append(ref.rel)
        _remember(seen, ref, prov)
    for note, runs in code_notes.items():
        check.notes.append(f"{len(runs)} runs: {note} (e.g. {runs[0]})")
    groups = _group_notes(check, seen, current)
    check.details = {"current_code": current, "groups": groups,
                     "datasets": _dataset_findings(check, seen["dataset"], data_dir)}
    return check.finish(f"{len(refs)} runs, {len(groups['code'])} code version(s), "
                        f"{len(groups['settings'])} config setting(s), "
                        f"{len(groups['device'])} device(s)"
                        + (f"; {len(check.problems)} problem(s)" if check.problems else ""))


def read_provenance(root: Path, ref: RunRef) -> tuple[dict | None, list[str]]:
    """A run's provenance record when it is complete and its hash holds."""
    where = f"{ref.rel}/provenance.json"
    prov, error = read_json(root, ref.path(root) / "provenance.json")
    if error or not isinstance(prov, dict):
        return None, [f"{where}: {error or 'not a JSON object'}"]
    lacking = [k for k in REQUIRED if k not in prov]
    if lacking:
        return None, [f"{where}: lacks {', '.join(lacking)}"]
    if not isinstance(prov["config_values"], dict):
        return None, [f"{where}: config_values is not an object"]
    if not isinstance(prov["code"], dict):
        return None, [f"{where}: code is not an object"]
    if records.config_hash(prov["config_values"]) != prov["config_hash"]:
        return prov, [f"{where}: config_hash does not match its config_values"]
    return prov, []


def identity_problems(ref: RunRef, values: dict, prov: dict, metrics: dict | None) -> list[str]:
    """A run's provenance, metrics and folder must describe the same run."""
    out = []
    for key, expected in (("dataset", ref.dataset), ("kind", ref.kind)):
        if values.get(key) != expected:
            out.append(f"provenance {key} {values.get(key)!r} does not match its place "
                       f"({expected!r})")
    member = values.get("member")
    if not isinstance(member, dict) or not {"lr", "weight_decay", "seed"} <= set(member):
        return out + ["provenance records no member (lr, weight_decay, seed)"]
    named = member_run_id(member, values.get("kind"))
    if named != ref.run_id:
        out.append(f"provenance member is {named}, the directory is {ref.run_id}")
    if prov.get("seed") != member["seed"]:
        out.append(f"provenance seed {prov.get('seed')} differs from its member's "
                   f"{member['seed']}")
    if metrics is not None:
        out += _metrics_problems(ref, values, member, metrics)
    return out


def member_run_id(member: dict, kind, force_kind: bool = False) -> str:
    """The run id a recorded member names (its kind, else ``kind``; its schedule)."""
    if not force_kind:
        kind = member.get("kind", kind)
    try:
        return run_id(member["lr"], member["weight_decay"], member["seed"],
                      kind if isinstance(kind, str) else GRID,
                      member.get("lr_schedule", "constant"),
                      float(member.get("lr_decay_fraction", 1.0)))
    except (TypeError, ValueError) as error:
        return f"<no run id: {error}>"


def _metrics_problems(ref: RunRef, values: dict, member: dict, metrics: dict) -> list[str]:
    out = [f"metrics {key} {metrics.get(key)!r} does not match its place ({expected!r})"
           for key, expected in (("run_id", ref.run_id), ("kind", ref.kind),
                                 ("dataset", ref.dataset), ("optimiser", ref.optimiser),
                                 ("arch", ref.arch))
           if metrics.get(key) != expected]
    out += [f"metrics {key} {metrics.get(key)} differs from provenance {member[key]}"
            for key in ("lr", "weight_decay", "seed", "lr_schedule", "lr_decay_fraction",
                        "protocol")
            if key in member and not same(member[key], metrics.get(key))]
    reference = None if ref.kind == GRID else member_run_id(member, GRID, force_kind=True)
    if metrics.get("reference") != reference:
        out.append(f"metrics reference {metrics.get('reference')!r}, expected {reference!r}")
    return out


def optimiser_problems(ref: RunRef, values: dict) -> list[str]:
    """The recorded optimiser (name, algorithm, hyper-parameters) must be its folder's
    (the slab's optimiser must be this one: :mod:`.settings`)."""
    opt = values.get("optimiser")
    if not isinstance(opt, dict) or "name" not in opt:
        return [f"provenance records no optimiser settings (name, algorithm, "
                f"hyper-parameters): {json.dumps(opt, default=str)}"]
    if opt["name"] != ref.optimiser:
        return [f"recorded optimiser {opt['name']!r} is not its folder's "
                f"({ref.optimiser!r})"]
    return []


def config_problems(ref: RunRef, values: dict, config: dict) -> list[str]:
    """How a run's recorded settings differ from the config's (defaults filled)."""
    slabs = {(d, o) for d, o, _ in protocols.slabs(config)}
    if (ref.dataset, ref.optimiser) not in slabs:
        return [f"slab {ref.dataset}/{ref.optimiser} is not trained by the config "
                f"({', '.join(sorted(f'{d}/{o}' for d, o in slabs))})"]
    expected = records.training_values(config, ref.dataset, ref.optimiser)
    recorded = {k: v for k, v in values.items() if k not in records.RUN_KEYS}
    out = [f"config differs: {d.lstrip('.')}" for d in differences("", recorded, expected)]
    member = values.get("member") or {}
    allowed = learning_rates({k: v for k, v in expected["optimiser"].items() if k != "name"})
    if ref.kind == GRID:
        allowed += [float(lr) for lr, _ in config.get("matched_pairs") or []]
    lr = member.get("lr")
    if not isinstance(lr, (int, float)) or not any(math.isclose(lr, a, rel_tol=1e-12)
                                                   for a in allowed):
        out.append(f"config differs: member lr {lr}, the config allows "
                   f"{sorted(set(allowed))}")
    return out


# --------------------------------------------------------------------------- code version

def _short(commit: str | None) -> str:
    return commit[:12] if commit else "no git"


def describe_code(code: dict) -> str:
    text = f"commit {_short(code.get('git_commit'))}"
    if code.get("git_dirty"):
        text += " (dirty)"
    text += f", package {code.get('package_version')}"
    if code.get("training_code_sha256"):
        text += f", training code {code['training_code_sha256'][:12]}"
    return text


def code_problem(code: dict, current: dict, strict: bool) -> tuple[str | None, str | None]:
    """(problem, note) comparing a run's code version with the current checkout's."""
    theirs, ours = code.get("training_code_sha256"), current.get("training_code_sha256")
    if theirs and ours:
        return _hashed_code_problem(code, current, strict)
    # no content hash recorded: the commit and dirty flag are all there is
    if code.get("git_commit") is None:
        if code.get("package_version") != current.get("package_version"):
            return (f"made by package {code.get('package_version')} (no git), this is "
                    f"{current.get('package_version')}", None)
        if strict:
            return (f"code version unknown: package {code.get('package_version')} without "
                    "git or a training code hash", None)
        return None, "code identified by its package version only"
    if code.get("git_commit") != current.get("git_commit"):
        return (f"made at {describe_code(code)}, this checkout is at "
                f"{describe_code(current)}", None)
    if code.get("git_dirty"):
        return f"made from a dirty tree at {describe_code(code)}: code unknown", None
    return None, ("this checkout is dirty" if current.get("git_dirty") else None)


def _hashed_code_problem(code: dict, current: dict, strict: bool):
    if code["training_code_sha256"] != current["training_code_sha256"]:
        return (f"made by other training code ({describe_code(code)}; this checkout: "
                f"{describe_code(current)})", None)
    same_commit = (code.get("git_commit") == current.get("git_commit")
                   and code.get("git_dirty") == current.get("git_dirty")
                   and not code.get("git_dirty"))
    if strict and not same_commit:
        return (f"made at {describe_code(code)}, this checkout is at "
                f"{describe_code(current)} (--strict-code)", None)
    if code.get("git_commit") != current.get("git_commit"):
        return None, f"same training code, made at commit {_short(code.get('git_commit'))}"
    if code.get("git_dirty"):
        return None, "same training code, made from a dirty tree"
    return None, None


# --------------------------------------------------------------------------- groups

def _remember(seen: dict, ref: RunRef, prov: dict) -> None:
    seen["code"][ref.rel] = {k: prov["code"].get(k) for k in CODE_FIELDS}
    # per optimiser: every optimiser of a config has its own settings
    seen["settings"][ref.rel] = {"optimiser": ref.optimiser,
                                 "hash": records.settings_hash(prov["config_values"])}
    seen["packages"][ref.rel] = prov["packages"]
    seen["device"][ref.rel] = {"device": prov.get("device"),
                               "device_name": prov["device_name"]}
    seen["threads"][ref.rel] = {"threads": prov["threads"],
                                "torch_threads": prov.get("torch_threads")}
    seen["dataset"].setdefault(ref.dataset, {})[ref.rel] = prov["dataset_sha256"]


def group(values: dict[str, Any]) -> list[dict]:
    """Runs grouped by a JSON-able value: [{"value", "runs": n, "examples"}] by size."""
    groups: dict[str, list[str]] = {}
    for run, value in values.items():
        groups.setdefault(json.dumps(value, sort_keys=True, default=str), []).append(run)
    out = [{"value": json.loads(k), "runs": len(v), "examples": sorted(v)[:3]}
           for k, v in groups.items()]
    return sorted(out, key=lambda g: -g["runs"])


def _group_notes(check: Check, seen: dict, current: dict) -> dict:
    groups = {name: group(seen[name])
              for name in ("code", "settings", "packages", "device", "threads")}
    if current.get("git_commit") is None:
        check.notes.append(f"this checkout has no git ({current.get('git_error', 'unknown')}"
                           f"); package {current.get('package_version')}")
    optimisers = {g["value"]["optimiser"] for g in groups["settings"]}
    if len(groups["settings"]) > len(optimisers):
        check.notes.append(f"runs of one optimiser come from different config settings "
                           f"({len(groups['settings'])} for {len(optimisers)} optimisers; "
                           "see details.groups.settings)")
    for name in ("packages", "device", "threads"):
        if len(groups[name]) > 1:
            check.notes.append(f"{name} differ between runs: " + _differing(groups[name]))
    if len(groups["code"]) > 1:
        check.notes.append(f"runs come from {len(groups['code'])} code versions: " +
                           "; ".join(f"{g['runs']} at {describe_code(g['value'])}"
                                     for g in groups["code"]))
    return groups


def _differing(groups: list[dict]) -> str:
    values = [g["value"] for g in groups]
    if all(isinstance(v, dict) for v in values):
        keys = sorted({k for v in values for k in v}, key=str)
        differing = [k for k in keys if len({json.dumps(v.get(k), default=str)
                                             for v in values}) > 1]
        return "; ".join(f"{k}: " + " / ".join(f"{v.get(k)} ({g['runs']} runs)"
                                                for v, g in zip(values, groups))
                         for k in differing)
    return " / ".join(f"{g['value']} ({g['runs']} runs)" for g in groups)


def _dataset_findings(check: Check, dataset_shas: dict, data_dir: Path) -> dict:
    """Every run of a dataset was trained on one prepared file; say whether it is the
    local one."""
    report = {}
    for dataset, shas in sorted(dataset_shas.items()):
        distinct = sorted(set(shas.values()))
        local, unreadable = prepared_file(data_dir, dataset)
        local_sha = tree.sha256(data_dir, local) if unreadable is None else None
        report[dataset] = {"recorded": distinct, "local": local_sha, "local_path": str(local)}
        if len(distinct) > 1:
            check.problems.append(f"runs of {dataset} were trained on {len(distinct)} "
                                  f"different prepared datasets: {', '.join(distinct)}")
        if unreadable not in (None, "missing"):
            check.problems.append(f"{local}: {unreadable}")
        elif local_sha is None:
            check.notes.append(f"no prepared {dataset} at {local}: its sha256 is not "
                               "checked against the runs'")
        elif local_sha not in distinct:
            check.notes.append(f"{local} (sha256 {local_sha[:12]}) is not the prepared "
                               f"dataset the runs of {dataset} were trained on")
    return report
