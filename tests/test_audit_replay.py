"""Replay under a cosine-tail schedule: a prefix replayed past the decay's start is the
run's own prefix only when the schedules span the whole run (train_slab's max_steps
stops early, it does not shorten them). One tiny slab of random data, every run kind."""

import dataclasses
import shutil

import numpy as np
import pytest
import torch

from wdnorm import audit, data, fileio, runs
from wdnorm.engine import Member, OptimiserConfig, SlabConfig, train_slab
from wdnorm.engine.schedules import decay_start
from wdnorm.layout import Layout

torch.set_num_threads(1)

OPT = "sgdm"
KINDS = (("grid", 0.0), ("grid", 0.01), ("exact", 0.01), ("schedule", 0.01),
         ("mimic", 0.01))
# 256 samples of 32: 8 steps an epoch, 32 steps; the decay starts at step 22
CFG = SlabConfig(arch="ln", d_in=8, width=8, depth=1, n_classes=4, epochs=4, batch_size=32,
                 eval_every=2, optimiser=OptimiserConfig("sgd", momentum=0.9))
DECAY_FRACTION = 0.3
RUN_STEPS = 32
PAST_DECAY = 26  # a replayed prefix that reaches into the decay
MEMBERS = [Member(0.05, wd, 0, kind, "cosine", DECAY_FRACTION) for kind, wd in KINDS]


def _prepared(seed: int = 0) -> data.Prepared:
    g = torch.Generator().manual_seed(seed)
    x_train, x_test = torch.randn(256, 8, generator=g), torch.randn(64, 8, generator=g)
    y_train, y_test = (torch.randint(0, 4, (n,), generator=g) for n in (256, 64))
    return data.Prepared(x_train, y_train, x_test, y_test, meta={"d_in": 8, "n_classes": 4})


def _save_npz(path, arrays: dict) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


@pytest.fixture(scope="module")
def cosine_runs(tmp_path_factory):
    """The slab trained to its end, written as the pipeline writes its traces."""
    root = tmp_path_factory.mktemp("cosine")
    prepared = _prepared()
    where = Layout(data=root / "data")
    data.save_prepared(prepared, where.prepared("digits"), where.prepared_meta("digits"))
    result = train_slab(CFG, MEMBERS, prepared.x_train, prepared.y_train, prepared.x_test,
                        prepared.y_test)
    sha = fileio.sha256_file(where.prepared("digits"))
    run_dirs = []
    for i, member in enumerate(MEMBERS):
        run_dir = Layout(results=root / "results").run_dir("digits", OPT, "ln", member.run_id)
        trace = runs.member_trace(result, i)
        fileio.write_json(run_dir / "metrics.json", {
            **dataclasses.asdict(member), "run_id": member.run_id, "slab": CFG.to_dict(),
            "steps": len(trace["loss"])})
        fileio.atomic_write(run_dir / "trace.npz", lambda tmp: _save_npz(tmp, trace))
        fileio.write_json(run_dir / "provenance.json", {"dataset_sha256": sha})
        fileio.write_manifest(run_dir)
        run_dirs.append(run_dir)
    runs.write_slab_manifest(run_dirs[0].parent, dataset="digits", optimiser=OPT, arch="ln",
                             run_dirs=run_dirs)
    return root


def replay(root, steps=PAST_DECAY, k=len(MEMBERS), **kwargs):
    return audit.audit(root / "results", replay=k, replay_steps=steps, checks=("replay",),
                       seed=0, **kwargs).check("replay")


def _run_dir(root, run="lr0.05_wd0.01_s0_cos0.3_exact"):
    return Layout(results=root / "results").run_dir("digits", OPT, "ln", run)


def test_a_stopped_slab_is_the_prefix_of_the_full_run():
    """max_steps stops training; the LR's cosine tail and the equivalents' k_t still
    span the whole run."""
    assert decay_start(RUN_STEPS, DECAY_FRACTION) < PAST_DECAY < RUN_STEPS
    p = _prepared()
    args = (CFG, MEMBERS, p.x_train, p.y_train, p.x_test, p.y_test)
    full, stopped = train_slab(*args), train_slab(*args, max_steps=PAST_DECAY)
    for key in ("loss", "lr"):
        assert stopped.trace[key].shape[0] == PAST_DECAY
        np.testing.assert_array_equal(stopped.trace[key], full.trace[key][:PAST_DECAY])
    np.testing.assert_array_equal(stopped.trace["k"], full.trace["k"][:PAST_DECAY + 1])


def test_replay_past_the_decay_start_reproduces_every_kind(cosine_runs):
    check = replay(cosine_runs)
    assert check.status == audit.PASS, check.problems
    assert len(check.details["runs"]) == len(MEMBERS)
    assert all(r["steps"] == PAST_DECAY for r in check.details["runs"])
    assert replay(cosine_runs, steps=RUN_STEPS + 10).status == audit.PASS  # whole runs


def test_replay_refuses_settings_that_do_not_give_the_recorded_length(cosine_runs, tmp_path):
    """Its schedules are rebuilt from its settings on this data: another length means
    another schedule, so nothing is compared."""
    shutil.copytree(cosine_runs, tmp_path, dirs_exist_ok=True)
    run_dir = _run_dir(tmp_path)
    metrics = fileio.read_json(run_dir / "metrics.json")
    metrics["slab"]["epochs"] = 5
    fileio.write_json(run_dir / "metrics.json", metrics)
    problems = replay(tmp_path, k=len(MEMBERS)).problems
    assert problems == ["runs/digits/sgdm/ln/lr0.05_wd0.01_s0_cos0.3_exact: cannot replay: its "
                        "slab settings give 5 × (256 // 32) = 40 steps on this data, but "
                        "metrics steps has 32, trace.npz has 32: its schedules cannot be "
                        "rebuilt"]


def test_a_recorded_schedule_other_than_the_settings_fails(cosine_runs, tmp_path):
    """A run whose recorded learning rates decay early was not trained as its settings
    say, though its loss may still agree for a while."""
    shutil.copytree(cosine_runs, tmp_path, dirs_exist_ok=True)
    run_dir = _run_dir(tmp_path, "lr0.05_wd0_s0_cos0.3")
    with np.load(run_dir / "trace.npz") as npz:
        trace = {k: npz[k].copy() for k in npz.files}
    trace["lr"][20:] *= 0.9
    fileio.atomic_write(run_dir / "trace.npz", lambda tmp: _save_npz(tmp, trace))
    problems = replay(tmp_path).problems
    assert len(problems) == 1
    assert problems[0].startswith("runs/digits/sgdm/ln/lr0.05_wd0_s0_cos0.3: lr differs from "
                                  "trace.npz at step 20 (layer 0)")
