"""Trial lists: ``<1|0> <enrol> <test>`` (or target/nontarget words), read block-wise.

Names are stored once and trials as int32 indices, so lists of millions of
trials fit in little memory; a malformed line is an error naming the file and
the line number.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..paths import PathLike

_TRIAL_LABELS = {"0": 0, "1": 1}


_WORD_LABELS = {"target": 1, "nontarget": 0}


def read_trials(path: PathLike) -> tuple[np.ndarray, list[str], list[str]]:
    """Reads a VoxCeleb trial list: ``<1|0> <enrol path> <test path>`` per line.

    The Kaldi/WeSpeaker order ``<enrol> <test> <target|nontarget>`` is read
    too. Paths are kept as written (relative to the corpus ``wav`` folder),
    less any leading ``./``.

    Arguments
    ---------
    path : str or os.PathLike
        The trial list.

    Returns
    -------
    labels : np.ndarray
        (n,) int64, 1 for target and 0 for non-target trials.
    enrol, test : list of str
        The two utterances of each trial.

    Example
    -------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "trials.txt"
    >>> _ = p.write_text("1 a/s/1.wav a/s/2.wav\\n0 a/s/1.wav b/s/1.wav\\n")
    >>> labels, enrol, test = read_trials(p)
    >>> labels.tolist(), test
    ([1, 0], ['a/s/2.wav', 'b/s/1.wav'])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trial list not found: {path}")
    labels, names, enrol, test = read_trials_indexed(path)
    return (
        labels,
        list(map(names.__getitem__, enrol)),
        list(map(names.__getitem__, test)),
    )


def read_trials_indexed(
    path: PathLike,
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Reads a trial list as indices into its distinct utterances.

    The compact form of :func:`read_trials` for large lists (VoxCeleb1-E
    and -H, or millions of trials): the utterance names are stored once.

    Returns
    -------
    labels : np.ndarray
        (n,) int64, 1 for target and 0 for non-target trials.
    names : list of str
        The distinct utterances, in order of first appearance.
    enrol, test : np.ndarray
        (n,) int32 indices into ``names``.

    Example
    -------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "trials.txt"
    >>> _ = p.write_text("1 a/1.wav a/2.wav\\n0 a/1.wav b/1.wav\\n")
    >>> labels, names, enrol, test = read_trials_indexed(p)
    >>> names, enrol.tolist(), test.tolist()
    (['a/1.wav', 'a/2.wav', 'b/1.wav'], [0, 0], [1, 2])
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"trial list not found: {path}")
    codes: dict[str, int] = {}
    labels: list[np.ndarray] = []
    enrol: list[np.ndarray] = []
    test: list[np.ndarray] = []
    label_names = None
    line_number = 1
    with open(path, encoding="utf-8") as f:
        # Blocks of lines split at once keep a 10-million-trial list to
        # seconds; an irregular line sends the block to a line-by-line check.
        while lines := f.readlines(1 << 22):
            block = " ".join(lines)
            tokens = block.split()
            rows = sum(1 for line in lines if not line.isspace())
            if len(tokens) != 3 * rows:
                raise _trial_format_error(path, lines, line_number)
            columns = [tokens[i::3] for i in range(3)]
            del tokens
            if label_names is None:
                vox = set(columns[0]) <= _TRIAL_LABELS.keys()
                label_names = _TRIAL_LABELS if vox else _WORD_LABELS
            if label_names is _TRIAL_LABELS:
                words, first, second = columns
            else:
                first, second, words = columns
            if not set(words) <= label_names.keys():
                raise _trial_format_error(path, lines, line_number)
            if block.startswith("./") or " ./" in block or "\t./" in block:
                first, second = ([_no_dot(p) for p in c] for c in (first, second))
            labels.append(np.fromiter(map(label_names.__getitem__, words), np.int64))
            # Only the block's distinct names go through Python code.
            for name in dict.fromkeys(first + second):
                if name not in codes:
                    codes[name] = len(codes)
            enrol.append(np.fromiter(map(codes.__getitem__, first), np.int32))
            test.append(np.fromiter(map(codes.__getitem__, second), np.int32))
            line_number += len(lines)
    if not codes:
        raise ValueError(f"trial list is empty: {path}")
    return (
        np.concatenate(labels),
        list(codes),
        np.concatenate(enrol),
        np.concatenate(test),
    )


def _no_dot(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def _trial_format_error(path: Path, lines: list[str], first_number: int) -> ValueError:
    for number, line in enumerate(lines, start=first_number):
        fields = line.split()
        if fields and not (
            len(fields) == 3
            and (fields[0] in _TRIAL_LABELS or fields[2] in _WORD_LABELS)
        ):
            return ValueError(
                f"{path}:{number}: expected '<1|0> <enrol> <test>', "
                f"got {line.strip()!r}"
            )
    return ValueError(
        f"{path}: mixes '<1|0> <enrol> <test>' and "
        "'<enrol> <test> <target|nontarget>' lines"
    )


def preview(items: Sequence[object], limit: int = 5) -> str:
    """The first few items of a list, for an error message.

    Example
    -------
    >>> preview(["a", "b", "c"], limit=2)
    'a, b ...'
    """
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (" ..." if len(items) > limit else "")


def missing_trial_files_error(
    missing: Sequence[str], trials: PathLike, roots: Sequence[Path]
) -> FileNotFoundError:
    """The error for trial-list utterances absent from every data folder.

    Example
    -------
    >>> print(missing_trial_files_error(["a/1.wav"], "t.txt", [Path("/d/wav")]))
    trial list t.txt names 1 file(s) not found under /d/wav: a/1.wav
    """
    where = ", ".join(str(r) for r in roots)
    return FileNotFoundError(
        f"trial list {trials} names {len(missing)} file(s) not found "
        f"under {where}: {preview(missing)}"
    )
