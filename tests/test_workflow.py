"""End to end: the real Snakefile on a tiny config in a temporary directory, then what a
change of config or code reruns (dry runs on copies of the finished run)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "datasets": ["digits"],
    "architectures": ["ln", "plain"],
    "model": {"width": 16, "depth": 2},
    "weight_decays": [0.0, 1e-2],
    "seeds": [0],
    "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
    "matched_pairs": [],
    "training": {"epochs": 2, "batch_size": 64, "eval_every": 1},
    "mimic": {"weight_decay": 1e-2},
    "gradient_identity": {"steps": 20, "lr": 0.05},
    "device": "auto",
    "threads": 1,
    "figures": {"formats": ["png"], "dpi": 60},
}
TRAIN_RULES = {"train_slab_sgdm", "train_mimic_sgdm"}

pytestmark = pytest.mark.slow


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 600):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--cores", "2", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def planned_jobs(workdir: Path, env: dict | None = None) -> dict[str, int]:
    """Rule -> job count of a dry run ({} when there is nothing to do)."""
    proc = snakemake(workdir, "-n", env=env)
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
    assert sorted(claims["verdicts"]) == [f"C{i}" for i in range(1, 7)]
    for claim in claims["claims"]:
        assert claim["verdict"] in ("supported", "refuted", "inconclusive")
        assert claims["verdicts"][claim["id"]] == claim["verdict"]
    assert (finished / "results" / "CLAIMS.md").stat().st_size > 0
    for name in ("runs", "dynamics", "penalty", "symmetry", "gradient_identity"):
        assert (finished / "results" / "tables" / f"{name}.csv").stat().st_size > 0
    for figure in ("symmetry_map", "accuracy_vs_wd", "mechanism"):
        assert (finished / "figures" / f"{figure}.png").stat().st_size > 1000
        assert (finished / "results" / "notebooks" / f"{figure}.ipynb").exists()
    run_dirs = sorted((finished / "results" / "runs").glob("digits/sgdm/*/*"))
    assert len(run_dirs) == 2 * 2  # archs x weight decays x seeds
    for run_dir in run_dirs:
        assert (run_dir / "MANIFEST.sha256").exists()
    assert len(list((finished / "results" / "mimic").glob("digits/sgdm/*/*"))) == 2
    train_log = (finished / "results/logs/train/digits/sgdm/ln.log").read_text()
    assert "epoch 1/2" in train_log and "epoch 2/2" in train_log


def test_nothing_to_do_after_a_complete_run(finished):
    assert planned_jobs(finished) == {}


def test_adding_a_weight_decay_reruns_training_not_data_or_probes(copy_of):
    write_config(copy_of, {**TINY, "weight_decays": [0.0, 1e-3, 1e-2]})
    jobs = planned_jobs(copy_of)
    assert jobs.get("train_slab_sgdm") == 2  # both slabs gain a member
    assert "prepare_data" not in jobs and "symmetry_probes" not in jobs
    assert "gradient_identity" not in jobs


def test_a_figure_option_reruns_figures_only(copy_of):
    write_config(copy_of, {**TINY, "figures": {"formats": ["png"], "dpi": 72}})
    jobs = planned_jobs(copy_of)
    assert set(jobs) - {"all", "figures"} == {"figure"}


def test_changing_training_code_marks_training_stale(copy_of, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(REPO / "src", src)
    env = {"PYTHONPATH": str(src)}
    assert planned_jobs(copy_of, env=env) == {}  # an identical copy of the code: nothing
    engine = src / "wdnorm" / "engine.py"
    engine.write_text(engine.read_text() + "\n# a change to the training code\n")
    jobs = planned_jobs(copy_of, env=env)
    assert TRAIN_RULES <= set(jobs)
    assert "prepare_data" not in jobs


def test_killed_training_leaves_nothing_complete_and_is_rerun(tmp_path):
    config = {**TINY, "architectures": ["ln"], "training": {"epochs": 400, "batch_size": 64,
                                                           "eval_every": 1}}
    write_config(tmp_path, config)
    log = tmp_path / "results/logs/train/digits/sgdm/ln.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--cores", "1", "results/runs/digits/sgdm/ln/lr0.05_wd0_s0/metrics.json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (log.exists() and "epoch 3/" in log.read_text()):
        time.sleep(0.2)
    assert log.exists(), "training never started"
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and the job, mid-training
    proc.wait()
    slab = tmp_path / "results/runs/digits/sgdm/ln"
    assert not list(slab.glob("*/MANIFEST.sha256")), "a killed slab left complete-looking runs"
    assert not list(slab.glob("*/metrics.json"))
    # the next run notices and retrains (rerun-incomplete in the default profile)
    assert "train_slab_sgdm" in planned_jobs(tmp_path)
