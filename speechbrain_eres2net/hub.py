"""SpeechBrain model folders: recipe export, 3D-Speaker import, Hub upload.

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

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import torch
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tag import Tag
from speechbrain.utils.fetching import FetchSource
from speechbrain.utils.parameter_transfer import Pretrainer

from .files import atomic_folder

PathLike = Union[str, os.PathLike]

# Modules a model folder may carry, in YAML order; the first three are needed.
FRONT_END = ("compute_features", "mean_var_norm")
MODULE_KEYS = (*FRONT_END, "embedding_model", "mean_var_norm_emb", "classifier")
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


class FolderPretrainer(Pretrainer):
    """A ``Pretrainer`` whose bare file names are files of the model folder.

    SpeechBrain reads a path without a ``/`` as relative to the current
    directory; here it is joined to the ``source`` given to
    ``from_hparams`` (a local folder or a Hub repo), so a model folder
    needs no absolute paths and no overrides.

    Example
    -------
    >>> import torch
    >>> pretrainer = FolderPretrainer(
    ...     loadables={"model": torch.nn.Linear(2, 2)},
    ...     paths={"model": "model.ckpt"},
    ... )
    >>> pretrainer._folder_paths("user/repo")["model"]
    'user/repo/model.ckpt'
    """

    def _folder_paths(self, source: Union[str, FetchSource]) -> dict:
        """``self.paths`` with bare file names joined to ``source``."""
        joined = dict(self.paths)
        for name, path in self.paths.items():
            if isinstance(path, str) and "/" not in path:
                if isinstance(source, FetchSource):
                    joined[name] = FetchSource(
                        source.FetchFrom, f"{str(source.path).rstrip('/')}/{path}"
                    )
                else:
                    joined[name] = f"{str(source).rstrip('/')}/{path}"
        return joined

    def collect_files(self, default_source=None, **kwargs):  # noqa: D102
        if default_source is not None:
            self.paths = self._folder_paths(default_source)
        return super().collect_files(default_source=default_source, **kwargs)


def new_node(target: str, **kwargs: Any) -> CommentedMap:
    """A YAML ``!new:<target>`` node with keyword arguments.

    Example
    -------
    >>> print(dump_yaml({"norm": new_node("torch.nn.Identity")}), end="")
    norm: !new:torch.nn.Identity {}
    """
    node = CommentedMap()
    for key, value in kwargs.items():
        if isinstance(value, (list, tuple)):
            value = CommentedSeq(value)
            value.fa.set_flow_style()  # [1, 2] on one line, as people write it
        node[key] = value
    node.yaml_set_ctag(Tag(suffix=f"!new:{target}"))
    return node


def dump_yaml(data: Mapping) -> str:
    """YAML text of plain data and tagged nodes, in block style."""
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 100
    out = io.StringIO()
    yaml.dump(dict(data), out)
    return out.getvalue()


def training_nodes(
    hparams_file: PathLike, overrides: Optional[Mapping[str, Any]] = None
) -> dict[str, Any]:
    """Module nodes of a training YAML, with every ``!ref`` resolved.

    Nothing is instantiated (a training YAML builds data pipelines and
    needs data paths); ``!PLACEHOLDER`` values are filled with dummies
    unless ``overrides`` gives them.

    Returns
    -------
    dict
        YAML nodes for the keys of :data:`MODULE_KEYS` present, plus
        ``sample_rate`` (16000 when absent).
    """
    path = Path(hparams_file)
    if not path.is_file():
        raise FileNotFoundError(f"training hparams file not found: {path}")
    text = path.read_text(encoding="utf-8")
    yaml = YAML()
    raw = yaml.load(text)
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path} is not a YAML mapping")
    fill = {
        key: f"<{key}>"
        for key, value in raw.items()
        if getattr(getattr(value, "tag", None), "value", None) == "!PLACEHOLDER"
    }
    fill.update(overrides or {})
    resolved = yaml.load(resolve_references(io.StringIO(text), fill).getvalue())
    for key in ("compute_features", "mean_var_norm", "embedding_model"):
        if key not in resolved:
            raise ValueError(f"{path} has no '{key}' entry; a training YAML needs one")
    nodes = {key: _plain(resolved[key]) for key in MODULE_KEYS if key in resolved}
    nodes["sample_rate"] = int(resolved.get("sample_rate", 16000))
    return nodes


def _plain(node: Any) -> Any:
    """A copy of a YAML node without the comments and blank lines around it."""
    if isinstance(node, Mapping):
        copy = CommentedMap((k, _plain(v)) for k, v in node.items())
        tag = getattr(getattr(node, "tag", None), "value", None)
        if tag:
            copy.yaml_set_ctag(Tag(suffix=tag))
        return copy
    if isinstance(node, list):
        copy = CommentedSeq(_plain(v) for v in node)
        if getattr(node, "fa", None) is not None and node.fa.flow_style():
            copy.fa.set_flow_style()
        return copy
    return node


def latest_checkpoint(checkpoint: PathLike) -> Path:
    """A SpeechBrain ``CKPT+...`` folder, or the latest one inside a save folder.

    "Latest" follows the ``unixtime`` SpeechBrain writes in ``CKPT.yaml``.
    """
    path = Path(checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {path}")
    if (path / "CKPT.yaml").is_file() or (path / "embedding_model.ckpt").is_file():
        return path
    candidates = [p for p in path.glob("CKPT+*") if (p / "CKPT.yaml").is_file()]
    if not candidates:
        raise FileNotFoundError(
            f"{path} holds no SpeechBrain checkpoint (no CKPT+*/CKPT.yaml)"
        )

    def unixtime(ckpt: Path) -> float:
        meta = YAML(typ="safe").load((ckpt / "CKPT.yaml").read_text()) or {}
        return float(meta.get("unixtime", ckpt.stat().st_mtime))

    return max(candidates, key=unixtime)


@dataclass
class ModelCard:
    """What the model card says beyond what the folder itself holds."""

    title: str = "ERes2Net speaker embeddings"
    training_data: str = "not stated"
    source: str = ""
    license: str = "apache-2.0"
    metrics: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def inference_yaml(
    nodes: Mapping[str, Any],
    loadables: list[str],
    sample_rate: int,
    threshold: Optional[float],
) -> str:
    """The ``hyperparams.yaml`` text of a model folder."""
    modules = [k for k in MODULE_KEYS if k in nodes]
    head = (
        "# ERes2Net speaker-embedding model folder, written by speechbrain-eres2net.\n"
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
    body = dump_yaml(settings) + "\n" + dump_yaml({k: nodes[k] for k in modules})
    body += "\nmodules:\n" + "".join(f"    {k}: !ref <{k}>\n" for k in modules)
    if "label_encoder" in loadables:
        body += "\nlabel_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder\n"
    body += "\npretrainer: !new:speechbrain_eres2net.hub.FolderPretrainer\n"
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
        relative to: the EER, minDCF and the EER threshold are measured on
        them with the exported folder and stored.

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
        yaml_path = tmp / "hyperparams.yaml"
        yaml_path.write_text(
            inference_yaml(nodes, loadables, sample_rate, None), encoding="utf-8"
        )
        check_model_folder(tmp, states)
        threshold = None
        if trials is not None:
            from .inference import SpeakerEmbedder, evaluate_embedder

            embedder = SpeakerEmbedder.from_folder(tmp, fast=False)
            card.metrics = evaluate_embedder(embedder, trials, data_root)
            threshold = card.metrics["eer_threshold"]
            yaml_path.write_text(
                inference_yaml(nodes, loadables, sample_rate, threshold),
                encoding="utf-8",
            )
        model = states["embedding_model"]
        (tmp / "README.md").write_text(
            model_card(card, nodes, model, sample_rate, threshold), encoding="utf-8"
        )
    return out


def check_model_folder(folder: PathLike, states: Mapping[str, Any]) -> None:
    """Loads a folder through SpeechBrain and compares every tensor by name.

    Raises ``RuntimeError`` naming the first module and tensor that is
    missing, extra or different.
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
    """``state_dict`` plus SpeechBrain's normaliser statistics."""
    state = dict(module.state_dict())
    if hasattr(module, "_statistics_dict"):
        state.update({f"stats.{k}": v for k, v in module._statistics_dict().items()})
    return state


def model_card(
    card: ModelCard,
    nodes: Mapping[str, Any],
    model: torch.nn.Module,
    sample_rate: int,
    threshold: Optional[float],
) -> str:
    """The README.md model card of a folder."""
    params = sum(p.numel() for p in model.parameters())
    arch = dump_yaml({"embedding_model": nodes["embedding_model"]}).strip()
    front = dump_yaml({k: nodes[k] for k in FRONT_END}).strip()
    metrics = card.metrics
    if metrics:
        result = (
            "| trial list | trials | EER | minDCF (p=0.01) | minDCF (p=0.05) "
            "| EER threshold |\n"
            f"|---|---|---|---|---|---|\n"
            f"| `{metrics['trials']}` | {metrics['n_trials']} | "
            f"{100 * metrics['eer']:.2f} % | {metrics['min_dcf_0.01']:.4f} | "
            f"{metrics['min_dcf_0.05']:.4f} | {metrics['eer_threshold']:.4f} |\n"
        )
    else:
        result = "Not measured when this folder was written (no trial list given).\n"
    decision = (
        f"`verification_threshold: {threshold:.4f}` in `hyperparams.yaml` is the "
        "cosine score at the equal error rate of the trial list above; "
        "`eres2net verify` uses it."
        if threshold is not None
        else "No verification threshold is stored; pass `--threshold` to "
        "`eres2net verify`, or re-export with `--trials` to measure one."
    )
    notes = "".join(f"- {note}\n" for note in card.notes)
    return f"""---
license: {card.license}
library_name: speechbrain
tags:
- speaker-verification
- speaker-recognition
- eres2net
- speechbrain
---

# {card.title}

ERes2Net (Chen et al., "An Enhanced Res2Net with Local and Global Feature
Fusion for Speaker Verification", Interspeech 2023) speaker-embedding model
for SpeechBrain, packaged by
[speechbrain-eres2net](https://pypi.org/project/speechbrain-eres2net/).
{card.source}
## Model

- Parameters (embedding model): {params:,} ({params / 1e6:.2f} M)
- Input: {sample_rate} Hz mono audio
- Output: {model.embedding.out_features}-dimensional embeddings, scored by cosine

```yaml
{front}
{arch}
```

{notes}
## Training data

{card.training_data}

## Results

{result}
{decision}

## Usage

```bash
pip install speechbrain-eres2net
```

```python
from speechbrain.inference.speaker import SpeakerRecognition

verifier = SpeakerRecognition.from_hparams(source="<this folder or user/repo>")
score, _ = verifier.verify_files("a.wav", "b.wav")  # its decision uses 0.25
same = score > verifier.hparams.verification_threshold  # this model's threshold
embeddings = verifier.encode_batch(wavs, wav_lens)  # (batch, 1, dim)
```

```bash
eres2net verify --model <this folder> a.wav b.wav
eres2net embed --model <this folder> wavs/ --out embeddings.npz
eres2net export-onnx --model <this folder> --out eres2net.onnx
```

## License

{card.license}
"""


def _instantiate(nodes: Mapping[str, Any]) -> dict[str, Any]:
    """Builds the modules of ``nodes`` exactly as a model folder will."""
    modules = {k: nodes[k] for k in MODULE_KEYS if k in nodes}
    return load_hyperpyyaml(dump_yaml(modules))


def export_hub(
    hparams_file: PathLike,
    checkpoint: PathLike,
    out: PathLike,
    trials: Optional[PathLike] = None,
    data_root: Optional[PathLike] = None,
    label_encoder: Optional[PathLike] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    training_data: str = "not stated",
    license: str = "apache-2.0",
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
    training_data : str
        What the model was trained on, for the model card.
    license : str
        License of the weights, for the model card.
    """
    nodes = training_nodes(hparams_file, overrides)
    sample_rate = nodes.pop("sample_rate")
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
    card = ModelCard(
        title=f"ERes2Net speaker embeddings ({Path(hparams_file).stem})",
        training_data=training_data,
        source="Trained with the speechbrain-eres2net recipe "
        f"`{Path(hparams_file).name}` (checkpoint `{ckpt.name}`).\n",
        license=license,
    )
    return write_model_folder(out, nodes, states, card, sample_rate, trials, data_root)


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
    """Loads a recipe checkpoint file strictly (SpeechBrain's pretrainer would not)."""
    if hasattr(module, "_load_statistics_dict"):
        module._load_statistics_dict(torch.load(path, map_location="cpu"))
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


def kaldi_front_end_nodes(sample_rate: int = 16000) -> dict[str, CommentedMap]:
    """Front end of official 3D-Speaker weights, in SpeechBrain's two steps.

    ``encode_batch`` calls ``compute_features(wavs)`` without lengths and
    then ``mean_var_norm(feats, wav_lens)``: the Kaldi fbank is computed
    without its mean removal and the per-utterance mean over the valid
    frames is removed by the length-aware sentence normaliser, so padded
    batches keep per-utterance statistics.
    """
    return {
        "compute_features": new_node(
            "speechbrain_eres2net.KaldiFbank",
            n_mels=80,
            sample_rate=sample_rate,
            mean_norm=False,
        ),
        "mean_var_norm": new_node(
            "speechbrain.processing.features.InputNormalization",
            norm_type="sentence",
            std_norm=False,
        ),
    }


def import_3dspeaker(
    checkpoint: PathLike,
    out: PathLike,
    trials: Optional[PathLike] = None,
    data_root: Optional[PathLike] = None,
    training_data: str = "See the 3D-Speaker / ModelScope page of this checkpoint.",
    license: str = "apache-2.0",
) -> Path:
    """Turns an official 3D-Speaker ERes2Net checkpoint into a model folder.

    The variant (base, large, ERes2NetV2, huge, any width or embedding size)
    is read off the tensor shapes by
    :func:`speechbrain_eres2net.checkpoints.load_3dspeaker`; the folder uses
    the Kaldi fbank front end with per-utterance mean normalisation that
    the official models were trained with.
    """
    from .checkpoints import infer_config, load_3dspeaker, read_state_dict

    state_dict = read_state_dict(checkpoint)
    config = infer_config(state_dict)
    model = load_3dspeaker(state_dict)
    nodes = {
        **kaldi_front_end_nodes(),
        "embedding_model": new_node("speechbrain_eres2net.ERes2Net", **config),
    }
    card = ModelCard(
        title=f"ERes2Net speaker embeddings (3D-Speaker `{Path(checkpoint).name}`)",
        training_data=training_data,
        source=(
            f"Weights converted from the official 3D-Speaker checkpoint "
            f"`{Path(checkpoint).name}` (https://github.com/modelscope/3D-Speaker); "
            "embeddings equal the official model's on the official front end.\n"
        ),
        license=license,
        notes=["No classifier head: 3D-Speaker does not release it."],
    )
    return write_model_folder(
        out, nodes, {"embedding_model": model}, card, 16000, trials, data_root
    )


def push_to_hub(
    folder: PathLike,
    repo_id: str,
    token: Optional[str] = None,
    private: bool = False,
    commit_message: str = "Upload ERes2Net model folder",
):
    """Uploads a model folder to the Hugging Face Hub (creating the repo).

    After this, ``from_hparams(source=repo_id)`` loads it.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "hyperparams.yaml").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no hyperparams.yaml)")
    api = HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="model",
        commit_message=commit_message,
    )
