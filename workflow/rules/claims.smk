# Verdicts C1-C6 computed from the tidy tables (never hard-coded).

localrules:
    claims,


rule claims:
    input:
        **{name: LAYOUT.table(name) for name in TABLES},
    output:
        json="results/claims.json",
        markdown="results/CLAIMS.md",
    params:
        settings={k: config[k] for k in ("optimisers", "matched_pairs", "mimic", "training")},
        code=source_hash(["claims", "archs"]),
    conda:
        CONDA_ENV
    log:
        LOGS / "claims.log",
    script:
        "../scripts/claims.py"
