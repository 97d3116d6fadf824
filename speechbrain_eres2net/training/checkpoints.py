"""Recipe checkpoints: finding the newest, loading the embedding modules from it.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from torch import nn

from ..paths import PathLike


def latest_checkpoint(checkpoint: PathLike) -> Path:
    """A SpeechBrain ``CKPT+...`` folder, or the latest one inside a save folder.

    "Latest" is what SpeechBrain's ``Checkpointer.find_checkpoint`` finds
    (the newest ``unixtime`` of ``CKPT.yaml``).

    Example
    -------
    >>> import tempfile
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> folder = tempfile.mkdtemp()
    >>> saved = Checkpointer(folder).save_checkpoint()
    >>> latest_checkpoint(folder) == Path(saved.path)
    True
    """
    from speechbrain.utils.checkpoints import Checkpointer

    path = Path(checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {path}")
    if (path / "CKPT.yaml").is_file() or (path / "embedding_model.ckpt").is_file():
        return path
    found = Checkpointer(path).find_checkpoint()
    if found is None:
        raise FileNotFoundError(
            f"{path} holds no SpeechBrain checkpoint (no CKPT+*/CKPT.yaml)"
        )
    return Path(found.path)


def load_checkpoint(
    checkpoint_folder: PathLike,
    embedding_model: nn.Module,
    mean_var_norm: Optional[nn.Module] = None,
) -> Path:
    """Loads the newest training checkpoint into the embedding modules.

    Reads the ``embedding_model`` (required) and ``normalizer`` (if saved)
    recoverables of a SpeechBrain ``Checkpointer`` folder (the training
    YAML's ``save_folder``, holding ``CKPT+*`` folders).

    Returns
    -------
    Path
        The checkpoint folder that was loaded.

    Example
    -------
    >>> import tempfile
    >>> import torch
    >>> from speechbrain.utils.checkpoints import Checkpointer
    >>> from speechbrain_eres2net import ERes2Net
    >>> folder = tempfile.mkdtemp()
    >>> trained = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1])
    >>> _ = Checkpointer(folder, {"embedding_model": trained}).save_checkpoint()
    >>> fresh = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1])
    >>> _ = load_checkpoint(folder, fresh)
    >>> bool(torch.equal(fresh.stem[0].weight, trained.stem[0].weight))
    True
    """
    from speechbrain.utils.checkpoints import Checkpointer

    folder = Path(checkpoint_folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {folder}")
    recoverables = {"embedding_model": embedding_model}
    if mean_var_norm is not None:
        recoverables["normalizer"] = mean_var_norm
    # Partial load: a normaliser with sentence statistics may not be saved.
    checkpointer = Checkpointer(folder, recoverables, allow_partial_load=True)
    checkpoint = checkpointer.find_checkpoint()
    if checkpoint is None:
        raise FileNotFoundError(f"no CKPT+* checkpoint in {folder}")
    if "embedding_model" not in checkpoint.paramfiles:
        raise ValueError(f"checkpoint {checkpoint.path} has no embedding_model")
    checkpointer.load_checkpoint(checkpoint)
    return Path(checkpoint.path)
