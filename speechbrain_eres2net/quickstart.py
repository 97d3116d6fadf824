"""One command: prepare -> train -> verify -> export, on a CPU, in minutes.

Without arguments it synthesises a small multi-speaker corpus
(:mod:`speechbrain_eres2net.synthetic`), trains a tiny ERes2Net with the
recipe of ``hparams/quickstart.yaml`` on the speakers outside the trial
list, scores the trial list with the untrained and the trained model, and
exports a model folder. ``--data_folder`` runs the same on any corpus in
the VoxCeleb layout (``wav/<spk>/<sess>/<utt>.wav``), e.g. realspk.

    eres2net quickstart
    eres2net quickstart --data_folder ../shared/data/realspk

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any, Optional

from . import training
from .dataprep import prepare_voxceleb, write_csv_atomic
from .synthetic import make_corpus
from .verification import embed_utterances, evaluate_trials, trial_utterances

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
# hparams/ sits at the repository top level; an installed package carries a copy.
YAML_CANDIDATES = (
    PACKAGE_DIR.parent / "hparams" / "quickstart.yaml",
    PACKAGE_DIR / "hparams" / "quickstart.yaml",
)


def quickstart_yaml() -> Path:
    """Path of ``hparams/quickstart.yaml``."""
    for path in YAML_CANDIDATES:
        if path.is_file():
            return path
    raise FileNotFoundError(
        "hparams/quickstart.yaml not found (looked in "
        + ", ".join(str(p) for p in YAML_CANDIDATES)
        + "); pass --hparams"
    )


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    """Command-line options of the quickstart."""
    parser = argparse.ArgumentParser(
        prog="eres2net quickstart",
        description="Prepare, train a tiny ERes2Net, verify and export, on CPU.",
    )
    parser.add_argument(
        "--data_folder",
        help="corpus in the VoxCeleb layout (default: a synthetic corpus)",
    )
    parser.add_argument(
        "--trials",
        help="trial list (default: DATA_FOLDER/dev_trials.txt)",
    )
    parser.add_argument("--output_folder", default="results/quickstart")
    parser.add_argument(
        "--hparams",
        help="training YAML (default: hparams/quickstart.yaml; "
        "hparams/quickstart_ecapa.yaml swaps in ECAPA-TDNN)",
    )
    parser.add_argument("--epochs", type=int, help="number_of_epochs override")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no_export", action="store_true")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any YAML key, e.g. --override m_channels=16 (repeatable)",
    )
    return parser.parse_args(argv)


def train_speakers(data_folder: Path) -> Optional[set[str]]:
    """Speakers of ``train_list.txt`` when the corpus has one."""
    path = data_folder / "train_list.txt"
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        return {line.split()[0] for line in handle if line.strip()}


def restrict_csv(csv_path: str, speakers: set[str], out_path: Path) -> str:
    """Writes the rows of ``csv_path`` whose speaker is in ``speakers``."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    kept = [row for row in rows[1:] if row[-1] in speakers]
    if not kept:
        raise ValueError(f"{csv_path}: no utterance of the train_list speakers")
    write_csv_atomic(out_path, kept)
    return str(out_path)


def score(hparams: dict, utterances: dict, trials: Path, out: Path, device: str):
    """Embeds the trial utterances and evaluates the trial list."""
    embeddings = embed_utterances(
        hparams["compute_features"],
        hparams["mean_var_norm"],
        hparams["embedding_model"],
        utterances,
        batch_size=16,
        device=device,
        progress=True,
    )
    return evaluate_trials(embeddings, trials, out, plots=True)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict (values parsed as YAML)."""
    import yaml

    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--override expects KEY=VALUE, got {pair!r}")
        result[key] = yaml.safe_load(value)
    return result


def run(args: argparse.Namespace) -> dict:
    """The quickstart; returns the summary (also written as summary.json)."""
    start = time.time()
    out = Path(args.output_folder).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.data_folder is None:
        print("[1/5] Synthesising the built-in multi-speaker corpus ...", flush=True)
        corpus = make_corpus(out / "corpus")
        data_folder, trials = Path(corpus["root"]), Path(corpus["trials"])
    else:
        data_folder = Path(args.data_folder).resolve()
        if not data_folder.is_dir():
            raise FileNotFoundError(f"--data_folder {data_folder} is not a folder")
        trials = Path(args.trials) if args.trials else data_folder / "dev_trials.txt"
        if not trials.is_file():
            raise FileNotFoundError(
                f"trial list {trials} not found; pass --trials FILE"
            )
        print(f"[1/5] Corpus {data_folder}, trials {trials}", flush=True)

    hparams_file = Path(args.hparams) if args.hparams else quickstart_yaml()
    overrides: dict[str, Any] = {
        "data_folder": str(data_folder),
        "output_folder": str(out),
        "verification_file": str(trials),
    }
    if args.epochs:
        overrides["number_of_epochs"] = args.epochs
    overrides.update(parse_overrides(args.override))
    hparams = training.load_hparams(hparams_file, overrides)

    print("[2/5] Preparing CSVs ...", flush=True)
    csvs = prepare_voxceleb(**training.prepare_kwargs(hparams))
    speakers = train_speakers(data_folder)
    if speakers is not None:
        overrides["train_annotation"] = restrict_csv(
            csvs["train"], speakers, Path(hparams["csv_folder"]) / "train_list.csv"
        )
        hparams = training.load_hparams(hparams_file, overrides)
    hparams = training.fit_classifier_size(str(hparams_file), overrides, hparams)
    utterances = trial_utterances(trials, data_folder)
    params = sum(p.numel() for p in hparams["embedding_model"].parameters())

    print("[3/5] Scoring the trials with the UNTRAINED model ...", flush=True)
    untrained = score(hparams, utterances, trials, out / "untrained", args.device)

    print(f"[4/5] Training ({params / 1e6:.2f} M parameters) ...", flush=True)
    train_start = time.time()
    training.train(hparams, {"device": args.device})
    train_time = time.time() - train_start

    print("[5/5] Scoring the trials with the trained model ...", flush=True)
    trained = score(hparams, utterances, trials, out / "verification", args.device)

    exported = export_model(args, hparams_file, overrides, hparams, out)
    summary = {
        "eer": trained["eer"],
        "min_dcf_0.01": trained.get("min_dcf_0.01"),
        "untrained_eer": untrained["eer"],
        "untrained_min_dcf_0.01": untrained.get("min_dcf_0.01"),
        "n_trials": trained.get("n_trials"),
        "hparams": str(hparams_file),
        "parameters": params,
        "train_seconds": round(train_time, 1),
        "total_seconds": round(time.time() - start, 1),
        "data_folder": str(data_folder),
        "trials": str(trials),
        "output_folder": str(out),
        "model_folder": exported,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(summary)
    return summary


def export_model(
    args: argparse.Namespace,
    hparams_file: Path,
    overrides: dict,
    hparams: dict,
    out: Path,
) -> Optional[str]:
    """Exports a model folder with :mod:`speechbrain_eres2net.hub` if present."""
    if args.no_export:
        return None
    try:
        from .hub import export_hub
    except ImportError as err:
        print(f"      (model folder export skipped: {err})")
        return None
    try:
        folder = export_hub(
            hparams_file,
            hparams["save_folder"],
            out / "model",
            overrides={**overrides, "out_n_neurons": hparams["out_n_neurons"]},
            training_data=f"quickstart on {overrides['data_folder']}",
        )
    except (OSError, ValueError, RuntimeError) as err:
        # The trained checkpoint and the scores are already written.
        print(f"      (model folder export failed: {err})")
        return None
    return str(folder)


def print_summary(summary: dict) -> None:
    """The closing report of the quickstart."""

    def pct(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    def num(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = [
        "",
        "=" * 64,
        f" Quickstart done in {summary['total_seconds']:.0f} s "
        f"(training {summary['train_seconds']:.0f} s)",
        f" Trials            : {summary['trials']} ({summary['n_trials']})",
        f" EER               : {pct(summary['eer'])}"
        f"   (untrained model: {pct(summary['untrained_eer'])})",
        f" minDCF (p=0.01)   : {num(summary['min_dcf_0.01'])}"
        f"   (untrained model: {num(summary['untrained_min_dcf_0.01'])})",
        f" Results           : {summary['output_folder']}/verification",
        f" Checkpoints       : {summary['output_folder']}/save",
    ]
    if summary["model_folder"]:
        lines.append(f" Model folder      : {summary['model_folder']}")
    lines.append("=" * 64)
    print("\n".join(lines), flush=True)


def quiet_logging() -> None:
    """Shows warnings and the per-epoch training summary, not SpeechBrain's INFO."""
    handler = logging.StreamHandler()
    handler.addFilter(
        lambda record: (
            record.levelno >= logging.WARNING
            or record.name == "speechbrain.utils.train_logger"
        )
    )
    handler.setFormatter(logging.Formatter("      %(message)s"))
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.INFO)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``eres2net quickstart``; returns the exit status."""
    args = parse_args(argv)
    quiet_logging()
    try:
        run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"eres2net quickstart: error: {err}")
        return 1
    return 0


__all__ = ["main", "run"]


if __name__ == "__main__":
    raise SystemExit(main())
