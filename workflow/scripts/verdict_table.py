"""Thin adapter: results/claims.json -> the report's verdict table (reStructuredText)."""
from wdnorm.figures import report
from wdnorm.logs import setup_logging

setup_logging(snakemake.log[0])
report.write_verdicts(snakemake.input.claims, snakemake.output[0])
