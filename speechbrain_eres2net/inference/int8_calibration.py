"""The audio that calibrates an int8 model: which files, and their features.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import torch

from ..dataio.audio import AudioError, read_audio
from ..dataio.input_files import expand_inputs
from ..paths import PathLike
from ..settings import default


def calibration_files(
    inputs: Sequence[PathLike], limit: Optional[int] = None
) -> list[Path]:
    """Audio files for int8 calibration, evenly spread over the sorted list.

    Arguments
    ---------
    inputs : sequence of path
        Audio files, folders or lists
        (:func:`~speechbrain_eres2net.dataio.input_files.expand_inputs`).
    limit : int, optional
        Most files (default: ``int8_calibration_utterances`` of
        verification.yaml).

    Returns
    -------
    list of Path
        Every ``len // limit``-th file of the sorted list, at most ``limit``.

    Example
    -------
    >>> calibration_files(["a.wav", "b.wav", "c.wav"], limit=2)
    [PosixPath('a.wav'), PosixPath('b.wav')]
    """
    files = sorted(expand_inputs(inputs))
    if not files:
        raise ValueError(
            "int8_calibration: no audio files found (give files or folders of "
            "real speech)"
        )
    limit = limit or int(default("int8_calibration_utterances"))
    return files[:: max(1, len(files) // limit)][:limit]


@torch.no_grad()
def calibration_features(
    inputs: Sequence[PathLike],
    features: Callable[[torch.Tensor], torch.Tensor],
    sample_rate: int,
    min_samples: int,
    limit: Optional[int] = None,
) -> list[torch.Tensor]:
    """Features of the files :func:`calibration_files` picks; unreadable ones
    are skipped.

    Arguments
    ---------
    inputs : sequence of path
        Audio files, folders or lists.
    features : callable
        (samples,) waveform -> normalised (frames, feats) features.
    sample_rate : int
        Rate the files are read at.
    min_samples : int
        Fewest samples the model takes (shorter files are skipped).
    limit : int, optional
        Most files (:func:`calibration_files`).

    Returns
    -------
    list of torch.Tensor
        One (frames, feats) tensor per readable file.
    """
    feats = []
    for path in calibration_files(inputs, limit):
        try:
            wav = read_audio(path, sample_rate, min_samples)
        except AudioError:
            continue  # one unreadable file does not spoil calibration
        feats.append(features(wav))
    if not feats:
        raise ValueError("int8_calibration: none of the audio files could be read")
    return feats
