"""Speaker-verification metrics: EER, normalised minDCF and AS-norm.

Every metric here comes from a single sort of the scores, so scoring
10 million trials takes a few seconds and a few hundred MB, where
SpeechBrain's ``minDCF`` builds a (thresholds x trials) matrix.

Conventions: a trial is accepted when ``score > threshold`` (as in
``speechbrain.utils.metric_stats``); labels are 1 for target trials and 0
for non-target ones; error rates are fractions in [0, 1].

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ErrorCurve(NamedTuple):
    """Miss and false-alarm rates at every distinct threshold.

    ``thresholds[i]`` rejects every score ``<= thresholds[i]``; the first
    point (threshold -inf) accepts everything, the last rejects everything.
    ``p_miss`` rises and ``p_fa`` falls along the curve.
    """

    thresholds: np.ndarray
    p_miss: np.ndarray
    p_fa: np.ndarray


def _check_trials(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validates scores/labels and returns them as flat float/bool arrays."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels must have the same length, got {scores.size} "
            f"scores and {labels.size} labels"
        )
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be 0 (non-target) or 1 (target)")
        labels = labels.astype(bool)
    n_target = int(np.count_nonzero(labels))
    if n_target == 0 or n_target == labels.size:
        raise ValueError(
            "need both target (1) and non-target (0) trials, got "
            f"{n_target} target and {labels.size - n_target} non-target"
        )
    return scores, labels


def _sorted_by_class(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted target and sorted non-target scores."""
    target = np.sort(scores[labels])
    nontarget = np.sort(scores[~labels])
    return target, nontarget


def _operating_points(
    target: np.ndarray, nontarget: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, p_miss, p_fa) at every score, in no particular order.

    Rejecting scores ``<= t`` for every score t, plus t = -inf, covers every
    operating point; two sorted arrays and binary searches avoid an argsort
    of all trials (the slowest step at 10 million trials).
    """
    thresholds = np.concatenate([[-np.inf], target, nontarget])
    misses = np.searchsorted(target, thresholds, side="right")
    p_miss = misses / target.size
    del misses
    accepted = nontarget.size - np.searchsorted(nontarget, thresholds, side="right")
    p_fa = accepted / nontarget.size
    return thresholds, p_miss, p_fa


def error_curve(scores, labels) -> ErrorCurve:
    """Miss/false-alarm rates at all distinct thresholds, in threshold order.

    Arguments
    ---------
    scores : array-like
        (n,) trial scores, higher meaning more likely the same speaker.
    labels : array-like
        (n,) 1 for target, 0 for non-target trials.

    Returns
    -------
    ErrorCurve
        Thresholds and the matching miss and false-alarm rates.

    Example
    -------
    >>> curve = error_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    >>> curve.p_miss.tolist()
    [0.0, 0.0, 0.5, 0.5, 1.0]
    >>> curve.p_fa.tolist()
    [1.0, 0.5, 0.5, 0.0, 0.0]
    """
    thresholds, p_miss, p_fa = _operating_points(
        *_sorted_by_class(*_check_trials(scores, labels))
    )
    thresholds, first = np.unique(thresholds, return_index=True)
    return ErrorCurve(thresholds, p_miss[first], p_fa[first])


def _eer(
    thresholds: np.ndarray, p_miss: np.ndarray, p_fa: np.ndarray
) -> tuple[float, float]:
    # The rates cross between the highest threshold with p_miss < p_fa and
    # the lowest one with p_miss >= p_fa (p_miss - p_fa grows with t).
    above = p_miss >= p_fa
    i = int(np.argmin(np.where(above, thresholds, np.inf)))
    below = ~above
    if not below.any():
        return float(p_fa[i]), float(thresholds[i])
    j = int(np.argmax(np.where(below, thresholds, -np.inf)))
    d_before = p_fa[j] - p_miss[j]
    d_after = p_miss[i] - p_fa[i]
    w = d_before / (d_before + d_after)
    eer = p_miss[j] + w * (p_miss[i] - p_miss[j])
    return float(eer), float(thresholds[i])


def compute_eer(scores, labels) -> tuple[float, float]:
    """Equal error rate, interpolated where miss and false-alarm rates cross.

    The miss/false-alarm curve is a staircase; the EER is taken where the
    straight segment between the two operating points around the crossing
    meets the diagonal (as in the NIST/Kaldi-style scorers), which is exact
    when the curve has a point with equal rates.

    Arguments
    ---------
    scores : array-like
        (n,) trial scores.
    labels : array-like
        (n,) 1 for target, 0 for non-target trials.

    Returns
    -------
    eer : float
        Equal error rate as a fraction in [0, 1].
    threshold : float
        Score threshold of the first operating point with
        ``p_miss >= p_fa`` (accept when ``score > threshold``).

    Example
    -------
    >>> compute_eer([0.9, 0.8, 0.7, 0.2, 0.1, 0.75], [1, 1, 1, 0, 0, 0])
    (0.3333333333333333, 0.7)
    >>> compute_eer([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])[0]
    0.0
    """
    target, nontarget = _sorted_by_class(*_check_trials(scores, labels))
    return _eer(*_operating_points(target, nontarget))


def _min_dcf(
    thresholds: np.ndarray,
    p_miss: np.ndarray,
    p_fa: np.ndarray,
    p_target: float,
    c_miss: float,
    c_fa: float,
) -> tuple[float, float]:
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    # Normalised by the cost of the better of the two trivial systems.
    c_default = min(c_miss * p_target, c_fa * (1.0 - p_target))
    i = int(np.argmin(dcf))
    return float(dcf[i] / c_default), float(thresholds[i])


def compute_min_dcf(
    scores,
    labels,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> tuple[float, float]:
    """Normalised minimum detection cost (NIST SRE definition).

    ``DCF(t) = c_miss * p_target * P_miss(t) + c_fa * (1 - p_target) * P_fa(t)``
    minimised over thresholds t and divided by
    ``min(c_miss * p_target, c_fa * (1 - p_target))``.

    Arguments
    ---------
    scores, labels : array-like
        As in :func:`compute_eer`.
    p_target : float
        Prior probability of a target trial.
    c_miss : float
        Cost of a miss.
    c_fa : float
        Cost of a false alarm.

    Returns
    -------
    min_dcf : float
        Normalised minDCF (0 is perfect, 1 is no better than a trivial system).
    threshold : float
        Threshold reaching it (accept when ``score > threshold``).

    Example
    -------
    >>> scores = [0.9, 0.8, 0.7, 0.2, 0.1, 0.75]
    >>> labels = [1, 1, 1, 0, 0, 0]
    >>> round(compute_min_dcf(scores, labels, p_target=0.5)[0], 4)
    0.3333
    """
    target, nontarget = _sorted_by_class(*_check_trials(scores, labels))
    points = _operating_points(target, nontarget)
    return _min_dcf(*points, p_target, c_miss, c_fa)


def verification_metrics(
    scores, labels, p_targets: tuple[float, ...] = (0.01, 0.05)
) -> dict[str, float]:
    """EER and minDCF at several target priors, sorting the scores once.

    Example
    -------
    >>> m = verification_metrics([0.9, 0.3, 0.2, 0.7], [1, 1, 0, 0])
    >>> m["eer"], m["min_dcf_0.01"], m["n_trials"]
    (0.5, 0.5, 4)
    """
    scores, labels = _check_trials(scores, labels)
    points = _operating_points(*_sorted_by_class(scores, labels))
    eer, threshold = _eer(*points)
    result = {"eer": eer, "eer_threshold": threshold}
    for p in p_targets:
        result[f"min_dcf_{p:g}"] = _min_dcf(*points, p, 1.0, 1.0)[0]
    n_target = int(np.count_nonzero(labels))
    result.update(
        n_trials=int(labels.size),
        n_target=n_target,
        n_nontarget=int(labels.size) - n_target,
    )
    return result


def cohort_stats(
    cohort_scores: np.ndarray, top_k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each row's ``top_k`` highest cohort scores.

    Arguments
    ---------
    cohort_scores : np.ndarray
        (n, cohort_size) scores of n utterances against the cohort.
    top_k : int
        Number of closest cohort members kept (all if larger than the cohort).

    Returns
    -------
    mean, std : np.ndarray
        (n,) statistics of the selected scores.

    Example
    -------
    >>> mean, std = cohort_stats(np.array([[0.1, 0.5, 0.3, 0.9]]), top_k=2)
    >>> mean.round(3).tolist(), std.round(3).tolist()
    ([0.7], [0.2])
    """
    cohort_scores = np.asarray(cohort_scores, dtype=np.float64)
    if cohort_scores.ndim != 2 or cohort_scores.shape[1] == 0:
        raise ValueError(
            "cohort_scores must be a non-empty (n, cohort_size) array, got "
            f"shape {cohort_scores.shape}"
        )
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    k = min(top_k, cohort_scores.shape[1])
    top = np.partition(cohort_scores, -k, axis=1)[:, -k:]
    return top.mean(axis=1), top.std(axis=1)


def asnorm(
    scores,
    enrol_stats: tuple[np.ndarray, np.ndarray],
    test_stats: tuple[np.ndarray, np.ndarray],
    eps: float = 1e-8,
) -> np.ndarray:
    """Adaptive symmetric score normalisation (AS-norm).

    ``0.5 * ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t)`` where
    ``(mu_e, sigma_e)`` are the statistics of the enrolment utterance's
    top-k cohort scores and ``(mu_t, sigma_t)`` the test utterance's
    (Matejka et al., Interspeech 2017, "AS-norm1"); see :func:`cohort_stats`.

    Arguments
    ---------
    scores : array-like
        (n,) raw trial scores.
    enrol_stats, test_stats : tuple of np.ndarray
        (mean, std) per trial for the enrolment and the test side.
    eps : float
        Floor of the standard deviations.

    Returns
    -------
    np.ndarray
        (n,) normalised scores.

    Example
    -------
    >>> s = asnorm([0.5], (np.array([0.1]), np.array([0.2])),
    ...            (np.array([0.3]), np.array([0.1])))
    >>> s.round(6).tolist()
    [2.0]
    """
    scores = np.asarray(scores, dtype=np.float64)
    mu_e, sd_e = (np.asarray(a, dtype=np.float64) for a in enrol_stats)
    mu_t, sd_t = (np.asarray(a, dtype=np.float64) for a in test_stats)
    for name, arr in (("enrol", mu_e), ("test", mu_t)):
        if arr.shape != scores.shape:
            raise ValueError(
                f"{name} cohort statistics have shape {arr.shape}, "
                f"expected {scores.shape} (one per trial)"
            )
    return 0.5 * (
        (scores - mu_e) / np.maximum(sd_e, eps)
        + (scores - mu_t) / np.maximum(sd_t, eps)
    )
