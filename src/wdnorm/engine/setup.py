"""A slab's initial state and its per-member hyper-parameters, built once before training."""

from __future__ import annotations

import torch

from .. import models
from . import schedules
from .batches import batch_generator, init_state
from .spec import Member, SlabConfig
from .state import SlabState
from .step import StepPlan


class Hyper:
    """Per-member hyper-parameters as tensors, and their value at each step.

    ``lr_base`` [M, L]: each linear layer's LR; ``group`` [M, L]: the layers an
    equivalent rescales (the architecture's group layers of exact/schedule members);
    weight decay per leaf [M] (0 on the group layers of every non-grid member)."""

    def __init__(self, cfg: SlabConfig, members: list[Member], leaf_names, linear_names,
                 decayed: set, device, dtype):
        m, n_layers = len(members), len(linear_names)
        as_t = lambda v: torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
        group_layers = set(cfg.record.group_layers(cfg.depth))
        in_group = [[i in group_layers for i in range(n_layers)] for _ in members]
        kinds = [mem.kind for mem in members]
        self.lr_other = as_t([mem.lr for mem in members])
        self.lr_base = self.lr_other.unsqueeze(1).expand(m, n_layers).contiguous()
        self.group = torch.tensor([[g and k in ("exact", "schedule") for g in row]
                                   for row, k in zip(in_group, kinds)], device=device)
        self.mimic_mask = torch.tensor([[g and k == "mimic" for g in row]
                                        for row, k in zip(in_group, kinds)], device=device)
        ids = [mem.run_id for mem in members]
        self.mimic_ref = torch.tensor([ids.index(mem.reference.run_id) if mem.kind == "mimic"
                                       else i for i, mem in enumerate(members)], device=device)
        self.wd = {}
        for name in leaf_names:
            layer = linear_names.index(name) if name in linear_names else None
            self.wd[name] = as_t([
                mem.weight_decay if name in decayed and (
                    mem.kind == "grid" or layer is None or layer not in group_layers) else 0.0
                for mem in members])
        self.eps_base = as_t([cfg.norm_eps] * m)
        self.stream_of = torch.tensor(
            [sorted({mm.seed for mm in members}).index(mem.seed) for mem in members],
            device=device)
        self.device, self.dtype = device, dtype
        self.lr_layer = self.lr_steps = self.eps = self.t = None

    def set_schedules(self, sched) -> None:
        """Every step's layer LRs [T, M, L], other LRs [T, M] and ε [T+1, M] from the
        slab's :class:`~wdnorm.engine.schedules.Schedules`."""
        as64 = lambda a: torch.as_tensor(a, dtype=torch.float64, device=self.device)  # noqa: E731
        f, s = as64(sched.group_factor), as64(sched.scale)
        base = self.lr_base.double().unsqueeze(0)
        lr = torch.where(self.group.unsqueeze(0), base * f.unsqueeze(2),
                         base * s.view(-1, 1, 1))
        self.lr_layer = lr.to(self.dtype)
        self.lr_steps = (self.lr_other.double().unsqueeze(0) * s.view(-1, 1)).to(self.dtype)
        self.eps = (self.eps_base.double() * as64(sched.eps_factor)).to(self.dtype)
        # Adam's step count as tensors made once: a tensor made per step from a python
        # number would wait for the GPU every step
        self.t = torch.arange(1, len(sched.scale) + 1, dtype=self.dtype, device=self.device)

    def eps_at(self, step: int) -> torch.Tensor:
        return self.eps[step]

    def at(self, step: int) -> dict:
        return {"lr_layer": self.lr_layer[step], "lr_other": self.lr_steps[step], "wd": self.wd,
                "eps": self.eps[step], "mimic_ref": self.mimic_ref,
                "mimic_mask": self.mimic_mask,
                "t": self.t[step]}


def prepare_slab(cfg: SlabConfig, members: list[Member], device, dtype, total: int):
    """(SlabState, Hyper with its schedules set, StepPlan, Schedules): everything a slab
    needs before its first step (the trainer and the benchmark start here)."""
    sched = schedules.member_schedules(
        [m.kind for m in members], [m.lr for m in members], [m.weight_decay for m in members],
        cfg.optimiser.hyper["momentum"], total,
        schedules.lr_scale(cfg.lr_schedule, total, cfg.lr_decay_fraction))
    st, hyper, plan = initial_state(cfg, members, device, dtype, total)
    hyper.set_schedules(sched)
    return st, hyper, plan, sched


def initial_state(cfg: SlabConfig, members: list[Member], device, dtype, total: int):
    """(SlabState, Hyper, StepPlan) of a slab before its first step."""
    inits = [init_state(cfg, mem.seed) for mem in members]
    template = cfg.build_model()
    param_names = [n for n, _ in template.named_parameters()]
    buffer_names = [n for n, _ in template.named_buffers()
                    if not n.endswith("num_batches_tracked")]
    linear_names = [f"linears.{i}" for i in range(cfg.record.n_linear(cfg.depth))]

    def stacked(name):
        return torch.stack([s[name] for s in inits]).to(device, dtype)

    params = {n: torch.cat([stacked(f"{n}.weight"), stacked(f"{n}.bias").unsqueeze(-1)], -1)
              for n in linear_names}
    params.update({n: stacked(n) for n in param_names if not n.startswith("linears.")})
    decayed_params = set(models.decayed_names(
        models.parameter_groups(cfg.arch, cfg.depth, param_names), cfg.decay_scope))
    decayed = {n for n in params if n in decayed_params or f"{n}.weight" in decayed_params}
    hyper = Hyper(cfg, members, list(params), linear_names, decayed, device, dtype)
    n_state = len(cfg.optimiser.record.state)
    tensors = dict(params=params,
                   opt_state={n: tuple(torch.zeros_like(p) for _ in range(n_state))
                              for n, p in params.items()},
                   buffers={n: stacked(n) for n in buffer_names},
                   alive=torch.ones(len(members), dtype=torch.bool, device=device))
    m, n_layers = len(members), len(linear_names)
    trace = {"loss": torch.zeros(total, m, device=device, dtype=dtype)}
    if cfg.trace:
        trace.update({k: torch.zeros(total, m, n_layers, device=device, dtype=dtype)
                      for k in ("sq_norm", "grad_sq_norm", "cos_wg", "angle", "lr")})
    seeds = sorted({mem.seed for mem in members})
    st = SlabState(tensors=tensors, gens=[batch_generator(s) for s in seeds], trace=trace,
                   history={k: [] for k in ("epoch", "step", "train_loss", "train_acc",
                                            "val_loss", "val_acc", "test_loss", "test_acc",
                                            "var_ratio")},
                   diverged_step=torch.full((m,), -1, dtype=torch.long, device=device))
    o = cfg.optimiser
    plan = StepPlan(arch=cfg.arch, depth=cfg.depth, n_classes=cfg.n_classes,
                    optimiser=o.record, hyper=dict(o.hyper), bn_momentum=cfg.bn_momentum,
                    linear_names=tuple(linear_names), batch_norm=cfg.record.norm == "batch",
                    trace=cfg.trace, mimic=any(m.kind == "mimic" for m in members))

    return st, hyper, plan
