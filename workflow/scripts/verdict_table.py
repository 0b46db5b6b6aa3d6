"""Thin adapter: results/claims.json and the run's configuration -> the report's front
page (reStructuredText), its verdict table and its configuration page (HTML)."""
from wdnorm.figures import report
from wdnorm.logs import setup_logging

setup_logging(snakemake.log[0])
report.write_pages(snakemake.input.claims, snakemake.config, snakemake.output.front,
                   snakemake.output.verdicts, snakemake.output.configuration)
