"""Long recordings in fixed-size windows: memory bounded whatever the duration.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def window_starts(num_frames: int, window: int, hop: int) -> list[int]:
    """First frames of the equal-length windows that cover a recording.

    Windows start every ``hop`` frames; one more window ending exactly at
    the last frame is added when the regular ones leave frames uncovered,
    so every window has ``window`` frames (a single window of
    ``num_frames`` when the recording is shorter).

    Example
    -------
    >>> window_starts(2500, 1000, 1000)
    [0, 1000, 1500]
    >>> window_starts(800, 1000, 500)
    [0]
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window ({window}) and hop ({hop}) must be >= 1")
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, hop))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


def embed_long(
    model: nn.Module,
    feats: torch.Tensor,
    window_frames: int = 1000,
    hop_frames: Optional[int] = None,
    batch_size: int = 4,
    normalize: bool = True,
) -> torch.Tensor:
    """Embeds a recording of any length with bounded memory.

    The features are cut into windows of ``window_frames`` (10 s by
    default) every ``hop_frames`` (default: no overlap), placed by
    :func:`window_starts` so that all windows have the same length and
    every frame is covered. Windows are embedded ``batch_size`` at a time,
    so peak memory depends on ``window_frames * batch_size``, not on the
    duration. The result is the mean of the window embeddings, each L2-
    normalised first when ``normalize`` (so that every window has the same
    say in a cosine score); the mean itself is not normalised.

    Arguments
    ---------
    model : torch.nn.Module
        An embedding model called as ``model(x)`` -> (batch, 1, emb), e.g.
        :class:`ERes2Net` or the result of :func:`optimize_for_inference`.
    feats : torch.Tensor
        (time, feat_dim) or (1, time, feat_dim) features of one recording.
    window_frames : int
        Frames per window.
    hop_frames : int, optional
        Frames between window starts; None means ``window_frames``.
    batch_size : int
        Windows per forward pass.
    normalize : bool
        L2-normalise window embeddings before averaging.

    Returns
    -------
    torch.Tensor
        (1, 1, emb) embedding of the recording.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> feats = torch.randn(250, 80)
    >>> with torch.no_grad():
    ...     emb = embed_long(model, feats, window_frames=100)
    >>> emb.shape
    torch.Size([1, 1, 192])
    """
    if feats.dim() == 3 and feats.shape[0] == 1:
        feats = feats[0]
    if feats.dim() != 2:
        raise ValueError(
            f"embed_long: feats must be (time, feat_dim) or (1, time, feat_dim), "
            f"got {tuple(feats.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"embed_long: batch_size must be >= 1, got {batch_size}")
    hop = window_frames if hop_frames is None else hop_frames
    starts = window_starts(feats.shape[0], window_frames, hop)
    length = min(window_frames, feats.shape[0])
    total = None
    for i in range(0, len(starts), batch_size):
        batch = torch.stack([feats[s : s + length] for s in starts[i : i + batch_size]])
        embeddings = model(batch).squeeze(1).float()
        if normalize:
            embeddings = nn.functional.normalize(embeddings, dim=-1)
        partial = embeddings.sum(dim=0)
        total = partial if total is None else total + partial
    return (total / len(starts)).view(1, 1, -1)
