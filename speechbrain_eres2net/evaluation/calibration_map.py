"""The fitted calibration: a linear map from scores to LLRs, applied and saved.

:class:`Calibration` maps raw scores, and optionally quality measures
(:func:`~.quality.quality_measures`), to log-likelihood ratios; it is fitted
by :func:`~.calibration_fit.fit_calibration` and stored as a JSON file
(:mod:`.calibration_file`).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..paths import PathLike
from .calibration_file import (
    FILE_FORMAT,
    FILE_VERSION,
    calibration_fields,
    read_calibration_file,
    write_calibration_file,
)
from .quality import quality_measures

logger = logging.getLogger(__name__)


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

    def llr(
        self, scores, quality: Optional[np.ndarray] = None, warn: bool = True
    ) -> np.ndarray:
        """Maps raw scores (and quality measures) to calibrated LLRs.

        Arguments
        ---------
        scores : array-like
            (n,) raw trial scores.
        quality : np.ndarray, optional
            (n, k) quality measures in the order of ``quality_names``;
            required exactly when the calibration uses quality measures.
        warn : bool
            Log a warning when quality measures are clamped into the fitted
            ranges (clustering, which clamps every large cluster, does not).

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
            clamped = self._clamped(quality, warn)
            out = out + clamped @ np.asarray(self.quality_weights)
        return out

    def sides_llr(
        self,
        scores,
        seconds: tuple,
        norms: Optional[tuple] = None,
        warn: bool = True,
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
        warn : bool
            As in :meth:`llr`.

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
        return self.llr(scores, quality[:, columns], warn)

    def _clamped(self, quality: np.ndarray, warn: bool = True) -> np.ndarray:
        """Quality measures clamped into the fitted ranges, with one notice."""
        if not self.quality_ranges:
            return quality
        low, high = np.array(self.quality_ranges).T
        clamped = np.clip(quality, low, high)
        outside = (clamped != quality).any(axis=0)
        if warn and outside.any():
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
        return cls(**calibration_fields(data))

    def save(self, path: PathLike) -> None:
        """Writes the calibration as JSON, atomically.

        Example
        -------
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "calibration.json"
        >>> Calibration(2.0, -1.0).save(path)
        >>> Calibration.load(path).llr([1.0]).tolist()
        [1.0]
        """
        write_calibration_file(self.to_dict(), path)

    @classmethod
    def load(cls, path: PathLike) -> Calibration:
        """Reads a file written by :meth:`save`.

        Raises ``ValueError`` naming the file when it is not a calibration
        file of a known version (``OSError`` if it cannot be read).
        """
        data = read_calibration_file(path)
        try:
            return cls.from_dict(data)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def quality_kinds(calibration: Calibration) -> list[str]:
    """The quality-measure kinds a calibration was fitted with, in fitting order."""
    kinds = []
    if "log_dur_min" in calibration.quality_names:
        kinds.append("duration")
    if "norm_min" in calibration.quality_names:
        kinds.append("norm")
    return kinds
