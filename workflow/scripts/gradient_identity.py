"""Thin adapter: snakemake object -> wdnorm.evaluation.gradient_identity_table (C3)."""
import torch

from wdnorm import data, evaluation, fileio, tasks

tasks.setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
probe = snakemake.params.probe
table = evaluation.gradient_identity_table(
    snakemake.params.architectures, snakemake.params.model, snakemake.params.batch_size,
    probe.get("steps", 300), probe.get("lr", 0.05), data.load_prepared(snakemake.input.data),
    dataset=snakemake.wildcards.dataset)
fileio.write_csv(snakemake.output.table, table)
