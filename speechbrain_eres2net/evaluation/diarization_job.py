"""Diarizing many recordings: one RTTM each, resumable, sharded under torchrun.

:func:`diarize_files` is what ``eres2net diarize`` runs. Each recording's
result is written as it finishes: ``<out>/<uri>.rttm`` and a record
``<out>/.diarize/<uri>.json`` (the result as ``--json`` prints it, or the
reason the recording has none), both atomically, the record last. Rerunning
the same command skips every recording whose record carries the same job
(model, settings, speaker count: :func:`job_settings`) and, for a refused
recording, the same file size and time; anything else is diarized again. A
killed run thus loses at most the recordings in flight.

Under ``torchrun`` each rank diarizes its share of the unfinished
recordings on its own device (:mod:`..inference.extraction`'s rank set-up);
rank 0 waits for all, then writes ``<out>/errors.txt`` (every recording
without an RTTM, and why) and returns every result in input order.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional

from ..dataio.audio import AudioError
from ..dataio.files import write_text_atomic
from ..dataio.rttm import write_rttm
from ..inference.extraction import barrier, distributed_context
from ..paths import PathLike
from .clustering import ClusteringError
from .diarization import Diarizer

logger = logging.getLogger(__name__)

RECORDS = ".diarize"
ERRORS_FILE = "errors.txt"


class DiarizationJob(NamedTuple):
    """What :func:`diarize_files` did (rank 0's view under torchrun)."""

    results: list[dict[str, Any]]
    """Per recording in input order: ``as_dict()`` of its diarization, or
    ``{"file", "uri", "error"}`` (rank 0 only)."""
    resumed: int
    """Recordings found finished by an earlier run."""
    merged: bool
    """This process holds the results (rank 0)."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The results without a diarization."""
        return [r for r in self.results if "error" in r]


def recording_uris(files: Sequence[PathLike]) -> list[str]:
    """The RTTM uri of each recording (its file name without the suffix).

    Raises
    ------
    ValueError
        Two recordings with one uri (they would write the same RTTM).

    Example
    -------
    >>> recording_uris(["a/x.wav", "b/y.flac"])
    ['x', 'y']
    """
    uris, seen = [], {}
    for f in files:
        uri = Path(f).stem
        if uri in seen:
            raise ValueError(
                f"{seen[uri]} and {f} would both write {uri}.rttm: give recordings "
                "distinct file names"
            )
        seen[uri] = f
        uris.append(uri)
    return uris


def job_settings(diarizer: Diarizer, count: dict[str, Optional[int]]) -> str:
    """SHA-256 of everything that decides a recording's diarization."""
    embedder = diarizer.embedder
    identifier = diarizer.identifier
    settings = {
        "model": embedder.fingerprint,
        "speech": embedder.speech.detection(),
        "vad": embedder.vad,
        "min_speech_seconds": embedder.min_speech_seconds,
        "clustering": diarizer.clustering_settings,
        "windows": [
            diarizer.window,
            diarizer.hop,
            diarizer.shortest,
            diarizer.bridge,
            diarizer.max_clustered,
        ],
        "calibration": None
        if diarizer.calibration is None
        else diarizer.calibration.to_dict(),
        "count": count,
        "gallery": None
        if identifier is None
        else [
            identifier.gallery.speakers,
            identifier.rule(),
            identifier.scoring,
            len(identifier.gallery.embeddings),
        ],
    }
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp(path: PathLike) -> list[float]:
    try:
        status = os.stat(path)
    except OSError:
        return [-1.0, -1.0]
    return [float(status.st_size), status.st_mtime]


def _finished(record: Path, job: str, path: PathLike, rttm: Path) -> Optional[dict]:
    """The stored result of a recording when it is this job's and complete."""
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stored.get("job") != job:
        return None
    result = stored.get("result", {})
    if "error" in result:
        return result if stored.get("stamp") == _stamp(path) else None
    return result if rttm.is_file() else None


def diarize_files(
    diarizer: Diarizer,
    files: Sequence[PathLike],
    out: PathLike,
    num_speakers: Optional[int] = None,
    min_speakers: Optional[int] = None,
    max_speakers: Optional[int] = None,
    progress: bool = True,
) -> DiarizationJob:
    """Diarizes recordings into ``out`` (one RTTM each), resumably.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
    >>> d = Path(tempfile.mkdtemp())
    >>> soundfile.write(d / "a.wav", np.random.default_rng(0).normal(size=48000) * .1,
    ...                 16000)
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    >>> diarizer = Diarizer(SpeakerEmbedder(KaldiFbank(), None, model, vad="off"))
    >>> job = diarize_files(diarizer, [d / "a.wav", d / "b.wav"], d / "out",
    ...                     num_speakers=1, progress=False)
    >>> [r.get("num_speakers", r.get("error")) for r in job.results]
    [1, 'file not found']
    >>> sorted(p.name for p in (d / "out").iterdir())
    ['.diarize', 'a.rttm', 'errors.txt']
    """
    from tqdm import tqdm

    out = Path(out)
    uris = recording_uris(files)
    diarizer.check_count(num_speakers, min_speakers, max_speakers)
    count = {"num": num_speakers, "min": min_speakers, "max": max_speakers}
    job = job_settings(diarizer, count)
    rank, world, _ = distributed_context()
    records = out / RECORDS
    if rank == 0:
        records.mkdir(parents=True, exist_ok=True)
    barrier()
    done: dict[int, dict] = {}
    for i, (f, uri) in enumerate(zip(files, uris)):
        found = _finished(records / f"{uri}.json", job, f, out / f"{uri}.rttm")
        if found is not None:
            done[i] = found
    # Every rank reads the records before any rank writes one.
    barrier()
    todo = [i for i in range(len(files)) if i not in done]
    resumed = len(files) - len(todo)
    if resumed and rank == 0:
        logger.info("%d of %d recording(s) done by an earlier run", resumed, len(files))
    with tqdm(
        total=len(files),
        initial=resumed,
        unit="file",
        disable=not (progress and rank == 0),
        desc="diarizing",
    ) as bar:
        for i in todo[rank::world]:
            path, uri = files[i], uris[i]
            try:
                result = diarizer.diarize(
                    path, num_speakers, min_speakers, max_speakers
                )
                write_rttm(out / f"{uri}.rttm", uri, result.turns)
                entry = result.as_dict()
            except (AudioError, ClusteringError) as err:
                reason = getattr(err, "reason", str(err))
                entry = {"file": str(path), "uri": uri, "error": reason}
                (out / f"{uri}.rttm").unlink(missing_ok=True)
            record = {"job": job, "stamp": _stamp(path), "result": entry}
            write_text_atomic(records / f"{uri}.json", json.dumps(record))
            bar.update(min(world, len(files) - bar.n))
    barrier()
    if rank != 0:
        return DiarizationJob([], resumed, False)
    results = []
    for i, (f, uri) in enumerate(zip(files, uris)):
        stored = done.get(i) or _finished(
            records / f"{uri}.json", job, f, out / f"{uri}.rttm"
        )
        if stored is None:  # a rank that died leaves its share without records
            stored = {
                "file": str(f),
                "uri": uri,
                "error": "not diarized (a rank failed)",
            }
        results.append(stored)
    lines = [f"{r['file']}\t{r['error']}\n" for r in results if "error" in r]
    if lines:
        write_text_atomic(out / ERRORS_FILE, "".join(lines))
    else:
        (out / ERRORS_FILE).unlink(missing_ok=True)
    return DiarizationJob(results, resumed, True)
