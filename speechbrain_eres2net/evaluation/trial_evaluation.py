"""Scoring a trial list: cosine scores, metrics, LLRs, and the files they go to.

:func:`evaluate_trials` writes, in ``output_dir`` (each atomically),
``scores.txt`` (``enrol test label score [asnorm] [llr]``), ``results.json``,
``det.png`` and ``hist.png``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from ..dataio.files import atomic_open, write_text_atomic
from ..dataio.trials import read_trials_indexed
from ..paths import PathLike
from ..settings import default
from .calibration_map import Calibration, quality_kinds
from .llr_costs import act_dcf, cllr, min_cllr
from .metrics import error_curve, verification_metrics
from .quality import trial_quality
from .scoring import (
    _SCORE_CHUNK,
    _asnorm_scores,
    _rowwise_dot,
    _unit_embeddings,
)

logger = logging.getLogger(__name__)

# Operating points of the official protocol (unit costs).
P_TARGETS = (0.01, 0.05)


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
    >>> import tempfile
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
