"""Brute-force verification metrics: test oracles independent of the package.

Each metric is computed from its textbook definition by counting, at every
candidate threshold, the misses and false alarms directly (quadratic in the
number of trials: for test-sized lists only). Nothing here calls
``speechbrain_eres2net``.

Conventions as in the package: a trial is accepted when ``score > t``;
labels are 1 (target) or 0 (non-target); rates are fractions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def operating_points(scores, labels) -> list[tuple[float, float, float]]:
    """(threshold, p_miss, p_fa) at -inf and at every distinct score, in order."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    target, nontarget = scores[labels], scores[~labels]
    points = []
    for t in [-math.inf, *sorted(set(scores.tolist()))]:
        p_miss = sum(s <= t for s in target) / len(target)
        p_fa = sum(s > t for s in nontarget) / len(nontarget)
        points.append((t, p_miss, p_fa))
    return points


def eer(scores, labels) -> float:
    """Where the straight segments of the (p_miss, p_fa) staircase meet p_miss = p_fa.

    ``p_fa - p_miss`` falls from 1 (accept all) to -1 (reject all) along the
    thresholds: the EER is the rate at the point where it is 0, or on the
    segment between the last point above 0 and the first below.
    """
    points = operating_points(scores, labels)
    for _, p_miss, p_fa in points:
        if p_miss == p_fa:
            return p_miss
    for (_, m0, f0), (_, m1, f1) in zip(points, points[1:]):
        if f0 > m0 and f1 < m1:
            # Solve m0 + w (m1 - m0) = f0 + w (f1 - f0) for w in (0, 1).
            w = (f0 - m0) / ((f0 - m0) - (f1 - m1))
            return m0 + w * (m1 - m0)
    raise AssertionError("the staircase never crosses p_miss = p_fa")


def min_dcf(scores, labels, p_target: float, c_miss=1.0, c_fa=1.0) -> float:
    """NIST normalised minimum DCF, minimised over every threshold."""
    costs = [
        c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
        for _, p_miss, p_fa in operating_points(scores, labels)
    ]
    return min(costs) / min(c_miss * p_target, c_fa * (1 - p_target))


def act_dcf(llrs, labels, p_target: float, c_miss=1.0, c_fa=1.0) -> float:
    """Normalised DCF of accepting ``llr > log(c_fa (1 - p) / (c_miss p))``."""
    llrs = np.asarray(llrs, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    threshold = math.log(c_fa * (1 - p_target) / (c_miss * p_target))
    p_miss = np.mean(llrs[labels] <= threshold)
    p_fa = np.mean(llrs[~labels] > threshold)
    cost = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    return float(cost / min(c_miss * p_target, c_fa * (1 - p_target)))


def cllr(llrs, labels) -> float:
    """Brümmer's Cllr in bits, one trial at a time."""
    target = [math.log2(1 + math.exp(-x)) for x, y in zip(llrs, labels) if y]
    nontarget = [math.log2(1 + math.exp(x)) for x, y in zip(llrs, labels) if not y]
    return 0.5 * (sum(target) / len(target) + sum(nontarget) / len(nontarget))


def cosine(a, b) -> float:
    """Cosine similarity of two vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


def read_scores(path) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """(fields of each line, labels, columns 3.. as a (n, k) array) of scores.txt."""
    fields = [line.split() for line in Path(path).read_text().splitlines()]
    labels = np.array([int(f[2]) for f in fields])
    columns = np.array([[float(x) for x in f[3:]] for f in fields])
    return fields, labels, columns
