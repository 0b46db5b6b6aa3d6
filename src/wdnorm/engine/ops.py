"""``models.Ops`` over parameters stacked along a leading member axis M.

The norms are written out (not ``F.layer_norm``/``F.batch_norm``) because every member
has its own ε: the exact LR-schedule equivalents run their norms at ε/k_t² (docs/math.md).
Under ``torch.compile`` the written-out norm fuses into one kernel.
"""

from __future__ import annotations

import torch


def member_view(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a [M] tensor so it broadcasts against a stacked tensor."""
    return x.view(-1, *([1] * (like.dim() - 1)))


class StackedOps:
    """``mode``: "train" (batch statistics; BN running statistics updated into
    ``new_buffers``), "eval" (BN running statistics) or "collect" (eval, and every
    norm's pre-norm variance over ε recorded in ``stats``: the ε-floor monitor)."""

    def __init__(self, params: dict, buffers: dict, eps: torch.Tensor, mode: str,
                 batch_norm: bool, bn_momentum: float = 0.1):
        self.p, self.buffers, self.eps, self.mode = params, buffers, eps, mode
        self.batch_norm, self.bn_momentum = batch_norm, bn_momentum
        self.new_buffers: dict[str, torch.Tensor] = {}
        self.stats: dict[str, torch.Tensor] = {}

    relu = staticmethod(torch.relu)

    def linear(self, h, name):
        w = self.p[name]  # (W | b): [M, out, in + 1]
        if h.dim() == 2:  # the same input for every member (evaluation)
            return torch.matmul(h, w[..., :-1].transpose(1, 2)) + w[..., -1].unsqueeze(1)
        return torch.baddbmm(w[..., -1].unsqueeze(1), h, w[..., :-1].transpose(1, 2))

    def norm(self, h, name):
        g, b = self.p[f"{name}.weight"].unsqueeze(1), self.p[f"{name}.bias"].unsqueeze(1)
        eps = member_view(self.eps, h)
        if self.batch_norm:
            mean, var = self._bn_stats(h, name)
        else:
            mean = h.mean(-1, keepdim=True)
            var = (h - mean).square().mean(-1, keepdim=True)
        if self.mode == "collect":
            self.stats[name] = self._var_ratio(h, var, eps)
        return (h - mean) * torch.rsqrt(var + eps) * g + b

    def _bn_stats(self, h, name):
        """Batch statistics over dim 1 in training (running statistics updated as
        ``torch.nn.BatchNorm1d`` does: unbiased variance), the running ones otherwise."""
        rm, rv = self.buffers[f"{name}.running_mean"], self.buffers[f"{name}.running_var"]
        if self.mode != "train":
            return rm.unsqueeze(1), rv.unsqueeze(1)
        mean = h.mean(1, keepdim=True)
        var = (h - mean).square().mean(1, keepdim=True)
        n, mom = h.shape[1], self.bn_momentum
        self.new_buffers[f"{name}.running_mean"] = torch.lerp(rm, mean.squeeze(1), mom)
        self.new_buffers[f"{name}.running_var"] = torch.lerp(
            rv, var.squeeze(1) * (n / max(n - 1, 1)), mom)
        return mean, var

    def _var_ratio(self, h, var, eps):
        """Median pre-norm variance over ε per member: over samples (LayerNorm: each
        sample's variance across features) or features (BatchNorm: the variance of each
        feature across the data)."""
        if self.batch_norm:
            v = (h - h.mean(1, keepdim=True)).square().mean(1)      # [M, d]
        else:
            v = var.squeeze(-1)                                      # [M, n]
        return v.median(dim=1).values / eps.view(-1)
