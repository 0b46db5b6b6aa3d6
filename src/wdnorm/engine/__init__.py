"""The slab engine: every run of one architecture -- the weight-decay grid, its
LR-schedule equivalents and the norm-matched mimic -- trained at once as one batched
model (``docs/engine.md``)."""

from .batches import batch_generator, epoch_batches, init_state
from .evaluate import evaluate, recalibrate_batchnorm
from .interrupt import StopRequest, StopRequested, on_signals
from .schedules import k_sequence, member_schedules
from .spec import KINDS, Member, OptimiserConfig, SlabConfig
from .step import COMPILE_CHOICES, use_inductor_cache
from .trainer import Checkpointing, SlabResult, train_slab

__all__ = ["COMPILE_CHOICES", "Checkpointing", "KINDS", "Member",
           "OptimiserConfig", "SlabConfig", "SlabResult", "StopRequest", "StopRequested", "batch_generator", "epoch_batches",
           "evaluate", "init_state", "on_signals", "k_sequence", "member_schedules", "recalibrate_batchnorm",
           "train_slab", "use_inductor_cache"]
