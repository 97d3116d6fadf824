"""Engine graphs built once per model and kept on disk.

On a CPU without native bf16 the fast path runs an ONNX graph of the folded
model (:mod:`.fastpath`); tracing it with the TorchScript exporter took about
7 s of every start-up. :func:`cached_graph` keeps each graph in a cache
folder, under a key made of the folded model's fingerprint
(:func:`~.fingerprint.model_fingerprint`), its layers, the example length,
:data:`ENGINE_VERSION`, the ONNX opset and the torch version: a model
changes its key, so an entry is never stale. Entries are written atomically
and carry a SHA-256 of the graph; one that cannot be read or does not match
is built again, never an error, and a cache folder that cannot be written
only costs the time of building.

The folder is ``$ERES2NET_CACHE`` where set, else
``$XDG_CACHE_HOME/speechbrain_eres2net`` (``~/.cache/speechbrain_eres2net``).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..dataio.files import atomic_path
from .fingerprint import model_fingerprint

logger = logging.getLogger(__name__)

# Changes whenever the graph a model gives changes (folding, export options):
# entries of another version are never read.
ENGINE_VERSION = "graph-1"
CACHE_ENV = "ERES2NET_CACHE"
_MAGIC = b"speechbrain-eres2net graph\n"


def cache_dir() -> Path:
    """The folder of cached graphs (``$ERES2NET_CACHE``, else the user cache).

    Example
    -------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"ERES2NET_CACHE": "/tmp/c"}):
    ...     cache_dir()
    PosixPath('/tmp/c')
    """
    folder = os.environ.get(CACHE_ENV)
    if folder:
        return Path(folder).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "speechbrain_eres2net"


def graph_key(model: nn.Module, *parts: object) -> str:
    """The cache key of ``model``'s graph, with whatever else shapes it.

    Example
    -------
    >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> graph_key(a, 17) == graph_key(a, 17), graph_key(a, 17) == graph_key(b, 17)
    (True, False)
    """
    sha = hashlib.sha256()
    for part in (ENGINE_VERSION, torch.__version__, model_fingerprint(model)):
        sha.update(f"{part}\n".encode())
    # The layers' settings (kernel sizes, strides) shape the graph as well.
    sha.update(repr(model).encode())
    for part in parts:
        sha.update(f"\n{part!r}".encode())
    return sha.hexdigest()[:32]


def _read(path: Path) -> Optional[bytes]:
    """The graph stored at ``path``; None when absent, unreadable or damaged."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, _, rest = data.partition(b"\n" * 2)
    if not head.startswith(_MAGIC):
        return None
    digest = head[len(_MAGIC) :].decode("ascii", "replace")
    if hashlib.sha256(rest).hexdigest() != digest:
        return None
    return rest


def cached_graph(build: Callable[[], bytes], key: str, kind: str = "onnx") -> bytes:
    """The graph of ``key`` from the cache, or ``build()`` stored there.

    Arguments
    ---------
    build : callable
        Makes the graph (serialised bytes) when the cache has none.
    key : str
        :func:`graph_key` of the model and of what else shapes the graph.
    kind : str
        File suffix, the graph's format.

    Returns
    -------
    bytes
        The graph.

    Example
    -------
    >>> import tempfile
    >>> from unittest import mock
    >>> calls = []
    >>> def build():
    ...     calls.append(1)
    ...     return b"graph bytes"
    >>> with mock.patch.dict(os.environ, {"ERES2NET_CACHE": tempfile.mkdtemp()}):
    ...     first, again = cached_graph(build, "k"), cached_graph(build, "k")
    >>> first == again == b"graph bytes", len(calls)
    (True, 1)
    """
    path = cache_dir() / f"{key}.{kind}"
    graph = _read(path)
    if graph is not None:
        logger.debug("engine graph read from %s", path)
        return graph
    if path.exists():
        logger.warning(
            "engine graph cache entry %s is damaged: building it again", path
        )
    graph = build()
    digest = hashlib.sha256(graph).hexdigest().encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(_MAGIC + digest + b"\n" * 2 + graph)
    except OSError as err:
        # A read-only home or a full disk costs the build time, nothing else.
        logger.warning("engine graph not cached in %s: %s", path.parent, err)
    return graph
