"""Fitting a calibration: linear logistic regression of LLRs on trial scores.

References
 * N. Brümmer and E. de Villiers, "The BOSARIS toolkit", 2011
   (``train_llr_fusion``).
 * WeSpeaker's quality-measure functions (QMF) for score calibration.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Optional

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from .calibration_map import Calibration
from .llr_costs import LN2, check_prior_and_costs
from .metrics import _check_trials

logger = logging.getLogger(__name__)


def _prefixed(source: Optional[str], message: str) -> str:
    return f"{source}: {message}" if source else message


def _check_quality(
    quality, quality_names: tuple[str, ...], n: int, source: Optional[str]
) -> np.ndarray:
    k = len(quality_names)
    if quality is None:
        if k:
            raise ValueError(
                _prefixed(
                    source, f"quality_names {quality_names} given without quality"
                )
            )
        return np.zeros((n, 0))
    quality = np.asarray(quality, dtype=np.float64)
    if quality.ndim != 2 or quality.shape != (n, k):
        raise ValueError(
            _prefixed(
                source,
                f"quality must have shape ({n}, {k}) for {n} trials and "
                f"quality_names {quality_names}, got {quality.shape}",
            )
        )
    if not np.isfinite(quality).all():
        raise ValueError(_prefixed(source, "quality contains NaN or infinite values"))
    return quality


def fit_calibration(
    scores,
    labels,
    quality: Optional[np.ndarray] = None,
    quality_names: tuple[str, ...] = (),
    p_target: float = 0.5,
    fitted_on: Optional[dict[str, Any]] = None,
    *,
    min_trials_per_class: int = 10,
    l2: float = 1e-6,
    source: Optional[str] = None,
) -> Calibration:
    """Fits a linear logistic calibration (with optional QMF) to trials.

    Minimises Brümmer's prior-weighted Cllr objective, as BOSARIS's
    ``train_llr_fusion``::

        p/N_tar * sum_tar log(1 + exp(-(llr + logit p)))
        + (1-p)/N_non * sum_non log(1 + exp(llr + logit p))

    with ``llr = w0 * score + sum_k w_k * q_k + b`` (the prior log-odds
    ``logit p`` is added inside the sigmoid, so ``llr`` itself is a
    likelihood ratio). The inputs are standardised internally and the
    scaling folded back into the returned weights; the fit is L-BFGS-B with
    an analytic gradient. A tiny L2 penalty ``l2 * |w|^2`` on the
    standardised weights (not the bias) keeps separable data finite.

    Arguments
    ---------
    scores : array-like
        (n,) finite raw trial scores.
    labels : array-like
        (n,) 1 for target, 0 for non-target trials.
    quality : np.ndarray, optional
        (n, k) finite quality measures, see :func:`quality_measures`.
    quality_names : tuple of str
        One name per quality column (empty without quality).
    p_target : float
        Prior the objective is weighted for. The default 0.5 weights both
        classes equally (the plain Cllr); for a well-specified model the
        fitted map hardly depends on it, for a mis-specified one a lower
        prior favours the low-false-alarm region.
    fitted_on : dict, optional
        JSON-serialisable description of the data (e.g. ``{"trials":
        "dev_trials.txt"}``); stored in the result with ``n_target``,
        ``n_nontarget``, ``p_target`` and ``quality_names`` added.
    min_trials_per_class : int
        Fewest target and fewest non-target trials accepted.
    l2 : float
        Weight of the L2 penalty (per-trial-normalised objective, nats).
    source : str, optional
        Prefixed to every error message, e.g. the trials file name.

    Returns
    -------
    Calibration
        The fitted map.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.r_[np.ones(2000), np.zeros(2000)]
    >>> scores = np.where(labels == 1, 1.0, -1.0) + rng.standard_normal(4000)
    >>> cal = fit_calibration(scores, labels)  # true LLR: 2 * score
    >>> bool(abs(cal.score_weight - 2.0) < 0.1), bool(abs(cal.bias) < 0.1)
    (True, True)
    >>> cal.fitted_on["n_target"], cal.fitted_on["p_target"]
    (2000, 0.5)
    """
    try:
        scores, labels = _check_trials(scores, labels)
        check_prior_and_costs(p_target, 1.0, 1.0)
    except ValueError as err:
        raise ValueError(_prefixed(source, str(err))) from None
    quality_names = tuple(str(n) for n in quality_names)
    quality = _check_quality(quality, quality_names, scores.size, source)
    n_target = int(np.count_nonzero(labels))
    n_nontarget = int(labels.size) - n_target
    if min(n_target, n_nontarget) < min_trials_per_class:
        raise ValueError(
            _prefixed(
                source,
                f"need at least {min_trials_per_class} target and "
                f"{min_trials_per_class} non-target trials to fit a calibration, "
                f"got {n_target} target and {n_nontarget} non-target",
            )
        )
    info: dict[str, Any] = dict(fitted_on or {})
    info.update(
        n_target=n_target,
        n_nontarget=n_nontarget,
        p_target=float(p_target),
        quality_names=list(quality_names),
    )
    # A caller's fitted_on that JSON cannot hold is a bug: json.dumps raises.
    json.dumps(info)

    x = np.column_stack([scores, quality])
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0  # a constant column only moves the bias
    z = (x - mean) / std
    sign = np.where(labels, 1.0, -1.0)
    weight = np.where(labels, p_target / n_target, (1.0 - p_target) / n_nontarget)
    offset = math.log(p_target / (1.0 - p_target))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        v, c = theta[:-1], theta[-1]
        margin = sign * (z @ v + c + offset)
        loss = float(weight @ np.logaddexp(0.0, -margin)) + l2 * float(v @ v)
        d_llr = -weight * sign * expit(-margin)
        grad = np.empty_like(theta)
        grad[:-1] = z.T @ d_llr + 2.0 * l2 * v
        grad[-1] = d_llr.sum()
        return loss, grad

    result = minimize(objective, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B")
    if not result.success:
        logger.warning(
            "%scalibration fit did not converge: %s",
            f"{source}: " if source else "",
            result.message,
        )
    v, c = result.x[:-1], result.x[-1]
    w = v / std
    bias = float(c - w @ mean)
    cal = Calibration(
        score_weight=float(w[0]),
        bias=bias,
        quality_weights=tuple(float(a) for a in w[1:]),
        quality_names=quality_names,
        fitted_on=info,
        quality_ranges=tuple(
            (float(low), float(high))
            for low, high in zip(x[:, 1:].min(0), x[:, 1:].max(0))
        ),
    )
    logger.info(
        "calibration fitted on %d target / %d non-target trials: "
        "prior-weighted Cllr %.4f bits, score weight %.4g, bias %.4g",
        n_target,
        n_nontarget,
        (result.fun - l2 * float(v @ v)) / LN2,
        cal.score_weight,
        cal.bias,
    )
    return cal
