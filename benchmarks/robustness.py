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

import os
import statistics
import time
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile
import torch

from speechbrain_eres2net.dataio.vad import SpeechDetector
from speechbrain_eres2net.evaluation.decisions import folder_calibration
from speechbrain_eres2net.inference.embedder import (
    SpeakerEmbedder,
)
from speechbrain_eres2net.settings import default

from .driver import render, run_parts, skipped, table
from .measure import (
    REALSPK,
    cpu_capability,
    has_realspk,
    interleaved_times,
    realspk_files,
    run_isolated,
    set_threads,
)
from .signals import (
    RATE,
    at_dbfs,
    detector_seconds,
    non_speech,
    percent_below,
    write_wav,
)
from .trials import (
    SILENCE_DITHER_DBFS,
    cut_test_side,
    embed_side,
    read_dev_trials,
    score_trials,
    wrap_test_side,
)

SECTION = "robustness"
SHORT_SECONDS = (0.5, 1.0, 2.0, 4.0)
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
REFERENCE_ROWS = table(
    """
    {name}: EER {eer:.2f} %
        eer, % EER
        {note}
    {name}: actDCF(0.01)
        act_dcf / clean_act_dcf, actDCF, lower
        {calibrated}
    """
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
            target = "benchmarks.robustness:embed_long"
            done.append(run_isolated(target, kwargs, threads))
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
        for who, result, label in zip(("long", "short"), done, labels):
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
        why = f"{REALSPK} absent"
        return run_parts(SECTION, parts) + skipped(
            SECTION, "real speech, trials, cost, memory", why
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
