"""A model folder from an official 3D-Speaker checkpoint.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from ruamel.yaml.comments import CommentedMap

from ..lobes.eres2net import ERes2Net
from ..lobes.eres2net_3dspeaker import infer_config, read_state_dict
from ..paths import PathLike
from .card import ModelCard
from .model_folder import write_model_folder
from .yaml_nodes import new_node


def kaldi_front_end_nodes(
    n_mels: int = 80, sample_rate: int = 16000, **fbank: object
) -> dict[str, CommentedMap]:
    """Front end of official 3D-Speaker weights, in SpeechBrain's two steps.

    ``encode_batch`` calls ``compute_features(wavs)`` without lengths and
    then ``mean_var_norm(feats, wav_lens)``: the Kaldi fbank is computed
    without its mean removal and the per-utterance mean over the valid
    frames is removed by the length-aware sentence normaliser, so padded
    batches keep per-utterance statistics. ``fbank`` holds other
    :class:`~speechbrain_eres2net.KaldiFbank` settings (e.g. the recipes'
    ``high_freq=-400.0, snip_edges=False``); none gives the official ones.
    """
    return {
        "compute_features": new_node(
            "speechbrain_eres2net.KaldiFbank",
            n_mels=n_mels,
            sample_rate=sample_rate,
            mean_norm=False,
            **fbank,
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
    training_data: Optional[str] = None,
    license: str = "apache-2.0",
    eval_dataset: Optional[str] = None,
    language: Sequence[str] = (),
    int8_calibration: Optional[Sequence[PathLike]] = None,
) -> Path:
    """Turns an official 3D-Speaker ERes2Net checkpoint into a model folder.

    The variant (base, large, ERes2NetV2, huge, any width or embedding size)
    is read off the tensor shapes by
    :meth:`speechbrain_eres2net.ERes2Net.from_3dspeaker`; the folder uses
    the Kaldi fbank front end with per-utterance mean normalisation that
    the official models were trained with.

    ``training_data`` (a dataset name or Hub id), ``eval_dataset``,
    ``language`` and ``license`` are for the model card, and
    ``int8_calibration`` the speech whose features the folder stores for
    ``--precision int8``, as in
    :func:`~speechbrain_eres2net.export.recipe.export_hub`.
    """
    # The card first: a bad license fails before the checkpoint is read.
    card = ModelCard(
        title=f"ERes2Net speaker embeddings (3D-Speaker `{Path(checkpoint).name}`)",
        training_data=training_data
        or "See the 3D-Speaker / ModelScope page of this checkpoint.",
        datasets=[training_data] if training_data else [],
        eval_dataset=eval_dataset or "",
        language=list(language),
        source=(
            f"Weights converted from the official 3D-Speaker checkpoint "
            f"`{Path(checkpoint).name}` (https://github.com/modelscope/3D-Speaker); "
            "embeddings equal the official model's on the official front end.\n"
        ),
        license=license,
        notes=["No classifier head: 3D-Speaker does not release it."],
    )
    state_dict = read_state_dict(checkpoint)
    config = infer_config(state_dict)
    model = ERes2Net.from_3dspeaker(state_dict)
    nodes = {
        **kaldi_front_end_nodes(n_mels=int(config["feat_dim"])),
        "embedding_model": new_node("speechbrain_eres2net.ERes2Net", **config),
    }
    return write_model_folder(
        out,
        nodes,
        {"embedding_model": model},
        card,
        16000,
        trials,
        data_root,
        int8_calibration=int8_calibration,
    )
