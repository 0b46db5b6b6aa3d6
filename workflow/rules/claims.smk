# Verdicts C1-C8 and the answer to the article's question, computed from the tidy tables
# (never hard-coded). The inputs are exactly the tables the registered claims read.

from wdnorm import claims as claims_pkg  # noqa: E402


localrules:
    claims,


rule claims:
    input:
        **{name: LAYOUT.table(name) for name in claims_pkg.TABLE_NAMES},
    output:
        json=LAYOUT.claims,
        markdown=report(LAYOUT.claims_markdown, category="Verdicts"),
    params:
        settings=claims_pkg.settings_from_config(CONFIG),
        code=script_code("claims.py"),
    conda:
        CONDA_ENV
    log:
        LOGS / "claims.log",
    script:
        "../scripts/claims.py"
