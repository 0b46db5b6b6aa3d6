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
    """Evaluation ops on batch-major activations [M, n, features] (or a shared [n, D]
    input). ``mode``: "eval" (BatchNorm with its running statistics) or "collect" (eval,
    and every norm's pre-norm variance over ε recorded in ``stats``: the ε-floor
    monitor). Training runs :class:`TrainOps`."""

    def __init__(self, params: dict, buffers: dict, eps: torch.Tensor, mode: str,
                 batch_norm: bool):
        self.p, self.buffers, self.eps, self.mode = params, buffers, eps, mode
        self.batch_norm = batch_norm
        self.stats: dict[str, torch.Tensor] = {}

    relu = staticmethod(torch.relu)

    def linear(self, h, name):
        w = self.p[name]  # (W | b): [M, out, in + 1]
        if h.dim() == 2:  # the same input for every member
            return torch.matmul(h, w[..., :-1].transpose(1, 2)) + w[..., -1].unsqueeze(1)
        return torch.baddbmm(w[..., -1].unsqueeze(1), h, w[..., :-1].transpose(1, 2))

    def norm(self, h, name):
        g, b = self.p[f"{name}.weight"].unsqueeze(1), self.p[f"{name}.bias"].unsqueeze(1)
        eps = member_view(self.eps, h)
        if self.batch_norm:
            mean = self.buffers[f"{name}.running_mean"].unsqueeze(1)
            var = self.buffers[f"{name}.running_var"].unsqueeze(1)
        else:
            mean = h.mean(-1, keepdim=True)
            var = (h - mean).square().mean(-1, keepdim=True)
        if self.mode == "collect":
            self.stats[name] = self._var_ratio(h, var, eps)
        return (h - mean) * torch.rsqrt(var + eps) * g + b

    def _var_ratio(self, h, var, eps):
        """Median pre-norm variance over ε per member: over samples (LayerNorm: each
        sample's variance across features) or features (BatchNorm: the variance of each
        feature across the data)."""
        if self.batch_norm:
            v = (h - h.mean(1, keepdim=True)).square().mean(1)      # [M, d]
        else:
            v = var.squeeze(-1)                                      # [M, n]
        return v.median(dim=1).values / eps.view(-1)


# -- training: feature-major activations, backward written out -------------------------
#
# A training step holds activations feature-major, [M, features, B]. Then every GEMM of
# the backward writes its result in the layout its consumer reads: the gradient of a
# layer's (W | b) comes out as one contiguous [M, out, in+1] tensor, the parameter's own
# layout, so the optimiser update and the trace statistics read it with unit stride.
# (Batch-major activations made autograd emit dW^T, which the update kernel then read
# column by column: 4 of the step's 12 ms at width 64.) The norms' backward is written
# out too: autograd of the written-out forward took 7 passes over the activations.


class _Linear(torch.autograd.Function):
    """W h + b on h [M, in, B] with (W | b) one [M, out, in+1] tensor -> [M, out, B]."""

    @staticmethod
    def forward(wb, h):
        # bmm, then the bias: under torch.compile the add fuses into the next kernel
        return torch.bmm(wb[..., :-1], h) + wb[..., -1:]

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad):
        wb, h = ctx.saved_tensors
        grad_wb = torch.cat([torch.bmm(grad, h.transpose(1, 2)), grad.sum(2, keepdim=True)], 2)
        grad_h = torch.bmm(wb[..., :-1].transpose(1, 2), grad) if ctx.needs_input_grad[1] else None
        return grad_wb, grad_h


class _Norm(torch.autograd.Function):
    """(h - mean) / sqrt(var + ε) · γ + β with the statistics over ``dim`` of h
    [M, W, B] (1: LayerNorm, over the features; 2: BatchNorm, over the batch); γ, β
    [M, W, 1]; ε [M, 1, 1]. Also returns the (biased) mean and variance."""

    @staticmethod
    def forward(h, gamma, beta, eps, dim):
        # two passes, not torch.var_mean: eagerly on CPU that is 15x slower
        mean = h.mean(dim, keepdim=True)
        centred = h - mean
        var = centred.square().mean(dim, keepdim=True)
        return centred * torch.rsqrt(var + eps) * gamma + beta, mean, var

    @staticmethod
    def setup_context(ctx, inputs, output):
        h, gamma, _, eps, ctx.dim = inputs
        _, mean, var = output
        ctx.mark_non_differentiable(mean, var)
        ctx.save_for_backward(h, gamma, mean, var, eps)

    @staticmethod
    def backward(ctx, grad, _grad_mean, _grad_var):
        h, gamma, mean, var, eps = ctx.saved_tensors
        rstd = torch.rsqrt(var + eps)
        xhat = (h - mean) * rstd
        gx = grad * gamma
        grad_h = rstd * (gx - gx.mean(ctx.dim, keepdim=True)
                         - xhat * (gx * xhat).mean(ctx.dim, keepdim=True))
        # γ and β are per feature for both norms: their gradients sum over the batch
        return (grad_h, (grad * xhat).sum(2, keepdim=True), grad.sum(2, keepdim=True),
                None, None)


class TrainOps:
    """``models.Ops`` of a training step on feature-major activations [M, features, B]
    (the input x too: pass ``x.transpose(1, 2)``; the logits come out [M, classes, B]).
    BatchNorm uses batch statistics and puts its updated running statistics (as
    ``torch.nn.BatchNorm1d``: unbiased variance) in ``new_buffers``."""

    def __init__(self, params: dict, buffers: dict, eps: torch.Tensor, batch_norm: bool,
                 bn_momentum: float = 0.1):
        self.p, self.buffers, self.eps = params, buffers, eps
        self.batch_norm, self.bn_momentum = batch_norm, bn_momentum
        self.new_buffers: dict[str, torch.Tensor] = {}

    relu = staticmethod(torch.relu)

    def linear(self, h, name):
        return _Linear.apply(self.p[name], h)

    def norm(self, h, name):
        gamma = self.p[f"{name}.weight"].unsqueeze(-1)
        beta = self.p[f"{name}.bias"].unsqueeze(-1)
        out, mean, var = _Norm.apply(h, gamma, beta, member_view(self.eps, h),
                                     2 if self.batch_norm else 1)
        if self.batch_norm:
            n, mom = h.shape[2], self.bn_momentum
            rm, rv = self.buffers[f"{name}.running_mean"], self.buffers[f"{name}.running_var"]
            self.new_buffers[f"{name}.running_mean"] = torch.lerp(rm, mean.squeeze(2), mom)
            self.new_buffers[f"{name}.running_var"] = torch.lerp(
                rv, var.squeeze(2) * (n / max(n - 1, 1)), mom)
        return out
