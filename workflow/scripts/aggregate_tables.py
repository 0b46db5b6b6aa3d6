"""Thin adapter: concatenate the per-slab / per-dataset tables into results/tables/*.csv."""
from wdnorm import fileio
from wdnorm.logs import setup_logging
from wdnorm.frames import aggregate

setup_logging(snakemake.log[0])
for name in snakemake.output.keys():
    fileio.write_csv(snakemake.output[name], aggregate(snakemake.input[name]))
