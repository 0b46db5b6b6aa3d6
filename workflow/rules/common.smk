# Validation and input functions shared by every rule file.

from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

from wdnorm.config import SCHEMA_PATH, coerce  # noqa: E402  (the package ships the schema)

# `--config seeds=[0,1,2]` arrives as strings inside lists and nested values: turned
# into the numbers the schema declares there, then validated.
_coerced = coerce(dict(config))
config.clear()
config.update(_coerced)
validate(config, str(SCHEMA_PATH))

from wdnorm import config as wdnorm_config  # noqa: E402  (after validation)
from wdnorm import checks, data, gpu, grid, protocols, provenance  # noqa: E402
from wdnorm.dependencies import code_hash  # noqa: E402
from wdnorm.layout import Layout  # noqa: E402

# Every default filled in (the schema is their one source), for the package's functions.
CONFIG = wdnorm_config.with_defaults(config)
try:
    checks.check_config(CONFIG)
except ValueError as error:
    raise WorkflowError(f"invalid config: {error}") from None

LAYOUT = Layout()


# A prepared dataset that no longer matches the sha256 its meta recorded (truncated,
# swapped, half-copied) stops the workflow here, while the DAG is built: before any job
# runs, so snakemake deletes no finished output of a job that would then die on it.
# Identical bytes re-prepared get their earlier mtime back (wdnorm.data.store), so they
# mark nothing downstream stale. Not in the per-job re-parses of cluster executors.
# The prepared datasets the protocols train on (the main grid's, and C9's data variants).
DATA = protocols.data_variants(CONFIG)
if workflow.is_main_process:
    _problems = [p for ds, variant in DATA.items()
                 for p in data.verify_prepared(LAYOUT.prepared(ds), LAYOUT.prepared_meta(ds),
                                               variant.dataset)]
    if _problems:
        raise WorkflowError("unusable prepared data (nothing was run or deleted):\n  "
                            + "\n  ".join(_problems))
    for _ds in DATA:
        data.restore_stamped_mtimes(LAYOUT.prepared(_ds), LAYOUT.prepared_meta(_ds))
CONDA_ENV = "../../envs/wdnorm.yaml"
SCRIPTS = Path(REPO_DIR) / "workflow" / "scripts"


def script_code(script: str, *entries: str) -> str:
    """Content hash of every wdnorm module the rule's script (and ``entries``: modules or
    notebooks it runs) imports, transitively: snakemake's own code trigger only sees the
    script file, so a rule's params carry this and an edit to any module it imports
    reruns exactly the rules that import it."""
    return code_hash([SCRIPTS / script, *entries])

# GPUs: snakemake counts a `gpu` resource but neither knows how many GPUs a machine has
# nor tells a job which one it got. Training jobs ask for one GPU when they will get
# one (visible here, or on a cluster's nodes); locally, unless the user passed
# --resources gpu=N, the count visible here caps concurrent training jobs, and each
# job then takes a free GPU by lock file (wdnorm.gpu).
LOCAL_GPUS = gpu.gpu_count() if CONFIG["device"] != "cpu" else 0
if CONFIG["device"] == "cuda" and workflow.local_exec and LOCAL_GPUS == 0:
    raise WorkflowError("device: cuda, but no CUDA device is visible here; "
                        "use device: auto (GPU when present, else CPU) or device: cpu")
GPU_PER_TRAINING_JOB = int(CONFIG["device"] != "cpu"
                           and (LOCAL_GPUS > 0 or workflow.non_local_exec))
if GPU_PER_TRAINING_JOB and workflow.local_exec and "gpu" not in workflow.global_resources:
    workflow.register_resource("gpu", LOCAL_GPUS)
DATASETS = CONFIG["datasets"]  # the main grid's: the probes run on them
ARCHS = CONFIG["architectures"]
OPTIMISERS = list(CONFIG["optimisers"])
# Every (data, optimiser, arch) slab some protocol trains in (wdnorm.protocols).
SLABS = protocols.slabs(CONFIG)
LOGS = LAYOUT.logs


wildcard_constraints:
    dataset="|".join(DATA),
    arch="|".join(dict.fromkeys(a for _, _, a in SLABS)),
    optimiser="|".join(dict.fromkeys(o for _, o, _ in SLABS)),


from wdnorm.tables import SLAB_TABLES  # noqa: E402  (torch-free)
DATASET_TABLES = ("symmetry", "epsilon_floor", "gradient_identity", "equivalence_probe")
TABLES = SLAB_TABLES + DATASET_TABLES
from wdnorm.figures import registry as figure_registry  # noqa: E402  (light: no pandas/matplotlib)

FIGURES = figure_registry.NAMES


def tables_to_aggregate(name):
    if name in DATASET_TABLES:
        return expand(LAYOUT.table(f"{{dataset}}/{name}"), dataset=DATASETS)
    return [LAYOUT.table(f"{d}/{o}/{a}/{name}") for d, o, a in SLABS]


def figure_outputs():
    return [LAYOUT.figure(f, ext) for f in FIGURES for ext in CONFIG["figures"]["formats"]]


# -- figures: each figure's inputs, code and report labels from its registry record

def figure_notebook(record) -> str:
    return os.path.join(REPO_DIR, "workflow", "notebooks", f"{record.name}.ipynb")


def figure_inputs(wildcards):
    """results/claims.json and the figure's own tables, named by table (the notebook
    template is part of the workflow, not an input: its content is in the code hash, and
    no absolute path of the checkout is recorded, so a moved project has nothing to redo)."""
    record = figure_registry.get(wildcards.figure)
    return {
        "claims": str(LAYOUT.claims),
        **{name: str(LAYOUT.table(name)) for name in record.tables},
    }


def figure_code(wildcards):
    record = figure_registry.get(wildcards.figure)
    return script_code("figure.py", figure_notebook(record), f"wdnorm.figures.{record.module}")


def figure_labels(wildcards):
    return {"figure": wildcards.figure,
            "claims": ", ".join(figure_registry.get(wildcards.figure).claims)}


# png first: the report shows it and the notebook displays it
FIGURE_FORMATS = ["png", *(ext for ext in CONFIG["figures"]["formats"] if ext != "png")]
