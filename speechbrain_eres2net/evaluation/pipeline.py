"""Speaker-verification evaluation: the one pipeline from a trial list to metrics.

:func:`evaluate_embedder` is the job every command runs (``eres2net score``,
the verification recipe, the quickstart, the EER and calibration stored in a
model folder): the protocol of the official ERes2Net recipe, with any
embedding lobe. One embedding per trial utterance from its full length
(batched by length, with exact relative lengths so batching does not change
it), cosine similarity of the raw embeddings, EER and normalised minDCF
(p_target 0.01 and 0.05, unit costs), min Cllr; optionally adaptive s-norm
(AS-norm) against a cohort of training speakers, and calibrated
log-likelihood ratios with their Cllr and actual DCF.

Its steps live in modules of their own, whose names stay importable from
here: :mod:`.utterance_embeddings` (embedding trial lists and CSVs),
:mod:`.trial_evaluation` (scores, metrics and their files) and
:mod:`.quality` (quality measures); :func:`fit_trial_calibration` fits a
calibration on a trial list's embeddings.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from ..inference.embedder import SpeakerEmbedder
from ..paths import PathLike
from ..settings import default
from .calibration_fit import fit_calibration
from .calibration_map import Calibration, quality_kinds
from .enrolled_trials import enrolled_trials
from .quality import QUALITY_KINDS, sides_quality, trial_quality
from .scoring import speaker_cohort
from .trial_evaluation import P_TARGETS, _scored_trials, evaluate_trials
from .utterance_embeddings import (
    TrialEmbeddings,
    embed_csv,
    embed_utterances,
    read_csv_speakers,
    trial_embeddings,
)

# Names of the steps, importable from here as before the split.
__all__ = [
    "P_TARGETS",
    "QUALITY_KINDS",
    "TrialEmbeddings",
    "embed_csv",
    "embed_utterances",
    "evaluate_embedder",
    "evaluate_trials",
    "fit_trial_calibration",
    "quality_kinds",
    "read_csv_speakers",
    "sides_quality",
    "trial_embeddings",
    "trial_quality",
]


def evaluate_embedder(
    embedder: SpeakerEmbedder,
    trials: PathLike,
    data_root: PathLike,
    output_dir: Optional[PathLike] = None,
    *,
    cohort_csv: Optional[PathLike] = None,
    cohort_utts_per_speaker: Optional[int] = None,
    top_k: Optional[int] = None,
    calibration: Optional[Calibration] = None,
    batch_size: Optional[int] = None,
    batch_seconds: Optional[float] = None,
    progress: bool = False,
    plots: Optional[bool] = None,
    seed: Optional[int] = None,
    num_workers: Optional[int] = None,
) -> dict:
    """The evaluation pipeline: trial list -> embeddings -> scores -> metrics.

    Every file of the trial list is embedded once (a file that cannot be is
    an error naming it), optionally a cohort from ``cohort_csv``, then
    :func:`evaluate_trials` scores and measures. Defaults come from
    ``hparams/verification.yaml``.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        The model (any embedding lobe).
    trials : path
        VoxCeleb-format trial list, paths relative to ``data_root``'s wav/.
    data_root : path
        Corpus root (or its wav folder).
    output_dir : path, optional
        Where scores, results and plots go; None keeps only the metrics.
    cohort_csv : path, optional
        Speaker CSV of the AS-norm cohort.
    cohort_utts_per_speaker, top_k, seed : int, optional
        Cohort size per speaker, AS-norm top-k, cohort sampling seed.
    calibration : Calibration, optional
        Adds LLRs, ``cllr`` and ``act_dcf_*``.
    batch_size, batch_seconds, num_workers : optional
        Embedding batch limits and decoding workers.
    progress : bool
        Show progress bars.
    plots : bool, optional
        Write plots (default: when ``output_dir`` is given).

    Returns
    -------
    dict
        :func:`evaluate_trials`' results plus ``trials`` (the list's name).
    """
    embeddings, durations, refused = trial_embeddings(
        embedder, trials, data_root, batch_size, batch_seconds, progress, num_workers
    )
    cohort = None
    if cohort_csv:
        if cohort_utts_per_speaker is None:
            cohort_utts_per_speaker = default("cohort_utts_per_speaker")
        cohort_embeddings, speakers = embed_csv(
            embedder,
            cohort_csv,
            max_per_speaker=cohort_utts_per_speaker,
            seed=seed,
            batch_size=batch_size,
            batch_seconds=batch_seconds,
            progress=progress,
            num_workers=num_workers,
        )
        cohort = speaker_cohort(cohort_embeddings, speakers)
    with tempfile.TemporaryDirectory() as scratch:
        results = evaluate_trials(
            embeddings,
            trials,
            output_dir or scratch,
            cohort=cohort,
            top_k=top_k,
            plots=output_dir is not None if plots is None else plots,
            calibration=calibration,
            durations=durations,
            refused=refused,
        )
    results["trials"] = Path(trials).name
    return results


def fit_trial_calibration(
    embeddings: Mapping[str, np.ndarray],
    durations: Mapping[str, float],
    trials: PathLike,
    quality: Optional[Sequence[str]] = None,
    prior: Optional[float] = None,
    vad: Optional[str] = None,
    refused: Collection[str] = (),
    enrolled_recordings: Optional[int] = None,
) -> Calibration:
    """Fits a cosine score -> LLR calibration on a trial list's embeddings.

    Arguments
    ---------
    embeddings, durations : mapping
        Per trial utterance, from :func:`trial_embeddings` (durations are
        net speech seconds).
    trials : path
        The development trial list.
    quality : list of str, optional
        Quality measures among :data:`QUALITY_KINDS` (default:
        ``calibration_quality`` of ``verification.yaml``).
    prior : float, optional
        Target prior the objective is weighted for (default:
        ``calibration_prior``).
    vad : str, optional
        The embedder's speech detection mode, recorded in ``fitted_on``.
    refused : collection of str
        Utterances refused for too little speech; their trials are left out.
    enrolled_recordings : int, optional
        The trials are fitted a second time with their enrolment side a
        speaker enrolled from this many recordings, as ``identify`` scores
        galleries (:func:`~.enrolled_trials.enrolled_trials`; speakers from
        VoxCeleb-layout paths), so that the fitted ranges cover enrolled
        speakers; 1 fits single recordings alone (default:
        ``calibration_enrolled_recordings``).

    Returns
    -------
    Calibration
        Its ``fitted_on`` names the trial list, the net speech range, the
        speech detection and the measures; ``quality_ranges`` holds the
        range of each measure.
    """
    quality = list(default("calibration_quality") if quality is None else quality)
    prior = float(default("calibration_prior") if prior is None else prior)
    recordings = int(
        default("calibration_enrolled_recordings")
        if enrolled_recordings is None
        else enrolled_recordings
    )
    labels, names, left, right, _, scores, _ = _scored_trials(
        embeddings, trials, refused
    )
    measures, columns = trial_quality(
        quality, names, left, right, embeddings, durations
    )
    seconds = [durations[n] for n in names]
    enrolled = 0
    if recordings > 1:
        more = enrolled_trials(
            names, labels, left, right, embeddings, durations, recordings
        )
        enrolled = int(more.labels.size)
        if enrolled:
            extra, _ = sides_quality(quality, more.seconds, more.norms)
            labels = np.concatenate([labels, more.labels])
            scores = np.concatenate([scores, more.scores])
            if measures is not None:
                measures = np.concatenate([measures, extra])
            seconds += more.seconds[0].tolist()
    return fit_calibration(
        scores,
        labels,
        quality=measures,
        quality_names=columns,
        p_target=prior,
        fitted_on={
            "trials": Path(trials).name,
            "speech_s": [round(min(seconds), 2), round(max(seconds), 2)],
            "vad": vad,
            "enrolled_recordings": recordings if enrolled else 1,
            "enrolled_trials": enrolled,
            "score": "cosine",
        },
        source=str(trials),
    )
