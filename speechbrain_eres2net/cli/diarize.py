"""``eres2net diarize``: who spoke when, one NIST RTTM per recording.

Resumable (rerun the same command after a kill) and sharded under
``torchrun --nproc_per_node=N -m speechbrain_eres2net.cli diarize ...``
(:mod:`speechbrain_eres2net.evaluation.diarization_job`); ``--gallery`` names
the clusters of enrolled speakers (docs/diarization.md).
"""

from __future__ import annotations

import argparse
import json
import sys

from .options import (
    json_document,
    model_options,
    speech_options,
    speech_settings,
    yaml_default,
)


def add_parser(commands) -> None:
    """Adds ``diarize`` to the subcommands."""
    diarize = commands.add_parser(
        "diarize", help="who spoke when: one RTTM file per recording"
    )
    model_options(diarize)
    speech_options(diarize)
    diarize.add_argument(
        "inputs", nargs="+", help="audio files, folders (recursive) or list files"
    )
    diarize.add_argument(
        "--out",
        "--out-dir",
        dest="out",
        required=True,
        help="output folder: <uri>.rttm per recording (uri: the file name "
        "without its suffix), errors.txt for recordings without one",
    )
    count = diarize.add_argument_group("speaker count (default: estimated)")
    count.add_argument(
        "--num-speakers", type=int, metavar="N", help="exactly N speakers"
    )
    count.add_argument("--min-speakers", type=int, metavar="A", help="at least A")
    count.add_argument("--max-speakers", type=int, metavar="B", help="at most B")
    diarize.add_argument(
        "--gallery",
        help="gallery file (eres2net enroll) whose speakers name the clusters "
        "they are identified with; the others stay SPEAKER_NN",
    )
    diarize.add_argument(
        "--p-enrolled",
        type=float,
        help="with --gallery, prior that a cluster's speaker is enrolled "
        "(default: " + yaml_default("p_enrolled") + ")",
    )
    diarize.add_argument(
        "--diarize-clustering",
        choices=("ahc", "spectral", "spectral-ahc"),
        help="ahc: merge windows while the calibrated LLR of 'same speaker' "
        "beats the Bayes threshold; spectral: eigengap count; spectral-ahc: "
        "spectral clusters merged by that LLR (default: "
        + yaml_default("diarize_clustering")
        + ")",
    )
    diarize.add_argument(
        "--diarize-p-same",
        type=float,
        metavar="P",
        help="ahc, spectral-ahc: prior that two clusters are one speaker "
        "(default: " + yaml_default("diarize_p_same") + ")",
    )
    diarize.add_argument(
        "--diarize-window-seconds",
        type=float,
        metavar="S",
        help="window embedded (default: "
        + yaml_default("diarize_window_seconds")
        + ")",
    )
    diarize.add_argument(
        "--diarize-hop-seconds",
        type=float,
        metavar="S",
        help="hop between windows (default: "
        + yaml_default("diarize_hop_seconds")
        + ")",
    )
    diarize.add_argument(
        "--batch-size",
        type=int,
        help=f"windows per forward pass (default: {yaml_default('batch_size')})",
    )
    diarize.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line per recording on stdout (docs/cli.md)",
    )
    diarize.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar on stderr",
    )


def run(args: argparse.Namespace) -> int:
    """``eres2net diarize``: RTTM files of many recordings, resumable,
    sharded by rank under torchrun; recordings without one reported."""
    from ..evaluation.clustering import SpeakerCount
    from ..evaluation.diarization import Diarizer
    from ..evaluation.diarization_job import ERRORS_FILE, diarize_files, recording_uris
    from ..inference.embedder import expand_inputs
    from ..inference.extraction import distributed_context, rank_device

    files = expand_inputs(args.inputs)
    if not files:
        raise ValueError(f"no audio files found in {' '.join(args.inputs)}")
    # Problems of the command line are found before the model loads.
    SpeakerCount.of(args.num_speakers, args.min_speakers, args.max_speakers)
    recording_uris(files)
    _, world, local_rank = distributed_context()
    diarizer = Diarizer.from_folder(
        args.model,
        gallery=args.gallery,
        diarizer_options={
            "clustering": args.diarize_clustering,
            "p_same": args.diarize_p_same,
            "window_seconds": args.diarize_window_seconds,
            "hop_seconds": args.diarize_hop_seconds,
            "batch_size": args.batch_size,
        },
        identifier_options={"p_enrolled": args.p_enrolled},
        device=rank_device(args.device, local_rank),
        fast=args.fast,
        precision=args.precision,
        int8_calibration=args.int8_calibration,
        trust_code=args.trust_model_code,
        **speech_settings(args),
    )
    job = diarize_files(
        diarizer,
        files,
        args.out,
        args.num_speakers,
        args.min_speakers,
        args.max_speakers,
        progress=args.progress,
    )
    if not job.merged:
        return 0
    for result in job.results:
        if args.json:
            print(json.dumps(json_document(result)), flush=True)
        elif "error" not in result:
            seconds = ", ".join(
                f"{s['label']} {s['seconds']:.1f} s" for s in result["speakers"]
            )
            print(
                f"{result['file']}: {result['num_speakers']} speaker(s) ({seconds})",
                flush=True,
            )
    if job.resumed:
        print(
            f"resumed: {job.resumed} of {len(files)} recording(s) were done by an "
            "earlier run",
            file=sys.stderr,
        )
    errors = job.errors
    if errors:
        print(
            f"eres2net diarize: error: {len(errors)} of {len(files)} recording(s) "
            f"have no diarization (e.g. {errors[0]['file']}: {errors[0]['error']}); "
            f"all listed in {args.out}/{ERRORS_FILE}",
            file=sys.stderr,
        )
    done = len(files) - len(errors)
    if done:
        ranks = f" by {world} processes" if world > 1 else ""
        print(
            f"diarized {done} recording(s){ranks} -> {args.out}/<uri>.rttm",
            file=sys.stderr,
        )
    return 1 if errors else 0
