"""What any embedding lobe takes and gives, found by running it.

Code after the lobe (batching, export, the model card, ONNX) must not read
attributes of one model class. A model may declare ``min_frames``; everything
else is measured: the feature size from the front end's output, the
embedding size from a forward pass, and the fewest frames the model turns
into a finite embedding.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

# Longest input tried when a model does not declare its minimum.
_MAX_PROBE_FRAMES = 512


@dataclass(frozen=True)
class ModelShape:
    """Input and output sizes of an embedding model with its front end."""

    feat_dim: int
    embedding_size: int
    min_frames: int


def _embeds(model: nn.Module, frames: int, feat_dim: int, device) -> bool:
    """Whether the model turns ``frames`` frames into a finite embedding."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(1, frames, feat_dim, generator=gen).to(device)
    try:
        out = model(feats, torch.ones(1, device=device))
    except (RuntimeError, ValueError):
        # Too short for a convolution or pooling: that is what we probe for.
        return False
    return bool(torch.isfinite(out).all())


@torch.no_grad()
def probe_model(
    compute_features: nn.Module,
    embedding_model: nn.Module,
    sample_rate: int = 16000,
    device: Optional[torch.device] = None,
) -> ModelShape:
    """Feature size, embedding size and fewest frames of a model.

    Arguments
    ---------
    compute_features : nn.Module
        Waveforms (batch, samples) -> features (batch, frames, feats).
    embedding_model : nn.Module
        ``(feats, lengths) -> (batch, 1, emb)`` in eval mode.
    sample_rate : int
        Rate of the waveforms the front end takes.
    device : torch.device, optional
        Where the modules live (default: CPU).

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> ecapa = ECAPA_TDNN(40, channels=[16, 16, 16, 16, 48], lin_neurons=24)
    >>> probe_model(Fbank(n_mels=40), ecapa.eval())
    ModelShape(feat_dim=40, embedding_size=24, min_frames=5)
    """
    device = device or torch.device("cpu")
    feats = compute_features(torch.zeros(1, sample_rate, device=device))
    feat_dim = int(feats.shape[-1])
    declared = getattr(embedding_model, "min_frames", None)
    if declared is not None:
        min_frames = int(declared)
    else:
        low, high = 1, 1
        while not _embeds(embedding_model, high, feat_dim, device):
            if high >= _MAX_PROBE_FRAMES:
                raise ValueError(
                    f"{type(embedding_model).__name__} gives no finite embedding "
                    f"for inputs of up to {_MAX_PROBE_FRAMES} frames"
                )
            low, high = high + 1, high * 2
        while low < high:
            mid = (low + high) // 2
            if _embeds(embedding_model, mid, feat_dim, device):
                high = mid
            else:
                low = mid + 1
        min_frames = high
    probe = torch.randn(1, max(min_frames, 100), feat_dim, device=device)
    out = embedding_model(probe, torch.ones(1, device=device))
    return ModelShape(feat_dim, int(out.shape[-1]), min_frames)


def _frames(compute_features: nn.Module, samples: int, device) -> int:
    """Feature frames the front end gives for a waveform of this length."""
    with torch.no_grad():
        probe = torch.zeros(1, samples, device=device)
        try:
            return int(compute_features(probe).shape[1])
        except (ValueError, RuntimeError):
            return 0  # shorter than one analysis window


def fewest_samples(
    compute_features: nn.Module,
    min_frames: int,
    sample_rate: int = 16000,
    device: Optional[torch.device] = None,
) -> int:
    """Smallest waveform that gives ``min_frames`` frames (bisection).

    Example
    -------
    >>> from speechbrain_eres2net import KaldiFbank
    >>> fewest_samples(KaldiFbank(), 9)  # 9 frames of 25 ms windows every 10 ms
    1680
    """
    low, high = 1, sample_rate
    while _frames(compute_features, high, device) < min_frames:
        high *= 2
    while low < high:
        mid = (low + high) // 2
        if _frames(compute_features, mid, device) >= min_frames:
            high = mid
        else:
            low = mid + 1
    return low
