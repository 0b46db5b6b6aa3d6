"""Thin adapter: tables -> wdnorm.claims.decide_all -> results/claims.json, CLAIMS.md."""
from wdnorm import claims
from wdnorm.logs import setup_logging

setup_logging(snakemake.log[0])
tables = claims.load_tables({name: snakemake.input[name] for name in snakemake.input.keys()})
result = claims.decide_all(tables, snakemake.params.settings, workers=snakemake.threads)
claims.write_claims(result, snakemake.output.json, snakemake.output.markdown,
                    snakemake.output.effects)
