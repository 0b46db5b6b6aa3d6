"""The tiny pipeline's training through a real SLURM cluster (.ci/start-slurm starts a
single-node one); its outputs must equal a local run's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from wdnorm import runs

REPO = Path(__file__).resolve().parents[1]
CONFIG = {
    "datasets": ["digits"], "architectures": ["ln", "plain"],
    "model": {"width": 16, "depth": 2}, "weight_decays": [0.0, 1e-2], "seeds": [0],
    "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
    "matched_pairs": [], "training": {"epochs": 2, "batch_size": 64, "eval_every": 1},
    "claims": {"weight_decay": 1e-2}, "device": "cpu", "threads": 1, "compile": False,
}
TARGETS = [f"results/runs/digits/sgdm/{arch}/slab.json" for arch in CONFIG["architectures"]]

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def slurm_problem() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "SLURM is not installed (run .ci/start-slurm)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return f"sinfo fails: {proc.stderr.strip()} (run .ci/start-slurm)"
    if not any(state.startswith(("idle", "mix", "alloc")) for state in proc.stdout.split()):
        return f"no usable SLURM node (states: {proc.stdout.split()})"
    return None


def start_pipeline(workdir: Path, *extra: str) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    # timeout -k: SIGTERM alone only asks snakemake to wait for its running jobs
    return subprocess.Popen(
        ["timeout", "-k", "10", "540", sys.executable, "-m", "snakemake",
         "-s", str(REPO / "Snakefile"), "-d", str(workdir), *extra, *TARGETS],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_training_through_slurm_equals_a_local_run(tmp_path):
    problem = slurm_problem()
    if problem:
        print(f"SKIPPED: {problem}")
        pytest.skip(problem)
    # the local reference runs meanwhile: the SLURM run mostly waits on the scheduler
    local = start_pipeline(tmp_path / "local", "--cores", "1")
    via_slurm = start_pipeline(
        tmp_path / "slurm", "--workflow-profile", str(REPO / "workflow/profiles/slurm"),
        "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks",
        "1", "--jobs", "4")
    output = via_slurm.communicate()[0]
    assert via_slurm.returncode == 0, output[-5000:]
    assert "SLURM jobid" in output or "SLURM run ID" in output, output[-3000:]
    slurm_logs = list((tmp_path / "slurm" / ".snakemake" / "slurm_logs").rglob("*.log"))
    trained_by_slurm = {p.parent.parent.name for p in slurm_logs}
    assert "rule_train_slab" in trained_by_slurm, slurm_logs

    local_output = local.communicate()[0]
    assert local.returncode == 0, local_output[-5000:]
    for target in TARGETS:
        members = json.loads((tmp_path / "local" / target).read_text())["members"]
        assert members == json.loads((tmp_path / "slurm" / target).read_text())["members"]
        assert len(members) >= 2  # the grid runs, and the equivalents where there is a symmetry
        for run in members:
            a = (tmp_path / "slurm" / target).parent / run
            b = (tmp_path / "local" / target).parent / run
            for key, value in runs.read_trace(a).items():
                np.testing.assert_array_equal(value, runs.read_trace(b)[key],
                                              err_msg=f"{target} {run} {key}")
            assert runs.read_metrics(a)["final"] == runs.read_metrics(b)["final"]
