"""An int8 calibration stored in a model folder, so ``--precision int8`` needs no audio.

What is stored is the calibration *input*: the normalised features of the
calibration utterances (float16, ``np.savez``), not the activation ranges
the quantizer derives from them. Ranges are keyed by the node names of one
exported graph, which change with the exporter and the engine; features
give the same quantization with any of them, cost about 16 kB a second of
speech, and are read with ``allow_pickle=False`` (a folder runs no code,
docs/security.md).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..dataio.files import atomic_path
from ..paths import PathLike

INT8_CALIBRATION_FILE = "int8_calibration.npz"


def write_int8_calibration(folder: PathLike, feats: Sequence[torch.Tensor]) -> Path:
    """Stores calibration features ``(frames, n_mels)`` in ``folder`` (atomically).

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = write_int8_calibration(folder, [torch.ones(5, 80), torch.zeros(7, 80)])
    >>> [f.shape for f in read_int8_calibration(path)]
    [torch.Size([5, 80]), torch.Size([7, 80])]
    """
    if not feats:
        raise ValueError("int8 calibration: no utterance to store")
    path = Path(folder) / INT8_CALIBRATION_FILE
    arrays = {
        f"utt{i:04d}": f.detach().cpu().to(torch.float16).numpy()
        for i, f in enumerate(feats)
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def read_int8_calibration(path: Optional[PathLike]) -> Optional[list[torch.Tensor]]:
    """The stored calibration features (float32), or None without a file.

    A file that is not such a store is a ``ValueError`` naming it.
    """
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            feats = [torch.from_numpy(stored[k].astype(np.float32)) for k in stored]
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{path}: not an int8 calibration store ({INT8_CALIBRATION_FILE} as "
            f"written by --int8-calibration): {err}"
        ) from err
    if not feats or any(f.dim() != 2 for f in feats):
        raise ValueError(f"{path}: expected (frames, n_mels) arrays of calibration")
    return feats
