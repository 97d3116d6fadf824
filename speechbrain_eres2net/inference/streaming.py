"""Recordings of any length in equal windows: where they fall, how they combine.

A recording longer than ``window_seconds`` is embedded window by window
(:meth:`~speechbrain_eres2net.inference.embedder.SpeakerEmbedder.embed_stream`,
what ``eres2net embed`` and every other command run): its kept audio is cut
into windows of one length, the last one ending at the last sample
(overlapping the one before), by :class:`SampleWindows`; the embeddings of
the windows combine into the recording's by :class:`WindowMean` (mean
direction scaled to the mean norm). :func:`window_starts` places the same
windows over frames.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Sequence
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


class SampleWindows:
    """Cuts consecutive blocks of audio into windows of ``window`` samples.

    :meth:`add` returns the windows a block completes; after the last
    block, :meth:`tail` is the window that ends at the last sample (it
    overlaps the one before, so every window has the same length), or,
    when no window was completed, all the audio there is (shorter than a
    window, possibly empty). Memory is bounded by a window and a block.

    Arguments
    ---------
    window : int
        Samples per window.

    Example
    -------
    >>> windows = SampleWindows(4)
    >>> [w.tolist() for w in windows.add(torch.arange(6.0))]
    [[0.0, 1.0, 2.0, 3.0]]
    >>> windows.add(torch.arange(6.0, 7.0)), windows.tail().tolist()
    ([], [3.0, 4.0, 5.0, 6.0])
    >>> windows.completed
    True
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.pending: list[torch.Tensor] = []  # kept audio not yet in a window
        self.pending_samples = 0
        self.last_window: Optional[torch.Tensor] = None

    @property
    def completed(self) -> bool:
        """Whether at least one whole window was cut."""
        return self.last_window is not None

    def add(self, block: torch.Tensor) -> list[torch.Tensor]:
        """The windows completed by ``block`` (samples,), in order."""
        self.pending.append(block)
        self.pending_samples += int(block.shape[0])
        done = []
        while self.pending_samples >= self.window:
            audio = torch.cat(self.pending)
            self.last_window, rest = audio[: self.window], audio[self.window :]
            self.pending, self.pending_samples = [rest], int(rest.shape[0])
            done.append(self.last_window)
        return done

    def rest(self) -> torch.Tensor:
        """The audio after the last whole window (all of it if none)."""
        return torch.cat(self.pending) if self.pending else torch.zeros(0)

    def tail(self) -> Optional[torch.Tensor]:
        """The last window, ending at the last sample; None when the whole
        windows end there. Without a whole window: :meth:`rest`."""
        rest = self.rest()
        if self.last_window is None:
            return rest
        if not rest.shape[0]:
            return None
        return torch.cat([self.last_window[rest.shape[0] :], rest])


class WindowMean:
    """The embedding of a recording from those of its windows.

    The mean direction of the windows' embeddings (each L2-normalised, so
    every window has the same say in a cosine score), scaled to their mean
    norm (so the norm, which calibrations with quality measures use, stays
    that of one forward pass).

    Example
    -------
    >>> mean = WindowMean()
    >>> mean.add(torch.tensor([3.0, 0.0]))
    >>> mean.add(torch.tensor([0.0, 1.0]))
    >>> mean.result().tolist(), len(mean)
    ([1.4142135381698608, 1.4142135381698608], 2)
    """

    def __init__(self) -> None:
        self.directions: Optional[torch.Tensor] = None
        self.norms: list[float] = []

    def __len__(self) -> int:
        return len(self.norms)

    def add(self, embedding: torch.Tensor) -> None:
        """Adds the (embedding_size,) embedding of one window."""
        embedding = embedding.float()
        self.norms.append(float(embedding.norm()))
        unit = nn.functional.normalize(embedding, dim=-1)
        self.directions = unit if self.directions is None else self.directions + unit

    def result(self) -> torch.Tensor:
        """(embedding_size,) mean direction x mean norm of the windows added."""
        if self.directions is None:
            raise ValueError("WindowMean: no window was added")
        direction = nn.functional.normalize(self.directions, dim=-1)
        return direction * (sum(self.norms) / len(self.norms))


def merge_segments(segments: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted segments with touching neighbours joined (blocks' edges).

    Example
    -------
    >>> merge_segments([(0, 10), (10, 20), (30, 40)])
    [(0, 20), (30, 40)]
    """
    merged: list[tuple[int, int]] = []
    for start, end in segments:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
