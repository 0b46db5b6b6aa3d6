"""``wdnorm audit``: decide whether a results directory made somewhere else can be trusted.

Five checks, each returning a :class:`Check` (pass / fail / skip, the problems that make
it fail, each naming a run or a file, informational notes and structured details):

integrity
    Every file of every run directory matches the directory's ``MANIFEST.sha256``;
    files missing from disk, files not in the manifest and run directories without a
    manifest (incomplete by definition, see :mod:`wdnorm.runs`) are named.
completeness
    With a config: every run of the grid (:func:`wdnorm.grid.slab_members` and
    :func:`wdnorm.grid.mimic_members` for every dataset x optimiser x architecture) is
    present. Runs present but not in the grid are listed as notes.
provenance
    Every run has a complete ``provenance.json`` whose ``config_hash`` matches its config
    values and whose member/slab/dataset match its metrics and its place. Runs made by
    other *training code* than this checkout's (:func:`wdnorm.provenance.code_version`)
    fail; with a config, runs whose config-determined values differ from it fail. Runs
    are grouped by code version, config settings, package versions, device and thread
    count; differences there are notes, not failures.
replay
    K randomly chosen runs (seeded; the seed is reported) are re-trained here for a
    prefix of their steps from the recorded slab config and member, on the prepared
    dataset whose sha256 must equal the recorded one, and the per-step loss must match
    the recorded ``trace.npz`` within ``rtol``/``atol``.
claims
    The sha256 of every input table recorded in ``claims.json`` matches the table on
    disk, and every verdict recomputed from the tables with :mod:`wdnorm.claims` equals
    the recorded one.

Only paths relative to the results directory are used, so a results directory copied
anywhere (without ``.snakemake/``) audits the same. Nothing is written. Computation only:
:mod:`wdnorm.cli` prints.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import fileio, grid, provenance
from .layout import RUN_FILES, Layout, run_id

PASS, FAIL, SKIP = "pass", "fail", "skip"
RUN_KINDS = ("runs", "mimic")
CHECKS = ("integrity", "completeness", "provenance", "replay", "claims")

DEFAULT_REPLAY_STEPS = 50
# Replays are bit-identical on the same CPU; 1e-3 leaves room for another CPU, the last
# float32 bit of slab vs single-member batching, and GPU-made runs (TF32 off).
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-6

# Provenance fields a run needs to be audited (wdnorm.provenance.collect writes them).
REQUIRED_PROVENANCE = ("config_values", "config_hash", "code", "packages", "device",
                       "device_name", "threads", "seed", "wall_seconds", "dataset_sha256")
# Config keys that determine a trained run (workflow/rules/common.smk: training_values).
TRAINING_KEYS = ("n_train", "subset_seed", "model", "decay_scope", "training")
# Config keys the claims are decided with (workflow/rules/claims.smk: params.settings).
CLAIMS_KEYS = ("optimisers", "matched_pairs", "mimic", "training")

# The defaults workflow/schemas/config.schema.yaml fills in (snakemake.utils.validate
# sets them, nested ones included, before any rule sees the config); the tests hold this
# table to the schema.
CONFIG_DEFAULTS: dict[str, Any] = {
    "datasets": ["digits"],
    "download": True,
    "n_train": None,
    "subset_seed": 0,
    "architectures": ["plain", "ln", "bn", "res", "postln", "resln", "preln", "preln_final"],
    "model": {"width": 64, "depth": 3, "norm_eps": 1.0e-5},
    "seeds": [0, 1, 2],
    "decay_scope": "hidden",
    "matched_pairs": [],
    "training": {"epochs": 100, "batch_size": 128, "eval_every": 5},
    "mimic": {"weight_decay": 1.0e-2},
    "gradient_identity": {"steps": 100, "lr": 0.05},
    "device": "auto",
    "threads": 1,
    "figures": {"formats": ["png", "pdf"], "dpi": 150},
}
OPTIMISER_DEFAULTS: dict[str, Any] = {"momentum": 0.0, "beta1": 0.9, "beta2": 0.999,
                                      "eps": 1.0e-8}


class AuditError(Exception):
    """The audit cannot start (no such results directory, unusable config)."""


# --------------------------------------------------------------------------- report

@dataclass
class Check:
    name: str
    status: str = PASS
    summary: str = ""
    problems: list[str] = field(default_factory=list)   # each one makes the check fail
    notes: list[str] = field(default_factory=list)      # informational
    details: dict = field(default_factory=dict)         # structured, for --json

    def finish(self, summary: str) -> "Check":
        if self.problems:
            self.status = FAIL
        self.summary = summary
        return self


@dataclass
class AuditReport:
    results_dir: str
    data_dir: str
    n_runs: int
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.status == FAIL]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict:
        return {"results_dir": self.results_dir, "data_dir": self.data_dir,
                "n_runs": self.n_runs, "ok": self.ok, "failed": self.failed,
                "checks": [asdict(c) for c in self.checks]}


# --------------------------------------------------------------------------- runs on disk

@dataclass(frozen=True, order=True)
class RunRef:
    kind: str
    dataset: str
    optimiser: str
    arch: str
    run_id: str

    @property
    def rel(self) -> str:
        """The run directory relative to the results root, as reports name it."""
        return f"{self.kind}/{self.dataset}/{self.optimiser}/{self.arch}/{self.run_id}"

    def path(self, root: Path) -> Path:
        return root / self.rel


def find_runs(root: str | Path) -> list[RunRef]:
    """Every run directory under ``root`` ({kind}/{dataset}/{optimiser}/{arch}/{run})."""
    root = Path(root)
    found = []
    for kind in RUN_KINDS:
        for path in sorted((root / kind).glob("*/*/*/*")):
            if path.is_dir():
                dataset, optimiser, arch, run = path.relative_to(root / kind).parts
                found.append(RunRef(kind, dataset, optimiser, arch, run))
    return sorted(found)


def _has_manifest(root: Path, ref: RunRef) -> bool:
    return (ref.path(root) / fileio.MANIFEST_NAME).is_file()


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return fileio.read_json(path), None
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as error:
        return None, f"unreadable ({type(error).__name__}: {error})"


def resolve_reference(root: Path, reference: str) -> Path | None:
    """A recorded reference run directory, relative to the results root (tolerating a
    recorded ``results/...`` or absolute path by matching its tail at a run kind)."""
    parts = Path(reference).parts
    for i in range(len(parts)):
        if i and parts[i] not in RUN_KINDS:
            continue
        candidate = root.joinpath(*parts[i:])
        if _inside(root, candidate) and candidate.is_dir():
            return candidate
    return None


def _inside(root: Path, path: Path) -> bool:
    """Whether ``path`` stays under ``root`` (recorded paths must not lead elsewhere)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- config

def with_config_defaults(config: dict) -> dict:
    """``config`` as the workflow sees it: the schema's defaults filled in."""
    config = copy.deepcopy(dict(config))
    for key, default in CONFIG_DEFAULTS.items():
        if isinstance(default, dict):
            config[key] = {**copy.deepcopy(default), **(config.get(key) or {})}
        else:
            config.setdefault(key, copy.deepcopy(default))
    config["optimisers"] = {name: {**OPTIMISER_DEFAULTS, **(opt or {})}
                            for name, opt in (config.get("optimisers") or {}).items()}
    return config


def check_config(config: dict) -> dict:
    """Validate what the audit needs from a user's config; return it with defaults."""
    if not isinstance(config, dict):
        raise AuditError("the config is not a mapping")
    for key in ("weight_decays", "optimisers"):
        if key not in config:
            raise AuditError(f"the config has no {key!r}")
    config = with_config_defaults(config)
    for name, opt in config["optimisers"].items():
        if "lr" not in opt:
            raise AuditError(f"optimiser {name!r} of the config has no lr")
    try:
        grid.check_config(config)
    except ValueError as error:
        raise AuditError(f"invalid config: {error}") from None
    return config


def training_values(config: dict, optimiser: str) -> dict:
    """The config values a trained run depends on (as common.smk's training_values)."""
    return {**{k: config.get(k) for k in TRAINING_KEYS},
            "optimiser": config["optimisers"][optimiser]}


def expected_runs(config: dict) -> list[RunRef]:
    """Every run the config's grid trains (grid runs and the C6 mimic runs)."""
    refs = []
    for dataset in config["datasets"]:
        for opt_name, opt in config["optimisers"].items():
            for arch in config["architectures"]:
                members = grid.slab_members(opt["lr"], config["weight_decays"],
                                            config["seeds"], config.get("matched_pairs", []))
                refs += [RunRef("runs", dataset, opt_name, arch, m.run_id) for m in members]
                mimic = grid.mimic_members(opt["lr"], config["seeds"])
                refs += [RunRef("mimic", dataset, opt_name, arch, m.run_id) for m in mimic]
    return sorted(set(refs))


_MISSING = "<absent>"


def _differences(path: str, recorded: Any, expected: Any) -> list[str]:
    if isinstance(recorded, dict) and isinstance(expected, dict):
        out = []
        for key in sorted(set(recorded) | set(expected), key=str):
            out += _differences(f"{path}.{key}", recorded.get(key, _MISSING),
                                expected.get(key, _MISSING))
        return out
    if _same(recorded, expected):
        return []
    return [f"{path}: recorded {_show(recorded)}, config {_show(expected)}"]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _show(value: Any) -> str:
    return value if value is _MISSING else json.dumps(value, default=str)


def config_differences(config_values: dict, config: dict, optimiser: str) -> list[str]:
    """How a run's recorded config values differ from ``config`` (defaults applied) in
    the part that comes from the config: n_train, subset_seed, model, decay_scope,
    training and the optimiser's settings."""
    if optimiser not in config["optimisers"]:
        return [f"optimiser {optimiser!r} is not in the config "
                f"({', '.join(config['optimisers'])})"]
    expected = training_values(config, optimiser)
    diffs = []
    for key in TRAINING_KEYS:
        diffs += _differences(key, config_values.get(key, _MISSING), expected[key])
    recorded_opt = config_values.get("optimiser")
    if isinstance(recorded_opt, dict):
        diffs += _differences("optimiser", recorded_opt, expected["optimiser"])
        return diffs
    # wdnorm.tasks records the optimiser's *name* under "optimiser" (over the settings'
    # dict): its settings live on in the slab config (all but lr) and the member (lr).
    slab_opt = (config_values.get("slab") or {}).get("optimiser") or {}
    for key, value in expected["optimiser"].items():
        if key != "lr":
            diffs += _differences(f"optimiser.{key}", slab_opt.get(key, _MISSING), value)
    member = config_values.get("member") or {}
    allowed = [expected["optimiser"]["lr"]]
    if config_values.get("kind", "runs") == "runs":
        allowed += [float(a) for a, _ in config.get("matched_pairs", [])]
    lr = member.get("lr")
    if not isinstance(lr, (int, float)) or not any(math.isclose(lr, a, rel_tol=1e-12)
                                                   for a in allowed):
        diffs.append(f"optimiser.lr: recorded member lr {lr}, config allows "
                     f"{sorted(set(allowed))}")
    return diffs


# --------------------------------------------------------------------------- integrity

def check_integrity(root: Path, refs: list[RunRef]) -> Check:
    check = Check("integrity")
    verified = 0
    for ref in refs:
        run_dir = ref.path(root)
        manifest_path = run_dir / fileio.MANIFEST_NAME
        if not manifest_path.is_file():
            check.problems.append(f"{ref.rel}: no {fileio.MANIFEST_NAME} (incomplete run)")
            continue
        try:
            manifest = fileio.read_manifest(manifest_path)
        except (OSError, ValueError) as error:
            check.problems.append(f"{ref.rel}/{fileio.MANIFEST_NAME}: unreadable ({error})")
            continue
        on_disk = {p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")
                   if p.is_file() and p.name != fileio.MANIFEST_NAME}
        bad = False
        for name, digest in sorted(manifest.items()):
            if Path(name).is_absolute() or ".." in Path(name).parts:
                check.problems.append(f"{ref.rel}/{fileio.MANIFEST_NAME}: entry {name!r} "
                                      "points outside the run directory")
                bad = True
            elif name not in on_disk:
                check.problems.append(f"{ref.rel}/{name}: missing (listed in the manifest)")
                bad = True
            elif fileio.sha256_file(run_dir / name) != digest:
                check.problems.append(f"{ref.rel}/{name}: sha256 differs from the manifest")
                bad = True
        for name in sorted(on_disk - set(manifest)):
            check.problems.append(f"{ref.rel}/{name}: extra file, not in the manifest")
            bad = True
        for name in RUN_FILES:
            if name not in manifest:
                check.problems.append(f"{ref.rel}/{name}: not in the manifest (incomplete run)")
                bad = True
        verified += not bad
    check.details = {"runs": len(refs), "verified": verified}
    if not refs:
        check.problems.append("no run directories under runs/ or mimic/")
    return check.finish(f"{verified} of {len(refs)} run directories match their manifests")


# --------------------------------------------------------------------------- completeness

def check_completeness(root: Path, refs: list[RunRef], config: dict | None) -> Check:
    check = Check("completeness")
    if config is None:
        check.status = SKIP
        check.summary = f"{len(refs)} runs found; pass --config to check them against a grid"
        return check
    expected = expected_runs(config)
    present = {r for r in refs if _has_manifest(root, r)}
    missing = [r for r in expected if r not in present]
    slabs: dict[tuple, list[RunRef]] = {}
    for ref in expected:
        slabs.setdefault((ref.kind, ref.dataset, ref.optimiser, ref.arch), []).append(ref)
    for slab, members in sorted(slabs.items()):
        gone = [r for r in members if r in missing]
        if len(gone) == len(members) > 1 and not any(r.path(root).is_dir() for r in gone):
            check.problems.append(f"{'/'.join(slab)}/: all {len(gone)} runs missing")
            continue
        for ref in gone:
            why = "incomplete (no manifest)" if ref.path(root).is_dir() else "missing"
            check.problems.append(f"{ref.rel}: {why}")
    extra = sorted(set(refs) - set(expected))
    if extra:
        check.notes.append(f"{len(extra)} run directories are not in the config's grid")
        check.notes += [f"not in the grid: {r.rel}" for r in extra]
    check.details = {"expected": len(expected), "present": len(expected) - len(missing),
                     "missing": [r.rel for r in missing], "not_in_grid": [r.rel for r in extra]}
    return check.finish(f"{len(expected) - len(missing)} of {len(expected)} runs of the "
                        f"config's grid present")


# --------------------------------------------------------------------------- provenance

def _group(values: dict[str, Any]) -> list[dict]:
    """Runs grouped by a JSON-able value: [{"value", "runs": n, "examples"}] by size."""
    groups: dict[str, list[str]] = {}
    for run, value in values.items():
        groups.setdefault(json.dumps(value, sort_keys=True, default=str), []).append(run)
    out = [{"value": json.loads(k), "runs": len(v), "examples": sorted(v)[:3]}
           for k, v in groups.items()]
    return sorted(out, key=lambda g: -g["runs"])


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "no git"


def _describe_code(code: dict) -> str:
    text = f"commit {_short(code.get('git_commit'))}"
    if code.get("git_dirty"):
        text += " (dirty)"
    text += f", package {code.get('package_version')}"
    if code.get("training_code_sha256"):
        text += f", training code {code['training_code_sha256'][:12]}"
    return text


def _code_problem(code: dict, current: dict, strict: bool) -> tuple[str | None, str | None]:
    """(problem, note) comparing a run's code version with the current checkout's."""
    same_commit = (code.get("git_commit") == current.get("git_commit")
                   and code.get("git_dirty") == current.get("git_dirty")
                   and not code.get("git_dirty"))
    theirs, ours = code.get("training_code_sha256"), current.get("training_code_sha256")
    if theirs and ours:
        if theirs != ours:
            return f"made by other training code ({_describe_code(code)}; this checkout: " \
                   f"{_describe_code(current)})", None
        if strict and not same_commit:
            return f"made at {_describe_code(code)}, this checkout is at " \
                   f"{_describe_code(current)} (--strict-code)", None
        if code.get("git_commit") != current.get("git_commit"):
            return None, f"same training code, made at commit {_short(code.get('git_commit'))}"
        if code.get("git_dirty"):
            return None, "same training code, made from a dirty tree"
        return None, None
    # no content hash recorded: the commit and dirty flag are all there is
    if code.get("git_commit") is None:
        if code.get("package_version") != current.get("package_version"):
            return f"made by package {code.get('package_version')} (no git), this is " \
                   f"{current.get('package_version')}", None
        return (f"code version unknown: package {code.get('package_version')} without git "
                "or a training code hash", None) if strict else \
            (None, "code identified by its package version only")
    if code.get("git_commit") != current.get("git_commit"):
        return f"made at {_describe_code(code)}, this checkout is at " \
               f"{_describe_code(current)}", None
    if code.get("git_dirty"):
        return f"made from a dirty tree at {_describe_code(code)}: code unknown", None
    if current.get("git_dirty"):
        return None, "this checkout is dirty"
    return None, None


def check_provenance(root: Path, refs: list[RunRef], config: dict | None,
                     data_dir: Path, strict_code: bool = False,
                     current_code: dict | None = None) -> Check:
    check = Check("provenance")
    current = current_code if current_code is not None else provenance.code_version()
    codes, settings, packages, devices, threads, dataset_shas = {}, {}, {}, {}, {}, {}
    code_notes: dict[str, list[str]] = {}
    for ref in refs:
        run_dir = ref.path(root)
        prov, error = _read_json(run_dir / "provenance.json")
        if error:
            check.problems.append(f"{ref.rel}/provenance.json: {error}")
            continue
        if not isinstance(prov, dict):
            check.problems.append(f"{ref.rel}/provenance.json: not a JSON object")
            continue
        lacking = [k for k in REQUIRED_PROVENANCE if k not in prov]
        if lacking:
            check.problems.append(f"{ref.rel}/provenance.json: lacks {', '.join(lacking)}")
            continue
        values = prov["config_values"]
        if not isinstance(values, dict):
            check.problems.append(f"{ref.rel}/provenance.json: config_values is not an object")
            continue
        if provenance.config_hash(values) != prov["config_hash"]:
            check.problems.append(f"{ref.rel}/provenance.json: config_hash does not match "
                                  "its config_values")
        metrics, error = _read_json(run_dir / "metrics.json")
        if error:
            check.problems.append(f"{ref.rel}/metrics.json: {error}")
            metrics = None
        check.problems += [f"{ref.rel}: {p}" for p in _identity_problems(ref, values, prov,
                                                                          metrics)]
        problem, note = _code_problem(prov["code"] or {}, current, strict_code)
        if problem:
            check.problems.append(f"{ref.rel}: {problem}")
        if note:
            code_notes.setdefault(note, []).append(ref.rel)
        if config is not None:
            check.problems += [f"{ref.rel}: config differs: {d}"
                               for d in config_differences(values, config, ref.optimiser)]
        code = prov["code"] or {}
        codes[ref.rel] = {k: code.get(k) for k in ("package_version", "git_commit",
                                                   "git_dirty", "training_code_sha256")}
        settings[ref.rel] = provenance.settings_hash(values)
        packages[ref.rel] = prov["packages"]
        devices[ref.rel] = {"device": prov.get("device"), "device_name": prov["device_name"]}
        threads[ref.rel] = {"threads": prov["threads"],
                            "torch_threads": prov.get("torch_threads")}
        dataset_shas.setdefault(ref.dataset, {})[ref.rel] = prov["dataset_sha256"]

    for note, runs in code_notes.items():
        check.notes.append(f"{len(runs)} runs: {note} (e.g. {runs[0]})")
    if current.get("git_commit") is None:
        check.notes.append(f"this checkout has no git ({current.get('git_error', 'unknown')}); "
                           f"package {current.get('package_version')}")
    groups = {"code": _group(codes), "settings_hash": _group(settings),
              "packages": _group(packages), "device": _group(devices),
              "threads": _group(threads)}
    if len(groups["settings_hash"]) > 1:
        check.notes.append(f"runs come from {len(groups['settings_hash'])} different config "
                           "settings (see details.groups.settings_hash)")
    for name in ("packages", "device", "threads"):
        if len(groups[name]) > 1:
            check.notes.append(f"{name} differ between runs: " + _differing(groups[name]))
    if len(groups["code"]) > 1:
        check.notes.append(f"runs come from {len(groups['code'])} code versions: " +
                           "; ".join(f"{g['runs']} at {_describe_code(g['value'])}"
                                     for g in groups["code"]))
    data_report = {}
    for dataset, shas in sorted(dataset_shas.items()):
        distinct = sorted(set(shas.values()))
        local = Layout(data=data_dir).prepared(dataset)
        local_sha = fileio.sha256_file(local) if local.is_file() else None
        data_report[dataset] = {"recorded": distinct, "local": local_sha, "local_path": str(local)}
        if len(distinct) > 1:
            check.problems.append(f"runs of {dataset} were trained on {len(distinct)} "
                                  f"different prepared datasets: {', '.join(distinct)}")
        if local_sha is None:
            check.notes.append(f"no prepared {dataset} at {local}: its sha256 is not checked "
                               "against the runs'")
        elif local_sha not in distinct:
            check.notes.append(f"{local} (sha256 {local_sha[:12]}) is not the prepared "
                               f"dataset the runs of {dataset} were trained on")
    check.details = {"current_code": current, "groups": groups, "datasets": data_report}
    return check.finish(f"{len(refs)} runs, {len(groups['code'])} code version(s), "
                        f"{len(groups['settings_hash'])} config setting(s), "
                        f"{len(groups['device'])} device(s)"
                        + (f"; {len(check.problems)} problem(s)" if check.problems else ""))


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


def _identity_problems(ref: RunRef, values: dict, prov: dict, metrics: dict | None) -> list[str]:
    """A run's provenance, metrics and place must describe the same run."""
    out = []
    for key, expected in (("dataset", ref.dataset), ("optimiser", ref.optimiser),
                          ("kind", ref.kind)):
        recorded = values.get(key)
        if isinstance(recorded, str) and recorded != expected:
            out.append(f"provenance {key} {recorded!r} does not match its place ({expected!r})")
    member = values.get("member") or {}
    if member and {"lr", "weight_decay", "seed"} <= set(member):
        rid = run_id(member["lr"], member["weight_decay"], member["seed"])
        if rid != ref.run_id:
            out.append(f"provenance member is {rid}, the directory is {ref.run_id}")
    if prov.get("seed") is not None and member.get("seed") is not None \
            and prov["seed"] != member["seed"]:
        out.append(f"provenance seed {prov['seed']} differs from its member's {member['seed']}")
    if metrics is not None:
        for key in ("lr", "weight_decay", "seed"):
            if key in member and key in metrics and not _same(member[key], metrics[key]):
                out.append(f"metrics {key} {metrics[key]} differs from provenance {member[key]}")
        if "slab" in values and "slab" in metrics and not _same_tree(values["slab"],
                                                                     metrics["slab"]):
            out.append("metrics slab config differs from the provenance's")
        if metrics.get("arch") not in (None, ref.arch):
            out.append(f"metrics arch {metrics['arch']!r} does not match its place")
    return out


def _same_tree(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_same_tree(a[k], b[k]) for k in a)
    return _same(a, b)


# --------------------------------------------------------------------------- replay

def check_replay(root: Path, refs: list[RunRef], data_dir: Path, k: int, seed: int,
                 steps: int = DEFAULT_REPLAY_STEPS, rtol: float = DEFAULT_RTOL,
                 atol: float = DEFAULT_ATOL, device: str = "cpu",
                 log: Callable[[str], None] | None = None) -> Check:
    check = Check("replay")
    check.details = {"seed": seed, "requested": k, "steps": steps, "rtol": rtol,
                     "atol": atol, "device": device, "runs": []}
    if k <= 0:
        check.status = SKIP
        check.summary = "no runs replayed (use --replay K)"
        return check
    candidates = [r for r in refs if _has_manifest(root, r)]
    if not candidates:
        check.problems.append("no complete run to replay")
        return check.finish("nothing replayed")
    picks = sorted(random.Random(seed).sample(candidates, min(k, len(candidates))))
    if k > len(candidates):
        check.notes.append(f"asked for {k} runs, {len(candidates)} complete runs exist")
    datasets: dict[str, Any] = {}
    n_ok = 0
    for ref in picks:
        if log:
            log(f"replaying {ref.rel}")
        entry = _replay_one(root, ref, data_dir, datasets, steps, rtol, atol, device)
        check.details["runs"].append(entry)
        if entry["ok"]:
            n_ok += 1
        else:
            check.problems.append(f"{ref.rel}: {entry['problem']}")
    return check.finish(f"{n_ok} of {len(picks)} runs replayed within rtol {rtol:g} over "
                        f"their first {steps} steps (seed {seed})")


def _load_dataset(data_dir: Path, dataset: str, cache: dict) -> tuple[Any, str | None, str]:
    if dataset not in cache:
        from . import data
        path = Layout(data=data_dir).prepared(dataset)
        if not path.is_file():
            cache[dataset] = (None, None, f"no prepared dataset at {path}")
        else:
            cache[dataset] = (data.load_prepared(path), fileio.sha256_file(path), str(path))
    return cache[dataset]


def _replay_one(root: Path, ref: RunRef, data_dir: Path, datasets: dict, steps: int,
                rtol: float, atol: float, device: str) -> dict:
    from . import runs
    from .engine import Member, SlabConfig, train_slab

    entry = {"run": ref.rel, "ok": False, "problem": None}
    run_dir = ref.path(root)
    try:
        metrics = runs.read_metrics(run_dir)
        prov = fileio.read_json(run_dir / "provenance.json")
        recorded = runs.read_trace(run_dir)["loss"]
    except (OSError, ValueError, KeyError) as error:
        entry["problem"] = f"cannot read the run ({type(error).__name__}: {error})"
        return entry
    prepared, sha, where = _load_dataset(data_dir, ref.dataset, datasets)
    if prepared is None:
        entry["problem"] = f"cannot replay: {where}"
        return entry
    recorded_sha = prov.get("dataset_sha256") if isinstance(prov, dict) else None
    entry["dataset_sha256"] = sha
    if not recorded_sha:
        entry["problem"] = ("cannot replay: provenance.json records no dataset_sha256, so "
                            f"{where} cannot be shown to be its data")
        return entry
    if recorded_sha != sha:
        entry["problem"] = (f"cannot replay: {where} has sha256 {sha[:12]}, the run was "
                            f"trained on {str(recorded_sha)[:12]}")
        return entry
    try:
        cfg = SlabConfig.from_dict(metrics["slab"])
        member = Member(float(metrics["lr"]), float(metrics["weight_decay"]),
                        int(metrics["seed"]))
        n = int(min(steps, metrics.get("steps", len(recorded)), len(recorded)))
        reference = None
        if metrics.get("mimic_reference"):
            ref_dir = resolve_reference(root, metrics["mimic_reference"])
            if ref_dir is None:
                entry["problem"] = (f"cannot replay: its reference run "
                                    f"{metrics['mimic_reference']} is not in the results")
                return entry
            entry["reference"] = ref_dir.relative_to(root).as_posix()
            reference = runs.read_trace(ref_dir)["sq_norm"][: n + 1, None, :]
        result = train_slab(cfg, [member], prepared.x_train, prepared.y_train,
                            prepared.x_test, prepared.y_test, device=device, max_steps=n,
                            reference_sq_norms=reference)
    except Exception as error:  # noqa: BLE001 -- any failure to retrain is a finding
        entry["problem"] = f"replay failed ({type(error).__name__}: {error})"
        return entry
    replayed = result.trace["loss"][:, 0].astype(np.float64)
    want = np.asarray(recorded[:n], dtype=np.float64)
    entry["steps"] = n
    if replayed.shape != want.shape:
        entry["problem"] = f"replayed {replayed.shape[0]} steps, recorded {want.shape[0]}"
        return entry
    close = np.isclose(replayed, want, rtol=rtol, atol=atol, equal_nan=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_err = np.abs(replayed - want)
        rel_err = abs_err / np.abs(want)
    finite = np.isfinite(abs_err)
    entry["max_abs_err"] = float(abs_err[finite].max()) if finite.any() else 0.0
    entry["max_rel_err"] = float(rel_err[np.isfinite(rel_err)].max()) \
        if np.isfinite(rel_err).any() else 0.0
    if close.all():
        entry["ok"] = True
        return entry
    first = int(np.argmin(close))
    entry["first_mismatch_step"] = first
    entry["problem"] = (f"loss differs from trace.npz at step {first}: replayed "
                        f"{replayed[first]:.7g}, recorded {want[first]:.7g} "
                        f"(max relative error {entry['max_rel_err']:.2e} over {n} steps, "
                        f"rtol {rtol:g})")
    return entry


# --------------------------------------------------------------------------- claims

def _claim_verdicts(obj: Any) -> dict[str, Any]:
    """``{claim: verdict}`` from claims.json or decide_all's output: its ``claims`` entry
    (a list of claim objects with an ``id``, as wdnorm.claims writes, or a mapping id ->
    claim object), or claim objects at the top level."""
    if isinstance(obj, dict) and "claims" in obj:
        obj = obj["claims"]
    if isinstance(obj, list):
        obj = {str(c.get("id", c.get("claim", i))): c for i, c in enumerate(obj)
               if isinstance(c, dict)}
    if not isinstance(obj, dict):
        return {}
    return {str(k): v.get("verdict") for k, v in obj.items()
            if isinstance(v, dict) and "verdict" in v}


def _table_hashes(recorded: dict) -> dict[str, tuple[str, str]]:
    """``{table: (where, sha256)}`` recorded in claims.json: wdnorm.claims writes
    ``inputs: {name: {path, sha256, rows}}``; a plain ``inputs_sha256: {name: sha256}``
    is read too."""
    for key in ("inputs_sha256", "tables_sha256"):
        value = recorded.get(key)
        if isinstance(value, dict):
            return {str(k): (str(k), str(v)) for k, v in value.items()}
    out = {}
    inputs = recorded.get("inputs")
    if isinstance(inputs, dict):
        for name, value in inputs.items():
            if isinstance(value, str):
                out[str(name)] = (str(name), value)
            elif isinstance(value, dict) and value.get("sha256"):
                out[str(name)] = (str(value.get("path") or name), str(value["sha256"]))
    return out


def resolve_table(root: Path, key: str) -> Path | None:
    """A table that claims.json names (``runs``, ``runs.csv``, ``tables/runs.csv``,
    ``results/tables/runs.csv``, or an absolute path), relative to the results root."""
    candidates = [root / "tables" / f"{key}.csv", root / "tables" / key]
    parts = Path(key).parts
    for i in range(len(parts)):
        candidates.append(root.joinpath(*parts[i:]))
    return next((c for c in candidates if _inside(root, c) and c.is_file()), None)


def check_claims(root: Path, config: dict | None) -> Check:
    check = Check("claims")
    claims_path, tables_dir = root / "claims.json", root / "tables"
    if not claims_path.is_file():
        check.status = SKIP
        check.summary = ("no claims.json" + (" (tables present: the claims step has not run?)"
                                             if tables_dir.is_dir() else " and no tables"))
        return check
    recorded, error = _read_json(claims_path)
    if error or not isinstance(recorded, dict):
        check.problems.append(f"claims.json: {error or 'not a JSON object'}")
        return check.finish("claims.json unreadable")
    hashes = _table_hashes(recorded)
    if not hashes:
        check.problems.append("claims.json records no sha256 of its input tables")
    for name, (where, digest) in sorted(hashes.items()):
        path = resolve_table(root, where) or resolve_table(root, name)
        if path is None:
            check.problems.append(f"table {name} ({where}): recorded in claims.json, not "
                                  f"found under {root.name}/")
        elif fileio.sha256_file(path) != digest:
            check.problems.append(f"{path.relative_to(root).as_posix()}: sha256 differs from "
                                  "the one claims.json records")
    verdicts = _claim_verdicts(recorded)
    check.details = {"tables": sorted(hashes), "recorded": verdicts}
    if not verdicts:
        check.problems.append("claims.json records no verdicts")
    summary = recorded.get("verdicts")
    if isinstance(summary, dict):  # wdnorm.claims also writes {id: verdict}: must agree
        for claim in sorted(set(summary) | set(verdicts)):
            if summary.get(claim) != verdicts.get(claim):
                check.problems.append(f"claim {claim}: claims.json is inconsistent (verdicts "
                                      f"says {summary.get(claim)!r}, the claim entry "
                                      f"{verdicts.get(claim)!r})")
    settings, source = _claims_settings(recorded, config, check)
    try:
        claims = importlib.import_module("wdnorm.claims")
    except ImportError as error:
        check.notes.append(f"verdicts not recomputed: wdnorm.claims is not available ({error})")
        return _finish_unrecomputed(check)
    if settings is None:
        check.notes.append("verdicts not recomputed: claims.json records no settings; pass "
                           "--config")
        return _finish_unrecomputed(check)
    try:
        tables = claims.load_tables(tables_dir)
        output = claims.decide_all(tables, settings)
        decided = _claim_verdicts(output)
    except Exception as error:  # noqa: BLE001 -- failing to recompute is a finding
        check.problems.append(f"recomputing the verdicts failed ({type(error).__name__}: "
                              f"{error})")
        return check.finish("verdicts not recomputed")
    check.details["recomputed"] = decided
    check.details["settings_from"] = source
    if isinstance(output, dict) and isinstance(recorded.get("tolerances"), dict) \
            and isinstance(output.get("tolerances"), dict):
        for diff in _differences("tolerances", recorded["tolerances"], output["tolerances"]):
            check.notes.append(diff.replace(", config ", ", this code "))
    for claim in sorted(set(verdicts) | set(decided)):
        if claim not in decided:
            check.problems.append(f"claim {claim}: recorded {verdicts[claim]!r}, not decided "
                                  "from the tables")
        elif claim not in verdicts:
            check.problems.append(f"claim {claim}: decided {decided[claim]!r} from the tables, "
                                  "not in claims.json")
        elif verdicts[claim] != decided[claim]:
            check.problems.append(f"claim {claim}: claims.json says {verdicts[claim]!r}, the "
                                  f"tables give {decided[claim]!r}")
    return check.finish(f"{len(decided)} verdicts recomputed from {len(hashes)} tables "
                        f"(settings from {source})")


def _finish_unrecomputed(check: Check) -> Check:
    if check.problems:
        return check.finish("table hashes or verdicts do not match")
    check.status = SKIP
    check.summary = (f"{len(check.details['tables'])} table hashes match; verdicts not "
                     "recomputed")
    return check


def _claims_settings(recorded: dict, config: dict | None, check: Check):
    stored = recorded.get("settings")
    if config is None:
        return (stored, "claims.json") if isinstance(stored, dict) else (None, None)
    settings = {k: config[k] for k in CLAIMS_KEYS}
    if isinstance(stored, dict):
        check.problems += [f"claims were decided with other settings: {d}"
                           for d in _differences("settings", stored, settings)]
    return settings, "--config"


# --------------------------------------------------------------------------- entry point

def audit(results_dir: str | Path, *, config: dict | None = None,
          data_dir: str | Path | None = None, replay: int = 0, seed: int | None = None,
          replay_steps: int = DEFAULT_REPLAY_STEPS, rtol: float = DEFAULT_RTOL,
          atol: float = DEFAULT_ATOL, device: str = "cpu", strict_code: bool = False,
          checks: tuple[str, ...] = CHECKS, current_code: dict | None = None,
          log: Callable[[str], None] | None = None) -> AuditReport:
    """Audit ``results_dir`` (see the module docstring). ``config``: the parsed user
    config (a dict; schema defaults are filled in here); ``data_dir`` defaults to
    ``results_dir/../data``; ``seed`` (replay choice) is drawn when None and reported."""
    root = Path(results_dir)
    if not root.is_dir():
        raise AuditError(f"no results directory at {root}")
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise AuditError(f"unknown checks {sorted(unknown)}; valid: {', '.join(CHECKS)}")
    data_dir = Path(data_dir) if data_dir is not None else root.parent / "data"
    if config is not None:
        config = check_config(config)
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    refs = find_runs(root)
    done: list[Check] = []
    for name in CHECKS:
        if name not in checks:
            continue
        if name == "integrity":
            done.append(check_integrity(root, refs))
        elif name == "completeness":
            done.append(check_completeness(root, refs, config))
        elif name == "provenance":
            done.append(check_provenance(root, refs, config, data_dir, strict_code,
                                         current_code))
        elif name == "replay":
            done.append(check_replay(root, refs, data_dir, replay, seed, replay_steps,
                                     rtol, atol, device, log))
        else:
            done.append(check_claims(root, config))
    return AuditReport(results_dir=str(root), data_dir=str(data_dir), n_runs=len(refs),
                       checks=done)
