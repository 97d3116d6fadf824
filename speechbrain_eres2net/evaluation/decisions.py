"""Same speaker or not: calibrated decisions at a stated operating point.

A model folder may carry ``calibration.json`` (fitted at export on a trial
list): it maps a cosine score, and the trial's quality measures, to a
log-likelihood ratio (LLR). The decision is then the Bayes decision for a
target prior and costs, ``llr > log(c_fa (1 - p) / (c_miss p))``, which
holds for any operating point, unlike a score threshold tuned at one. Without
a calibration the folder's cosine threshold at the equal error rate is used,
and ``threshold`` always overrides (a cosine threshold). Every rule accepts
when the value is strictly above the threshold, as the metrics do.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..inference.embedder import SpeakerEmbedder
from ..paths import PathLike
from ..settings import default
from .calibration import Calibration, bayes_threshold
from .scoring import cosine

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Decision:
    """A verification decision and what it rests on.

    ``on`` is ``"llr"`` (calibrated, Bayes threshold for ``p_target``) or
    ``"score"`` (a cosine threshold: given, or the folder's EER threshold).
    """

    score: float
    llr: Optional[float]
    on: str
    threshold: float
    p_target: Optional[float]
    accept: bool

    def as_dict(self) -> dict:
        """Plain data, e.g. for JSON."""
        return asdict(self)

    def describe(self) -> str:
        """One line for people.

        Example
        -------
        >>> Decision(0.71, 2.5, "llr", 0.0, 0.5, True).describe()
        'score 0.7100 llr 2.500 > 0.000 (Bayes threshold, p_target 0.5) -> same speaker'
        """
        verdict = "same speaker" if self.accept else "different speakers"
        sign = ">" if self.accept else "<="
        if self.on == "llr":
            return (
                f"score {self.score:.4f} llr {self.llr:.3f} {sign} "
                f"{self.threshold:.3f} (Bayes threshold, p_target {self.p_target:g})"
                f" -> {verdict}"
            )
        llr = "" if self.llr is None else f" llr {self.llr:.3f}"
        return (
            f"score {self.score:.4f}{llr} {sign} {self.threshold:.4f} "
            f"(cosine threshold) -> {verdict}"
        )


def decide(
    score: float,
    llr: Optional[float] = None,
    p_target: Optional[float] = None,
    c_miss: Optional[float] = None,
    c_fa: Optional[float] = None,
    threshold: Optional[float] = None,
    fallback_threshold: Optional[float] = None,
    source: str = "the model",
) -> Decision:
    """The decision for one trial.

    Arguments
    ---------
    score : float
        Cosine score.
    llr : float, optional
        Calibrated LLR of the trial (None without a calibration).
    p_target, c_miss, c_fa : float, optional
        Operating point (defaults: ``verification.yaml``).
    threshold : float, optional
        A cosine threshold that overrides everything else.
    fallback_threshold : float, optional
        Cosine threshold used when there is no LLR (the folder's EER one).
    source : str
        Named in the error when no rule applies.

    Example
    -------
    >>> decide(0.4, llr=-1.2).accept
    False
    >>> decide(0.4, llr=-1.2, p_target=0.9).accept  # log(1/9) = -2.2
    True
    >>> decide(0.4, llr=-1.2, threshold=0.3).on
    'score'
    """
    p_target = float(default("p_target") if p_target is None else p_target)
    c_miss = float(default("c_miss") if c_miss is None else c_miss)
    c_fa = float(default("c_fa") if c_fa is None else c_fa)
    if threshold is not None:
        return Decision(score, llr, "score", threshold, None, score > threshold)
    if llr is not None:
        bayes = bayes_threshold(p_target, c_miss, c_fa)
        return Decision(score, llr, "llr", bayes, p_target, llr > bayes)
    if fallback_threshold is not None:
        return Decision(
            score, None, "score", fallback_threshold, None, score > fallback_threshold
        )
    raise ValueError(
        f"{source} has neither a calibration nor a verification threshold "
        f"(cosine score {score:.4f}); pass --threshold, or re-export it with --trials"
    )


def folder_calibration(source: PathLike) -> Optional[Calibration]:
    """The ``calibration.json`` of a model folder (local or Hub), if it has one."""
    from ..inference.folder import folder_file

    path: Optional[Path] = folder_file(source, CALIBRATION_FILE)
    return None if path is None else Calibration.load(path)


class Verifier:
    """Embeds two recordings and decides whether one speaker said both.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        The model.
    calibration : Calibration, optional
        Score -> LLR map (e.g. :func:`folder_calibration`).

    Example
    -------
    >>> import tempfile, soundfile, torch
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> d = Path(tempfile.mkdtemp())
    >>> wav = np.random.default_rng(0).normal(size=16000) * 0.1
    >>> soundfile.write(d / "a.wav", wav, 16000)
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    >>> verifier = Verifier(SpeakerEmbedder(KaldiFbank(), None, model, vad="off"),
    ...                     Calibration(score_weight=10.0, bias=-5.0))
    >>> decision = verifier.verify(d / "a.wav", d / "a.wav")
    >>> round(decision.score, 4), round(decision.llr, 3), decision.accept
    (1.0, 5.0, True)
    """

    def __init__(
        self, embedder: SpeakerEmbedder, calibration: Optional[Calibration] = None
    ) -> None:
        self.embedder = embedder
        self.calibration = calibration
        self.source = "the model"

    @classmethod
    def from_folder(cls, source: PathLike, **embedder_options) -> Verifier:
        """A model folder's embedder and calibration (when it has one)."""
        embedder = SpeakerEmbedder.from_folder(source, **embedder_options)
        verifier = cls(embedder, folder_calibration(source))
        verifier.source = str(source)
        return verifier

    def llr(self, score: float, embeddings, speech_seconds) -> float:
        """Calibrated LLR of one trial from its sides' embeddings and net speech."""
        norms = tuple([float(np.linalg.norm(e))] for e in embeddings)
        seconds = tuple([float(s)] for s in speech_seconds)
        return float(self.calibration.sides_llr([score], seconds, norms)[0])

    def verify(
        self,
        first: PathLike,
        second: PathLike,
        p_target: Optional[float] = None,
        c_miss: Optional[float] = None,
        c_fa: Optional[float] = None,
        threshold: Optional[float] = None,
    ) -> Decision:
        """Score, LLR and decision for two audio files (see :func:`decide`).

        Each file is read once; one with too little speech raises
        :class:`~speechbrain_eres2net.inference.embedder.NotEnoughSpeechError`
        (no decision), and the calibration's duration measures are the net
        speech of each side.
        """
        embeddings, seconds = [], []
        for path in (first, second):
            embedding, speech = self.embedder.embed_recording(path)
            embeddings.append(embedding.cpu().numpy())
            seconds.append(speech.seconds)
        score = cosine(*embeddings)
        llr = None
        if self.calibration is not None:
            llr = self.llr(score, embeddings, seconds)
        return decide(
            score,
            llr,
            p_target,
            c_miss,
            c_fa,
            threshold,
            fallback_threshold=self.embedder.threshold,
            source=self.source,
        )
