"""GPU slot assignment (wdnorm.gpu): exclusive, bounded, and robust to SIGKILL.

GPUs are simulated (n_gpus=K), so these tests run on any machine; the slot
logic is the same with real devices.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import wdnorm.gpu as gpu
from wdnorm.gpu import acquire_device, gpu_count, lock_key

SRC = Path(__file__).resolve().parents[1] / "src"

# A job: say it is ready, wait for the common start signal, hold a slot briefly.
WORKER = r"""
import json, os, sys, time
from pathlib import Path
from wdnorm.gpu import acquire_device

lock_dir, k, go, ready, out, hold = sys.argv[1:7]
Path(ready).touch()
while not os.path.exists(go):
    time.sleep(0.005)
with acquire_device("auto", Path(lock_dir), n_gpus=int(k), timeout_s=30, poll_s=0.01) as got:
    dev, slot = got
    start = time.monotonic()
    time.sleep(float(hold))
    end = time.monotonic()
Path(out).write_text(json.dumps(
    {"device": dev, "slot": slot, "start": start, "end": end, "pid": os.getpid()}))
"""

# A job that holds slot 0 of 1 until it is killed.
HOLDER = r"""
import sys, time
from pathlib import Path
from wdnorm.gpu import acquire_device

with acquire_device("cuda", Path(sys.argv[1]), n_gpus=1, timeout_s=10) as (dev, slot):
    print(dev, flush=True)
    time.sleep(60)
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)  # lock files gpu{i}.lock, i logical
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(autouse=True)
def _no_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _max_concurrency(records: list[dict]) -> int:
    # A release at the same instant as an acquire counts as released first.
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records],
                    key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


@pytest.mark.parametrize("k", [1, 2, 4])
def test_concurrent_jobs_share_k_slots_exclusively(tmp_path: Path, k: int) -> None:
    n_jobs, hold = 2 * k, 0.3
    lock_dir, go = tmp_path / "locks", tmp_path / "go"
    procs = []
    for j in range(n_jobs):
        args = [str(lock_dir), str(k), str(go), str(tmp_path / f"ready{j}"),
                str(tmp_path / f"out{j}.json"), str(hold)]
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, *args], env=_env()))
    try:
        deadline = time.monotonic() + 15
        while not all((tmp_path / f"ready{j}").exists() for j in range(n_jobs)):
            assert time.monotonic() < deadline, "workers did not start within 15 s"
            assert all(p.poll() is None for p in procs), "a worker died before the start"
            time.sleep(0.01)
        go.touch()  # all 2K jobs now compete for the K slots at once
        codes = [p.wait(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0] * n_jobs

    records = [json.loads((tmp_path / f"out{j}.json").read_text()) for j in range(n_jobs)]
    for r in records:
        assert 0 <= r["slot"] < k
        assert r["device"] == f"cuda:{r['slot']}"
    for slot in range(k):
        spans = sorted((r["start"], r["end"]) for r in records if r["slot"] == slot)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, f"two jobs held slot {slot} at the same time: {spans}"
    peak = _max_concurrency(records)
    assert peak <= k
    if k >= 2:
        assert peak >= 2, "slots were never used concurrently"
    # Released slots are left empty (the holder note is only for live holders).
    assert sorted(p.name for p in lock_dir.iterdir()) == sorted(f"gpu{i}.lock" for i in range(k))
    assert all(p.read_text() == "" for p in lock_dir.iterdir())


def test_sigkilled_holder_frees_its_slot(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "cuda:0"
        note = (tmp_path / "gpu0.lock").read_text()
        assert f"pid={holder.pid} " in note and "host=" in note
        with pytest.raises(TimeoutError, match=f"pid={holder.pid}"):
            with acquire_device("cuda", tmp_path, n_gpus=1, timeout_s=0):
                pass
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=10) == -signal.SIGKILL
        # No cleanup, no waiting: the kernel dropped the dead holder's flock.
        with acquire_device("cuda", tmp_path, n_gpus=1, timeout_s=0) as (dev, slot):
            assert (dev, slot) == ("cuda:0", 0)
            assert f"pid={os.getpid()} " in (tmp_path / "gpu0.lock").read_text()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()


def test_slots_in_one_process_and_timeout(tmp_path: Path) -> None:
    with acquire_device("auto", tmp_path, n_gpus=2, timeout_s=0) as first:
        with acquire_device("auto", tmp_path, n_gpus=2, timeout_s=0) as second:
            assert {first, second} == {("cuda:0", 0), ("cuda:1", 1)}
            t0 = time.monotonic()
            with pytest.raises(TimeoutError, match="all 2 GPU slot"):
                with acquire_device("auto", tmp_path, n_gpus=2, timeout_s=0.3, poll_s=0.05):
                    pass
            assert 0.25 <= time.monotonic() - t0 < 5
        # slot 1 is free again, slot 0 still held
        with acquire_device("auto", tmp_path, n_gpus=2, timeout_s=0) as again:
            assert again == ("cuda:1", 1)


def test_waiter_gets_slot_when_released(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "cuda:0"
        killer = threading.Timer(0.4, holder.kill)
        t0 = time.monotonic()
        killer.start()
        with acquire_device("auto", tmp_path, n_gpus=1, timeout_s=10, poll_s=0.02) as got:
            waited = time.monotonic() - t0
            assert got == ("cuda:0", 0)
        assert 0.3 <= waited < 5
        killer.join()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        holder.stdout.close()


def test_lock_files_follow_cuda_visible_devices(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    with acquire_device("cuda", tmp_path, n_gpus=2, timeout_s=0) as a:
        with acquire_device("cuda", tmp_path, n_gpus=2, timeout_s=0) as b:
            assert (a, b) == (("cuda:0", 0), ("cuda:1", 1))
            assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu1.lock", "gpu3.lock"]
    assert lock_key(0, "GPU-8f2a/x,1") == "GPU-8f2a_x"
    assert lock_key(1, "GPU-8f2a/x,1") == "1"
    assert lock_key(2, "0,1") == "2"  # fewer entries than devices: ordinal
    assert lock_key(0, "") == "0"


def test_auto_without_gpu_is_cpu(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(gpu, "gpu_count", lambda: 0)
    with acquire_device("auto", tmp_path / "locks") as got:
        assert got == ("cpu", None)
    with acquire_device("auto", tmp_path / "locks", n_gpus=0) as got:
        assert got == ("cpu", None)
    with acquire_device("cpu", tmp_path / "locks", n_gpus=4) as got:
        assert got == ("cpu", None)
    assert not (tmp_path / "locks").exists()  # no GPU, no lock files


def test_auto_uses_gpu_count(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(gpu, "gpu_count", lambda: 1)
    with acquire_device("auto", tmp_path, timeout_s=0) as got:
        assert got == ("cuda:0", 0)


def test_cuda_without_gpu_is_an_error(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"'cuda'.*no CUDA device is visible"):
        with acquire_device("cuda", tmp_path, n_gpus=0):
            pass
    monkeypatch.setattr(gpu, "gpu_count", lambda: 0)
    with pytest.raises(ValueError, match="no CUDA device is visible"):
        with acquire_device("cuda", tmp_path):
            pass


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:0", "", "mps"])
def test_bad_request_lists_allowed_values(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match=r"'auto', 'cpu', 'cuda'"):
        with acquire_device(bad, tmp_path, n_gpus=1):
            pass


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_gpus"):
        with acquire_device("auto", tmp_path, n_gpus=-1):
            pass
    with pytest.raises(ValueError, match="poll_s"):
        with acquire_device("auto", tmp_path, n_gpus=1, poll_s=0):
            pass


def test_gpu_count_follows_torch_and_survives_a_broken_driver(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert gpu_count() == 3

    def broken():
        raise RuntimeError("driver too old")
    monkeypatch.setattr(torch.cuda, "device_count", broken)
    assert gpu_count() == 0
