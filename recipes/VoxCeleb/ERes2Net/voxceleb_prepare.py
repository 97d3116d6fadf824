#!/usr/bin/env python3
"""Prepares SpeechBrain CSVs for speaker recognition from VoxCeleb-layout folders.

Usage::

    python recipes/VoxCeleb/ERes2Net/voxceleb_prepare.py \
        --data_folder /data/voxceleb2 /data/voxceleb1 --save_folder results/data \
        --verification_file /data/voxceleb1/veri_test2.txt

Writes train.csv, dev.csv and (with a trial list) veri.csv; a rerun with the
same options does nothing. The logic lives in
``speechbrain_eres2net.dataio.voxceleb_prepare.prepare_voxceleb``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional

from speechbrain_eres2net.dataio.voxceleb_prepare import prepare_voxceleb


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data_folder",
        nargs="+",
        required=True,
        help="corpus roots holding wav/<speaker>/<session>/<utt>.wav",
    )
    parser.add_argument("--save_folder", required=True)
    parser.add_argument("--verification_file", default=None)
    # Unset options keep prepare_voxceleb's defaults (SpeechBrain's: 90/10, seed
    # 1234), so they live in one place.
    parser.add_argument("--split_ratio", nargs=2, type=int)
    parser.add_argument(
        "--keep_trial_speakers",
        action="store_true",
        help="train on the trial list's speakers too (left out by default)",
    )
    parser.add_argument("--num_workers", type=int)
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        given = {
            "split_ratio": tuple(args.split_ratio) if args.split_ratio else None,
            "num_workers": args.num_workers,
            "seed": args.seed,
        }
        outputs = prepare_voxceleb(
            args.data_folder,
            args.save_folder,
            verification_pairs_file=args.verification_file,
            exclude_trial_speakers=not args.keep_trial_speakers,
            **{k: v for k, v in given.items() if v is not None},
        )
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, path in outputs.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
