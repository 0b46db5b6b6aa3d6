"""One function per pipeline step: file paths and plain values in, files out.

The workflow's scripts translate the snakemake object into these calls; nothing here
knows about snakemake or config.yaml, so every step also runs from Python or the CLI.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from . import data, fileio, gpu, provenance, runs
from .engine import (Checkpointing, Member, SlabConfig, on_signals, train_slab,
                     use_inductor_cache)
from .layout import Layout
from .logs import setup_logging  # noqa: F401  (the scripts' entry point)

log = logging.getLogger("wdnorm")


def train_and_write(*, prepared_path, dataset: str, arch: str, optimiser_name: str,
                    settings: dict, members: list[Member], results_root,
                    device_request: str = "auto", lock_dir=".gpu-locks", threads: int = 1,
                    compile_mode: str = "off", checkpoint: dict | None = None,
                    cache_dir=None) -> Path:
    """Train one slab, write one run directory per member, then the slab's ``slab.json``.
    ``settings``: the :func:`wdnorm.provenance.training_values` of the runs (also their
    provenance). ``checkpoint``: ``{"every_steps", "every_minutes"}`` or None. Returns
    the path of ``slab.json``."""
    torch.set_num_threads(threads)
    use_inductor_cache(cache_dir)
    prepared = data.load_prepared(prepared_path)
    cfg = SlabConfig.from_settings(arch, prepared.meta, settings)
    dataset_sha = fileio.sha256_file(prepared_path)
    layout = Layout(results=Path(results_root))
    ckpt = None
    if checkpoint is not None:
        ckpt = Checkpointing(layout.checkpoint(dataset, optimiser_name, arch),
                             every_steps=checkpoint["every_steps"],
                             every_seconds=60.0 * checkpoint["every_minutes"],
                             code=provenance.training_code_hash() or "")
    started = time.perf_counter()
    # SIGTERM/SIGINT: checkpoint at the next step and fail, so a rerun or retry resumes
    with on_signals() as stop, gpu.acquire_device(device_request, Path(lock_dir)) as (
            device, slot):
        log.info("slab %s/%s/%s: %d members (%s) on %s (slot %s), %d threads, compile %s",
                 dataset, optimiser_name, arch, len(members), _kind_counts(members), device,
                 slot, threads, compile_mode)
        result = train_slab(cfg, members, prepared.x_train, prepared.y_train,
                            prepared.x_test, prepared.y_test, device=device, log=log.info,
                            compile=compile_mode, checkpoint=ckpt, data_id=dataset_sha,
                            x_val=prepared.x_val, y_val=prepared.y_val,
                            label=f"{dataset}/{optimiser_name}/{arch}", stop=stop)
    wall = time.perf_counter() - started
    log.info("trained in %.1f s (%.1f s inside the training loop, of which evaluations "
             "%.1f s; step %s)", wall, result.train_seconds, result.eval_seconds,
             "compiled" if result.compiled else "eager")
    run_dirs = _write_runs(result, layout, settings, dataset=dataset,
                           n_train=len(prepared.x_train),
                           optimiser_name=optimiser_name, dataset_sha=dataset_sha,
                           device=str(device), threads=threads, wall=wall)
    manifest = runs.write_slab_manifest(layout.slab_dir(dataset, optimiser_name, arch),
                                        dataset=dataset, optimiser=optimiser_name, arch=arch,
                                        run_dirs=run_dirs)
    if ckpt is not None:
        ckpt.path.unlink(missing_ok=True)  # the slab is complete: nothing to resume
    return manifest


def _kind_counts(members: list[Member]) -> str:
    kinds = [m.kind for m in members]
    return ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))


def _write_runs(result, layout: Layout, settings: dict, *, dataset: str, optimiser_name: str,
                n_train: int, dataset_sha: str, device: str, threads: int,
                wall: float) -> list[Path]:
    training = settings["training"]
    code = provenance.code_version()
    written = []
    for i, member in enumerate(result.members):
        metrics = runs.member_metrics(result, i, dataset=dataset, optimiser=optimiser_name,
                                      grid_lr=float(settings["optimiser"]["lr"]),
                                      final_evals=training["final_evals"],
                                      collapse_ratio=training["collapse_ratio"],
                                      n_train=n_train)
        values = provenance.run_values(
            settings, dataset=dataset, slab=result.cfg.to_dict(),
            member=vars(member), kind=member.kind)
        prov = provenance.collect(config_values=values, dataset_sha256=dataset_sha,
                                  device=device, threads=threads, seed=member.seed,
                                  wall_seconds=wall, code=code)
        run_dir = layout.run_dir(dataset, optimiser_name, result.cfg.arch, member.run_id)
        written.append(runs.write_run(run_dir, metrics, runs.member_trace(result, i),
                                      result.state_dict(i), prov))
    return written
