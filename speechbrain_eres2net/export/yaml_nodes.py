"""YAML nodes of SpeechBrain modules: reading them from a training YAML, writing them.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from hyperpyyaml import resolve_references
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tag import Tag

from ..dataio.speech_handling import SPEECH_KEYS
from ..paths import PathLike

# Modules a model folder may carry, in YAML order; the first three are needed.
FRONT_END = ("compute_features", "mean_var_norm")


MODULE_KEYS = (*FRONT_END, "embedding_model", "mean_var_norm_emb", "classifier")


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
        ``sample_rate`` (16000 when absent) and ``speech``: the speech
        settings the YAML sets (:data:`SPEECH_KEYS`).
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
    nodes["speech"] = {k: resolved[k] for k in SPEECH_KEYS if k in resolved}
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
