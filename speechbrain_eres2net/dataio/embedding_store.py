"""Embedding files that survive a killed run: a journal of parts, then one output.

``eres2net embed`` writes each finished batch at once to a *part* (a Kaldi
ark/scp pair through kaldiio, plus a tab-separated list of the files that
could not be embedded) inside ``<out>.parts/``. Each process of a run
(one per torchrun rank) writes its own part and every run opens new ones,
so nothing is ever appended after a half-written record. An scp line is
written after its ark record, so a line in an scp is a finished embedding;
an incomplete last line (the process was killed while writing it) is
ignored and that file is embedded again. When every input has an embedding
or a reason, :func:`merge_parts` writes the one output (``.npz`` or
``.ark`` + ``.scp``) in input order, atomically, and removes the parts: a
resumed run ends with the bytes of an uninterrupted one.

Memory: the journal keeps nothing in memory, and the merge streams the
vectors from the parts to the output one at a time (a per-file index of 12
bytes). Kaldi ark/scp, the field's format for corpora, stays flat; an
``.npz`` also holds its zip index (one entry a member, written last: about
450 bytes a file, 0.45 GB for a million files), so use ``.ark`` at that
scale.

The job (the input list's digest, its length, the format) is recorded in
``job.json``: parts of another job under the same ``--out`` are an error,
not silently mixed in.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, Optional

import kaldiio
import numpy as np
from kaldiio.matio import read_kaldi, write_array

from ..paths import PathLike
from .files import atomic_open, write_text_atomic

JOB_FILE = "job.json"
FORMATS = ("npz", "kaldi")


def output_format(out: PathLike, fmt: Optional[str] = None) -> str:
    """The format of an output: ``fmt`` or, when None, from the suffix.

    Example
    -------
    >>> output_format("emb.scp"), output_format("emb.npz"), output_format("e", "kaldi")
    ('kaldi', 'npz', 'kaldi')
    """
    if fmt is None:
        return "kaldi" if Path(out).suffix in (".ark", ".scp") else "npz"
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {fmt!r}")
    return fmt


def kaldi_paths(out: PathLike) -> tuple[Path, Path]:
    """``<base>.ark`` and ``<base>.scp`` of a Kaldi output.

    Example
    -------
    >>> [p.name for p in kaldi_paths("x/emb.scp")]
    ['emb.ark', 'emb.scp']
    """
    base = Path(out)
    if base.suffix in (".ark", ".scp"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".ark"), base.with_name(base.name + ".scp")


def output_files(out: PathLike, fmt: str) -> list[Path]:
    """The files an output of format ``fmt`` consists of."""
    return list(kaldi_paths(out)) if fmt == "kaldi" else [Path(out)]


def check_output(
    out: PathLike, fmt: str, keys: Sequence[str], errors: PathLike
) -> None:
    """Fails before any work on an output that could not be written, or
    whose keys (the inputs' paths) would not be unique.

    Raises
    ------
    ValueError
        One line naming the output or input and what is wrong with it.

    Example
    -------
    >>> check_output("/no/such/dir/e.npz", "npz", ["a"], "/tmp/e.err")
    Traceback (most recent call last):
    ...
    ValueError: --out /no/such/dir/e.npz: folder /no/such/dir does not exist
    """
    for path, option in [(p, "--out") for p in output_files(out, fmt)] + [
        (Path(errors), "--errors")
    ]:
        folder = path.parent
        if path.is_dir():
            raise ValueError(f"{option} {path}: is a folder, expected a file name")
        if not folder.is_dir():
            raise ValueError(f"{option} {path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{option} {path}: folder {folder} is not writable")
    first: dict[str, int] = {}
    for position, key in enumerate(keys, 1):
        if first.setdefault(key, position) != position:
            raise ValueError(
                f"inputs: {key} is given twice (input files {first[key]} and "
                f"{position}); its path is its key in --out, so give each file once"
            )
    if fmt == "kaldi":
        bad = next((k for k in keys if not k or any(c.isspace() for c in k)), None)
        if bad is not None:
            raise ValueError(
                f"--out {out}: Kaldi keys cannot contain whitespace, and the key "
                f"of {bad!r} would; use a .npz output"
            )


def job_digest(keys: Sequence[str]) -> str:
    """SHA-256 of the input list, which identifies a job."""
    sha = hashlib.sha256()
    for key in keys:
        sha.update(key.encode("utf-8", "surrogateescape") + b"\n")
    return sha.hexdigest()


class Finished(NamedTuple):
    """What the parts hold, by input index."""

    part: np.ndarray
    """(n,) int32 index into ``arks`` of each embedded input, else -1."""
    offset: np.ndarray
    """(n,) int64 byte offset of its vector in that ark."""
    arks: list[Path]
    errors: dict[int, str]
    """Input index -> why it has no embedding."""

    def done(self) -> np.ndarray:
        """(n,) bool: the input has an embedding or a reason."""
        done = self.part >= 0
        done[list(self.errors)] = True
        return done


class PartsFolder:
    """The ``<out>.parts/`` journal of one ``eres2net embed`` job.

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> parts = PartsFolder(d / "e.npz.parts")
    >>> parts.prepare(job_digest(["a", "b"]), 2, "npz")
    >>> with parts.writer(rank=0) as part:
    ...     part.write({0: np.ones(3, np.float32)}, {1: "file not found"})
    >>> finished = parts.finished(2)
    >>> finished.part.tolist(), finished.errors
    ([0, -1], {1: 'file not found'})
    """

    def __init__(self, folder: PathLike) -> None:
        self.folder = Path(folder)

    def prepare(self, digest: str, n_files: int, fmt: str) -> None:
        """Creates the folder and its job record unless they exist."""
        self.folder.mkdir(exist_ok=True)
        if not (self.folder / JOB_FILE).is_file():
            job = {"inputs_sha256": digest, "files": n_files, "format": fmt}
            write_text_atomic(self.folder / JOB_FILE, json.dumps(job) + "\n")

    def check(self, digest: str, fmt: str) -> None:
        """Refuses parts of another job (other inputs or format)."""
        job = json.loads((self.folder / JOB_FILE).read_text(encoding="utf-8"))
        if job["inputs_sha256"] != digest or job["format"] != fmt:
            raise ValueError(
                f"{self.folder} holds the parts of another embed job (other inputs "
                "or format); remove it, or rerun that job's command to finish it"
            )

    def writer(self, rank: int) -> PartWriter:
        """A new part of this process (never one written before)."""
        run = 0
        while any(self.folder.glob(f"rank{rank:03d}-run{run:03d}.*")):
            run += 1
        return PartWriter(self.folder / f"rank{rank:03d}-run{run:03d}")

    def _parts(self) -> list[Path]:
        return sorted(p.with_suffix("") for p in self.folder.glob("rank*-run*.scp"))

    def finished(self, n_files: int) -> Finished:
        """Every input the parts hold an embedding or a reason for."""
        part = np.full(n_files, -1, dtype=np.int32)
        offset = np.zeros(n_files, dtype=np.int64)
        arks: list[Path] = []
        for stem in self._parts():
            ark = stem.with_suffix(".ark")
            size = ark.stat().st_size if ark.is_file() else 0
            arks.append(ark)
            for line in _complete_lines(stem.with_suffix(".scp")):
                key, _, where = line.partition(" ")
                at = int(where.rpartition(":")[2])
                if at < size:
                    part[int(key)], offset[int(key)] = len(arks) - 1, at
        errors: dict[int, str] = {}
        for path in sorted(self.folder.glob("rank*-run*.errors.tsv")):
            for line in _complete_lines(path):
                key, _, reason = line.partition("\t")
                errors[int(key)] = reason
        for key in np.flatnonzero(part >= 0).tolist():
            errors.pop(key, None)  # embedded on a later run
        return Finished(part, offset, arks, errors)

    def remove(self) -> None:
        """Deletes the journal (after the output is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _complete_lines(path: Path) -> Iterator[str]:
    """Lines of a journal file that end in a newline (the last one may be
    half-written by a killed process)."""
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if line.endswith("\n"):
                yield line[:-1]


class PartWriter:
    """Appends finished batches to one part: ``.ark``/``.scp`` and errors."""

    def __init__(self, stem: Path) -> None:
        self.ark = stem.with_suffix(".ark")
        self.scp = stem.with_suffix(".scp")
        self.errors = stem.with_suffix(".errors.tsv")
        self.scp.touch()

    def write(
        self, embeddings: Mapping[int, np.ndarray], errors: Mapping[int, str]
    ) -> None:
        """One batch: kaldiio writes the ark records, then their scp lines."""
        if embeddings:
            vectors = {
                str(i): np.asarray(v, dtype=np.float32) for i, v in embeddings.items()
            }
            kaldiio.save_ark(str(self.ark), vectors, scp=str(self.scp), append=True)
        if errors:
            with open(self.errors, "a", encoding="utf-8") as f:
                f.write("".join(f"{i}\t{_one_line(r)}\n" for i, r in errors.items()))

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc) -> None:
        return None


def _one_line(reason: str) -> str:
    return " ".join(str(reason).split())


def merge_parts(
    parts: PartsFolder,
    keys: Sequence[str],
    out: PathLike,
    fmt: str,
    errors_file: PathLike,
) -> tuple[list[Path], dict[str, str]]:
    """Writes the one output of a finished job, in input order, then removes
    the parts.

    Arguments
    ---------
    parts : PartsFolder
        The job's journal.
    keys : sequence of str
        The inputs (their keys in the output), in order.
    out : path
        The output (``.npz``, or the base of ``.ark`` + ``.scp``).
    fmt : str
        ``"npz"`` or ``"kaldi"``.
    errors_file : path
        Receives ``<key>\\t<reason>`` lines when some inputs have no
        embedding (removed when none).

    Returns
    -------
    written : list of Path
        The output files (none when no input has an embedding).
    errors : dict
        Key -> reason of each input without an embedding.

    Raises
    ------
    RuntimeError
        Some inputs have neither an embedding nor a reason (a process of
        the job did not finish): the count check.
    """
    finished = parts.finished(len(keys))
    missing = np.flatnonzero(~finished.done())
    if missing.size:
        raise RuntimeError(
            f"count check failed: {missing.size} of {len(keys)} input(s) have neither "
            f"an embedding nor an error in {parts.folder} (e.g. {keys[missing[0]]}); "
            "rerun the same command to finish them"
        )
    embedded = np.flatnonzero(finished.part >= 0)
    vectors = _vectors(finished, embedded)
    written: list[Path] = []
    if embedded.size:
        if fmt == "kaldi":
            written = _write_kaldi(out, ((keys[i], v) for i, v in vectors))
        else:
            written = [_write_npz(out, ((keys[i], v) for i, v in vectors))]
    errors = {keys[i]: finished.errors[i] for i in sorted(finished.errors)}
    report = Path(errors_file)
    if errors:
        write_text_atomic(report, "".join(f"{k}\t{r}\n" for k, r in errors.items()))
    elif report.is_file():
        report.unlink()  # a stale report of an earlier run
    parts.remove()
    return written, errors


def _vectors(
    finished: Finished, embedded: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    """(input index, vector) in input order, one open file per part."""
    with contextlib.ExitStack() as stack:
        handles = {}
        for i in embedded.tolist():
            p = int(finished.part[i])
            if p not in handles:
                handles[p] = stack.enter_context(open(finished.arks[p], "rb"))
            handles[p].seek(int(finished.offset[i]))
            yield i, read_kaldi(handles[p])


def _write_npz(out: PathLike, items: Iterator[tuple[str, np.ndarray]]) -> Path:
    """An ``.npz`` written one member at a time (``np.savez``'s layout:
    ``<key>.npy`` entries), so memory does not grow with the file count."""
    out = Path(out)
    with (
        atomic_open(out, "wb") as f,
        zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        for key, vector in items:
            # A fixed timestamp: the same embeddings give the same bytes.
            entry = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w", force_zip64=True) as member:
                np.lib.format.write_array(
                    member, np.asarray(vector, dtype=np.float32), allow_pickle=False
                )
    return out


def _write_kaldi(out: PathLike, items: Iterator[tuple[str, np.ndarray]]) -> list[Path]:
    """``<base>.ark`` + ``<base>.scp`` of binary float vectors (kaldiio's
    record writer; the scp names the final ark, written under a temporary
    name and renamed)."""
    ark, scp = kaldi_paths(out)
    target = ark.resolve()
    with atomic_open(ark, "wb") as fa, atomic_open(scp, "w", encoding="utf-8") as fs:
        for key, vector in items:
            fa.write(f"{key} ".encode())
            fs.write(f"{key} {target}:{fa.tell()}\n")
            write_array(fa, np.asarray(vector, dtype=np.float32))
    return [ark, scp]
