"""Crash safety, end to end: the real Snakefile on a tiny config, killed mid-slab (the
training job, or the whole snakemake process group), then rerun."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from test_workflow import REPO, TINY, snakemake, write_config

pytestmark = pytest.mark.slow


def _assert_same_slab(a: Path, b: Path) -> None:
    """Everything two slabs' runs hold is bit-identical (provenance aside; a diverged
    run's NaNs count as equal to NaNs)."""
    members = json.loads((a / "slab.json").read_text())["members"]
    assert members == json.loads((b / "slab.json").read_text())["members"]
    for run in members:
        ma, mb = (json.loads((d / run / "metrics.json").read_text()) for d in (a, b))
        for key in ("final", "status", "steps", "diverged_step"):
            assert ma[key] == mb[key] or ma[key] != ma[key], f"{run} {key}"
        for key in ma["history"]:
            np.testing.assert_array_equal(np.asarray(ma["history"][key], dtype=float),
                                          np.asarray(mb["history"][key], dtype=float),
                                          err_msg=f"{run} history {key}")
        with np.load(a / run / "trace.npz") as ta, np.load(b / run / "trace.npz") as tb:
            for key in ta.files:
                np.testing.assert_array_equal(ta[key], tb[key], err_msg=f"{run} {key}")
        sa, sb = (torch.load(d / run / "model.pt", weights_only=True) for d in (a, b))
        for key in sa:
            np.testing.assert_array_equal(sa[key].numpy(), sb[key].numpy(),
                                          err_msg=f"{run} {key}")


RESUME = {**TINY, "architectures": ["ln"], "seeds": [0, 1], "n_validation": 0,
          "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
          "training": {"epochs": 25, "batch_size": 64, "eval_every": 5},
          "protocols": {}}
SLAB = "results/runs/digits/sgdm/ln/slab.json"


def _start(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
         "--cores", "1", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)


def _wait_for(workdir: Path, proc: subprocess.Popen, text: str) -> None:
    log = workdir / "results/logs/train/digits/sgdm/ln.log"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and text in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"the log never said {text!r} (returncode {proc.poll()})")


@pytest.mark.parametrize("sig, cadence, wait_for", [
    # SIGKILL saves nothing: the rerun resumes from the last regular checkpoint
    (signal.SIGKILL, {"every_steps": 1}, "checkpoint at step"),
    # SIGTERM (SLURM at its time limit) saves at the next step, whatever the cadence
    (signal.SIGTERM, {}, "epoch 2/"),
], ids=["SIGKILL", "SIGTERM"])
def test_killed_training_job_resumes_from_its_checkpoint(tmp_path, sig, cadence, wait_for):
    """Kill the training job mid-slab; the rerun resumes from the checkpoint (its log
    says from which step) and ends exactly where an uninterrupted run ends."""
    import psutil

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    for d in (killed, whole):
        d.mkdir()
        write_config(d, {**RESUME, "checkpoint": cadence})
    proc = _start(killed, SLAB)
    _wait_for(killed, proc, wait_for)
    jobs = [p for p in psutil.Process(proc.pid).children(recursive=True)
            if "train_slab" in " ".join(p.cmdline())]
    assert jobs, "the training job's process was not found"
    for job in jobs:
        job.send_signal(sig)
    assert proc.wait(timeout=120) != 0
    slab = killed / "results/runs/digits/sgdm/ln"
    assert not (slab / "slab.json").exists()
    assert list((killed / "results/checkpoints").rglob("*.pt"))
    log = killed / "results/logs/train/digits/sgdm/ln.log"
    if sig == signal.SIGTERM:
        assert "SIGTERM at step" in log.read_text()
    rerun = snakemake(killed, SLAB)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = re.search(r"resumed from checkpoint \S+ at step (\d+)", log.read_text())
    assert resumed and int(resumed.group(1)) > 0
    assert snakemake(whole, SLAB).returncode == 0
    _assert_same_slab(slab, whole / "results/runs/digits/sgdm/ln")


def test_killed_controller_needs_unlock_then_completes(tmp_path):
    """kill -9 of the whole snakemake process group mid-run: the next run refuses until
    `--unlock`, then completes, and the audit passes."""
    write_config(tmp_path, {**RESUME, "checkpoint": {"every_steps": 1}})
    proc = _start(tmp_path, SLAB)
    _wait_for(tmp_path, proc, "checkpoint at step")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    slab = tmp_path / "results/runs/digits/sgdm/ln"
    assert not list(slab.glob("*/MANIFEST.sha256")), "a killed slab left complete-looking runs"
    locked = snakemake(tmp_path, SLAB)  # a dry run takes no lock, a real one does
    assert locked.returncode != 0 and "unlock" in (locked.stdout + locked.stderr)
    assert snakemake(tmp_path, "--unlock").returncode == 0
    done = snakemake(tmp_path, SLAB)
    assert done.returncode == 0, done.stderr[-3000:]
    # the runs only: the claims (checked by the end-to-end tests) were not asked for
    audit = subprocess.run([sys.executable, "-m", "wdnorm.cli", "audit", "results",
                            "--config", "config.yaml", "--replay", "1", "--skip", "claims"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-2000:]
