"""Open-set identification: who among the enrolled speakers, or nobody.

A recording is scored against every speaker of a :class:`SpeakerGallery`;
the best ``top_k`` candidates get calibrated LLRs (the model folder's
``calibration.json``, with each side's net speech: the speaker's total and
the recording's). The answer is the Bayes decision between "one of the N
enrolled speakers" (prior ``p_enrolled``, spread evenly over them) and
"unknown": the best candidate is named when

    llr > log((1 - p_enrolled) / p_enrolled) + log(N)

and the recording is otherwise unknown. The ``log(N)`` term is the price of
asking N questions at once: with more speakers enrolled, a chance match is
likelier and the evidence must be stronger. Without a calibration the
folder's cosine threshold (or ``threshold``) decides instead.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from ..inference.embedder import SpeakerEmbedder
from ..paths import PathLike
from ..settings import default
from .calibration import Calibration, bayes_threshold
from .gallery import SpeakerGallery


@dataclass(frozen=True)
class Candidate:
    """One enrolled speaker as an answer to a recording."""

    speaker: str
    score: float
    llr: Optional[float]


@dataclass(frozen=True)
class Identification:
    """The answer for one recording: the speaker, or None (unknown)."""

    file: str
    speaker: Optional[str]
    candidates: list[Candidate] = field(default_factory=list)
    on: str = "llr"
    """``"llr"`` (Bayes decision) or ``"score"`` (cosine threshold)."""
    threshold: float = 0.0
    error: Optional[str] = None
    """Why the recording got no answer (e.g. too little speech)."""

    def as_dict(self) -> dict:
        """``{"file", "speaker", "on", "threshold", "candidates": [{"speaker",
        "score", "llr"}]}``: the answer, the rule that decided it (``on``) and
        the threshold the best candidate had to beat; a recording that got no
        answer has ``"error"`` (why) instead of ``on`` and ``threshold``.

        Example
        -------
        >>> Identification("a.wav", None, [Candidate("bob", 0.21, -3.5)],
        ...                "llr", 2.3).as_dict()["on"]
        'llr'
        >>> sorted(Identification("b.wav", None, error="no speech").as_dict())
        ['candidates', 'error', 'file', 'speaker']
        """
        out: dict = {"file": self.file, "speaker": self.speaker}
        if self.error is None:
            out.update(on=self.on, threshold=round(float(self.threshold), 6))
        out["candidates"] = [asdict(c) for c in self.candidates]
        if self.error is not None:
            out["error"] = self.error
        return out

    def describe(self) -> str:
        """One line for people.

        Example
        -------
        >>> Identification("a.wav", None, [Candidate("bob", 0.21, -3.5)],
        ...                "llr", 2.3).describe()
        'a.wav -> unknown (best: bob score 0.2100 llr -3.500 <= 2.300)'
        """
        if self.error is not None:
            return f"{self.file} -> no answer: {self.error}"
        best = self.candidates[0]
        if self.speaker is not None:
            best = next(c for c in self.candidates if c.speaker == self.speaker)
        llr = "" if best.llr is None else f" llr {best.llr:.3f}"
        if self.speaker is None:
            return (
                f"{self.file} -> unknown (best: {best.speaker} score "
                f"{best.score:.4f}{llr} <= {self.threshold:.3f})"
            )
        return (
            f"{self.file} -> {best.speaker} (score {best.score:.4f}{llr} > "
            f"{self.threshold:.3f})"
        )


class Identifier:
    """Identifies recordings among a gallery's speakers, open-set.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        The model that enrolled the gallery (checked by fingerprint).
    gallery : SpeakerGallery
        The enrolled speakers.
    calibration : Calibration, optional
        Score -> LLR map of the model folder.
    scoring : str, optional
        How a recording is scored against a speaker (default:
        ``gallery_scoring`` of ``hparams/verification.yaml``).
    p_enrolled : float, optional
        Prior that a recording's speaker is enrolled (default:
        ``p_enrolled``).
    threshold : float, optional
        A cosine threshold that overrides the Bayes decision.
    """

    def __init__(
        self,
        embedder: SpeakerEmbedder,
        gallery: SpeakerGallery,
        calibration: Optional[Calibration] = None,
        scoring: Optional[str] = None,
        p_enrolled: Optional[float] = None,
        threshold: Optional[float] = None,
    ) -> None:
        self.embedder = embedder
        self.gallery = gallery
        self.calibration = calibration
        self.scoring = str(default("gallery_scoring") if scoring is None else scoring)
        self.p_enrolled = float(
            default("p_enrolled") if p_enrolled is None else p_enrolled
        )
        self.threshold = threshold
        if threshold is None and calibration is None and embedder.threshold is None:
            raise ValueError(
                "the model has neither a calibration nor a verification threshold; "
                "pass --threshold, or re-export it with --trials"
            )

    def rule(self) -> tuple[str, float]:
        """(``"llr"`` or ``"score"``, the threshold the best candidate must beat)."""
        if self.threshold is not None:
            return "score", float(self.threshold)
        if self.calibration is not None:
            bayes = bayes_threshold(self.p_enrolled, 1.0, 1.0)
            return "llr", bayes + math.log(len(self.gallery))
        return "score", float(self.embedder.threshold)

    def answer(
        self,
        embeddings: np.ndarray,
        seconds: Sequence[float],
        files: Sequence[str],
        top_k: Optional[int] = None,
    ) -> list[Identification]:
        """Answers for embedded recordings: (n, dim) raw embeddings and their
        net speech."""
        top_k = int(default("identify_top_k") if top_k is None else top_k)
        embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        index, scores = self.gallery.search(embeddings, top_k, self.scoring)
        llrs = None
        if self.calibration is not None:
            k = index.shape[1]
            speaker_seconds = self.gallery.speaker_seconds()[index]
            speaker_norms = self.gallery.speaker_norms()[index]
            query_norms = np.linalg.norm(embeddings, axis=1)
            llrs = self.calibration.sides_llr(
                scores.ravel(),
                (speaker_seconds.ravel(), np.repeat(np.asarray(seconds), k)),
                (speaker_norms.ravel(), np.repeat(query_norms, k)),
            ).reshape(index.shape)
        on, threshold = self.rule()
        out = []
        for q, name in enumerate(files):
            candidates = [
                Candidate(
                    self.gallery.speakers[i],
                    round(float(s), 6),
                    None if llrs is None else round(float(llrs[q, j]), 4),
                )
                for j, (i, s) in enumerate(zip(index[q], scores[q]))
            ]
            values = llrs[q] if on == "llr" else scores[q]
            best = int(np.argmax(values))
            speaker = candidates[best].speaker if values[best] > threshold else None
            out.append(Identification(str(name), speaker, candidates, on, threshold))
        return out

    def identify(
        self,
        files: Sequence[PathLike],
        top_k: Optional[int] = None,
        **batch_options,
    ) -> Iterator[Identification]:
        """Embeds recordings (each read once, batched) and answers for each,
        in batch order; a recording that cannot be used gets its ``error``."""
        for batch in self.embedder.iter_files(files, **batch_options):
            good = [r for r in batch if r.embedding is not None]
            for r in batch:
                if r.embedding is None:
                    yield Identification(r.path, None, [], error=r.error)
            if good:
                yield from self.answer(
                    np.stack([r.embedding for r in good]),
                    [r.speech.seconds for r in good],
                    [r.path for r in good],
                    top_k,
                )
