"""Benchmark suite entry point: ``python -m benchmarks [options]``.

Runs every section the machine can run, prints one table (ours,
reference, ratio, target, pass/fail) and writes it as JSON. Sections:

* ``inference``  batch-1 latency, base and large, 3/10/30 s, 1 and 2
  threads: official vs our eager model vs our fast path; GFLOP/s.
* ``variants``   the fast-path candidates (folded fp32, channels-last,
  frozen TorchScript, ONNX Runtime, bf16 autocast) vs official.
* ``engines``    base, 10 s, batch 1, 1 and 2 threads: the automatic fast path,
  PyTorch fp32, ONNX Runtime and OpenVINO fp32 and int8 vs official, on the
  native ISA and with oneDNN restricted to AVX2 (``ONEDNN_MAX_CPU_ISA``:
  PyTorch and OpenVINO; ONNX Runtime cannot be), each row naming its ISA.
* ``accuracy``   int8 vs fp32 EER/minDCF on realspk dev with a trained model
  folder (``--int8-model``; skipped without one).
* ``throughput`` utterances/s over the realspk dev list (skipped if absent).
* ``long``       peak RSS of a 10-minute recording, windowed vs official.
* ``training``   CPU training step (time, peak RSS); the GPU rows run only
  where CUDA is available.
* ``evaluation`` EER + minDCFs over 10 M synthetic trials.
* ``dataprep``   prepare_voxceleb over 100,000 generated wav files.
* ``robustness`` speech-presence checks with a model folder
  (``--robustness-model``; skipped without one): synthetic non-speech and
  real speech refused (Silero vs an energy detector and webrtcvad), EER and
  actDCF of dev trials wrapped in 5-20 s of silence or noise (vad trim /
  check / off), EER and Cllr of speech cut to 0.5-4 s, VAD cost per 10 s,
  peak RSS of a 1-hour file vs a 1-minute one.
* ``speech``     the speech handling default: candidates (off, check, trim
  all pauses, trim edges or long pauses only) on realspk dev trials clean,
  wrapped in silence or noise, cut to 1-2 s, each against the same model with
  vad off on clean trials (``--speech-models``; skipped without), and the
  default's refusals of non-speech and of real speech.
* ``extraction`` embedding at scale: files/s of ``eres2net embed`` over
  realspk (1 process, torchrun x 2, ``--num-workers 2``) vs SpeechBrain's
  per-file loop, the cost of streaming + resume, peak RSS over 20,000 vs
  1,000 files, a run SIGKILLed halfway and resumed vs a straight one (model
  folder ``--extraction-model`` for throughput and resume), AS-norm scoring
  at VoxCeleb1-H size (simulated).
* ``identification`` open-set identification on realspk dev with a model
  folder (``--identification-model``; those rows skipped without one): 15
  speakers enrolled from 3 recordings each, per gallery scoring top-1/top-5
  accuracy, DIR at 1 % and 10 % false alarm and correct default answers vs
  sherpa-onnx's mean embedding with an oracle-tuned threshold; Cllr vs
  minCllr of 3- and 1-recording enrollment; one query vs 1 k-100 k random
  speakers (time, file size, load time, peak RSS).
* ``sherpa``     ``eres2net embed`` vs sherpa-onnx's extractor on the same
  exported ONNX graph (ERes2Net-base) over realspk: files/s, worst cosine,
  achieved GFLOP/s vs the CPU's nominal fp32 peak.

Thread counts are set with ``torch.set_num_threads`` (and OMP/MKL env vars
for worker processes); set ``OMP_NUM_THREADS`` before launching to pin the
parent too. Example::

    python -m benchmarks --json benchmarks/results.json
    python -m benchmarks --quick --only inference,evaluation
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

SECTIONS = (
    "inference",
    "variants",
    "engines",
    "accuracy",
    "throughput",
    "long",
    "training",
    "evaluation",
    "dataprep",
    "robustness",
    "speech",
    "extraction",
    "identification",
    "sherpa",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks every size for a smoke run."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {SECTIONS}",
    )
    parser.add_argument("--skip", default="", help="comma-separated sections to skip")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument(
        "--json", default="benchmarks/results.json", help="where to write the table"
    )
    parser.add_argument("--threads", default=None, help="e.g. 1,2 (default 1,2)")
    parser.add_argument("--sizes", default=None, help="model sizes: base,large")
    parser.add_argument("--seconds", default=None, help="input durations, e.g. 3,10,30")
    parser.add_argument(
        "--large-seconds", default=None, help="durations for the large model (10)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per point"
    )
    parser.add_argument("--train-batch", type=int, default=None)
    parser.add_argument("--train-frames", type=int, default=None)
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--long-minutes", type=float, default=None)
    parser.add_argument(
        "--utterances", type=int, default=None, help="realspk dev limit"
    )
    parser.add_argument(
        "--int8-model",
        default=None,
        help="model folder trained by our recipe for the accuracy section",
    )
    parser.add_argument(
        "--isas", default=None, help="engines section: native,avx2 (default both)"
    )
    parser.add_argument(
        "--calibration-utts",
        type=int,
        default=None,
        help="engines section: realspk utterances calibrating int8 (50: the "
        "scales do not change the kernels, so speed does not depend on it)",
    )
    parser.add_argument("--metrics-trials", type=int, default=None)
    parser.add_argument("--dataprep-files", type=int, default=None)
    parser.add_argument(
        "--robustness-model",
        default=None,
        help="model folder for the robustness section (skipped without one)",
    )
    parser.add_argument(
        "--speech-models",
        default=None,
        metavar="NAME=DIR,...",
        help="speech section: model folders trained on realspk without trimming, "
        "e.g. ERes2Net=DIR,ECAPA-TDNN=DIR (skipped without)",
    )
    parser.add_argument(
        "--speech-trained-alike",
        default=None,
        metavar="NAME=DIR,...",
        help="speech section: the same models trained with the old trim-all "
        "handling (NAME as in --speech-models)",
    )
    parser.add_argument(
        "--speech-candidates",
        default=None,
        metavar="NAME,...",
        help="speech section: the candidates to run, ';'-separated (default: "
        "all of benchmarks.speech.CANDIDATES)",
    )
    parser.add_argument(
        "--robustness-trials",
        type=int,
        default=None,
        help="robustness section: realspk dev trials, half target (0: all)",
    )
    parser.add_argument(
        "--robustness-minutes",
        default=None,
        help="robustness section: long,short recording of the memory rows "
        "(default 60,1)",
    )
    parser.add_argument(
        "--extraction-model",
        default=None,
        help="model folder for the throughput and resume rows of the extraction "
        "section (skipped without one); random-base: ERes2Net-base with random "
        "weights, built for the run",
    )
    parser.add_argument(
        "--extraction-files",
        type=int,
        default=None,
        help="extraction section: realspk files of the throughput and resume rows "
        "(default: all 1,040; the machinery row takes at most 240 of them)",
    )
    parser.add_argument(
        "--extraction-parts",
        default=None,
        help="extraction section: comma-separated parts to run, of throughput, "
        "machinery, resume, memory, scoring (default: all)",
    )
    parser.add_argument(
        "--identification-model",
        default=None,
        help="model folder (with its calibration.json) for the realspk rows of "
        "the identification section (skipped without one)",
    )
    parser.add_argument(
        "--sherpa-parts",
        default="front-end,speed",
        help="sherpa section: the parts to run, of front-end (needs "
        "--front-end-models) and speed",
    )
    parser.add_argument(
        "--front-end-models",
        default=None,
        metavar="NAME=DIR,...",
        help="sherpa section: ARCH/FRONT=DIR folders trained alike with different "
        "front ends; the first of each ARCH (the previous front end) is its "
        "reference",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="cuda runs the GPU training rows instead of the CPU ones (needs CUDA)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "threads": "1" if quick else "1,2",
        "sizes": "base" if quick else "base,large",
        "seconds": "1" if quick else "3,10,30",
        "large_seconds": "1" if quick else "10",
        "repeats": 1 if quick else 5,
        "train_batch": 2 if quick else 32,
        "train_frames": 100 if quick else 298,
        "train_steps": 1 if quick else 2,
        "long_minutes": 0.1 if quick else 10.0,
        "utterances": 6 if quick else 240,
        "isas": "native" if quick else "native,avx2",
        "calibration_utts": 4 if quick else 50,
        "metrics_trials": 200_000 if quick else 10_000_000,
        "dataprep_files": 1000 if quick else 100_000,
        "robustness_trials": 12 if quick else 0,
        "robustness_minutes": "2,0.5" if quick else "60,1",
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    skipped = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = (set(selected) | skipped) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    args.sections = [s for s in SECTIONS if s in selected and s not in skipped]
    return args


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def run_section(name: str, args: argparse.Namespace) -> list:
    """Runs one section and returns its rows."""
    threads = _ints(args.threads)
    if name == "inference":
        from .inference import bench_latency

        rows = []
        for size in args.sizes.split(","):
            seconds = args.large_seconds if size == "large" else args.seconds
            rows += bench_latency([size], _floats(seconds), threads, args.repeats)
        return rows
    if name == "variants":
        from .inference import bench_variants

        return bench_variants(10 if not args.quick else 1, threads, args.repeats)
    if name == "engines":
        from .engines import bench_engines

        return bench_engines(
            10 if not args.quick else 1,
            threads,
            7 if not args.quick else 1,
            args.calibration_utts,
            args.isas.split(","),
        )
    if name == "accuracy":
        from .engines import bench_accuracy

        return bench_accuracy(args.int8_model, threads[-1])
    if name == "throughput":
        from .inference import bench_throughput

        return bench_throughput(args.utterances, threads[-1], repeats=1)
    if name == "long":
        from .inference import bench_long

        return bench_long(args.long_minutes, threads=threads[-1])
    if name == "training":
        from .training import bench_cpu, bench_gpu

        if args.device == "cuda":
            # The GPU rows' reference is the official model on the same GPU;
            # the CPU rows belong to the CPU result files.
            return bench_gpu(batch=max(args.train_batch, 2), frames=args.train_frames)
        return bench_cpu(
            args.train_batch,
            args.train_frames,
            args.train_steps,
            threads[-1],
            rounds=1 if args.quick else 3,
        )
    if name == "evaluation":
        from .evaluation import bench_metrics

        return bench_metrics(args.metrics_trials, min(5_000, args.metrics_trials))
    if name == "dataprep":
        from .evaluation import bench_dataprep

        return bench_dataprep(args.dataprep_files)
    if name == "robustness":
        from .robustness import bench_robustness

        return bench_robustness(
            args.robustness_model,
            quick=args.quick,
            threads=threads[-1],
            trials=args.robustness_trials or None,
            minutes=_floats(args.robustness_minutes),
        )
    if name == "speech":
        from .speech import bench_speech

        return bench_speech(
            args.speech_models,
            args.speech_trained_alike,
            quick=args.quick,
            threads=threads[-1],
            only=args.speech_candidates,
        )
    if name == "sherpa":
        from .sherpa import bench_front_end, bench_sherpa
        from .speech import parse_models

        parts = args.sherpa_parts.split(",")
        rows = []
        if args.front_end_models and "front-end" in parts:
            rows += bench_front_end(parse_models(args.front_end_models))
        if "speed" in parts:
            rows += bench_sherpa(
                files=args.utterances if args.quick else None,
                threads=threads[-1],
                repeats=1 if args.quick else 2,
                quick=args.quick,
                isas=tuple(args.isas.split(",")),
            )
        return rows
    if name == "extraction":
        from .extraction import bench_extraction

        return bench_extraction(
            args.extraction_model,
            quick=args.quick,
            threads=threads[-1],
            files=args.extraction_files,
            only=args.extraction_parts.split(",") if args.extraction_parts else None,
        )
    if name == "identification":
        from .identification import bench_identification

        return bench_identification(
            args.identification_model, quick=args.quick, threads=threads[-1]
        )
    raise ValueError(name)


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average": os.getloadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def write_json(path: Path, payload: dict) -> None:
    """Writes ``payload`` atomically (temp file in the same folder, then rename)."""
    from speechbrain_eres2net.dataio.files import write_text_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(payload, indent=1))


def main(argv: list[str] | None = None) -> int:
    """Runs the selected sections, prints the table, writes the JSON."""
    import warnings

    from .common import Row, format_table

    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    rows: list[Row] = []
    started = time.time()
    load_at_start = os.getloadavg()
    for name in args.sections:
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        section_start = time.perf_counter()
        try:
            rows += run_section(name, args)
        except Exception as error:  # one failing section must not hide the others
            rows.append(
                Row(
                    name,
                    "section failed",
                    None,
                    note=f"{type(error).__name__}: {error}"[:300],
                )
            )
        print(
            f"[benchmarks] {name} done in {time.perf_counter() - section_start:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    table = format_table(rows)
    print(table)
    notes = [f"{r.section} / {r.name}: {r.note}" for r in rows if r.note]
    if notes:
        print("\nnotes:\n" + "\n".join(notes))
    payload = {
        "command": "python -m benchmarks "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {**machine(), "load_average_start": load_at_start},
        "rows": [r.as_dict() for r in rows],
    }
    write_json(Path(args.json), payload)
    failed = [r for r in rows if r.name == "section failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
