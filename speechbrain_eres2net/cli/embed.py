"""``eres2net embed``: embeddings of many audio files, to .npz or Kaldi ark/scp.

Streamed to disk and resumable (rerun the same command after a kill); under
``torchrun --nproc_per_node=N -m speechbrain_eres2net.cli embed ...`` each
rank embeds its share on its own device (``--device cuda`` becomes
``cuda:LOCAL_RANK``) and rank 0 writes the one output
(:mod:`speechbrain_eres2net.inference.extraction`).
"""

from __future__ import annotations

import argparse
import sys

from .options import batch_options, model_options, speech_options, speech_settings


def add_parser(commands) -> None:
    """Adds ``embed`` to the subcommands."""
    embed = commands.add_parser(
        "embed", help="embed audio files (wav files, folders, list files)"
    )
    model_options(embed)
    speech_options(embed)
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
    batch_options(embed)
    embed.add_argument("--errors", help="error report file (default: <out>.errors.txt)")


def embedder(args: argparse.Namespace):
    """The model folder of ``--model`` as a :class:`SpeakerEmbedder`."""
    from ..inference.embedder import SpeakerEmbedder

    precision = getattr(args, "precision", "auto")
    return SpeakerEmbedder.from_folder(
        args.model,
        device=args.device,
        fast=args.fast,
        precision=precision,
        int8_calibration=getattr(args, "int8_calibration", None),
        trust_code=getattr(args, "trust_model_code", False),
        **speech_settings(args),
    )


def run(args: argparse.Namespace) -> int:
    """``eres2net embed``: embeddings of many files, streamed to disk,
    resumable, sharded by rank under torchrun; bad files reported."""
    from ..dataio.embedding_store import check_output, output_format
    from ..inference.embedder import expand_inputs
    from ..inference.extraction import (
        distributed_context,
        extract_embeddings,
        rank_device,
    )

    files = expand_inputs(args.inputs)
    if not files:
        raise ValueError(f"no audio files found in {' '.join(args.inputs)}")
    fmt = output_format(args.out, args.format)
    errors_file = args.errors or f"{args.out}.errors.txt"
    # Output problems are found before the model loads or any file is read.
    check_output(args.out, fmt, [str(f) for f in files], errors_file)
    rank, world, local_rank = distributed_context()
    args.device = rank_device(args.device, local_rank)
    done = extract_embeddings(
        embedder(args),
        files,
        args.out,
        fmt,
        errors_file,
        batch_size=args.batch_size,
        batch_seconds=args.batch_seconds,
        num_workers=args.num_workers,
        progress=args.progress,
    )
    if not done.merged:
        return 0
    if done.resumed:
        print(
            f"resumed: {done.resumed} of {done.files} file(s) were done by an "
            "earlier run",
            file=sys.stderr,
        )
    if done.errors:
        first, reason = next(iter(done.errors.items()))
        print(
            f"eres2net embed: error: {len(done.errors)} of {done.files} file(s) could "
            f"not be embedded (e.g. {first}: {reason}); all listed in {errors_file}",
            file=sys.stderr,
        )
    if done.written:
        ranks = f" by {world} processes" if world > 1 else ""
        print(
            f"embedded {done.embedded} file(s){ranks} -> "
            f"{', '.join(map(str, done.written))}",
            file=sys.stderr,
        )
    return 1 if done.errors else 0
