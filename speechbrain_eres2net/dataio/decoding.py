"""Audio decoding for batch extraction, in DataLoader workers when asked.

Extraction reads each file's header once (its length decides the batch and
whether it is streamed window by window), decodes it once, and hands the
waveforms to the model in chunks of files sorted longest first. With
``num_workers > 0`` a :class:`torch.utils.data.DataLoader` decodes the next
chunks in worker processes while the model runs on the current one.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Optional

import torch
from torch.utils.data import DataLoader, Dataset

from .audio import AudioError, AudioInfo, check_audio_file, read_audio


class DecodedFile(NamedTuple):
    """One input file, decoded or not."""

    index: int
    """Position in the input list."""
    path: str
    duration: float
    """Seconds (0.0 when the header could not be read)."""
    wav: Optional[torch.Tensor]
    """(samples,) at the model's rate; None when streamed or unreadable."""
    error: Optional[str]
    """Why the file cannot be embedded (None when it can be tried)."""
    info: Optional[AudioInfo] = None
    """The header, for a streamed file (so it is not read again)."""


class AudioChunks(Dataset):
    """Chunks of an input list: item ``k`` is chunk ``k``, decoded.

    Arguments
    ---------
    paths : sequence
        Audio files.
    indices : sequence of int
        The positions (in the caller's input list) to decode, in order.
    sample_rate : int
        Rate of the waveforms.
    stream_seconds : float
        Files longer than this are not decoded (``wav`` None): the caller
        reads them block by block.
    chunk_files : int
        Files per chunk.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile
    >>> d = tempfile.mkdtemp()
    >>> soundfile.write(f"{d}/a.wav", np.zeros(8000), 16000)
    >>> chunks = AudioChunks([f"{d}/a.wav", f"{d}/none.wav"], [0, 1], 16000, 60.0, 8)
    >>> [(f.index, f.duration, f.error) for f in chunks[0]]
    [(0, 0.5, None), (1, 0.0, 'file not found')]
    """

    def __init__(
        self,
        paths: Sequence[str],
        indices: Sequence[int],
        sample_rate: int,
        stream_seconds: float,
        chunk_files: int,
    ) -> None:
        self.paths = paths
        self.indices = list(indices)
        self.sample_rate = sample_rate
        self.stream_seconds = stream_seconds
        self.chunk_files = chunk_files

    def __len__(self) -> int:
        return -(-len(self.indices) // self.chunk_files)

    def __getitem__(self, k: int) -> list[DecodedFile]:
        part = self.indices[k * self.chunk_files : (k + 1) * self.chunk_files]
        out = []
        for i in part:
            path = str(self.paths[i])
            try:
                info = check_audio_file(path)
                wav = None
                if info.duration <= self.stream_seconds:
                    wav = read_audio(path, self.sample_rate, info=info)
                streamed = info if wav is None else None
                out.append(DecodedFile(i, path, info.duration, wav, None, streamed))
            except AudioError as err:
                out.append(DecodedFile(i, path, 0.0, None, err.reason))
        # Longest first, so the first batch shows the peak memory at once.
        out.sort(key=lambda f: -f.duration)
        return out


def _as_is(chunk: list[DecodedFile]) -> list[DecodedFile]:
    return chunk


def decoded_chunks(chunks: AudioChunks, num_workers: int = 0) -> Iterator[list]:
    """The chunks in order, decoded in ``num_workers`` worker processes
    (0: in this process).

    Example
    -------
    >>> list(decoded_chunks(AudioChunks([], [], 16000, 60.0, 4)))
    []
    """
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers == 0:
        return (chunks[k] for k in range(len(chunks)))
    loader = DataLoader(
        chunks,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_as_is,
        prefetch_factor=2,
    )
    return iter(loader)
