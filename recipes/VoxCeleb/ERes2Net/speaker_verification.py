#!/usr/bin/env python3
"""Speaker verification of a trained ERes2Net on a VoxCeleb-format trial list.

Usage::

    python recipes/VoxCeleb/ERes2Net/speaker_verification.py \
        hparams/verification.yaml --data_folder=/data/voxceleb1 \
        --verification_file=/data/voxceleb1/veri_test2.txt \
        --checkpoint_folder=results/eres2net_base/1234/save

Writes scores.txt, results.json, det.png and hist.png to --output_folder.
The logic lives in ``speechbrain_eres2net.training.verification.run_verification``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import speechbrain as sb

from speechbrain_eres2net.training.recipe import load_hparams
from speechbrain_eres2net.training.verification import run_verification


def main(argv: Optional[list[str]] = None) -> int:
    hparams_file, run_opts, overrides = sb.parse_arguments(
        sys.argv[1:] if argv is None else argv
    )
    try:
        hparams = load_hparams(hparams_file, overrides)
        if getattr(run_opts, "noprogressbar", False):
            hparams["progress"] = False
        results = run_verification(hparams, device=getattr(run_opts, "device", None))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2))
    print(
        f"EER {100 * results['eer']:.2f}%  minDCF(0.01) {results['min_dcf_0.01']:.4f}"
        f"  -> {hparams['output_folder']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
