"""Additive angular margin (AAM) softmax loss with a schedulable margin.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class ArcMarginLoss(nn.Module):
    """Additive angular margin (AAM) softmax cross-entropy on cosines.

    The target logit becomes ``cos(theta + m)`` where ``cos(theta) >
    cos(pi - m)``, else ``cos(theta) - (1 + cos(pi - m))`` (3D-Speaker's
    ``ArcMarginLoss``, easy_margin False), all logits are scaled, and the
    cross-entropy is averaged over the batch. The margin can be changed
    during training (see :class:`MarginSchedule`).

    Arguments
    ---------
    scale : float
        Logit scale ``s``.
    margin : float
        Initial margin ``m`` in radians.
    easy_margin : bool
        Use ``cos(theta + m)`` only where ``cos(theta) > 0``.

    Example
    -------
    >>> loss = ArcMarginLoss(scale=32, margin=0.2)
    >>> cosines = torch.tensor([[[0.3, 0.2, -0.2]]])
    >>> round(float(loss(cosines, torch.tensor([[0]]))), 3)
    3.102
    >>> loss.set_margin(0.0)
    >>> round(float(loss(cosines, torch.tensor([[0]]))), 3)
    0.04
    """

    def __init__(
        self, scale: float = 32.0, margin: float = 0.0, easy_margin: bool = False
    ) -> None:
        super().__init__()
        self.scale = scale
        self.easy_margin = easy_margin
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        """Changes the angular margin."""
        self.margin = float(margin)
        self.cos_m = math.cos(self.margin)
        self.sin_m = math.sin(self.margin)
        self.threshold = math.cos(math.pi - self.margin)
        self.fallback = 1.0 + math.cos(math.pi - self.margin)

    def forward(
        self,
        cosines: torch.Tensor,
        targets: torch.Tensor,
        length: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Computes the loss.

        Arguments
        ---------
        cosines : torch.Tensor
            (batch, classes) or (batch, 1, classes) cosine similarities.
        targets : torch.Tensor
            (batch,) or (batch, 1) class indices.
        length : torch.Tensor, optional
            Ignored (SpeechBrain's loss signature).

        Returns
        -------
        torch.Tensor
            Mean cross-entropy.
        """
        del length
        cosines = cosines.reshape(cosines.shape[0], -1).float()
        targets = targets.reshape(-1).long()
        if targets.shape[0] != cosines.shape[0]:
            raise ValueError(
                f"ArcMarginLoss: {targets.shape[0]} targets for "
                f"{cosines.shape[0]} outputs"
            )
        sine = torch.sqrt((1.0 - cosines.pow(2)).clamp(min=0.0))
        phi = cosines * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosines > 0, phi, cosines)
        else:
            phi = torch.where(cosines > self.threshold, phi, cosines - self.fallback)
        one_hot = F.one_hot(targets, cosines.shape[1]).to(cosines.dtype)
        logits = self.scale * (one_hot * phi + (1.0 - one_hot) * cosines)
        return F.cross_entropy(logits, targets)
