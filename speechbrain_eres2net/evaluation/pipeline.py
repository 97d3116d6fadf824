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

Outputs of :func:`evaluate_trials` in ``output_dir`` (each written
atomically): ``scores.txt`` (``enrol test label score [asnorm] [llr]``),
``results.json``, ``det.png`` and ``hist.png``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from ..dataio.files import atomic_open, write_text_atomic
from ..dataio.speaker_csv import read_speaker_csv
from ..dataio.trials import preview, read_trials_indexed
from ..dataio.vad import Speech
from ..dataio.voxceleb_prepare import trial_utterances
from ..inference.embedder import SpeakerEmbedder
from ..paths import PathLike
from ..settings import default
from .calibration import (
    Calibration,
    act_dcf,
    cllr,
    fit_calibration,
    min_cllr,
    quality_measures,
)
from .enrolled_trials import enrolled_trials
from .metrics import error_curve, verification_metrics
from .scoring import (
    _SCORE_CHUNK,
    _asnorm_scores,
    _rowwise_dot,
    _subsample_per_speaker,
    _unit_embeddings,
    speaker_cohort,
)

logger = logging.getLogger(__name__)

# Quality measures a calibration may use, and what each needs.
QUALITY_KINDS = ("duration", "norm")
# Operating points of the official protocol (unit costs).
P_TARGETS = (0.01, 0.05)


def embed_utterances(
    embedder: SpeakerEmbedder,
    utterances: Mapping[str, PathLike],
    batch_size: Optional[int] = None,
    batch_seconds: Optional[float] = None,
    progress: bool = False,
    skip_errors: bool = False,
    num_workers: Optional[int] = None,
    speech: Optional[dict[str, Speech]] = None,
    refused: Optional[set[str]] = None,
) -> dict[str, np.ndarray]:
    """Embeddings of audio files, batched by length.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        Front end, normaliser and model (any embedding lobe).
    utterances : mapping
        Utterance ID -> audio path.
    batch_size, batch_seconds, num_workers : optional
        Batch limits and decoding workers (see
        :meth:`SpeakerEmbedder.iter_files`).
    progress : bool
        Show a progress bar.
    skip_errors : bool
        Leave out (with a warning) files that cannot be read or are too
        short; by default they are an error naming them. Recordings with
        too little speech are left out either way, with a warning that
        counts them (``NotEnoughSpeechError``).
    speech : dict, optional
        Filled with utterance ID -> :class:`Speech` (duration, net speech).
    refused : set, optional
        Filled with the IDs left out for too little speech.

    Returns
    -------
    dict
        Utterance ID -> float32 (emb,) embedding.

    Example
    -------
    >>> import soundfile
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> d = Path(tempfile.mkdtemp())
    >>> wav = np.random.default_rng(0).normal(size=8000) * 0.1
    >>> soundfile.write(d / "a.wav", wav, 16000)
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    >>> embedder = SpeakerEmbedder(KaldiFbank(), None, model, vad="off")
    >>> embed_utterances(embedder, {"a": d / "a.wav"})["a"].shape
    (16,)
    """
    done = embedder.embed_files(
        [str(p) for p in utterances.values()],
        batch_size=batch_size,
        progress=progress,
        batch_seconds=batch_seconds,
        num_workers=num_workers,
    )
    failed = {
        uid: done.errors[str(p)]
        for uid, p in utterances.items()
        if str(p) in done.errors
    }
    quiet = {u for u, p in utterances.items() if str(p) in done.refused}
    if quiet:
        logger.warning(
            "%d of %d recording(s) left out: too little speech (e.g. %s)",
            len(quiet),
            len(utterances),
            preview([f"{utterances[u]}: {failed[u]}" for u in sorted(quiet)], 1),
        )
        failed = {u: r for u, r in failed.items() if u not in quiet}
    if refused is not None:
        refused.update(quiet)
    if failed:
        reasons = [f"{utterances[u]}: {r}" for u, r in failed.items()]
        message = (
            f"{len(failed)} utterance(s) could not be embedded: {preview(reasons, 3)}"
        )
        if not skip_errors:
            raise ValueError(message)
        logger.warning(message)
    if speech is not None:
        speech.update(
            {
                u: done.speech[str(p)]
                for u, p in utterances.items()
                if str(p) in done.speech
            }
        )
    return {
        uid: done.embeddings[str(p)]
        for uid, p in utterances.items()
        if str(p) in done.embeddings
    }


def read_csv_speakers(csv_path: PathLike) -> dict[str, str]:
    """Audio path -> speaker of each distinct file of a SpeechBrain CSV.

    Example
    -------
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("ID,duration,wav,start,stop,spk_id\\n"
    ...                  "u1_0_1,1,/a.wav,0,1,s1\\nu1_1_2,1,/a.wav,1,2,s1\\n")
    >>> read_csv_speakers(p)
    {'/a.wav': 's1'}
    """
    return {row["wav"]: row["spk_id"] for row in read_speaker_csv(csv_path).values()}


def embed_csv(
    embedder: SpeakerEmbedder,
    csv_path: PathLike,
    max_per_speaker: Optional[int] = None,
    seed: Optional[int] = None,
    **options,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Embeddings of the utterances of a SpeechBrain CSV (full files).

    Chunk rows of one file are embedded once; unreadable files are skipped
    with a warning.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        The model.
    csv_path : path
        CSV with ``ID``, ``wav`` and ``spk_id`` columns.
    max_per_speaker : int, optional
        Embed at most this many files per speaker (a seeded random choice),
        e.g. to build an AS-norm cohort from a large training set.
    seed : int, optional
        Seed of that choice (default: ``seed`` of ``verification.yaml``).
    **options
        Passed to :func:`embed_utterances` (batch limits, progress).

    Returns
    -------
    embeddings : dict
        Audio path -> embedding.
    speakers : dict
        Audio path -> speaker ID.
    """
    speakers = read_csv_speakers(csv_path)
    if max_per_speaker is not None:
        seed = int(default("seed") if seed is None else seed)
        speakers = _subsample_per_speaker(speakers, max_per_speaker, seed)
    embeddings = embed_utterances(
        embedder, {path: path for path in speakers}, skip_errors=True, **options
    )
    return embeddings, {p: speakers[p] for p in embeddings}


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


def quality_kinds(calibration: Calibration) -> list[str]:
    """The quality-measure kinds a calibration was fitted with, in fitting order."""
    kinds = []
    if "log_dur_min" in calibration.quality_names:
        kinds.append("duration")
    if "norm_min" in calibration.quality_names:
        kinds.append("norm")
    return kinds


def _scored_trials(
    embeddings: Mapping[str, np.ndarray],
    trials_file: PathLike,
    refused: Collection[str] = (),
):
    """Cosine scores of a trial list, less the trials with a refused side.

    A trial whose side is in ``refused`` (too little speech) is left out
    and counted, last in the returned tuple; any other missing embedding
    is a ``KeyError`` naming it.
    """
    labels, names, left, right = read_trials_indexed(trials_file)
    refused = set(refused)
    gone = np.array([n in refused for n in names], dtype=bool)
    keep = ~(gone[left] | gone[right])
    left_out = int(keep.size - np.count_nonzero(keep))
    if left_out:
        labels, left, right = labels[keep], left[keep], right[keep]
        used = np.unique(np.concatenate([left, right]))
        index = np.full(len(names), -1, dtype=np.int64)
        index[used] = np.arange(used.size)
        names = [names[i] for i in used]
        left, right = index[left], index[right]
        logger.warning(
            "%d of %d trial(s) left out: a side has too little speech",
            left_out,
            keep.size,
        )
    unit = _unit_embeddings(embeddings, names)
    scores = _rowwise_dot(unit, left, right)
    return labels, names, left, right, unit, scores, left_out


def evaluate_trials(
    embeddings: Mapping[str, np.ndarray],
    trials_file: PathLike,
    output_dir: PathLike,
    cohort: Optional[np.ndarray] = None,
    top_k: Optional[int] = None,
    plots: bool = True,
    calibration: Optional[Calibration] = None,
    durations: Optional[Mapping[str, float]] = None,
    refused: Collection[str] = (),
) -> dict:
    """Scores a trial list and writes scores, metrics and plots.

    Arguments
    ---------
    embeddings : mapping
        Utterance ID (the path as written in the trial list) -> embedding.
    trials_file : path
        VoxCeleb-format trial list.
    output_dir : path
        Receives ``scores.txt``, ``results.json``, ``det.png``, ``hist.png``.
    cohort : np.ndarray, optional
        (n_cohort, emb) AS-norm cohort, e.g. from :func:`speaker_cohort`;
        None scores raw cosine only (the official protocol).
    top_k : int, optional
        AS-norm cohort size per utterance (default: ``verification.yaml``).
    plots : bool
        Write the DET curve and score histogram.
    calibration : Calibration, optional
        Maps the cosine scores to LLRs: adds ``cllr`` and ``act_dcf_*``.
    durations : mapping, optional
        Utterance ID -> seconds, for a calibration with duration measures.
    refused : collection of str
        Utterances refused for too little speech: their trials are left out
        and counted in ``trials_left_out``. Any other utterance without an
        embedding is an error.

    Returns
    -------
    dict
        ``eer`` (fraction), ``eer_threshold``, ``min_dcf_0.01``,
        ``min_dcf_0.05``, ``min_cllr``, ``n_trials`` (and target/non-target
        counts) of the cosine scores; with a calibration ``cllr``,
        ``act_dcf_0.01``, ``act_dcf_0.05``; with a cohort ``asnorm``: the
        metrics of the normalised scores plus ``top_k`` and ``cohort_size``.

    Example
    -------
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "t.txt").write_text("1 a b\\n0 a c\\n1 c d\\n0 b d\\n")
    >>> e = {"a": np.array([1.0, 0]), "b": np.array([0.9, 0.1]),
    ...      "c": np.array([0.0, 1]), "d": np.array([0.2, 1])}
    >>> r = evaluate_trials(e, d / "t.txt", d / "out", plots=False)
    >>> r["eer"], r["min_cllr"], r["n_trials"]
    (0.0, 0.0, 4)
    >>> sorted(p.name for p in (d / "out").iterdir())
    ['results.json', 'scores.txt']
    """
    labels, names, left, right, unit, scores, left_out = _scored_trials(
        embeddings, trials_file, refused
    )
    try:
        results = verification_metrics(scores, labels, P_TARGETS)
    except ValueError as err:  # one class only, NaN scores: name the list
        raise ValueError(f"{trials_file}: {err}") from err
    results["trials_left_out"] = left_out
    results["min_cllr"] = min_cllr(scores, labels)
    results["trials_file"] = str(trials_file)
    columns = [scores]
    normed = None
    if cohort is not None:
        top_k = int(default("top_k") if top_k is None else top_k)
        normed = _asnorm_scores(scores, unit, left, right, cohort, top_k)
        results["asnorm"] = verification_metrics(normed, labels, P_TARGETS)
        results["asnorm"]["min_cllr"] = min_cllr(normed, labels)
        results["asnorm"].update(top_k=top_k, cohort_size=int(len(cohort)))
        columns.append(normed)
    if calibration is not None:
        quality, _ = trial_quality(
            quality_kinds(calibration), names, left, right, embeddings, durations
        )
        llrs = calibration.llr(scores, quality)
        results["cllr"] = cllr(llrs, labels)
        for p in P_TARGETS:
            results[f"act_dcf_{p:g}"] = act_dcf(llrs, labels, p)
        results["calibration"] = dict(calibration.fitted_on)
        columns.append(llrs)

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_scores(out / "scores.txt", names, left, right, labels, columns)
    write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    if plots:
        from .plots import plot_det, plot_histogram

        curves = {"cosine": error_curve(scores, labels)}
        if normed is not None:
            curves["AS-norm"] = error_curve(normed, labels)
        plot_det(curves, out / "det.png")
        plot_histogram(scores, labels, out / "hist.png")
    logger.info(
        "EER %.3f%%, minDCF(0.01) %.4f on %d trials; results in %s",
        100 * results["eer"],
        results["min_dcf_0.01"],
        results["n_trials"],
        out,
    )
    return results


def _write_scores(
    path: Path,
    names: Sequence[str],
    left: np.ndarray,
    right: np.ndarray,
    labels: np.ndarray,
    columns: Sequence[np.ndarray],
) -> None:
    """``enrol test label score...`` lines, formatted a block at a time."""
    line = "{} {} {}" + " {:.6f}" * len(columns) + "\n"
    with atomic_open(path, "w", encoding="utf-8") as f:
        for start in range(0, len(labels), _SCORE_CHUNK):
            part = slice(start, start + _SCORE_CHUNK)
            fields = [
                map(names.__getitem__, left[part].tolist()),
                map(names.__getitem__, right[part].tolist()),
                labels[part].tolist(),
                *(c[part].tolist() for c in columns),
            ]
            f.write("".join(map(line.format, *fields)))


class TrialEmbeddings(NamedTuple):
    """What :func:`trial_embeddings` measured on a trial list's utterances."""

    embeddings: dict[str, np.ndarray]
    """Utterance ID -> embedding, for each one with enough speech."""
    durations: dict[str, float]
    """Utterance ID -> net speech (seconds) of the embedded ones."""
    refused: set[str]
    """The IDs refused for too little speech (their trials are left out)."""


def trial_embeddings(
    embedder: SpeakerEmbedder,
    trials: PathLike,
    data_root: PathLike,
    batch_size: Optional[int] = None,
    batch_seconds: Optional[float] = None,
    progress: bool = False,
    num_workers: Optional[int] = None,
) -> TrialEmbeddings:
    """Embeddings and net speech (seconds) of every utterance of a trial list.

    A file that cannot be read is an error naming it; one with too little
    speech is left out (with its trials) and counted in a warning.
    """
    utterances = trial_utterances(trials, data_root)
    speech: dict[str, Speech] = {}
    refused: set[str] = set()
    embeddings = embed_utterances(
        embedder,
        utterances,
        batch_size=batch_size,
        batch_seconds=batch_seconds,
        progress=progress,
        speech=speech,
        refused=refused,
        num_workers=num_workers,
    )
    return TrialEmbeddings(
        embeddings, {u: s.seconds for u, s in speech.items()}, refused
    )


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
