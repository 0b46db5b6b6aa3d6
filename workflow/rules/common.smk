# Validation and input functions shared by every rule file.

from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

from wdnorm.config import SCHEMA_PATH  # noqa: E402  (the package ships the schema)

validate(config, str(SCHEMA_PATH))

from wdnorm import gpu, grid  # noqa: E402  (after validation: the config is known good)
from wdnorm.layout import Layout  # noqa: E402
from wdnorm.provenance import TRAINING_MODULES, source_hash  # noqa: E402

try:
    grid.check_config(config)
except ValueError as error:
    raise WorkflowError(f"invalid config: {error}") from None

LAYOUT = Layout()
CONDA_ENV = "../../envs/wdnorm.yaml"

# GPUs: snakemake counts a `gpu` resource but neither knows how many GPUs a machine has
# nor tells a job which one it got. Training jobs ask for one GPU when they will get
# one (visible here, or on a cluster's nodes); locally, unless the user passed
# --resources gpu=N, the count visible here caps concurrent training jobs, and each
# job then takes a free GPU by lock file (wdnorm.gpu).
LOCAL_GPUS = gpu.gpu_count() if config["device"] != "cpu" else 0
if config["device"] == "cuda" and workflow.local_exec and LOCAL_GPUS == 0:
    raise WorkflowError("device: cuda, but no CUDA device is visible here; "
                        "use device: auto (GPU when present, else CPU) or device: cpu")
GPU_PER_TRAINING_JOB = int(config["device"] != "cpu"
                           and (LOCAL_GPUS > 0 or workflow.non_local_exec))
if GPU_PER_TRAINING_JOB and workflow.local_exec and "gpu" not in workflow.global_resources:
    workflow.register_resource("gpu", LOCAL_GPUS)
DATASETS = config["datasets"]
ARCHS = config["architectures"]
OPTIMISERS = list(config["optimisers"])
LOGS = Path("results/logs")


wildcard_constraints:
    dataset="|".join(DATASETS),
    arch="|".join(ARCHS),
    optimiser="|".join(OPTIMISERS),


SLAB_TABLES = ("runs", "dynamics", "penalty", "penalty_curve")
DATASET_TABLES = ("symmetry", "epsilon_floor", "gradient_identity")
TABLES = SLAB_TABLES + DATASET_TABLES
FIGURES = ("symmetry_map", "accuracy_vs_wd", "norm_dynamics", "penalty_removal",
           "lr_wd_collapse", "mechanism")


def members(optimiser):
    return grid.slab_members(config["optimisers"][optimiser]["lr"], config["weight_decays"],
                             config["seeds"], config.get("matched_pairs", []))


def mimic_members(optimiser):
    return grid.mimic_members(config["optimisers"][optimiser]["lr"], config["seeds"])


def mimic_references(optimiser):
    return [grid.mimic_reference(config["optimisers"][optimiser]["lr"],
                                 config["mimic"]["weight_decay"], s) for s in config["seeds"]]


def run_files(kind, dataset, optimiser, arch, run_members, names=("metrics.json",)):
    return [str(LAYOUT.run_dir(dataset, optimiser, arch, m.run_id, kind) / name)
            for m in run_members for name in names]


def slab_files(wildcards, kind="runs", names=("metrics.json",)):
    chosen = members(wildcards.optimiser) if kind == "runs" else mimic_members(wildcards.optimiser)
    return run_files(kind, wildcards.dataset, wildcards.optimiser, wildcards.arch, chosen, names)


def training_values(optimiser):
    """The config values a training run depends on (its provenance hash)."""
    keys = ("n_train", "subset_seed", "model", "decay_scope", "training")
    return {**{k: config.get(k) for k in keys}, "optimiser": config["optimisers"][optimiser]}


def tables_to_aggregate(name):
    if name in DATASET_TABLES:
        return expand(LAYOUT.table(f"{{dataset}}/{name}"), dataset=DATASETS)
    return expand(LAYOUT.table(f"{{dataset}}/{{optimiser}}/{{arch}}/{name}"),
                  dataset=DATASETS, optimiser=OPTIMISERS, arch=ARCHS)


def figure_outputs():
    return expand("figures/{figure}.{ext}", figure=FIGURES, ext=config["figures"]["formats"])
