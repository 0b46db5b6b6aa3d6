"""Thin adapter: snakemake object -> wdnorm.tasks.train_and_write (grid or mimic slab)."""
from pathlib import Path

from wdnorm import tasks
from wdnorm.engine import Member

tasks.setup_logging(snakemake.log[0])
references = snakemake.input.get("references")
tasks.train_and_write(
    prepared_path=snakemake.input.data, dataset=snakemake.wildcards.dataset,
    arch=snakemake.wildcards.arch, optimiser_name=snakemake.params.optimiser,
    settings=snakemake.params.settings,
    members=[Member(**m) for m in snakemake.params.members], results_root="results",
    kind=snakemake.params.kind, device_request=snakemake.config["device"],
    lock_dir=Path(".snakemake/gpu-locks"), threads=snakemake.threads,
    reference_dirs=[Path(p).parent for p in references] if references else None)
