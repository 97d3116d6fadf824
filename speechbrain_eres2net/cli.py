"""The ``eres2net`` command line: embed, verify, score, export and import models.

Every command reports a problem as one line on stderr
(``eres2net <command>: error: <what and where>``) and exits non-zero,
without a Python traceback (set ``ERES2NET_DEBUG=1`` to see one).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

# Errors a user can cause and fix: reported in one line, never a traceback.
USER_ERRORS = (
    OSError,
    ValueError,
    RuntimeError,
    KeyError,
    TypeError,
    ImportError,
)
BATCH_HELP = (
    "most padded audio seconds per forward pass (default: 20 on CPU, where "
    "larger batches ran slower, 600 on CUDA)"
)


def _model_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that run a model folder."""
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


def _trial_options(parser: argparse.ArgumentParser, required: bool) -> None:
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


def _publish_options(parser: argparse.ArgumentParser) -> None:
    _trial_options(parser, required=False)
    parser.add_argument(
        "--training-data", help="what the model was trained on (model card)"
    )
    parser.add_argument(
        "--license", default="apache-2.0", help="license of the weights"
    )
    parser.add_argument(
        "--push-to-hub",
        metavar="REPO",
        help="upload the folder to this Hugging Face repo",
    )
    parser.add_argument(
        "--private", action="store_true", help="create the Hub repo private"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``eres2net`` command.

    Example
    -------
    >>> args = build_parser().parse_args(["verify", "--model", "m", "a.wav", "b.wav"])
    >>> args.command, args.first, args.threshold
    ('verify', 'a.wav', None)
    """
    parser = argparse.ArgumentParser(
        prog="eres2net", description="ERes2Net speaker embeddings for SpeechBrain."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = commands.add_parser(
        "embed", help="embed audio files (wav files, folders, list files)"
    )
    _model_options(embed)
    embed.add_argument(
        "inputs", nargs="+", help="audio files, folders (recursive) or list files"
    )
    embed.add_argument(
        "--out", required=True, help="output file: .npz, or .ark/.scp (Kaldi)"
    )
    embed.add_argument(
        "--format",
        choices=("npz", "kaldi"),
        help="npz (default) or kaldi (binary float vectors: .ark + .scp)",
    )
    embed.add_argument("--batch-size", type=int, default=16, help="most files")
    embed.add_argument("--batch-seconds", type=float, help=BATCH_HELP)
    embed.add_argument("--errors", help="error report file (default: <out>.errors.txt)")
    embed.add_argument("--no-progress", dest="progress", action="store_false")

    verify = commands.add_parser("verify", help="same speaker or not, for two files")
    _model_options(verify)
    verify.add_argument("first", help="first audio file")
    verify.add_argument("second", help="second audio file")
    verify.add_argument(
        "--threshold",
        type=float,
        help="cosine threshold (default: the one stored in the model folder)",
    )

    score = commands.add_parser("score", help="EER and minDCF of a trial list")
    _model_options(score)
    _trial_options(score, required=True)
    score.add_argument(
        "--output-dir", help="also write scores.txt, results.json, plots"
    )
    score.add_argument("--batch-size", type=int, default=16, help="most files")
    score.add_argument("--batch-seconds", type=float, help=BATCH_HELP)
    score.add_argument("--no-progress", dest="progress", action="store_false")

    export = commands.add_parser(
        "export-hub", help="model folder from a recipe checkpoint"
    )
    export.add_argument("--hparams", required=True, help="training YAML of the recipe")
    export.add_argument(
        "--checkpoint",
        required=True,
        help="CKPT+... folder, or the save folder holding them (latest is used)",
    )
    export.add_argument("--out", required=True, help="model folder to write")
    export.add_argument(
        "--label-encoder", help="label_encoder.txt (default: next to the checkpoint)"
    )
    export.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="value for a training YAML entry (e.g. a !PLACEHOLDER); repeatable",
    )
    _publish_options(export)

    imp = commands.add_parser(
        "import-3dspeaker", help="model folder from an official 3D-Speaker checkpoint"
    )
    imp.add_argument("checkpoint", help="official ERes2Net/ERes2NetV2/huge .ckpt/.pt")
    imp.add_argument("--out", required=True, help="model folder to write")
    _publish_options(imp)

    onnx = commands.add_parser("export-onnx", help="ONNX graph of a model folder")
    onnx.add_argument("--model", required=True, help="model folder or Hub id")
    onnx.add_argument("--out", required=True, help=".onnx file to write")
    onnx.add_argument(
        "--with-features",
        action="store_true",
        help="filterbank inside the graph: input waveforms instead of features",
    )

    quick = commands.add_parser(
        "quickstart", help="train and evaluate a tiny model (see quickstart --help)"
    )
    quick.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``eres2net`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["quickstart"]:
        # Everything after the command belongs to the quickstart's own parser.
        from .quickstart import main as quickstart_main

        return int(quickstart_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as err:
        if os.environ.get("ERES2NET_DEBUG"):
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"eres2net {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eres2net {args.command}: interrupted", file=sys.stderr)
        return 130


def _embedder(args: argparse.Namespace):
    from .inference import SpeakerEmbedder

    return SpeakerEmbedder.from_folder(args.model, device=args.device, fast=args.fast)


def cmd_embed(args: argparse.Namespace) -> int:
    """``eres2net embed``: embeddings of many files, bad files reported."""
    from .files import write_text_atomic
    from .inference import expand_inputs

    fmt = args.format or (
        "kaldi" if Path(args.out).suffix in (".ark", ".scp") else "npz"
    )
    files = expand_inputs(args.inputs)
    if not files:
        raise ValueError(f"no audio files found in {' '.join(args.inputs)}")
    embedder = _embedder(args)
    embeddings, errors = embedder.embed_files(
        files,
        batch_size=args.batch_size,
        progress=args.progress,
        batch_seconds=args.batch_seconds,
    )
    # Keep the order the inputs were given in, not the length order.
    ordered = {str(f): embeddings[str(f)] for f in files if str(f) in embeddings}
    written = []
    if ordered:
        if fmt == "kaldi":
            written = write_kaldi_vectors(ordered, args.out)
        else:
            written = [write_npz(ordered, args.out)]
    if errors:
        report = Path(args.errors or f"{args.out}.errors.txt")
        write_text_atomic(report, "".join(f"{p}\t{r}\n" for p, r in errors.items()))
        first, reason = next(iter(errors.items()))
        print(
            f"eres2net embed: error: {len(errors)} of {len(files)} file(s) could not "
            f"be embedded (e.g. {first}: {reason}); all listed in {report}",
            file=sys.stderr,
        )
    if ordered:
        print(
            f"embedded {len(ordered)} file(s) -> {', '.join(map(str, written))}",
            file=sys.stderr,
        )
    return 1 if errors else 0


def write_npz(embeddings: Mapping[str, np.ndarray], out: str) -> Path:
    """Writes ``{path: embedding}`` to an ``.npz`` file atomically."""
    from .files import atomic_open

    out = Path(out)
    with atomic_open(out, "wb") as f:
        np.savez(
            f, **{k: np.asarray(v, dtype=np.float32) for k, v in embeddings.items()}
        )
    return out


def write_kaldi_vectors(embeddings: Mapping[str, np.ndarray], out: str) -> list[Path]:
    """Writes Kaldi binary float vectors: ``<base>.ark`` and ``<base>.scp``.

    Each ark record is ``<key> \\0BFV \\x04<int32 dim><float32 data>``; each
    scp line is ``<key> <ark path>:<byte offset of \\0B>``, as Kaldi's
    ``copy-vector`` and ``kaldiio`` read them.

    Example
    -------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> ark, scp = write_kaldi_vectors({"a": np.ones(2)}, d + "/e.ark")
    >>> ark.read_bytes()
    b'a \\x00BFV \\x04\\x02\\x00\\x00\\x00\\x00\\x00\\x80?\\x00\\x00\\x80?'
    >>> scp.read_text().split(":")[-1]
    '2\\n'
    """
    from .files import atomic_open

    base = Path(out)
    if base.suffix in (".ark", ".scp"):
        base = base.with_suffix("")
    ark, scp = base.with_name(base.name + ".ark"), base.with_name(base.name + ".scp")
    bad = [k for k in embeddings if not k or any(c.isspace() for c in k)]
    if bad:
        raise ValueError(f"Kaldi keys cannot contain whitespace: {bad[0]!r}; use .npz")
    lines = []
    with atomic_open(ark, "wb") as f:
        for key, vector in embeddings.items():
            f.write(f"{key} ".encode())
            lines.append(f"{key} {ark.resolve()}:{f.tell()}\n")
            data = np.asarray(vector, dtype="<f4").ravel()
            f.write(b"\0BFV \x04" + struct.pack("<i", data.size) + data.tobytes())
    with atomic_open(scp, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return [ark, scp]


def cmd_verify(args: argparse.Namespace) -> int:
    """``eres2net verify``: cosine score and decision for two files."""
    from .audio import check_audio_file

    for path in (args.first, args.second):
        check_audio_file(path)  # fail on a bad file before loading the model
    embedder = _embedder(args)
    threshold = args.threshold if args.threshold is not None else embedder.threshold
    first = embedder.embed_file(args.first)
    second = embedder.embed_file(args.second)
    score = embedder.score(first, second)
    if threshold is None:
        print(f"score {score:.4f}")
        raise ValueError(
            f"{args.model} stores no verification threshold; pass --threshold"
        )
    same = score >= threshold
    print(
        f"score {score:.4f} threshold {threshold:.4f} -> "
        f"{'same speaker' if same else 'different speakers'}"
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """``eres2net score``: EER and minDCF of a trial list."""
    from .inference import evaluate_embedder

    results = evaluate_embedder(
        _embedder(args),
        args.trials,
        args.data_root,
        output_dir=args.output_dir,
        batch_size=args.batch_size,
        progress=args.progress,
        batch_seconds=args.batch_seconds,
    )
    print(
        f"EER {100 * results['eer']:.2f} % (threshold {results['eer_threshold']:.4f}) "
        f"minDCF(0.01) {results['min_dcf_0.01']:.4f} "
        f"minDCF(0.05) {results['min_dcf_0.05']:.4f} on {results['n_trials']} trials"
    )
    return 0


def _publish(args: argparse.Namespace, folder: Path) -> int:
    print(f"model folder written to {folder}", file=sys.stderr)
    if args.push_to_hub:
        from .hub import push_to_hub

        push_to_hub(folder, args.push_to_hub, private=args.private)
        print(f"uploaded to https://huggingface.co/{args.push_to_hub}", file=sys.stderr)
    return 0


def _card_options(args: argparse.Namespace) -> dict:
    options = {
        "trials": args.trials,
        "data_root": args.data_root,
        "license": args.license,
    }
    if args.training_data:
        options["training_data"] = args.training_data
    return options


def cmd_export_hub(args: argparse.Namespace) -> int:
    """``eres2net export-hub``: recipe checkpoint -> model folder."""
    from .hub import export_hub
    from .quickstart import parse_overrides

    folder = export_hub(
        args.hparams,
        args.checkpoint,
        args.out,
        label_encoder=args.label_encoder,
        overrides=parse_overrides(args.override),
        **_card_options(args),
    )
    return _publish(args, folder)


def cmd_import_3dspeaker(args: argparse.Namespace) -> int:
    """``eres2net import-3dspeaker``: official checkpoint -> model folder."""
    from .hub import import_3dspeaker

    folder = import_3dspeaker(args.checkpoint, args.out, **_card_options(args))
    return _publish(args, folder)


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """``eres2net export-onnx``: model folder -> ONNX graph."""
    from .onnx_export import OPSET, export_onnx

    out = export_onnx(args.model, args.out, with_features=args.with_features)
    kind = (
        "wavs (batch, samples)" if args.with_features else "feats (batch, frames, mels)"
    )
    print(
        f"wrote {out} (opset {OPSET}, input {kind}, output embedding)", file=sys.stderr
    )
    return 0


COMMANDS = {
    "embed": cmd_embed,
    "verify": cmd_verify,
    "score": cmd_score,
    "export-hub": cmd_export_hub,
    "import-3dspeaker": cmd_import_3dspeaker,
    "export-onnx": cmd_export_onnx,
}


if __name__ == "__main__":
    sys.exit(main())
