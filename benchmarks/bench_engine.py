"""Slab engine vs a plain loop of torch.optim runs, on the default config's sizes.

    python benchmarks/bench_engine.py [--steps 150] [--arch ln] [--threads 1 2]

Prints a table and writes benchmarks/results/engine.json with, per thread count:
  R_batch = model-samples/s of the slab / model-samples/s of the same M runs trained one
            after another with torch.optim (same steps, same device, same process);
  R_flop  = achieved FLOP/s of the slab (6 * params * samples: forward + backward)
            / FLOP/s of a large float32 GEMM measured in the same process.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from wdnorm import data, engine, fileio, grid, provenance

# The default config's sizes (config.yaml): digits, width 64, depth 3, batch 128,
# 7 weight decays + 3 matched pairs, 3 seeds -> 30 members, SGD with momentum 0.9.
WIDTH, DEPTH, BATCH, LR, MOMENTUM = 64, 3, 128, 0.05, 0.9
WEIGHT_DECAYS = [0.0, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1]
PAIRS = [(0.1, 2e-2), (0.05, 4e-2), (0.025, 8e-2)]
SEEDS = [0, 1, 2]


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def gemm_flops(n: int = 2048, repeats: int = 10, device="cpu") -> float:
    """float32 GEMM FLOP/s (TF32 off on CUDA, as in training)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def loop_baseline(cfg, members, prepared, steps, device="cpu") -> float:
    """The same runs, one after another, each an nn.Module with torch.optim.SGD."""
    x, y = prepared.x_train.to(device), prepared.y_train.to(device)
    sync(device)
    start = time.perf_counter()
    for member in members:
        torch.manual_seed(member.seed)
        net = cfg.build_model().to(device).train()
        decayed = set(net.decayed_parameter_names(cfg.decay_scope))
        named = list(net.named_parameters())
        optim = torch.optim.SGD(
            [{"params": [p for n, p in named if n in decayed], "weight_decay": member.weight_decay},
             {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}],
            lr=member.lr, momentum=MOMENTUM)
        gen = engine.batch_generator(member.seed)
        done = 0
        while done < steps:
            for idx in engine.epoch_batches(gen, len(x), cfg.batch_size):
                if done == steps:
                    break
                loss = F.cross_entropy(net(x[idx]), y[idx])
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                done += 1
    sync(device)
    return time.perf_counter() - start


def slab_time(cfg, members, prepared, steps, device="cpu") -> float:
    sync(device)
    start = time.perf_counter()
    engine.train_slab(cfg, members, prepared.x_train, prepared.y_train, prepared.x_test,
                      prepared.y_test, max_steps=steps, device=device)
    sync(device)
    return time.perf_counter() - start


def measure(arch: str, steps: int, threads: int, prepared, device="cpu") -> dict:
    """R_batch and R_flop of one slab of the default grid's members."""
    torch.set_num_threads(threads)
    members = grid.slab_members(LR, WEIGHT_DECAYS, SEEDS, PAIRS)
    row = {"arch": arch, "threads": threads, "members": len(members), "steps": steps,
           "device": str(device)}
    peak = gemm_flops(device=device)
    for trace in (False, True):
        cfg = engine.SlabConfig(arch=arch, d_in=prepared.meta["d_in"], width=WIDTH, depth=DEPTH,
                                n_classes=prepared.meta["n_classes"], batch_size=BATCH,
                                epochs=10 ** 6, eval_every=10 ** 6, trace=trace,
                                optimiser=engine.OptimiserConfig("sgd", momentum=MOMENTUM))
        slab_time(cfg, members[:2], prepared, 5, device)  # warm-up: allocator, threads
        row[f"slab_s{'_trace' if trace else ''}"] = slab_time(cfg, members, prepared, steps,
                                                               device)
    row["loop_s"] = loop_baseline(cfg, members, prepared, steps, device)
    n_params = sum(p.numel() for p in cfg.build_model().parameters())
    samples = len(members) * BATCH * steps
    row.update(
        params_per_model=n_params, gemm_peak_gflops=peak / 1e9,
        slab_samples_per_s=samples / row["slab_s"], loop_samples_per_s=samples / row["loop_s"],
        R_batch=row["loop_s"] / row["slab_s"], R_batch_trace=row["loop_s"] / row["slab_s_trace"],
        slab_gflops=6 * n_params * samples / row["slab_s"] / 1e9,
    )
    row["R_flop"] = row["slab_gflops"] / row["gemm_peak_gflops"]
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ln")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "engine.json"))
    args = parser.parse_args(argv)
    prepared = data.prepare("digits", None)
    rows = [measure(args.arch, args.steps, t, prepared) for t in args.threads]
    header = ("threads", "members", "slab_s", "slab_s_trace", "loop_s", "R_batch",
              "R_batch_trace", "slab_gflops", "gemm_peak_gflops", "R_flop")
    print("  ".join(f"{h:>15}" for h in header))
    for row in rows:
        print("  ".join(f"{row[h]:>15.3f}" if isinstance(row[h], float) else f"{row[h]:>15}"
                        for h in header))
    fileio.write_json(args.out, {"device": "cpu", "cpu": provenance.device_name("cpu"),
                                 "platform": platform.platform(),
                                 "torch": torch.__version__, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
