"""One prepared GPU check: the default grid on mnist-shaped data with device cuda.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--epochs 2] [--device cuda]

Runs from the checkout without snakemake or an install (it puts ../src on sys.path), on
the GPU machine's own torch (2.11+ on Python 3.12 included). It trains every
architecture's slab of the default grid (7 weight decays + 3 matched pairs, x 3 seeds)
on MNIST (downloaded into data/raw when reachable, else random tensors of MNIST's shape),
records samples/s and peak GPU memory per slab, then the engine benchmark's R_batch and
R_flop against this GPU's float32 GEMM peak (TF32 off, as in training), measured in the
same process. `--device cpu --epochs 1 --n-train 2048` runs the same code on a CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import bench_engine  # noqa: E402
from wdnorm import data, engine, grid, models  # noqa: E402


def mnist_or_random(n_train: int | None) -> tuple[data.Prepared, str]:
    try:
        return data.prepare("mnist", HERE.parent / "data" / "raw" / "mnist", n_train=n_train,
                            download=True), "mnist"
    except Exception as error:  # offline GPU machines: the shape is what matters here
        print(f"MNIST unavailable ({type(error).__name__}: {error}); using random tensors")
    gen = torch.Generator().manual_seed(0)
    n = n_train or 60_000
    x = torch.randn(n + 10_000, 784, generator=gen)
    y = torch.randint(0, 10, (n + 10_000,), generator=gen)
    meta = {"name": "random_mnist_shape", "d_in": 784, "n_classes": 10, "n_train": n}
    return data.Prepared(x[:n], y[:n], x[n:], y[n:], meta), "random"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--bench-steps", type=int, default=200)
    parser.add_argument("--out", default=str(HERE / "results" / "gpu_check.json"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    prepared, source = mnist_or_random(args.n_train)
    members = grid.slab_members(bench_engine.LR, bench_engine.WEIGHT_DECAYS, bench_engine.SEEDS,
                                bench_engine.PAIRS)
    report = {"torch": torch.__version__, "python": sys.version.split()[0],
              "device": str(device), "data": source, "members_per_slab": len(members),
              "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                              else "cpu"), "slabs": []}
    for arch in models.ARCHITECTURES:
        cfg = engine.SlabConfig(arch=arch, d_in=784, width=bench_engine.WIDTH,
                                depth=bench_engine.DEPTH, n_classes=10,
                                batch_size=bench_engine.BATCH, epochs=args.epochs,
                                eval_every=args.epochs,
                                optimiser=engine.OptimiserConfig("sgd", momentum=0.9))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        result = engine.train_slab(cfg, members, prepared.x_train, prepared.y_train,
                                   prepared.x_test, prepared.y_test, device=device)
        bench_engine.sync(device)
        wall = time.perf_counter() - start
        steps = result.trace["loss"].shape[0]
        row = {"arch": arch, "steps": steps, "wall_s": wall,
               "model_samples_per_s": len(members) * cfg.batch_size * steps / wall,
               "test_acc_mean": float(result.history["test_acc"][-1].mean()),
               "peak_gpu_mem_mb": (torch.cuda.max_memory_allocated(device) / 2 ** 20
                                   if device.type == "cuda" else None)}
        report["slabs"].append(row)
        print(json.dumps(row))
    report["engine_benchmark"] = bench_engine.measure("ln", args.bench_steps, torch.get_num_threads(),
                                                      prepared, device)
    print(json.dumps(report["engine_benchmark"], indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
