"""Where every artifact lives and what a run is called.

The Snakefile, the audit and the claims all address files through these functions, so the
layout is written down once::

    data/raw/{dataset}/                      downloads (torchvision roots)
    data/prepared/{dataset}.pt               tensors (see wdnorm.data)
    data/prepared/{dataset}.json             dataset meta: raw sha256s, stats, split sizes
    results/runs/{dataset}/{optimiser}/{arch}/{run_id}/
        metrics.json                         spec, per-epoch history, final metrics, status
        trace.npz                            per-step, per-layer dynamics (see wdnorm.engine)
        model.pt                             state_dict of wdnorm.models.build_model(...)
        provenance.json                      who/what/where made it (see wdnorm.provenance)
        MANIFEST.sha256                      sha256 of the files above, written last
    results/mimic/{dataset}/{optimiser}/{arch}/{run_id}/   same files: C6 mechanism runs
    results/tables/*.csv                     tidy tables (evaluation stage)
    results/claims.json, results/CLAIMS.md   verdicts
    results/notebooks/*.ipynb                executed figure notebooks
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RUN_FILES = ("metrics.json", "trace.npz", "model.pt", "provenance.json")


def run_id(lr: float, weight_decay: float, seed: int) -> str:
    """``lr0.05_wd0.001_s0``: %g keeps ids short, unique and stable across platforms."""
    return f"lr{lr:g}_wd{weight_decay:g}_s{seed}"


def parse_run_id(name: str) -> tuple[float, float, int]:
    lr, wd, seed = name.split("_")
    return float(lr[2:]), float(wd[2:]), int(seed[1:])


@dataclass(frozen=True)
class Layout:
    """Paths relative to a results root and a data root (both movable: the audit works
    on a results directory copied anywhere)."""

    results: Path = Path("results")
    data: Path = Path("data")

    def raw_dir(self, dataset: str) -> Path:
        return self.data / "raw" / dataset

    def prepared(self, dataset: str) -> Path:
        return self.data / "prepared" / f"{dataset}.pt"

    def prepared_meta(self, dataset: str) -> Path:
        return self.data / "prepared" / f"{dataset}.json"

    def slab_dir(self, dataset: str, optimiser: str, arch: str, kind: str = "runs") -> Path:
        return self.results / kind / dataset / optimiser / arch

    def run_dir(self, dataset: str, optimiser: str, arch: str, run: str,
                kind: str = "runs") -> Path:
        return self.slab_dir(dataset, optimiser, arch, kind) / run

    def table(self, name: str) -> Path:
        return self.results / "tables" / f"{name}.csv"
