"""SpeechBrain model folders: writing and checking them.

A model folder holds ``hyperparams.yaml`` (an inference YAML that names our
classes as ``!new:speechbrain_eres2net...``), one checkpoint per loadable
module, ``label_encoder.txt`` when there is a classifier, and a ``README.md``
model card. ``SpeakerRecognition.from_hparams(source=<folder or user/repo>)``
loads it with no overrides: the pretrainer's paths are bare file names,
which :class:`FolderPretrainer` resolves against the source folder or Hub
repo, so the folder can be moved or uploaded unchanged.

Folders are written to a temporary sibling, checked by loading them back
through SpeechBrain (every tensor compared by name, because SpeechBrain's
pretrainer only warns on a mismatch), and renamed into place.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import torch
from hyperpyyaml import load_hyperpyyaml

from ..dataio.files import atomic_folder
from ..dataio.speech_handling import SpeechHandling
from ..evaluation.decisions import CALIBRATION_FILE
from ..evaluation.pipeline import (
    evaluate_trials,
    fit_trial_calibration,
    trial_embeddings,
)
from ..inference.checkpoint_guard import NORMALISER_STATS
from ..inference.embedder import SpeakerEmbedder
from ..inference.int8_store import INT8_CALIBRATION_FILE, write_int8_calibration
from ..paths import PathLike
from .card import ModelCard, check_no_local_path, model_card
from .yaml_nodes import MODULE_KEYS, dump_yaml

logger = logging.getLogger(__name__)

# Recipe checkpoint file -> model folder module (the recipe saves the
# feature normaliser as "normalizer", SpeechBrain's ECAPA convention).
RECIPE_CHECKPOINTS = {
    "embedding_model": "embedding_model",
    "classifier": "classifier",
    "normalizer": "mean_var_norm",
    "mean_var_norm_emb": "mean_var_norm_emb",
}


CHECKPOINT_FILES = {
    "mean_var_norm": "mean_var_norm.ckpt",
    "embedding_model": "embedding_model.ckpt",
    "mean_var_norm_emb": "mean_var_norm_emb.ckpt",
    "classifier": "classifier.ckpt",
    "label_encoder": "label_encoder.txt",
}


def inference_yaml(
    nodes: Mapping[str, Any],
    loadables: list[str],
    sample_rate: int,
    threshold: Optional[float],
    speech: Optional[SpeechHandling] = None,
) -> str:
    """The ``hyperparams.yaml`` text of a model folder.

    ``speech`` is recorded as plain entries (``vad``, ``vad_pad_seconds``,
    ...): the speech handling the model was trained and calibrated with,
    which :meth:`SpeakerEmbedder.from_recognizer` applies by default.
    """
    modules = [k for k in MODULE_KEYS if k in nodes]
    head = (
        "# Speaker-embedding model folder, written by speechbrain-eres2net.\n"
        "# Load it with speechbrain.inference.speaker.SpeakerRecognition.from_hparams\n"
        "# (source = this folder or its Hugging Face repo); needs\n"
        "# `pip install speechbrain-eres2net`.\n\n"
    )
    settings = {
        "sample_rate": sample_rate,
        # Cosine threshold at the equal error rate of the trial list in
        # README.md; null when no trials were scored at export.
        "verification_threshold": threshold,
    }
    if speech is not None:
        # The speech handling the model was trained and calibrated with;
        # eres2net commands apply it unless told otherwise.
        settings.update(speech.as_dict())
    body = dump_yaml(settings) + "\n" + dump_yaml({k: nodes[k] for k in modules})
    body += "\nmodules:\n" + "".join(f"    {k}: !ref <{k}>\n" for k in modules)
    if "label_encoder" in loadables:
        body += "\nlabel_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder\n"
    body += "\npretrainer: !new:speechbrain_eres2net.FolderPretrainer\n"
    body += "    loadables:\n"
    body += "".join(f"        {k}: !ref <{k}>\n" for k in loadables)
    body += "    paths:\n"
    body += "".join(f"        {k}: {CHECKPOINT_FILES[k]}\n" for k in loadables)
    return head + body


def _save_loadable(obj: Any, path: Path) -> None:
    """Saves an object with the hook SpeechBrain's pretrainer will load with."""
    from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook

    saver = get_default_hook(obj, DEFAULT_SAVE_HOOKS)
    if saver is None:
        raise TypeError(f"cannot save {type(obj).__name__} to {path}")
    saver(obj, path)


def write_model_folder(
    out: PathLike,
    nodes: Mapping[str, Any],
    states: Mapping[str, Any],
    card: ModelCard,
    sample_rate: int = 16000,
    trials: Optional[PathLike] = None,
    data_root: Optional[PathLike] = None,
    speech: Optional[SpeechHandling] = None,
    int8_calibration: Optional[Sequence[PathLike]] = None,
) -> Path:
    """Writes, checks and atomically publishes a model folder.

    Arguments
    ---------
    out : path
        Folder to create; an existing model folder there is replaced.
    nodes : mapping
        YAML nodes of the modules (keys of :data:`MODULE_KEYS`).
    states : mapping
        Module name -> loaded object whose state the folder must hold
        (``label_encoder`` -> a ``CategoricalEncoder``).
    card : ModelCard
        Model card content.
    sample_rate : int
        Audio rate the model expects.
    trials, data_root : path, optional
        A trial list (``<1|0> <enrol> <test>``) and the folder its paths are
        relative to: a score calibration is fitted on them and stored as
        ``calibration.json``, and the EER, minDCF, Cllr and the EER threshold
        are measured with the exported folder and stored in its card.
    speech : SpeechHandling, optional
        The speech handling the model was trained with (default: that of
        ``verification.yaml``): recorded in ``hyperparams.yaml``, and used
        to measure and calibrate on ``trials``.

    int8_calibration : sequence of path, optional
        Real speech (audio files, folders or lists): the features of
        ``int8_calibration_utterances`` of them are stored in the folder
        (:mod:`~speechbrain_eres2net.inference.int8_store`), so that
        ``--precision int8`` needs no audio.

    Returns
    -------
    Path
        The folder.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "hyperparams.yaml").exists():
        raise FileExistsError(
            f"{out} exists and is not a model folder; not replacing it"
        )
    if (trials is None) != (data_root is None):
        raise ValueError("--trials and --data-root go together")
    with atomic_folder(out) as tmp:
        loadables = [k for k in CHECKPOINT_FILES if k in states]
        for key in loadables:
            _save_loadable(states[key], tmp / CHECKPOINT_FILES[key])
        speech = speech or SpeechHandling.resolve()
        yaml_path = tmp / "hyperparams.yaml"
        yaml_path.write_text(
            inference_yaml(nodes, loadables, sample_rate, None, speech),
            encoding="utf-8",
        )
        loaded = check_model_folder(tmp, states)
        threshold = None
        embedder = SpeakerEmbedder.from_recognizer(loaded, fast=False)
        if int8_calibration:
            feats = embedder.calibration_features(int8_calibration)
            write_int8_calibration(tmp, feats)
            card.notes.append(
                f"`--precision int8` is calibrated on {len(feats)} utterances "
                f"stored in `{INT8_CALIBRATION_FILE}`: it needs no audio."
            )
        if trials is not None:
            embeddings, durations, refused = trial_embeddings(
                embedder, trials, data_root
            )
            calibration = None
            try:
                calibration = fit_trial_calibration(
                    embeddings, durations, trials, vad=embedder.vad, refused=refused
                )
            except ValueError as err:
                # Metrics and the EER threshold are still worth storing. The
                # message names the trial list by its path: the card by name.
                logger.warning("no calibration stored: %s", err)
                reason = str(err).replace(str(trials), Path(trials).name)
                card.notes.append(f"Not calibrated: {reason}")
            if calibration is not None:
                calibration.save(tmp / CALIBRATION_FILE)
                card.calibration = calibration.to_dict()
            with tempfile.TemporaryDirectory() as scratch:
                card.metrics = evaluate_trials(
                    embeddings,
                    trials,
                    scratch,
                    plots=False,
                    calibration=calibration,
                    durations=durations,
                    refused=refused,
                )
            card.metrics["trials"] = Path(trials).name
            # The card names the data, never the folder it lies in here.
            card.eval_dataset = card.eval_dataset or Path(data_root).resolve().name
            threshold = card.metrics["eer_threshold"]
            yaml_path.write_text(
                inference_yaml(nodes, loadables, sample_rate, threshold, speech),
                encoding="utf-8",
            )
        card.speech = speech.as_dict()
        text = model_card(
            card,
            nodes,
            states["embedding_model"],
            embedder.shape.embedding_size,
            sample_rate,
            threshold,
        )
        check_no_local_path(text, _local_paths(out, tmp, trials, data_root))
        (tmp / "README.md").write_text(text, encoding="utf-8")
    return out


def _local_paths(*paths: Optional[PathLike]) -> set[str]:
    """The folders of this machine a model card must not name: those given
    (a file stands for its folder), as given and resolved, and the working,
    home and temporary folders."""
    found = {str(Path.cwd()), str(Path.home()), tempfile.gettempdir()}
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        for form in (path.absolute(), path.resolve()):
            found.add(str(form if form.is_dir() else form.parent))
    return found


def check_model_folder(folder: PathLike, states: Mapping[str, Any]):
    """Loads a folder through SpeechBrain and compares every tensor by name.

    Raises ``RuntimeError`` naming the first module and tensor that is
    missing, extra or different.

    Returns
    -------
    speechbrain.inference.speaker.SpeakerRecognition
        The loaded folder, so that callers need not load it again.
    """
    from speechbrain.inference.speaker import SpeakerRecognition

    loaded = SpeakerRecognition.from_hparams(source=str(folder), savedir=None)
    for key, expected in states.items():
        if key == "label_encoder":
            got = loaded.hparams.label_encoder
            if got.lab2ind != expected.lab2ind:
                raise RuntimeError(f"{folder}: label encoder does not round-trip")
            continue
        module = getattr(loaded.mods, key, None)
        if module is None:
            raise RuntimeError(
                f"{folder}: module {key} is not built by hyperparams.yaml"
            )
        mismatch = state_mismatch(expected, module)
        if mismatch:
            raise RuntimeError(f"{folder}: {key} does not load exactly: {mismatch}")
    return loaded


def state_mismatch(expected: Any, got: Any) -> Optional[str]:
    """How two modules' saved states differ (keys, shapes, values), or None.

    ``InputNormalization`` keeps its statistics outside ``state_dict``;
    they are compared too.

    Example
    -------
    >>> a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    >>> state_mismatch(a, a) is None, state_mismatch(a, b)
    (True, 'tensor weight differs')
    """
    return dict_mismatch(_state(expected), _state(got))


def dict_mismatch(
    expected: Mapping[str, Any], got: Mapping[str, Any], compare_values: bool = True
) -> Optional[str]:
    """How two state dicts differ in keys, tensor shapes or values, or None."""
    if expected.keys() != got.keys():
        return (
            f"missing {sorted(expected.keys() - got.keys())[:5]}, "
            f"unexpected {sorted(got.keys() - expected.keys())[:5]}"
        )
    for name, value in expected.items():
        other = got[name]
        if isinstance(value, torch.Tensor):
            if value.shape != other.shape:
                shapes = f"{tuple(other.shape)}, expected {tuple(value.shape)}"
                return f"{name} has shape {shapes}"
            if compare_values and not torch.equal(value.cpu(), other.cpu()):
                return f"tensor {name} differs"
        elif compare_values and value != other:
            return f"{name} differs"
    return None


def _state(module: Any) -> dict:
    """``state_dict`` plus SpeechBrain's normaliser statistics.

    Example
    -------
    >>> from speechbrain.processing.features import InputNormalization
    >>> norm = InputNormalization(norm_type="global")
    >>> [k for k in _state(norm) if k.startswith("stats.")]
    ['stats.count', 'stats.glob_mean', 'stats.glob_std']
    >>> sorted(norm._statistics_dict()) == sorted(NORMALISER_STATS)  # its saver's
    True
    """
    from speechbrain.processing.features import InputNormalization

    state = dict(module.state_dict())
    # SpeechBrain 1.1's InputNormalization keeps its statistics outside
    # state_dict, in public attributes: the ones its own saver writes.
    if isinstance(module, InputNormalization):
        state.update({f"stats.{k}": getattr(module, k) for k in NORMALISER_STATS})
    return state


def _instantiate(nodes: Mapping[str, Any]) -> dict[str, Any]:
    """Builds the modules of ``nodes`` exactly as a model folder will."""
    modules = {k: nodes[k] for k in MODULE_KEYS if k in nodes}
    return load_hyperpyyaml(dump_yaml(modules))
