"""Embedding a corpus: streamed to disk, resumable, sharded across torchrun ranks.

:func:`extract_embeddings` is what ``eres2net embed`` runs. Results reach the
disk batch by batch (:mod:`speechbrain_eres2net.dataio.embedding_store`), so
memory does not grow with the number of files and a killed run loses at most
the batches in flight; rerunning the same command skips the finished files
and ends with the output an uninterrupted run writes. Under ``torchrun``
each rank embeds its share of the unfinished files on its own device and
writes its own part; rank 0 merges the parts into the one output once every
rank is done, checking that every input has an embedding or a reason.

Coordination uses ``torch.distributed`` (gloo: barriers only, no tensors),
so the same command runs on one machine or many with torchrun's rendezvous;
the output folder must then be shared by all machines.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Optional

import torch
import torch.distributed as dist

from ..dataio.embedding_store import (
    PartsFolder,
    check_output,
    job_digest,
    merge_parts,
    output_format,
)
from ..paths import PathLike
from ..settings import default
from .embedder import SpeakerEmbedder

logger = logging.getLogger(__name__)


class Extraction(NamedTuple):
    """What :func:`extract_embeddings` did (rank 0's view under torchrun)."""

    files: int
    """Inputs of the job."""
    embedded: int
    """Inputs with an embedding."""
    errors: dict[str, str]
    """Key -> reason of each input without one (rank 0 only)."""
    written: list[Path]
    """Output files (rank 0 only)."""
    resumed: int
    """Inputs found finished by an earlier run."""
    merged: bool
    """This process wrote the output (rank 0)."""


def distributed_context() -> tuple[int, int, int]:
    """(rank, world size, local rank), starting ``torch.distributed`` (gloo)
    when torchrun launched this process and it has not started yet.

    Example
    -------
    >>> distributed_context()  # not under torchrun
    (0, 1, 0)
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        hours = float(default("rank_wait_hours"))
        dist.init_process_group(
            "gloo", timeout=datetime.timedelta(seconds=hours * 3600)
        )
    if dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return dist.get_rank(), dist.get_world_size(), local
    return 0, 1, 0


def rank_device(requested: Optional[str], local_rank: int) -> Optional[str]:
    """``cuda:LOCAL_RANK`` for a rank where CUDA is there and the device is
    left to choose (None or ``"cuda"``); otherwise ``requested``.

    Example
    -------
    >>> rank_device("cpu", 1)
    'cpu'
    """
    if requested in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank % torch.cuda.device_count()}"
    return requested


def barrier() -> None:
    """Waits for every rank (nothing to wait for outside torchrun)."""
    if dist.is_initialized():
        dist.barrier()


def extract_embeddings(
    embedder: SpeakerEmbedder,
    files: Sequence[PathLike],
    out: PathLike,
    fmt: Optional[str] = None,
    errors_file: Optional[PathLike] = None,
    *,
    batch_size: Optional[int] = None,
    batch_seconds: Optional[float] = None,
    num_workers: Optional[int] = None,
    progress: bool = True,
) -> Extraction:
    """Embeds files into one output, resumably and (under torchrun) in parallel.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        Any model folder's embedder (on this rank's device).
    files : sequence
        Audio files; their paths (as given) are the output's keys.
    out : path
        ``.npz``, or ``.ark`` / ``.scp`` (Kaldi binary float vectors).
    fmt : str, optional
        ``"npz"`` or ``"kaldi"`` (default: from the suffix of ``out``).
    errors_file : path, optional
        Where the files without an embedding are listed with the reason
        (default ``<out>.errors.txt``).
    batch_size, batch_seconds, num_workers : optional
        See :meth:`SpeakerEmbedder.iter_files`.
    progress : bool
        A progress bar (files/s, ETA) on rank 0.

    Returns
    -------
    Extraction
        Counts, and on rank 0 the output files and errors.

    Raises
    ------
    ValueError
        An output that cannot be written (before any work), or the
        ``<out>.parts`` journal of another job.

    Example
    -------
    >>> import tempfile, numpy as np, soundfile
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> d = Path(tempfile.mkdtemp())
    >>> noise = np.random.default_rng(0).normal(size=8000) * 0.1
    >>> soundfile.write(d / "a.wav", noise, 16000)
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    >>> embedder = SpeakerEmbedder(KaldiFbank(), None, model, vad="off")
    >>> done = extract_embeddings(embedder, [d / "a.wav", d / "b.wav"], d / "e.npz",
    ...                           progress=False)
    >>> done.embedded, done.errors
    (1, {'...b.wav': 'file not found'})
    >>> sorted(p.name for p in d.iterdir())
    ['a.wav', 'e.npz', 'e.npz.errors.txt']
    """
    keys = [str(f) for f in files]
    fmt = output_format(out, fmt)
    errors_file = Path(errors_file or f"{out}.errors.txt")
    check_output(out, fmt, keys, errors_file)
    rank, world, _ = distributed_context()
    parts = PartsFolder(f"{out}.parts")
    digest = job_digest(keys)
    if rank == 0:
        parts.prepare(digest, len(keys), fmt)
    barrier()
    parts.check(digest, fmt)
    finished = parts.finished(len(keys)).done()
    # Every rank reads the same journal before any rank writes to it.
    barrier()
    todo = [i for i in range(len(keys)) if not finished[i]]
    mine = todo[rank::world]
    resumed = len(keys) - len(todo)
    if resumed and rank == 0:
        logger.info("%d of %d file(s) done by an earlier run", resumed, len(keys))
    _embed_share(
        embedder,
        keys,
        mine,
        parts.writer(rank),
        progress=progress and rank == 0,
        total=len(keys),
        already=resumed,
        world=world,
        batch_size=batch_size,
        batch_seconds=batch_seconds,
        num_workers=num_workers,
    )
    barrier()
    if rank != 0:
        return Extraction(len(keys), 0, {}, [], resumed, False)
    written, errors = merge_parts(parts, keys, out, fmt, errors_file)
    return Extraction(
        len(keys), len(keys) - len(errors), errors, written, resumed, True
    )


def _embed_share(
    embedder: SpeakerEmbedder,
    keys: Sequence[str],
    mine: Sequence[int],
    writer,
    *,
    progress: bool,
    total: int,
    already: int,
    world: int,
    **options,
) -> None:
    """Embeds this rank's files, writing each batch as it finishes."""
    from tqdm import tqdm

    # The bar counts the whole job: this rank's progress times the ranks.
    with tqdm(
        total=total,
        initial=already,
        unit="file",
        disable=not progress,
        desc="embedding",
    ) as bar:
        for batch in embedder.iter_files(keys, mine, **options):
            writer.write(
                {r.index: r.embedding for r in batch if r.embedding is not None},
                {r.index: r.error for r in batch if r.embedding is None},
            )
            bar.update(min(len(batch) * world, total - bar.n))
