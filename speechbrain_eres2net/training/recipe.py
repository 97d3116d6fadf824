"""Training pieces of the ERes2Net recipe for ``speechbrain.Brain``.

The official 3D-Speaker VoxCeleb recipe (``egs/voxceleb/sv-eres2net``) trains
on random 3 s crops, treats speed-perturbed audio as new speakers, corrupts
80 % of the crops with MUSAN noise and/or RIR reverberation, and schedules
both the learning rate (linear warm-up, then half-cosine) and the AAM margin
(0, then an exponential ramp) per iteration. This module holds those pieces
as small classes that a SpeechBrain YAML instantiates and SpeechBrain's
``Checkpointer`` saves, plus the ``SpeakerBrain`` that uses them.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import speechbrain as sb
from torch import nn

from ..augment.speed import num_classes
from .brain import SpeakerBrain
from .data import build_datasets, count_speakers, dataloader_options

logger = logging.getLogger(__name__)


def load_hparams(hparams_file: str, overrides: Any = None) -> dict:
    """Loads a training YAML with overrides (YAML string or dict)."""
    from hyperpyyaml import load_hyperpyyaml

    path = Path(hparams_file)
    if not path.is_file():
        raise FileNotFoundError(f"hyperparameter file {hparams_file} does not exist")
    with open(path, encoding="utf-8") as handle:
        return load_hyperpyyaml(handle, overrides or {})


def prepare_kwargs(hparams: dict) -> dict:
    """Arguments of ``prepare_voxceleb`` from a training YAML.

    ``split_ratio`` and ``seed`` are required keys: the YAML holds the
    recipe's values, and a default here could silently disagree with it.
    """
    return {
        "data_folders": hparams["data_folder"],
        "save_folder": hparams["csv_folder"],
        "verification_pairs_file": hparams.get("verification_file"),
        "split_ratio": tuple(hparams["split_ratio"]),
        "seed": hparams["seed"],
    }


def fit_classifier_size(hparams_file: str, overrides: Any, hparams: dict) -> dict:
    """Reloads the YAML so the classifier has one output per class.

    The official trainer sizes the classifier from the data (speakers x
    speeds). With ``auto_out_neurons: False`` (e.g. fine-tuning a trained
    classifier) the YAML value is kept, after checking it is large enough.
    """
    needed = num_classes(hparams, count_speakers(hparams["train_annotation"]))
    if not hparams.get("auto_out_neurons", True):
        if hparams["out_n_neurons"] < needed:
            raise ValueError(
                f"out_n_neurons={hparams['out_n_neurons']} but the training data "
                f"need {needed} classes (speakers x speeds)"
            )
        return hparams
    if hparams["out_n_neurons"] == needed:
        return hparams
    if isinstance(overrides, str):
        import yaml

        overrides = yaml.safe_load(overrides) if overrides.strip() else {}
    logger.info("Classifier sized from the data: out_n_neurons=%d", needed)
    return load_hparams(hparams_file, {**(overrides or {}), "out_n_neurons": needed})


def load_3dspeaker_into(model: nn.Module, path: str) -> None:
    """Copies an official 3D-Speaker checkpoint into ``model`` (same shape)."""
    from ..lobes.eres2net_3dspeaker import convert_state_dict, read_state_dict

    try:
        state = convert_state_dict(
            read_state_dict(path),
            model.state_dict(),
            getattr(model, "global_fusion", "bottom_up"),
        )
    except ValueError as err:
        raise ValueError(
            f"{path}: the 3D-Speaker weights do not fit embedding_model; set "
            f"m_channels/emb_dim/num_blocks to match them ({err})"
        ) from err
    model.load_state_dict(state, strict=True)


def load_pretrained(hparams: dict) -> None:
    """Initialises the model from ``pretrained_3dspeaker`` or ``pretrained_path``.

    ``pretrained_3dspeaker`` (an official checkpoint file) requires the
    Kaldi front end; ``pretrained_path`` is loaded by the YAML's
    ``pretrainer``. Checkpoints of this run, when present, are recovered
    later by ``fit`` and take precedence.
    """
    official = hparams.get("pretrained_3dspeaker")
    if official:
        if hparams.get("front_end") != "kaldi":
            raise ValueError(
                "pretrained_3dspeaker needs the official front end: "
                "set front_end: kaldi"
            )
        load_3dspeaker_into(hparams["embedding_model"], official)
        logger.info("Embedding model initialised from 3D-Speaker %s", official)
        return
    pretrainer = hparams.get("pretrainer")
    if pretrainer is None or not hparams.get("pretrained_path"):
        return
    sb.utils.distributed.run_on_main(pretrainer.collect_files)
    pretrainer.load_collected()
    logger.info("Initialised from %s", hparams["pretrained_path"])


def train(hparams: dict, run_opts: Optional[dict] = None):
    """Builds the datasets and the :class:`SpeakerBrain`, and trains.

    ``run_opts`` are SpeechBrain's (``--device``, ``--precision``,
    ``--noprogressbar``, ...). Returns the brain (its modules hold the
    trained model).
    """
    run_opts = dict(run_opts or {})
    progress = not run_opts.get("noprogressbar", False)
    train_data, valid_data, _ = build_datasets(hparams, progress=progress)
    load_pretrained(hparams)
    brain = SpeakerBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    options = dataloader_options(hparams)
    brain.fit(
        hparams["epoch_counter"],
        train_data,
        valid_data,
        train_loader_kwargs=options,
        valid_loader_kwargs={**options, "shuffle": False, "drop_last": False},
    )
    return brain
