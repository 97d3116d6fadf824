"""Relative lengths, frame counts and time masks for padded batches.

SpeechBrain passes the length of each padded utterance as a fraction of the
longest one. ERes2Net needs the exact number of valid frames at each of its
time resolutions to zero padding before every 3x3 convolution and to pool
over valid frames only; these helpers convert between the two.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import torch


def relative_to_frames(lengths: torch.Tensor, max_frames: int) -> torch.Tensor:
    """Converts SpeechBrain relative lengths to integer frame counts.

    ``round`` rather than ``ceil`` so that a length computed as ``n / T``
    maps back to exactly ``n`` despite float error in either direction.

    Arguments
    ---------
    lengths : torch.Tensor
        (batch,) relative lengths in (0, 1].
    max_frames : int
        Padded length T of the batch.

    Returns
    -------
    torch.Tensor
        (batch,) int64 frame counts in [1, T].

    Example
    -------
    >>> relative_to_frames(torch.tensor([1.0, 37 / 100]), 100)
    tensor([100,  37])
    """
    frames = torch.round(lengths.float() * max_frames).long()
    return frames.clamp(min=1, max=max_frames)


def halve_frames(frames: torch.Tensor) -> torch.Tensor:
    """Valid frames after a stride-2 layer: ``ceil(n / 2)``.

    Holds for a 1x1 convolution without padding and for a 3x3 one with
    padding 1, the two kinds of strided layer in ERes2Net.

    Example
    -------
    >>> halve_frames(torch.tensor([9, 10]))
    tensor([5, 5])
    """
    return torch.div(frames + 1, 2, rounding_mode="floor")


def time_mask(
    frames: torch.Tensor, max_frames: int, dtype: torch.dtype
) -> torch.Tensor:
    """A (batch, 1, 1, time) mask, 1 on valid frames and 0 on padding.

    SpeechBrain's ``length_to_mask``, shaped for 2-D feature maps. It is
    imported on first use: ``speechbrain.dataio`` takes seconds to import,
    and ``import speechbrain_eres2net`` stays cheap without it.

    Arguments
    ---------
    frames : torch.Tensor
        (batch,) valid frame counts.
    max_frames : int
        Time size of the feature map to mask.
    dtype : torch.dtype
        Dtype of the mask (that of the feature map).

    Returns
    -------
    torch.Tensor
        Mask broadcastable to (batch, channels, freq, time).

    Example
    -------
    >>> time_mask(torch.tensor([2, 3]), 3, torch.float32).flatten(1)
    tensor([[1., 1., 0.],
            [1., 1., 1.]])
    """
    from speechbrain.dataio.dataio import length_to_mask

    mask = length_to_mask(frames, max_len=max_frames, dtype=dtype)
    return mask[:, None, None, :]
