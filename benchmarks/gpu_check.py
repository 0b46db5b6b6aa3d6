"""GPU check: the slab step (eager, compiled, CUDA graphs) against the torch.optim loop and
the vmap ensemble, then the training time of the default MNIST-1D grid (every architecture).

    python benchmarks/gpu_check.py [--device cuda] [--widths 64 512] [--steps 100]
        [--skip-bench] [--skip-grid] [--grid-epochs N] [--quick] [--out FILE]

Runs from the checkout without an install (it puts ../src on sys.path). Timings use CUDA
events with host syncs only around each timed loop; TF32 is off, as in training. The JSON
is rewritten after every width and every slab, so a run cut short keeps what it measured.
`--device cpu --quick` runs the same code on a CPU (no CUDA-graph variants there) as a
smoke test. benchmarks/README.md says what each number means.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
import yaml  # noqa: E402

import bench_engine as be  # noqa: E402
from wdnorm import config as wconfig  # noqa: E402
from wdnorm import data, engine, grid, provenance  # noqa: E402

# torch.compile(mode="reduce-overhead"): inductor's kernels replayed as CUDA graphs
GRAPHS = {"graphs_off": (be.SlabRunner, "reduce-overhead", False),
          "graphs_on": (be.SlabRunner, "reduce-overhead", True)}
RATIOS = ("R_batch", "R_batch_trace", "R_vmap", "R_flop")


def reset_memory(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else None


def machine(device) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "device": str(device), "device_name": provenance.device_name(str(device)),
            "cpu": provenance.device_name("cpu"), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(cuda=torch.version.cuda, gpu_memory_gb=props.total_memory / 2 ** 30)
    return info


def count_syncs(args, device) -> dict:
    """Host syncs inside 3 trainer steps (CUDA sync debug mode; eager, trace on): any
    sync caps a GPU's throughput at the host's pace."""
    x = torch.randn(be.N_TRAIN, be.D_IN, device=device)
    y = torch.randint(0, be.N_CLASSES, (be.N_TRAIN,), device=device)
    members = [engine.Member(be.LR, wd, 0) for wd in be.WEIGHT_DECAYS]
    runner = be.SlabRunner(be.bench_config(args, 64, True), members, x, y, 8, device)
    runner(2)
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runner(3)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    where = sorted({f"{Path(w.filename).name}:{w.lineno}" for w in caught
                    if "synchroniz" in str(w.message)})
    return {"syncs_in_3_steps": sum("synchroniz" in str(w.message) for w in caught),
            "where": where}


def bench(args, device, report, save) -> None:
    """R_batch, R_vmap, R_flop and steps/s per width; CUDA graphs as extra variants."""
    variants = {**be.VARIANTS, **(GRAPHS if device.type == "cuda" else {})}
    peak = be.gemm_peak_gflops(device, n=8192 if device.type == "cuda" else 1024)
    report["gemm_peak_gflops"], report["bench"] = peak, []
    if device.type == "cuda":
        report["host_syncs"] = count_syncs(args, device)
        print(json.dumps(report["host_syncs"]), flush=True)
    for width in args.widths:
        reset_memory(device)
        row = be.add_ratios(be.measure_width(args, width, device, variants), peak)
        if "ms_graphs_off" in row:
            graphs = be.add_ratios(dict(row), peak, slab="graphs")
            row.update({f"{k}_graphs": graphs.get(k) for k in RATIOS})
        row["steps_per_s"] = {k[3:]: 1e3 / v for k, v in row.items()
                              if k.startswith("ms_") and isinstance(v, float)}
        row["peak_memory_mb"] = peak_memory_mb(device)
        report["bench"].append(row)
        save()
        print(json.dumps({k: v for k, v in row.items() if k in ("width", "errors_cold", *RATIOS)
                          or k.startswith(("ms_", "compile_", "R_")) and k != "ms_repeats"}),
              flush=True)


def grid_slab(cfg, members, prepared, device, compile_mode, max_steps) -> dict:
    """Train one slab as the pipeline does; the log's per-epoch stamps separate the
    first epoch (compilation) from the rest."""
    stamps = []
    reset_memory(device)
    start = time.perf_counter()
    result = engine.train_slab(cfg, members, prepared.x_train, prepared.y_train,
                               prepared.x_test, prepared.y_test, device=device,
                               compile=compile_mode, max_steps=max_steps,
                               log=lambda _line: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - start
    steps, per_epoch = len(result.trace["loss"]), len(prepared.x_train) // cfg.batch_size
    row = {"arch": cfg.arch, "members": len(members), "steps": steps, "epochs": cfg.epochs,
           "wall_s": wall, "train_s": result.train_seconds, "compiled": result.compiled,
           "first_epoch_s": stamps[0] - start if stamps else None,
           "peak_memory_mb": peak_memory_mb(device),
           "test_acc_mean": float(result.history["test_acc"][-1].mean())}
    if len(stamps) > 1 and steps > per_epoch:  # evaluations included
        row["ms_per_step_after_first_epoch"] = 1e3 * (stamps[-1] - stamps[0]) / (steps - per_epoch)
        row["model_samples_per_s"] = len(members) * cfg.batch_size * 1e3 / row[
            "ms_per_step_after_first_epoch"]
    return row


def default_grid(args, device, report, save) -> None:
    """Every architecture's slab of config.yaml's SGD-momentum grid on MNIST-1D."""
    config = wconfig.with_defaults(yaml.safe_load((HERE.parent / "config.yaml").read_text()))
    prepared = data.prepare("mnist1d", None, options=config.get("mnist1d"))
    compile_mode = args.compile or config["compile"]
    report["grid"] = {"compile": compile_mode, "slabs": []}
    for arch in config["architectures"]:
        members = grid.slab_members(config, "sgdm", arch)
        if args.quick:  # one seed's members: the smoke test checks the code, not the time
            members = [m for m in members if m.seed == members[0].seed]
        cfg = engine.SlabConfig.from_settings(arch, prepared.meta,
                                              provenance.training_values(config, "sgdm"))
        if args.grid_epochs:
            cfg = dataclasses.replace(cfg, epochs=args.grid_epochs,
                                      eval_every=min(cfg.eval_every, args.grid_epochs))
        row = grid_slab(cfg, members, prepared, device, compile_mode, args.grid_steps)
        report["grid"]["slabs"].append(row)
        report["grid"]["wall_s"] = sum(r["wall_s"] for r in report["grid"]["slabs"])
        save()
        print(json.dumps(row), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 512])
    for name, default in (("steps", 100), ("repeats", 3), ("members", 30), ("depth", 3),
                          ("batch", 128)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--arch", default="ln")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch's default)")
    parser.add_argument("--compile", choices=engine.COMPILE_CHOICES, default=None,
                        help="the grid's compile setting (default: config.yaml's)")
    parser.add_argument("--grid-epochs", type=int, default=None, help="default: config.yaml's")
    parser.add_argument("--grid-steps", type=int, default=None, help="cap on steps per slab")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: width 64, 3 steps; grid: one seed, 5 steps, eager on CPU")
    parser.add_argument("--out", default=str(HERE / "results" / "gpu_check.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.steps, args.repeats = [64], 3, 2
        args.grid_epochs, args.grid_steps = 1, 5
        args.compile = args.compile or ("auto" if args.device.startswith("cuda") else "off")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    report = {"machine": machine(device), "settings": vars(args)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():
        out.write_text(json.dumps(report, indent=1))
    save()
    if not args.skip_bench:
        bench(args, device, report, save)
    if not args.skip_grid:
        default_grid(args, device, report, save)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
