"""Deprecated: :func:`embed_long`, long recordings from their features.

A recording longer than ``window_seconds`` has one implementation, the one
every command runs:
:meth:`~speechbrain_eres2net.inference.embedder.SpeakerEmbedder.embed_stream`
(through ``embed_file``, ``embed_recording`` and ``embed_files``), which
decodes the file block by block and combines its windows as
:mod:`.streaming` says. :func:`embed_long`, which took features already
computed, now places and combines its windows by those same rules
(:func:`~.streaming.window_starts`, :class:`~.streaming.WindowMean`) and
will be removed in the next release.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
from torch import nn

from .streaming import WindowMean, window_starts

__all__ = ["embed_long", "window_starts"]


def embed_long(
    model: nn.Module,
    feats: torch.Tensor,
    window_frames: int = 1000,
    hop_frames: Optional[int] = None,
    batch_size: int = 4,
    normalize: bool = True,
) -> torch.Tensor:
    """Deprecated: embed the file with :class:`SpeakerEmbedder` instead.

    The features are cut into windows of ``window_frames`` every
    ``hop_frames`` (default: no overlap), placed by :func:`window_starts`,
    embedded ``batch_size`` at a time, and combined as
    :meth:`SpeakerEmbedder.embed_stream` combines its windows: the mean
    direction of the window embeddings scaled to their mean norm
    (:class:`~.streaming.WindowMean`).

    Arguments
    ---------
    model : torch.nn.Module
        An embedding model called as ``model(x)`` -> (batch, 1, emb).
    feats : torch.Tensor
        (time, feat_dim) or (1, time, feat_dim) features of one recording.
    window_frames : int
        Frames per window.
    hop_frames : int, optional
        Frames between window starts; None means ``window_frames``.
    batch_size : int
        Windows per forward pass.
    normalize : bool
        Must be True: the mean of raw window embeddings is gone.

    Returns
    -------
    torch.Tensor
        (1, 1, emb) embedding of the recording.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     emb = embed_long(model, torch.randn(250, 80), window_frames=100)
    >>> emb.shape, caught[0].category.__name__
    (torch.Size([1, 1, 192]), 'DeprecationWarning')
    """
    warnings.warn(
        "embed_long is deprecated and will be removed in the next release: "
        "SpeakerEmbedder.embed_file (or embed_stream) embeds a long recording "
        "window by window, as eres2net embed does",
        DeprecationWarning,
        stacklevel=2,
    )
    if feats.dim() == 3 and feats.shape[0] == 1:
        feats = feats[0]
    if feats.dim() != 2:
        raise ValueError(
            f"embed_long: feats must be (time, feat_dim) or (1, time, feat_dim), "
            f"got {tuple(feats.shape)}"
        )
    if batch_size < 1:
        raise ValueError(f"embed_long: batch_size must be >= 1, got {batch_size}")
    if not normalize:
        raise ValueError(
            "embed_long: normalize=False is no longer supported; windows are "
            "combined as SpeakerEmbedder.embed_stream combines them (mean "
            "direction x mean norm)"
        )
    hop = window_frames if hop_frames is None else hop_frames
    starts = window_starts(feats.shape[0], window_frames, hop)
    length = min(window_frames, feats.shape[0])
    mean = WindowMean()
    for i in range(0, len(starts), batch_size):
        batch = torch.stack([feats[s : s + length] for s in starts[i : i + batch_size]])
        for embedding in model(batch).squeeze(1):
            mean.add(embedding)
    return mean.result().view(1, 1, -1)
