"""Speech handling: the settings that decide what of a recording is embedded.

One recording goes through the same steps wherever it enters (training crops,
``eres2net embed``/``verify``/``score``/``enroll``/``identify``, the
verification recipe): its net speech is measured with Silero VAD
(:class:`~speechbrain_eres2net.dataio.vad.SpeechDetector`), a recording with
less than ``min_speech_seconds`` is refused, and with ``vad: trim`` the
non-speech is cut out. Measuring and cutting are set apart: net speech is
measured on Silero's own segments (``vad_*``: pauses of 0.1 s bridged, 30 ms
of context), so what is refused does not depend on how much is cut, while
``trim_min_pause_seconds`` says which pauses are cut (shorter ones are kept,
as the speaker made them) and ``trim_pad_seconds`` how much context stays
around what is kept.

:class:`SpeechHandling` holds those settings as one value, so that a model
folder can record what it was trained and calibrated with, and every
component is built from the hyperparameters it was given: a value in a
recipe's YAML or on its command line wins over the packaged
``hparams/verification.yaml``, whose entries are only the API's defaults.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import torch

from ..settings import SPEECH_KEYS, default
from .vad import VAD_MODES, Speech, SpeechDetector

# The settings that decide where speech is heard (not what is cut of it).
DETECTION_KEYS = SPEECH_KEYS[2:6]


@dataclasses.dataclass(frozen=True)
class SpeechHandling:
    """What of a recording is embedded, and how much speech it needs.

    Arguments
    ---------
    vad : str
        ``"trim"`` (embed the speech alone), ``"check"`` (refuse too little
        speech, embed the whole recording) or ``"off"`` (no detection).
    min_speech_seconds : float
        Least net speech of an accepted recording.
    vad_threshold : float
        Speech probability that starts a segment.
    vad_min_speech_seconds : float
        Shorter bursts are not speech.
    vad_min_silence_seconds : float
        Shorter pauses are bridged when net speech is measured.
    vad_pad_seconds : float
        Context counted on each side of a speech segment.
    trim_min_pause_seconds : float
        With ``trim``, pauses between speech segments at least this long are
        cut; shorter ones are kept (``inf``: only what comes before the
        first and after the last speech is cut).
    trim_pad_seconds : float
        With ``trim``, context kept on each side of what is kept.

    Example
    -------
    >>> handling = SpeechHandling.resolve({"vad": "trim"}, {"vad": "off"})
    >>> handling.vad
    'trim'
    >>> handling.with_overrides(vad_pad_seconds=0.5).vad_pad_seconds
    0.5
    """

    vad: str
    min_speech_seconds: float
    vad_threshold: float
    vad_min_speech_seconds: float
    vad_min_silence_seconds: float
    vad_pad_seconds: float
    trim_min_pause_seconds: float
    trim_pad_seconds: float

    def __post_init__(self) -> None:
        if self.vad not in VAD_MODES:
            raise ValueError(f"vad must be one of {VAD_MODES}, got {self.vad!r}")
        for key in SPEECH_KEYS[1:]:
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")

    @classmethod
    def resolve(cls, *layers: Optional[Mapping[str, Any]]) -> SpeechHandling:
        """The first value each key has in ``layers``, else the packaged default.

        ``None`` values (an option not given) fall through to the next layer.
        """
        values = {}
        for key in SPEECH_KEYS:
            found = next(
                (
                    layer[key]
                    for layer in layers
                    if layer is not None and layer.get(key) is not None
                ),
                None,
            )
            values[key] = default(key) if found is None else found
        values["vad"] = str(values["vad"])
        for key in SPEECH_KEYS[1:]:
            values[key] = float(values[key])
        return cls(**values)

    def with_overrides(self, **values: Any) -> SpeechHandling:
        """A copy with the given (non-None) values replaced."""
        return SpeechHandling.resolve(values, self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        """The settings by their YAML names (what a model folder records)."""
        return dataclasses.asdict(self)

    def differences(self, other: SpeechHandling) -> dict[str, tuple[Any, Any]]:
        """Key -> (this value, other's value) where the two differ."""
        mine, theirs = self.as_dict(), other.as_dict()
        return {k: (mine[k], theirs[k]) for k in SPEECH_KEYS if mine[k] != theirs[k]}

    def detector(self, device: str = "cpu") -> Optional[SpeechDetector]:
        """The speech detector these settings describe (None with ``vad: off``)."""
        if self.vad == "off":
            return None
        return SpeechDetector(
            threshold=self.vad_threshold,
            min_speech_seconds=self.vad_min_speech_seconds,
            min_silence_seconds=self.vad_min_silence_seconds,
            pad_seconds=self.vad_pad_seconds,
            device=device,
        )

    def detection(self) -> dict[str, float]:
        """The settings that decide where speech is heard."""
        return {key: getattr(self, key) for key in DETECTION_KEYS}

    def kept_segments(
        self, segments: Sequence[tuple[int, int]], samples: int, sample_rate: int
    ) -> tuple[tuple[int, int], ...]:
        """The sample ranges ``trim`` keeps of detected speech ``segments``.

        Pauses shorter than ``trim_min_pause_seconds`` are kept, then each
        range grows by ``trim_pad_seconds`` on both sides (within the
        recording).

        Example
        -------
        >>> h = SpeechHandling.resolve({"trim_min_pause_seconds": 1.0,
        ...     "trim_pad_seconds": 0.1})
        >>> h.kept_segments([(100, 200), (1000, 1100), (5000, 5200)], 6000, 1000)
        [(0, 1200), (4900, 5300)]
        """
        pause = self.trim_min_pause_seconds * sample_rate
        pad = int(round(self.trim_pad_seconds * sample_rate))
        bridged: list[tuple[int, int]] = []
        for start, end in segments:
            if bridged and start - bridged[-1][1] < pause:
                bridged[-1] = (bridged[-1][0], end)
            else:
                bridged.append((start, end))
        kept: list[tuple[int, int]] = []
        for start, end in bridged:
            start, end = max(0, start - pad), min(samples, end + pad)
            if kept and start <= kept[-1][1]:
                kept[-1] = (kept[-1][0], end)
            else:
                kept.append((start, end))
        return kept

    def kept(self, wav: torch.Tensor, speech: Speech) -> torch.Tensor:
        """What of ``wav`` (samples,) is embedded: with ``trim`` its speech
        and the pauses shorter than ``trim_min_pause_seconds``; else all.

        Example
        -------
        >>> h = SpeechHandling.resolve({"vad": "trim",
        ...     "trim_min_pause_seconds": 0.5, "trim_pad_seconds": 0.0})
        >>> speech = Speech(((0, 8000), (12000, 16000), (40000, 48000)), 48000,
        ...                 16000)
        >>> h.kept(torch.zeros(48000), speech).shape  # the 0.25 s pause stays
        torch.Size([24000])
        """
        if self.vad != "trim":
            return wav
        segments = self.kept_segments(
            speech.segments, speech.samples, speech.sample_rate
        )
        return Speech(tuple(segments), speech.samples, speech.sample_rate).trim(wav)

    def describe(self) -> str:
        """One line for logs and model cards.

        Example
        -------
        >>> SpeechHandling.resolve({"vad": "trim", "trim_min_pause_seconds": 1,
        ...     "trim_pad_seconds": 0.2}).describe()
        'vad trim (pauses of 1 s or more cut, 0.2 s of context kept)'
        >>> SpeechHandling.resolve({"vad": "check"}).describe()
        'vad check (recordings under 1 s of net speech refused, embedded whole)'
        """
        if self.vad == "off":
            return "vad off (no speech detection)"
        if self.vad == "check":
            return (
                f"vad check (recordings under {self.min_speech_seconds:g} s of net "
                "speech refused, embedded whole)"
            )
        pauses = (
            "leading and trailing non-speech cut"
            if math.isinf(self.trim_min_pause_seconds)
            else f"pauses of {self.trim_min_pause_seconds:g} s or more cut"
        )
        return f"vad trim ({pauses}, {self.trim_pad_seconds:g} s of context kept)"
