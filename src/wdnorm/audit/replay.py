"""Replay: K randomly chosen runs (seeded; the seed is reported) are re-trained here for a
prefix of their steps, from their recorded slab config and member, on the prepared
dataset whose sha256 must equal the recorded one. The replay runs under the run's own
schedules, which span its whole length (its slab's epochs on this data must give the
steps it recorded; ``train_slab``'s ``max_steps`` only stops it early), so the prefix
it trains is the run's own: its per-step loss, and the learning rates and k_t it
recorded, must match ``trace.npz`` within ``rtol``/``atol``. A run replays inside its
whole slab (every member of its ``slab.json``) and with the compiled step where its slab
was compiled, so on the machine that made it the prefix is bit-identical even for a
chaotic run; every run kind replays (a mimic beside its reference)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import tree
from .common import RunRef, has_manifest, prepared_file, read_json
from .report import Check

DEFAULT_REPLAY_STEPS = 50
# Replays are bit-identical on the same CPU; 1e-3 leaves room for another CPU, the last
# float32 bit of slab vs single-member batching, and GPU-made runs (TF32 off).
DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-6


def check_replay(listing: tree.Listing, refs: list[RunRef], data_dir: Path, k: int,
                 seed: int, steps: int = DEFAULT_REPLAY_STEPS, rtol: float = DEFAULT_RTOL,
                 atol: float = DEFAULT_ATOL, device: str = "cpu",
                 log: Callable[[str], None] | None = None) -> Check:
    check = Check("replay")
    check.details = {"seed": seed, "requested": k, "steps": steps, "rtol": rtol,
                     "atol": atol, "device": device, "runs": []}
    if k <= 0:
        return check.skip("no runs replayed (use --replay K)")
    candidates = [r for r in refs if has_manifest(listing, r)]
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
        entry = replay_one(listing.root, ref, _dataset(data_dir, ref.dataset, datasets),
                           steps, rtol, atol, device)
        check.details["runs"].append(entry)
        n_ok += entry["ok"]
        if not entry["ok"]:
            check.problems.append(f"{ref.rel}: {entry['problem']}")
    return check.finish(f"{n_ok} of {len(picks)} runs replayed within rtol {rtol:g} over "
                        f"their first {steps} steps (seed {seed})")


def _dataset(data_dir: Path, dataset: str, cache: dict) -> tuple[Any, str | None, str]:
    """``(prepared, sha256, path)`` of a prepared dataset; prepared is None (and the path
    says why) when it is absent, a link (refused) or unreadable."""
    if dataset not in cache:
        from .. import data
        path, unreadable = prepared_file(data_dir, dataset)
        if unreadable is not None:
            cache[dataset] = (None, None, f"{path}: " + (
                "no prepared dataset there" if unreadable == "missing" else unreadable))
            return cache[dataset]
        sha = tree.sha256(data_dir, path)
        try:
            cache[dataset] = (data.load_prepared(path), sha, str(path))
        except Exception as error:  # noqa: BLE001 -- an unreadable dataset is a finding
            cache[dataset] = (None, sha, f"{path} is unreadable ({type(error).__name__}: "
                                         f"{error})")
    return cache[dataset]


def replay_one(root: Path, ref: RunRef, dataset: tuple, steps: int, rtol: float,
               atol: float, device: str) -> dict:
    """Re-train one run's first ``steps`` steps; ``entry["ok"]`` when its loss and
    schedules match."""
    entry: dict[str, Any] = {"run": ref.rel, "ok": False, "problem": None}
    metrics, prov, recorded, error = _read_run(root, ref)
    if error:
        entry["problem"] = f"cannot read the run ({error})"
        return entry
    prepared, sha, where = dataset
    entry["dataset_sha256"] = sha
    entry["problem"] = _data_problem(prepared, sha, where, prov.get("dataset_sha256"))
    if entry["problem"]:
        return entry
    try:
        cfg, member = _run_spec(metrics)
        entry["problem"] = _length_problem(cfg, metrics, recorded, len(prepared.x_train))
        if entry["problem"]:
            return entry
        n = min(steps, len(recorded["loss"]))
        members = _slab_members(root, ref)
        if member not in members:
            raise ValueError(f"{ref.rel} is not a member of its slab.json")
        replayed = _retrain(cfg, members, members.index(member), prepared, n, device,
                            bool(metrics.get("compiled")))
    except Exception as failure:  # noqa: BLE001 -- any failure to retrain is a finding
        entry["problem"] = f"replay failed ({type(failure).__name__}: {failure})"
        return entry
    # a schedule that differs explains a loss that differs: it is the problem named
    _compare(entry, np.asarray(replayed["loss"], dtype=np.float64),
             np.asarray(recorded["loss"][:n], dtype=np.float64), rtol, atol)
    schedule = _schedule_problem(replayed, recorded, n, rtol, atol)
    if schedule:
        entry.update(ok=False, problem=schedule)
    return entry


def _read_run(root: Path, ref: RunRef) -> tuple[dict, dict, dict, str | None]:
    """``(metrics, provenance, trace arrays, None)`` or why they cannot be read (never
    through a link)."""
    run_dir = ref.path(root)
    metrics, error = read_json(root, run_dir / "metrics.json")
    prov, prov_error = read_json(root, run_dir / "provenance.json")
    trace: dict = {}
    try:
        with tree.open_file(root, run_dir / "trace.npz") as handle, np.load(handle) as npz:
            trace = {key: np.asarray(npz[key]) for key in npz.files}
        if "loss" not in trace:
            raise KeyError("no loss")
    except (OSError, ValueError, KeyError) as trace_error:
        error = error or f"trace.npz: {type(trace_error).__name__}: {trace_error}"
    if error or prov_error or not isinstance(metrics, dict) or not isinstance(prov, dict):
        return {}, {}, {}, error or prov_error or "not JSON objects"
    return metrics, prov, trace, None


def _data_problem(prepared, sha: str | None, where: str, recorded_sha) -> str | None:
    if sha is None:
        return f"cannot replay: {where}"
    if not recorded_sha:
        return (f"cannot replay: provenance.json records no dataset_sha256, so {where} "
                "cannot be shown to be its data")
    if recorded_sha != sha:
        return (f"cannot replay: {where} has sha256 {sha[:12]}, the run was trained on "
                f"{str(recorded_sha)[:12]}")
    return None if prepared is not None else f"cannot replay: {where}"


def _run_spec(metrics: dict):
    """The run's slab settings and member as it recorded them (every recorded member
    field the engine's Member has: it may gain some)."""
    from dataclasses import fields

    from ..engine import Member, SlabConfig

    cfg = SlabConfig.from_dict(metrics["slab"])
    known = {f.name for f in fields(Member)}
    member = Member(**{key: metrics[key] for key in known if key in metrics})
    return cfg, member


def _length_problem(cfg, metrics: dict, recorded: dict, n_train: int) -> str | None:
    """The schedules replay builds span epochs × (n_train // batch_size) steps of this
    data: they are the run's own only when that is the length it recorded."""
    run_steps = cfg.epochs * (n_train // cfg.batch_size)
    lengths = {"metrics steps": metrics.get("steps"), "trace.npz": len(recorded["loss"])}
    wrong = {k: v for k, v in lengths.items() if v != run_steps}
    if not wrong:
        return None
    return (f"cannot replay: its slab settings give {cfg.epochs} × ({n_train} // "
            f"{cfg.batch_size}) = {run_steps} steps on this data, but "
            + ", ".join(f"{k} has {v}" for k, v in wrong.items())
            + ": its schedules cannot be rebuilt")


def _slab_members(root: Path, ref: RunRef) -> list:
    """Every member of the run's slab, in its training order (slab.json), each from its
    own metrics.json (read without following links)."""
    slab_dir = ref.path(root).parent
    slab, error = read_json(root, slab_dir / "slab.json")
    if error or not isinstance(slab, dict):
        raise ValueError(f"slab.json: {error or 'not a JSON object'}")
    members = []
    for run in slab.get("members") or []:
        metrics, error = read_json(root, slab_dir / str(run) / "metrics.json")
        if error or not isinstance(metrics, dict):
            raise ValueError(f"{run}/metrics.json: {error or 'not a JSON object'}")
        members.append(_run_spec(metrics)[1])
    return members


def _retrain(cfg, members: list, index: int, prepared, n: int, device: str,
             compiled: bool) -> dict[str, np.ndarray]:
    """Member ``index``'s per-step trace over its first ``n`` steps, trained as its slab
    did: beside every member of its slab (a mimic follows its reference's norms) and
    with the compiled step where the slab's was, under the schedules of the whole run.
    Both matter on the same machine: a compiled step rounds differently from the eager
    one, and one compiled for another member count differently again, in the last bit,
    which a chaotic run (a high learning rate, a diverging one) amplifies beyond rtol
    within 50 steps; trained as its slab was, the prefix is bit-identical."""
    from ..engine import train_slab
    from ..engine.step import compiler_available

    mode = "on" if compiled and (str(device) != "cpu" or compiler_available()) else "off"
    result = train_slab(cfg, members, prepared.x_train, prepared.y_train, prepared.x_test,
                        prepared.y_test, device=device, max_steps=n, compile=mode)
    return result.member_trace(index)


def _schedule_problem(replayed: dict, recorded: dict, n: int, rtol: float,
                      atol: float) -> str | None:
    """Where the per-layer learning rates (and an equivalent's k_t) the replay trained
    with differ from the recorded ones over the prefix."""
    for key, length in (("lr", n), ("k", n + 1)):
        if key not in replayed or key not in recorded:
            continue
        got = np.asarray(replayed[key][:length], dtype=np.float64)
        want = np.asarray(recorded[key][:length], dtype=np.float64)
        if got.shape != want.shape:
            return f"replayed {key} has shape {got.shape}, trace.npz {want.shape}"
        close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
        if not close.all():
            where = tuple(np.argwhere(~close)[0])
            layer = f" (layer {where[1]})" if len(where) > 1 else ""
            return (f"{key} differs from trace.npz at step {where[0]}{layer}: replayed "
                    f"{got[where]:.7g}, recorded {want[where]:.7g} (the schedule its "
                    "settings give is not the one it recorded)")
    return None


def _compare(entry: dict, replayed: np.ndarray, want: np.ndarray, rtol: float,
             atol: float) -> dict:
    entry["steps"] = int(want.shape[0])
    if replayed.shape != want.shape:
        entry["problem"] = f"replayed {replayed.shape[0]} steps, recorded {want.shape[0]}"
        return entry
    close = np.isclose(replayed, want, rtol=rtol, atol=atol, equal_nan=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_err = np.abs(replayed - want)
        rel_err = abs_err / np.abs(want)
    entry["max_abs_err"] = _finite_max(abs_err)
    entry["max_rel_err"] = _finite_max(rel_err)
    if close.all():
        entry["ok"] = True
        return entry
    first = int(np.argmin(close))
    entry["first_mismatch_step"] = first
    entry["problem"] = (f"loss differs from trace.npz at step {first}: replayed "
                        f"{replayed[first]:.7g}, recorded {want[first]:.7g} "
                        f"(max relative error {entry['max_rel_err']:.2e} over "
                        f"{entry['steps']} steps, rtol {rtol:g})")
    return entry


def _finite_max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 0.0
