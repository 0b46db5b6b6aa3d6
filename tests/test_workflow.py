"""End to end: the real Snakefile on a tiny config in a temporary directory, then what a
change of config or code reruns (dry runs on copies of the finished run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "datasets": ["digits"],
    "n_validation": 200,
    "architectures": ["ln", "plain"],
    "model": {"width": 16, "depth": 2},
    "weight_decays": [0.0, 1e-2],
    "seeds": list(range(10)),
    "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9,
                            "lr_grid": [0.1]}},
    "matched_pairs": [],
    "training": {"epochs": 2, "batch_size": 64, "eval_every": 1, "final_evals": 2,
                 "lr_schedule": "cosine", "lr_decay_fraction": 0.5},
    "claims": {"weight_decay": 1e-2, "stability": {"resamples": 20}},
    # C9: a constant learning rate trains beside the grid, in its slabs; a data variant
    # (no validation split) in slabs and a prepared file of its own
    "protocols": {"constant_lr": {"lr_schedule": "constant", "changes": "constant LR"},
                  "all_data": {"n_validation": 0, "changes": "no validation split"}},
    "gradient_identity": {"steps": 20, "lr": 0.05},
    "equivalence_probe": {"steps": 30},
    "device": "auto",
    "compile": False,
    "threads": 1,
    "figures": {"formats": ["png"], "dpi": 60},
}
KINDS = ("grid", "exact", "schedule", "mimic")
pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 600,
              snakefile: Path = REPO / "Snakefile"):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir),
         "--cores", "2", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def planned_jobs(workdir: Path, env: dict | None = None,
                 snakefile: Path = REPO / "Snakefile") -> dict[str, int]:
    """Rule -> job count of a dry run ({} when there is nothing to do)."""
    proc = snakemake(workdir, "-n", env=env, snakefile=snakefile)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stdout + proc.stderr).splitlines()
    if not any(line.startswith("Job stats:") for line in lines):
        assert "Nothing to be done" in proc.stdout + proc.stderr
        return {}
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats:"))
    jobs = {}
    for line in lines[start + 3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        jobs[parts[0]] = int(parts[1])
    jobs.pop("total", None)
    return jobs


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("e2e")
    write_config(workdir, TINY)
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-5000:]
    return workdir


@pytest.fixture
def copy_of(finished, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(finished, target, symlinks=True)  # copytree keeps mtimes
    return target


def test_outputs_of_the_default_targets(finished):
    claims = json.loads((finished / "results" / "claims.json").read_text())
    assert sorted(claims["verdicts"]) == [f"C{i}" for i in range(1, 10)]
    assert claims["answer"] and all("stability" in c for c in claims["claims"])
    markdown = (finished / "results" / "CLAIMS.md").read_text()
    assert all(f"C{i}" in markdown for i in range(1, 10))
    # C8 tuned both arms over the two learning rates on the validation split
    tuned = next(c for c in claims["claims"] if c["id"] == "C8")["measured"]["per_arch"]
    assert set(tuned) == {"digits/sgdm/ln", "digits/sgdm/plain"}
    assert tuned["digits/sgdm/ln"]["n_pairs"] == len(TINY["seeds"])
    assert len(tuned["digits/sgdm/ln"]["candidates"]) == 4
    runs = pd.read_csv(finished / "results" / "tables" / "runs.csv")
    in_variant = runs["protocol"] == "all_data"
    assert runs.loc[~in_variant, "val_acc"].notna().all() and set(runs["lr"]) == {0.05, 0.1}
    assert runs.loc[in_variant, "val_acc"].isna().all() and in_variant.any()
    assert (finished / "data/prepared/digits-all_data.pt").exists()
    assert set(runs["protocol"]) == {"main", "constant_lr", "all_data"}
    assert set(runs.loc[runs["protocol"] == "constant_lr", "lr_schedule"]) == {"constant"}
    c9 = next(c for c in claims["claims"] if c["id"] == "C9")["measured"]["per_protocol"]
    assert set(c9) == {"main", "constant_lr", "all_data"}
    assert set(c9["constant_lr"]["per_arch"]) == set(c9["all_data"]["per_arch"]) == {"ln", "plain"}
    history = pd.read_csv(finished / "results" / "tables" / "history.csv")
    per_run = history.groupby(["dataset", "arch", "run_id"]).size()
    assert per_run.min() >= 3 and len(per_run) == len(runs)  # every run, every evaluation
    effects = pd.read_csv(finished / "results" / "tables" / "effects.csv")
    assert {"C6", "C8", "C9"} <= set(effects["claim"])
    for name in ("runs", "dynamics", "penalty", "symmetry", "gradient_identity",
                 "equivalence_probe", "history", "effects"):
        assert (finished / "results" / "tables" / f"{name}.csv").stat().st_size > 0
    for figure in ("symmetry_map", "accuracy_vs_wd", "mechanism", "protocols"):
        assert (finished / "figures" / f"{figure}.png").stat().st_size > 1000
        assert (finished / "results" / "notebooks" / f"{figure}.ipynb").exists()
    for arch in TINY["architectures"]:
        slab = finished / "results" / "runs" / "digits" / "sgdm" / arch
        members = json.loads((slab / "slab.json").read_text())["members"]
        # every run kind of the architecture in its one slab: 2 lr × 2 λ, the 3
        # equivalents at the optimiser's lr where there is a symmetry to follow (ln, not
        # plain), and the constant-LR protocol's 2 λ
        assert len(members) == len(TINY["seeds"]) * (9 if arch == "ln" else 6)
        for run in members:
            assert (slab / run / "MANIFEST.sha256").exists()
    train_log = (finished / "results/logs/train/digits/sgdm/ln.log").read_text()
    assert "epoch 1/2" in train_log and "epoch 2/2" in train_log
    assert not list((finished / "results").glob("checkpoints/**/*.pt"))  # deleted when done


def test_c9_does_not_depend_on_the_order_of_the_protocols(finished):
    """The claims step and the audit receive the protocols through JSON in either order;
    C9's texts must not follow it (an untouched copy would fail the audit)."""
    from wdnorm import claims, config

    settings = claims.settings_from_config(
        config.validate(yaml.safe_load((finished / "config.yaml").read_text())))
    tables = claims.load_tables(finished / "results" / "tables")
    flipped = {**settings, "protocols": dict(reversed(list(settings["protocols"].items())))}
    assert list(flipped["protocols"]) != list(settings["protocols"])
    a, b = claims.decide("C9", tables, settings), claims.decide("C9", tables, flipped)
    assert a["summary"] == b["summary"] and a["key_numbers"] == b["key_numbers"]


def test_the_time_budget_reads_the_real_logs(finished):
    """What the end of a run prints is parsed from the logs the jobs really write."""
    from wdnorm import timing

    first_run = sorted((finished / ".snakemake" / "log").glob("*.snakemake.log"))[0]
    budget = timing.budget(finished, first_run)
    assert {s["slab"] for s in budget["slabs"]} >= {"digits/sgdm/ln", "digits/sgdm/plain"}
    for slab in budget["slabs"]:
        assert slab["trained_s"] > 0, slab
        text = (finished / "results/logs/train" / f"{slab['slab']}.log").read_text()
        # every part of the split is read from a line the job wrote, none defaults to 0
        assert timing.TRAINED.search(text) and timing.EVALUATED.search(text), text[-500:]


def test_nothing_to_do_after_a_complete_run(finished):
    assert planned_jobs(finished) == {}


def test_adding_a_weight_decay_reruns_training_not_data_or_probes(copy_of):
    write_config(copy_of, {**TINY, "weight_decays": [0.0, 1e-3, 1e-2]})
    jobs = planned_jobs(copy_of)
    assert jobs.get("train_slab") == 2  # both slabs gain members
    assert "prepare_data" not in jobs and "symmetry_probes" not in jobs
    assert "gradient_identity" not in jobs


def test_a_figure_option_reruns_figures_only(copy_of):
    write_config(copy_of, {**TINY, "figures": {"formats": ["png"], "dpi": 72}})
    jobs = planned_jobs(copy_of)
    assert set(jobs) - {"all", "figures"} == {"figure"}


def _checkout_copy(target: Path) -> Path:
    """The workflow and its package, copied: a Snakefile run from there imports that
    copy's src/ in the controller and in every job, whatever wdnorm is installed."""
    target.mkdir()
    shutil.copy2(REPO / "Snakefile", target / "Snakefile")
    for name in ("workflow", "src"):
        shutil.copytree(REPO / name, target / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return target / "Snakefile"


def test_code_edits_rerun_exactly_the_rules_that_import_the_code(copy_of, tmp_path):
    """The code hash of a rule is its script's import closure: an untouched copy of the
    code has nothing to do; an edit to layout.py (imported by the training) reruns
    training, one to the claims' rendering reruns the claims, not the training."""
    snakefile = _checkout_copy(tmp_path / "checkout")
    assert planned_jobs(copy_of, snakefile=snakefile) == {}
    render = tmp_path / "checkout" / "src" / "wdnorm" / "claims" / "render.py"
    render.write_text(render.read_text() + "\n# an edit to the claims' code\n")
    stale = planned_jobs(copy_of, snakefile=snakefile)
    assert "claims" in stale and "train_slab" not in stale and "evaluate_slab" not in stale
    layout = tmp_path / "checkout" / "src" / "wdnorm" / "layout.py"
    layout.write_text(layout.read_text() + "\n\ndef an_added_function():\n    pass\n")
    stale = planned_jobs(copy_of, snakefile=snakefile)
    assert "train_slab" in stale and "prepare_data" not in stale


def test_same_verdicts_with_another_thread_count(finished, copy_of):
    """Another reduction order (two BLAS threads instead of one) must not flip a verdict:
    every slab retrained with 2 threads, then everything downstream of it."""
    write_config(copy_of, {**TINY, "threads": 2})
    proc = snakemake(copy_of, "claims", "--forcerun", "train_slab")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (copy_of / "results/logs/train/digits/sgdm/ln.log").read_text()
    assert "2 threads" in log  # really retrained, with the other thread count
    verdicts = [json.loads((d / "results" / "claims.json").read_text())["verdicts"]
                for d in (finished, copy_of)]
    assert verdicts[0] == verdicts[1]


def test_corrupt_prepared_data_stops_before_any_job(copy_of):
    """A truncated prepared file fails while the DAG is built, names the file, and
    leaves every finished run directory in place."""
    pt = copy_of / "data" / "prepared" / "digits.pt"
    before = sorted(p.relative_to(copy_of) for p in copy_of.glob("results/runs/**/MANIFEST.sha256"))
    with open(pt, "r+b") as handle:
        handle.truncate(1000)
    write_config(copy_of, {**TINY, "weight_decays": [0.0, 1e-3, 1e-2]})  # training is due
    proc = snakemake(copy_of)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "digits.pt" in output and "sha256" in output and "snakemake" in output
    assert "rule train_slab" not in output  # no job started
    after = sorted(p.relative_to(copy_of) for p in copy_of.glob("results/runs/**/MANIFEST.sha256"))
    # per seed: ln 9 + plain 6 runs in the main slabs, 2 + 2 in the data variant's
    assert after == before and len(before) == len(TINY["seeds"]) * 19


def test_re_preparing_identical_data_leaves_nothing_to_do(copy_of):
    proc = snakemake(copy_of, "--forcerun", "prepare_data", "--until", "prepare_data")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "prepare_data" in proc.stdout + proc.stderr  # it really ran again
    assert planned_jobs(copy_of) == {}
