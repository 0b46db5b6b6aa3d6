"""Thin adapter: snakemake object -> wdnorm.probes.symmetry_tables (claim C1)."""
import torch

from wdnorm import data, fileio
from wdnorm.logs import setup_logging
from wdnorm.probes.symmetry_tables import symmetry_tables

setup_logging(snakemake.log[0])
torch.set_num_threads(1)
prepared = data.load_prepared(snakemake.input.data)
symmetry, floors = symmetry_tables(
    snakemake.params.architectures, snakemake.params.model, prepared.x_train,
    dataset=snakemake.wildcards.dataset, n_classes=prepared.meta["n_classes"])
fileio.write_csv(snakemake.output.symmetry, symmetry)
fileio.write_csv(snakemake.output.epsilon_floor, floors)
