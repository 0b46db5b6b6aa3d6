"""Thin adapter: concatenate the per-slab / per-dataset tables into results/tables/*.csv."""
from wdnorm import evaluation, fileio, tasks

tasks.setup_logging(snakemake.log[0])
for name in snakemake.output.keys():
    fileio.write_csv(snakemake.output[name], evaluation.aggregate(snakemake.input[name]))
