"""NIST RTTM files: who spoke when, as diarization tools exchange it.

One ``SPEAKER`` line per turn, ten space-separated fields::

    SPEAKER <uri> 1 <onset> <duration> <NA> <NA> <speaker> <NA> <NA>

the format of NIST's Rich Transcription evaluations that pyannote.metrics,
dscore and the AMI/VoxConverse references read (``pyannote.database``'s
``load_rttm`` is the reader the suite checks ours with). Written atomically:
a killed run never leaves half a file that looks like a result.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from ..paths import PathLike
from .files import write_text_atomic


class Turn(NamedTuple):
    """One speaker's stretch of speech, in seconds from the recording's start."""

    start: float
    end: float
    speaker: str


def rttm_field(value: str) -> str:
    """``value`` as one RTTM field: inner whitespace becomes ``_``.

    Example
    -------
    >>> rttm_field(" Ann  Lee ")
    'Ann_Lee'
    """
    word = re.sub(r"\s+", "_", str(value).strip())
    if not word:
        raise ValueError(f"an RTTM field cannot be empty, got {value!r}")
    return word


def rttm_lines(uri: str, turns: Iterable[Turn]) -> list[str]:
    """The RTTM lines of one recording's turns (times to the millisecond).

    Example
    -------
    >>> rttm_lines("meeting", [Turn(0.5, 2.25, "SPEAKER_00")])
    ['SPEAKER meeting 1 0.500 1.750 <NA> <NA> SPEAKER_00 <NA> <NA>']
    """
    uri, lines = rttm_field(uri), []
    for turn in turns:
        lines.append(
            f"SPEAKER {uri} 1 {turn.start:.3f} {turn.end - turn.start:.3f} "
            f"<NA> <NA> {rttm_field(turn.speaker)} <NA> <NA>"
        )
    return lines


def write_rttm(path: PathLike, uri: str, turns: Iterable[Turn]) -> None:
    """Writes one recording's turns to ``path`` atomically."""
    lines = rttm_lines(uri, turns)
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def read_rttm(path: PathLike) -> dict[str, list[Turn]]:
    """uri -> turns (sorted by start) of an RTTM file's ``SPEAKER`` lines.

    Raises
    ------
    ValueError
        A ``SPEAKER`` line without ten fields or with bad times, naming the
        file and line.

    Example
    -------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.rttm")
    >>> write_rttm(path, "a", [Turn(1.0, 2.0, "bob"), Turn(0.0, 1.0, "ann")])
    >>> read_rttm(path)["a"][0]
    Turn(start=0.0, end=1.0, speaker='ann')
    """
    out: dict[str, list[Turn]] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0] != "SPEAKER":
                continue
            try:
                if len(fields) < 10:
                    raise ValueError(f"{len(fields)} fields, expected 10")
                onset, duration = float(fields[3]), float(fields[4])
                if onset < 0 or duration < 0:
                    raise ValueError("negative onset or duration")
            except ValueError as err:
                raise ValueError(f"{path}:{number}: not an RTTM line ({err})") from None
            out.setdefault(fields[1], []).append(
                Turn(onset, onset + duration, fields[7])
            )
    for turns in out.values():
        turns.sort()
    return out
