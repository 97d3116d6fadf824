"""Temporal statistics pooling for 2-D (channel, frequency, time) maps.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .masking import relative_to_frames, time_mask


class TemporalStatsPool(nn.Module):
    """Mean and standard deviation over time of every (channel, freq) bin.

    This is the TSTP pooling of ERes2Net: the unbiased (N - 1) variance,
    ``std = sqrt(var + eps)``, each statistic flattened channel-major, means
    before standard deviations. With ``lengths`` only the valid frames of
    each utterance enter the statistics, so padding a batch does not change
    an utterance's result (the official implementation has no such
    argument). At least two valid frames are needed for a finite std.

    Arguments
    ---------
    eps : float
        Added to the variance before the square root.

    Example
    -------
    >>> pool = TemporalStatsPool()
    >>> x = torch.randn(2, 4, 3, 50)
    >>> pool(x).shape
    torch.Size([2, 24])
    >>> torch.allclose(pool(x[:1, ..., :30]), pool(x, torch.tensor([0.6, 1.0]))[:1])
    True
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(
        self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Pools a (batch, channels, freq, time) map.

        Arguments
        ---------
        x : torch.Tensor
            (batch, channels, freq, time) feature map.
        lengths : torch.Tensor, optional
            (batch,) relative lengths; None means every frame is valid.

        Returns
        -------
        torch.Tensor
            (batch, 2 * channels * freq): means then standard deviations.
        """
        if lengths is None:
            mean = x.mean(dim=-1)
            var = x.var(dim=-1)
        else:
            frames = relative_to_frames(lengths, x.shape[-1])
            mask = time_mask(frames, x.shape[-1], x.dtype)
            count = frames.to(x.dtype)[:, None, None]
            mean = (x * mask).sum(dim=-1) / count
            centred = (x - mean.unsqueeze(-1)) * mask
            var = centred.pow(2).sum(dim=-1) / (count - 1)
        std = torch.sqrt(var + self.eps)
        return torch.cat((mean.flatten(1), std.flatten(1)), dim=1)
