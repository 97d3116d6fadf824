"""Path types, and where the packaged hyperparameter files are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]

_PACKAGE = Path(__file__).resolve().parent
# hparams/ sits at the repository top level (SpeechBrain's layout); an
# installed package carries a copy inside it (setup.py's package_dir).
_HPARAMS_DIRS = (_PACKAGE.parent / "hparams", _PACKAGE / "hparams")


def hparams_file(name: str) -> Path:
    """Path of a YAML file of ``hparams/`` (checkout or installed copy).

    Example
    -------
    >>> hparams_file("verification.yaml").name
    'verification.yaml'
    """
    for folder in _HPARAMS_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"hparams/{name} not found (looked in "
        + ", ".join(str(d) for d in _HPARAMS_DIRS)
        + ")"
    )
