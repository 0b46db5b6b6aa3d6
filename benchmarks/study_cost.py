"""Size and cost of a configured study: slabs, runs, member-steps and linear-layer FLOPs,
from the very grid the workflow trains (``wdnorm.grid.slab_members``), and the time they
take at a measured CPU rate and an assumed GPU rate.

    python benchmarks/study_cost.py config.yaml config/study.yaml
    python benchmarks/study_cost.py config.yaml config/study.yaml config/study-n5000.yaml

Config files merge left to right as ``snakemake --configfile`` merges them (nested
mappings key by key). The CPU rate defaults to the compiled slab's measured GFLOP/s
(trace on, one thread, at the benchmarked width nearest the config's) in
benchmarks/results/engine.json.
"""

import argparse, json, math  # noqa: E401
from pathlib import Path

import yaml

from wdnorm import config as wdconfig, grid, protocols, provenance
from wdnorm.data import registry as datasets
from wdnorm.engine import SlabConfig

ENGINE_JSON = Path(__file__).parent / "results" / "engine.json"


def merged(paths: list[str]) -> dict:
    def merge(into: dict, new: dict) -> dict:
        for key, value in new.items():
            into[key] = (merge(dict(into[key]), value) if isinstance(value, dict)
                         and isinstance(into.get(key), dict) else value)
        return into
    out: dict = {}
    for path in paths:
        out = merge(out, yaml.safe_load(Path(path).read_text()) or {})
    return wdconfig.validate(out)


def train_examples(variant) -> int:
    """Examples a run of a data variant trains on: n_train, else the dataset's training
    split (at its options) less the validation split."""
    if variant.n_train:
        return int(variant.n_train)
    split = datasets.get(variant.dataset).train_split_size(variant.options)
    return split - int(variant.n_validation)


def study_size(config: dict) -> list[dict]:
    """One row per data variant (a dataset, or a C9 protocol's other data): slabs, runs,
    member-steps, PFLOP (forward + backward of the linear layers)."""
    rows: dict[str, dict] = {}
    variants = protocols.data_variants(config)
    for data, optimiser, arch in protocols.slabs(config):
        variant = variants[data]
        settings = provenance.training_values(config, data, optimiser)
        d_in = math.prod(datasets.get(variant.dataset).input_shape)
        cfg = SlabConfig.from_settings(arch, {"d_in": d_in, "n_classes": 10}, settings)
        steps = cfg.epochs * (train_examples(variant) // cfg.batch_size)
        members = len(grid.slab_members(config, data, optimiser, arch))
        weights = sum(m.weight.numel() for m in cfg.build_model().linears)
        row = rows.setdefault(data, dict(dataset=data, slabs=0, runs=0, member_steps=0,
                                         pflop=0.0, steps=steps))
        row["slabs"] += 1
        row["runs"] += members
        row["member_steps"] += members * steps
        row["pflop"] += 6 * cfg.batch_size * weights * members * steps / 1e15
    return list(rows.values())


def measured_cpu_gflops(width: int) -> float | None:
    """The compiled slab's GFLOP/s (trace on, one thread) at the benchmarked width
    nearest ``width``."""
    if not ENGINE_JSON.exists():
        return None
    rows = [r for r in json.loads(ENGINE_JSON.read_text())["rows"]
            if r.get("threads") == 1 and r.get("gflops_trace")]
    return min(rows, key=lambda r: abs(r["width"] - width))["gflops_trace"] if rows else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="config files, merged left to right")
    parser.add_argument("--cpu-gflops", type=float,
                        help="achieved GFLOP/s per CPU core (default: engine.json at the "
                             "config's width)")
    parser.add_argument("--gpu-tflops", type=float, default=20.0,
                        help="achieved fp32 TFLOP/s of one GPU (an assumption: TF32 off)")
    args = parser.parse_args()
    config = merged(args.configs)
    rows = study_size(config)
    cpu_gflops = args.cpu_gflops or measured_cpu_gflops(config["model"]["width"])
    print(f"{'data':<28}{'slabs':>6}{'runs':>7}{'steps/run':>11}{'member-steps':>14}"
          f"{'PFLOP':>9}")
    for r in rows:
        print(f"{r['dataset']:<28}{r['slabs']:>6}{r['runs']:>7}{r['steps']:>11}"
              f"{r['member_steps']:>14.3g}{r['pflop']:>9.3g}")
    runs, pflop = sum(r["runs"] for r in rows), sum(r["pflop"] for r in rows)
    print(f"{'total':<28}{sum(r['slabs'] for r in rows):>6}{runs:>7}{'':>11}"
          f"{sum(r['member_steps'] for r in rows):>14.3g}{pflop:>9.3g}")
    if cpu_gflops:
        hours = pflop * 1e6 / cpu_gflops / 3600
        print(f"CPU at {cpu_gflops:.1f} GFLOP/s per core: {hours:.0f} core-hours, "
              f"{hours * 60 / runs:.1f} core-minutes per run")
    print(f"one GPU at {args.gpu_tflops:g} TFLOP/s: {pflop * 1e3 / args.gpu_tflops / 3600:.2f} "
          f"GPU-hours of arithmetic (plus compile and evaluation)")


if __name__ == "__main__":
    main()
