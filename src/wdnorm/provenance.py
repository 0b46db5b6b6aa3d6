"""Provenance that travels with the results (snakemake's .snakemake/ does not).

:func:`collect` returns the ``provenance.json`` of one run: the config values that
determine it and their hash, the code version (git commit, dirty flag, package version
and a content hash of the training code), the versions of Python and the pinned
packages, the device, thread count, seed, wall time and the sha256 of the prepared
dataset. :func:`training_values` and :func:`run_values` say which config values a run
records. :mod:`wdnorm.audit` reads it back to decide whether results made somewhere
else can be trusted here.
"""

from __future__ import annotations

import datetime
from functools import lru_cache
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import __version__, dependencies, protocols

TRACKED_PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scikit-learn", "scipy",
                    "snakemake", "snakemake-executor-plugin-slurm", "pyyaml", "seaborn",
                    "matplotlib", "papermill")

# The training code: the wdnorm modules this entry point imports, transitively
# (wdnorm.dependencies reads them from the imports; the train_slab rule's code hash is
# the closure of its script, which imports this module).
TRAINING_ENTRY = "wdnorm.tasks"

# Paths whose *untracked* files make a checkout dirty (a new module not yet added);
# untracked files elsewhere (results/, data/, notes) do not.
CODE_PATHS = ("src", "workflow", "Snakefile", "pyproject.toml", "config.yaml")

# The keys of provenance.json :func:`collect` always writes.
FIELDS = ("config_values", "config_hash", "code", "packages", "device", "device_name",
          "threads", "torch_threads", "seed", "wall_seconds", "dataset_sha256", "host",
          "platform", "created_utc", "argv", "pid")

# The config values every run of a slab depends on (the workflow passes
# training_values(config, data, optimiser) to the training job; the audit compares
# them): its data variant, model, decay scope, slab-level training and optimiser.
TRAINING_KEYS = ("data", "n_train", "n_validation", "subset_seed", "model", "decay_scope",
                 "training", "optimiser")

# The keys of a run's config values that describe the run itself, not the config
# settings it was made with (see run_values). The optimiser is a setting: its name,
# algorithm and hyper-parameters are part of the settings hash.
RUN_KEYS = ("dataset", "slab", "member", "kind")

_GIT_TIMEOUT = 10
_MAX_DIRTY_PATHS = 20


def config_hash(values: dict) -> str:
    """sha256 of the canonical JSON of the config values that determine an artifact:
    key order never matters, list order does."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def training_values(config: dict, data: str, optimiser: str) -> dict:
    """The config values every run of the slab ``data``/``optimiser`` depends on
    (defaults-filled ``config``; the slab's protocols, :mod:`wdnorm.protocols`): its
    data variant, model, decay scope, the slab-level training settings (each member
    records its own learning-rate schedule) and the optimiser, named."""
    p = protocols.slab_settings(config, data, optimiser)
    training = {k: v for k, v in p.training.items() if k not in protocols.MEMBER_TRAINING_KEYS}
    return {"data": p.data.values(), "n_train": p.data.n_train,
            "n_validation": p.data.n_validation, "subset_seed": p.data.subset_seed,
            "model": config["model"], "decay_scope": config["decay_scope"],
            "training": training, "optimiser": {"name": optimiser, **p.optimiser_entry}}


def run_values(settings: dict, *, dataset: str, slab: dict, member: dict, kind: str) -> dict:
    """The ``config_values`` of one run's provenance: the :func:`training_values` it was
    trained with plus what names the run (:data:`RUN_KEYS`)."""
    return {**settings, "dataset": dataset, "slab": slab, "member": member, "kind": kind}


def settings_hash(config_values: dict) -> str:
    """Hash of the config *settings* part of a run's config values (everything but
    :data:`RUN_KEYS`, so the optimiser's name and hyper-parameters count): equal for
    every run of one optimiser made from one config."""
    return config_hash({k: v for k, v in config_values.items() if k not in RUN_KEYS})


def training_code_hash() -> str | None:
    """The content hash of the training code (:data:`TRAINING_ENTRY`'s import closure);
    None if a module of it cannot be read."""
    try:
        return dependencies.code_hash([TRAINING_ENTRY])
    except (OSError, SyntaxError):
        return None


def _git(repo: Path, *args: str) -> str:
    # GIT_OPTIONAL_LOCKS=0: `git status` must not take index.lock (parallel jobs).
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, timeout=_GIT_TIMEOUT, env=env).stdout


def default_repo() -> Path:
    """The checkout root when the package runs from a src-layout tree (editable
    install): ``<repo>/src/wdnorm/provenance.py``."""
    return Path(__file__).resolve().parents[2]


def code_version(repo: str | Path | None = None) -> dict:
    """Git commit and dirty flag of the checkout holding this package; the package
    version alone when there is no git (no git binary, an installed wheel, a copied
    tree, a directory inside some other repository).

    Dirty means: a tracked file differs from HEAD, or an untracked, not ignored file
    lies under :data:`CODE_PATHS`. ``training_code_sha256`` identifies the training code
    even without git (and inside a dirty tree)."""
    repo = Path(repo) if repo else default_repo()
    info = {"package_version": __version__, "git_commit": None, "git_dirty": None,
            "training_code_sha256": training_code_hash()}
    try:
        top = _git(repo, "rev-parse", "--show-toplevel").strip()
        if Path(top).resolve() != repo.resolve():  # an enclosing repository, not ours
            raise ValueError(f"{repo} is not the root of a git checkout (that is {top})")
        commit = _git(repo, "rev-parse", "HEAD").strip()
        tracked = _git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()
        untracked = [line for line in _git(repo, "status", "--porcelain",
                                           "--untracked-files=all", "--", *CODE_PATHS
                                           ).splitlines() if line.startswith("??")]
        dirty = [line[3:] for line in tracked + untracked if line.strip()]
        info.update(git_commit=commit, git_dirty=bool(dirty),
                    git_dirty_paths=dirty[:_MAX_DIRTY_PATHS])
    except FileNotFoundError:
        info["git_error"] = "git not found"
    except subprocess.CalledProcessError as error:
        lines = (error.stderr or "").strip().splitlines()
        info["git_error"] = lines[0] if lines else f"git exited with {error.returncode}"
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        info["git_error"] = str(error)
    return info


@lru_cache(maxsize=1)  # one lookup per process: a slab records hundreds of runs
def _package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import torch
        versions["torch_cuda"] = torch.version.cuda
        versions["cudnn"] = (torch.backends.cudnn.version()
                             if torch.backends.cudnn.is_available() else None)
    except Exception:  # noqa: BLE001 -- provenance must never break a finished run
        versions["torch_cuda"] = versions["cudnn"] = None
    return versions


def package_versions() -> dict:
    return dict(_package_versions())


@lru_cache(maxsize=None)
def device_name(device: str) -> str:
    device = str(device)
    if device.startswith("cuda"):
        try:
            import torch
            return torch.cuda.get_device_name(torch.device(device))
        except Exception:  # noqa: BLE001
            return device
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_threads() -> int | None:
    try:
        import torch
        return torch.get_num_threads()
    except Exception:  # noqa: BLE001
        return None


def collect(*, config_values: dict, dataset_sha256: str, device: str, threads: int,
            seed: int, wall_seconds: float, code: dict | None = None) -> dict:
    """The provenance record of one run (``code``: a :func:`code_version` computed
    once for a whole slab; computed here when not given)."""
    return {
        "config_values": config_values,
        "config_hash": config_hash(config_values),
        "code": code if code is not None else code_version(),
        "packages": package_versions(),
        "device": str(device),
        "device_name": device_name(device),
        "threads": threads,
        "torch_threads": _torch_threads(),
        "seed": seed,
        "wall_seconds": wall_seconds,
        "dataset_sha256": dataset_sha256,
        "host": platform.node(),
        "platform": platform.platform(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "argv": sys.argv[:1],
        "pid": os.getpid(),
    }
