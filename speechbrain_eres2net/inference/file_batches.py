"""Many files embedded in batches of similar length, each read once.

:func:`iter_files` is what
:meth:`~speechbrain_eres2net.inference.embedder.SpeakerEmbedder.iter_files`
(and so ``eres2net embed``, ``score`` and ``identify``) runs: headers and
audio are decoded in chunks (:mod:`~speechbrain_eres2net.dataio.decoding`),
grouped by :func:`~.batching.length_batches`, and embedded by an embedder's
own :meth:`embed_batch` (or window by window, :meth:`embed_stream`).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Optional, Protocol

import numpy as np
import torch

from ..dataio.audio import AudioError, AudioInfo
from ..dataio.decoding import AudioChunks, DecodedFile, decoded_chunks
from ..dataio.vad import Speech
from ..paths import PathLike
from ..settings import batch_seconds as default_batch_seconds
from ..settings import default
from .batching import length_batches
from .heap import trim_heap
from .speech_checks import NotEnoughSpeechError


class RecordingEmbedder(Protocol):
    """What batching files needs of an embedder (:class:`SpeakerEmbedder`)."""

    sample_rate: int
    window_seconds: float
    device: torch.device

    def embed_batch(self, wavs: Sequence[torch.Tensor]) -> torch.Tensor: ...

    def speech_of(
        self, path: PathLike, wav: torch.Tensor
    ) -> tuple[torch.Tensor, Speech]: ...

    def embed_stream(
        self, path: PathLike, info: Optional[AudioInfo] = None
    ) -> tuple[torch.Tensor, Speech]: ...


class FileResult(NamedTuple):
    """One file's outcome in :func:`iter_files`."""

    index: int
    """Position in the input list."""
    path: str
    embedding: Optional[np.ndarray]
    """float32 (embedding_size,), or None when refused or unreadable."""
    speech: Optional[Speech]
    error: Optional[str]
    """Why there is no embedding."""
    refused: bool
    """True when refused for too little speech."""


class EmbeddedFiles(NamedTuple):
    """What :func:`embed_files` returns."""

    embeddings: dict[str, np.ndarray]
    """str(path) -> float32 (embedding_size,) array, for every good file."""
    errors: dict[str, str]
    """str(path) -> reason, for every file that was refused or unreadable."""
    speech: dict[str, Speech]
    """str(path) -> its duration and net speech, for every embedded file."""
    refused: set[str]
    """The paths of ``errors`` refused for too little speech."""


def iter_files(
    embedder: RecordingEmbedder,
    paths: Sequence[PathLike],
    indices: Optional[Sequence[int]] = None,
    batch_size: Optional[int] = None,
    batch_seconds: Optional[float] = None,
    num_workers: Optional[int] = None,
) -> Iterator[list[FileResult]]:
    """Embeds files in batches of similar length, yielding as they finish.

    Each file's header is read once, then its audio once, in chunks of
    ``decode_chunk_files`` files (in ``num_workers`` DataLoader worker
    processes when > 0, so the model does not wait for decoding). A
    chunk is sorted longest first and grouped while the padded batch
    (utterances x longest duration) stays within ``batch_seconds`` of
    audio and ``batch_size`` utterances; a longer file forms a batch
    alone, and a file longer than ``window_seconds`` is embedded window
    by window (:meth:`embed_stream`). The defaults (``batch_size``,
    ``batch_seconds_cpu`` / ``batch_seconds_cuda``, ``num_workers``) are
    those of ``hparams/verification.yaml``: on a CPU, batches beyond
    ~20 s of audio ran slower per utterance than batches of one (2-D
    activations outgrow the caches; README, Performance), while a GPU
    needs large batches to fill up.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        What embeds the waveforms.
    paths : sequence
        Audio files.
    indices : sequence of int, optional
        The positions of ``paths`` to embed (default: all).
    batch_size, batch_seconds, num_workers : optional
        Batch limits and decoding workers (defaults: the YAML's).

    Yields
    ------
    list of FileResult
        The files of one batch (or one streamed or failed file), each
        with its embedding or the reason it has none.
    """
    if batch_size is None:
        batch_size = int(default("batch_size"))
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if batch_seconds is None:
        batch_seconds = default_batch_seconds(embedder.device.type)
    if not batch_seconds > 0:
        raise ValueError(f"batch_seconds must be > 0, got {batch_seconds}")
    if num_workers is None:
        num_workers = int(default("num_workers"))
    chunks = AudioChunks(
        [str(p) for p in paths],
        range(len(paths)) if indices is None else indices,
        embedder.sample_rate,
        embedder.window_seconds,
        int(default("decode_chunk_files")),
    )
    for chunk in decoded_chunks(chunks, num_workers):
        done = [_failed(f, f.error) for f in chunk if f.error is not None]
        if done:
            yield done
        ready = [f for f in chunk if f.error is None]
        for batch in length_batches(
            [f.duration for f in ready], batch_size, batch_seconds
        ):
            yield embed_decoded(embedder, [ready[i] for i in batch])
        del chunk, ready
        trim_heap()


def embed_decoded(
    embedder: RecordingEmbedder, files: Sequence[DecodedFile]
) -> list[FileResult]:
    """One batch of decoded files (a streamed file is a batch alone)."""
    results, kept, wavs = [], [], []
    for f in files:
        try:
            if f.wav is None:
                emb, speech = embedder.embed_stream(f.path, f.info)
                results.append(
                    FileResult(f.index, f.path, _numpy(emb), speech, None, False)
                )
                continue
            wav, speech = embedder.speech_of(f.path, f.wav)
            wavs.append(wav)
            kept.append((f, speech))
        except AudioError as err:
            results.append(_failed(f, err.reason, err))
    if wavs:
        for (f, speech), emb in zip(kept, embedder.embed_batch(wavs)):
            results.append(
                FileResult(f.index, f.path, _numpy(emb), speech, None, False)
            )
    return results


def embed_files(
    embedder: RecordingEmbedder,
    paths: Sequence[PathLike],
    batch_size: Optional[int] = None,
    progress: bool = True,
    batch_seconds: Optional[float] = None,
    num_workers: Optional[int] = None,
) -> EmbeddedFiles:
    """Embeds many files in batches of similar length (:func:`iter_files`),
    keeping every result in memory; ``eres2net embed`` streams them to
    disk instead (:mod:`speechbrain_eres2net.inference.extraction`).

    Returns
    -------
    EmbeddedFiles
        Embeddings of the good files, the reason of every refused or
        unreadable one, and each embedded file's speech.
    """
    from tqdm import tqdm

    out = EmbeddedFiles({}, {}, {}, set())
    with tqdm(
        total=len(paths), unit="file", disable=not progress, desc="embedding"
    ) as bar:
        for batch in iter_files(
            embedder, paths, None, batch_size, batch_seconds, num_workers
        ):
            for r in batch:
                if r.embedding is not None:
                    out.embeddings[r.path] = r.embedding
                    out.speech[r.path] = r.speech
                else:
                    out.errors[r.path] = r.error
                    if r.refused:
                        out.refused.add(r.path)
            bar.update(len(batch))
    return out


def _numpy(embedding: torch.Tensor) -> np.ndarray:
    return embedding.detach().float().cpu().numpy().astype(np.float32)


def _failed(
    f: DecodedFile, reason: str, error: Optional[Exception] = None
) -> FileResult:
    refused = isinstance(error, NotEnoughSpeechError)
    return FileResult(f.index, f.path, None, None, reason, refused)
