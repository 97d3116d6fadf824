"""Trials whose enrolment side is an enrolled speaker, for calibration.

``eres2net identify`` scores a recording against a speaker of a gallery: the
unit mean of the speaker's recordings (``gallery_scoring: mean``), with the
speaker's net speech summed and its recordings' raw norms averaged as the
quality measures (:class:`~speechbrain_eres2net.evaluation.gallery.SpeakerGallery`).
A calibration fitted on single recordings has never seen 3 recordings' worth
of speech on one side, so every identification fell outside its fitted
range and was clamped. :func:`enrolled_trials` turns a trial list into the
same trials with the enrolment side enrolled from ``recordings`` recordings
of its speaker, so that a fitted calibration covers both.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .scoring import unit_length


class EnrolledTrials(NamedTuple):
    """Scores and per-side measures of trials with an enrolled speaker side."""

    labels: np.ndarray
    scores: np.ndarray
    seconds: tuple[np.ndarray, np.ndarray]
    """(enrolled speaker's net speech, test recording's)."""
    norms: tuple[np.ndarray, np.ndarray]
    """(mean raw norm of the speaker's recordings, test recording's)."""


def voxceleb_speaker(name: str) -> str:
    """The speaker of a trial path in the VoxCeleb layout (``spk/session/utt``).

    Example
    -------
    >>> voxceleb_speaker("id10270/x6uYqmx31kE/00001.wav")
    'id10270'
    >>> voxceleb_speaker("a.wav")
    'a.wav'
    """
    return name.replace("\\", "/").split("/")[0]


def enrolled_trials(
    names: Sequence[str],
    labels: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    embeddings: Mapping[str, np.ndarray],
    durations: Mapping[str, float],
    recordings: int,
) -> EnrolledTrials:
    """The trials with their enrolment side enrolled from ``recordings``
    recordings of its speaker.

    The speaker of a recording is the first component of its trial path
    (VoxCeleb layout); its other recordings are those of the trial list.
    A trial's speaker is its enrolment recording and the next
    ``recordings - 1`` of the speaker's recordings in sorted order (never
    the test recording); trials whose speaker has too few recordings are
    left out, so a list without speaker folders gives none.

    Example
    -------
    >>> names = ["s1/a.wav", "s1/b.wav", "s1/c.wav", "s2/d.wav"]
    >>> emb = {n: np.eye(4)[i] + 1 for i, n in enumerate(names)}
    >>> dur = {n: 2.0 for n in names}
    >>> t = enrolled_trials(names, np.array([0]), np.array([0]), np.array([3]),
    ...                     emb, dur, recordings=3)
    >>> t.seconds[0].tolist(), t.seconds[1].tolist(), t.labels.tolist()
    ([6.0], [2.0], [0])
    >>> len(enrolled_trials(names, np.array([1]), np.array([0]), np.array([1]),
    ...                     emb, dur, recordings=3).labels)  # b is the test side
    0
    """
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for index in sorted(range(len(names)), key=lambda i: names[i]):
        by_speaker[voxceleb_speaker(names[index])].append(index)
    raw = np.stack([np.asarray(embeddings[n], dtype=np.float64) for n in names])
    unit = unit_length(raw)
    norms = np.linalg.norm(raw, axis=1)
    seconds = np.array([float(durations[n]) for n in names])
    kept, scores, enrol_seconds, enrol_norms = [], [], [], []
    for trial, (enrol, test) in enumerate(zip(left, right)):
        pool = by_speaker[voxceleb_speaker(names[enrol])]
        start = pool.index(enrol)
        others = [i for i in pool[start + 1 :] + pool[:start] if i != test]
        if len(others) < recordings - 1:
            continue
        group = [enrol, *others[: recordings - 1]]
        speaker = unit_length(unit[group].mean(axis=0))
        kept.append(trial)
        scores.append(float(speaker @ unit[test]))
        enrol_seconds.append(seconds[group].sum())
        enrol_norms.append(norms[group].mean())
    kept = np.asarray(kept, dtype=np.int64)
    return EnrolledTrials(
        np.asarray(labels)[kept],
        np.asarray(scores),
        (np.asarray(enrol_seconds), seconds[np.asarray(right)[kept]]),
        (np.asarray(enrol_norms), norms[np.asarray(right)[kept]]),
    )
