"""Speed perturbation as in the official recipe: each speed is a new speaker.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import torch


def change_speed(wav: torch.Tensor, speed: float) -> torch.Tensor:
    """Plays ``wav`` ``speed`` times faster (pitch shifts with it, like sox).

    A thin wrapper over torchaudio's resampler, not SpeechBrain's
    ``SpeedPerturb``: that augmentation draws a random speed per batch and
    keeps the label, while the official recipe needs a given speed per
    utterance, each speed a new speaker (:func:`speed_label`).

    Example
    -------
    >>> change_speed(torch.zeros(16000), 1.1).shape
    torch.Size([14546])
    """
    if speed == 1.0:
        return wav
    from torchaudio.functional import resample

    # Treating the audio as sampled at speed * fs and resampling to fs is
    # sox's "speed" + "rate"; percent units keep the polyphase filter short.
    return resample(wav, orig_freq=round(speed * 100), new_freq=100)


def active_speeds(hparams: dict) -> list[float]:
    """The speeds used: ``speeds`` with speed perturbation, else ``[1.0]``."""
    if not hparams.get("speed_perturb", False):
        return [1.0]
    speeds = [float(s) for s in hparams["speeds"]]
    if speeds[0] != 1.0:
        raise ValueError(
            f"speeds must start with 1.0 (the original speakers), got {speeds}"
        )
    return speeds


def speed_label(speaker: int, speed_index: int, num_speakers: int) -> int:
    """Class of a speaker at a speed: speed ``i`` is a new speaker ``spk + N i``.

    Example
    -------
    >>> speed_label(3, 0, 10), speed_label(3, 2, 10)
    (3, 23)
    """
    return speaker + num_speakers * speed_index


def num_classes(hparams: dict, num_speakers: int) -> int:
    """Classifier outputs: one class per (speaker, speed) pair.

    Example
    -------
    >>> num_classes({"speed_perturb": True, "speeds": [1.0, 0.9, 1.1]}, 10)
    30
    >>> num_classes({"speed_perturb": False, "speeds": [1.0, 0.9, 1.1]}, 10)
    10
    """
    return num_speakers * len(active_speeds(hparams))
