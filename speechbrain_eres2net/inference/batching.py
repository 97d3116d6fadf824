"""Batches of similar length: how many recordings share one padded forward pass.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(
    durations: Sequence[float], batch_size: int, batch_seconds: float
) -> list[range]:
    """Consecutive index ranges of longest-first ``durations`` for batching.

    A batch grows while ``len(batch) * longest <= batch_seconds`` (its padded
    size; the first item is the longest) and ``len(batch) <= batch_size``;
    every batch holds at least one item.

    Example
    -------
    >>> [list(b) for b in length_batches([9.0, 6.0, 5.0, 2.0, 1.0], 3, 20.0)]
    [[0, 1], [2, 3, 4]]
    """
    batches = []
    start = 0
    while start < len(durations):
        end = start + 1
        while (
            end < len(durations)
            and end - start < batch_size
            and (end - start + 1) * durations[start] <= batch_seconds
        ):
            end += 1
        batches.append(range(start, end))
        start = end
    return batches
