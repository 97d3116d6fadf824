"""Speech presence: are non-speech recordings refused, and does trimming pay?

Section ``robustness`` of ``python -m benchmarks`` (needs a model folder,
``--robustness-model``; realspk for everything but the synthetic signals).
Every figure comes from the run that prints it:

1. **Non-speech refused.** Synthetic 16 kHz signals, 3-5 s each, several of
   every kind (seeded): digital zero, dither at -90 dBFS, white noise at
   -60/-40/-20/-6 dBFS, pink and brown noise, 50/60 Hz hum with harmonics,
   pure tones (100 Hz-4 kHz), chirps, click trains, DTMF-like dual tones.
   Ours: % refused by :class:`SpeakerEmbedder`'s check (net speech below
   ``min_speech_seconds``, Silero VAD); reference: % refused by a plain
   energy detector (20 ms frames above -40 dBFS RMS, :func:`energy_seconds`)
   under the same rule. WebRTC VAD (``webrtcvad``, mode 3) is a third
   detector where the module is importable (``pip install
   webrtcvad-wheels``).
2. **Real speech refused.** Every realspk train and dev recording through
   the same check; target 0 %. Min and median net speech.
3. **Wrapped trials.** realspk ``dev_trials.txt`` with the test side wrapped
   in 5-20 s (uniform, drawn per file and side) of silence (digital zero plus
   -70 dBFS dither) or of -35 dBFS white noise. EER and actDCF(0.01) (LLRs
   of the folder's ``calibration.json``, quality measures from each side's
   net speech ``Speech.seconds`` and embedding norm) with ``vad`` trim, check
   and off, against the clean trials with vad off (the model with no speech
   handling: a trimmed reference hid what trimming cost clean speech).
   Targets: trim within 0.5 EER points of that reference when wrapped, and
   trim and check within 0.1 point of it on the clean trials.
4. **Short speech.** The test side cut to its first 0.5 / 1 / 2 / 4 s of net
   speech (trimmed first), embedded with trim and ``min_speech_seconds=0``:
   EER and Cllr against full length, which is what ``min_speech_seconds``
   rests on.
5. **VAD cost.** :class:`SpeechDetector` vs one embedding of the base model
   (``ERes2Net()``, random weights, fast path) on the same 10 s of real
   speech, interleaved, median; target < 10 %.
6. **Memory for any length.** Peak RSS of ``embed_recording`` on a 1-hour
   file (half speech, half silence) vs a 1-minute one, each in a fresh
   process; target <= 1.2x. Also the seconds each took.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from .common import (
    REALSPK,
    Row,
    interleaved_times,
    run_isolated,
    run_parts,
    set_threads,
)

SECTION = "robustness"
RATE = 16000
P_TARGET = 0.01
ENERGY_THRESHOLD_DBFS = -40.0
ENERGY_FRAME_S = 0.02
WEBRTC_MODE = 3
WEBRTC_FRAME_S = 0.03
TRIM_EER_POINTS = 0.5
CLEAN_EER_POINTS = 0.1
VAD_COST_TARGET = 0.10
MEMORY_TARGET = 1.2
SHORT_SECONDS = (0.5, 1.0, 2.0, 4.0)
WRAP_SECONDS = (5.0, 20.0)
SILENCE_DITHER_DBFS = -70.0
WRAP_NOISE_DBFS = -35.0
# Seconds of sleep before each timed call (OpenVINO's and OpenMP's thread
# pools spin after a call; see benchmarks.common.interleaved_times).
PAUSE_S = 0.2


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much of everything one run measures."""

    per_kind: int
    """Synthetic signals per non-speech kind."""
    real_files: Optional[int]
    """realspk recordings checked (None: all 1,040)."""
    trials: Optional[int]
    """dev trials, half target and half non-target (None: all 1,680)."""
    cost_seconds: float
    """Audio of the VAD-cost measurement."""
    cost_repeats: int
    """Timed interleaved rounds of the VAD-cost measurement."""
    cost_fast: bool
    """VAD cost against the fast path (else the eager model)."""
    minutes: tuple[float, float]
    """(long, short) recording of the memory rows, in minutes."""


FULL = Sizes(
    per_kind=5,
    real_files=None,
    trials=None,
    cost_seconds=10.0,
    cost_repeats=7,
    cost_fast=True,
    minutes=(60.0, 1.0),
)
QUICK = Sizes(
    per_kind=1,
    real_files=12,
    trials=12,
    cost_seconds=3.0,
    cost_repeats=1,
    cost_fast=False,
    minutes=(2.0, 0.5),
)


# ----------------------------------------------------------------- signals


def at_dbfs(wav: np.ndarray, dbfs: float) -> np.ndarray:
    """``wav`` scaled to an RMS of ``dbfs`` (dB re full scale 1.0), clipped."""
    rms = float(np.sqrt(np.mean(np.square(wav)))) or 1.0
    return np.clip(wav * (10 ** (dbfs / 20) / rms), -1.0, 1.0)


def coloured_noise(rng: np.random.Generator, samples: int, exponent: float):
    """Noise whose power falls as ``1 / f**exponent`` (1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.normal(size=samples))
    freqs = np.fft.rfftfreq(samples, 1 / RATE)
    spectrum *= np.maximum(freqs, 20.0) ** (-exponent / 2)
    return np.fft.irfft(spectrum, samples)


def dual_tones(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """DTMF-like key presses: two-tone bursts of 80-250 ms with gaps."""
    rows, cols = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    out = np.zeros_like(t)
    start = int(rng.uniform(0.0, 0.3) * RATE)
    while start < t.size:
        length = int(rng.uniform(0.08, 0.25) * RATE)
        span = slice(start, min(t.size, start + length))
        low, high = rng.choice(rows), rng.choice(cols)
        out[span] = np.sin(2 * np.pi * low * t[span]) + np.sin(
            2 * np.pi * high * t[span]
        )
        start += length + int(rng.uniform(0.05, 0.3) * RATE)
    return out


def impulse_train(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Clicks at 1-50 Hz: single-sample impulses or 1-ms decaying bursts."""
    out = np.zeros(samples)
    period = int(RATE / rng.uniform(1.0, 50.0))
    burst = np.exp(-np.arange(16) / 4.0) * rng.choice([-1.0, 1.0], size=16)
    for start in range(int(rng.integers(0, period)), samples - 16, period):
        if rng.random() < 0.5:
            out[start] = rng.uniform(0.5, 0.9)
        else:
            out[start : start + 16] = rng.uniform(0.3, 0.9) * burst
    return out


def synth_kinds() -> dict[str, Callable[[np.random.Generator, np.ndarray], np.ndarray]]:
    """Kind name -> ``f(rng, t)`` making one signal for the time axis ``t``."""

    def white(dbfs: float):
        return lambda rng, t: at_dbfs(rng.normal(size=t.size), dbfs)

    def level(rng):
        return rng.uniform(-50.0, -10.0)

    def hum(rng, t):
        base = 50.0 if rng.random() < 0.5 else 60.0
        wav = sum(
            np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi)) / k
            for k in range(1, 8)
        )
        return at_dbfs(wav, rng.uniform(-30.0, -10.0))

    def tone(rng, t):
        freq = float(np.exp(rng.uniform(np.log(100.0), np.log(4000.0))))
        return at_dbfs(np.sin(2 * np.pi * freq * t), rng.uniform(-30.0, -6.0))

    def chirp(rng, t):
        period = rng.uniform(0.5, t[-1])
        low, high = rng.uniform(100.0, 500.0), rng.uniform(2000.0, 4000.0)
        local = t % period
        freq_slope = (high - low) / period
        phase = 2 * np.pi * (low * local + 0.5 * freq_slope * local**2)
        return at_dbfs(np.sin(phase), rng.uniform(-30.0, -6.0))

    return {
        "digital zero": lambda rng, t: np.zeros_like(t),
        "dither -90 dBFS": white(-90.0),
        "white noise -60 dBFS": white(-60.0),
        "white noise -40 dBFS": white(-40.0),
        "white noise -20 dBFS": white(-20.0),
        "white noise -6 dBFS": white(-6.0),
        "pink noise": lambda rng, t: at_dbfs(
            coloured_noise(rng, t.size, 1), level(rng)
        ),
        "brown noise": lambda rng, t: at_dbfs(
            coloured_noise(rng, t.size, 2), level(rng)
        ),
        "hum 50/60 Hz + harmonics": hum,
        "pure tone 100 Hz-4 kHz": tone,
        "chirp": chirp,
        "clicks / impulse train": lambda rng, t: impulse_train(rng, t.size),
        "DTMF-like dual tones": lambda rng, t: at_dbfs(
            dual_tones(rng, t), rng.uniform(-30.0, -10.0)
        ),
    }


def non_speech(per_kind: int, seed: int) -> dict[str, list[np.ndarray]]:
    """``per_kind`` signals of every kind, 3-5 s each, float64 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    signals: dict[str, list[np.ndarray]] = {}
    for kind, make in synth_kinds().items():
        signals[kind] = []
        for _ in range(per_kind):
            t = np.arange(int(rng.uniform(3.0, 5.0) * RATE)) / RATE
            signals[kind].append(make(rng, t))
    return signals


def write_wav(path: Path, wav: np.ndarray, subtype: str = "PCM_16") -> Path:
    """Writes a 16 kHz mono file (``FLOAT`` keeps levels below 16-bit steps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(wav, dtype=np.float32), RATE, subtype)
    return path


# --------------------------------------------------------------- detectors


def energy_seconds(wav: np.ndarray) -> float:
    """Net "speech" of the baseline: 20 ms frames above -40 dBFS RMS."""
    n = int(ENERGY_FRAME_S * RATE)
    frames = np.asarray(wav, dtype=np.float64)[: wav.size // n * n].reshape(-1, n)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    return float(np.count_nonzero(level > ENERGY_THRESHOLD_DBFS) * ENERGY_FRAME_S)


def webrtc_available() -> bool:
    """Whether the ``webrtcvad`` module (e.g. webrtcvad-wheels) is importable."""
    return importlib.util.find_spec("webrtcvad") is not None


def webrtc_seconds(wav: np.ndarray, vad=None) -> float:
    """Net speech by WebRTC VAD (mode 3, 30 ms frames of 16-bit PCM)."""
    import webrtcvad

    vad = vad or webrtcvad.Vad(WEBRTC_MODE)
    n = int(WEBRTC_FRAME_S * RATE)
    pcm = (np.clip(wav, -1.0, 1.0) * 32767).astype("<i2")
    voiced = sum(
        vad.is_speech(pcm[i : i + n].tobytes(), RATE)
        for i in range(0, pcm.size - n + 1, n)
    )
    return voiced * WEBRTC_FRAME_S


def detector_seconds(paths: Sequence[Path], embedder) -> dict[str, list]:
    """Per file: refused by the embedder's check, net speech of each detector.

    Returns lists keyed ``refused`` (bool), ``silero``, ``energy``,
    ``webrtc`` (seconds; absent without webrtcvad) and ``duration``.
    """
    from speechbrain_eres2net.dataio.audio import read_audio
    from speechbrain_eres2net.dataio.vad import SpeechDetector
    from speechbrain_eres2net.inference.embedder import NotEnoughSpeechError

    detector = SpeechDetector()
    vad = None
    if webrtc_available():
        import webrtcvad

        vad = webrtcvad.Vad(WEBRTC_MODE)
    out: dict[str, list] = {"refused": [], "silero": [], "energy": [], "duration": []}
    if vad is not None:
        out["webrtc"] = []
    for path in paths:
        wav = read_audio(path, embedder.sample_rate)
        try:
            embedder.speech_of(path, wav)
            out["refused"].append(False)
        except NotEnoughSpeechError:
            out["refused"].append(True)
        out["silero"].append(detector(wav, embedder.sample_rate).seconds)
        samples = wav.numpy()
        out["energy"].append(energy_seconds(samples))
        out["duration"].append(wav.shape[0] / embedder.sample_rate)
        if vad is not None:
            out["webrtc"].append(webrtc_seconds(samples, vad))
    return out


def percent_below(seconds: Sequence[float], minimum: float) -> float:
    """% of files with less net speech than ``minimum`` (refused)."""
    return 100.0 * sum(s < minimum for s in seconds) / max(1, len(seconds))


def _ratio(ours: Optional[float], reference: Optional[float]) -> Optional[float]:
    if ours is None or not reference:
        return None
    return ours / reference


def non_speech_rows(embedder, folder: Path, per_kind: int, seed: int) -> list[Row]:
    """Part 1: per kind, % refused by our check vs the energy detector."""
    minimum = embedder.min_speech_seconds
    rows, pooled = [], {}
    for kind, signals in non_speech(per_kind, seed).items():
        slug = "".join(c if c.isalnum() else "_" for c in kind)
        paths = [
            write_wav(folder / f"{slug}_{i}.wav", wav, "FLOAT")
            for i, wav in enumerate(signals)
        ]
        found = detector_seconds(paths, embedder)
        for key, values in found.items():
            pooled.setdefault(key, []).extend(values)
        ours = 100.0 * sum(found["refused"]) / len(paths)
        energy = percent_below(found["energy"], minimum)
        note = (
            f"most net speech: Silero {max(found['silero']):.2f} s, energy "
            f"{max(found['energy']):.2f} s"
        )
        if "webrtc" in found:
            note += (
                f", webrtcvad {max(found['webrtc']):.2f} s (refuses "
                f"{percent_below(found['webrtc'], minimum):.0f} %)"
            )
        rows.append(
            Row(
                SECTION,
                f"non-speech refused: {kind} ({len(paths)} x 3-5 s)",
                ours,
                energy,
                "% refused",
                _ratio(ours, energy),
                100.0,
                True,
                note + f"; reference: energy detector; refused below {minimum:g} s",
                absolute=True,
            )
        )
    rows += detector_rows("non-speech, all kinds", pooled, minimum, True)
    return rows


def detector_rows(what: str, found: dict, minimum: float, refuse: bool) -> list[Row]:
    """Silero (ours) and webrtcvad vs the energy detector on pooled files."""
    energy = percent_below(found["energy"], minimum)
    silero = percent_below(found["silero"], minimum)
    target = 100.0 if refuse else 0.0
    n = len(found["energy"])
    reference_note = (
        f"reference: energy detector ({ENERGY_FRAME_S * 1e3:g} ms frames above "
        f"{ENERGY_THRESHOLD_DBFS:g} dBFS RMS); refused below {minimum:g} s net speech"
    )
    rows = [
        Row(
            SECTION,
            f"detector Silero (ours), {what} ({n} files)",
            silero,
            energy,
            "% refused",
            _ratio(silero, energy),
            target,
            refuse,
            reference_note,
            absolute=True,
        )
    ]
    if "webrtc" in found:
        webrtc = percent_below(found["webrtc"], minimum)
        note = f"webrtcvad mode {WEBRTC_MODE}, {WEBRTC_FRAME_S * 1e3:g} ms frames; "
        rows.append(
            Row(
                SECTION,
                f"detector webrtcvad, {what} ({n} files)",
                webrtc,
                energy,
                "% refused",
                _ratio(webrtc, energy),
                note=note + reference_note,
            )
        )
    else:
        rows.append(
            Row(
                SECTION,
                f"detector webrtcvad, {what}",
                None,
                note="skipped: webrtcvad not importable (pip install webrtcvad-wheels)",
            )
        )
    return rows


# ------------------------------------------------------------ real speech


def realspk_files(limit: Optional[int] = None) -> list[str]:
    """Paths (relative to wav/) of realspk train and dev, evenly spread."""
    rels = []
    for listing in ("train_list.txt", "dev_list.txt"):
        for line in (REALSPK / listing).read_text().splitlines():
            if line.strip():
                rels.append(line.split()[1])
    if limit is not None and limit < len(rels):
        rels = rels[:: len(rels) // limit][:limit]
    return rels


def real_speech_rows(embedder, limit: Optional[int]) -> list[Row]:
    """Part 2: real recordings refused (target 0 %) and their net speech."""
    minimum = embedder.min_speech_seconds
    rels = realspk_files(limit)
    found = detector_seconds([REALSPK / "wav" / r for r in rels], embedder)
    refused = 100.0 * sum(found["refused"]) / len(rels)
    energy = percent_below(found["energy"], minimum)
    worst = rels[int(np.argmin(found["silero"]))]
    rows = [
        Row(
            SECTION,
            f"real speech refused: realspk train+dev ({len(rels)} recordings)",
            refused,
            energy,
            "% refused",
            _ratio(refused, energy),
            0.0,
            False,
            f"SpeakerEmbedder check (Silero, below {minimum:g} s); reference: "
            "energy detector",
            absolute=True,
        ),
        Row(
            SECTION,
            "real speech: median net speech (Silero) vs median duration",
            statistics.median(found["silero"]),
            statistics.median(found["duration"]),
            "s",
            _ratio(
                statistics.median(found["silero"]), statistics.median(found["duration"])
            ),
            note=f"energy detector median {statistics.median(found['energy']):.2f} s",
        ),
        Row(
            SECTION,
            "real speech: least net speech (Silero) vs shortest duration",
            min(found["silero"]),
            min(found["duration"]),
            "s",
            _ratio(min(found["silero"]), min(found["duration"])),
            note=f"least speech in {worst}",
        ),
    ]
    rows += detector_rows("real speech", found, minimum, False)[1:]
    rows.append(wrongly_refused_row(rels, found, minimum))
    return rows


def wrongly_refused_row(rels: list[str], found: dict, minimum: float) -> Row:
    """Refusals that another detector disputes: a refused recording in which
    webrtcvad (or, without it, the energy detector) hears at least
    ``minimum`` + 0.5 s of speech. The refusals it does not dispute are
    recordings that hold less speech than the minimum by every detector
    (a single word, a cough), which the issue's 0 % target counts too."""
    other = "webrtc" if "webrtc" in found else "energy"
    refused = [i for i, r in enumerate(found["refused"]) if r]
    disputed = [i for i in refused if found[other][i] >= minimum + 0.5]
    most = max((found[other][i] for i in refused), default=0.0)
    silero = max((found["silero"][i] for i in refused), default=0.0)
    named = ", ".join(rels[i] for i in disputed[:3])
    return Row(
        SECTION,
        f"real speech wrongly refused: {other} hears >= {minimum + 0.5:g} s",
        100.0 * len(disputed) / max(1, len(rels)),
        None,
        "% refused",
        None,
        0.0,
        False,
        f"{len(refused)} refused hold at most {silero:.2f} s (Silero) and "
        f"{most:.2f} s ({other}) of speech" + (f"; disputed: {named}" if named else ""),
        absolute=True,
    )


# ------------------------------------------------------------------ trials


@dataclasses.dataclass
class Side:
    """Embeddings and net speech of one side of the trials, by trial name."""

    embeddings: dict[str, np.ndarray]
    seconds: dict[str, float]
    errors: dict[str, str]


def embed_side(embedder, files: dict[str, Path]) -> Side:
    """Embeds ``name -> file`` with ``embed_files`` (each file once).

    A file embedded with no speech heard at all (``min_speech_seconds`` 0
    with ``vad: check``) has no duration measure to calibrate with: it is
    counted with the refused ones.
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
    from speechbrain_eres2net.dataio.trials import read_trials

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
    """EER, minDCF, and with a calibration actDCF(0.01) and Cllr of trials.

    Trials whose side has no embedding (refused or too short) are left out
    and counted.
    """
    from speechbrain_eres2net.evaluation.calibration import act_dcf, cllr
    from speechbrain_eres2net.evaluation.metrics import verification_metrics
    from speechbrain_eres2net.evaluation.pipeline import quality_kinds, trial_quality

    labels, enrol_names, test_names = trials
    keep = [
        i
        for i, (a, b) in enumerate(zip(enrol_names, test_names))
        if a in enrol.embeddings and b in test.embeddings
    ]
    names = sorted({f"e:{enrol_names[i]}" for i in keep}) + sorted(
        {f"t:{test_names[i]}" for i in keep}
    )
    index = {n: k for k, n in enumerate(names)}
    left = np.array([index[f"e:{enrol_names[i]}"] for i in keep])
    right = np.array([index[f"t:{test_names[i]}"] for i in keep])
    embeddings, durations = {}, {}
    for name in names:
        side = enrol if name.startswith("e:") else test
        embeddings[name] = side.embeddings[name[2:]]
        durations[name] = side.seconds[name[2:]]
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


def wrap_test_side(
    test: Sequence[str], folder: Path, kind: str, seed: int
) -> dict[str, Path]:
    """Each distinct test file wrapped in 5-20 s of silence or noise per side.

    ``kind`` ``"silence"``: digital zero plus -70 dBFS dither; ``"noise"``:
    white noise at -35 dBFS. Lengths are drawn per file and side (seeded).
    """
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
        wav = np.concatenate([pads[0], speech, pads[1]])
        files[rel] = write_wav(folder / kind / rel, wav)
    return files


def cut_test_side(
    test: Sequence[str], folder: Path, detector, seconds: float
) -> tuple[dict[str, Path], int]:
    """Each distinct test file trimmed, then cut to its first ``seconds``.

    Returns the files and how many held less net speech than ``seconds``.
    """
    files, shorter = {}, 0
    for rel in sorted(set(test)):
        wav, rate = soundfile.read(str(REALSPK / "wav" / rel), dtype="float32")
        trimmed = detector(torch.from_numpy(wav), rate).trim(torch.from_numpy(wav))
        shorter += int(trimmed.shape[0] < seconds * rate)
        clip = trimmed[: int(seconds * rate)].numpy()
        files[rel] = write_wav(folder / f"{seconds:g}s" / rel, clip)
    return files, shorter


def _eer_delta_row(name: str, result: dict, clean: dict, target) -> Row:
    """Row: EER of a condition minus clean, in points (target on trim)."""
    return Row(
        SECTION,
        f"{name}: EER {result['eer']:.2f} % vs clean {clean['eer']:.2f} %",
        result["eer"] - clean["eer"],
        unit="EER points vs clean",
        target=target,
        higher_is_better=False,
        absolute=True,
        note=_trial_note(result),
    )


def _trial_note(result: dict) -> str:
    note = (
        f"{result['n_trials']} trials, minDCF(0.01) {result['min_dcf']:.4f}, "
        f"median test-side net speech {result['median_test_seconds']:.2f} s"
    )
    if result["left_out"]:
        note += f"; {result['left_out']} trials left out (a side refused/too short)"
    return note


def _dcf_row(name: str, result: dict, clean: dict, missing: str) -> Row:
    """Row: actDCF(0.01) of a condition vs clean."""
    return Row(
        SECTION,
        f"{name}: actDCF(0.01)",
        result["act_dcf"],
        clean["act_dcf"],
        "actDCF",
        _ratio(result["act_dcf"], clean["act_dcf"]),
        higher_is_better=False,
        note=missing or "LLRs of the folder's calibration.json",
    )


def trial_rows(
    model: str, folder: Path, limit: Optional[int], seed: int, calibration
) -> list[Row]:
    """Parts 3 and 4: wrapped test side by vad mode; test side cut short."""
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    trials = read_dev_trials(limit)
    _, enrol_rels, test_rels = trials
    clean_files = {
        r: REALSPK / "wav" / r for r in sorted(set(enrol_rels) | set(test_rels))
    }
    missing = "" if calibration is not None else "no calibration.json in the folder"
    embedders = {
        mode: SpeakerEmbedder.from_folder(model, fast=True, vad=mode)
        for mode in ("trim", "check", "off")
    }
    clean_sides = {
        mode: embed_side(embedder, clean_files) for mode, embedder in embedders.items()
    }
    # The reference is the model with speech handling off on clean audio: a
    # trimmed reference would hide what trimming costs clean speech.
    clean = score_trials(trials, clean_sides["off"], clean_sides["off"], calibration)
    rows = [
        Row(
            SECTION,
            f"clean dev trials, vad off (reference): EER {clean['eer']:.2f} %",
            clean["eer"],
            unit="% EER",
            note=_trial_note(clean),
        ),
        _dcf_row("clean dev trials, vad off (reference)", clean, clean, missing),
    ]
    for mode in ("trim", "check"):
        result = score_trials(trials, clean_sides[mode], clean_sides[mode], calibration)
        name = f"clean dev trials, vad {mode}"
        rows.append(_eer_delta_row(name, result, clean, CLEAN_EER_POINTS))
        rows.append(_dcf_row(name, result, clean, missing))
    for kind in ("silence", "noise"):
        what = (
            "test side in 5-20 s of silence (zero + -70 dBFS dither)"
            if kind == "silence"
            else "test side in 5-20 s of -35 dBFS white noise"
        )
        wrapped = wrap_test_side(test_rels, folder, kind, seed)
        for mode, embedder in embedders.items():
            test_side = embed_side(embedder, wrapped)
            result = score_trials(trials, clean_sides[mode], test_side, calibration)
            name = f"{what}, vad {mode}"
            target = TRIM_EER_POINTS if mode == "trim" else None
            row = _eer_delta_row(name, result, clean, target)
            if test_side.errors:
                row.note += (
                    f"; {len(test_side.errors)} of {len(wrapped)} wrapped test files "
                    f"refused, e.g. {next(iter(test_side.errors.values()))}"
                )
            rows.append(row)
            rows.append(_dcf_row(name, result, clean, missing))
    rows += short_rows(model, folder, trials, clean_sides["trim"], clean, calibration)
    return rows


def short_rows(model, folder, trials, enrol: Side, clean: dict, calibration):
    """Part 4: test side cut to 0.5-4 s of net speech, vad trim, nothing refused."""
    from speechbrain_eres2net.dataio.vad import SpeechDetector
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
    from speechbrain_eres2net.settings import default

    embedder = SpeakerEmbedder.from_folder(
        model, fast=True, vad="trim", min_speech_seconds=0.0
    )
    detector = SpeechDetector()
    default_minimum = float(default("min_speech_seconds"))
    rows = []
    for seconds in SHORT_SECONDS:
        files, shorter = cut_test_side(trials[2], folder, detector, seconds)
        result = score_trials(trials, enrol, embed_side(embedder, files), calibration)
        name = f"test side cut to {seconds:g} s of net speech, vad trim"
        note = _trial_note(result) + f"; {shorter} test files had less speech"
        if seconds == default_minimum:
            note += (
                f"; = min_speech_seconds default ({default_minimum:g} s), the "
                "shortest speech accepted"
            )
        rows.append(
            Row(
                SECTION,
                f"{name}: EER (reference full length)",
                result["eer"],
                clean["eer"],
                "% EER",
                _ratio(result["eer"], clean["eer"]),
                higher_is_better=False,
                note=note,
            )
        )
        rows.append(
            Row(
                SECTION,
                f"{name}: Cllr (reference full length)",
                result["cllr"],
                clean["cllr"],
                "Cllr",
                _ratio(result["cllr"], clean["cllr"]),
                higher_is_better=False,
                note="LLRs of the folder's calibration.json"
                if calibration is not None
                else "no calibration.json in the folder",
            )
        )
    return rows


# ---------------------------------------------------------------- VAD cost


def real_speech(seconds: float) -> torch.Tensor:
    """``seconds`` of real speech: realspk dev files concatenated and cut."""
    pieces, total = [], 0
    for rel in realspk_files()[-240:]:
        wav, _ = soundfile.read(str(REALSPK / "wav" / rel), dtype="float32")
        pieces.append(wav)
        total += wav.size
        if total >= seconds * RATE:
            break
    return torch.from_numpy(np.concatenate(pieces)[: int(seconds * RATE)])


def vad_cost(seconds: float, repeats: int, fast: bool) -> dict:
    """Worker: median s of SpeechDetector vs one base-model embedding.

    The embedding is :meth:`SpeakerEmbedder.embed_batch` (Fbank, sentence
    mean normalisation, ``ERes2Net()`` with random weights; speed does not
    depend on them), on the fast path when ``fast``.
    """
    from speechbrain.lobes.features import Fbank
    from speechbrain.processing.features import InputNormalization

    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.dataio.vad import SpeechDetector
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
    from speechbrain_eres2net.inference.fastpath import optimize_for_inference

    torch.manual_seed(0)
    wav = real_speech(seconds)
    detector = SpeechDetector()
    embedder = SpeakerEmbedder(
        Fbank(n_mels=80),
        InputNormalization(norm_type="sentence", std_norm=False),
        ERes2Net(),
        vad="off",
    )
    engine = "eager torch fp32"
    if fast:
        embedder.embedding_model = optimize_for_inference(embedder.embedding_model)
        engine = (
            f"fast path {embedder.embedding_model.engine} "
            f"{embedder.embedding_model.precision}"
        )
    functions = {
        "vad": lambda: detector(wav, RATE),
        "embedding": lambda: embedder.embed_batch([wav]),
    }
    with torch.inference_mode():
        times = interleaved_times(functions, repeats, pause=PAUSE_S)
    return {
        "times": times,
        "engine": engine,
        "speech": detector(wav, RATE).seconds,
        "capability": str(torch.backends.cpu.get_cpu_capability()),
        "threads": torch.get_num_threads(),
        "load": os.getloadavg()[0],
    }


def cost_rows(sizes: Sizes, threads: int) -> list[Row]:
    """Part 5: VAD time vs embedding time on the same real speech."""
    result = run_isolated(
        "benchmarks.robustness:vad_cost",
        {
            "seconds": sizes.cost_seconds,
            "repeats": sizes.cost_repeats,
            "fast": sizes.cost_fast,
        },
        threads=threads,
    )
    vad, embedding = result["times"]["vad"], result["times"]["embedding"]
    return [
        Row(
            SECTION,
            f"VAD cost: SpeechDetector vs base embedding, {sizes.cost_seconds:g} s "
            f"real speech, {result['threads']}thr",
            vad * 1e3,
            embedding * 1e3,
            "ms",
            vad / embedding,
            VAD_COST_TARGET,
            False,
            f"embedding: Fbank + ERes2Net() m_channels 32 ({result['engine']}); "
            f"median of {sizes.cost_repeats} interleaved runs; cpu capability "
            f"{result['capability']}; {result['speech']:.1f} s detected; "
            f"load {result['load']:.2f}",
        )
    ]


# ------------------------------------------------------------------ memory


def write_long_recording(
    path: Path, minutes: float, seed: int, silence: bool = True
) -> Path:
    """Real speech, each utterance followed by as much silence (-70 dBFS
    dither) unless ``silence`` is False, written block by block."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    written = 0
    rels = realspk_files()
    with soundfile.SoundFile(str(path), "w", RATE, 1, "PCM_16", format="WAV") as out:
        k = 0
        while written < total:
            speech, _ = soundfile.read(
                str(REALSPK / "wav" / rels[k % len(rels)]), dtype="float64"
            )
            gap = at_dbfs(rng.normal(size=speech.size), SILENCE_DITHER_DBFS)
            block = np.concatenate([speech, gap]) if silence else speech
            block = block[: total - written]
            out.write(block.astype(np.float32))
            written += block.size
            k += 1
    return path


def embed_long(model: str, path: str, threads: int) -> dict:
    """Worker: ``SpeakerEmbedder.embed_recording`` of one file, timed."""
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    set_threads(threads)
    embedder = SpeakerEmbedder.from_folder(model, fast=True)
    start = time.perf_counter()
    embedding, speech = embedder.embed_recording(path)
    return {
        "seconds": time.perf_counter() - start,
        "duration": speech.duration,
        "speech": speech.seconds,
        "finite": bool(torch.isfinite(embedding).all()),
        "window_seconds": embedder.window_seconds,
    }


def memory_rows(model: str, folder: Path, minutes, threads: int, seed: int):
    """Part 6: peak RSS and time of embed_recording, long file vs short one.

    Two pairs: continuous speech, where both files fill whole windows, and
    half speech / half silence, where the short file's trimmed audio (half
    a window) needs less than the long file's full windows.
    """
    rows = []
    label = [f"{m:g} min" if m < 60 else f"{m / 60:g} h" for m in minutes]
    for silence, content in (
        (False, "continuous realspk speech"),
        (True, "half realspk audio, half silence"),
    ):
        results = {}
        for m in minutes:
            path = write_long_recording(folder / f"long_{m:g}min.wav", m, seed, silence)
            results[m] = run_isolated(
                "benchmarks.robustness:embed_long",
                {"model": model, "path": str(path), "threads": threads},
                threads=threads,
            )
            path.unlink()
        long, short = (results[m] for m in minutes)
        note = (
            f"fresh process each, model folder, vad trim, window "
            f"{long['window_seconds']:g} s; net speech {long['speech'] / 60:.1f} "
            f"of {long['duration'] / 60:.1f} min vs {short['speech']:.0f} s; work "
            f"itself (peak - base) {long['peak_rss_mb'] - long['base_rss_mb']:.0f} "
            f"vs {short['peak_rss_mb'] - short['base_rss_mb']:.0f} MiB"
        )
        if not (long["finite"] and short["finite"]):
            note += "; NON-FINITE EMBEDDING"
        rows += [
            Row(
                SECTION,
                f"embed_recording peak RSS, {label[0]} vs {label[1]} ({content})",
                long["peak_rss_mb"],
                short["peak_rss_mb"],
                "MiB",
                long["peak_rss_mb"] / short["peak_rss_mb"],
                MEMORY_TARGET,
                False,
                note,
            ),
            Row(
                SECTION,
                f"embed_recording time, {label[0]} vs {label[1]} ({content})",
                long["seconds"],
                short["seconds"],
                "s",
                long["seconds"] / short["seconds"],
                note=f"{threads}thr; real-time factor "
                f"{long['seconds'] / long['duration']:.4f} vs "
                f"{short['seconds'] / short['duration']:.4f}",
            ),
        ]
    return rows


# ------------------------------------------------------------------ section


def bench_robustness(
    model: Optional[str],
    quick: bool = False,
    threads: int = 2,
    trials: Optional[int] = None,
    minutes: Optional[Sequence[float]] = None,
    seed: int = 1234,
) -> list[Row]:
    """All rows of the section; a part that fails leaves a ``section failed`` row.

    Arguments
    ---------
    model : str, optional
        Model folder; the section is skipped without one.
    quick : bool
        Tiny sizes (:data:`QUICK`) for a smoke run.
    threads : int
        Torch threads here and in the worker processes.
    trials : int, optional
        dev trials to use (default: all; quick: 12).
    minutes : sequence of float, optional
        (long, short) recordings of the memory rows (default 60, 1).
    seed : int
        Seed of every random draw.
    """
    if model is None:
        return [
            Row(
                SECTION,
                "speech presence checks",
                None,
                note="skipped: no model folder given (--robustness-model)",
            )
        ]
    from speechbrain_eres2net.evaluation.decisions import folder_calibration
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    sizes = QUICK if quick else FULL
    sizes = dataclasses.replace(
        sizes,
        trials=sizes.trials if trials is None else trials,
        minutes=sizes.minutes if minutes is None else tuple(minutes),
    )
    set_threads(threads)
    embedder = SpeakerEmbedder.from_folder(model, fast=True)
    have_corpus = (REALSPK / "dev_trials.txt").is_file()
    parts: list[tuple[str, Callable[[Path], list[Row]]]] = [
        ("non-speech", lambda d: non_speech_rows(embedder, d, sizes.per_kind, seed))
    ]
    if have_corpus:
        calibration = folder_calibration(model)
        parts += [
            ("real speech", lambda d: real_speech_rows(embedder, sizes.real_files)),
            (
                "trials",
                lambda d: trial_rows(model, d, sizes.trials, seed, calibration),
            ),
            ("VAD cost", lambda d: cost_rows(sizes, threads)),
            (
                "memory",
                lambda d: memory_rows(model, d, sizes.minutes, threads, seed),
            ),
        ]
    rows = run_parts(SECTION, parts)
    if not have_corpus:
        rows.append(
            Row(
                SECTION,
                "real speech, trials, cost, memory",
                None,
                note=f"skipped: {REALSPK} absent",
            )
        )
    return rows
