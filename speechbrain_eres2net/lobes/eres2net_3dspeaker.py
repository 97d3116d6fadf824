"""Conversion between official 3D-Speaker ERes2Net state_dicts and ours.

3D-Speaker releases its ERes2Net weights as plain ``state_dict`` files. Our
module names follow our own structure, so a checkpoint is converted by
renaming keys (the tensors are identical). The variant (base, large,
ERes2NetV2, huge, any ``m_channels`` / embedding size / feat_dim) is read off
the tensor shapes, the model is built, and every tensor must match: a
missing, extra or mis-shaped tensor is an error that names it.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import os
import re
from typing import Union

import torch

StateDict = dict[str, torch.Tensor]


# (official pattern, our replacement); applied to the first match only.
_OFFICIAL_TO_OURS = [
    (r"^conv1\.", "stem.0."),
    (r"^bn1\.", "stem.1."),
    (r"^layer3_ds\.", "downsamples.0."),
    (r"^fuse_mode12\.local_att\.", "global_fusions.0.attention."),
    (r"^fuse_mode123\.local_att\.", "global_fusions.1.attention."),
    (r"^fuse_mode1234\.local_att\.", "global_fusions.2.attention."),
    (r"^fuse34\.local_att\.", "global_fusions.0.attention."),
    (r"^seg_1\.", "embedding."),
]


_BLOCK_PARTS = {
    "conv1": "conv_in",
    "bn1": "bn_in",
    "convs": "split_convs",
    "bns": "split_bns",
    "conv3": "conv_out",
    "bn3": "bn_out",
    "shortcut": "shortcut",
    "fuse_models": "fusions",
}


_OUR_BLOCK_PARTS = {ours: theirs for theirs, ours in _BLOCK_PARTS.items()}


def official_to_ours(key: str) -> str:
    """Our parameter name for an official 3D-Speaker ERes2Net key.

    Raises ``KeyError`` for a key that no ERes2Net of ours holds.

    Example
    -------
    >>> official_to_ours("layer3.0.fuse_models.0.local_att.1.running_mean")
    'stages.2.0.fusions.0.attention.1.running_mean'
    >>> official_to_ours("layer2_downsample.weight")
    'downsamples.1.weight'
    """
    block = re.match(r"^layer([1-4])\.(\d+)\.([a-z_0-9]+)\.(.*)$", key)
    if block:
        stage, index, part, rest = block.groups()
        if part in _BLOCK_PARTS:
            rest = rest.replace("local_att.", "attention.", 1)
            return f"stages.{int(stage) - 1}.{index}.{_BLOCK_PARTS[part]}.{rest}"
    down = re.match(r"^layer([1-3])_downsample\.(.*)$", key)
    if down:
        return f"downsamples.{int(down.group(1)) - 1}.{down.group(2)}"
    for pattern, replacement in _OFFICIAL_TO_OURS:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key, count=1)
    raise KeyError(f"no ERes2Net parameter corresponds to official key {key!r}")


def ours_to_official(key: str, global_fusion: str = "bottom_up") -> str:
    """The official 3D-Speaker key for one of our parameter names.

    Example
    -------
    >>> ours_to_official("stages.0.2.split_convs.1.weight")
    'layer1.2.convs.1.weight'
    >>> ours_to_official("global_fusions.0.attention.3.bias", "last")
    'fuse34.local_att.3.bias'
    """
    block = re.match(r"^stages\.(\d)\.(\d+)\.([a-z_]+)\.(.*)$", key)
    if block:
        stage, index, part, rest = block.groups()
        rest = rest.replace("attention.", "local_att.", 1)
        return f"layer{int(stage) + 1}.{index}.{_OUR_BLOCK_PARTS[part]}.{rest}"
    fusion = re.match(r"^global_fusions\.(\d)\.attention\.(.*)$", key)
    if fusion:
        names = (
            ["fuse34"]
            if global_fusion == "last"
            else ["fuse_mode12", "fuse_mode123", "fuse_mode1234"]
        )
        return f"{names[int(fusion.group(1))]}.local_att.{fusion.group(2)}"
    down = re.match(r"^downsamples\.(\d)\.(.*)$", key)
    if down:
        if global_fusion == "last":
            return f"layer3_ds.{down.group(2)}"
        return f"layer{int(down.group(1)) + 1}_downsample.{down.group(2)}"
    for prefix, official in (
        ("stem.0.", "conv1."),
        ("stem.1.", "bn1."),
        ("embedding.", "seg_1."),
    ):
        if key.startswith(prefix):
            return official + key[len(prefix) :]
    raise KeyError(f"no official 3D-Speaker key corresponds to {key!r}")


def infer_config(state_dict: StateDict) -> dict[str, object]:
    """Reads ERes2Net constructor arguments off an official state_dict.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> sd = to_3dspeaker(ERes2Net(m_channels=8, num_blocks=[1, 2, 1, 1]))
    >>> cfg = infer_config(sd)
    >>> cfg["m_channels"], cfg["num_blocks"], cfg["feat_dim"]
    (8, [1, 2, 1, 1], 80)
    """

    def need(key: str) -> torch.Tensor:
        if key not in state_dict:
            raise ValueError(f"not an ERes2Net state_dict: tensor {key!r} is missing")
        return state_dict[key]

    m_channels = need("conv1.weight").shape[0]
    num_blocks = []
    for stage in range(1, 5):
        blocks = {
            int(k.split(".")[1])
            for k in state_dict
            if k.startswith(f"layer{stage}.") and k.endswith(".conv1.weight")
        }
        if not blocks:
            raise ValueError(f"not an ERes2Net state_dict: no blocks in layer{stage}")
        num_blocks.append(max(blocks) + 1)
    # The widest stage (planes = 8m) pins base_width down best, since
    # width = floor(planes * base_width / 64) loses the remainder.
    planes = 8 * m_channels
    width = need("layer4.0.convs.0.weight").shape[0]
    scale = len(
        {k for k in state_dict if re.match(r"^layer1\.0\.convs\.\d+\.weight$", k)}
    )
    expansion = need("layer1.0.conv3.weight").shape[0] // m_channels
    base_width = width * 64 // planes
    while planes * base_width // 64 < width:
        base_width += 1
    lff_stages = [
        s
        for s in range(1, 5)
        if any(k.startswith(f"layer{s}.0.fuse_models.") for k in state_dict)
    ]
    if "layer1_downsample.weight" in state_dict:
        global_fusion = "bottom_up"
    elif "layer3_ds.weight" in state_dict:
        global_fusion = "last"
    else:
        global_fusion = "none"
    head = need("seg_1.weight")
    last_channels = m_channels * 8 * expansion
    pooled_freq = head.shape[1] // (2 * last_channels)
    if head.dim() != 2 or pooled_freq * 2 * last_channels != head.shape[1]:
        raise ValueError(
            f"seg_1.weight has shape {tuple(head.shape)}, which does not fit "
            f"a last stage of {last_channels} channels"
        )
    extra = [k for k in state_dict if k.startswith(("seg_2.", "seg_bn_1."))]
    if extra:
        raise ValueError(
            f"two_emb_layer checkpoints are not supported (tensors {extra}); "
            "no official config or release uses them"
        )
    return {
        "feat_dim": pooled_freq * 8,
        "embedding_size": head.shape[0],
        "m_channels": m_channels,
        "num_blocks": num_blocks,
        "base_width": base_width,
        "scale": scale,
        "expansion": expansion,
        "lff_stages": lff_stages,
        "fusion": "aff",
        "global_fusion": global_fusion,
    }


def read_state_dict(checkpoint: Union[str, os.PathLike, StateDict]) -> StateDict:
    """Loads a state_dict from a file, unwrapping common containers.

    Accepts a plain state_dict, or a dict holding one under ``state_dict``,
    ``model`` or ``embedding_model``; strips a DDP ``module.`` prefix.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        if not os.path.isfile(checkpoint):
            raise FileNotFoundError(f"checkpoint file not found: {checkpoint}")
        try:
            checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several unrelated types here
            raise ValueError(f"cannot read checkpoint {checkpoint}: {err}") from err
    if not isinstance(checkpoint, dict):
        raise ValueError(
            f"expected a state_dict (dict of tensors), got {type(checkpoint).__name__}"
        )
    for wrapper in ("state_dict", "model", "embedding_model"):
        if isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
            break
    return {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in checkpoint.items()
    }


def convert_state_dict(
    state_dict: StateDict, expected: StateDict, global_fusion: str = "bottom_up"
) -> StateDict:
    """Renames an official state_dict to our keys, checking it against ``expected``.

    Arguments
    ---------
    state_dict : dict
        An official 3D-Speaker ERes2Net / ERes2NetV2 / ERes2Net_huge state_dict.
    expected : dict
        The ``state_dict()`` of the model that will receive the weights.
    global_fusion : str
        That model's global fusion (it decides a few official names).

    Returns
    -------
    dict
        The state_dict with our keys; a missing, extra or mis-shaped tensor
        is a ``ValueError`` naming it by its official name.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> small = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> ours = convert_state_dict(to_3dspeaker(small), small.state_dict())
    >>> sorted(ours) == sorted(small.state_dict())
    True
    """
    converted, unknown = {}, []
    for key, tensor in state_dict.items():
        try:
            converted[official_to_ours(key)] = tensor
        except KeyError:
            unknown.append(key)

    def official(key: str) -> str:
        return ours_to_official(key, global_fusion)

    problems = []
    if unknown:
        problems.append(f"unexpected tensors {sorted(unknown)}")
    missing = sorted(official(k) for k in expected.keys() - converted.keys())
    if missing:
        problems.append(f"missing tensors {missing}")
    extra = sorted(official(k) for k in converted.keys() - expected.keys())
    if extra:
        problems.append(f"unexpected tensors {extra}")
    for key in sorted(expected.keys() & converted.keys()):
        if expected[key].shape != converted[key].shape:
            problems.append(
                f"tensor {official(key)!r} has shape "
                f"{tuple(converted[key].shape)}, expected {tuple(expected[key].shape)}"
            )
    if problems:
        raise ValueError("; ".join(problems))
    return converted


def to_3dspeaker(model: torch.nn.Module) -> StateDict:
    """Our model's weights under the official 3D-Speaker key names.

    The result loads strictly into the official ``ERes2Net`` (or
    ``ERes2NetV2`` for ``global_fusion="last"``) of matching size, for AFF
    models; other fusions have no official counterpart.
    """
    return {
        ours_to_official(k, model.global_fusion): v.detach().clone()
        for k, v in model.state_dict().items()
    }
