# One job per dataset x optimiser x architecture "slab": every weight decay x seed of the
# grid trained together as one batched model, one run directory per member. The rules are
# made per optimiser because each optimiser's learning rate names its runs.


TRAIN_SCRIPT = "../scripts/train_slab.py"
RUN_NAMES = ("metrics.json", "trace.npz", "model.pt", "provenance.json", "MANIFEST.sha256")
# Content hash of the code a trained run depends on: a param, so editing the engine
# marks training stale through snakemake's params trigger (its code trigger only sees
# the script file itself).
TRAINING_CODE = source_hash(TRAINING_MODULES)

for _opt in OPTIMISERS:

    rule:
        name:
            f"train_slab_{_opt}"
        input:
            data=LAYOUT.prepared("{dataset}"),
        output:
            run_files("runs", "{dataset}", _opt, "{arch}", members(_opt), RUN_NAMES),
        params:
            optimiser=_opt,
            kind="runs",
            members=[vars(m) for m in members(_opt)],
            settings=training_values(_opt),
            code=TRAINING_CODE,
        threads: config["threads"]
        conda:
            CONDA_ENV
        resources:
            gpu=GPU_PER_TRAINING_JOB,
        log:
            LOGS / f"train/{{dataset}}/{_opt}/{{arch}}.log",
        script:
            TRAIN_SCRIPT

    rule:
        name:
            f"train_mimic_{_opt}"
        input:
            data=LAYOUT.prepared("{dataset}"),
            references=run_files("runs", "{dataset}", _opt, "{arch}", mimic_references(_opt),
                                 ("trace.npz",)),
        output:
            run_files("mimic", "{dataset}", _opt, "{arch}", mimic_members(_opt), RUN_NAMES),
        params:
            optimiser=_opt,
            kind="mimic",
            members=[vars(m) for m in mimic_members(_opt)],
            settings=training_values(_opt),
            code=TRAINING_CODE,
        threads: config["threads"]
        conda:
            CONDA_ENV
        resources:
            gpu=GPU_PER_TRAINING_JOB,
        log:
            LOGS / f"mimic/{{dataset}}/{_opt}/{{arch}}.log",
        script:
            TRAIN_SCRIPT
