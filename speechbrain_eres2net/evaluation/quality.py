"""Quality measures of trials: what a calibration weighs besides the score.

Short speech and unusual embedding norms give less reliable scores; a
calibration with quality measures (WeSpeaker's QMF) takes them into
account. :func:`quality_measures` computes them from each side's duration
and norm; :func:`trial_quality` and :func:`sides_quality` pick the kinds a
calibration uses (:data:`QUALITY_KINDS`).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import numpy as np

# Quality measures a calibration may use, and what each needs.
QUALITY_KINDS = ("duration", "norm")


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


def trial_quality(
    kinds: Sequence[str],
    names: Sequence[str],
    left: np.ndarray,
    right: np.ndarray,
    embeddings: Mapping[str, np.ndarray],
    durations: Optional[Mapping[str, float]] = None,
) -> tuple[Optional[np.ndarray], tuple[str, ...]]:
    """Quality measures of each trial for a calibration (None when ``kinds`` is empty).

    ``"duration"`` gives the log durations of the shorter and longer side,
    ``"norm"`` the smaller and larger raw embedding norm.

    Example
    -------
    >>> q, cols = trial_quality(["duration"], ["a", "b"], np.array([0]),
    ...                         np.array([1]), {}, {"a": 2.0, "b": 8.0})
    >>> cols, np.exp(q).round(3).tolist()
    (('log_dur_min', 'log_dur_max'), [[2.0, 8.0]])
    """
    kinds = list(kinds)
    if "duration" in kinds and durations is None:
        raise ValueError("the 'duration' quality measure needs durations")
    dur = np.array([durations[n] if "duration" in kinds else 1.0 for n in names])
    norms = np.ones(len(names))
    if "norm" in kinds:
        norms = np.array([float(np.linalg.norm(embeddings[n])) for n in names])
    return sides_quality(kinds, (dur[left], dur[right]), (norms[left], norms[right]))


def sides_quality(
    kinds: Sequence[str], seconds: tuple, norms: tuple
) -> tuple[Optional[np.ndarray], tuple[str, ...]]:
    """Quality measures of trials from each side's (enrol, test) net speech
    seconds and raw embedding norms (None when ``kinds`` is empty).

    Example
    -------
    >>> q, cols = sides_quality(["norm"], ([1.0], [1.0]), ([9.0], [7.0]))
    >>> cols, q.tolist()
    (('norm_min', 'norm_max'), [[7.0, 9.0]])
    """
    kinds = list(kinds)
    unknown = sorted(set(kinds) - set(QUALITY_KINDS))
    if unknown:
        raise ValueError(
            f"quality measures must be among {QUALITY_KINDS}, got {unknown}"
        )
    if not kinds:
        return None, ()
    with_durations = "duration" in kinds
    # quality_measures always computes the duration columns: give it unit
    # durations when they are not wanted, and drop those columns after.
    if not with_durations:
        seconds = tuple(np.ones_like(np.asarray(side, dtype=float)) for side in seconds)
    quality, columns = quality_measures(
        *seconds, *(norms if "norm" in kinds else (None, None))
    )
    if not with_durations:
        quality, columns = quality[:, 2:], columns[2:]
    return quality, tuple(columns)
