"""Thin adapter: snakemake object -> wdnorm.tasks.train_and_write (one whole slab)."""
import os
import tempfile
from pathlib import Path

from wdnorm import tasks
from wdnorm.engine import Member

tasks.setup_logging(snakemake.log[0])
tasks.train_and_write(
    prepared_path=snakemake.input.data, dataset=snakemake.wildcards.dataset,
    arch=snakemake.wildcards.arch, optimiser_name=snakemake.wildcards.optimiser,
    settings=snakemake.params.settings,
    members=[Member(**m) for m in snakemake.params.members], results_root="results",
    device_request=snakemake.params.device,
    # GPU lock files must be local to the machine: on a shared file system two nodes'
    # "cuda:0" would wait for each other
    lock_dir=Path(tempfile.gettempdir()) / f"wdnorm-gpu-locks-{os.getuid()}",
    threads=snakemake.threads, compile_mode=snakemake.params.compile,
    checkpoint=snakemake.params.checkpoint, cache_dir=Path(".cache") / "torchinductor")
