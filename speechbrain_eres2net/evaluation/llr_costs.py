"""How well LLRs are calibrated: Cllr, minCllr, actual DCF, the Bayes threshold.

A calibrated score is a log-likelihood ratio (LLR),
``log p(score | target) / p(score | non-target)``, so a Bayes decision for any
prior and costs is a fixed threshold (:func:`bayes_threshold`). This module
measures how well scores are calibrated (:func:`cllr`, :func:`act_dcf`) and
how well they could be (:func:`min_cllr`). Conventions follow
:mod:`.metrics`: a trial is accepted when ``llr > threshold``; labels are 1
for target and 0 for non-target trials.

References
 * N. Brümmer and J. du Preez, "Application-independent evaluation of
   speaker detection", Computer Speech and Language, 2006.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import isotonic_regression

from .metrics import _check_trials

LN2 = math.log(2.0)


def check_prior_and_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")


def bayes_threshold(
    p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """LLR threshold of the Bayes decision for a prior and costs.

    ``log(c_fa * (1 - p_target) / (c_miss * p_target))``; accepting the
    trials with ``llr > threshold`` minimises the expected cost when the
    scores are calibrated LLRs.

    Arguments
    ---------
    p_target : float
        Prior probability of a target trial, in (0, 1).
    c_miss : float
        Cost of a miss.
    c_fa : float
        Cost of a false alarm.

    Returns
    -------
    float
        The threshold (natural-log LLR units).

    Example
    -------
    >>> bayes_threshold(0.5)
    0.0
    >>> round(bayes_threshold(0.01), 4)
    4.5951
    """
    check_prior_and_costs(p_target, c_miss, c_fa)
    return math.log(c_fa * (1.0 - p_target) / (c_miss * p_target))


def _cllr_terms(llrs: np.ndarray, labels: np.ndarray) -> float:
    """Cllr in bits; infinite LLRs on the correct side contribute 0."""
    # logaddexp(0, -inf) == 0 and logaddexp(0, inf) == inf, never NaN.
    target = np.logaddexp(0.0, -llrs[labels]).mean()
    nontarget = np.logaddexp(0.0, llrs[~labels]).mean()
    return float(0.5 * (target + nontarget) / LN2)


def cllr(llrs, labels) -> float:
    """Log-likelihood-ratio cost Cllr, in bits (Brümmer & du Preez 2006).

    ``0.5 * mean_tar log2(1 + exp(-llr)) + 0.5 * mean_non log2(1 + exp(llr))``:
    0 for a perfect system, 1 for one that always outputs 0 (no
    information), above 1 for a badly calibrated one.

    Arguments
    ---------
    llrs : array-like
        (n,) finite natural-log likelihood ratios.
    labels : array-like
        (n,) 1 for target, 0 for non-target trials.

    Returns
    -------
    float
        Cllr in bits.

    Example
    -------
    >>> cllr([0.0, 0.0], [1, 0])
    1.0
    >>> round(cllr([2.0, 1.0, -3.0], [1, 1, 0]), 4)
    0.1938
    """
    llrs, labels = _check_trials(llrs, labels)
    return _cllr_terms(llrs, labels)


def _pav_llrs(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LLRs of the PAV (isotonic) calibration of ``scores``; may be +-inf."""
    unique, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()  # numpy 2.0 kept the input's shape
    # Tied scores form one block: their mean label, weighted by their count.
    target_counts = np.bincount(inverse, weights=labels, minlength=unique.size)
    posterior = isotonic_regression(target_counts / counts, weights=counts).x
    posterior = np.clip(posterior, 0.0, 1.0)[inverse]
    n_target = np.count_nonzero(labels)
    prior_log_odds = math.log(n_target / (labels.size - n_target))
    with np.errstate(divide="ignore"):
        log_odds = np.log(posterior) - np.log1p(-posterior)
    return log_odds - prior_log_odds


def min_cllr(scores, labels) -> float:
    """Cllr after the optimal monotonic calibration of ``scores``, in bits.

    The PAV/ROCCH method (Brümmer & du Preez 2006): the pool-adjacent-
    violators algorithm (:func:`scipy.optimize.isotonic_regression`) fits
    the non-decreasing target posterior to the labels sorted by score
    (tied scores form one block); subtracting the empirical prior log-odds
    turns the posteriors into LLRs. Posteriors of 0 or 1 give infinite LLRs,
    which only occur on the correctly classified side and cost nothing.
    ``cllr(llrs) - min_cllr(llrs)`` is the calibration loss of ``llrs``.

    Arguments
    ---------
    scores : array-like
        (n,) finite trial scores, any scale, higher meaning more likely target.
    labels : array-like
        (n,) 1 for target, 0 for non-target trials.

    Returns
    -------
    float
        minCllr in bits, in [0, 1].

    Example
    -------
    >>> min_cllr([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1])
    0.5
    >>> min_cllr([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])
    0.0
    """
    scores, labels = _check_trials(scores, labels)
    return _cllr_terms(_pav_llrs(scores, labels), labels)


def act_dcf(
    llrs,
    labels,
    p_target: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Actual normalised detection cost of the Bayes decision on LLRs.

    Accepts the trials with ``llr > bayes_threshold(p_target, c_miss, c_fa)``
    and normalises the cost like :func:`.metrics.compute_min_dcf`, by
    ``min(c_miss * p_target, c_fa * (1 - p_target))``; so
    ``act_dcf >= min_dcf`` and the difference is the calibration loss at
    that operating point.

    Arguments
    ---------
    llrs : array-like
        (n,) finite natural-log likelihood ratios.
    labels : array-like
        (n,) 1 for target, 0 for non-target trials.
    p_target : float
        Prior probability of a target trial.
    c_miss : float
        Cost of a miss.
    c_fa : float
        Cost of a false alarm.

    Returns
    -------
    float
        Normalised actual DCF (1 is the cost of the best trivial system).

    Example
    -------
    >>> llrs = [-2.0, 0.5, 1.0, -1.0, 3.0, -3.0]
    >>> labels = [1, 1, 1, 0, 0, 0]
    >>> round(act_dcf(llrs, labels, p_target=0.5), 4)
    0.6667
    """
    llrs, labels = _check_trials(llrs, labels)
    threshold = bayes_threshold(p_target, c_miss, c_fa)
    accepted = llrs > threshold
    p_miss = np.count_nonzero(~accepted[labels]) / np.count_nonzero(labels)
    p_fa = np.count_nonzero(accepted[~labels]) / np.count_nonzero(~labels)
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return float(dcf / min(c_miss * p_target, c_fa * (1.0 - p_target)))
