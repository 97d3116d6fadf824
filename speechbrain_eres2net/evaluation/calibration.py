"""Score calibration: Cllr, minCllr, actual DCF and logistic (QMF) calibration.

A calibrated score is a log-likelihood ratio (LLR),
``log p(score | target) / p(score | non-target)``, so a Bayes decision for any
prior and costs is a fixed threshold (:func:`bayes_threshold`). This module
measures how well scores are calibrated (:func:`cllr`, :func:`act_dcf`), how
well they could be (:func:`min_cllr`), and fits a linear logistic map from
raw scores, optionally with quality measures (:func:`quality_measures`), to
LLRs (:func:`fit_calibration`, :class:`Calibration`).

The parts live in modules of their own, all importable from here:
:mod:`.llr_costs` (measuring), :mod:`.quality` (quality measures),
:mod:`.calibration_fit` (fitting), :mod:`.calibration_map` (applying) and
:mod:`.calibration_file` (the JSON file).

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

from .calibration_file import FILE_FORMAT, FILE_VERSION
from .calibration_fit import fit_calibration
from .calibration_map import Calibration
from .llr_costs import act_dcf, bayes_threshold, cllr, min_cllr
from .quality import quality_measures

__all__ = [
    "FILE_FORMAT",
    "FILE_VERSION",
    "Calibration",
    "act_dcf",
    "bayes_threshold",
    "cllr",
    "fit_calibration",
    "min_cllr",
    "quality_measures",
]
