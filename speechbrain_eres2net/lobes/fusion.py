"""Feature-fusion operators used by ERes2Net.

ERes2Net fuses two feature maps of equal shape in two places: between the
channel groups of a Res2Net block (local feature fusion, LFF) and between
the outputs of successive stages (global feature fusion, GFF). Both use the
same operator, so it lives here once and is chosen by name with
:func:`make_fusion`. Besides the paper's attentional feature fusion
(:class:`AFF`), the plain sum of Res2Net and a concat + 1x1 projection are
provided so that the paper's ablations can be rerun from YAML.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import torch
from torch import nn

FUSION_KINDS = ("aff", "sum", "concat")


class AFF(nn.Module):
    """Attentional feature fusion of ERes2Net (arXiv 2305.12838, Sec. 2.2).

    A per-position gate ``g = 1 + tanh(a)`` in (0, 2) is predicted from both
    inputs and mixes them as ``x * g + y * (2 - g)``. With zero logits this
    is exactly ``x + y``, i.e. it starts from Res2Net's summation and learns
    where to deviate from it. Unlike the original AFF of Dai et al. there is
    no pooled global-context branch.

    Arguments
    ---------
    channels : int
        Channels C of each input.
    reduction : int
        Bottleneck ratio r: the attention branch has ``C // r`` channels.

    Example
    -------
    >>> fuse = AFF(channels=16)
    >>> x, y = torch.randn(2, 16, 8, 20), torch.randn(2, 16, 8, 20)
    >>> fuse(x, y).shape
    torch.Size([2, 16, 8, 20])
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(
                f"AFF: channels ({channels}) // reduction ({reduction}) must be >= 1"
            )
        self.attention = nn.Sequential(
            nn.Conv2d(2 * channels, hidden, kernel_size=1),
            nn.BatchNorm2d(hidden),
            nn.SiLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Fuses ``x`` (the deeper / previous branch) with ``y``.

        Arguments
        ---------
        x : torch.Tensor
            (batch, C, freq, time); it receives the gate ``g``.
        y : torch.Tensor
            Same shape; it receives ``2 - g``.

        Returns
        -------
        torch.Tensor
            The fused map, same shape as the inputs.
        """
        logits = self.attention(torch.cat((x, y), dim=1))
        if torch.is_grad_enabled() and not torch.jit.is_tracing():
            return _GatedMix.apply(x, y, logits)
        return _gated_mix(x, y, torch.tanh(logits))


def _gated_mix(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x * g + y * (2 - g)`` with ``g = 1 + t``, in the official op order."""
    gate = 1.0 + t
    return x * gate + y * (2.0 - gate)


class _GatedMix(torch.autograd.Function):
    """The AFF mix with a lean backward, for training memory.

    Plain autograd keeps ``g``, ``2 - g`` and ``tanh(a)`` for backward: three
    feature maps per fusion on top of ``x`` and ``y``, which the network
    keeps anyway. This keeps only ``t = tanh(a)``. The forward is the same
    expression as the official one (bit-identical); the backward uses
    ``g = 1 + t`` to compute the three gradients in fewer passes than
    autograd, equal to its gradients up to float rounding.
    """

    @staticmethod
    def forward(ctx, x, y, logits):  # noqa: D102
        t = torch.tanh(logits)
        ctx.save_for_backward(x, y, t)
        return _gated_mix(x, y, t)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        x, y, t = ctx.saved_tensors
        grad_t = grad * t
        grad_logits = torch.ops.aten.tanh_backward(grad * (x - y), t)
        return grad + grad_t, grad - grad_t, grad_logits


class SumFusion(nn.Module):
    """Plain element-wise sum, the fusion of the original Res2Net.

    Example
    -------
    >>> SumFusion()(torch.ones(1, 2, 3, 4), torch.ones(1, 2, 3, 4)).sum().item()
    48.0
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Returns ``x + y``."""
        return x + y


class ConcatFusion(nn.Module):
    """Concatenation followed by a 1x1 projection back to C channels and BN.

    Arguments
    ---------
    channels : int
        Channels C of each input and of the output.

    Example
    -------
    >>> fuse = ConcatFusion(8)
    >>> fuse(torch.randn(2, 8, 4, 5), torch.randn(2, 8, 4, 5)).shape
    torch.Size([2, 8, 4, 5])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(2 * channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Projects ``concat(x, y)`` to C channels."""
        return self.project(torch.cat((x, y), dim=1))


def make_fusion(kind: str, channels: int) -> nn.Module:
    """Builds the fusion operator named ``kind`` for ``channels`` channels.

    Arguments
    ---------
    kind : str
        One of ``"aff"`` (the paper), ``"sum"`` (plain Res2Net) or
        ``"concat"`` (concat + 1x1 conv + BN).
    channels : int
        Channels of each input.

    Returns
    -------
    torch.nn.Module
        A module called as ``fuse(x, y)``.

    Example
    -------
    >>> type(make_fusion("sum", 4)).__name__
    'SumFusion'
    """
    if kind == "aff":
        return AFF(channels)
    if kind == "sum":
        return SumFusion()
    if kind == "concat":
        return ConcatFusion(channels)
    raise ValueError(f"fusion must be one of {FUSION_KINDS}, got {kind!r}")
