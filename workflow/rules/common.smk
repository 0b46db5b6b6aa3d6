# Validation and input functions shared by every rule file.

from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

from wdnorm.config import SCHEMA_PATH  # noqa: E402  (the package ships the schema)

validate(config, str(SCHEMA_PATH))

from wdnorm import config as wdnorm_config  # noqa: E402  (after validation)
from wdnorm import data, gpu, grid, provenance  # noqa: E402
from wdnorm.layout import Layout  # noqa: E402
from wdnorm.provenance import TRAINING_MODULES, source_hash  # noqa: E402

# Every default filled in (the schema is their one source), for the package's functions.
CONFIG = wdnorm_config.with_defaults(config)
try:
    grid.check_config(CONFIG)
except ValueError as error:
    raise WorkflowError(f"invalid config: {error}") from None

LAYOUT = Layout()


# A prepared dataset that no longer matches the sha256 its meta recorded (truncated,
# swapped, half-copied) stops the workflow here, while the DAG is built: before any job
# runs, so snakemake deletes no finished output of a job that would then die on it.
# Identical bytes re-prepared get their earlier mtime back (wdnorm.data.store), so they
# mark nothing downstream stale. Not in the per-job re-parses of cluster executors.
if workflow.is_main_process:
    _problems = [p for ds in config["datasets"]
                 for p in data.verify_prepared(LAYOUT.prepared(ds), LAYOUT.prepared_meta(ds))]
    if _problems:
        raise WorkflowError("unusable prepared data (nothing was run or deleted):\n  "
                            + "\n  ".join(_problems))
    for _ds in config["datasets"]:
        data.restore_stamped_mtimes(LAYOUT.prepared(_ds), LAYOUT.prepared_meta(_ds))
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
ARCHS = CONFIG["architectures"]
OPTIMISERS = list(config["optimisers"])
LOGS = Path("results/logs")


wildcard_constraints:
    dataset="|".join(DATASETS),
    arch="|".join(ARCHS),
    optimiser="|".join(OPTIMISERS),


from wdnorm.tables import SLAB_TABLES  # noqa: E402  (torch-free)
DATASET_TABLES = ("symmetry", "epsilon_floor", "gradient_identity", "equivalence_probe")
TABLES = SLAB_TABLES + DATASET_TABLES
from wdnorm.figures import registry as figure_registry  # noqa: E402  (light: no pandas/matplotlib)

FIGURES = figure_registry.NAMES


def tables_to_aggregate(name):
    if name in DATASET_TABLES:
        return expand(LAYOUT.table(f"{{dataset}}/{name}"), dataset=DATASETS)
    return expand(LAYOUT.table(f"{{dataset}}/{{optimiser}}/{{arch}}/{name}"),
                  dataset=DATASETS, optimiser=OPTIMISERS, arch=ARCHS)


def figure_outputs():
    return expand("figures/{figure}.{ext}", figure=FIGURES, ext=config["figures"]["formats"])
