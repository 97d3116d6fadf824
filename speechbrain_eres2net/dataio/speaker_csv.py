"""Reading SpeechBrain speaker CSVs (``ID, duration, wav, start, stop, spk_id``).

One reader for every CSV the package takes: the training and validation lists,
AS-norm cohorts, restricted copies. It is SpeechBrain's own
``load_data_csv`` (``$data_root`` replacement, unique IDs), with the columns
checked up front so that a wrong file is a one-line error naming it.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional

from ..paths import PathLike

REQUIRED_COLUMNS = ("ID", "wav", "start", "stop", "spk_id")


def read_speaker_csv(
    path: PathLike, data_folder: Optional[PathLike] = None
) -> dict[str, dict[str, str]]:
    """Rows of a speaker CSV by ID, with ``$data_root`` set to ``data_folder``.

    Example
    -------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("ID,duration,wav,start,stop,spk_id\\n"
    ...                  "u1,1.0,$data_root/a.wav,0,16000,s1\\n")
    >>> read_speaker_csv(p, "/data")["u1"]["wav"]
    '/data/a.wav'
    """
    from speechbrain.dataio.dataio import load_data_csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file not found: {path}")
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(
            f"{path} lacks column(s) {missing}; expected {','.join(REQUIRED_COLUMNS)}"
        )
    replacements = {} if data_folder is None else {"data_root": str(data_folder)}
    return load_data_csv(str(path), replacements)
