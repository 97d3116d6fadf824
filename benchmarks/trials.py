"""realspk dev trials under a condition: each side embedded, then scored.

A condition is the files of a side (clean, wrapped in silence or noise, cut
short) and the embedder that reads them (a speech handling). Used by the
``robustness`` and ``speech`` benchmarks, whose reference is always the same
trials scored clean with speech handling off.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from speechbrain_eres2net.dataio.trials import read_trials
from speechbrain_eres2net.evaluation.calibration import act_dcf, cllr
from speechbrain_eres2net.evaluation.metrics import verification_metrics
from speechbrain_eres2net.evaluation.pipeline import quality_kinds, trial_quality

from .measure import REALSPK
from .signals import RATE, at_dbfs, write_wav

P_TARGET = 0.01
WRAP_SECONDS = (5.0, 20.0)
SILENCE_DITHER_DBFS, WRAP_NOISE_DBFS = -70.0, -35.0


@dataclasses.dataclass
class Side:
    """Embeddings and net speech of one side of the trials, by trial name."""

    embeddings: dict[str, np.ndarray]
    seconds: dict[str, float]
    errors: dict[str, str]


def embed_side(embedder, files: dict[str, Path]) -> Side:
    """Embeds ``name -> file`` with ``embed_files`` (each file once).

    A file embedded with no speech heard at all (``min_speech_seconds`` 0 with
    ``vad: check``) has no duration to calibrate with: it counts as refused.
    """
    done = embedder.embed_files(list(files.values()), progress=False)
    by_path = {str(path): name for name, path in files.items()}
    errors = {by_path[p]: reason for p, reason in done.errors.items()}
    silent = {p for p, s in done.speech.items() if s.seconds <= 0}
    errors.update({by_path[p]: "no speech heard" for p in silent})
    return Side(
        {by_path[p]: e for p, e in done.embeddings.items() if p not in silent},
        {by_path[p]: s.seconds for p, s in done.speech.items() if p not in silent},
        errors,
    )


def read_dev_trials(limit: Optional[int]) -> tuple[np.ndarray, list[str], list[str]]:
    """realspk dev trials; with ``limit``, the first half target, half not."""
    labels, enrol, test = read_trials(REALSPK / "dev_trials.txt")
    if limit is not None and limit < labels.size:
        keep = np.concatenate(
            [np.flatnonzero(labels == k)[: (limit + 1 - k) // 2] for k in (1, 0)]
        )
        keep.sort()
        labels = labels[keep]
        enrol, test = [enrol[i] for i in keep], [test[i] for i in keep]
    return labels, enrol, test


def score_trials(trials, enrol: Side, test: Side, calibration) -> dict:
    """EER (%), minDCF, and with a calibration actDCF(0.01) and Cllr of the
    trials whose sides both have an embedding (the others are counted).

    Example
    -------
    >>> same = Side({"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])},
    ...             {"a": 3.0, "b": 3.0}, {})
    >>> trials = (np.array([1, 0, 0, 1]), ["a", "a", "b", "b"], ["a", "b", "a", "b"])
    >>> score_trials(trials, same, same, None)["eer"]  # perfectly separable
    0.0
    """
    labels, enrol_names, test_names = trials
    keep = [
        i
        for i, (a, b) in enumerate(zip(enrol_names, test_names))
        if a in enrol.embeddings and b in test.embeddings
    ]
    names = sorted({f"e:{enrol_names[i]}" for i in keep})
    names += sorted({f"t:{test_names[i]}" for i in keep})
    index = {n: k for k, n in enumerate(names)}
    left = np.array([index[f"e:{enrol_names[i]}"] for i in keep])
    right = np.array([index[f"t:{test_names[i]}"] for i in keep])
    sides = {n: enrol if n.startswith("e:") else test for n in names}
    embeddings = {n: sides[n].embeddings[n[2:]] for n in names}
    durations = {n: sides[n].seconds[n[2:]] for n in names}
    unit = np.stack([embeddings[n] / np.linalg.norm(embeddings[n]) for n in names])
    scores = np.einsum("ij,ij->i", unit[left], unit[right])
    kept = labels[keep]
    metrics = verification_metrics(scores, kept, (P_TARGET,))
    result = {
        "eer": 100.0 * metrics["eer"],
        "min_dcf": metrics[f"min_dcf_{P_TARGET:g}"],
        "act_dcf": None,
        "cllr": None,
        "n_trials": len(keep),
        "left_out": int(labels.size - len(keep)),
        "median_test_seconds": statistics.median(
            durations[n] for n in names if n.startswith("t:")
        ),
    }
    if calibration is not None:
        quality, _ = trial_quality(
            quality_kinds(calibration), names, left, right, embeddings, durations
        )
        llrs = calibration.llr(scores, quality)
        result["act_dcf"] = act_dcf(llrs, kept, P_TARGET)
        result["cllr"] = cllr(llrs, kept)
    return result


def wrap_test_side(test: Sequence[str], folder: Path, kind: str, seed: int) -> dict:
    """Each distinct test file wrapped in 5-20 s of silence (digital zero plus
    -70 dBFS dither) or of -35 dBFS white noise, drawn per file and side."""
    dbfs = SILENCE_DITHER_DBFS if kind == "silence" else WRAP_NOISE_DBFS
    files = {}
    for k, rel in enumerate(sorted(set(test))):
        rng = np.random.default_rng([seed, k, int(kind == "noise")])
        speech, rate = soundfile.read(str(REALSPK / "wav" / rel), dtype="float64")
        assert rate == RATE, f"{rel}: {rate} Hz"
        pads = [
            at_dbfs(rng.normal(size=int(rng.uniform(*WRAP_SECONDS) * RATE)), dbfs)
            for _ in range(2)
        ]
        files[rel] = write_wav(
            folder / kind / rel, np.concatenate([pads[0], speech, pads[1]])
        )
    return files


def cut_test_side(test: Sequence[str], folder: Path, detector, seconds: float):
    """Each distinct test file trimmed, then cut to its first ``seconds``;
    returns the files and how many held less net speech than that."""
    files, shorter = {}, 0
    for rel in sorted(set(test)):
        wav, rate = soundfile.read(str(REALSPK / "wav" / rel), dtype="float32")
        trimmed = detector(torch.from_numpy(wav), rate).trim(torch.from_numpy(wav))
        shorter += int(trimmed.shape[0] < seconds * rate)
        clip = trimmed[: int(seconds * rate)].numpy()
        files[rel] = write_wav(folder / f"{seconds:g}s" / rel, clip)
    return files, shorter
