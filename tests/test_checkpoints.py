"""Checkpoints hold tensors and plain containers only, carry their own checksum, and a
checkpoint that cannot be read, verified or restored is set aside: the slab then trains
from step 0, on this run and on every retry, and nothing in the file is ever executed."""

from __future__ import annotations

import hashlib
import io
import pickle

import numpy as np
import pytest
import torch

from wdnorm.engine import Checkpointing, Member, OptimiserConfig, SlabConfig, train_slab
from wdnorm.engine import state as slab_state

torch.set_num_threads(1)
CFG = SlabConfig(arch="ln", d_in=6, width=8, depth=1, n_classes=3, epochs=4, batch_size=16,
                 eval_every=2, optimiser=OptimiserConfig("sgd", momentum=0.9))
MEMBERS = [Member(0.05, wd, s) for s in (0, 1) for wd in (0.0, 0.01)]


def _data():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)
    return x, y, x[:16], y[:16]


def _with_header(path, body: bytes) -> None:
    """``body`` behind a valid checksum header: only weights_only stands in the way."""
    digest = hashlib.sha256(body).hexdigest().encode()
    path.write_bytes(slab_state.MAGIC + b" sha256 " + digest + b"\n" + body)


def _train(path, max_steps=None, code="code-a"):
    ckpt = Checkpointing(path, every_steps=1, every_seconds=1e9, code=code)
    return train_slab(CFG, MEMBERS, *_data(), checkpoint=ckpt, max_steps=max_steps)


@pytest.fixture
def checkpoint(tmp_path):
    """A genuine checkpoint of the slab, stopped at step 8 of its 16 (saved at the last
    epoch end before: step 4)."""
    path = tmp_path / "ln.pt"
    _train(path, max_steps=8)
    assert path.exists()
    return path


class _Marker:
    def __reduce__(self):  # what a malicious pickle does when it is loaded
        return (open, (MARKER_PATH[0], "w"))


MARKER_PATH: list = []


def test_a_malicious_pickle_runs_nothing(tmp_path):
    path, marker = tmp_path / "ln.pt", tmp_path / "ran"
    MARKER_PATH[:] = [str(marker)]
    blob = pickle.dumps({"format": slab_state.FORMAT, "payload": _Marker()})
    path.write_bytes(blob)                                         # no checksum header
    result = _train(path)
    assert not marker.exists() and result.resumed_from is None
    # with a valid header over the pickle, weights_only refuses it all the same
    _with_header(path, pickle.dumps(_Marker()))
    result = _train(path)
    assert not marker.exists() and result.resumed_from is None
    assert list(tmp_path.glob("ln.pt.unusable-*"))                 # set aside, kept


def test_a_flipped_float_is_caught_by_the_checksum(checkpoint):
    blob = bytearray(checkpoint.read_bytes())
    blob[-200] ^= 0x40
    checkpoint.write_bytes(bytes(blob))
    result = _train(checkpoint)
    assert result.resumed_from is None                              # trained from step 0
    clean = train_slab(CFG, MEMBERS, *_data())
    np.testing.assert_array_equal(result.trace["loss"], clean.trace["loss"])
    assert list(checkpoint.parent.glob("ln.pt.unusable-*"))


def test_a_garbage_rng_state_never_blocks_a_rerun(checkpoint):
    payload = slab_state.read(checkpoint)
    payload["gens"] = [torch.zeros(5, dtype=torch.uint8) for _ in payload["gens"]]
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    _with_header(checkpoint, buffer.getvalue())
    result = _train(checkpoint)                                    # no crash: from step 0
    assert result.resumed_from is None and result.trace["loss"].shape[0] == 16
    assert list(checkpoint.parent.glob("ln.pt.unusable-*"))


def test_a_genuine_checkpoint_resumes_to_the_same_numbers(checkpoint):
    resumed = _train(checkpoint)
    assert resumed.resumed_from == 4
    clean = train_slab(CFG, MEMBERS, *_data())
    np.testing.assert_array_equal(resumed.trace["loss"], clean.trace["loss"])


def test_a_checkpoint_of_other_training_code_is_not_resumed(checkpoint):
    assert _train(checkpoint, code="code-b").resumed_from is None
