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

from wdnorm import config as wdconfig, grid
from wdnorm.data import registry as datasets
from wdnorm.engine import OptimiserConfig, SlabConfig

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


def train_examples(name: str, config: dict) -> int:
    """Examples a run trains on: n_train, else the split less the validation split."""
    if config.get("n_train"):
        return int(config["n_train"])
    if name == "mnist1d":  # generated: its size is the generator's arguments
        full = int(config["mnist1d"]["num_samples"] * config["mnist1d"]["train_split"])
    else:
        full = datasets.get(name).n_train_full
    return full - int(config["n_validation"])


def study_size(config: dict) -> list[dict]:
    """One row per dataset: slabs, runs, member-steps, PFLOP (forward + backward)."""
    rows = []
    training, model = config["training"], config["model"]
    for name in config["datasets"]:
        record = datasets.get(name)
        d_in = math.prod(record.input_shape)
        steps = training["epochs"] * (train_examples(name, config) // training["batch_size"])
        row = dict(dataset=name, slabs=0, runs=0, member_steps=0, pflop=0.0, steps=steps)
        for optimiser in config["optimisers"]:
            for arch in config["architectures"]:
                members = len(grid.slab_members(config, optimiser, arch))
                cfg = SlabConfig(arch=arch, d_in=d_in, width=model["width"],
                                 depth=model["depth"], n_classes=record.n_classes,
                                 optimiser=OptimiserConfig("sgd"))
                weights = sum(m.weight.numel() for m in cfg.build_model().linears)
                row["slabs"] += 1
                row["runs"] += members
                row["member_steps"] += members * steps
                row["pflop"] += 6 * training["batch_size"] * weights * members * steps / 1e15
        rows.append(row)
    return rows


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
    print(f"{'dataset':<14}{'slabs':>6}{'runs':>7}{'steps/run':>11}{'member-steps':>14}"
          f"{'PFLOP':>9}")
    for r in rows:
        print(f"{r['dataset']:<14}{r['slabs']:>6}{r['runs']:>7}{r['steps']:>11}"
              f"{r['member_steps']:>14.3g}{r['pflop']:>9.3g}")
    runs, pflop = sum(r["runs"] for r in rows), sum(r["pflop"] for r in rows)
    print(f"{'total':<14}{sum(r['slabs'] for r in rows):>6}{runs:>7}{'':>11}"
          f"{sum(r['member_steps'] for r in rows):>14.3g}{pflop:>9.3g}")
    if cpu_gflops:
        hours = pflop * 1e6 / cpu_gflops / 3600
        print(f"CPU at {cpu_gflops:.1f} GFLOP/s per core: {hours:.0f} core-hours, "
              f"{hours * 60 / runs:.1f} core-minutes per run")
    print(f"one GPU at {args.gpu_tflops:g} TFLOP/s: {pflop * 1e3 / args.gpu_tflops / 3600:.2f} "
          f"GPU-hours of arithmetic (plus compile and evaluation)")


if __name__ == "__main__":
    main()
