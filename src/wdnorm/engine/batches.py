"""Initialisation and minibatch order: what a seed fixes."""

from __future__ import annotations

import torch


def batch_generator(seed: int) -> torch.Generator:
    """The minibatch-order stream of a seed: separate from the init stream so that the
    order does not depend on how many random numbers the initialisation drew."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(10_007 * seed + 1)
    return gen


def epoch_batches(gen: torch.Generator, n: int, batch_size: int) -> torch.Tensor:
    """``[n_batches, batch_size]`` indices of one epoch (last partial batch dropped, so
    every step has the same shape and the same per-sample weight)."""
    n_batches = n // batch_size
    return torch.randperm(n, generator=gen)[: n_batches * batch_size].view(n_batches, batch_size)


def init_state(cfg, seed: int) -> dict[str, torch.Tensor]:
    """PyTorch's default initialisation of the architecture under ``seed``: members that
    share a seed share their initial weights (and their batch order)."""
    torch.manual_seed(seed)
    return cfg.build_model().state_dict()
