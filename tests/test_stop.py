"""SIGTERM (SLURM's warning before its SIGKILL) or SIGINT makes a training slab save a
checkpoint at the next step boundary -- inside an epoch if need be -- and fail; the rerun
resumes from that step and ends with exactly the numbers of an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from wdnorm.engine import (Checkpointing, Member, OptimiserConfig, SlabConfig, StopRequest,
                           StopRequested, train_slab)
from wdnorm.engine import state as slab_state

torch.set_num_threads(1)
EPOCHS = 60  # of 40 steps each: the signal lands a few epochs in
MEMBERS = [Member(0.05, wd, s) for s in (0, 1) for wd in (0.0, 0.01)]


def _cfg(epochs):
    return SlabConfig(arch="bn", d_in=6, width=8, depth=1, n_classes=3, epochs=epochs,
                      batch_size=16, eval_every=2,
                      optimiser=OptimiserConfig("sgd", momentum=0.9))


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    return x, y, x[:16], y[:16]


class _StopAtCheck(StopRequest):
    """Set from its ``n``-th reading on: the trainer reads it once after every step and
    once after every epoch, so with 4 steps an epoch ``n = 6`` stops after step 5 --
    one step into the second epoch."""

    def __init__(self, n):
        super().__init__()
        self.n, self.reads = n, 0

    def __bool__(self):
        self.reads += 1
        if self.reads >= self.n:
            self.reason = "test stop"
        return super().__bool__()


def _checkpointing(path):
    return Checkpointing(path, every_steps=10**9, every_seconds=1e9, code="c")


def test_a_stop_inside_an_epoch_resumes_to_the_same_numbers(tmp_path):
    cfg, path = _cfg(epochs=4), tmp_path / "bn.pt"
    with pytest.raises(StopRequested, match="step 5 .epoch 1, 1 steps into it"):
        train_slab(cfg, MEMBERS, *_data(), checkpoint=_checkpointing(path),
                   stop=_StopAtCheck(6))
    assert slab_state.read(path)["epoch_pos"] == 1
    resumed = train_slab(cfg, MEMBERS, *_data(), checkpoint=_checkpointing(path))
    clean = train_slab(cfg, MEMBERS, *_data())
    assert resumed.resumed_from == 5
    np.testing.assert_array_equal(resumed.trace["loss"], clean.trace["loss"])
    np.testing.assert_array_equal(resumed.history["test_acc"], clean.history["test_acc"])
    for name, value in clean.state.items():
        torch.testing.assert_close(resumed.state[name], value, rtol=0, atol=0)


CHILD = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_stop import EPOCHS, MEMBERS, _cfg, _data, _checkpointing
from wdnorm.engine import on_signals, train_slab
from pathlib import Path
torch.set_num_threads(1)
with on_signals() as stop:
    train_slab(_cfg(epochs=EPOCHS), MEMBERS, *_data(640),
               checkpoint=_checkpointing(Path({path!r})), stop=stop,
               log=lambda line: print(line, flush=True))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_a_checkpoint_and_fails_within_seconds(tmp_path, sig):
    path = tmp_path / "bn.pt"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(tests=str(Path(__file__).parent), path=str(path))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(3):          # a few epochs in: then the signal, mid-run
        child.stdout.readline()
    child.send_signal(sig)
    sent = time.monotonic()
    output = child.communicate(timeout=60)[0]
    assert child.returncode != 0, output
    assert time.monotonic() - sent < 10
    assert f"{sig.name} at step" in output and "checkpoint saved" in output
    stopped_at = slab_state.read(path)["step"]
    assert 0 < stopped_at < EPOCHS * 40
    # the rerun resumes there and ends where an uninterrupted run ends
    cfg = _cfg(epochs=EPOCHS)
    resumed = train_slab(cfg, MEMBERS, *_data(640), checkpoint=_checkpointing(path))
    assert resumed.resumed_from == stopped_at
    clean = train_slab(cfg, MEMBERS, *_data(640))
    np.testing.assert_array_equal(resumed.trace["loss"], clean.trace["loss"])
