"""Thin adapter: snakemake object -> wdnorm.tasks.prepare_dataset."""
from wdnorm import tasks

tasks.setup_logging(snakemake.log[0])
tasks.prepare_dataset(dataset=snakemake.wildcards.dataset, raw_dir=snakemake.params.raw_dir,
                      pt_path=snakemake.output.pt, meta_path=snakemake.output.meta,
                      n_train=snakemake.params.n_train,
                      subset_seed=snakemake.params.subset_seed,
                      download=snakemake.params.download)
