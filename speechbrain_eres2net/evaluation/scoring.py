"""Trial scoring: cosine of unit embeddings, AS-norm against a speaker cohort.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..dataio.trials import preview
from .metrics import asnorm, cohort_stats

# Rows per block when scoring: bounds memory at ~100k x emb_dim floats.
_SCORE_CHUNK = 100_000


def _subsample_per_speaker(
    speakers: dict[str, str], max_per_speaker: int, seed: int
) -> dict[str, str]:
    by_speaker: dict[str, list[str]] = {}
    for path, spk in speakers.items():
        by_speaker.setdefault(spk, []).append(path)
    rng = np.random.default_rng(seed)
    kept: dict[str, str] = {}
    for spk in sorted(by_speaker):
        paths = sorted(by_speaker[spk])
        if len(paths) > max_per_speaker:
            paths = [
                paths[i]
                for i in sorted(rng.choice(len(paths), max_per_speaker, replace=False))
            ]
        kept.update((p, spk) for p in paths)
    return kept


def unit_length(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit length along its last axis (a zero vector stays zero).

    The one length normalisation of scoring: trials, cohorts and galleries
    compare unit-length embeddings, so that a dot product is their cosine.

    Example
    -------
    >>> unit_length(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def speaker_cohort(
    embeddings: Mapping[str, np.ndarray], speakers: Mapping[str, str]
) -> np.ndarray:
    """AS-norm cohort: one unit-length mean embedding per speaker.

    Speaker means (of length-normalised embeddings) rather than all training
    utterances keep the top-k from being filled by many utterances of one
    similar speaker, and make the cohort small (as in WeSpeaker's recipe).

    Example
    -------
    >>> e = {"a": np.array([1.0, 0]), "b": np.array([0.0, 2]), "c": np.array([3.0, 0])}
    >>> cohort = speaker_cohort(e, {"a": "s1", "b": "s1", "c": "s2"})
    >>> cohort.astype(float).round(3).tolist()
    [[0.707, 0.707], [1.0, 0.0]]
    """
    ids = [i for i in embeddings if i in speakers]
    if not ids:
        raise ValueError("no embeddings with a speaker label to build a cohort from")
    names, index = np.unique([speakers[i] for i in ids], return_inverse=True)
    unit = unit_length(
        np.stack([np.asarray(embeddings[i], dtype=np.float64) for i in ids])
    )
    sums = np.zeros((len(names), unit.shape[1]))
    np.add.at(sums, index, unit)
    return unit_length(sums).astype(np.float32)


def _unit_embeddings(
    embeddings: Mapping[str, np.ndarray], names: Sequence[str]
) -> np.ndarray:
    """(len(names), emb) length-normalised embeddings; clear error if absent."""
    missing = [n for n in names if n not in embeddings]
    if missing:
        raise KeyError(
            f"no embedding for {len(missing)} trial utterance(s): {preview(missing)}"
        )
    return unit_length(
        np.stack([np.asarray(embeddings[n], dtype=np.float32) for n in names])
    )


def _rowwise_dot(unit: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    out = np.empty(len(left), dtype=np.float64)
    for s in range(0, len(left), _SCORE_CHUNK):
        e = slice(s, s + _SCORE_CHUNK)
        out[e] = np.einsum("ij,ij->i", unit[left[e]], unit[right[e]])
    return out


def score_trials(
    embeddings: Mapping[str, np.ndarray], enrol: Sequence[str], test: Sequence[str]
) -> np.ndarray:
    """Cosine similarity of each (enrol, test) pair of embeddings.

    Example
    -------
    >>> e = {"a": np.array([1.0, 0]), "b": np.array([1.0, 1]), "c": np.array([0.0, 3])}
    >>> score_trials(e, ["a", "a"], ["b", "c"]).round(4).tolist()
    [0.7071, 0.0]
    """
    index = {name: i for i, name in enumerate(dict.fromkeys([*enrol, *test]))}
    unit = _unit_embeddings(embeddings, list(index))
    left = np.array([index[n] for n in enrol], dtype=np.int64)
    right = np.array([index[n] for n in test], dtype=np.int64)
    return _rowwise_dot(unit, left, right)


def cosine(first: np.ndarray, second: np.ndarray) -> float:
    """Cosine similarity of two embeddings: one trial, scored as
    :func:`score_trials` scores a list.

    Example
    -------
    >>> round(cosine(np.array([1.0, 0]), np.array([2.0, 2])), 4)
    0.7071
    """
    return float(score_trials({"enrol": first, "test": second}, ["enrol"], ["test"])[0])


def _asnorm_scores(
    scores: np.ndarray,
    unit: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    cohort: np.ndarray,
    top_k: int,
) -> np.ndarray:
    """AS-norm with cohort statistics computed once per distinct utterance."""
    cohort = unit_length(np.asarray(cohort, dtype=np.float32))
    if cohort.ndim != 2 or cohort.shape[1] != unit.shape[1]:
        raise ValueError(
            f"cohort must be (n_cohort, {unit.shape[1]}), got {tuple(cohort.shape)}"
        )
    mean = np.empty(len(unit))
    std = np.empty(len(unit))
    rows = max(1, 20_000_000 // max(1, len(cohort)))  # ~80 MB of scores per block
    for s in range(0, len(unit), rows):
        mean[s : s + rows], std[s : s + rows] = cohort_stats(
            unit[s : s + rows] @ cohort.T, top_k
        )
    return asnorm(scores, (mean[left], std[left]), (mean[right], std[right]))
