"""Checkpointable global random state (torch, numpy, random).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import pickle
import random

import numpy as np
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)


@register_checkpoint_hooks
class RandomState:
    """Saves and restores the global RNGs (torch, numpy, random).

    On-the-fly augmentation in the training loop draws from the global
    torch generator; checkpointing it makes a resumed run draw the same
    numbers as an uninterrupted one.

    Example
    -------
    >>> state = RandomState()
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "rng.ckpt")
    >>> state._save(path)
    >>> a = torch.rand(1)
    >>> state._recover(path)
    >>> bool(torch.equal(a, torch.rand(1)))
    True
    """

    @mark_as_saver
    def _save(self, path: str) -> None:
        # Tensors, ints and tuples only: the file loads with
        # weights_only=True, like every checkpoint of the package.
        name, keys, pos, has_gauss, cached = np.random.get_state()
        torch.save(
            {
                "torch": torch.get_rng_state(),
                "numpy": (
                    name,
                    torch.from_numpy(keys.astype(np.int64)),
                    int(pos),
                    int(has_gauss),
                    float(cached),
                ),
                "python": random.getstate(),
            },
            path,
        )

    @mark_as_loader
    def _recover(self, path: str, end_of_epoch: bool = False) -> None:
        del end_of_epoch
        try:
            state = torch.load(path, weights_only=True)
        except pickle.UnpicklingError:
            # Written before the numpy state was stored as a tensor: a numpy
            # array of the run's own checkpoint, whose types alone are let in.
            with torch.serialization.safe_globals(_NUMPY_STATE_TYPES):
                state = torch.load(path, weights_only=True)
        torch.set_rng_state(state["torch"])
        name, keys, *rest = state["numpy"]
        keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
        np.random.set_state((name, keys.astype(np.uint32), *rest))
        random.setstate(state["python"])


# The numpy reconstruction of an RNG state array (PyTorch's documented way to
# allow numpy arrays under weights_only); numpy 2 moved it to numpy._core.
_NUMPY_CORE = np._core if hasattr(np, "_core") else np.core
_NUMPY_STATE_TYPES = [
    _NUMPY_CORE.multiarray._reconstruct,
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
]
