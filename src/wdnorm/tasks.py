"""One function per pipeline step: file paths and plain values in, files out.

The workflow's scripts translate the snakemake object into these calls; nothing here
knows about snakemake or config.yaml, so every step also runs from Python or the CLI.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from . import data, fileio, gpu, provenance, runs
from .engine import Member, OptimiserConfig, SlabConfig, train_slab
from .layout import Layout
from .logs import setup_logging  # noqa: F401  (the scripts' entry point)

log = logging.getLogger("wdnorm")


def prepare_dataset(*, dataset: str, raw_dir, pt_path, meta_path, n_train: int | None,
                    subset_seed: int, download: bool) -> None:
    prepared = data.prepare(dataset, raw_dir, n_train=n_train, subset_seed=subset_seed,
                            download=download)
    data.save_prepared(prepared, pt_path, meta_path)
    log.info("prepared %s: %d train / %d test, d_in=%d", dataset, prepared.meta["n_train"],
             prepared.meta["n_test"], prepared.meta["d_in"])


def slab_config(*, arch: str, meta: dict, model: dict, training: dict,
                optimiser: dict, decay_scope: str) -> SlabConfig:
    """A SlabConfig from config-shaped dicts (``optimiser`` without its lr)."""
    hyper = {k: v for k, v in optimiser.items() if k != "lr"}
    return SlabConfig(arch=arch, d_in=meta["d_in"], n_classes=meta["n_classes"],
                      width=model["width"], depth=model["depth"],
                      norm_eps=model.get("norm_eps", 1e-5),
                      optimiser=OptimiserConfig(**hyper), decay_scope=decay_scope,
                      epochs=training["epochs"], batch_size=training["batch_size"],
                      eval_every=training.get("eval_every", 1))


def train_and_write(*, prepared_path, dataset: str, arch: str, optimiser_name: str,
                    settings: dict, members: list[Member], results_root, kind: str = "runs",
                    device_request: str = "auto", lock_dir=".gpu-locks", threads: int = 1,
                    reference_dirs: list[Path] | None = None) -> list[Path]:
    """Train one slab and write one run directory per member. ``settings`` holds the
    config values training depends on (model, training, optimiser, decay_scope, ...);
    they are also the provenance's config values."""
    torch.set_num_threads(threads)
    prepared = data.load_prepared(prepared_path)
    cfg = slab_config(arch=arch, meta=prepared.meta, model=settings["model"],
                      training=settings["training"], optimiser=settings["optimiser"],
                      decay_scope=settings["decay_scope"])
    dataset_sha = fileio.sha256_file(prepared_path)
    reference = None
    if reference_dirs is not None:
        traces = [runs.read_trace(d)["sq_norm"] for d in reference_dirs]
        reference = np.stack(traces, axis=1)  # [T+1, M, L]
    layout = Layout(results=Path(results_root))
    started = time.perf_counter()
    with gpu.acquire_device(device_request, Path(lock_dir)) as (device, slot):
        log.info("slab %s/%s/%s (%s): %d members on %s (slot %s), %d threads",
                 dataset, optimiser_name, cfg.arch, kind, len(members), device, slot, threads)
        result = train_slab(cfg, members, prepared.x_train, prepared.y_train,
                            prepared.x_test, prepared.y_test, device=device,
                            reference_sq_norms=reference, log=log.info)
    wall = time.perf_counter() - started
    log.info("trained in %.1f s (%.1f s inside the training loop)", wall, result.train_seconds)
    code = provenance.code_version()
    written = []
    for i, member in enumerate(members):
        extra = {}
        if reference_dirs is not None:
            extra["mimic_reference"] = str(Path(reference_dirs[i]).relative_to(results_root))
        metrics = runs.member_metrics(result, i, dataset=dataset, optimiser=optimiser_name,
                                      kind=kind, extra=extra)
        prov = provenance.collect(
            config_values={**settings, "dataset": dataset,
                           "optimiser_name": optimiser_name, "slab": cfg.to_dict(),
                           "member": {"lr": member.lr, "weight_decay": member.weight_decay,
                                      "seed": member.seed}, "kind": kind},
            dataset_sha256=dataset_sha, device=str(device), threads=threads,
            seed=member.seed, wall_seconds=wall, code=code)
        run_dir = layout.run_dir(dataset, optimiser_name, cfg.arch, member.run_id, kind)
        written.append(runs.write_run(run_dir, metrics, runs.member_trace(result, i),
                                      result.state_dict(i), prov))
    return written

