"""``eres2net verify`` and ``eres2net score``: decisions and trial-list metrics."""

from __future__ import annotations

import argparse
import json

from .embed import embedder
from .options import (
    batch_options,
    deprecated_alias,
    json_document,
    model_options,
    speech_options,
    trial_options,
    yaml_default,
)


def add_parsers(commands) -> None:
    """Adds ``verify`` and ``score`` to the subcommands."""
    verify = commands.add_parser(
        "verify", help="same speaker or not, for two files (score, LLR, decision)"
    )
    model_options(verify)
    speech_options(verify)
    verify.add_argument("first", help="first audio file")
    verify.add_argument("second", help="second audio file")
    verify.add_argument(
        "--p-target",
        type=float,
        help="prior of a same-speaker trial for the Bayes decision on the "
        "calibrated LLR (default: " + yaml_default("p_target") + ")",
    )
    verify.add_argument(
        "--c-miss",
        type=float,
        help="cost of a miss (default: " + yaml_default("c_miss") + ")",
    )
    verify.add_argument(
        "--c-fa",
        type=float,
        help="cost of a false accept (default: " + yaml_default("c_fa") + ")",
    )
    verify.add_argument(
        "--threshold",
        type=float,
        help="decide on the cosine score with this threshold instead",
    )
    verify.add_argument(
        "--json",
        action="store_true",
        help="print the decision as one JSON object (docs/cli.md)",
    )

    score = commands.add_parser(
        "score", help="EER, minDCF, Cllr and actual DCF of a trial list"
    )
    model_options(score)
    speech_options(score)
    trial_options(score, required=True)
    score.add_argument(
        "--out", metavar="FOLDER", help="also write scores.txt, results.json, plots"
    )
    deprecated_alias(score, "--output-dir", "--out", "out")
    score.add_argument(
        "--calibration",
        help="calibration.json to score with (default: the model folder's)",
    )
    batch_options(score)


def run_verify(args: argparse.Namespace) -> int:
    """``eres2net verify``: cosine score, LLR and decision for two files."""
    from ..dataio.audio import check_audio_file
    from ..evaluation.decisions import Verifier, folder_calibration

    for path in (args.first, args.second):
        check_audio_file(path)  # fail on a bad file before loading the model
    verifier = Verifier(embedder(args), folder_calibration(args.model))
    verifier.source = str(args.model)
    decision = verifier.verify(
        args.first,
        args.second,
        p_target=args.p_target,
        c_miss=args.c_miss,
        c_fa=args.c_fa,
        threshold=args.threshold,
    )
    if args.json:
        print(json.dumps(json_document(decision.as_dict())))
    else:
        print(decision.describe())
    return 0


def run_score(args: argparse.Namespace) -> int:
    """``eres2net score``: metrics of a trial list."""
    from ..evaluation.calibration import Calibration
    from ..evaluation.decisions import folder_calibration
    from ..evaluation.pipeline import evaluate_embedder

    calibration = (
        Calibration.load(args.calibration)
        if args.calibration
        else folder_calibration(args.model)
    )
    results = evaluate_embedder(
        embedder(args),
        args.trials,
        args.data_root,
        output_dir=args.out,
        calibration=calibration,
        batch_size=args.batch_size,
        batch_seconds=args.batch_seconds,
        num_workers=args.num_workers,
        progress=args.progress,
    )
    line = (
        f"EER {100 * results['eer']:.2f} % (threshold {results['eer_threshold']:.4f}) "
        f"minDCF(0.01) {results['min_dcf_0.01']:.4f} "
        f"minDCF(0.05) {results['min_dcf_0.05']:.4f} "
        f"minCllr {results['min_cllr']:.3f}"
    )
    if "cllr" in results:
        line += (
            f" Cllr {results['cllr']:.3f} actDCF(0.01) {results['act_dcf_0.01']:.4f} "
            f"actDCF(0.05) {results['act_dcf_0.05']:.4f}"
        )
    left_out = results.get("trials_left_out", 0)
    if left_out:
        line += f" ({left_out} left out: a side with too little speech)"
    print(f"{line} on {results['n_trials']} trials")
    return 0
