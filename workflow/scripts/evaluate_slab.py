"""Thin adapter: snakemake object -> wdnorm.evaluation.slab_tables (runs, dynamics,
penalty, penalty_curve of one dataset x optimiser x architecture slab)."""
import torch

from wdnorm import data, evaluation, fileio, tasks

tasks.setup_logging(snakemake.log[0])
torch.set_num_threads(1)
tables = evaluation.slab_tables(
    snakemake.input.runs, snakemake.input.mimic, data.load_prepared(snakemake.input.data),
    matched_pairs=snakemake.params.matched_pairs,
    mimic_weight_decay=snakemake.params.mimic_weight_decay)
for name, frame in tables.items():
    fileio.write_csv(snakemake.output[name], frame)
