"""Score calibration: Cllr, minCllr, actual DCF and logistic (QMF) calibration.

A calibrated score is a log-likelihood ratio (LLR),
``log p(score | target) / p(score | non-target)``, so a Bayes decision for any
prior and costs is a fixed threshold (:func:`bayes_threshold`). This module
measures how well scores are calibrated (:func:`cllr`, :func:`act_dcf`), how
well they could be (:func:`min_cllr`), and fits a linear logistic map from
raw scores, optionally with quality measures (:func:`quality_measures`), to
LLRs (:func:`fit_calibration`, :class:`Calibration`).

Conventions follow :mod:`.metrics`: a trial is accepted when
``llr > threshold``; labels are 1 for target and 0 for non-target trials.

References
 * N. Brümmer and J. du Preez, "Application-independent evaluation of
   speaker detection", Computer Speech and Language, 2006.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from scipy.optimize import isotonic_regression, minimize
from scipy.special import expit

from ..dataio.files import atomic_open
from ..paths import PathLike
from .metrics import _check_trials

logger = logging.getLogger(__name__)

FILE_FORMAT = "speechbrain-eres2net-calibration"
FILE_VERSION = 1

_LN2 = math.log(2.0)

__all__ = [
    "Calibration",
    "act_dcf",
    "bayes_threshold",
    "cllr",
    "fit_calibration",
    "min_cllr",
    "quality_measures",
]


def _prefixed(source: Optional[str], message: str) -> str:
    return f"{source}: {message}" if source else message


def _check_prior_and_costs(p_target: float, c_miss: float, c_fa: float) -> None:
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
    _check_prior_and_costs(p_target, c_miss, c_fa)
    return math.log(c_fa * (1.0 - p_target) / (c_miss * p_target))


def _cllr_terms(llrs: np.ndarray, labels: np.ndarray) -> float:
    """Cllr in bits; infinite LLRs on the correct side contribute 0."""
    # logaddexp(0, -inf) == 0 and logaddexp(0, inf) == inf, never NaN.
    target = np.logaddexp(0.0, -llrs[labels]).mean()
    nontarget = np.logaddexp(0.0, llrs[~labels]).mean()
    return float(0.5 * (target + nontarget) / _LN2)


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


@dataclass
class Calibration:
    """Linear logistic calibration ``llr = w0 * score + sum_k w_k * q_k + b``.

    Fitted by :func:`fit_calibration`; ``q`` are optional quality measures
    (see :func:`quality_measures`), one column per name in
    ``quality_names``.

    Arguments
    ---------
    score_weight : float
        ``w0``, the weight of the raw score.
    bias : float
        ``b``, the offset.
    quality_weights : tuple of float
        ``w_k``, one per quality measure.
    quality_names : tuple of str
        Names of the quality measures, in column order.
    fitted_on : dict
        Free-form, JSON-serialisable description of the training data.
    quality_ranges : tuple of (float, float)
        The ``[low, high]`` range each quality measure took in the fitting
        data (empty: unknown, e.g. a file of an older release). A linear map
        extrapolated far outside it gives LLRs nobody measured, so
        :meth:`llr` clamps the measures into it and says so once per call.

    Example
    -------
    >>> cal = Calibration(score_weight=10.0, bias=-5.0)
    >>> cal.llr([0.4, 0.6]).tolist()
    [-1.0, 1.0]
    >>> qcal = Calibration(2.0, 0.0, (1.0,), ("log_dur_min",), {}, ((0.0, 1.0),))
    >>> qcal.llr([1.0, 1.0], quality=np.array([[0.5], [3.0]])).tolist()
    [2.5, 3.0]
    """

    score_weight: float
    bias: float
    quality_weights: tuple[float, ...] = ()
    quality_names: tuple[str, ...] = ()
    fitted_on: dict[str, Any] = field(default_factory=dict)
    quality_ranges: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        self.score_weight = float(self.score_weight)
        self.bias = float(self.bias)
        self.quality_weights = tuple(float(w) for w in self.quality_weights)
        self.quality_names = tuple(str(n) for n in self.quality_names)
        if len(self.quality_weights) != len(self.quality_names):
            raise ValueError(
                f"got {len(self.quality_weights)} quality weights for "
                f"{len(self.quality_names)} quality names"
            )
        self.quality_ranges = tuple(
            (float(low), float(high)) for low, high in self.quality_ranges
        )
        if self.quality_ranges and len(self.quality_ranges) != len(self.quality_names):
            raise ValueError(
                f"got {len(self.quality_ranges)} quality ranges for "
                f"{len(self.quality_names)} quality names"
            )

    def llr(self, scores, quality: Optional[np.ndarray] = None) -> np.ndarray:
        """Maps raw scores (and quality measures) to calibrated LLRs.

        Arguments
        ---------
        scores : array-like
            (n,) raw trial scores.
        quality : np.ndarray, optional
            (n, k) quality measures in the order of ``quality_names``;
            required exactly when the calibration uses quality measures.

        Returns
        -------
        np.ndarray
            (n,) natural-log likelihood ratios.
        """
        scores = np.asarray(scores, dtype=np.float64)
        out = self.score_weight * scores + self.bias
        k = len(self.quality_names)
        if quality is None:
            if k:
                raise ValueError(
                    f"this calibration needs quality measures {self.quality_names}"
                )
            return out
        quality = np.asarray(quality, dtype=np.float64)
        if quality.shape != (scores.size, k) or scores.ndim != 1:
            raise ValueError(
                f"quality must have shape ({scores.size}, {k}) for "
                f"{scores.size} scores and quality measures {self.quality_names}, "
                f"got {quality.shape}"
            )
        if k:
            out = out + self._clamped(quality) @ np.asarray(self.quality_weights)
        return out

    def sides_llr(
        self,
        scores,
        seconds: tuple,
        norms: Optional[tuple] = None,
    ) -> np.ndarray:
        """LLRs of trials from each side's net speech (and embedding norm).

        Arguments
        ---------
        scores : array-like
            (n,) cosine scores.
        seconds : (enrol, test)
            Each (n,) net speech seconds of that side.
        norms : (enrol, test), optional
            Each (n,) raw embedding norms; needed when the calibration
            uses them.

        Example
        -------
        >>> c = Calibration(2.0, -1.0, (0.5, 0.5), ("log_dur_min", "log_dur_max"))
        >>> float(c.sides_llr([1.0], ([1.0], [1.0]))[0])
        1.0
        """
        if not self.quality_names:
            return self.llr(scores)
        with_norms = "norm_min" in self.quality_names
        if with_norms and norms is None:
            raise ValueError("this calibration needs the sides' embedding norms")
        quality, names = quality_measures(
            *seconds, *(norms if with_norms else (None, None))
        )
        missing = sorted(set(self.quality_names) - set(names))
        if missing:
            raise ValueError(f"sides_llr cannot compute the quality measures {missing}")
        columns = [names.index(n) for n in self.quality_names]
        return self.llr(scores, quality[:, columns])

    def _clamped(self, quality: np.ndarray) -> np.ndarray:
        """Quality measures clamped into the fitted ranges, with one notice."""
        if not self.quality_ranges:
            return quality
        low, high = np.array(self.quality_ranges).T
        clamped = np.clip(quality, low, high)
        outside = (clamped != quality).any(axis=0)
        if outside.any():
            rows = int((clamped != quality).any(axis=1).sum())
            names = ", ".join(
                f"{name} [{lo:.3g}, {hi:.3g}]"
                for name, lo, hi, out in zip(self.quality_names, low, high, outside)
                if out
            )
            logger.warning(
                "calibration: %d of %d trial(s) have quality measures outside the "
                "range they were fitted on, clamped to it: %s",
                rows,
                quality.shape[0],
                names,
            )
        return clamped

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable description, as written by :meth:`save`.

        Example
        -------
        >>> d = Calibration(2.0, -1.0, fitted_on={"trials": "dev.txt"}).to_dict()
        >>> d["format"], d["version"], d["score_weight"], d["fitted_on"]
        ('speechbrain-eres2net-calibration', 1, 2.0, {'trials': 'dev.txt'})
        """
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "score_weight": self.score_weight,
            "bias": self.bias,
            "quality_names": list(self.quality_names),
            "quality_weights": list(self.quality_weights),
            "fitted_on": dict(self.fitted_on),
            "quality_ranges": {
                name: list(bounds)
                for name, bounds in zip(self.quality_names, self.quality_ranges)
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; ``ValueError`` for anything else.

        Example
        -------
        >>> cal = Calibration(2.0, -1.0, (0.5,), ("log_dur_min",))
        >>> Calibration.from_dict(cal.to_dict()) == cal
        True
        """
        if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
            raise ValueError(f"not a {FILE_FORMAT} file")
        version = data.get("version")
        if version != FILE_VERSION:
            raise ValueError(
                f"unsupported {FILE_FORMAT} version {version!r} "
                f"(this package reads version {FILE_VERSION})"
            )
        malformed = f"malformed {FILE_FORMAT} file"
        missing = [k for k in ("score_weight", "bias") if k not in data]
        if missing:
            raise ValueError(f"{malformed}: missing key(s) {missing}")
        names = data.get("quality_names", [])
        weights = data.get("quality_weights", [])
        fitted_on = data.get("fitted_on", {})
        if not isinstance(names, list) or not isinstance(weights, list):
            raise ValueError(
                f"{malformed}: quality_names/quality_weights must be lists"
            )
        if not isinstance(fitted_on, dict):
            raise ValueError(f"{malformed}: fitted_on must be an object")
        ranges = data.get("quality_ranges", {})
        if not isinstance(ranges, dict) or not all(
            isinstance(b, list) and len(b) == 2 for b in ranges.values()
        ):
            raise ValueError(
                f"{malformed}: quality_ranges must map names to [low, high]"
            )
        if ranges and set(ranges) != set(names):
            raise ValueError(
                f"{malformed}: quality_ranges must name every quality measure"
            )
        bounds = [ranges[n] for n in names] if ranges else []
        values = [data["score_weight"], data["bias"], *weights, *sum(bounds, [])]
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(f"{malformed}: weights must be numbers")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{malformed}: weights must be finite")
        # The dataclass checks the names against the weights (ValueError).
        return cls(
            score_weight=data["score_weight"],
            bias=data["bias"],
            quality_weights=tuple(weights),
            quality_names=tuple(names),
            fitted_on=fitted_on,
            quality_ranges=tuple(tuple(b) for b in bounds),
        )

    def save(self, path: PathLike) -> None:
        """Writes the calibration as JSON, atomically.

        Example
        -------
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "calibration.json"
        >>> Calibration(2.0, -1.0).save(path)
        >>> Calibration.load(path).llr([1.0]).tolist()
        [1.0]
        """
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")

    @classmethod
    def load(cls, path: PathLike) -> Calibration:
        """Reads a file written by :meth:`save`.

        Raises ``ValueError`` naming the file when it is not a calibration
        file of a known version (``OSError`` if it cannot be read).
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(
                f"{path}: not a {FILE_FORMAT} file (invalid JSON: {err})"
            ) from None
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


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
        _check_prior_and_costs(p_target, 1.0, 1.0)
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
        (result.fun - l2 * float(v @ v)) / _LN2,
        cal.score_weight,
        cal.bias,
    )
    return cal


def _as_trial_array(values, name: str, n: Optional[int]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.size != n):
        expected = "a 1-D array" if n is None else f"shape ({n},)"
        raise ValueError(f"{name} must have {expected}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def quality_measures(
    durations_enrol,
    durations_test,
    norms_enrol=None,
    norms_test=None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Per-trial quality measures for QMF calibration (as in WeSpeaker's QMF).

    Symmetric in the two sides of a trial, so swapping enrolment and test
    gives the same measures:

    * ``log_dur_min``, ``log_dur_max``: natural log of the shorter and of the
      longer side's duration in seconds (short speech gives less reliable
      scores);
    * ``norm_min``, ``norm_max`` (with both ``norms_*``): the smaller and the
      larger raw (un-normalised) embedding norm.

    Arguments
    ---------
    durations_enrol, durations_test : array-like
        (n,) positive durations in seconds (of speech, if known).
    norms_enrol, norms_test : array-like, optional
        (n,) embedding norms before length normalisation.

    Returns
    -------
    quality : np.ndarray
        (n, k) measures, for :func:`fit_calibration` and
        :meth:`Calibration.llr`.
    names : tuple of str
        The column names.

    Example
    -------
    >>> q, names = quality_measures([2.0, 10.0], [5.0, 1.0])
    >>> names
    ('log_dur_min', 'log_dur_max')
    >>> np.exp(q).round(6).tolist()
    [[2.0, 5.0], [1.0, 10.0]]
    >>> q, names = quality_measures([2.0], [5.0], norms_enrol=[9.0], norms_test=[7.0])
    >>> names[2:], q[0, 2:].tolist()
    (('norm_min', 'norm_max'), [7.0, 9.0])
    """
    dur_e = _as_trial_array(durations_enrol, "durations_enrol", None)
    n = dur_e.size
    dur_t = _as_trial_array(durations_test, "durations_test", n)
    if (dur_e <= 0).any() or (dur_t <= 0).any():
        raise ValueError("durations must be positive (seconds)")
    columns = [np.log(np.minimum(dur_e, dur_t)), np.log(np.maximum(dur_e, dur_t))]
    names = ["log_dur_min", "log_dur_max"]
    if (norms_enrol is None) != (norms_test is None):
        raise ValueError("give both norms_enrol and norms_test, or neither")
    if norms_enrol is not None:
        enrol = _as_trial_array(norms_enrol, "norms_enrol", n)
        test = _as_trial_array(norms_test, "norms_test", n)
        columns += [np.minimum(enrol, test), np.maximum(enrol, test)]
        names += ["norm_min", "norm_max"]
    return np.column_stack(columns), tuple(names)
