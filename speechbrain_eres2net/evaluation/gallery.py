"""Speaker galleries: enrolled speakers in one file, searched in bounded memory.

A :class:`SpeakerGallery` keeps, for every enrolled recording, its raw
embedding, its net speech and its path, grouped by speaker, with the
fingerprint of the model that made them
(:func:`~speechbrain_eres2net.inference.embedder.model_fingerprint`): a
speaker's model can be rebuilt with any scoring, and a gallery is never
searched with embeddings of another model. The file is an ``.npz`` of plain
arrays (no pickles), written atomically, with a format name and version.

Scoring a query against a speaker (:data:`SCORINGS`):

* ``mean``: cosine with the mean of the speaker's length-normalised
  embeddings (sherpa-onnx's and 3D-Speaker's choice);
* ``average``: the mean of the cosines with each recording;
* ``max``: the best cosine over the recordings;
* ``top2``: the mean of the two best cosines.

The benchmark (``python -m benchmarks --only identification``) chose the
default, ``gallery_scoring`` in ``hparams/verification.yaml``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from ..dataio.files import atomic_open
from ..paths import PathLike
from .scoring import unit_length

logger = logging.getLogger(__name__)

GALLERY_FORMAT = "speechbrain-eres2net speaker gallery"
GALLERY_VERSION = 1
SCORINGS = ("mean", "average", "max", "top2")
ARRAYS = {"meta", "speakers", "owner", "embeddings", "speech", "recordings"}


class GalleryError(ValueError):
    """A gallery that cannot be used as asked (one line for the user)."""


class EnrolledSpeaker(NamedTuple):
    """One speaker of a gallery."""

    name: str
    recordings: int
    seconds: float
    """Net speech of its recordings."""


class SpeakerGallery:
    """Enrolled speakers: each recording's embedding, net speech and path.

    Arguments
    ---------
    model : str
        Fingerprint of the model whose embeddings the gallery holds.
    dim : int
        Embedding size.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> gallery = SpeakerGallery("abc", 4)
    >>> alice, bob = rng.normal(size=4), rng.normal(size=4)
    >>> gallery.enroll("alice", [alice, alice + 0.1], [3.0, 2.0], ["a1", "a2"])
    >>> gallery.enroll("bob", [bob], [4.0], ["b1"])
    >>> [(s.name, s.recordings, s.seconds) for s in gallery.summary()]
    [('alice', 2, 5.0), ('bob', 1, 4.0)]
    >>> best, scores = gallery.search(alice[None], top_k=2)
    >>> [gallery.speakers[i] for i in best[0]]
    ['alice', 'bob']
    """

    def __init__(self, model: str, dim: int) -> None:
        self.model = str(model)
        self.dim = int(dim)
        self.speakers: list[str] = []
        self.owner = np.zeros(0, dtype=np.int32)
        self.embeddings = np.zeros((0, self.dim), dtype=np.float32)
        self.speech = np.zeros(0, dtype=np.float32)
        self.recordings: list[str] = []
        self._models: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------ contents

    def __len__(self) -> int:
        return len(self.speakers)

    def enroll(
        self,
        name: str,
        embeddings: Sequence[np.ndarray],
        seconds: Sequence[float],
        recordings: Sequence[str],
        min_speech_seconds: float = 0.0,
    ) -> None:
        """Creates ``name`` or adds recordings to it.

        Raises
        ------
        GalleryError
            An empty name, a wrong embedding size, or less net speech in
            the speaker's recordings (old and new) than ``min_speech_seconds``.
        """
        name = str(name).strip()
        if not name:
            raise GalleryError("--speaker: a speaker needs a name")
        vectors = np.asarray(embeddings, dtype=np.float32).reshape(len(recordings), -1)
        if vectors.shape[1] != self.dim:
            raise GalleryError(
                f"embeddings of size {vectors.shape[1]}, the gallery holds {self.dim}"
            )
        index = self.speakers.index(name) if name in self.speakers else len(self)
        before = float(self.speech[self.owner == index].sum())
        total = before + float(np.sum(seconds))
        if total < min_speech_seconds:
            raise GalleryError(
                f"speaker {name!r}: {total:.2f} s of net speech in "
                f"{int(np.count_nonzero(self.owner == index)) + len(recordings)} "
                f"recording(s), less than the {min_speech_seconds:g} s an enrollment "
                "needs (min_enroll_speech_seconds; --min-enroll-seconds to change)"
            )
        if index == len(self):
            self.speakers.append(name)
        self.owner = np.concatenate([self.owner, np.full(len(recordings), index)])
        self.embeddings = np.concatenate([self.embeddings, vectors])
        self.speech = np.concatenate(
            [self.speech, np.asarray(seconds, dtype=np.float32)]
        )
        self.recordings += [str(r) for r in recordings]
        self._grouped()

    def remove(self, name: str) -> None:
        """Removes a speaker and its recordings."""
        if name not in self.speakers:
            raise GalleryError(f"no speaker {name!r} in the gallery")
        index = self.speakers.index(name)
        keep = self.owner != index
        self.owner = self.owner[keep] - (self.owner[keep] > index)
        self.embeddings = self.embeddings[keep]
        self.speech = self.speech[keep]
        self.recordings = [r for r, k in zip(self.recordings, keep) if k]
        del self.speakers[index]
        self._models.clear()

    def _grouped(self) -> None:
        """Recordings sorted by speaker (stable), which the scoring needs."""
        order = np.argsort(self.owner, kind="stable")
        self.owner = self.owner[order].astype(np.int32)
        self.embeddings = self.embeddings[order]
        self.speech = self.speech[order]
        self.recordings = [self.recordings[i] for i in order]
        self._models.clear()

    def summary(self) -> list[EnrolledSpeaker]:
        """Each speaker's name, number of recordings and net speech."""
        counts = np.bincount(self.owner, minlength=len(self))
        seconds = np.bincount(self.owner, weights=self.speech, minlength=len(self))
        return [
            EnrolledSpeaker(n, int(c), round(float(s), 2))
            for n, c, s in zip(self.speakers, counts, seconds)
        ]

    def speaker_seconds(self) -> np.ndarray:
        """(speakers,) net speech of each speaker's recordings (cached)."""
        if "seconds" not in self._models:
            self._models["seconds"] = np.bincount(
                self.owner, weights=self.speech, minlength=len(self)
            )
        return self._models["seconds"]

    def speaker_norms(self) -> np.ndarray:
        """(speakers,) mean raw embedding norm of each speaker's recordings
        (cached)."""
        if "norms" not in self._models:
            norms = np.linalg.norm(self.embeddings, axis=1)
            counts = np.maximum(np.bincount(self.owner, minlength=len(self)), 1)
            sums = np.bincount(self.owner, weights=norms, minlength=len(self))
            self._models["norms"] = sums / counts
        return self._models["norms"]

    # ------------------------------------------------------------- scoring

    def _starts(self) -> np.ndarray:
        """(speakers,) index of each speaker's first recording (cached)."""
        if "starts" not in self._models:
            self._models["starts"] = np.searchsorted(self.owner, np.arange(len(self)))
        return self._models["starts"]

    def _units(self) -> np.ndarray:
        """(recordings, dim) unit embeddings (cached)."""
        if "units" not in self._models:
            self._models["units"] = unit_length(self.embeddings).astype(np.float32)
        return self._models["units"]

    def speaker_models(self) -> np.ndarray:
        """(speakers, dim) unit mean of each speaker's unit embeddings."""
        if "mean" not in self._models:
            sums = np.add.reduceat(self._units(), self._starts(), axis=0)
            self._models["mean"] = unit_length(sums).astype(np.float32)
        return self._models["mean"]

    def search(
        self,
        queries: np.ndarray,
        top_k: int = 5,
        scoring: str = "mean",
        chunk: int = 8192,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``top_k`` best speakers of each query, best first.

        Scores are computed ``chunk`` speakers (or their recordings) at a
        time, so memory is (queries x chunk) whatever the gallery's size.

        Returns
        -------
        indices : np.ndarray
            (queries, k) speaker indices, ``k = min(top_k, speakers)``.
        scores : np.ndarray
            (queries, k) their scores.
        """
        if scoring not in SCORINGS:
            raise GalleryError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        if not len(self):
            raise GalleryError("the gallery has no speakers; enroll some first")
        queries = unit_length(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
        k = min(int(top_k), len(self))
        best_i = np.zeros((len(queries), 0), dtype=np.int64)
        best_s = np.zeros((len(queries), 0), dtype=np.float32)
        starts = self._starts()
        for first in range(0, len(self), chunk):
            last = min(len(self), first + chunk)
            scores = self._chunk_scores(queries, scoring, starts, first, last)
            cand_i = np.concatenate(
                [best_i, np.broadcast_to(np.arange(first, last), scores.shape)], axis=1
            )
            cand_s = np.concatenate([best_s, scores], axis=1)
            if cand_s.shape[1] <= k:
                best_i, best_s = cand_i, cand_s
                continue
            keep = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
            best_i = np.take_along_axis(cand_i, keep, axis=1)
            best_s = np.take_along_axis(cand_s, keep, axis=1)
        order = np.argsort(-best_s, axis=1, kind="stable")
        return np.take_along_axis(best_i, order, 1), np.take_along_axis(
            best_s, order, 1
        )

    def _chunk_scores(self, queries, scoring, starts, first, last) -> np.ndarray:
        """(queries, last - first) scores of speakers ``first:last``."""
        # (rows @ queries.T).T: numpy's BLAS call is several times faster
        # this way round than queries @ rows.T for a few queries.
        if scoring == "mean":
            return (self.speaker_models()[first:last] @ queries.T).T
        begin = starts[first]
        end = starts[last] if last < len(self) else len(self.owner)
        cosines = (self._units()[begin:end] @ queries.T).T
        offsets = starts[first:last] - begin
        if scoring == "average":
            counts = np.diff(np.append(offsets, end - begin))
            return np.add.reduceat(cosines, offsets, axis=1) / counts
        if scoring == "max":
            return np.maximum.reduceat(cosines, offsets, axis=1)
        # top2: the mean of each speaker's two best cosines (one if alone).
        out = np.empty((len(queries), last - first), dtype=np.float32)
        bounds = np.append(offsets, end - begin)
        for j in range(last - first):
            block = cosines[:, bounds[j] : bounds[j + 1]]
            if block.shape[1] > 2:
                block = -np.partition(-block, 1, axis=1)[:, :2]
            out[:, j] = block.mean(axis=1)
        return out

    # ------------------------------------------------------------- storage

    def save(self, path: PathLike) -> None:
        """Writes the gallery atomically (the old file stays whole until the
        new one is complete)."""
        meta = {
            "format": GALLERY_FORMAT,
            "version": GALLERY_VERSION,
            "model": self.model,
            "dim": self.dim,
        }
        with atomic_open(path, "wb") as f:
            np.savez(
                f,
                meta=np.array(json.dumps(meta)),
                speakers=np.array(self.speakers, dtype=str),
                owner=self.owner,
                embeddings=self.embeddings,
                speech=self.speech,
                recordings=np.array(self.recordings, dtype=str),
            )

    @classmethod
    def load(cls, path: PathLike, model: Optional[str] = None) -> SpeakerGallery:
        """Reads a gallery; with ``model``, refuses one of another model.

        Raises
        ------
        GalleryError
            Not a gallery file, a newer version, or another model's.
        """
        path = Path(path)
        if not path.is_file():
            raise GalleryError(f"--gallery {path}: file not found")
        not_gallery = f"--gallery {path}: not a speaker gallery"
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise GalleryError(f"{not_gallery} ({err})") from err
        if not set(arrays) >= ARRAYS:
            raise GalleryError(not_gallery)
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != GALLERY_FORMAT:
            raise GalleryError(not_gallery)
        if int(meta["version"]) > GALLERY_VERSION:
            raise GalleryError(
                f"--gallery {path}: version {meta['version']} is newer than this "
                f"package reads ({GALLERY_VERSION}); upgrade speechbrain-eres2net"
            )
        if model is not None and meta["model"] != model:
            raise GalleryError(
                f"--gallery {path} was enrolled with another model (fingerprint "
                f"{meta['model']}, this model {model}); enroll again with this model"
            )
        gallery = cls(meta["model"], int(meta["dim"]))
        gallery.speakers = [str(s) for s in arrays["speakers"]]
        gallery.owner = arrays["owner"].astype(np.int32)
        gallery.embeddings = arrays["embeddings"].astype(np.float32)
        gallery.speech = arrays["speech"].astype(np.float32)
        gallery.recordings = [str(r) for r in arrays["recordings"]]
        return gallery
