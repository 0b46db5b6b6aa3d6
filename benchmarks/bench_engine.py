"""Slab engine vs a torch.optim loop vs a vmap ensemble: ms per training step, side by side
(`python benchmarks/bench_engine.py --help`).

One fresh subprocess per thread count on an empty inductor cache (cold compile), then a
second one on that cache (warm compile); benchmarks/README.md says what each number means.
"""

import argparse, copy, json, math, os, platform, shutil, statistics, subprocess  # noqa: E401
import sys, tempfile, time  # noqa: E401
from pathlib import Path

import torch
from torch.nn import functional as F

from wdnorm import engine, provenance
from wdnorm.engine import setup, trainer
from wdnorm.engine import step as slab_step

D_IN, N_CLASSES, N_TRAIN = 40, 10, 4000        # MNIST-1D: 40 features, 10 classes
LR, MOMENTUM, WARMUP = 0.05, 0.9, 3
WEIGHT_DECAYS = [0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]


def timed(fn, device: torch.device) -> float:
    """Seconds fn() takes; on CUDA by events, with host syncs only around the call."""
    if device.type != "cuda":
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    begin.record()
    fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1e3


def gemm_peak_gflops(device: torch.device, n: int = 1024, repeats: int = 10) -> float:
    """Best of 3 runs of `repeats` float32 n³ matmuls (TF32 off), at the current threads.
    TF32 is switched off only on CUDA, as the trainer does: the flag is part of
    inductor's cache key, so setting it on a CPU made the warm compiles miss the cache."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    best = min(timed(lambda: [torch.mm(a, b) for _ in range(repeats)], device)
               for _ in range(3))
    return 2 * n ** 3 * repeats / best / 1e9


def bench_config(args, width: int, trace: bool) -> engine.SlabConfig:
    return engine.SlabConfig(arch=args.arch, d_in=D_IN, width=width, depth=args.depth,
                             n_classes=N_CLASSES, batch_size=args.batch, trace=trace,
                             optimiser=engine.OptimiserConfig("sgd", momentum=MOMENTUM))


class SlabRunner:
    """The trainer's own step loop (gather, step, divergence check, trace) on a slab;
    `mode`: None (eager) or a torch.compile mode."""

    def __init__(self, cfg, members, x, y, total, device, mode=None):
        self.cfg, self.x, self.y = cfg, x, y
        trainer.retain_freed_memory()  # as train_slab does
        self.st, self.hyper, self.plan, _ = setup.prepare_slab(cfg, members, device, x.dtype,
                                                               total)
        self.fn = slab_step.make_step(self.plan)
        if mode is not None:  # reduce-overhead: each call starts a new CUDA-graph iteration
            self.fn = slab_step.CompiledStep(self.fn, strict=True, mode=mode,
                                             device_type=device.type)
        self.first_step_s = timed(lambda: self(1), device)  # compiles, when compiled

    def __call__(self, n: int) -> None:
        target, per_epoch = self.st.step + n, len(self.x) // self.cfg.batch_size
        while self.st.step < target:
            trainer.run_epoch(self.cfg, self.st, self.hyper, self.plan, self.fn, self.x,
                               self.y, per_epoch, target)


class Baseline:
    """M nn.Modules built one by one (the engine's initialisation of each seed), each
    member with its own minibatch order; a subclass sets up its optimiser."""

    def __init__(self, cfg, members, x, y, total, device, mode=None):
        self.x, self.y, self.pos, self.nets, orders = x, y, 0, [], []
        for m in members:
            torch.manual_seed(m.seed)
            self.nets.append(cfg.build_model().to(device).train())
            gen, chunks = engine.batch_generator(m.seed), []
            while sum(len(c) for c in chunks) < total:
                chunks.append(engine.epoch_batches(gen, len(x), cfg.batch_size))
            orders.append(torch.cat(chunks)[:total])
        self.order = torch.stack(orders).to(device)                      # [M, total, B]
        self.setup(cfg, members, device)
        self.first_step_s = timed(lambda: self(1), device)


class LoopRunner(Baseline):
    """Each module with its own torch.optim.SGD, trained one after another."""

    def setup(self, cfg, members, device):
        self.opts = []
        for net, m in zip(self.nets, members):
            decayed = set(net.decayed_parameter_names(cfg.decay_scope))
            named = list(net.named_parameters())
            self.opts.append(torch.optim.SGD(
                [{"params": [p for n, p in named if n in decayed], "weight_decay": m.weight_decay},
                 {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}],
                lr=m.lr, momentum=cfg.optimiser.hyper["momentum"]))

    def __call__(self, n: int) -> None:
        for i, (net, opt) in enumerate(zip(self.nets, self.opts)):
            for t in range(self.pos, self.pos + n):
                idx = self.order[i, t]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(self.x[idx]), self.y[idx]).backward()
                opt.step()
        self.pos += n


class VmapRunner(Baseline):
    """PyTorch's model-ensembling recipe: stack_module_state + vmap(functional_call) with
    torch.func.grad; SGD with momentum (coupled L2, as torch.optim) by _foreach ops."""

    def setup(self, cfg, members, device):
        params, self.buffers = torch.func.stack_module_state(self.nets)
        base = copy.deepcopy(self.nets[0]).to("meta")

        def loss(p, b, xb, yb):
            return F.cross_entropy(torch.func.functional_call(base, (p, b), (xb,)), yb)
        self.grad, self.names = torch.func.vmap(torch.func.grad(loss)), list(params)
        self.p = [params[k].detach() for k in self.names]
        self.m = [torch.zeros_like(p) for p in self.p]
        decayed = set(self.nets[0].decayed_parameter_names(cfg.decay_scope))
        wd = torch.tensor([m.weight_decay for m in members], device=device)
        lr = torch.tensor([m.lr for m in members], device=device)
        view = lambda v, p: v.view(-1, *[1] * (p.dim() - 1))  # noqa: E731
        self.wd = [view(wd if k in decayed else torch.zeros_like(wd), p)
                   for k, p in zip(self.names, self.p)]
        self.neg_lr = [view(-lr, p) for p in self.p]
        self.momentum, self.nets = cfg.optimiser.hyper["momentum"], None

    def __call__(self, n: int) -> None:
        for t in range(self.pos, self.pos + n):
            idx = self.order[:, t]
            g = self.grad(dict(zip(self.names, self.p)), self.buffers, self.x[idx], self.y[idx])
            d_p = torch._foreach_addcmul([g[k] for k in self.names], self.wd, self.p)
            torch._foreach_mul_(self.m, self.momentum)
            torch._foreach_add_(self.m, d_p)
            torch._foreach_addcmul_(self.p, self.neg_lr, self.m)
        self.pos += n


# name -> (runner, torch.compile mode or None, per-step trace on)
VARIANTS = {"eager_off": (SlabRunner, None, False), "eager_on": (SlabRunner, None, True),
            "compiled_off": (SlabRunner, "default", False),
            "compiled_on": (SlabRunner, "default", True),
            "loop": (LoopRunner, None, False), "vmap": (VmapRunner, None, False)}


def build_runners(args, width, device, variants, total, row, tag="cold") -> dict:
    """Every variant's runner, its first step (compilation included) timed and its warm-up
    done; a variant that fails there is reported in row["errors_<tag>"], left out."""
    seeds, runners = range(math.ceil(args.members / len(WEIGHT_DECAYS))), {}
    members = [engine.Member(LR, wd, s) for s in seeds for wd in WEIGHT_DECAYS][:args.members]
    gen = torch.Generator().manual_seed(0)  # random data of MNIST-1D's shape
    x = torch.randn(N_TRAIN, D_IN, generator=gen).to(device)
    y = torch.randint(0, N_CLASSES, (N_TRAIN,), generator=gen).to(device)
    for name, (cls, mode, trace) in variants.items():
        try:
            run = cls(bench_config(args, width, trace), members, x, y, total, device, mode)
            run(WARMUP)  # CUDA graphs record on the 2nd call and replay from the 3rd
        except Exception as error:  # noqa: BLE001 -- one failing variant spoils no other
            message = f"{type(error).__name__}: {str(error)[:300]}"
            row.setdefault(f"errors_{tag}", {})[name] = message
            continue
        runners[name] = run
        if mode is not None:
            row[f"compile_{tag}_s_{name}"] = run.first_step_s
    return runners


def measure_width(args, width: int, device, variants=VARIANTS) -> dict:
    """ms/step of every variant at one width: median of `repeats` timings of `steps`
    steps after a warm-up, the variants interleaved so all see the same machine load."""
    torch._dynamo.reset()  # one code object, many plans: stay under dynamo's cache limit
    linears = bench_config(args, width, True).build_model().linears  # FLOPs: fwd + bwd
    row = {"width": width, "members": args.members, "steps": args.steps, "gflop_per_step":
           6 * args.batch * args.members * sum(m.weight.numel() for m in linears) / 1e9}
    runners = build_runners(args, width, device, variants,
                            1 + WARMUP + args.repeats * args.steps, row)
    ms = {name: [] for name in runners}
    for _ in range(args.repeats):
        for name, run in runners.items():
            ms[name].append(1e3 * timed(lambda: run(args.steps), device) / args.steps)
    row.update({f"ms_{k}": statistics.median(v) for k, v in ms.items()}, ms_repeats=ms)
    ref = runners.get("eager_off")  # same init, same batches: the slab variants must agree
    row["max_loss_diff_vs_eager"] = {
        k: float((r.st.trace["loss"] - ref.st.trace["loss"]).abs().max())
        for k, r in runners.items() if isinstance(r, SlabRunner) and r is not ref and ref}
    return row


def add_ratios(row: dict, peak_gflops: float, slab: str = "compiled") -> dict:
    ratio = lambda a, b: row[a] / row[b] if a in row and b in row else None  # noqa: E731
    row.update(gemm_peak_gflops=peak_gflops, R_batch=ratio("ms_loop", f"ms_{slab}_off"),
               R_batch_trace=ratio("ms_loop", f"ms_{slab}_on"),
               R_vmap=ratio("ms_vmap", f"ms_{slab}_off"))
    if f"ms_{slab}_on" in row:
        row["gflops_trace"] = row["gflop_per_step"] / row[f"ms_{slab}_on"] * 1e3
        row["R_flop"] = row["gflops_trace"] / peak_gflops
    return row


def worker(args) -> dict:
    """One thread count in its own process: {width: row}, or (--compile-only) only the
    compiled variants' first steps, against whatever the inductor cache holds."""
    torch.set_num_threads(args.worker)
    device, out = torch.device("cpu"), {}
    if args.compile_only:
        compiled = {k: v for k, v in VARIANTS.items() if v[1] is not None}
        for width in args.widths:
            torch._dynamo.reset()
            build_runners(args, width, device, compiled, 1 + WARMUP,
                          out.setdefault(str(width), {}), "warm")
        return out
    peak = gemm_peak_gflops(device)
    for width in args.widths:
        out[str(width)] = {"threads": args.worker,
                           **add_ratios(measure_width(args, width, device), peak)}
        print(f"[threads {args.worker}] width {width} done", flush=True)
    return out


def measure_threads(args, threads: int) -> list[dict]:
    """Cold: a fresh process of this script on an empty inductor cache; warm: a second
    one (--compile-only) on that cache. Threads are set before torch starts."""
    cache = Path(tempfile.mkdtemp(prefix="bench_engine_"))
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, str(Path(__file__).resolve()), *args.argv, "--worker", str(threads),
           "--out", str(cache / "out.json")]  # the last --out wins
    results = []
    try:
        for extra in ([], ["--compile-only"]):
            subprocess.run(cmd + extra, env=env, check=True)
            results.append(json.loads((cache / "out.json").read_text()))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return [{**row, **results[1][width]} for width, row in results[0].items()]


COLUMNS = dict(threads="threads", width="width", eager="ms_eager_off", eager_tr="ms_eager_on",
               comp="ms_compiled_off", comp_tr="ms_compiled_on", loop="ms_loop", vmap="ms_vmap",
               R_batch="R_batch", R_batch_tr="R_batch_trace", R_vmap="R_vmap", R_flop="R_flop",
               cold_s="compile_cold_s_compiled_off", warm_s="compile_warm_s_compiled_off",
               cold_tr_s="compile_cold_s_compiled_on", warm_tr_s="compile_warm_s_compiled_on")


def print_table(rows, columns=COLUMNS) -> None:
    """ms/step, ratios, compile seconds (cold/warm); _tr: trace on."""
    print(" ".join(f"{c:>10}" for c in columns))
    for row in rows:
        print(" ".join(f"{v:>10.3f}" if isinstance(v, float) else f"{str(v):>10}"
                       for v in (row.get(c) for c in columns.values())))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("steps", 50), ("repeats", 3), ("members", 30), ("depth", 3),
                          ("batch", 128)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 512])
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 2")
    parser.add_argument("--arch", default="ln")
    parser.add_argument("--quick", action="store_true", help="smoke test: width 64, 3 steps")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "engine.json"))
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--compile-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.steps, args.widths, args.threads = 3, [64], args.threads or [1]
    args.threads = args.threads or [1, 2]
    if args.worker is not None:
        return Path(args.out).write_text(json.dumps(worker(args)))
    info = {"cpu": provenance.device_name("cpu"), "cpu_count": os.cpu_count(),
            "threads": args.threads, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_start": os.getloadavg()}
    rows = [row for threads in args.threads for row in measure_threads(args, threads)]
    print_table(rows)
    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "compile_only")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": {**info, "loadavg_end": os.getloadavg()},
                                          "settings": settings, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
