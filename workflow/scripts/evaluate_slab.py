"""Thin adapter: snakemake object -> wdnorm.tables.slab.slab_tables (runs, dynamics,
penalty, penalty_curve of one dataset x optimiser x architecture slab)."""
import torch

from wdnorm import data, fileio
from wdnorm.logs import setup_logging
from wdnorm.tables.slab import slab_tables

setup_logging(snakemake.log[0])
torch.set_num_threads(1)
tables = slab_tables(snakemake.input.slab, data.load_prepared(snakemake.input.data),
                     matched_pairs=snakemake.params.matched_pairs,
                     curve_weight_decay=snakemake.params.curve_weight_decay)
for name, frame in tables.items():
    fileio.write_csv(snakemake.output[name], frame)
