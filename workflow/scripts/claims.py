"""Thin adapter: tables -> wdnorm.claims.decide_all -> results/claims.json, CLAIMS.md."""
from wdnorm import claims, tasks

tasks.setup_logging(snakemake.log[0])
tables = claims.load_tables({name: snakemake.input[name] for name in snakemake.input.keys()})
verdicts = claims.decide_all(tables, snakemake.params.settings)
claims.write_claims(verdicts, snakemake.output.json, snakemake.output.markdown)
