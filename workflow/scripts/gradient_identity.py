"""Thin adapter: snakemake object -> wdnorm.probes.gradient_identity (claim C3)."""
import torch

from wdnorm import data, fileio
from wdnorm.logs import setup_logging
from wdnorm.probes.gradient_identity import gradient_identity_table

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
probe = snakemake.params.probe
table = gradient_identity_table(
    snakemake.params.architectures, snakemake.params.model, snakemake.params.batch_size,
    probe["steps"], probe["lr"], data.load_prepared(snakemake.input.data),
    dataset=snakemake.wildcards.dataset)
fileio.write_csv(snakemake.output.table, table)
