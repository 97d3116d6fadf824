"""State that SpeechBrain's ``Checkpointer`` saves and restores by attribute name.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)


@register_checkpoint_hooks
class Recoverable:
    """Saves and restores the attributes named in ``state_keys``.

    Subclasses become SpeechBrain checkpoint recoverables.
    """

    state_keys: tuple[str, ...] = ()

    @mark_as_saver
    def _save(self, path: str) -> None:
        torch.save({key: getattr(self, key) for key in self.state_keys}, path)

    @mark_as_loader
    def _recover(self, path: str, end_of_epoch: bool = False) -> None:
        del end_of_epoch
        # Counters and floats: weights_only=True loads them, and a checkpoint
        # folder handed over by someone else then runs no pickled code.
        for key, value in torch.load(path, weights_only=True).items():
            setattr(self, key, value)
