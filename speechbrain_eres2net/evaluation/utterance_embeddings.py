"""Embeddings of the recordings an evaluation needs: trial lists and CSVs.

Every recording is embedded once by a
:class:`~speechbrain_eres2net.inference.embedder.SpeakerEmbedder`, batched
by length; those with too little speech are left out and counted.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple, Optional

import numpy as np

from ..dataio.speaker_csv import read_speaker_csv
from ..dataio.trials import preview
from ..dataio.vad import Speech
from ..dataio.voxceleb_prepare import trial_utterances
from ..inference.embedder import SpeakerEmbedder
from ..paths import PathLike
from ..settings import default
from .scoring import _subsample_per_speaker

logger = logging.getLogger(__name__)


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
    >>> import soundfile, tempfile
    >>> from pathlib import Path
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
    >>> import tempfile
    >>> from pathlib import Path
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
