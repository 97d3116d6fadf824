"""Checkpointable global random state (torch, numpy, random).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

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
        torch.save(
            {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            path,
        )

    @mark_as_loader
    def _recover(self, path: str, end_of_epoch: bool = False) -> None:
        del end_of_epoch
        state = torch.load(path, weights_only=False)
        torch.set_rng_state(state["torch"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
