"""The verification recipe: the evaluation pipeline driven by its YAML.

``recipes/VoxCeleb/ERes2Net/speaker_verification.py`` runs
:func:`run_verification` on ``hparams/verification.yaml``. It sits with
training because it loads what training wrote (the training YAML, the
checkpoints of its ``save_folder``); scoring itself is
:func:`~speechbrain_eres2net.evaluation.pipeline.evaluate_embedder`, which
imports nothing from here.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Optional

from ..dataio.speech_handling import SPEECH_KEYS
from ..evaluation.calibration import Calibration
from ..evaluation.pipeline import evaluate_embedder
from ..inference.embedder import SpeakerEmbedder
from .checkpoints import load_checkpoint
from .recipe import load_hparams

logger = logging.getLogger(__name__)


def _embedder_from_hparams(hparams: Mapping, device: str) -> SpeakerEmbedder:
    """The embedder of the verification recipe's model source.

    ``pretrained_folder`` (a model folder), else the modules of
    ``train_hparams`` (the training YAML) or of ``hparams`` itself with the
    weights of the latest checkpoint in ``checkpoint_folder`` (default: the
    training YAML's ``save_folder``).
    """
    # The recipe's own values (its YAML and command line) reach the
    # detector; the packaged defaults only fill what it does not set.
    speech = {key: hparams.get(key) for key in (*SPEECH_KEYS, "window_seconds")}
    if hparams.get("pretrained_folder"):
        return SpeakerEmbedder.from_folder(
            hparams["pretrained_folder"], device=device, fast=False, **speech
        )
    source = hparams
    checkpoint_folder = hparams.get("checkpoint_folder")
    if hparams.get("train_hparams"):
        source = load_hparams(
            hparams["train_hparams"],
            {
                "data_folder": str(hparams["data_folder"]),
                **(hparams.get("train_overrides") or {}),
            },
        )
        checkpoint_folder = checkpoint_folder or source.get("save_folder")
    if not checkpoint_folder:
        raise ValueError(
            "set checkpoint_folder (a training save folder with CKPT+* folders), "
            "train_hparams (the training YAML) or pretrained_folder (a model folder)"
        )
    loaded = load_checkpoint(
        checkpoint_folder, source["embedding_model"], source.get("mean_var_norm")
    )
    logger.info("Loaded %s", loaded)
    return SpeakerEmbedder(
        source["compute_features"],
        source.get("mean_var_norm"),
        source["embedding_model"],
        sample_rate=int(source.get("sample_rate", 16000)),
        device=device,
        **speech,
    )


def run_verification(hparams: Mapping, device: Optional[str] = None) -> dict:
    """The verification recipe: :func:`evaluate_embedder` driven by its YAML.

    Arguments
    ---------
    hparams : mapping
        Loaded ``hparams/verification.yaml``: ``data_folder``,
        ``verification_file``, ``output_folder``; the model from
        ``pretrained_folder`` (a model folder), or from ``train_hparams``
        (the training YAML, whose ``save_folder`` holds the checkpoints
        unless ``checkpoint_folder`` is given), or from ``checkpoint_folder``
        with this YAML's own ``compute_features``, ``mean_var_norm`` and
        ``embedding_model``; ``cohort_csv``, ``cohort_utts_per_speaker``,
        ``top_k`` (AS-norm), ``calibration_file``, ``batch_size``,
        ``batch_seconds``, ``num_workers``, ``plots``, ``progress``, ``seed``.
    device : str, optional
        Overrides ``hparams["device"]``.

    Returns
    -------
    dict
        The results of
        :func:`~speechbrain_eres2net.evaluation.pipeline.evaluate_trials`.
    """
    device = device or hparams.get("device", "cpu")
    embedder = _embedder_from_hparams(hparams, device)
    calibration = None
    if hparams.get("calibration_file"):
        calibration = Calibration.load(hparams["calibration_file"])
    return evaluate_embedder(
        embedder,
        hparams["verification_file"],
        hparams["data_folder"],
        hparams["output_folder"],
        cohort_csv=hparams.get("cohort_csv"),
        cohort_utts_per_speaker=hparams.get("cohort_utts_per_speaker"),
        top_k=hparams.get("top_k"),
        calibration=calibration,
        batch_size=hparams.get("batch_size"),
        batch_seconds=hparams.get("batch_seconds"),
        num_workers=hparams.get("num_workers"),
        progress=bool(hparams.get("progress", True)),
        plots=bool(hparams.get("plots", True)),
        seed=hparams.get("seed"),
    )
