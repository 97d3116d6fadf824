"""A model folder from a recipe checkpoint: any SpeechBrain embedding lobe.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import torch

from ..dataio.speech_handling import SpeechHandling
from ..paths import PathLike
from ..training.checkpoints import latest_checkpoint
from .card import ModelCard, model_title
from .model_folder import (
    RECIPE_CHECKPOINTS,
    _instantiate,
    dict_mismatch,
    write_model_folder,
)
from .yaml_nodes import training_nodes


def export_hub(
    hparams_file: PathLike,
    checkpoint: PathLike,
    out: PathLike,
    trials: Optional[PathLike] = None,
    data_root: Optional[PathLike] = None,
    label_encoder: Optional[PathLike] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    training_data: Optional[str] = None,
    license: str = "apache-2.0",
    speech: Optional[SpeechHandling] = None,
    eval_dataset: Optional[str] = None,
    language: Sequence[str] = (),
    int8_calibration: Optional[Sequence[PathLike]] = None,
) -> Path:
    """Turns a recipe checkpoint into a model folder.

    Arguments
    ---------
    hparams_file : path
        The training YAML; its ``compute_features``, ``mean_var_norm``,
        ``embedding_model`` (and ``classifier``, ``mean_var_norm_emb``)
        nodes become the folder's modules, so it rebuilds the trained
        architecture exactly.
    checkpoint : path
        A ``CKPT+...`` folder, or the save folder holding them (the latest
        is used).
    out : path
        Model folder to write.
    trials, data_root : path, optional
        Trial list and its wav root, to measure EER/minDCF and the
        verification threshold.
    label_encoder : path, optional
        The recipe's ``label_encoder.txt``; default: next to the checkpoint.
    overrides : mapping, optional
        Values for the training YAML's ``!PLACEHOLDER`` entries or others.
    training_data : str, optional
        Name (or Hub id) of the data the model was trained on, for the model
        card's text and ``datasets``; never a local path (``ValueError``).
    license : str
        License of the weights: a Hub license identifier (``ValueError``
        otherwise, see :data:`~speechbrain_eres2net.export.card.HUB_LICENSES`).
    speech : SpeechHandling, optional
        The speech handling the model was trained with, recorded in the
        folder and used to calibrate on ``trials`` (default: the speech
        entries of the training YAML and ``overrides``, else the packaged
        defaults, as the recipe's data pipeline resolves them).
    eval_dataset : str, optional
        Name of the data ``trials`` comes from, for the card's results
        (default: the name of the ``data_root`` folder).
    language : sequence of str
        Language codes of the training speech for the card (default: none
        stated).
    int8_calibration : sequence of path, optional
        Real speech whose features the folder stores for ``--precision
        int8`` (:func:`~.model_folder.write_model_folder`).
    """
    # The card first: a bad license or a path for a name fails before any
    # checkpoint is read.
    card = ModelCard(
        title="",
        training_data=training_data or "",
        datasets=[training_data] if training_data else [],
        eval_dataset=eval_dataset or "",
        language=list(language),
        license=license,
    )
    nodes = training_nodes(hparams_file, overrides)
    sample_rate = nodes.pop("sample_rate")
    trained_with = SpeechHandling.resolve(nodes.pop("speech"))
    speech = speech or trained_with
    ckpt = latest_checkpoint(checkpoint)
    _fit_classifier_size(nodes, ckpt / "classifier.ckpt")
    states = _instantiate(nodes)
    for filename, key in RECIPE_CHECKPOINTS.items():
        path = ckpt / f"{filename}.ckpt"
        if key not in states:
            continue
        if path.is_file():
            _load_recipe_state(states[key], path, key)
        elif key in ("embedding_model", "classifier"):
            raise FileNotFoundError(f"{ckpt} has no {filename}.ckpt")
        elif _statistics_needed(states[key]):
            raise FileNotFoundError(
                f"{ckpt} has no {filename}.ckpt, but {key} uses global statistics"
            )
        else:
            del states[key]  # sentence-level normalisation: nothing to store
    if "classifier" in states:
        states["label_encoder"] = _label_encoder(label_encoder, ckpt)
    card.title = model_title(states["embedding_model"], Path(hparams_file).stem)
    card.source = (
        "Trained with the speechbrain-eres2net recipe "
        f"`{Path(hparams_file).name}` (checkpoint `{ckpt.name}`).\n"
    )
    return write_model_folder(
        out,
        nodes,
        states,
        card,
        sample_rate,
        trials,
        data_root,
        speech,
        int8_calibration=int8_calibration,
    )


def _fit_classifier_size(nodes: dict, path: Path) -> None:
    """Sets the classifier's ``out_neurons`` to what the checkpoint holds.

    The recipe sets the number of classes from the data (speakers x
    speeds) at run time, so the YAML value is only a default.
    """
    node = nodes.get("classifier")
    if node is None or "out_neurons" not in node or not path.is_file():
        return
    weight = torch.load(path, map_location="cpu", weights_only=True).get("weight")
    if weight is not None:
        node["out_neurons"] = int(weight.shape[0])


def _statistics_needed(module: Any) -> bool:
    """Whether a normaliser carries learned statistics (global/batch norm)."""
    return getattr(module, "norm_type", "sentence") == "global"


def _load_recipe_state(module: Any, path: Path, key: str) -> None:
    """Loads a recipe checkpoint file strictly (SpeechBrain's pretrainer would not).

    A module that registers its own SpeechBrain loader (``InputNormalization``
    keeps its statistics outside ``state_dict``) is loaded by that loader,
    as SpeechBrain's ``Checkpointer`` would.
    """
    from speechbrain.utils.checkpoints import (
        DEFAULT_LOAD_HOOKS,
        get_default_hook,
        torch_recovery,
    )

    loader = get_default_hook(module, DEFAULT_LOAD_HOOKS)
    if loader is not None and loader is not torch_recovery:
        loader(module, path, False)
        return
    state = torch.load(path, map_location="cpu", weights_only=True)
    problem = dict_mismatch(module.state_dict(), state, compare_values=False)
    if problem:
        raise ValueError(
            f"{path} does not fit the {key} of the training YAML: {problem}"
        )
    module.load_state_dict(state, strict=True)
    module.eval()


def _label_encoder(path: Optional[PathLike], ckpt: Path):
    """The recipe's label encoder (``label_encoder.txt`` of the save folder)."""
    from speechbrain.dataio.encoder import CategoricalEncoder

    candidates = (
        [Path(path)]
        if path
        else [
            ckpt.parent / "label_encoder.txt",
            ckpt / "label_encoder.txt",
            ckpt.parent.parent / "label_encoder.txt",
        ]
    )
    for candidate in candidates:
        if candidate.is_file():
            encoder = CategoricalEncoder()
            encoder.load(candidate)
            return encoder
    raise FileNotFoundError(
        "label encoder not found (looked for "
        + ", ".join(str(c) for c in candidates)
        + "); pass --label-encoder"
    )
