"""Command-line options shared by several commands, and the rules every
command's options follow (docs/cli.md).

* An option that sets a default of ``hparams/verification.yaml`` is spelled
  as its key, with dashes (``--identify-top-k`` sets ``identify_top_k``), and
  its help shows the YAML's value, read from the YAML (:func:`yaml_default`).
* What a command writes is ``--out``; a model folder it reads is ``--model``,
  a checkpoint ``--checkpoint``, int8 calibration audio ``--int8-calibration``.
* An older spelling stays for one release as a hidden alias that warns
  (:func:`deprecated_alias`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..settings import default

# Version of the JSON that ``--json`` prints; raised when a field changes
# meaning or goes away (a new field keeps it).
JSON_SCHEMA = 1
YAML_FILE = "hparams/verification.yaml"


def yaml_default(*keys: str) -> str:
    """``<key> = <value> in hparams/verification.yaml`` for help texts (the
    docs' quoting convention), the value read from the YAML, so that help
    and YAML cannot disagree.

    Example
    -------
    >>> yaml_default("p_target")
    'p_target = 0.5 in hparams/verification.yaml'
    >>> yaml_default("batch_seconds_cpu", "batch_seconds_cuda")
    'batch_seconds_cpu = 20.0 / batch_seconds_cuda = 600.0 in hparams/verification.yaml'
    """
    quoted = " / ".join(f"{key} = {default(key)}" for key in keys)
    return f"{quoted} in {YAML_FILE}"


def json_document(fields: dict[str, Any]) -> dict[str, Any]:
    """What a ``--json`` output prints: ``schema`` first, then the fields.

    Example
    -------
    >>> json_document({"score": 0.5})
    {'schema': 1, 'score': 0.5}
    """
    return {"schema": JSON_SCHEMA, **fields}


class _DeprecatedAlias(argparse.Action):
    """An old spelling: warns in one line, then stores (or appends) as the new."""

    def __init__(self, option_strings, dest, new: str, append: bool = False, **kw):
        self.new, self.append = new, append
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        old = option_string or f"the positional {self.metavar}"
        print(
            f"eres2net: warning: {old} is deprecated, use {self.new} (the old "
            "spelling goes in the next release)",
            file=sys.stderr,
        )
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)


def deprecated_alias(
    parser: argparse.ArgumentParser,
    old: str,
    new: str,
    dest: str,
    append: bool = False,
    **kwargs: Any,
) -> None:
    """Accepts ``old`` (an option, or a positional name) as a hidden alias of
    ``new``, storing into ``dest``; using it prints a one-line warning.

    Example
    -------
    >>> parser = argparse.ArgumentParser()
    >>> _ = parser.add_argument("--out")
    >>> deprecated_alias(parser, "--output-dir", "--out", "out")
    >>> parser.parse_args(["--output-dir", "x"]).out
    'x'
    >>> "--output-dir" in parser.format_help()
    False
    """
    if old.startswith("-"):
        parser.add_argument(
            old,
            dest=dest,
            action=_DeprecatedAlias,
            new=new,
            append=append,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
            **kwargs,
        )
        return
    # A positional: optional, hidden from usage and help.
    parser.add_argument(
        dest,
        nargs="?",
        metavar=old,
        action=_DeprecatedAlias,
        new=new,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
        **kwargs,
    )


def check_model_argument(source: str) -> None:
    """Fails at once, naming ``--model``, on a mistyped local model folder
    (before any model code or network request runs).

    Example
    -------
    >>> check_model_argument("./no/such/model")
    Traceback (most recent call last):
    ...
    FileNotFoundError: --model: model folder not found: ./no/such/model
    """
    from ..inference.folder import model_source

    try:
        model_source(source)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"--model: {err}") from None


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
        "repeatable; one value per flag, so that it never swallows the "
        "positional files (utterances used: "
        + yaml_default("int8_calibration_utterances")
        + ")",
    )
    parser.add_argument(
        "--trust-model-code",
        action="store_true",
        help="load a model folder whose hyperparams.yaml names code outside "
        "the allow-list model_folder_trusted_targets (it runs that code: only "
        "for a folder you trust)",
    )


def speech_options(parser: argparse.ArgumentParser) -> None:
    """Speech detection: how much net speech a recording needs, what is embedded."""
    parser.add_argument(
        "--vad",
        choices=("trim", "check", "off"),
        help="trim: cut long pauses and the non-speech around the speech; "
        "check: refuse recordings with too little speech but embed them whole; "
        "off: no detection (default: what the model folder was trained with, "
        "else " + yaml_default("vad") + ")",
    )
    parser.add_argument(
        "--min-speech-seconds",
        type=float,
        metavar="S",
        help="least net speech of a recording; less is refused, never decided "
        "(default: the model folder's, else "
        + yaml_default("min_speech_seconds")
        + ")",
    )
    parser.add_argument(
        "--trim-min-pause-seconds",
        type=float,
        metavar="S",
        help="with --vad trim, pauses this long or longer are cut, shorter ones "
        "kept (inf: only the non-speech before and after the speech; default: "
        "the model folder's, else " + yaml_default("trim_min_pause_seconds") + ")",
    )
    parser.add_argument(
        "--trim-pad-seconds",
        type=float,
        metavar="S",
        help="with --vad trim, context kept around the speech (default: the "
        "model folder's, else " + yaml_default("trim_pad_seconds") + ")",
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
    parser.add_argument(
        "--batch-size",
        type=int,
        help=f"most files per forward pass (default: {yaml_default('batch_size')})",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        help="most padded audio seconds per forward pass on CPU / CUDA (default: "
        + yaml_default("batch_seconds_cpu", "batch_seconds_cuda")
        + ")",
    )
    parser.add_argument(
        "--num-workers",
        type=int,
        help="processes that decode audio while the model runs; 0 decodes in "
        "this process (default: " + yaml_default("num_workers") + ")",
    )
    parser.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar on stderr",
    )


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
