"""Atomic file and folder writes: readers never see half-written output.

Every file the package writes (CSVs, trial lists, scores, embeddings, plots,
ONNX graphs, model folders) goes through one of these helpers: the content
is written under a temporary name next to its destination and renamed over
it only once complete, so a crash or an exception leaves either the old
output or none, never a truncated one.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..paths import PathLike


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``path``; renames it over ``path`` on success.

    For writers that want a file name rather than a handle (``torch.save``,
    ``torch.onnx.export``). If the block raises, the temporary file is
    removed and any previous ``path`` is left intact.

    Example
    -------
    >>> target = Path(tempfile.mkdtemp()) / "out.bin"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_bytes(b"ok")
    >>> target.read_bytes(), tmp.exists()
    (b'ok', False)
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        # mkstemp makes the file private (0600); give it the usual mode.
        os.chmod(tmp, 0o666 & ~_current_umask())
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Opens a temporary file next to ``path``; renames it over ``path`` on success.

    The data is flushed to disk before the rename. If the block raises, the
    temporary file is removed and any previous ``path`` is left intact.

    Example
    -------
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_open(target) as f:
    ...     _ = f.write("hello")
    >>> target.read_text()
    'hello'
    """
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` atomically, UTF-8 encoded.

    Example
    -------
    >>> target = Path(tempfile.mkdtemp()) / "a.json"
    >>> write_text_atomic(target, "{}")
    >>> target.read_text()
    '{}'
    """
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(text)


@contextlib.contextmanager
def atomic_folder(path: PathLike) -> Iterator[Path]:
    """Yields an empty temporary folder that replaces ``path`` on success.

    An existing ``path`` is swapped out only once the new folder is
    complete, and then removed; if the block raises, the temporary folder is
    removed and ``path`` is left as it was.

    Example
    -------
    >>> out = Path(tempfile.mkdtemp()) / "model"
    >>> with atomic_folder(out) as tmp:
    ...     _ = (tmp / "hyperparams.yaml").write_text("a: 1")
    >>> sorted(p.name for p in out.iterdir())
    ['hyperparams.yaml']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        os.chmod(tmp, 0o777 & ~_current_umask())  # mkdtemp's folder is 0700
        yield tmp
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
