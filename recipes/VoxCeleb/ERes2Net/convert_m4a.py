#!/usr/bin/env python3
"""Converts VoxCeleb2's m4a files to 16 kHz mono WAV with ffmpeg (resumable).

Usage::

    python recipes/VoxCeleb/ERes2Net/convert_m4a.py \
        --source /data/voxceleb2/aac --target /data/voxceleb2/wav --num_workers 8

Rerunning skips files already converted. The logic lives in
``speechbrain_eres2net.dataio.m4a.convert_m4a_tree``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from speechbrain_eres2net.dataio.m4a import convert_m4a_tree


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", required=True, help="folder with .m4a files")
    parser.add_argument("--target", required=True, help="output wav folder")
    parser.add_argument("--num_workers", type=int, default=4)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable")
    args = parser.parse_args(argv)
    try:
        counts = convert_m4a_tree(
            args.source,
            args.target,
            num_workers=args.num_workers,
            sample_rate=args.sample_rate,
            ffmpeg=args.ffmpeg,
            progress=sys.stderr.isatty(),
        )
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"converted {counts['converted']}, skipped {counts['skipped']} "
        f"(done before), failed {counts['failed']}"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
