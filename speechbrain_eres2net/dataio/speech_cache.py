"""Speech segments of a training corpus, found once and kept beside its CSV.

The recipe's data pipeline gives training crops the speech handling that
inference gives recordings (:class:`~.speech_handling.SpeechHandling`): with
``vad: trim`` a crop is taken from the speech of its segment, not from the
pauses around it. Detecting speech every epoch would cost as much as the
feature cache saves, so each CSV row's speech is found once and written to
a journal next to the CSV (``<csv>.speech.jsonl``): one JSON line a row,
appended and flushed as it is found, so a killed preparation resumes where
it stopped (a torn last line is found again) and a change of the settings,
named on the first line, starts the journal afresh.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from ..paths import PathLike
from .speech_handling import SpeechHandling
from .vad import Speech

logger = logging.getLogger(__name__)

Segments = tuple[tuple[int, int], ...]


def journal_path(csv_path: PathLike) -> Path:
    """Where the speech of a CSV's rows is kept.

    Example
    -------
    >>> journal_path("save/train.csv").name
    'train.csv.speech.jsonl'
    """
    return Path(f"{csv_path}.speech.jsonl")


def _read_journal(path: Path, stamp: dict) -> dict[str, Segments]:
    """Rows already in a journal written under ``stamp``; {} otherwise."""
    if not path.is_file():
        return {}
    found: dict[str, Segments] = {}
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    try:
        if json.loads(lines[0]) != {"settings": stamp}:
            return {}
    except json.JSONDecodeError:
        return {}
    for line in lines[1:]:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line: that row is found again
        found[entry["id"]] = tuple(tuple(seg) for seg in entry["segments"])
    return found


def row_speech(
    rows: Sequence[Mapping[str, Any]],
    speech: SpeechHandling,
    csv_path: PathLike,
    progress: bool = True,
) -> dict[str, Segments]:
    """Speech segments of every row, in samples from the row's ``start``.

    Arguments
    ---------
    rows : sequence of mapping
        CSV rows with ``id``, ``wav``, ``start`` and ``stop`` (samples).
    speech : SpeechHandling
        The detector's settings (not ``vad: off``).
    csv_path : path
        The CSV the rows come from; the journal goes next to it.
    progress : bool
        Show a progress bar for the rows still to do.

    Returns
    -------
    dict
        Row id -> its speech segments ``((start, end), ...)``; empty when the
        detector heard no speech.

    Example
    -------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> t = np.arange(32000) / 16000
    >>> sf.write(folder / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    >>> rows = [{"id": "a", "wav": str(folder / "tone.wav"), "start": 0,
    ...          "stop": 32000}]
    >>> speech = SpeechHandling.resolve({"vad": "trim"})
    >>> row_speech(rows, speech, folder / "train.csv", progress=False)
    {'a': ()}
    """
    stamp = speech.detection()
    path = journal_path(csv_path)
    done = _read_journal(path, stamp)
    todo = [row for row in rows if row["id"] not in done]
    if not todo:
        return {row["id"]: done[row["id"]] for row in rows}
    detector = speech.detector()
    fresh = not done
    with open(path, "w" if fresh else "a", encoding="utf-8") as journal:
        if fresh:
            journal.write(json.dumps({"settings": stamp}) + "\n")
        for row in tqdm(todo, desc="speech of training rows", disable=not progress):
            start, stop = int(row["start"]), int(row["stop"])
            data, rate = sf.read(
                row["wav"], start=start, stop=stop, dtype="float32", always_2d=True
            )
            wav = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
            segments = detector(wav, rate).segments
            done[row["id"]] = segments
            journal.write(json.dumps({"id": row["id"], "segments": segments}) + "\n")
            journal.flush()
        os.fsync(journal.fileno())
    return {row["id"]: done[row["id"]] for row in rows}


def trim_segments(
    wav: torch.Tensor, segments: Segments, speech: SpeechHandling, sample_rate: int
) -> torch.Tensor:
    """What ``trim`` keeps of ``wav`` (samples,) with its detected speech
    ``segments`` (:meth:`SpeechHandling.kept`); all of it when none was heard.

    A training row in which the detector hears nothing is kept whole rather
    than dropped: the label encoder and the classifier size are fixed by
    the CSV, and a curated corpus holds few such rows.

    Example
    -------
    >>> h = SpeechHandling.resolve({"vad": "trim", "trim_min_pause_seconds": 2,
    ...                             "trim_pad_seconds": 0})
    >>> trim_segments(torch.arange(10.0), ((1, 3), (6, 8)), h, 1).tolist()
    [1.0, 2.0, 6.0, 7.0]
    >>> trim_segments(torch.arange(3.0), (), h, 1).tolist()
    [0.0, 1.0, 2.0]
    """
    if not segments:
        return wav
    return speech.kept(wav, Speech(segments, int(wav.shape[0]), sample_rate))
