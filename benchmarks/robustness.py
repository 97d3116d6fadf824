"""Speech presence: are non-speech recordings refused, and does trimming pay?

Benchmark ``robustness`` (``--robustness-model``; realspk for all but part 1),
in parts: (1) synthetic non-speech of 13 kinds (silence, dither, white, pink,
brown noise, hum, tones, chirps, clicks, DTMF) refused by our check (Silero
net speech below ``min_speech_seconds``) vs a plain energy detector, webrtcvad
beside where importable; (2) realspk train + dev recordings refused (target
0 %); (3) dev trials with the test side wrapped in 5-20 s of silence or noise,
EER and actDCF by ``vad`` mode against the clean trials with vad off (the model
with no speech handling: a trimmed reference hid what trimming cost); (4) the
test side cut to 0.5-4 s of net speech, EER and Cllr vs full length; (5) the
VAD's time vs one base-model embedding (target < 10 %); (6) peak RSS of
``embed_recording`` on a 1-hour file vs a 1-minute one (target <= 1.2x).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from speechbrain_eres2net.dataio.audio import read_audio
from speechbrain_eres2net.dataio.trials import read_trials
from speechbrain_eres2net.dataio.vad import SpeechDetector
from speechbrain_eres2net.evaluation.calibration import act_dcf, cllr
from speechbrain_eres2net.evaluation.decisions import folder_calibration
from speechbrain_eres2net.evaluation.metrics import verification_metrics
from speechbrain_eres2net.evaluation.pipeline import quality_kinds, trial_quality
from speechbrain_eres2net.inference.embedder import (
    NotEnoughSpeechError,
    SpeakerEmbedder,
)
from speechbrain_eres2net.settings import default

from .driver import (
    REALSPK,
    cpu_capability,
    has_realspk,
    interleaved_times,
    realspk_files,
    render,
    run_isolated,
    run_parts,
    set_threads,
    skipped,
    table,
)

SECTION = "robustness"
RATE = 16000
P_TARGET = 0.01
ENERGY_DBFS, ENERGY_FRAME_S = -40.0, 0.02
WEBRTC_MODE, WEBRTC_FRAME_S = 3, 0.03
SHORT_SECONDS = (0.5, 1.0, 2.0, 4.0)
WRAP_SECONDS = (5.0, 20.0)
SILENCE_DITHER_DBFS, WRAP_NOISE_DBFS = -70.0, -35.0
# Sleep before each timed call: thread pools spin after one (interleaved_times).
PAUSE_S = 0.2
# name: (full run, --quick). real_files/trials None: all.
SIZES = {
    "per_kind": (5, 1),
    "real_files": (None, 12),
    "cost_seconds": (10.0, 3.0),
    "cost_repeats": (7, 1),
    "cost_fast": (True, False),
}
KIND_ROWS = table(
    """
    non-speech refused: {kind} ({n} x 3-5 s)
        refused / energy, % refused, >= 100 absolute
        most net speech: Silero {most_silero:.2f} s, energy
        {most_energy:.2f} s{most_webrtc}; reference: energy detector; refused below
        {minimum:g} s
    """
)
WEBRTC_ROWS = table(
    """
    detector webrtcvad, {what} ({n} files)
        webrtc / energy, % refused
        webrtcvad mode 3, 30 ms frames; reference: energy detector (20 ms frames
        above -40 dBFS RMS); refused below {minimum:g} s net speech
    detector webrtcvad, {what}
        -, , when=no_webrtc
        skipped: webrtcvad not importable (pip install webrtcvad-wheels)
    """
)
SILERO_ROWS = table(
    """
    detector Silero (ours), {what} ({n} files)
        silero / energy, % refused, >= 100 absolute
        reference: energy detector (20 ms frames above -40 dBFS RMS); refused below
        {minimum:g} s net speech
    """
)
REAL_ROWS = table(
    """
    real speech refused: realspk train+dev ({n} recordings)
        refused / energy, % refused, <= 0 absolute
        SpeakerEmbedder check (Silero, below {minimum:g} s); reference: energy detector
    real speech: median net speech (Silero) vs median duration
        median_silero / median_duration, s, lower
        energy detector median {median_energy:.2f} s
    real speech: least net speech (Silero) vs shortest duration
        least_silero / least_duration, s, lower
        least speech in {worst}
    """
)
WRONGLY_REFUSED_ROWS = table(
    """
    real speech wrongly refused: {other} hears >= {disputed_above:g} s
        disputed, % refused, <= 0 absolute
        {wrong_note}
    """
)
CONDITION_ROWS = table(
    """
    {name}: EER {eer:.2f} % vs clean {clean_eer:.2f} %
        delta, EER points vs clean, <= target absolute
        {note}
    {name}: actDCF(0.01)
        act_dcf / clean_act_dcf, actDCF, lower
        {calibrated}
    """
)
# The reference itself: its actDCF against itself is exactly 1.0x.
REFERENCE_ROWS = (
    table(
        """
    {name}: EER {eer:.2f} %
        eer, % EER
        {note}
    """
    )
    + CONDITION_ROWS[1:]
)
SHORT_ROWS = table(
    """
    {name}: EER (reference full length)
        eer / clean_eer, % EER, lower
        {note}
    {name}: Cllr (reference full length)
        cllr / clean_cllr, Cllr, lower
        {calibrated}
    """
)
COST_ROWS = table(
    """
    VAD cost: SpeechDetector vs base embedding, {seconds:g} s real speech, {threads}thr
        vad / embedding, ms, <= 0.1 x1000
        embedding: Fbank + ERes2Net() m_channels 32 ({engine}); median of {repeats}
        interleaved runs; cpu capability {capability}; {speech:.1f} s detected;
        load {load:.2f}
    """
)
MEMORY_ROWS = table(
    """
    embed_recording peak RSS, {long_label} vs {short_label} ({content})
        long_rss / short_rss, MiB, <= 1.2
        {note}
    embed_recording time, {long_label} vs {short_label} ({content})
        long_s / short_s, s, lower
        {threads}thr; real-time factor {long_rtf:.4f} vs {short_rtf:.4f}
    """
)


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


def detector_values(what: str, found: dict, minimum: float) -> dict:
    """% refused by each detector of pooled files, for :data:`WEBRTC_ROWS`."""
    values = {"what": what, "n": len(found["energy"]), "minimum": minimum}
    for key in ("silero", "energy", "webrtc"):
        if key in found:
            values[key] = percent_below(found[key], minimum)
    values["no_webrtc"] = "webrtc" not in found
    return values


def non_speech_rows(embedder, folder: Path, per_kind: int, seed: int) -> list:
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
        webrtc = ""
        if "webrtc" in found:
            webrtc = f", webrtcvad {max(found['webrtc']):.2f} s (refuses "
            webrtc += f"{percent_below(found['webrtc'], minimum):.0f} %)"
        values = {
            "kind": kind,
            "n": len(paths),
            "minimum": minimum,
            "refused": 100.0 * sum(found["refused"]) / len(paths),
            "energy": percent_below(found["energy"], minimum),
            "most_silero": max(found["silero"]),
            "most_energy": max(found["energy"]),
            "most_webrtc": webrtc,
        }
        rows += render(SECTION, KIND_ROWS, values)
    pooled_values = detector_values("non-speech, all kinds", pooled, minimum)
    return rows + render(SECTION, SILERO_ROWS + WEBRTC_ROWS, pooled_values)


def real_speech_values(embedder, limit: Optional[int]) -> dict:
    """Part 2: real recordings refused (target 0 %) and their net speech.

    ``disputed`` counts refusals another detector disputes: webrtcvad (or,
    without it, the energy detector) hears at least ``minimum`` + 0.5 s. The
    undisputed ones hold less speech than the minimum by every detector (a
    single word, a cough), which the 0 % target counts too.
    """
    minimum = embedder.min_speech_seconds
    rels = realspk_files(limit)
    found = detector_seconds([REALSPK / "wav" / r for r in rels], embedder)
    other = "webrtc" if "webrtc" in found else "energy"
    refused = [i for i, r in enumerate(found["refused"]) if r]
    disputed = [i for i in refused if found[other][i] >= minimum + 0.5]
    named = ", ".join(rels[i] for i in disputed[:3])
    wrong_note = (
        f"{len(refused)} refused hold at most "
        f"{max((found['silero'][i] for i in refused), default=0.0):.2f} s (Silero) "
        f"and {max((found[other][i] for i in refused), default=0.0):.2f} s "
        f"({other}) of speech" + (f"; disputed: {named}" if named else "")
    )
    return {
        **detector_values("real speech", found, minimum),
        "refused": 100.0 * len(refused) / len(rels),
        "median_silero": statistics.median(found["silero"]),
        "median_duration": statistics.median(found["duration"]),
        "median_energy": statistics.median(found["energy"]),
        "least_silero": min(found["silero"]),
        "least_duration": min(found["duration"]),
        "worst": rels[int(np.argmin(found["silero"]))],
        "other": other,
        "disputed_above": minimum + 0.5,
        "disputed": 100.0 * len(disputed) / max(1, len(rels)),
        "wrong_note": wrong_note,
    }


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


def trial_note(result: dict) -> str:
    note = (
        f"{result['n_trials']} trials, minDCF(0.01) {result['min_dcf']:.4f}, "
        f"median test-side net speech {result['median_test_seconds']:.2f} s"
    )
    if result["left_out"]:
        note += f"; {result['left_out']} trials left out (a side refused/too short)"
    return note


def trial_rows(model: str, folder: Path, limit, seed: int, calibration) -> list:
    """Parts 3 and 4: wrapped test side by vad mode; test side cut short."""
    trials = read_dev_trials(limit)
    _, enrol_rels, test_rels = trials
    clean_files = {r: REALSPK / "wav" / r for r in sorted({*enrol_rels, *test_rels})}
    modes = ("trim", "check", "off")
    embedders = {m: SpeakerEmbedder.from_folder(model, fast=True, vad=m) for m in modes}
    clean_sides = {m: embed_side(e, clean_files) for m, e in embedders.items()}
    # The reference is the model with speech handling off on clean audio: a
    # trimmed reference would hide what trimming costs clean speech.
    clean = score_trials(trials, clean_sides["off"], clean_sides["off"], calibration)
    base = {f"clean_{key}": clean[key] for key in ("eer", "act_dcf", "cllr")}
    base["calibrated"] = (
        "LLRs of the folder's calibration.json"
        if calibration is not None
        else "no calibration.json in the folder"
    )
    name = "clean dev trials, vad off (reference)"
    values = {**base, **clean, "name": name, "note": trial_note(clean)}
    rows = render(SECTION, REFERENCE_ROWS, values)
    conditions = [(f"clean dev trials, vad {m}", m, None, 0.1) for m in modes[:2]]
    for kind, what in (
        ("silence", "test side in 5-20 s of silence (zero + -70 dBFS dither)"),
        ("noise", "test side in 5-20 s of -35 dBFS white noise"),
    ):
        wrapped = wrap_test_side(test_rels, folder, kind, seed)
        conditions += [
            (f"{what}, vad {m}", m, wrapped, 0.5 if m == "trim" else None)
            for m in modes
        ]
    for name, mode, files, target in conditions:
        test = clean_sides[mode] if files is None else None
        test = test or embed_side(embedders[mode], files)
        result = score_trials(trials, clean_sides[mode], test, calibration)
        note = trial_note(result)
        if files is not None and test.errors:
            note += (
                f"; {len(test.errors)} of {len(files)} wrapped test files "
                f"refused, e.g. {next(iter(test.errors.values()))}"
            )
        values = {**base, **result, "name": name, "target": target, "note": note}
        values["delta"] = result["eer"] - clean["eer"]
        rows += render(SECTION, CONDITION_ROWS, values)
    # Part 4: the test side cut short, vad trim, nothing refused.
    short = SpeakerEmbedder.from_folder(
        model, fast=True, vad="trim", min_speech_seconds=0.0
    )
    detector, minimum = SpeechDetector(), float(default("min_speech_seconds"))
    for seconds in SHORT_SECONDS:
        files, shorter = cut_test_side(test_rels, folder, detector, seconds)
        result = score_trials(
            trials, clean_sides["trim"], embed_side(short, files), calibration
        )
        note = trial_note(result) + f"; {shorter} test files had less speech"
        if seconds == minimum:
            note += (
                f"; = min_speech_seconds default ({minimum:g} s), the shortest "
                "speech accepted"
            )
        name = f"test side cut to {seconds:g} s of net speech, vad trim"
        rows += render(
            SECTION, SHORT_ROWS, {**base, **result, "name": name, "note": note}
        )
    return rows


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
    """Worker: median s of SpeechDetector vs one embedding of ``ERes2Net()``
    (random weights: speed does not depend on them) by
    :meth:`SpeakerEmbedder.embed_batch`, on the fast path when ``fast``."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.processing.features import InputNormalization

    from speechbrain_eres2net import ERes2Net
    from speechbrain_eres2net.inference.fastpath import optimize_for_inference

    torch.manual_seed(0)
    wav, detector = real_speech(seconds), SpeechDetector()
    norm = InputNormalization(norm_type="sentence", std_norm=False)
    embedder = SpeakerEmbedder(Fbank(n_mels=80), norm, ERes2Net(), vad="off")
    engine = "eager torch fp32"
    if fast:
        model = optimize_for_inference(embedder.embedding_model)
        embedder.embedding_model = model
        engine = f"fast path {model.engine} {model.precision}"
    functions = {
        "vad": lambda: detector(wav, RATE),
        "embedding": lambda: embedder.embed_batch([wav]),
    }
    with torch.inference_mode():
        times = interleaved_times(functions, repeats, pause=PAUSE_S)
    return {
        **times,
        "engine": engine,
        "speech": detector(wav, RATE).seconds,
        "capability": cpu_capability(),
        "threads": torch.get_num_threads(),
        "load": os.getloadavg()[0],
    }


def write_long_recording(path: Path, minutes: float, seed: int, silence: bool):
    """Real speech, each utterance followed by as much silence (-70 dBFS
    dither) unless ``silence`` is False, written block by block."""
    rng = np.random.default_rng(seed)
    total, written, rels = int(minutes * 60 * RATE), 0, realspk_files()
    with soundfile.SoundFile(str(path), "w", RATE, 1, "PCM_16", format="WAV") as out:
        k = 0
        while written < total:
            rel = REALSPK / "wav" / rels[k % len(rels)]
            speech, _ = soundfile.read(str(rel), dtype="float64")
            gap = at_dbfs(rng.normal(size=speech.size), SILENCE_DITHER_DBFS)
            block = np.concatenate([speech, gap]) if silence else speech
            block = block[: total - written]
            out.write(block.astype(np.float32))
            written += block.size
            k += 1
    return path


def embed_long(model: str, path: str, threads: int) -> dict:
    """Worker: ``SpeakerEmbedder.embed_recording`` of one file, timed."""
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
    """Part 6: peak RSS and time of embed_recording, long file vs short one:
    continuous speech (both files fill whole windows), and half speech / half
    silence (the short file's trimmed audio is half a window)."""
    rows = []
    labels = [f"{m:g} min" if m < 60 else f"{m / 60:g} h" for m in minutes]
    for silence, content in (
        (False, "continuous realspk speech"),
        (True, "half realspk audio, half silence"),
    ):
        done = []
        for m in minutes:
            path = write_long_recording(folder / f"long_{m:g}min.wav", m, seed, silence)
            kwargs = {"model": model, "path": str(path), "threads": threads}
            done.append(
                run_isolated("benchmarks.robustness:embed_long", kwargs, threads)
            )
            path.unlink()
        long, short = done
        note = (
            f"fresh process each, model folder, vad trim, window "
            f"{long['window_seconds']:g} s; net speech {long['speech'] / 60:.1f} "
            f"of {long['duration'] / 60:.1f} min vs {short['speech']:.0f} s; work "
            f"itself (peak - base) {long['peak_rss_mb'] - long['base_rss_mb']:.0f} "
            f"vs {short['peak_rss_mb'] - short['base_rss_mb']:.0f} MiB"
        )
        if not (long["finite"] and short["finite"]):
            note += "; NON-FINITE EMBEDDING"
        values = {"content": content, "note": note, "threads": threads}
        for who, result, label in (
            ("long", long, labels[0]),
            ("short", short, labels[1]),
        ):
            values[f"{who}_label"], values[f"{who}_s"] = label, result["seconds"]
            values[f"{who}_rss"] = result["peak_rss_mb"]
            values[f"{who}_rtf"] = result["seconds"] / result["duration"]
        rows += render(SECTION, MEMORY_ROWS, values)
    return rows


def bench_robustness(args) -> list:
    """Every row of the benchmark; a part that fails leaves a ``section failed``
    row. Options: ``--robustness-model`` (skipped without one), ``--quick``,
    ``--robustness-trials`` (0: all), ``--robustness-minutes``, ``--threads``
    (the last count)."""
    model, seed = args.robustness_model, 1234
    if model is None:
        why = "no model folder given (--robustness-model)"
        return skipped(SECTION, "speech presence checks", why)
    sizes = {key: pair[args.quick] for key, pair in SIZES.items()}
    trials = args.robustness_trials or None
    minutes = [float(m) for m in args.robustness_minutes.split(",")]
    threads = args.thread_counts[-1]
    set_threads(threads)
    embedder = SpeakerEmbedder.from_folder(model, fast=True)
    parts = [
        ("non-speech", lambda d: non_speech_rows(embedder, d, sizes["per_kind"], seed))
    ]
    if not has_realspk("dev_trials.txt"):
        rows = run_parts(SECTION, parts)
        return rows + skipped(
            SECTION, "real speech, trials, cost, memory", f"{REALSPK} absent"
        )
    calibration = folder_calibration(model)
    cost = {key: sizes[f"cost_{key}"] for key in ("seconds", "repeats", "fast")}

    def cost_rows(folder: Path) -> list:
        result = run_isolated("benchmarks.robustness:vad_cost", cost, threads)
        return render(SECTION, COST_ROWS, {**cost, **result})

    parts += [
        (
            "real speech",
            lambda d: render(
                SECTION,
                REAL_ROWS + WEBRTC_ROWS + WRONGLY_REFUSED_ROWS,
                real_speech_values(embedder, sizes["real_files"]),
            ),
        ),
        ("trials", lambda d: trial_rows(model, d, trials, seed, calibration)),
        ("VAD cost", cost_rows),
        ("memory", lambda d: memory_rows(model, d, minutes, threads, seed)),
    ]
    return run_parts(SECTION, parts)
