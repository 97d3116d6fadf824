"""Audio files named on a command line: paths, folders and list files.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..paths import PathLike
from .audio import AUDIO_SUFFIXES


def expand_inputs(inputs: Iterable[PathLike]) -> list[Path]:
    """Audio files named by paths, folders (recursive) or list files.

    A folder contributes every audio file below it (sorted); a ``.txt``,
    ``.lst``, ``.list`` or ``.scp`` file contributes one path per line
    (the last field of a line, so Kaldi ``wav.scp`` lines ``<id> <path>``
    work; relative paths are taken relative to the list file).

    Example
    -------
    >>> expand_inputs([])
    []
    """
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(
                sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            )
        elif item.suffix.lower() in LIST_SUFFIXES and item.is_file():
            for line in item.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    entry = Path(line.split()[-1])
                    files.append(entry if entry.is_absolute() else item.parent / entry)
        else:
            files.append(item)
    return files


LIST_SUFFIXES = {".txt", ".lst", ".list", ".scp"}
