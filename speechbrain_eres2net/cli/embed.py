"""``eres2net embed``: embeddings of many audio files, to .npz or Kaldi ark/scp."""

from __future__ import annotations

import argparse
import struct
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .options import batch_options, model_options, speech_options


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
    if precision == "int8" and not getattr(args, "int8_calibration", None):
        raise ValueError(
            "--precision int8 needs --int8-calibration (audio files or folders of real "
            "speech to calibrate the quantization)"
        )
    return SpeakerEmbedder.from_folder(
        args.model,
        device=args.device,
        fast=args.fast,
        precision=precision,
        int8_calibration=getattr(args, "int8_calibration", None),
        trust_code=getattr(args, "trust_model_code", False),
        vad=args.vad,
        min_speech_seconds=args.min_speech_seconds,
    )


def run(args: argparse.Namespace) -> int:
    """``eres2net embed``: embeddings of many files, bad files reported."""
    from ..dataio.files import write_text_atomic
    from ..inference.embedder import expand_inputs

    fmt = args.format or (
        "kaldi" if Path(args.out).suffix in (".ark", ".scp") else "npz"
    )
    files = expand_inputs(args.inputs)
    if not files:
        raise ValueError(f"no audio files found in {' '.join(args.inputs)}")
    model = embedder(args)
    embeddings, errors, _, _ = model.embed_files(
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
    from ..dataio.files import atomic_open

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
    from ..dataio.files import atomic_open

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
