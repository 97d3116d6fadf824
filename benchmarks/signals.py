"""Synthetic non-speech and the detectors it is checked with.

Thirteen kinds of 16 kHz signal that hold no speech (digital zero, dither,
white noise at four levels, pink and brown noise, mains hum, tones, chirps,
clicks, DTMF-like key presses), drawn from a seeded generator, and per file
the net speech each detector hears: Silero (the package's check), a plain
energy detector (20 ms frames above -40 dBFS RMS) and webrtcvad (mode 3) where
it imports. Used by the ``robustness`` and ``speech`` benchmarks.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile

from speechbrain_eres2net.dataio.audio import read_audio
from speechbrain_eres2net.dataio.vad import SpeechDetector
from speechbrain_eres2net.inference.embedder import NotEnoughSpeechError

RATE = 16000
ENERGY_DBFS, ENERGY_FRAME_S = -40.0, 0.02
WEBRTC_MODE, WEBRTC_FRAME_S = 3, 0.03


def at_dbfs(wav: np.ndarray, dbfs: float) -> np.ndarray:
    """``wav`` scaled to an RMS of ``dbfs`` (dB re full scale 1.0), clipped."""
    rms = float(np.sqrt(np.mean(np.square(wav)))) or 1.0
    return np.clip(wav * (10 ** (dbfs / 20) / rms), -1.0, 1.0)


def coloured(rng, t, exponent: float):
    """Noise whose power falls as ``1 / f**exponent`` (1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.normal(size=t.size))
    spectrum *= np.maximum(np.fft.rfftfreq(t.size, 1 / RATE), 20.0) ** (-exponent / 2)
    return at_dbfs(np.fft.irfft(spectrum, t.size), rng.uniform(-50.0, -10.0))


def dual_tones(rng, t):
    """DTMF-like key presses: two-tone bursts of 80-250 ms with gaps."""
    out = np.zeros_like(t)
    start = int(rng.uniform(0.0, 0.3) * RATE)
    while start < t.size:
        length = int(rng.uniform(0.08, 0.25) * RATE)
        span = slice(start, min(t.size, start + length))
        low = rng.choice((697, 770, 852, 941))
        high = rng.choice((1209, 1336, 1477, 1633))
        out[span] = np.sin(2 * np.pi * low * t[span]) + np.sin(
            2 * np.pi * high * t[span]
        )
        start += length + int(rng.uniform(0.05, 0.3) * RATE)
    return at_dbfs(out, rng.uniform(-30.0, -10.0))


def clicks(rng, t):
    """Clicks at 1-50 Hz: single-sample impulses or 1-ms decaying bursts."""
    out = np.zeros(t.size)
    period = int(RATE / rng.uniform(1.0, 50.0))
    burst = np.exp(-np.arange(16) / 4.0) * rng.choice([-1.0, 1.0], size=16)
    for start in range(int(rng.integers(0, period)), t.size - 16, period):
        if rng.random() < 0.5:
            out[start] = rng.uniform(0.5, 0.9)
        else:
            out[start : start + 16] = rng.uniform(0.3, 0.9) * burst
    return out


def hum(rng, t):
    """50 or 60 Hz and six harmonics."""
    base = 50.0 if rng.random() < 0.5 else 60.0
    phases = (rng.uniform(0, 2 * np.pi) for _ in range(7))
    wav = sum(
        np.sin(2 * np.pi * base * k * t + p) / k for k, p in zip(range(1, 8), phases)
    )
    return at_dbfs(wav, rng.uniform(-30.0, -10.0))


def tone(rng, t):
    freq = float(np.exp(rng.uniform(np.log(100.0), np.log(4000.0))))
    return at_dbfs(np.sin(2 * np.pi * freq * t), rng.uniform(-30.0, -6.0))


def chirp(rng, t):
    period = rng.uniform(0.5, t[-1])
    low, high = rng.uniform(100.0, 500.0), rng.uniform(2000.0, 4000.0)
    local = t % period
    phase = 2 * np.pi * (low * local + 0.5 * (high - low) / period * local**2)
    return at_dbfs(np.sin(phase), rng.uniform(-30.0, -6.0))


# Kind name -> f(rng, t) making one signal for the time axis t.
KINDS = {
    "digital zero": lambda rng, t: np.zeros_like(t),
    **{
        name: lambda rng, t, dbfs=dbfs: at_dbfs(rng.normal(size=t.size), dbfs)
        for name, dbfs in (
            ("dither -90 dBFS", -90.0),
            ("white noise -60 dBFS", -60.0),
            ("white noise -40 dBFS", -40.0),
            ("white noise -20 dBFS", -20.0),
            ("white noise -6 dBFS", -6.0),
        )
    },
    "pink noise": lambda rng, t: coloured(rng, t, 1),
    "brown noise": lambda rng, t: coloured(rng, t, 2),
    "hum 50/60 Hz + harmonics": hum,
    "pure tone 100 Hz-4 kHz": tone,
    "chirp": chirp,
    "clicks / impulse train": clicks,
    "DTMF-like dual tones": dual_tones,
}


def non_speech(per_kind: int, seed: int) -> dict[str, list[np.ndarray]]:
    """``per_kind`` signals of every kind, 3-5 s each, float64 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    return {
        kind: [
            make(rng, np.arange(int(rng.uniform(3.0, 5.0) * RATE)) / RATE)
            for _ in range(per_kind)
        ]
        for kind, make in KINDS.items()
    }


def write_wav(path: Path, wav: np.ndarray, subtype: str = "PCM_16") -> Path:
    """Writes a 16 kHz mono file (``FLOAT`` keeps levels below 16-bit steps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.asarray(wav, dtype=np.float32), RATE, subtype)
    return path


def energy_seconds(wav: np.ndarray) -> float:
    """Net "speech" of the baseline: 20 ms frames above -40 dBFS RMS.

    Example
    -------
    >>> energy_seconds(np.zeros(16000)), energy_seconds(np.full(16000, 0.5))
    (0.0, 1.0)
    """
    n = int(ENERGY_FRAME_S * RATE)
    frames = np.asarray(wav, dtype=np.float64)[: wav.size // n * n].reshape(-1, n)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    return float(np.count_nonzero(level > ENERGY_DBFS) * ENERGY_FRAME_S)


def webrtc_seconds(wav: np.ndarray, vad) -> float:
    """Net speech by WebRTC VAD (30 ms frames of 16-bit PCM)."""
    n = int(WEBRTC_FRAME_S * RATE)
    pcm = (np.clip(wav, -1.0, 1.0) * 32767).astype("<i2")
    frames = range(0, pcm.size - n + 1, n)
    return sum(vad.is_speech(pcm[i : i + n].tobytes(), RATE) for i in frames) * (
        WEBRTC_FRAME_S
    )


def detector_seconds(paths: Sequence[Path], embedder) -> dict[str, list]:
    """Per file: refused by the embedder's check, net speech of each detector
    (``silero``, ``energy``, ``webrtc`` where importable) and ``duration``."""
    detector, vad = SpeechDetector(), None
    keys = ["refused", "silero", "energy", "duration"]
    if importlib.util.find_spec("webrtcvad") is not None:
        import webrtcvad

        vad = webrtcvad.Vad(WEBRTC_MODE)
        keys.append("webrtc")
    out: dict[str, list] = {key: [] for key in keys}
    for path in paths:
        wav = read_audio(path, embedder.sample_rate)
        try:
            embedder.speech_of(path, wav)
            out["refused"].append(False)
        except NotEnoughSpeechError:
            out["refused"].append(True)
        out["silero"].append(detector(wav, embedder.sample_rate).seconds)
        out["energy"].append(energy_seconds(wav.numpy()))
        out["duration"].append(wav.shape[0] / embedder.sample_rate)
        if vad is not None:
            out["webrtc"].append(webrtc_seconds(wav.numpy(), vad))
    return out


def percent_below(seconds: Sequence[float], minimum: float) -> float:
    """% of files with less net speech than ``minimum`` (refused)."""
    return 100.0 * sum(s < minimum for s in seconds) / max(1, len(seconds))
