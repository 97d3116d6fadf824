"""Data preparation for VoxCeleb-style corpora: CSVs of a corpus in the VoxCeleb layout.

A corpus root holds ``wav/<speaker>/<session>/<utt>.wav`` (VoxCeleb1,
converted VoxCeleb2, or one's own speakers); the root may also be the ``wav``
folder itself. :func:`prepare_voxceleb` writes SpeechBrain CSVs with the
columns of SpeechBrain's own VoxCeleb recipe (``ID, duration, wav, start,
stop, spk_id``, start/stop in samples), one row per utterance, reading only
the audio headers, in parallel. It records the options it used in a manifest
so that a rerun with the same options does nothing, and writes every file
atomically (a crash never leaves a half-written CSV).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..paths import PathLike
from .audio import AUDIO_SUFFIXES, AudioError, check_audio_file
from .files import atomic_open, write_text_atomic
from .trials import missing_trial_files_error, read_trials_indexed

logger = logging.getLogger(__name__)


CSV_COLUMNS = ("ID", "duration", "wav", "start", "stop", "spk_id")


MANIFEST_NAME = "prepare_manifest.json"


UNREADABLE_REPORT = "unreadable_audio.txt"


# Bump when the output format changes so old manifests no longer match.
MANIFEST_VERSION = 1


_HEADER_CHUNK = 256


# Seconds per header above which reading waits on storage, not the CPU
# (a cached local header parses in ~35 us here).
_IO_BOUND_SECONDS = 200e-6


def write_csv_atomic(path: PathLike, rows: Sequence[Sequence[object]]) -> None:
    """Writes a SpeechBrain CSV (header :data:`CSV_COLUMNS`) atomically.

    Example
    -------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "train.csv"
    >>> write_csv_atomic(target, [["s--v--u", 1.0, "/d/s/v/u.wav", 0, 16000, "s"]])
    >>> target.read_text().splitlines()[1]
    's--v--u,1.0,/d/s/v/u.wav,0,16000,s'
    """
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)


def find_wav_root(folder: PathLike) -> Path:
    """The folder holding ``<speaker>/...`` audio: ``folder/wav`` or ``folder``.

    Example
    -------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "wav").mkdir()
    >>> find_wav_root(root) == root / "wav"
    True
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    wav = folder / "wav"
    return wav if wav.is_dir() else folder


def scan_audio(
    wav_root: PathLike, suffixes: Sequence[str] = AUDIO_SUFFIXES
) -> list[str]:
    """Sorted POSIX paths, relative to ``wav_root``, of audio files under it.

    ``os.scandir`` keeps the walk cheap (no ``stat`` per file) on folders
    with a million files.

    Example
    -------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "spk1" / "s1").mkdir(parents=True)
    >>> (root / "spk1" / "s1" / "u1.wav").touch()
    >>> (root / "spk1" / "s1" / "notes.txt").touch()
    >>> scan_audio(root)
    ['spk1/s1/u1.wav']
    """
    suffixes = tuple(s.lower() for s in suffixes)
    found: list[str] = []
    stack = [("", os.fspath(wav_root))]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir():
                    stack.append((prefix + entry.name + "/", entry.path))
                elif entry.name.lower().endswith(suffixes):
                    found.append(prefix + entry.name)
    found.sort()
    return found


def _read_header_chunk(paths: Sequence[str]) -> list[tuple[int, int] | str]:
    out: list[tuple[int, int] | str] = []
    for path in paths:
        try:
            info = check_audio_file(path)
            out.append((info.frames, info.samplerate))
        except AudioError as err:
            out.append(err.reason.replace("\n", " "))
    return out


def read_headers(
    paths: Sequence[PathLike], num_workers: int = 2
) -> list[tuple[int, int] | str]:
    """(num_frames, sample_rate) of each audio file, or an error message.

    Reads only headers. The first chunk of files is read in this thread and
    timed: when headers come from the page cache or a local disk (under
    ``_IO_BOUND_SECONDS`` a file) the rest is read here too, because parsing
    a header is too short a call for threads to pay (2 threads ran 2.4x
    slower than 1 on cached files: GIL hand-offs). Slower reads mean waiting
    on storage (network file systems), and then ``num_workers`` threads
    overlap the waits.

    Example
    -------
    >>> import tempfile, soundfile as sf
    >>> d = Path(tempfile.mkdtemp())
    >>> sf.write(d / "a.wav", np.zeros(1600), 16000)
    >>> (d / "b.wav").write_bytes(b"not audio")
    9
    >>> ok, bad = read_headers([d / "a.wav", d / "b.wav"])
    >>> ok
    (1600, 16000)
    >>> bad.startswith("not a readable audio file") and "b.wav" in bad
    True
    """
    names = [os.fspath(p) for p in paths]
    chunks = [names[i : i + _HEADER_CHUNK] for i in range(0, len(names), _HEADER_CHUNK)]
    if not chunks:
        return []
    start = time.perf_counter()
    results = _read_header_chunk(chunks[0])
    per_file = (time.perf_counter() - start) / len(chunks[0])
    rest = chunks[1:]
    if num_workers <= 1 or len(rest) <= 1 or per_file < _IO_BOUND_SECONDS:
        for chunk in rest:
            results += _read_header_chunk(chunk)
        return results
    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        for part in pool.map(_read_header_chunk, rest):
            results += part
    return results


def utterance_id(relative_path: str) -> str:
    """SpeechBrain VoxCeleb-style ID: ``spk--session--utt`` without suffix.

    Example
    -------
    >>> utterance_id("id10001/1zcIwhmdeo4/00001.wav")
    'id10001--1zcIwhmdeo4--00001'
    """
    stem = relative_path.rsplit(".", 1)[0]
    return stem.replace("/", "--")


def _speaker_of(relative_path: str) -> str:
    return relative_path.split("/", 1)[0]


def _file_fingerprint(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def _manifest_matches(
    manifest_path: Path, options: dict, outputs: dict[str, str]
) -> bool:
    try:
        recorded = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        recorded.get("options") == options
        and recorded.get("outputs") == outputs
        and all(Path(p).is_file() for p in outputs.values())
    )


def _split_train_dev(
    rows_by_speaker: dict[str, list[list[object]]],
    split_ratio: tuple[int, int],
    seed: int,
) -> tuple[list[list[object]], list[list[object]]]:
    """Per-speaker utterance split; every speaker keeps a training utterance.

    Splitting inside each speaker (rather than over the pooled list) keeps
    every dev speaker known to the classifier, so dev accuracy is meaningful.
    """
    train_part, dev_part = split_ratio
    if train_part <= 0 or dev_part < 0:
        raise ValueError(
            f"split_ratio must be (train > 0, dev >= 0), got {split_ratio}"
        )
    dev_fraction = dev_part / (train_part + dev_part)
    rng = np.random.default_rng(seed)
    train: list[list[object]] = []
    dev: list[list[object]] = []
    for speaker in sorted(rows_by_speaker):
        rows = rows_by_speaker[speaker]
        order = rng.permutation(len(rows))
        n_dev = min(int(round(len(rows) * dev_fraction)), len(rows) - 1)
        dev.extend(rows[i] for i in sorted(order[:n_dev]))
        train.extend(rows[i] for i in sorted(order[n_dev:]))
    return train, dev


def prepare_voxceleb(
    data_folders: Union[PathLike, Sequence[PathLike]],
    save_folder: PathLike,
    verification_pairs_file: Optional[PathLike] = None,
    split_ratio: tuple[int, int] = (90, 10),
    exclude_trial_speakers: bool = True,
    num_workers: int = 2,
    seed: int = 1234,
) -> dict[str, str]:
    """Writes ``train.csv``, ``dev.csv`` and ``veri.csv`` for speaker recognition.

    Arguments
    ---------
    data_folders : path or list of paths
        Corpus roots holding ``wav/<speaker>/<session>/<utt>.wav`` (or the
        ``wav`` folders themselves). Speaker = first folder under ``wav``.
    save_folder : path
        Where the CSVs, the manifest and any report go (created if needed).
    verification_pairs_file : path, optional
        VoxCeleb trial list (paths relative to a root's ``wav`` folder). Its
        utterances go to ``veri.csv`` with the path as ID.
    split_ratio : (int, int)
        Train/dev proportions of each speaker's utterances. This default and
        ``seed``'s are those of SpeechBrain's ``prepare_voxceleb``; the
        recipe passes its YAML's values (``split_ratio: [98, 2]``).
    exclude_trial_speakers : bool
        Leave the speakers of the trial list out of train/dev (the VoxCeleb1
        protocol when training on VoxCeleb1 dev + test folders).
    num_workers : int
        Threads reading audio headers.
    seed : int
        Seed of the train/dev split.

    Returns
    -------
    dict
        ``{"train": path, "dev": path}`` plus ``"veri"`` with a trial list.

    Example
    -------
    >>> import tempfile, soundfile as sf
    >>> root = Path(tempfile.mkdtemp())
    >>> for spk in ("a", "b"):
    ...     (root / "wav" / spk / "s").mkdir(parents=True)
    ...     for i in range(4):
    ...         sf.write(root / "wav" / spk / "s" / f"{i}.wav", np.zeros(800), 16000)
    >>> out = prepare_voxceleb(root, root / "csv", split_ratio=(3, 1))
    >>> print(Path(out["dev"]).read_text().splitlines()[1].split(",")[-3:])
    ['0', '800', 'a']
    """
    if isinstance(data_folders, (str, os.PathLike)):
        data_folders = [data_folders]
    if not data_folders:
        raise ValueError("data_folders is empty: give at least one corpus root")
    roots = [find_wav_root(f).resolve() for f in data_folders]
    save = Path(save_folder)
    save.mkdir(parents=True, exist_ok=True)
    trials_path = Path(verification_pairs_file) if verification_pairs_file else None
    if trials_path is not None and not trials_path.is_file():
        raise FileNotFoundError(f"trial list not found: {trials_path}")

    options = {
        "version": MANIFEST_VERSION,
        "wav_roots": [str(r) for r in roots],
        "verification_pairs_file": _file_fingerprint(trials_path)
        if trials_path
        else None,
        "split_ratio": list(split_ratio),
        "exclude_trial_speakers": bool(exclude_trial_speakers),
        "seed": int(seed),
    }
    outputs = {"train": str(save / "train.csv"), "dev": str(save / "dev.csv")}
    if trials_path is not None:
        outputs["veri"] = str(save / "veri.csv")
    manifest_path = save / MANIFEST_NAME
    if _manifest_matches(manifest_path, options, outputs):
        logger.info("Data already prepared with the same options in %s; skipping", save)
        return outputs

    # Every audio file, keyed by its path relative to a wav root.
    located: dict[str, Path] = {}
    for root in roots:
        relative = scan_audio(root)
        if not relative:
            m4a = len(scan_audio(root, (".m4a",)))
            hint = (
                f"; found {m4a} .m4a files: convert them with convert_m4a.py"
                if m4a
                else ""
            )
            raise ValueError(
                f"no audio files (.wav/.flac) under {root}; expected "
                f"<root>/wav/<speaker>/<session>/<utt>.wav{hint}"
            )
        for rel in relative:
            if rel in located:
                raise ValueError(
                    f"{rel} exists under two data folders ({located[rel]} and {root}); "
                    "utterance IDs would clash"
                )
            located[rel] = root

    trial_files: list[str] = []
    trial_speakers: set[str] = set()
    if trials_path is not None:
        trial_files = sorted(read_trials_indexed(trials_path)[1])
        missing = [p for p in trial_files if p not in located]
        if missing:
            raise missing_trial_files_error(missing, trials_path, roots)
        if exclude_trial_speakers:
            trial_speakers = {_speaker_of(p) for p in trial_files}

    train_files = [rel for rel in located if _speaker_of(rel) not in trial_speakers]
    needed = sorted(set(train_files) | set(trial_files))
    # Plain strings: building a pathlib.Path per file cost more than reading
    # its header from the page cache.
    full = {r: os.path.join(located[r], r) for r in needed}
    headers = dict(zip(needed, read_headers([full[r] for r in needed], num_workers)))
    _report_unreadable(
        save, {Path(full[r]): h for r, h in headers.items() if isinstance(h, str)}
    )

    def row(rel: str, row_id: str) -> Optional[list[object]]:
        header = headers[rel]
        if isinstance(header, str):
            return None
        frames, rate = header
        return [
            row_id,
            round(frames / rate, 6),
            full[rel],
            0,
            frames,
            _speaker_of(rel),
        ]

    by_speaker: dict[str, list[list[object]]] = {}
    for rel in train_files:
        r = row(rel, utterance_id(rel))
        if r is not None:
            by_speaker.setdefault(r[-1], []).append(r)
    if not by_speaker:
        raise ValueError(
            f"no readable training audio in {', '.join(map(str, roots))} "
            f"(trial speakers excluded: {len(trial_speakers)}); "
            f"see {save / UNREADABLE_REPORT}"
        )
    train, dev = _split_train_dev(by_speaker, split_ratio, seed)
    write_csv_atomic(outputs["train"], train)
    write_csv_atomic(outputs["dev"], dev)
    if trials_path is not None:
        veri = [r for r in (row(rel, rel) for rel in trial_files) if r is not None]
        write_csv_atomic(outputs["veri"], veri)

    counts = {
        "train_utterances": len(train),
        "dev_utterances": len(dev),
        "train_speakers": len(by_speaker),
        "excluded_trial_speakers": len(trial_speakers),
    }
    manifest = {"options": options, "outputs": outputs, "counts": counts}
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    logger.info("Prepared %s in %s", counts, save)
    return outputs


def _report_unreadable(save: Path, errors: dict[Path, str]) -> None:
    report = save / UNREADABLE_REPORT
    if not errors:
        report.unlink(missing_ok=True)
        return
    lines = "".join(f"{path}\t{message}\n" for path, message in sorted(errors.items()))
    write_text_atomic(report, lines)
    message = f"{len(errors)} unreadable audio file(s) skipped; listed in {report}"
    logger.warning(message)
    warnings.warn(message, stacklevel=3)


def trial_utterances(trials_file: PathLike, data_folder: PathLike) -> dict[str, Path]:
    """Trial utterance ID -> audio path under ``<data_folder>/wav``.

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "wav" / "s" / "x").mkdir(parents=True)
    >>> for n in ("1", "2"):
    ...     _ = (d / "wav" / "s" / "x" / f"{n}.wav").write_bytes(b"")
    >>> _ = (d / "t.txt").write_text("1 s/x/1.wav s/x/2.wav\\n")
    >>> sorted(trial_utterances(d / "t.txt", d))
    ['s/x/1.wav', 's/x/2.wav']
    """
    names = read_trials_indexed(trials_file)[1]
    root = find_wav_root(data_folder)
    utterances = {u: root / u for u in sorted(names)}
    missing = [u for u, p in utterances.items() if not p.is_file()]
    if missing:
        raise missing_trial_files_error(missing, trials_file, [root])
    return utterances
