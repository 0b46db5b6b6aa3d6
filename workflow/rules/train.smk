# One job per dataset x optimiser x architecture "slab": every run kind -- the weight
# decay grid, the matched pairs, the LR-schedule equivalents and the mimic, for every
# seed -- trained together as one batched model. Its one declared output is the slab's
# slab.json, written after every run directory: profiles name this rule once, and a
# new optimiser needs no new rule.


rule train_slab:
    input:
        data=LAYOUT.prepared("{dataset}"),
    output:
        slab=LAYOUT.slab_manifest("{dataset}", "{optimiser}", "{arch}"),
    params:
        members=lambda wc: [vars(m) for m in grid.slab_members(CONFIG, wc.optimiser, wc.arch)],
        settings=lambda wc: provenance.training_values(CONFIG, wc.optimiser),
        device=CONFIG["device"],
        compile=CONFIG["compile"],
        checkpoint=CONFIG["checkpoint"],
        code=script_code("train_slab.py"),
    threads: CONFIG["threads"]
    conda:
        CONDA_ENV
    resources:
        gpu=GPU_PER_TRAINING_JOB,
        # SLURM: the profile's runtime grows with the attempt, so a job that hit its
        # time limit comes back (retries) with more time and resumes its checkpoint
    log:
        LOGS / "train/{dataset}/{optimiser}/{arch}.log",
    script:
        "../scripts/train_slab.py"


# Claim C7a: the exact LR-schedule equivalent against its weight-decay run, float64,
# for every architecture (a check that can fail: it must on the non-invariant ones).
rule equivalence_probe:
    input:
        data=LAYOUT.prepared("{dataset}"),
    output:
        table=LAYOUT.table("{dataset}/equivalence_probe"),
    params:
        architectures=ARCHS,
        # per optimiser, the settings its runs train with (the probe trains like them)
        settings={name: provenance.training_values(CONFIG, name) for name in OPTIMISERS},
        weight_decay=CONFIG["claims"]["weight_decay"],
        probe=CONFIG["equivalence_probe"],
        code=script_code("equivalence_probe.py"),
    threads: CONFIG["threads"]
    conda:
        CONDA_ENV
    log:
        LOGS / "equivalence_probe/{dataset}.log",
    script:
        "../scripts/equivalence_probe.py"
