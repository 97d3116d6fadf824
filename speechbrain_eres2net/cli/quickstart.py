"""One command: prepare -> train -> verify -> export, on a CPU, in minutes.

Without arguments it synthesises a small multi-speaker corpus
(:mod:`speechbrain_eres2net.dataio.synthetic`), trains a tiny ERes2Net with the
recipe of ``hparams/quickstart.yaml`` on the speakers outside the trial
list, scores the trial list with the untrained and the trained model, and
exports a model folder. ``--data-folder`` runs the same on any corpus in
the VoxCeleb layout (``wav/<spk>/<sess>/<utt>.wav``), e.g. realspk.

    eres2net quickstart
    eres2net quickstart --data-folder ../shared/data/realspk

Options are spelled with dashes, as in the other ``eres2net`` commands; the
underscore spellings of SpeechBrain's recipe scripts (``--data_folder``,
``--output_folder`` for ``--out``, ``--no_export``) are accepted too.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any, Optional

from ..dataio.files import write_text_atomic
from ..dataio.speaker_csv import read_speaker_csv
from ..dataio.speech_handling import SpeechHandling
from ..dataio.synthetic import make_corpus
from ..dataio.voxceleb_prepare import CSV_COLUMNS, prepare_voxceleb, write_csv_atomic
from ..evaluation.pipeline import evaluate_embedder
from ..export.recipe import export_hub
from ..inference.embedder import SpeakerEmbedder
from ..paths import hparams_file
from ..training import recipe
from .errors import USER_ERRORS, report
from .options import deprecated_alias, parse_overrides, yaml_default

logger = logging.getLogger(__name__)


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    """Command-line options of the quickstart."""
    parser = argparse.ArgumentParser(
        prog="eres2net quickstart",
        description="Prepare, train a tiny ERes2Net, verify and export, on CPU.",
    )
    parser.add_argument(
        "--data-folder",
        "--data_folder",
        help="corpus in the VoxCeleb layout (default: a synthetic corpus)",
    )
    parser.add_argument(
        "--trials",
        help="trial list (default: DATA_FOLDER/dev_trials.txt)",
    )
    parser.add_argument(
        "--out",
        "--output_folder",
        metavar="FOLDER",
        default="results/quickstart",
        help="where the corpus, CSVs, checkpoints, scores and the model folder "
        "go (default: results/quickstart)",
    )
    deprecated_alias(parser, "--output-folder", "--out", "out")
    parser.add_argument(
        "--hparams",
        help="training YAML (default: hparams/quickstart.yaml; "
        "hparams/quickstart_ecapa.yaml swaps in ECAPA-TDNN)",
    )
    parser.add_argument("--epochs", type=int, help="number_of_epochs override")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--no-export",
        "--no_export",
        action="store_true",
        help="skip exporting the trained model folder",
    )
    parser.add_argument(
        "--vad",
        choices=("trim", "check", "off"),
        help="speech handling of the training crops, the scoring and the exported "
        "folder (default: off on the "
        "built-in corpus, whose source-filter voices a VAD trained on real speech "
        "does not take for speech; " + yaml_default("vad") + " otherwise)",
    )
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
    rows = read_speaker_csv(csv_path)
    kept = [
        [key] + [row[c] for c in CSV_COLUMNS[1:]]
        for key, row in rows.items()
        if row["spk_id"] in speakers
    ]
    if not kept:
        raise ValueError(f"{csv_path}: no utterance of the train_list speakers")
    write_csv_atomic(out_path, kept)
    return str(out_path)


def score(
    hparams: dict,
    trials: Path,
    data_folder: Path,
    out: Path,
    device: str,
):
    """Evaluates the trial list with the modules of the training YAML, under
    the speech handling the training data pipeline applied."""
    embedder = SpeakerEmbedder(
        hparams["compute_features"],
        hparams["mean_var_norm"],
        hparams["embedding_model"],
        sample_rate=int(hparams["sample_rate"]),
        device=device,
        speech=SpeechHandling.resolve(hparams),
    )
    return evaluate_embedder(embedder, trials, data_folder, out, progress=True)


def run(args: argparse.Namespace) -> dict:
    """The quickstart; returns the summary (also written as summary.json)."""
    start = time.time()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.data_folder is None:
        print("[1/6] Synthesising the built-in multi-speaker corpus ...", flush=True)
        corpus = make_corpus(out / "corpus")
        data_folder, trials = Path(corpus["root"]), Path(corpus["trials"])
        dataset_name = "quickstart-synthetic"
        # Buzz through resonators: Silero VAD finds 0-55 % of it speech.
        vad = args.vad or "off"
    else:
        data_folder = Path(args.data_folder).resolve()
        dataset_name = data_folder.name
        if not data_folder.is_dir():
            raise FileNotFoundError(f"--data-folder {data_folder} is not a folder")
        trials = Path(args.trials) if args.trials else data_folder / "dev_trials.txt"
        if not trials.is_file():
            raise FileNotFoundError(
                f"trial list {trials} not found; pass --trials FILE"
            )
        print(f"[1/6] Corpus {data_folder}, trials {trials}", flush=True)
        vad = args.vad

    yaml_file = Path(args.hparams) if args.hparams else hparams_file("quickstart.yaml")
    overrides: dict[str, Any] = {
        "data_folder": str(data_folder),
        "output_folder": str(out),
        "verification_file": str(trials),
    }
    if args.epochs:
        overrides["number_of_epochs"] = args.epochs
    if vad:
        # Training crops, scoring and the exported folder alike.
        overrides["vad"] = vad
    overrides.update(parse_overrides(args.override))
    hparams = recipe.load_hparams(yaml_file, overrides)

    print("[2/6] Preparing CSVs ...", flush=True)
    csvs = prepare_voxceleb(**recipe.prepare_kwargs(hparams))
    speakers = train_speakers(data_folder)
    if speakers is not None:
        overrides["train_annotation"] = restrict_csv(
            csvs["train"], speakers, Path(hparams["csv_folder"]) / "train_list.csv"
        )
        hparams = recipe.load_hparams(yaml_file, overrides)
    hparams = recipe.fit_classifier_size(str(yaml_file), overrides, hparams)
    params = sum(p.numel() for p in hparams["embedding_model"].parameters())

    print("[3/6] Scoring the trials with the UNTRAINED model ...", flush=True)
    untrained = score(hparams, trials, data_folder, out / "untrained", args.device)

    print(f"[4/6] Training ({params / 1e6:.2f} M parameters) ...", flush=True)
    train_start = time.time()
    recipe.train(hparams, {"device": args.device})
    train_time = time.time() - train_start

    print("[5/6] Scoring the trials with the trained model ...", flush=True)
    trained = score(hparams, trials, data_folder, out / "verification", args.device)

    exported = None
    if not args.no_export:
        print("[6/6] Exporting a model folder (with its calibration) ...", flush=True)
        # The training overrides (classifier size included) rebuild exactly
        # the trained modules.
        exported = str(
            export_hub(
                yaml_file,
                hparams["save_folder"],
                out / "model",
                trials=trials,
                data_root=data_folder,
                overrides={**overrides, "out_n_neurons": hparams["out_n_neurons"]},
                # The corpus by name: a path of this machine must not be
                # published with the card.
                training_data=dataset_name,
                eval_dataset=dataset_name,
            )
        )
    summary = {
        "eer": trained["eer"],
        "min_dcf_0.01": trained["min_dcf_0.01"],
        "untrained_eer": untrained["eer"],
        "untrained_min_dcf_0.01": untrained["min_dcf_0.01"],
        "n_trials": trained["n_trials"],
        "trials_left_out": trained["trials_left_out"],
        "hparams": str(yaml_file),
        "parameters": params,
        "train_seconds": round(train_time, 1),
        "total_seconds": round(time.time() - start, 1),
        "cpu_capability": cpu_capability(),
        "data_folder": str(data_folder),
        "trials": str(trials),
        "output_folder": str(out),
        "model_folder": exported,
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    return summary


def cpu_capability() -> str:
    """What the CPU computes natively, as PyTorch reports it (e.g. AVX512)."""
    import torch

    return str(torch.backends.cpu.get_cpu_capability())


def print_summary(summary: dict) -> None:
    """The closing report of the quickstart."""

    def pct(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    def num(value: Optional[float]) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    left_out = ""
    if summary["trials_left_out"]:
        left_out = (
            f"; {summary['trials_left_out']} left out: a side with too little speech"
        )
    lines = [
        "",
        "=" * 64,
        f" Quickstart done in {summary['total_seconds']:.0f} s "
        f"(training {summary['train_seconds']:.0f} s)",
        f" Trials            : {summary['trials']} ({summary['n_trials']}{left_out})",
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
    except USER_ERRORS as err:
        return report("quickstart", err)
    return 0
