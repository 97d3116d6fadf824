"""Command-line options shared by several commands."""

from __future__ import annotations

import argparse
from typing import Any

BATCH_HELP = (
    "most padded audio seconds per forward pass (default: batch_seconds_cpu / "
    "batch_seconds_cuda of hparams/verification.yaml)"
)
BATCH_SIZE_HELP = "most files per forward pass (default: verification.yaml)"


def model_options(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that run a model folder."""
    parser.add_argument(
        "--model", required=True, help="model folder or Hugging Face Hub id (user/repo)"
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--no-fast",
        dest="fast",
        action="store_false",
        help="run the eager model instead of the optimised inference path",
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "int8"),
        help="fast path precision: auto (bf16 where the CPU computes it natively, "
        "else fp32), fp32, bf16, or int8 (quantized convolutions, needs "
        "--int8-calibration and onnxruntime)",
    )
    parser.add_argument(
        "--int8-calibration",
        action="append",
        metavar="AUDIO",
        help="real speech for --precision int8: an audio file, folder or list; "
        "repeatable (int8_calibration_utterances of verification.yaml are used). "
        "One value per flag, so that it never swallows the positional files",
    )
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="load a model folder whose hyperparams.yaml names code outside "
        "model_folder_trusted_targets of hparams/verification.yaml (it runs that "
        "code: only for a folder you trust)",
    )


def speech_options(parser: argparse.ArgumentParser) -> None:
    """Speech detection: how much net speech a recording needs, what is embedded."""
    parser.add_argument(
        "--vad",
        choices=("trim", "check", "off"),
        help="trim: cut long pauses and the non-speech around the speech; "
        "check: refuse recordings with too little speech but embed them whole; "
        "off: no detection (default: what the model folder was trained with, "
        "else vad of hparams/verification.yaml)",
    )
    parser.add_argument(
        "--min-speech-seconds",
        type=float,
        metavar="S",
        help="least net speech of a recording; less is refused, never decided "
        "(default: the model folder's, else min_speech_seconds of "
        "hparams/verification.yaml)",
    )
    parser.add_argument(
        "--trim-min-pause-seconds",
        type=float,
        metavar="S",
        help="with --vad trim, pauses this long or longer are cut, shorter ones "
        "kept (inf: only the non-speech before and after the speech; default: "
        "the model folder's, else trim_min_pause_seconds of verification.yaml)",
    )
    parser.add_argument(
        "--trim-pad-seconds",
        type=float,
        metavar="S",
        help="with --vad trim, context kept around the speech (default: the "
        "model folder's, else trim_pad_seconds of verification.yaml)",
    )


def speech_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The speech options given on the command line, by their YAML names
    (None where not given: the model folder's or the packaged default)."""
    return {
        "vad": args.vad,
        "min_speech_seconds": args.min_speech_seconds,
        "trim_min_pause_seconds": args.trim_min_pause_seconds,
        "trim_pad_seconds": args.trim_pad_seconds,
    }


def batch_options(parser: argparse.ArgumentParser) -> None:
    """Batch limits and the progress bar."""
    parser.add_argument("--batch-size", type=int, help=BATCH_SIZE_HELP)
    parser.add_argument("--batch-seconds", type=float, help=BATCH_HELP)
    parser.add_argument(
        "--num-workers",
        type=int,
        help="processes that decode audio while the model runs (default: "
        "num_workers of hparams/verification.yaml; 0 decodes in this process)",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def trial_options(parser: argparse.ArgumentParser, required: bool) -> None:
    """A trial list and the folder its paths are relative to."""
    parser.add_argument(
        "--trials",
        required=required,
        help="trial list, lines '<1|0> <enrol path> <test path>'",
    )
    parser.add_argument(
        "--data-root",
        required=required,
        help="folder the trial paths are relative to (or its parent holding wav/)",
    )


def publish_options(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that write a model folder."""
    trial_options(parser, required=False)
    parser.add_argument(
        "--int8-calibration",
        action="append",
        metavar="AUDIO",
        help="real speech to store an int8 calibration from (its features, in "
        "int8_calibration.npz), so that --precision int8 needs no audio: an "
        "audio file, folder or list; repeatable",
    )
    parser.add_argument(
        "--training-data",
        metavar="NAME",
        help="name or Hugging Face dataset id of the training data, e.g. "
        "voxceleb2 (model card text and its datasets metadata; a local path "
        "is refused)",
    )
    parser.add_argument(
        "--eval-dataset",
        metavar="NAME",
        help="name of the data the --trials list comes from, for the card's "
        "results (model-index) (default: the --data-root folder's name, never "
        "its path)",
    )
    parser.add_argument(
        "--language",
        action="append",
        default=[],
        metavar="CODE",
        help="ISO 639 code of the training speech (e.g. en, zh) or "
        "multilingual; repeatable (default: none stated in the card)",
    )
    parser.add_argument(
        "--license",
        default="apache-2.0",
        help="license of the weights: a Hugging Face Hub license identifier "
        "(apache-2.0, mit, cc-by-4.0, cc-by-nc-4.0, ..., other; default "
        "apache-2.0)",
    )
    parser.add_argument(
        "--push-to-hub",
        metavar="REPO",
        help="upload the folder to this Hugging Face repo",
    )
    parser.add_argument(
        "--private", action="store_true", help="create the Hub repo private"
    )


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict (values parsed as YAML).

    Example
    -------
    >>> parse_overrides(["m_channels=16", "speeds=[1.0, 0.9]"])
    {'m_channels': 16, 'speeds': [1.0, 0.9]}
    """
    import yaml

    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--override expects KEY=VALUE, got {pair!r}")
        result[key] = yaml.safe_load(value)
    return result
