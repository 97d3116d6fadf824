"""The ``eres2net`` command line: embed, verify, score, enroll, identify,
diarize, export and import models.

Every command reports a problem the user can fix as one line on stderr
(``eres2net <command>: error: <what and where>``) and exits 1; a bug keeps
its traceback. ``ERES2NET_DEBUG=1`` shows the traceback of user errors too.
The options, their spellings and the ``--json`` outputs are the contract of
docs/cli.md.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from .. import __version__
from . import diarize, embed, export, gallery, verify
from .errors import USER_ERRORS, report
from .options import check_model_argument

COMMANDS = {
    "embed": embed.run,
    "verify": verify.run_verify,
    "score": verify.run_score,
    "export-hub": export.cmd_export_hub,
    "import-3dspeaker": export.cmd_import_3dspeaker,
    "export-onnx": export.cmd_export_onnx,
    "enroll": gallery.run_enroll,
    "identify": gallery.run_identify,
    "gallery": gallery.run_gallery,
    "diarize": diarize.run,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``eres2net`` command.

    Example
    -------
    >>> args = build_parser().parse_args(["verify", "--model", "m", "a.wav", "b.wav"])
    >>> args.command, args.first, args.threshold, args.p_target
    ('verify', 'a.wav', None, None)
    """
    parser = argparse.ArgumentParser(
        prog="eres2net",
        description="ERes2Net speaker embeddings for SpeechBrain "
        "(options and JSON outputs: docs/cli.md).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    embed.add_parser(commands)
    verify.add_parsers(commands)
    export.add_parsers(commands)
    gallery.add_parsers(commands)
    diarize.add_parser(commands)
    quick = commands.add_parser(
        "quickstart", help="train and evaluate a tiny model (see quickstart --help)"
    )
    quick.add_argument("args", nargs=argparse.REMAINDER)
    return parser


class _Notices(logging.StreamHandler):
    """The package's warnings on stderr as ``eres2net: <message>``."""


PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_show_warning = warnings.showwarning


def _show_package_warning(message, category, filename, lineno, file=None, line=None):
    """``eres2net: <message>`` for the package's own warnings (a fallback the
    user chose an option for); other libraries' warnings keep Python's form."""
    if str(Path(filename).resolve()).startswith(PACKAGE_DIR):
        print(f"eres2net: {message}", file=file or sys.stderr)
        return
    _show_warning(message, category, filename, lineno, file, line)


def show_notices() -> None:
    """Routes the package's warnings (e.g. audio conversions) to stderr.

    Library code logs, or warns where the caller should be able to turn a
    fallback into an error (``warnings.simplefilter("error")``); the command
    line decides how both reach people. The handler writes to the
    ``sys.stderr`` of this call.
    """
    package = logging.getLogger("speechbrain_eres2net")
    for handler in [h for h in package.handlers if isinstance(h, _Notices)]:
        package.removeHandler(handler)
    handler = _Notices(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("eres2net: %(message)s"))
    package.addHandler(handler)
    warnings.showwarning = _show_package_warning


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``eres2net`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_notices()
    if argv[:1] == ["quickstart"]:
        # Everything after the command belongs to the quickstart's own parser.
        from .quickstart import main as quickstart_main

        return int(quickstart_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "model", None) is not None:
            # Before any model code runs or the Hub is asked.
            check_model_argument(args.model)
        return COMMANDS[args.command](args)
    except USER_ERRORS as err:
        if os.environ.get("ERES2NET_DEBUG"):
            raise
        return report(args.command, err)
    except KeyboardInterrupt:
        print(f"eres2net {args.command}: interrupted", file=sys.stderr)
        return 130
