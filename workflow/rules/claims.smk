# Verdicts C1-C9 with their stability under a re-draw of the seeds, the answer to the
# article's question and the effects table, computed from the tidy tables (never
# hard-coded). The inputs are exactly the tables the registered claims read.

from wdnorm import claims as claims_pkg  # noqa: E402


localrules:
    claims,


rule claims:
    input:
        **{name: LAYOUT.table(name) for name in claims_pkg.TABLE_NAMES},
    output:
        json=LAYOUT.claims,
        markdown=report(LAYOUT.claims_markdown, category="Verdicts"),
        effects=LAYOUT.table("effects"),
    params:
        settings=claims_pkg.settings_from_config(CONFIG),
        code=script_code("claims.py"),
    # the stability bootstrap re-decides every claim hundreds of times: one process
    # per core. Snakemake lowers this to --cores (or --local-cores under SLURM);
    # workflow.cores itself is undefined when only --jobs is given.
    threads: os.cpu_count() or 1
    conda:
        CONDA_ENV
    log:
        LOGS / "claims.log",
    script:
        "../scripts/claims.py"
