"""Defaults of the inference and evaluation commands, read from ``verification.yaml``.

The command line and the Python API take their defaults (batch sizes, AS-norm
cohort, decision prior and costs, calibration) from the scalar entries of
``hparams/verification.yaml``, the same file the verification recipe runs
with, so a default lives in one place.
"""

from __future__ import annotations

import functools
from typing import Any

from .paths import hparams_file

# The speech handling of a recording (dataio.speech_handling.SpeechHandling),
# by its YAML names: defaults of the API, and what a model folder records.
SPEECH_KEYS = (
    "vad",
    "min_speech_seconds",
    "vad_threshold",
    "vad_min_speech_seconds",
    "vad_min_silence_seconds",
    "vad_pad_seconds",
    "trim_min_pause_seconds",
    "trim_pad_seconds",
)

# Scalar entries of verification.yaml that are defaults of the API and CLI.
SETTING_KEYS = (
    "seed",
    "batch_size",
    "batch_seconds_cpu",
    "batch_seconds_cuda",
    "decode_chunk_files",
    "num_workers",
    "rank_wait_hours",
    "graph_frames_multiple",
    "openvino_lengths_kept",
    "top_k",
    "cohort_utts_per_speaker",
    "p_target",
    "c_miss",
    "c_fa",
    "min_enroll_speech_seconds",
    "gallery_scoring",
    "p_enrolled",
    "identify_top_k",
    "diarize_window_seconds",
    "diarize_hop_seconds",
    "diarize_min_window_seconds",
    "diarize_min_pause_seconds",
    "diarize_clustering",
    "diarize_p_same",
    "diarize_spectral_pval",
    "diarize_max_speakers",
    "diarize_max_clustered",
    "calibration_prior",
    "calibration_quality",
    "calibration_enrolled_recordings",
    "fp32_engine_cpu",
    "int8_engine_cpu",
    "int8_calibration_utterances",
    "int8_calibration_method",
    "int8_reduce_range",
    "int8_min_cosine",
    *SPEECH_KEYS,
    "window_seconds",
    "model_folder_trusted_targets",
)


@functools.lru_cache(maxsize=1)
def _read() -> dict[str, Any]:
    from ruamel.yaml import YAML

    path = hparams_file("verification.yaml")
    data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    missing = [k for k in SETTING_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing default(s) {missing}")
    return {
        k: list(data[k]) if isinstance(data[k], list) else data[k] for k in SETTING_KEYS
    }


def default(key: str) -> Any:
    """The default of one setting.

    Example
    -------
    >>> default("top_k")
    300
    """
    return _read()[key]


def batch_seconds(device_type: str) -> float:
    """Most padded audio seconds per forward pass on a device type.

    Example
    -------
    >>> batch_seconds("cpu")
    20.0
    """
    return float(
        default("batch_seconds_cuda" if device_type == "cuda" else "batch_seconds_cpu")
    )
