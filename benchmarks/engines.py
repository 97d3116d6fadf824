"""Inference engines by CPU capability: fp32 fast path and int8 vs official; int8 EER.

Speed (section ``engines``): base model (twin weights, see
:func:`benchmarks.common.twin_models`), 10 s, batch 1, 1 and 2 threads,
official vs our fast paths, interleaved in one fresh worker process per
ISA and thread count:

* ``native``: the machine as it is;
* ``avx2``: PyTorch restricted to AVX2 -- oneDNN by ``ONEDNN_MAX_CPU_ISA=AVX2``
  (convolutions), ATen's kernels by ``ATEN_CPU_CAPABILITY=avx2`` (element-wise
  ops; ``torch.backends.cpu.get_cpu_capability()`` then says AVX2), MKL by
  ``MKL_ENABLE_INSTRUCTIONS=AVX2``. ONNX Runtime has no such switch (its MLAS
  kernels dispatch on CPUID; the only ISA variable in onnxruntime 1.32,
  ``ORT_QMOE_CPU_DISABLE_AVX512``, concerns MoE operators), so its rows in this
  mode still run the native kernels and are labelled so, without a target.
  OpenVINO's convolutions are oneDNN's and honour ``ONEDNN_MAX_CPU_ISA``: each
  OpenVINO row lists the convolution kernels that ran (``brgconv_avx2_f32``,
  ``jit_avx2_I8``...), which shows the restriction took.

Calls are interleaved with a pause before each (``PAUSE_S``): the engines'
thread pools spin after a call, and on 2 cores the next engine's call would
otherwise compete with them (measured: the official model 340-390 ms alone at
2 threads, 460-580 ms right after an ONNX Runtime call).

Accuracy (section ``accuracy``): EER and minDCF on the realspk dev trials of
a model folder trained by our recipe (``--int8-model``), fp32 vs int8
calibrated on realspk train utterances (a disjoint set of speakers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Optional

import torch

from .common import REALSPK, Row, interleaved_times, run_isolated, speed_row

AVX2_ENV = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
TARGETS = {
    # (isa, variant) -> speed-up target vs official (issue 12)
    ("native", "bf16"): 2.3,
    ("native", "int8"): 3.0,
    ("avx2", "fp32"): 1.5,
    ("avx2", "int8"): 2.5,
}
ACCURACY_EER_POINTS = 0.2
# The dev trial list the issue names, then the corpus's harder list over the
# same files (non-targets of the same gender and age group), a second look at
# the same model.
TRIAL_LISTS = ("dev_trials.txt", "dev_trials_hard.txt")
ACCURACY_MIN_DCF = 0.02


def isa_label(emulated: bool) -> str:
    """What the row ran on: torch's capability, native bf16, emulation."""
    from speechbrain_eres2net.inference.fastpath import native_bf16

    capability = torch.backends.cpu.get_cpu_capability()
    if emulated:
        return f"{capability} (ONEDNN_MAX_CPU_ISA emulated)"
    bf16 = native_bf16(torch.device("cpu"))
    return f"{capability} native{', bf16' if bf16 else ''}"


def speech_feats(limit: int, split: str = "train") -> list[torch.Tensor]:
    """Kaldi fbank (mean-normalised) of ``limit`` realspk utterances, evenly spread.

    Random features when realspk is absent (speed does not depend on them).
    """
    from speechbrain_eres2net import KaldiFbank

    listing = REALSPK / f"{split}_list.txt"
    if not listing.exists():
        generator = torch.Generator().manual_seed(0)
        return [torch.randn(300, 80, generator=generator) for _ in range(limit)]
    import soundfile

    paths = [line.split()[1] for line in listing.read_text().splitlines() if line]
    paths = paths[:: max(1, len(paths) // limit)][:limit]
    fbank = KaldiFbank(mean_norm=True)
    feats = []
    with torch.inference_mode():
        for path in paths:
            wav, _ = soundfile.read(str(REALSPK / "wav" / path), dtype="float32")
            feats.append(fbank(torch.from_numpy(wav).unsqueeze(0))[0])
    return feats


# Seconds of sleep before each timed call: longer than the spin-wait of the
# OpenMP, ONNX Runtime and OpenVINO thread pools (see interleaved_times).
PAUSE_S = 0.2


def engine_times(
    seconds: float, threads: int, repeats: int, calibration: int, emulated: bool
) -> dict:
    """Worker: medians of official vs fast paths at one thread count (seconds)."""
    from speechbrain_eres2net.inference.fastpath import (
        engine_available,
        optimize_for_inference,
    )

    from .common import set_threads, twin_models
    from .inference import frames_for

    set_threads(threads)
    reference, ours = twin_models(32)
    x = torch.randn(1, frames_for(seconds), ours.feat_dim)
    variants = {"official": partial(reference, x)}
    auto = optimize_for_inference(ours)
    engines = {"auto": f"{auto.engine} {auto.precision}"}
    variants["auto"] = partial(auto, x)
    variants["torch fp32"] = partial(optimize_for_inference(ours, precision="fp32"), x)
    kernels = {}
    feats = speech_feats(calibration) if engine_available("onnxruntime") else None
    for engine in ("onnxruntime", "openvino"):
        if not (engine_available(engine) and engine_available("onnxruntime")):
            continue
        fp32 = optimize_for_inference(ours, precision="fp32", engine=engine)
        int8 = optimize_for_inference(
            ours, precision="int8", calibration_feats=feats, engine=engine
        )
        variants[f"{engine} fp32"] = partial(fp32, x)
        variants[f"{engine} int8"] = partial(int8, x)
        if engine == "openvino":
            from speechbrain_eres2net.inference.openvino_engine import kernel_isas

            kernels = {
                "openvino fp32": kernel_isas(fp32.compiled),
                "openvino int8": kernel_isas(int8.compiled),
            }
    if auto.engine == "openvino":
        kernels["auto"] = kernels["openvino fp32"]
    with torch.inference_mode():
        expected = ours(x).flatten()
        cosines = {
            name: float(torch.cosine_similarity(f().flatten().float(), expected, dim=0))
            for name, f in variants.items()
            if name != "official"
        }
        times = interleaved_times(variants, repeats, pause=PAUSE_S)
    return {
        "times": times,
        "cosines": cosines,
        "engines": engines,
        "kernels": kernels,
        "isa": isa_label(emulated),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "load": os.getloadavg()[0],
    }


def kernel_note(kernels: dict[str, int]) -> str:
    """``brgconv_avx2_f32 x36, ...``: OpenVINO's convolution kernels."""
    return ", ".join(f"{k} x{n}" for k, n in sorted(kernels.items()))


def bench_engines(
    seconds: float = 10,
    threads: Sequence[int] = (1, 2),
    repeats: int = 7,
    calibration: int = 200,
    isas: Sequence[str] = ("native", "avx2"),
) -> list[Row]:
    """Rows: fp32 fast path, bf16 and int8 vs official, per ISA and thread count."""
    rows = []
    for isa in isas:
        emulated = isa == "avx2"
        for n in threads:
            result = run_isolated(
                "benchmarks.engines:engine_times",
                {
                    "seconds": seconds,
                    "threads": n,
                    "repeats": repeats,
                    "calibration": calibration,
                    "emulated": emulated,
                },
                threads=n,
                env=AVX2_ENV if emulated else None,
            )
            times, label = result["times"], result["isa"]
            for name in times:
                if name == "official":
                    continue
                kind = result["engines"]["auto"] if name == "auto" else name
                engine, precision = kind.split(" ")
                # ONNX Runtime ignores the oneDNN/ATen ISA switches; OpenVINO's
                # oneDNN kernels honour ONEDNN_MAX_CPU_ISA (the note lists them).
                unrestricted = emulated and engine == "onnxruntime"
                where = (
                    "native ISA: onnxruntime not restricted" if unrestricted else label
                )
                title = "fast path auto: " if name == "auto" else ""
                note = f"cosine to eager fp32 {result['cosines'][name]:.5f}; "
                if name in result["kernels"]:
                    note += f"conv kernels {kernel_note(result['kernels'][name])}; "
                rows.append(
                    speed_row(
                        "engines",
                        f"base {seconds:g}s b1 {n}thr {title}{kind} [{where}]",
                        times[name],
                        times["official"],
                        _target(isa, name, precision, unrestricted),
                        note=note + f"load {result['load']:.2f}",
                    )
                )
    return rows


def _target(isa: str, name: str, precision: str, unrestricted: bool) -> Optional[float]:
    """The issue-12 target of a row: what ``auto`` runs, and int8.

    The other fp32 rows are the candidates ``auto`` chose among.
    """
    if unrestricted:
        return None
    if name == "auto" or precision == "int8":
        return TARGETS.get((isa, precision))
    return None


def dev_scores(embedder, trials: Path, wav_root: Path) -> tuple:
    """Cosine scores of a trial list with one embedder; (scores, labels)."""
    import numpy as np

    from speechbrain_eres2net.dataio.trials import read_trials

    labels, enrol, test = read_trials(trials)
    files = sorted(set(enrol) | set(test))
    embeddings, errors, _, _ = embedder.embed_files(
        [wav_root / f for f in files], progress=False
    )
    if errors:
        raise RuntimeError(f"{len(errors)} dev files failed, e.g. {next(iter(errors))}")
    vectors = {
        f: torch.nn.functional.normalize(
            torch.as_tensor(embeddings[str(wav_root / f)]), dim=0
        )
        for f in files
    }
    scores = np.array([float(vectors[a] @ vectors[b]) for a, b in zip(enrol, test)])
    return scores, labels


def bench_accuracy(model: Optional[str], threads: int = 2) -> list[Row]:
    """int8 vs fp32 EER / minDCF on realspk dev with a trained model folder.

    Rows hold ``|int8 - fp32|`` (EER in points, minDCF) against the issue's
    limits (0.2 points, 0.02); both values are in the row name.
    """
    trials = REALSPK / TRIAL_LISTS[0]
    if model is None:
        return [
            Row(
                "accuracy",
                "int8 vs fp32 EER on realspk dev",
                None,
                note="skipped: no trained model folder given (--int8-model)",
            )
        ]
    if not trials.exists():
        return [
            Row("accuracy", "int8 vs fp32 EER", None, note=f"skipped: {REALSPK} absent")
        ]
    from speechbrain_eres2net.evaluation.metrics import verification_metrics
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
    from speechbrain_eres2net.settings import default

    from .common import set_threads

    set_threads(threads)
    wav_root = REALSPK / "wav"
    train = [
        wav_root / line.split()[1]
        for line in (REALSPK / "train_list.txt").read_text().splitlines()
        if line.strip()
    ]
    lists = [t for t in TRIAL_LISTS if (REALSPK / t).exists()]
    metrics: dict[str, dict[str, dict]] = {t: {} for t in lists}
    engines = {}
    for precision in ("fp32", "int8"):
        embedder = SpeakerEmbedder.from_folder(
            model,
            precision=precision,
            int8_calibration=train if precision == "int8" else None,
        )
        engines[precision] = getattr(embedder.embedding_model, "engine", "torch")
        for listing in lists:
            scores, labels = dev_scores(embedder, REALSPK / listing, wav_root)
            metrics[listing][precision] = {
                **verification_metrics(scores, labels),
                "n_targets": int(sum(labels)),
            }
    rows = []
    for listing in lists:
        fp32, int8 = metrics[listing]["fp32"], metrics[listing]["int8"]
        name = (
            f"{Path(model).name}, realspk {listing} {fp32['n_trials']} trials, "
            f"int8 ({engines['int8']}) calibrated on "
            f"{default('int8_calibration_utterances')} train utts"
        )
        # One target trial moves the EER by 100 / n_targets points.
        step = 100 / max(1, fp32["n_targets"])
        rows.append(
            Row(
                "accuracy",
                f"{name}: |EER int8 - fp32| (fp32 {100 * fp32['eer']:.2f} %, "
                f"int8 {100 * int8['eer']:.2f} %)",
                100 * abs(int8["eer"] - fp32["eer"]),
                unit="EER points",
                target=ACCURACY_EER_POINTS,
                higher_is_better=False,
                absolute=True,
                note=f"int8 - fp32 = {100 * (int8['eer'] - fp32['eer']):+.3f} "
                f"points; one target trial = {step:.3f} points",
            )
        )
        for p in ("0.01", "0.05"):
            key = f"min_dcf_{p}"
            rows.append(
                Row(
                    "accuracy",
                    f"{name}: |minDCF({p}) int8 - fp32| (fp32 {fp32[key]:.4f}, "
                    f"int8 {int8[key]:.4f})",
                    abs(int8[key] - fp32[key]),
                    unit="minDCF",
                    target=ACCURACY_MIN_DCF,
                    higher_is_better=False,
                    absolute=True,
                )
            )
    return rows
