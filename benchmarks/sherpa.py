"""``eres2net embed`` vs sherpa-onnx's extractor on the same ONNX graph.

The graph is what ``eres2net export-onnx`` writes for an ERes2Net-base
folder (random weights: speed does not depend on them; KaldiFbank front end
with sherpa-onnx's settings, as our recipes train). Both sides run as the
whole program a user runs, start-up and model load included, over the same
realspk files, with the same thread count, interleaved (ours, theirs, ours,
theirs) so that load drift hits both:

* ours: ``eres2net embed --vad off --precision fp32`` (sherpa-onnx runs no
  speech detection);
* theirs: a Python loop over sherpa-onnx's ``SpeakerEmbeddingExtractor``
  (``num_threads`` = threads), reading each file with soundfile, as its
  examples do.

Rows: files/s of each and the ratio (target ours >= 1.2x), run natively and
with oneDNN restricted to AVX2 (``ONEDNN_MAX_CPU_ISA``: it restricts
PyTorch's convolutions; ONNX Runtime, which sherpa-onnx runs on, has its own
kernels and ignores it); the worst cosine between the two sides'
embeddings; the fast path's achieved GFLOP/s (2 x conv+linear MACs of all
files / our wall time, start-up included, so a lower bound) against the
CPU's nominal fp32 peak (vCPUs x clock x FLOP/cycle: 64 with AVX-512, 32
with AVX2, assuming two FMA units per core).

``--front-end-models ARCH/FRONT=DIR,...`` adds the rows that chose the
recipes' front end: each folder (trained alike on realspk; the first of
each ARCH with the previous front end, SpeechBrain's ``Fbank``, is that
architecture's reference) scored on
the realspk dev trials with its own speech handling, EER and minDCF(0.01),
the new one's EER in points against the reference (target <= +0.5 point,
the noise of 1,680 trials: one trial is 0.1 point). A row also feeds each
KaldiFbank model the filterbank settings it was not trained on (banks to
Nyquist, ``snip_edges``): the mismatch, mirrored, that an official
3D-Speaker model meets in sherpa-onnx.

Run::

    python -m benchmarks --only sherpa --json benchmarks/results_sherpa.json \
        --front-end-models "ERes2Net/Fbank=DIR1,ERes2Net/KaldiFbank=DIR2"
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .driver import Row
from .measure import REALSPK, child_env, realspk_files

EXTRACTOR_TARGET = 1.2
FRONT_END_TARGET_POINTS = 0.5


def run_sherpa(graph: str, listing: str, out: str, threads: int) -> None:
    """sherpa-onnx's extractor over the files of ``listing`` -> ``out`` (npz)."""
    import sherpa_onnx
    import soundfile

    config = sherpa_onnx.SpeakerEmbeddingExtractorConfig(
        model=graph, num_threads=threads
    )
    extractor = sherpa_onnx.SpeakerEmbeddingExtractor(config)
    embeddings = {}
    for path in Path(listing).read_text().split():
        samples, rate = soundfile.read(path, dtype="float32")
        stream = extractor.create_stream()
        stream.accept_waveform(sample_rate=rate, waveform=samples)
        stream.input_finished()
        embeddings[path] = np.asarray(extractor.compute(stream), dtype=np.float32)
    np.savez(out, **embeddings)


def fp32_peak_gflops(capability: str) -> tuple[Optional[float], str]:
    """Nominal fp32 peak of this machine's vCPUs, and how it was computed."""
    mhz = None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            mhz = float(line.split(":")[1])
            break
    if mhz is None:
        return None, "clock unknown"
    flops = 64 if capability.startswith("AVX512") else 32
    cores = os.cpu_count() or 1
    return (
        cores * mhz / 1e3 * flops,
        f"{cores} vCPUs x {mhz / 1e3:.2f} GHz x {flops} FLOP/cycle",
    )


def _timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed: {result.stderr[-2000:]}")
    return time.perf_counter() - start


def bench(args) -> list[Row]:
    """The ``sherpa`` benchmark (``--sherpa-parts``): with
    ``--front-end-models``, the front-end rows; ``eres2net embed`` vs
    sherpa-onnx (``--utterances`` files with ``--quick``, ``--isas``, the
    last of ``--threads``)."""
    from .speech import parse_models

    parts = args.sherpa_parts.split(",")
    rows = []
    if args.front_end_models and "front-end" in parts:
        rows += bench_front_end(parse_models(args.front_end_models))
    if "speed" in parts:
        rows += bench_sherpa(
            files=args.utterances if args.quick else None,
            threads=args.thread_counts[-1],
            repeats=1 if args.quick else 2,
            quick=args.quick,
            isas=tuple(args.isas.split(",")),
        )
    return rows


def bench_sherpa(
    files: Optional[int] = None,
    threads: int = 2,
    repeats: int = 2,
    quick: bool = False,
    isas: tuple[str, ...] = ("native", "avx2"),
) -> list[Row]:
    """Files/s of ``eres2net embed`` vs sherpa-onnx on one ONNX graph."""
    import torch

    from speechbrain_eres2net.export.onnx import export_onnx
    from speechbrain_eres2net.export.sherpa_onnx import SHERPA_FBANK

    from .extraction import embed_argv, random_model_folder, write_list
    from .inference import count_macs

    try:
        import sherpa_onnx  # noqa: F401
    except ImportError:
        return [Row("sherpa", "sherpa-onnx", None, note="skipped: not installed")]
    if not (REALSPK / "dev_list.txt").is_file():
        return [Row("sherpa", "sherpa-onnx", None, note=f"skipped: {REALSPK} absent")]
    capability = torch.backends.cpu.get_cpu_capability()
    files = files or (12 if quick else 200)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        config = {"m_channels": 8, "num_blocks": [1, 1, 1, 1]} if quick else {}
        # Our recipes' front end: the filterbank sherpa-onnx computes.
        model = random_model_folder(
            scratch / "model",
            config,
            "ERes2Net-base, random weights",
            high_freq=SHERPA_FBANK["high_freq"],
            snip_edges=SHERPA_FBANK["snip_edges"],
        )
        graph = export_onnx(model, scratch / "model.onnx", sherpa_onnx=True)
        paths = [REALSPK / "wav" / rel for rel in realspk_files(files)]
        listing = write_list(scratch / "files.txt", paths)
        seconds = sum(p.stat().st_size - 44 for p in paths) / 2 / 16000
        theirs_argv = [
            sys.executable, "-m", "benchmarks.sherpa", str(graph), str(listing),
            str(scratch / "theirs.npz"), str(threads),
        ]  # fmt: skip
        # Ours exports its engine graph once and caches it on disk, as a
        # user's second run finds it; sherpa-onnx is handed the graph ready.
        warm = write_list(scratch / "warm.txt", paths[:2])
        _timed(
            embed_argv(str(model), warm, scratch / "warm.npz", "--vad", "off",
                       "--precision", "fp32", "--no-progress"),
            child_env(threads),
        )  # fmt: skip
        ours_wall = {}
        for isa in isas:
            env = child_env(threads)
            if isa == "avx2":
                env["ONEDNN_MAX_CPU_ISA"] = "AVX2"
            ours_argv = embed_argv(
                str(model), listing, scratch / "ours.npz",
                "--vad", "off", "--precision", "fp32", "--no-progress",
            )  # fmt: skip
            times: dict[str, list[float]] = {"ours": [], "theirs": []}
            for _ in range(repeats):
                times["ours"].append(_timed(ours_argv, env))
                times["theirs"].append(_timed(theirs_argv, env))
            ours_s = statistics.median(times["ours"])
            theirs_s = statistics.median(times["theirs"])
            ours_wall[isa] = ours_s
            tag = f"{isa} ({capability if isa == 'native' else 'oneDNN AVX2'})"
            rows.append(
                Row(
                    "sherpa",
                    f"{len(paths)} files, {threads} threads, fp32, {tag}: "
                    "eres2net embed vs sherpa-onnx files/s",
                    len(paths) / ours_s,
                    len(paths) / theirs_s,
                    "files/s",
                    theirs_s / ours_s,
                    EXTRACTOR_TARGET,
                    note=f"{seconds:.0f} s of audio; whole programs, start-up "
                    f"included (ours {ours_s:.1f} s, sherpa-onnx {theirs_s:.1f} s)",
                )
            )
        ours = np.load(scratch / "ours.npz")
        theirs = np.load(scratch / "theirs.npz")
        worst = min(
            float(
                ours[k]
                @ theirs[k]
                / np.linalg.norm(ours[k])
                / np.linalg.norm(theirs[k])
            )
            for k in theirs.files
        )
        rows.append(
            Row(
                "sherpa",
                "worst cosine, eres2net embed vs sherpa-onnx embeddings",
                worst,
                unit="cosine",
                target=0.999,
                absolute=True,
                note=f"{len(theirs.files)} files",
            )
        )
        from speechbrain_eres2net.inference.folder import load_model_folder

        lobe = load_model_folder(model).mods.embedding_model.eval()
        frames = int(seconds * 100)
        with torch.no_grad():
            macs = count_macs(lobe, torch.zeros(1, 1000, 80)) * frames / 1000
        achieved = 2 * macs / ours_wall["native"] / 1e9
        peak, how = fp32_peak_gflops(capability)
        rows.append(
            Row(
                "sherpa",
                f"fast path achieved GFLOP/s vs nominal fp32 peak ({capability})",
                achieved,
                peak,
                "GFLOP/s",
                None if peak is None else achieved / peak,
                note=f"peak = {how}; achieved over the whole command (start-up, "
                "decoding and features included): a lower bound",
            )
        )
    return rows


def bench_front_end(models: dict[str, str]) -> list[Row]:
    """EER/minDCF of folders trained alike with different front ends.

    ``models`` maps ``ARCH/FRONT`` to a folder; the first of each ARCH is
    its reference. Each is scored with the speech handling its folder
    records, eager fp32.
    """
    from speechbrain_eres2net.evaluation.decisions import folder_calibration
    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    from .trials import embed_side, read_dev_trials, score_trials

    trials = read_dev_trials(None)
    _, enrol, test = trials
    files = {r: REALSPK / "wav" / r for r in sorted(set(enrol) | set(test))}
    results = {}
    for name, folder in models.items():
        embedder = SpeakerEmbedder.from_folder(folder, fast=False)
        calibration = folder_calibration(folder)
        side = embed_side(embedder, files)
        results[name] = score_trials(trials, side, side, calibration)
        fbank = embedder.compute_features
        if getattr(fbank, "snip_edges", True) is False:
            # What an official 3D-Speaker model meets in sherpa-onnx, mirrored:
            # this model fed the filterbank settings it was not trained on.
            fbank.high_freq, fbank.snip_edges = 0.0, True
            side = embed_side(embedder, files)
            results[f"{name} fed torchaudio's defaults"] = score_trials(
                trials, side, side, calibration
            )
    references: dict[str, str] = {}
    for name in models:
        references.setdefault(name.split("/")[0], name)
    rows = []
    for name, result in results.items():
        reference = references[name.split("/")[0]]
        rows += _front_end_rows(name, result, results[reference], name == reference)
    # Seeds of one architecture ("ECAPA-TDNN s2/...", "ECAPA-TDNN s3/..."):
    # the mean of each front end over them, against the reference's mean.
    arches: dict[tuple[str, str], list[dict]] = {}
    for name, result in results.items():
        group, front = name.split("/", 1)
        arches.setdefault((group.split(" ")[0], front), []).append(result)
    fronts: dict[str, str] = {}  # the reference front end: each arch's first
    for arch, front in arches:
        fronts.setdefault(arch, front)
    for (arch, front), runs in arches.items():
        if len(runs) < 2:
            continue
        reference = arches[(arch, fronts[arch])]
        rows += _front_end_rows(
            f"{arch} mean of {len(runs)} seeds/{front}",
            _mean(runs),
            _mean(reference),
            front == fronts[arch],
        )
    return rows


def _mean(results: list[dict]) -> dict:
    keys = ("eer", "min_dcf", "cllr", "n_trials", "left_out")
    return {
        k: None
        if any(r[k] is None for r in results)
        else statistics.mean(r[k] for r in results)
        for k in keys
    }


def _front_end_rows(name: str, result: dict, ref: dict, is_ref: bool) -> list[Row]:
    """EER and minDCF against the reference, and the EER points it costs.

    Only a front end a model was trained with has the points target: the
    "fed torchaudio's defaults" rows measure a mismatch, for information.
    """
    note = f"{result['n_trials']:.0f} trials ({result['left_out']:.0f} left out)"
    rows = [
        Row.of(
            "sherpa",
            f"{name}{' (reference)' if is_ref else ''}: realspk dev EER",
            result["eer"],
            ref["eer"],
            "%",
            higher_is_better=False,
            note=note,
        ),
        Row.of(
            "sherpa",
            f"{name}: realspk dev minDCF(0.01)",
            result["min_dcf"],
            ref["min_dcf"],
            higher_is_better=False,
            note="one false alarm is 0.12 on 840 non-targets",
        ),
    ]
    if result["cllr"] is not None and ref["cllr"] is not None:
        rows.append(
            Row.of(
                "sherpa",
                f"{name}: realspk dev Cllr",
                result["cllr"],
                ref["cllr"],
                "bits",
                higher_is_better=False,
                note="the folder's calibration.json, which the quickstart fitted "
                "on these trials (in-sample for every row alike)",
            )
        )
    if not is_ref:
        rows.append(
            Row(
                "sherpa",
                f"{name}: EER points vs reference",
                result["eer"] - ref["eer"],
                unit="points",
                target=None if "fed " in name else FRONT_END_TARGET_POINTS,
                higher_is_better=False,
                absolute=True,
                note="one trial is about 0.1 point",
            )
        )
    return rows


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


if __name__ == "__main__":
    run_sherpa(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
