"""Speech activity detection: where a recording holds speech, and how much.

A speaker model embeds whatever it is given: silence, hum or a tone get an
embedding, and two silent files score as "the same speaker". Every entry point
of the package therefore asks first how many seconds of *net speech* a
recording holds (:class:`SpeechDetector`), refuses recordings with too little
(``min_speech_seconds`` of ``hparams/verification.yaml``), and embeds only the
speech (``vad: trim``).

The detector is Silero VAD (MIT licence, github.com/snakers4/silero-vad),
chosen by measurement (README, Performance: ``python -m benchmarks --only
robustness``): every synthetic non-speech signal refused, no real recording
refused. Its weights ship inside the ``silero-vad`` pip package (a core
dependency; nothing is downloaded). We do not call the package's own model:
its TorchScript model runs one 32 ms chunk per call (130 ms per 10 s of audio
here, half of an embedding's cost) and importing the package sets torch to
one thread for the whole process. :class:`SileroVAD` is the same network
written in batch form: the short-time spectrum and the convolutional encoder
of every chunk run at once and only the LSTM runs over time, about 10 ms per
10 s (probabilities within 1e-5 of the package's ``audio_forward``, tested).
Segments follow Silero's ``get_speech_timestamps`` rules: hysteresis
thresholds, pauses shorter than ``vad_min_silence_seconds`` bridged, bursts
shorter than ``vad_min_speech_seconds`` dropped, ``vad_pad_seconds`` of
context kept around each segment.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torchaudio
from torch import nn
from torch.nn import functional as F

from ..settings import default

VAD_RATE = 16000
VAD_MODES = ("trim", "check", "off")


class SileroVAD(nn.Module):
    """Silero VAD (16 kHz) with every chunk's encoder run in one batch.

    The network of Silero VAD v5/v6: each 512-sample chunk, with the 64
    samples before it as context, goes through a 256-point STFT (a fixed
    convolution), four 1-D convolutions and an LSTM cell whose state runs
    from chunk to chunk; a sigmoid gives the chunk's speech probability.

    Example
    -------
    >>> vad = SileroVAD().eval()  # untrained weights; see from_package()
    >>> probs, state = vad(torch.zeros(1, 16000))
    >>> probs.shape  # one probability per 32 ms chunk
    torch.Size([1, 32])
    """

    CHUNK = 512
    CONTEXT = 64

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("stft_basis", torch.zeros(258, 1, 256))
        self.encoder = nn.ModuleList(
            [
                nn.Conv1d(129, 128, 3, stride=1, padding=1),
                nn.Conv1d(128, 64, 3, stride=2, padding=1),
                nn.Conv1d(64, 64, 3, stride=2, padding=1),
                nn.Conv1d(64, 128, 3, stride=1, padding=1),
            ]
        )
        self.lstm = nn.LSTM(128, 128, batch_first=True)
        self.head = nn.Conv1d(128, 1, 1)

    def forward(
        self, wav: torch.Tensor, state: Optional[tuple] = None
    ) -> tuple[torch.Tensor, tuple]:
        """Speech probabilities of consecutive 512-sample chunks.

        Arguments
        ---------
        wav : torch.Tensor
            (batch, samples) at 16 kHz; the last chunk is zero-padded.
        state : tuple, optional
            The state returned by the previous call on the same stream, so
            that a recording can be processed block by block (blocks of a
            multiple of 512 samples give the probabilities of one call).

        Returns
        -------
        probs : torch.Tensor
            (batch, chunks) speech probabilities.
        state : tuple
            LSTM state and the last 64 samples, for the next block.
        """
        batch = wav.shape[0]
        if state is None:
            context = wav.new_zeros(batch, self.CONTEXT)
            lstm_state = None
        else:
            *lstm_state, context = state
            lstm_state = tuple(lstm_state)
        wav = F.pad(wav, (0, (-wav.shape[1]) % self.CHUNK))
        stream = torch.cat([context, wav], dim=1)
        chunks = stream.unfold(1, self.CHUNK + self.CONTEXT, self.CHUNK)
        steps = chunks.shape[1]
        x = chunks.reshape(batch * steps, 1, -1)
        x = F.pad(x, (0, self.CONTEXT), mode="reflect")
        x = F.conv1d(x, self.stft_basis, stride=128)
        half = x.shape[1] // 2
        x = (x[:, :half] ** 2 + x[:, half:] ** 2).sqrt()
        for conv in self.encoder:
            x = F.relu(conv(x))
        x = x.reshape(batch, steps, -1)
        hidden, (h, c) = self.lstm(x, lstm_state)
        probs = torch.sigmoid(self.head(F.relu(hidden).transpose(1, 2)))[:, 0]
        return probs, (h, c, stream[:, -self.CONTEXT :])

    @classmethod
    @functools.lru_cache(maxsize=1)
    def from_package(cls) -> SileroVAD:
        """The weights shipped in the ``silero-vad`` pip package (cached).

        The package is located without importing it (its import sets torch
        to one thread for the whole process).
        """
        spec = importlib.util.find_spec("silero_vad")
        if spec is None or not spec.submodule_search_locations:
            from ..errors import MissingDependencyError

            raise MissingDependencyError(
                "speech detection needs silero-vad: pip install silero-vad"
            )
        path = Path(spec.submodule_search_locations[0]) / "data" / "silero_vad.jit"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            packaged = torch.jit.load(str(path), map_location="cpu").state_dict()
        weights = {"stft_basis": packaged["_model.stft.forward_basis_buffer"]}
        for i in range(4):
            for kind in ("weight", "bias"):
                weights[f"encoder.{i}.{kind}"] = packaged[
                    f"_model.encoder.{i}.reparam_conv.{kind}"
                ]
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            weights[f"lstm.{kind}_l0"] = packaged[f"_model.decoder.rnn.{kind}"]
        weights["head.weight"] = packaged["_model.decoder.decoder.2.weight"]
        weights["head.bias"] = packaged["_model.decoder.decoder.2.bias"]
        model = cls()
        model.load_state_dict(weights)
        return model.eval()


@dataclass(frozen=True)
class Speech:
    """Where a recording holds speech.

    Arguments
    ---------
    segments : tuple of (int, int)
        Sample ranges ``[start, end)`` of speech, sorted, not overlapping.
    samples : int
        Length of the recording in samples.
    sample_rate : int
        Rate the sample indices refer to.

    Example
    -------
    >>> speech = Speech(((0, 8000), (16000, 24000)), 32000, 16000)
    >>> speech.seconds, speech.duration
    (1.0, 2.0)
    >>> speech.trim(torch.arange(32000.0)).shape
    torch.Size([16000])
    """

    segments: tuple[tuple[int, int], ...]
    samples: int
    sample_rate: int

    @property
    def seconds(self) -> float:
        """Net speech in seconds."""
        return sum(end - start for start, end in self.segments) / self.sample_rate

    @property
    def duration(self) -> float:
        """Length of the whole recording in seconds."""
        return self.samples / self.sample_rate

    @classmethod
    def whole(cls, samples: int, sample_rate: int) -> Speech:
        """A recording taken as speech from end to end (no detection)."""
        return cls(((0, samples),) if samples else (), samples, sample_rate)

    def trim(self, wav: torch.Tensor) -> torch.Tensor:
        """The speech segments of ``wav`` (samples,), concatenated."""
        if not self.segments:
            return wav[:0]
        return torch.cat([wav[start:end] for start, end in self.segments])

    def shifted(self, offset: int) -> tuple[tuple[int, int], ...]:
        """The segments moved by ``offset`` samples (for block-wise detection)."""
        return tuple((start + offset, end + offset) for start, end in self.segments)


def speech_segments(
    probs: Sequence[float],
    threshold: float,
    min_speech_chunks: int,
    min_silence_chunks: int,
) -> list[tuple[int, int]]:
    """Chunk ranges ``[start, end)`` of speech from per-chunk probabilities.

    Speech starts at a chunk with ``prob >= threshold`` and lasts while
    ``prob >= threshold - 0.15`` (Silero's hysteresis); pauses shorter than
    ``min_silence_chunks`` are bridged, then segments shorter than
    ``min_speech_chunks`` are dropped.

    Example
    -------
    >>> p = [0.0, 0.9, 0.4, 0.9, 0.1, 0.1, 0.1, 0.8, 0.0]
    >>> speech_segments(p, 0.5, min_speech_chunks=1, min_silence_chunks=2)
    [(1, 4), (7, 8)]
    >>> speech_segments(p, 0.5, min_speech_chunks=2, min_silence_chunks=2)
    [(1, 4)]
    """
    low = threshold - 0.15
    raw, start = [], None
    for i, p in enumerate(np.asarray(probs, dtype=np.float64)):
        if start is None and p >= threshold:
            start = i
        elif start is not None and p < low:
            raw.append((start, i))
            start = None
    if start is not None:
        raw.append((start, len(probs)))
    merged: list[tuple[int, int]] = []
    for seg in raw:
        if merged and seg[0] - merged[-1][1] < min_silence_chunks:
            merged[-1] = (merged[-1][0], seg[1])
        else:
            merged.append(seg)
    return [(s, e) for s, e in merged if e - s >= min_speech_chunks]


class SpeechDetector:
    """Net speech of waveforms with Silero VAD; defaults from verification.yaml.

    Arguments
    ---------
    threshold : float, optional
        Speech probability that starts a segment (``vad_threshold``).
    min_speech_seconds : float, optional
        Shorter bursts are not speech (``vad_min_speech_seconds``).
    min_silence_seconds : float, optional
        Shorter pauses are bridged (``vad_min_silence_seconds``).
    pad_seconds : float, optional
        Context kept on each side of a segment (``vad_pad_seconds``).
    device : str
        Where the detector runs.

    Example
    -------
    >>> detector = SpeechDetector()
    >>> t = torch.arange(48000) / 16000
    >>> detector(0.5 * torch.sin(2 * torch.pi * 440 * t), 16000).seconds
    0.0
    """

    def __init__(
        self,
        threshold: Optional[float] = None,
        min_speech_seconds: Optional[float] = None,
        min_silence_seconds: Optional[float] = None,
        pad_seconds: Optional[float] = None,
        device: str = "cpu",
    ) -> None:
        def pick(value, key):
            return float(default(key) if value is None else value)

        self.threshold = pick(threshold, "vad_threshold")
        chunk = SileroVAD.CHUNK / VAD_RATE
        self.min_speech_chunks = round(
            pick(min_speech_seconds, "vad_min_speech_seconds") / chunk
        )
        self.min_silence_chunks = round(
            pick(min_silence_seconds, "vad_min_silence_seconds") / chunk
        )
        self.pad_seconds = pick(pad_seconds, "vad_pad_seconds")
        self.device = torch.device(device)
        self.model = SileroVAD.from_package().to(self.device)

    @torch.no_grad()
    def __call__(
        self, wav: torch.Tensor, sample_rate: int, state: Optional[tuple] = None
    ) -> Speech:
        """Speech segments of a mono waveform (samples,) at ``sample_rate``.

        ``state`` continues the detector's state from the previous block of
        the same recording (:meth:`stream`); segments never cross blocks.
        """
        speech, _ = self.detect(wav, sample_rate, state)
        return speech

    @torch.no_grad()
    def detect(
        self, wav: torch.Tensor, sample_rate: int, state: Optional[tuple] = None
    ) -> tuple[Speech, tuple]:
        """:meth:`__call__` that also returns the state for the next block."""
        samples = int(wav.shape[0])
        x = wav.to(self.device).float()
        if sample_rate != VAD_RATE:
            x = torchaudio.functional.resample(x, sample_rate, VAD_RATE)
        probs, state = self.model(x.unsqueeze(0), state)
        chunks = speech_segments(
            probs[0].cpu().numpy(),
            self.threshold,
            self.min_speech_chunks,
            self.min_silence_chunks,
        )
        per_chunk = SileroVAD.CHUNK * sample_rate / VAD_RATE
        pad = self.pad_seconds * sample_rate
        segments: list[tuple[int, int]] = []
        for first, last in chunks:
            start = max(0, int(first * per_chunk - pad))
            end = min(samples, int(last * per_chunk + pad))
            if segments and start <= segments[-1][1]:
                segments[-1] = (segments[-1][0], end)
            elif end > start:
                segments.append((start, end))
        return Speech(tuple(segments), samples, sample_rate), state
