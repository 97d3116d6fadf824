"""Windows over a recording's speech, and speech labelled from window labels.

Diarization (:mod:`speechbrain_eres2net.evaluation.diarization`) embeds each
speech segment window by window (:func:`place_windows`) and, once the
windows carry speaker labels, gives every instant of speech the label of
the window whose centre is nearest (:func:`label_segments`).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..dataio.vad import Speech
from .streaming import window_starts


class SpeechWindows(NamedTuple):
    """A recording's speech, its windows and their embeddings."""

    speech: Speech
    starts: np.ndarray
    """(n,) first sample of each window."""
    ends: np.ndarray
    """(n,) sample after the last of each window."""
    seconds: np.ndarray
    """(n,) net speech each window stands for (its segment's length shared
    among the segment's windows)."""
    embeddings: np.ndarray
    """(n, dim) raw embeddings."""


def place_windows(
    segments: Sequence[tuple[int, int]], window: int, hop: int, shortest: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, ends, samples each stands for) of the windows over speech.

    Example
    -------
    >>> starts, ends, share = place_windows([(0, 50), (100, 130), (200, 205)],
    ...                                      20, 10, 8)
    >>> starts.tolist(), ends.tolist()
    ([0, 10, 20, 30, 100, 110], [20, 30, 40, 50, 120, 130])
    >>> share.tolist()  # the segments' lengths shared among their windows
    [12.5, 12.5, 12.5, 12.5, 15.0, 15.0]
    """
    starts, ends, share = [], [], []
    for start, end in segments:
        length = end - start
        if length < shortest:
            continue
        firsts = window_starts(length, window, hop)
        starts += [start + f for f in firsts]
        ends += [start + min(f + window, length) for f in firsts]
        share += [length / len(firsts)] * len(firsts)
    return (
        np.array(starts, dtype=np.int64),
        np.array(ends, dtype=np.int64),
        np.array(share, dtype=np.float64),
    )


def label_segments(
    segments: Sequence[tuple[int, int]],
    starts: np.ndarray,
    ends: np.ndarray,
    labels: np.ndarray,
    bridge: int = 0,
) -> list[tuple[int, int, int]]:
    """(start, end, label) sample ranges of the speech, from window labels.

    Each sample of a segment goes to the window whose centre is nearest;
    a segment without windows takes the label of the window nearest to it.
    Neighbouring ranges with one label are joined, across pauses shorter
    than ``bridge`` samples too.

    Example
    -------
    >>> label_segments([(0, 40), (50, 52)], np.array([0, 20]), np.array([20, 40]),
    ...                np.array([0, 1]))
    [(0, 20, 0), (20, 40, 1), (50, 52, 1)]
    >>> label_segments([(0, 40), (50, 52)], np.array([0, 20]), np.array([20, 40]),
    ...                np.array([0, 1]), bridge=10)
    [(0, 20, 0), (20, 52, 1)]
    """
    centres = (starts + ends) / 2.0
    out: list[tuple[int, int, int]] = []
    for start, end in segments:
        inside = np.flatnonzero((starts >= start) & (ends <= end))
        if not inside.size:
            nearest = int(np.argmin(np.abs(centres - (start + end) / 2.0)))
            pieces = [(start, end, int(labels[nearest]))]
        else:
            cuts = [
                int(round((centres[i] + centres[j]) / 2.0))
                for i, j in zip(inside, inside[1:])
            ]
            bounds = [start, *cuts, end]
            pieces = [
                (bounds[k], bounds[k + 1], int(labels[i]))
                for k, i in enumerate(inside)
                if bounds[k + 1] > bounds[k]
            ]
        for piece in pieces:
            if out and out[-1][2] == piece[2] and piece[0] - out[-1][1] <= bridge:
                out[-1] = (out[-1][0], piece[1], piece[2])
            else:
                out.append(piece)
    return out
