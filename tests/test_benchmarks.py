"""The engine benchmark measures what the trainer runs: the settings it touches must be
the trainer's, or its numbers describe another program."""

import importlib.util
from pathlib import Path

import torch

BENCH = Path(__file__).parents[1] / "benchmarks" / "bench_engine.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_engine", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gemm_peak_leaves_the_cpu_precision_flags_alone():
    """The TF32 flags are part of inductor's cache key; the trainer never sets them on a
    CPU, and when the benchmark did, every one of its 'warm' compiles missed the cache
    (9-17 s instead of 3 s)."""
    bench = load_bench()
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.fp32_precision,
              torch.backends.cuda.matmul.allow_tf32)
    assert bench.gemm_peak_gflops(torch.device("cpu"), n=32, repeats=1) > 0
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.fp32_precision,
            torch.backends.cuda.matmul.allow_tf32) == before
