"""Reading audio files for inference: 16 kHz mono float waveforms, clear errors.

Users point the command line at whatever they have: 8 kHz telephone audio,
stereo recordings, broken downloads. Every file is read with soundfile,
averaged to mono and resampled to the model's rate; each of those two
conversions is announced once per process on stderr so that nobody is
surprised, and every failure is an :class:`AudioError` that names the file
and the reason in one line.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import functools
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np
import soundfile
import torch
from speechbrain.dataio.preprocess import AudioNormalizer

from ..paths import PathLike

logger = logging.getLogger(__name__)

# Conversions already announced in this process: each is said once.
_announced: set[str] = set()


class AudioError(ValueError):
    """A file that cannot be used as speech input; the message names it."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def announce_once(key: str, message: str) -> None:
    """Logs ``message`` as a warning the first time ``key`` is announced.

    A warning, so that it reaches stderr even where no logging is set up
    (Python's last-resort handler), as a conversion the user should know of.

    Example
    -------
    >>> announce_once("doctest", "audio at 8000 Hz is resampled to 16000 Hz")
    """
    if key not in _announced:
        _announced.add(key)
        logger.warning("%s", message)


class AudioInfo(NamedTuple):
    """What an audio file's header says (:func:`check_audio_file`)."""

    frames: int
    samplerate: int
    channels: int

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.frames / self.samplerate


def check_audio_file(path: PathLike) -> AudioInfo:
    """Header-level checks of an audio file, without decoding it.

    The one place the package reads audio headers (inference, the corpus
    preparation, augmentation sources, m4a conversion): one ``stat`` and one
    open, no ``pathlib`` object (preparing VoxCeleb2 reads a million).

    Raises
    ------
    AudioError
        The file is missing, a folder, empty, not audio, has no samples or
        is a truncated WAV file.

    Example
    -------
    >>> check_audio_file("no/such/file.wav")
    Traceback (most recent call last):
    ...
    speechbrain_eres2net.dataio.audio.AudioError: no/such/file.wav: file not found
    """
    name = os.fspath(path)
    try:
        status = os.stat(name)
    except FileNotFoundError:
        raise AudioError(name, "file not found") from None
    except OSError as err:
        raise AudioError(name, f"cannot read the file ({err.strerror})") from err
    if stat.S_ISDIR(status.st_mode):
        raise AudioError(name, "is a folder, expected an audio file")
    if status.st_size == 0:
        raise AudioError(name, "file is empty (0 bytes)")
    try:
        with soundfile.SoundFile(name) as f:
            info = AudioInfo(f.frames, f.samplerate, f.channels)
            log = f.extra_info
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(name, f"not a readable audio file ({_short(err)})") from err
    if info.frames == 0:
        raise AudioError(name, "audio has no samples")
    _check_not_truncated(name, log)
    return info


def read_audio(
    path: PathLike,
    sample_rate: int = 16000,
    min_samples: int = 1,
    info: Optional[AudioInfo] = None,
) -> torch.Tensor:
    """Reads an audio file as a mono float waveform at ``sample_rate``.

    Arguments
    ---------
    path : str or path
        Any file soundfile can read (wav, flac, ogg, ...).
    sample_rate : int
        Rate of the returned waveform; other rates are resampled.
    min_samples : int
        Fewest samples (after resampling) the caller can use; shorter audio
        is an error that says the duration needed.
    info : AudioInfo, optional
        The file's :func:`check_audio_file` result, when the caller already
        has it (its header is then not checked again).

    Returns
    -------
    torch.Tensor
        (samples,) float32 waveform in [-1, 1].

    Raises
    ------
    AudioError
        The file is missing, empty, not audio, corrupt or too short.

    Example
    -------
    >>> import tempfile
    >>> path = tempfile.mktemp(suffix=".wav")
    >>> soundfile.write(path, np.zeros((8000, 2)), 8000)
    >>> read_audio(path).shape
    torch.Size([16000])
    >>> read_audio(path, min_samples=20000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_eres2net.dataio.audio.AudioError: ...: audio is 1.000 s long, ...
    """
    path = Path(path)
    if info is None:
        check_audio_file(path)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(path, f"not a readable audio file ({_short(err)})") from err
    wav = _to_model_input(path, data, rate, sample_rate)
    if wav.shape[0] < min_samples:
        raise AudioError(
            path,
            f"audio is {wav.shape[0] / sample_rate:.3f} s long, shorter than "
            f"the {min_samples / sample_rate:.3f} s the model needs",
        )
    return wav


def audio_blocks(
    path: PathLike,
    sample_rate: int = 16000,
    block_seconds: float = 60.0,
    info: Optional[AudioInfo] = None,
) -> Iterator[torch.Tensor]:
    """Reads a long audio file block by block, as :func:`read_audio` would.

    Memory stays at one block whatever the file's length. Blocks are mono,
    at ``sample_rate``, and (but for the last) ``block_seconds`` long at the
    file's own rate; each is resampled on its own, which differs from
    resampling the whole file only within a few samples of the block edges.

    Example
    -------
    >>> import tempfile
    >>> path = tempfile.mktemp(suffix=".wav")
    >>> soundfile.write(path, np.zeros(40000), 16000)
    >>> [b.shape[0] for b in audio_blocks(path, block_seconds=1.0)]
    [16000, 16000, 8000]
    """
    path = Path(path)
    if info is None:
        info = check_audio_file(path)
    block = max(1, int(block_seconds * info.samplerate))
    try:
        for data in soundfile.blocks(
            str(path), blocksize=block, dtype="float32", always_2d=True
        ):
            yield _to_model_input(path, data, info.samplerate, sample_rate)
    except (soundfile.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"not a readable audio file ({_short(err)})") from err


def _to_model_input(
    path: Path, data: np.ndarray, rate: int, sample_rate: int
) -> torch.Tensor:
    """(samples, channels) float data -> checked mono waveform at ``sample_rate``."""
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    if data.shape[1] > 1:
        announce_once(
            "mono",
            f"multi-channel audio (e.g. {path.name}, {data.shape[1]} channels) "
            "is averaged to mono",
        )
    if rate != sample_rate:
        announce_once(
            f"rate {rate}",
            f"audio at {rate} Hz (e.g. {path.name}) is resampled to {sample_rate} Hz",
        )
    # SpeechBrain's own normaliser (average to mono, cached resamplers), the
    # one its inference classes use.
    return _normalizer(sample_rate)(torch.from_numpy(data), rate)


@functools.cache
def _normalizer(sample_rate: int) -> AudioNormalizer:
    return AudioNormalizer(sample_rate=sample_rate, mix="avg-to-mono")


def _check_not_truncated(path: PathLike, log: str) -> None:
    """Rejects a WAV file whose data chunk is shorter than its header says.

    libsndfile silently reads what is there; a cut download would then be
    embedded as if it were the whole recording. Streaming writers that leave
    the size field at 0 or 0xFFFFFFFF are not truncated files.
    """
    match = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", log, re.MULTILINE)
    if match:
        announced, present = int(match.group(1)), int(match.group(2))
        if present < announced < 0x7FFFFFFF:
            raise AudioError(
                path,
                f"file is truncated: header announces {announced} bytes of "
                f"audio data, only {present} are present",
            )


def _short(err: Exception) -> str:
    """First line of an exception message, without libsndfile's repetition."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.replace("Error opening ", "").strip()


AUDIO_SUFFIXES = {
    ".wav",
    ".flac",
    ".ogg",
    ".mp3",
    ".opus",
    ".aiff",
    ".aif",
    ".au",
    ".sph",
}
