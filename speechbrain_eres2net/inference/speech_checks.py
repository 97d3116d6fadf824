"""What a recording must hold to be embedded: enough speech, enough samples.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from ..dataio.audio import AudioError
from ..dataio.vad import Speech
from ..paths import PathLike


class NotEnoughSpeechError(AudioError):
    """A recording with less net speech than the minimum: never embedded."""


def check_speech(path: PathLike, speech: Speech, min_speech_seconds: float) -> None:
    """Raises :class:`NotEnoughSpeechError` below ``min_speech_seconds``.

    Example
    -------
    >>> half = Speech(((0, 8000),), 16000, 16000)
    >>> check_speech("a.wav", half, 0.5)  # enough
    >>> try:
    ...     check_speech("a.wav", half, 1.0)
    ... except NotEnoughSpeechError as err:
    ...     print(err.reason[:45])
    0.50 s of net speech in 1.00 s of audio, less
    """
    if speech.seconds < min_speech_seconds:
        raise NotEnoughSpeechError(
            path,
            f"{speech.seconds:.2f} s of net speech in {speech.duration:.2f} s "
            f"of audio, less than the {min_speech_seconds:g} s minimum "
            "(min_speech_seconds; --min-speech-seconds or --vad off to change)",
        )


def check_samples(
    path: PathLike, samples: int, min_samples: int, sample_rate: int, vad: str
) -> None:
    """Raises :class:`AudioError` when ``samples`` (of speech alone with
    ``vad="trim"``, else of audio) are fewer than the model needs.

    Example
    -------
    >>> try:
    ...     check_samples("a.wav", 800, 1680, 16000, "off")
    ... except AudioError as err:
    ...     print(err)
    a.wav: audio is 0.050 s long, shorter than the 0.105 s the model needs
    """
    if samples < min_samples:
        what = "speech" if vad == "trim" else "audio"
        raise AudioError(
            path,
            f"{what} is {samples / sample_rate:.3f} s long, shorter than "
            f"the {min_samples / sample_rate:.3f} s the model needs",
        )
