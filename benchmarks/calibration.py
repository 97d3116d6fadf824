"""Calibration benchmark: do the LLRs of a model folder support decisions?

``python -m benchmarks.calibration --model FOLDER`` (a model folder trained by
our recipe; without ``--model`` the tiny quickstart model is trained on
realspk first, about 5 minutes on 2 idle cores).

Protocol (realspk dev, fixed seed): the 30 dev speakers are split into two
halves; trials are all pairs of utterances within a half. Calibrations are
fitted on half A and evaluated on half B, in two conditions: full-length
utterances, and both sides cut to their first 2 s (a shifted condition).
The calibration set pools half A's full-length and 2-s trials, so that the
quality measures see both durations. Rows:

* cosine with the EER threshold of half A (the uncalibrated reference): the
  actual DCF of deciding at that threshold;
* plain calibration (score only) and QMF calibrations (score + log
  durations; + embedding norms): EER, minDCF(0.01), actDCF(0.01), Cllr and
  min Cllr of the LLRs.

Targets (issue 11): actDCF(0.01) within 10 % of minDCF(0.01) on the
held-out half, and Cllr < 1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from speechbrain_eres2net.dataio.audio import read_audio
from speechbrain_eres2net.dataio.files import write_text_atomic
from speechbrain_eres2net.evaluation.calibration import (
    act_dcf,
    cllr,
    fit_calibration,
    min_cllr,
)
from speechbrain_eres2net.evaluation.metrics import verification_metrics
from speechbrain_eres2net.evaluation.pipeline import trial_quality
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.settings import default

from .measure import REALSPK, REPO, cpu_capability, dev_speakers

P_TARGET = 0.01
CUT_SECONDS = 2.0


def train_default_model(work: Path) -> Path:
    """Trains the tiny quickstart model on realspk and exports its folder."""
    folder = work / "model"
    if (folder / "hyperparams.yaml").is_file():
        return folder
    command = [
        sys.executable,
        "-m",
        "speechbrain_eres2net.cli",
        "quickstart",
        "--data_folder",
        str(REALSPK),
        "--epochs",
        "20",
        "--output_folder",
        str(work),
    ]
    subprocess.run(command, check=True, cwd=REPO)
    return folder


def condition(embedder: SpeakerEmbedder, speakers, half, seconds) -> dict:
    """Everything one (half, duration) condition needs: every recording of
    the half's speakers, whole or cut to its first ``seconds``, and every
    pair of them as a trial."""
    names = sorted(u for s in half for u in speakers[s])
    embeddings, durations = {}, {}
    rate = embedder.sample_rate
    for rel in names:
        wav = read_audio(REALSPK / "wav" / rel, rate, embedder.min_samples)
        wav = wav if seconds is None else wav[: int(seconds * rate)]
        with torch.no_grad():
            embeddings[rel] = embedder.embed_batch([wav])[0].cpu().numpy()
        durations[rel] = wav.shape[0] / rate
    owner = {u: s for s in half for u in speakers[s]}
    pairs = list(itertools.combinations(range(len(names)), 2))
    left, right = (np.array(side) for side in zip(*pairs))
    labels = np.array([int(owner[names[a]] == owner[names[b]]) for a, b in pairs])
    unit = np.stack([embeddings[n] / np.linalg.norm(embeddings[n]) for n in names])
    scores = np.einsum("ij,ij->i", unit[left], unit[right])
    return {
        "names": names,
        "embeddings": embeddings,
        "durations": durations,
        "labels": labels,
        "left": left,
        "right": right,
        "scores": scores,
    }


def quality(kinds, cond, pairs=slice(None)):
    """The quality measures of a condition's trials, and their names."""
    return trial_quality(
        kinds,
        cond["names"],
        cond["left"][pairs],
        cond["right"][pairs],
        cond["embeddings"],
        cond["durations"],
    )


def run(model: Path, seed: int, prior: float) -> dict:
    """All rows, as a dict ready for JSON."""
    torch.set_num_threads(2)
    embedder = SpeakerEmbedder.from_folder(model, fast=False)
    speakers = dev_speakers()
    order = sorted(speakers)
    np.random.default_rng(seed).shuffle(order)
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
    fit_full = condition(embedder, speakers, half_a, None)
    fit_cut = condition(embedder, speakers, half_a, CUT_SECONDS)
    tests = {
        "held-out half, full length": condition(embedder, speakers, half_b, None),
        f"held-out half, both sides cut to {CUT_SECONDS:g} s": condition(
            embedder, speakers, half_b, CUT_SECONDS
        ),
    }
    eer_threshold = verification_metrics(fit_full["scores"], fit_full["labels"])[
        "eer_threshold"
    ]
    pooled_scores = np.concatenate([fit_full["scores"], fit_cut["scores"]])
    pooled_labels = np.concatenate([fit_full["labels"], fit_cut["labels"]])
    systems = {
        "plain": [],
        "QMF (duration)": ["duration"],
        "QMF (duration + norm)": ["duration", "norm"],
    }
    calibrations = {}
    for name, kinds in systems.items():
        measures, names = None, ()
        if kinds:
            measures = np.concatenate(
                [quality(kinds, fit_full)[0], quality(kinds, fit_cut)[0]]
            )
            names = quality(kinds, fit_full, slice(0, 1))[1]
        calibrations[name] = (
            kinds,
            fit_calibration(
                pooled_scores,
                pooled_labels,
                quality=measures,
                quality_names=names,
                p_target=prior,
            ),
        )
    rows = []
    for test_name, cond in tests.items():
        labels, scores = cond["labels"], cond["scores"]
        # Accepting cosine > threshold is the Bayes decision of the pseudo-LLR
        # below at p_target 0.01, so act_dcf measures that decision's cost.
        shifted = scores - eer_threshold + np.log((1 - P_TARGET) / P_TARGET)
        uncalibrated = "cosine, EER threshold of half A (uncalibrated)"
        decisions = [(uncalibrated, scores, shifted)]
        for name, (kinds, calibration) in calibrations.items():
            llrs = calibration.llr(scores, quality(kinds, cond)[0] if kinds else None)
            decisions.append((name, llrs, llrs))
        for system, values, llrs in decisions:
            metrics = verification_metrics(values, labels, (P_TARGET,))
            calibrated = system != uncalibrated
            rows.append(
                {
                    "condition": test_name,
                    "system": system,
                    "eer": metrics["eer"],
                    "min_dcf": metrics[f"min_dcf_{P_TARGET:g}"],
                    "act_dcf": act_dcf(llrs, labels, P_TARGET),
                    "cllr": cllr(llrs, labels) if calibrated else None,
                    "min_cllr": min_cllr(values, labels),
                    "n_trials": int(labels.size),
                    "n_target": int(labels.sum()),
                    "note": ""
                    if calibrated
                    else f"accept cosine > {eer_threshold:.4f}",
                }
            )
    for row in rows:
        row["act_over_min"] = row["act_dcf"] / max(row["min_dcf"], 1e-12)
    return {
        "model": str(model),
        "seed": seed,
        "calibration_prior": prior,
        "p_target": P_TARGET,
        "cpu_capability": cpu_capability(),
        "half_a": half_a,
        "half_b": half_b,
        "rows": rows,
    }


def markdown(result: dict) -> str:
    """The table of a result, as Markdown."""
    lines = [
        "| condition | system | trials | EER | minDCF(0.01) | actDCF(0.01) "
        "| act/min | Cllr | min Cllr |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        cllr_text = "-" if r["cllr"] is None else f"{r['cllr']:.3f}"
        lines.append(
            f"| {r['condition']} | {r['system']} | {r['n_trials']} "
            f"| {100 * r['eer']:.2f} % | {r['min_dcf']:.4f} | {r['act_dcf']:.4f} "
            f"| {r['act_over_min']:.2f} | {cllr_text} | {r['min_cllr']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibration")
    parser.add_argument("--model", help="model folder (default: train one)")
    parser.add_argument("--work", default="results/bench_calibration")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--prior",
        type=float,
        help="prior the fit is weighted for (default: calibration_prior of "
        "hparams/verification.yaml)",
    )
    parser.add_argument("--json", default="benchmarks/calibration_results.json")
    args = parser.parse_args(argv)
    if not (REALSPK / "dev_list.txt").is_file():
        print(f"skipped: {REALSPK} is absent", file=sys.stderr)
        return 0
    start = time.time()
    model = Path(args.model) if args.model else train_default_model(Path(args.work))
    prior = default("calibration_prior") if args.prior is None else args.prior
    result = run(model, args.seed, float(prior))
    result["command"] = "python -m benchmarks.calibration " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    result["seconds"] = round(time.time() - start, 1)
    write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
