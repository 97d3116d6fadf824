"""``eres2net export-hub``, ``import-3dspeaker``, ``export-onnx``: model folders out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import deprecated_alias, parse_overrides, publish_options


def add_parsers(commands) -> None:
    """Adds the export commands to the subcommands."""
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
    publish_options(export)

    imp = commands.add_parser(
        "import-3dspeaker", help="model folder from an official 3D-Speaker checkpoint"
    )
    imp.add_argument(
        "--checkpoint", help="official ERes2Net/ERes2NetV2/huge .ckpt/.pt (required)"
    )
    deprecated_alias(imp, "CHECKPOINT", "--checkpoint", "checkpoint")
    imp.add_argument("--out", required=True, help="model folder to write")
    publish_options(imp)

    onnx = commands.add_parser("export-onnx", help="ONNX graph of a model folder")
    onnx.add_argument("--model", required=True, help="model folder or Hub id")
    onnx.add_argument("--out", required=True, help=".onnx file to write")
    onnx.add_argument(
        "--with-features",
        action="store_true",
        help="filterbank inside the graph: input waveforms instead of features",
    )
    onnx.add_argument(
        "--int8-calibration",
        action="append",
        metavar="AUDIO",
        help="write an int8 graph (statically quantized convolutions), calibrated "
        "on real speech: an audio file, folder or list; repeatable",
    )
    deprecated_alias(
        onnx, "--int8", "--int8-calibration", "int8_calibration", append=True
    )
    onnx.add_argument(
        "--sherpa-onnx",
        action="store_true",
        help="the graph must run in sherpa-onnx (its metadata is written whenever "
        "the folder can deploy there): refuse folders that cannot, saying why",
    )


def _publish(args: argparse.Namespace, folder: Path) -> int:
    print(f"model folder written to {folder}", file=sys.stderr)
    if args.push_to_hub:
        from ..export.hub import push_to_hub

        push_to_hub(folder, args.push_to_hub, private=args.private)
        print(f"uploaded to https://huggingface.co/{args.push_to_hub}", file=sys.stderr)
    return 0


def _card_options(args: argparse.Namespace) -> dict:
    """The model card options, checked before any model is loaded."""
    from ..export.card import check_language, check_license, check_name

    for value, option in (
        (args.training_data, "--training-data"),
        (args.eval_dataset, "--eval-dataset"),
    ):
        if value:
            check_name(value, option)
    return {
        "int8_calibration": args.int8_calibration,
        "trials": args.trials,
        "data_root": args.data_root,
        "license": check_license(args.license, "--license"),
        "training_data": args.training_data,
        "eval_dataset": args.eval_dataset,
        "language": [check_language(c, "--language") for c in args.language],
    }


def cmd_export_hub(args: argparse.Namespace) -> int:
    """``eres2net export-hub``: recipe checkpoint -> model folder."""
    from ..export.recipe import export_hub

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
    from ..export.import_3dspeaker import import_3dspeaker

    if not args.checkpoint:
        raise ValueError("--checkpoint is required (the official .ckpt/.pt file)")
    folder = import_3dspeaker(args.checkpoint, args.out, **_card_options(args))
    return _publish(args, folder)


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """``eres2net export-onnx``: model folder -> ONNX graph."""
    from ..export.onnx import OPSET, export_onnx

    out = export_onnx(
        args.model,
        args.out,
        with_features=args.with_features,
        int8_calibration=args.int8_calibration,
        sherpa_onnx=True if args.sherpa_onnx else None,
    )
    kind = (
        "wavs (batch, samples)" if args.with_features else "feats (batch, frames, mels)"
    )
    print(
        f"wrote {out} (opset {OPSET}, {'int8' if args.int8_calibration else 'fp32'}, "
        f"input {kind}, output embedding)",
        file=sys.stderr,
    )
    return 0
