"""Where every artifact lives and what a run is called.

The Snakefile, the audit and the claims all address files through these functions, so the
layout is written down once::

    data/raw/{dataset}/                      downloads (torchvision roots)
    data/prepared/{dataset}.pt               tensors (see wdnorm.data)
    data/prepared/{dataset}.json             dataset meta: sha256s, stats, split sizes
    results/runs/{dataset}/{optimiser}/{arch}/
        {run_id}/                            one run of the slab (any kind)
            metrics.json                     spec, per-evaluation history, final metrics, status
            trace.npz                        per-step, per-layer dynamics (see wdnorm.engine)
            model.pt                         state_dict of wdnorm.models.build_model(...)
            provenance.json                  who/what/where made it (see wdnorm.provenance)
            MANIFEST.sha256                  sha256 of the files above, written last
        slab.json                            the slab's members and their manifests' sha256,
                                             written after every run: the slab is complete
    results/checkpoints/{dataset}/{optimiser}/{arch}.pt   a slab in training (deleted at the end)
    results/tables/*.csv                     tidy tables (evaluation stage)
    results/claims.json, results/CLAIMS.md   verdicts
    results/notebooks/*.ipynb                executed figure notebooks
    results/captions/*.rst, results/report/  the report's captions and pages
    results/logs/                            every job's log
    figures/{figure}.{png,pdf}               the figures
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN_FILES = ("metrics.json", "trace.npz", "model.pt", "provenance.json")
SLAB_MANIFEST = "slab.json"
GRID_KIND = "grid"


def schedule_tag(lr_schedule: str, lr_decay_fraction: float) -> str:
    """``const`` or ``cos0.3`` (a cosine decay over the last 30% of the steps)."""
    if lr_schedule == "constant":
        return "const"
    if lr_schedule == "cosine":
        return f"cos{lr_decay_fraction:g}"
    raise ValueError(f"lr_schedule must be constant or cosine, got {lr_schedule!r}")


def parse_schedule_tag(tag: str) -> tuple[str, float]:
    if tag == "const":
        return "constant", 1.0
    if tag.startswith("cos"):
        return "cosine", float(tag[3:])
    raise ValueError(f"not a schedule tag: {tag!r}")


def run_id(lr: float, weight_decay: float, seed: int, kind: str = GRID_KIND,
           lr_schedule: str = "constant", lr_decay_fraction: float = 1.0) -> str:
    """``lr0.05_wd0.001_s0_cos0.3`` (a grid run under a cosine tail) or
    ``lr0.05_wd0.001_s0_const_exact`` (a run standing for that grid run): %g keeps ids
    short, unique and stable across platforms; the schedule is in the id because the
    runs of one slab may differ in it (claim C9's protocols)."""
    base = (f"lr{lr:g}_wd{weight_decay:g}_s{seed}_"
            f"{schedule_tag(lr_schedule, lr_decay_fraction)}")
    return base if kind == GRID_KIND else f"{base}_{kind}"


def parse_run_id(name: str) -> tuple[float, float, int, str, str, float]:
    """(lr, weight_decay, seed, kind, lr_schedule, lr_decay_fraction) of a run id."""
    parts = name.split("_")
    lr, wd, seed, tag = parts[:4]
    kind = parts[4] if len(parts) > 4 else GRID_KIND
    return (float(lr[2:]), float(wd[2:]), int(seed[1:]), kind, *parse_schedule_tag(tag))


@dataclass(frozen=True)
class Layout:
    """Paths relative to a results root and a data root (both movable: the audit works
    on a results directory copied anywhere)."""

    results: Path = Path("results")
    data: Path = Path("data")
    figures: Path = Path("figures")

    def raw_dir(self, dataset: str) -> Path:
        return self.data / "raw" / dataset

    def prepared(self, dataset: str) -> Path:
        return self.data / "prepared" / f"{dataset}.pt"

    def prepared_meta(self, dataset: str) -> Path:
        return self.data / "prepared" / f"{dataset}.json"

    def slab_dir(self, dataset: str, optimiser: str, arch: str) -> Path:
        return self.results / "runs" / dataset / optimiser / arch

    def slab_manifest(self, dataset: str, optimiser: str, arch: str) -> Path:
        return self.slab_dir(dataset, optimiser, arch) / SLAB_MANIFEST

    def run_dir(self, dataset: str, optimiser: str, arch: str, run: str) -> Path:
        return self.slab_dir(dataset, optimiser, arch) / run

    def checkpoint(self, dataset: str, optimiser: str, arch: str) -> Path:
        return self.results / "checkpoints" / dataset / optimiser / f"{arch}.pt"

    def table(self, name: str) -> Path:
        return self.results / "tables" / f"{name}.csv"

    def figure(self, name: str, ext: str) -> Path:
        return self.figures / f"{name}.{ext}"

    def notebook(self, name: str) -> Path:
        return self.results / "notebooks" / f"{name}.ipynb"

    def caption(self, name: str) -> Path:
        return self.results / "captions" / f"{name}.rst"

    def report_page(self, name: str) -> Path:
        return self.results / "report" / name

    @property
    def logs(self) -> Path:
        return self.results / "logs"

    @property
    def claims(self) -> Path:
        return self.results / "claims.json"

    @property
    def claims_markdown(self) -> Path:
        return self.results / "CLAIMS.md"
