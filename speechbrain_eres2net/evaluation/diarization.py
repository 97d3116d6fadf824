"""Who spoke when: speaker diarization with any model folder's embeddings.

:class:`Diarizer` runs the steps a pyannote or 3D-Speaker user knows, with the
parts of this package:

1. **Speech.** The project's speech detection
   (:class:`~speechbrain_eres2net.dataio.vad.SpeechDetector`, the folder's
   settings) finds the speech; a recording with less net speech than
   ``min_speech_seconds`` is refused, as ``embed`` refuses it.
2. **Windows.** Each speech segment is cut into windows of
   ``diarize_window_seconds`` every ``diarize_hop_seconds`` (the last one
   ending at the segment's end); a segment shorter than a window is one
   window of its own length, one shorter than ``diarize_min_window_seconds``
   is not embedded.
3. **Embeddings** of the windows in batches through the folder's embedder
   (the fast path), the file read block by block twice (speech, then
   windows), so memory does not grow with the recording's length.
4. **Clustering** (:mod:`.clustering`): by default agglomerative, stopped by
   the calibrated LLR of merging; a given or bounded speaker count is
   honoured exactly.
5. **Turns.** Every instant of a speech segment goes to the window whose
   centre is nearest (a speaker change falls halfway between the centres of
   the two windows that disagree), and a segment without a window to the
   nearest window's speaker. A speaker's turns less than
   ``diarize_min_pause_seconds`` apart are one turn (NIST's Rich
   Transcription rule, which references follow: shorter pauses are not
   segmented). Overlapped speech gets one speaker: the
   benchmark counts the other as missed (docs/diarization.md).
6. **Names** (with a gallery): each cluster, as one recording (the mean of
   its windows, its net speech), is identified open-set among the enrolled
   speakers (:class:`~.identification.Identifier`); a name goes to at most
   one cluster (the likeliest), and unknown clusters keep ``SPEAKER_NN``.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..dataio.audio import AudioError, audio_blocks, check_audio_file
from ..dataio.rttm import Turn, rttm_lines
from ..dataio.vad import Speech
from ..inference.embedder import SpeakerEmbedder
from ..inference.speech_checks import check_speech
from ..inference.speech_windows import SpeechWindows, label_segments, place_windows
from ..inference.streaming import merge_segments
from ..paths import PathLike
from ..settings import default
from .calibration import Calibration
from .clustering import (
    SpeakerCount,
    cluster_in_groups,
    group_means,
    make_clustering,
)
from .identification import Identifier

# Audio read per block: bounds memory for recordings of any length.
BLOCK_SECONDS = 60.0
ANONYMOUS = "SPEAKER_{:02d}"


@dataclass(frozen=True)
class Diarization:
    """Who spoke when in one recording."""

    file: str
    uri: str
    duration: float
    speech_seconds: float
    """Seconds the turns cover."""
    turns: tuple[Turn, ...]
    speakers: tuple[str, ...]
    """Labels in order of first appearance (enrolled names or ``SPEAKER_NN``)."""
    enrolled: dict[str, float]
    """Label -> LLR (or cosine) of the clusters named from the gallery."""
    clustering: str
    windows: int

    def rttm_lines(self) -> list[str]:
        """The NIST RTTM lines of the turns."""
        return rttm_lines(self.uri, self.turns)

    def speaker_seconds(self) -> dict[str, float]:
        """Label -> seconds of speech attributed."""
        out = {label: 0.0 for label in self.speakers}
        for turn in self.turns:
            out[turn.speaker] += turn.end - turn.start
        return out

    def as_dict(self) -> dict[str, Any]:
        """What ``eres2net diarize --json`` prints for the recording.

        Example
        -------
        >>> d = Diarization("a.wav", "a", 3.0, 2.0, (Turn(0.5, 2.5, "ann"),),
        ...                 ("ann",), {"ann": 4.2}, "ahc", 3)
        >>> d.as_dict()["speakers"]
        [{'label': 'ann', 'seconds': 2.0, 'enrolled': True, 'llr': 4.2}]
        """
        seconds = self.speaker_seconds()
        speakers = []
        for label in self.speakers:
            entry: dict[str, Any] = {
                "label": label,
                "seconds": round(seconds[label], 3),
                "enrolled": label in self.enrolled,
            }
            if label in self.enrolled:
                entry["llr"] = round(float(self.enrolled[label]), 4)
            speakers.append(entry)
        return {
            "file": self.file,
            "uri": self.uri,
            "duration": round(self.duration, 3),
            "speech_seconds": round(self.speech_seconds, 3),
            "num_speakers": len(self.speakers),
            "speakers": speakers,
            "turns": [
                {
                    "start": round(t.start, 3),
                    "end": round(t.end, 3),
                    "speaker": t.speaker,
                }
                for t in self.turns
            ],
            "clustering": self.clustering,
            "windows": self.windows,
        }

    def to_annotation(self):
        """The turns as a ``pyannote.core.Annotation`` (pyannote.core needed)."""
        try:
            from pyannote.core import Annotation, Segment
        except ImportError as err:
            raise ImportError(
                "Diarization.to_annotation needs pyannote.core (pip install "
                "pyannote.core)"
            ) from err
        annotation = Annotation(uri=self.uri)
        for k, turn in enumerate(self.turns):
            annotation[Segment(turn.start, turn.end), k] = turn.speaker
        return annotation

    def describe(self) -> str:
        """One line for people."""
        seconds = self.speaker_seconds()
        who = ", ".join(f"{s} {seconds[s]:.1f} s" for s in self.speakers)
        return (
            f"{self.file}: {len(self.speakers)} speaker(s) in "
            f"{self.speech_seconds:.1f} s of speech ({who})"
        )


class Diarizer:
    """Diarizes recordings with a model folder's embedder.

    Arguments
    ---------
    embedder : SpeakerEmbedder
        Any model folder's embedder (its speech detection finds the speech).
    calibration : Calibration, optional
        The folder's calibration: the LLR of merging two clusters.
    clustering : str, optional
        ``"ahc"`` or ``"spectral"`` (default ``diarize_clustering``).
    p_same : float, optional
        Prior that two clusters are one speaker (``diarize_p_same``).
    window_seconds, hop_seconds, min_window_seconds : float, optional
        Windows over speech (``diarize_*`` of verification.yaml).
    identifier : Identifier, optional
        Names clusters from its gallery.
    batch_size : int, optional
        Windows per forward pass (default ``batch_size``).

    Example
    -------
    >>> import tempfile, soundfile
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> path = Path(tempfile.mkdtemp()) / "a.wav"
    >>> soundfile.write(path, np.random.default_rng(0).normal(size=64000) * 0.1, 16000)
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16)
    >>> diarizer = Diarizer(SpeakerEmbedder(KaldiFbank(), None, model, vad="off"),
    ...                     Calibration(score_weight=10.0, bias=-5.0))
    >>> result = diarizer.diarize(path, num_speakers=2)
    >>> len(result.speakers), result.turns[0].start, result.turns[-1].end
    (2, 0.0, 4.0)
    """

    def __init__(
        self,
        embedder: SpeakerEmbedder,
        calibration: Optional[Calibration] = None,
        clustering: Optional[str] = None,
        p_same: Optional[float] = None,
        window_seconds: Optional[float] = None,
        hop_seconds: Optional[float] = None,
        min_window_seconds: Optional[float] = None,
        identifier: Optional[Identifier] = None,
        batch_size: Optional[int] = None,
        spectral_pval: Optional[float] = None,
        max_speakers: Optional[int] = None,
        max_clustered: Optional[int] = None,
    ) -> None:
        def pick(value, key):
            return default(key) if value is None else value

        self.embedder = embedder
        self.calibration = calibration
        self.method = str(pick(clustering, "diarize_clustering"))
        # What decides the clustering, by name (a resumed job compares them).
        self.clustering_settings = {
            "method": self.method,
            "p_same": float(pick(p_same, "diarize_p_same")),
            "pval": float(pick(spectral_pval, "diarize_spectral_pval")),
            "max_speakers": int(pick(max_speakers, "diarize_max_speakers")),
        }
        self.clustering = make_clustering(
            calibration=calibration,
            threshold=embedder.threshold,
            **self.clustering_settings,
        )
        rate = embedder.sample_rate
        self.window = int(float(pick(window_seconds, "diarize_window_seconds")) * rate)
        self.hop = int(float(pick(hop_seconds, "diarize_hop_seconds")) * rate)
        shortest = float(pick(min_window_seconds, "diarize_min_window_seconds"))
        self.shortest = max(int(shortest * rate), embedder.min_samples)
        if not 0 < self.hop <= self.window:
            raise ValueError(
                f"the hop ({self.hop / rate:g} s) must be > 0 and at most the "
                f"window ({self.window / rate:g} s)"
            )
        self.max_clustered = int(pick(max_clustered, "diarize_max_clustered"))
        self.bridge = int(float(default("diarize_min_pause_seconds")) * rate)
        self.identifier = identifier
        self.batch_size = int(pick(batch_size, "batch_size"))

    @classmethod
    def from_folder(
        cls,
        source: PathLike,
        gallery: Optional[PathLike] = None,
        diarizer_options: Optional[dict[str, Any]] = None,
        identifier_options: Optional[dict[str, Any]] = None,
        **embedder_options: Any,
    ) -> Diarizer:
        """A model folder's diarizer; ``gallery`` names clusters from a
        gallery file enrolled with the same model (``identifier_options``:
        those of :class:`Identifier`, e.g. ``p_enrolled``)."""
        from .decisions import folder_calibration
        from .gallery import SpeakerGallery

        embedder = SpeakerEmbedder.from_folder(source, **embedder_options)
        calibration = folder_calibration(source)
        identifier = None
        if gallery is not None:
            identifier = Identifier(
                embedder,
                SpeakerGallery.load(gallery, embedder.fingerprint),
                calibration,
                **(identifier_options or {}),
            )
        return cls(
            embedder, calibration, identifier=identifier, **(diarizer_options or {})
        )

    def find_speech(
        self, path: PathLike, info=None
    ) -> tuple[Speech, Optional[torch.Tensor]]:
        """The recording's speech (block by block), and its audio when it
        fits one block (so that a short file is read once)."""
        rate = self.embedder.sample_rate
        detector = self.embedder.detector
        segments: list[tuple[int, int]] = []
        state, offset, audio = None, 0, None
        for count, block in enumerate(audio_blocks(path, rate, BLOCK_SECONDS, info)):
            audio = block if count == 0 else None
            if detector is None:
                found = Speech.whole(int(block.shape[0]), rate)
            else:
                found, state = detector.detect(block, rate, state)
            segments.extend(found.shifted(offset))
            offset += int(block.shape[0])
        return Speech(tuple(merge_segments(segments)), offset, rate), audio

    @torch.no_grad()
    def embed_windows(self, path: PathLike) -> SpeechWindows:
        """The windows over a recording's speech and their embeddings.

        Raises
        ------
        AudioError
            An unreadable file, or less net speech than ``min_speech_seconds``
            (:class:`~speechbrain_eres2net.inference.speech_checks.NotEnoughSpeechError`).
        """
        info = check_audio_file(path)
        speech, audio = self.find_speech(path, info)
        check_speech(path, speech, max(self.embedder.min_speech_seconds, 1e-9))
        starts, ends, share = place_windows(
            speech.segments, self.window, self.hop, self.shortest
        )
        if not starts.size:
            raise AudioError(
                path,
                f"no speech segment lasts {self.shortest / self.embedder.sample_rate:g}"
                " s, the shortest window embedded (diarize_min_window_seconds)",
            )
        rate = self.embedder.sample_rate
        blocks = (
            [audio]
            if audio is not None
            else audio_blocks(path, rate, BLOCK_SECONDS, info)
        )
        embeddings: list[np.ndarray] = []
        pending: list[torch.Tensor] = []
        buffer, buffer_start, k = torch.zeros(0), 0, 0

        def flush() -> None:
            if pending:
                embeddings.append(self.embedder.embed_batch(pending).cpu().numpy())
                pending.clear()

        for block in blocks:
            buffer = torch.cat([buffer, block])
            while k < starts.size and ends[k] <= buffer_start + buffer.shape[0]:
                first = int(starts[k]) - buffer_start
                pending.append(buffer[first : first + int(ends[k] - starts[k])].clone())
                k += 1
                if len(pending) == self.batch_size:
                    flush()
            keep_from = (
                int(starts[k]) if k < starts.size else speech.samples
            ) - buffer_start
            keep_from = max(0, min(keep_from, buffer.shape[0]))
            buffer, buffer_start = buffer[keep_from:], buffer_start + keep_from
        flush()
        stacked = np.concatenate(embeddings).astype(np.float32)
        return SpeechWindows(speech, starts, ends, share / rate, stacked)

    def check_count(
        self,
        num_speakers: Optional[int] = None,
        min_speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
    ) -> None:
        """Refuses, before any audio is read, a speaker count that is invalid
        or that this clustering cannot decide (no calibration, no threshold).
        """
        count = SpeakerCount.of(num_speakers, min_speakers, max_speakers)
        fixed = count.num is not None or count.low == count.high
        stops = getattr(self.clustering, "stop", 0.0)
        if not fixed and self.method == "ahc" and stops == np.inf:
            raise ValueError(
                "the model has neither a calibration nor a verification threshold "
                "to stop clustering: give --num-speakers, use --diarize-clustering "
                "spectral, or re-export the model with --trials"
            )

    def cluster(
        self,
        windows: SpeechWindows,
        num_speakers: Optional[int] = None,
        min_speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
    ) -> np.ndarray:
        """(n,) speaker label of each window, 0.. in order of first appearance.

        Past ``diarize_max_clustered`` windows, runs of consecutive windows
        are clustered as groups (:func:`cluster_in_groups`) and each window
        then joins the nearest cluster, so memory stays bounded for
        recordings of any length.
        """
        count = {
            "num_speakers": num_speakers,
            "min_speakers": min_speakers,
            "max_speakers": max_speakers,
        }
        n = int(windows.starts.size)
        if n <= self.max_clustered:
            return self.clustering(windows.embeddings, windows.seconds, **count)
        # Consecutive windows, whatever the pauses between them: a recording of
        # short segments would otherwise keep one group per window.
        groups = np.arange(n) // math.ceil(n / self.max_clustered)
        return cluster_in_groups(
            self.clustering, windows.embeddings, windows.seconds, groups, **count
        )

    def result(
        self,
        path: PathLike,
        windows: SpeechWindows,
        labels: np.ndarray,
        method: str = "",
    ) -> Diarization:
        """The :class:`Diarization` of windows labelled by any clustering."""
        rate = self.embedder.sample_rate
        names, enrolled = self._names(windows, labels)
        pieces = label_segments(
            windows.speech.segments,
            windows.starts,
            windows.ends,
            labels,
            self.bridge,
        )
        turns = tuple(Turn(s / rate, e / rate, names[label]) for s, e, label in pieces)
        order = list(dict.fromkeys(t.speaker for t in turns))
        return Diarization(
            str(path),
            Path(path).stem,
            windows.speech.duration,
            sum(e - s for s, e, _ in pieces) / rate,
            turns,
            tuple(order),
            enrolled,
            method or self.method,
            int(windows.starts.size),
        )

    def diarize(
        self,
        path: PathLike,
        num_speakers: Optional[int] = None,
        min_speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
    ) -> Diarization:
        """Who spoke when in one recording (see the module's steps).

        Raises
        ------
        AudioError
            An unreadable file or too little speech (the message names it).
        ClusteringError
            More speakers asked for than the speech has windows.
        """
        self.check_count(num_speakers, min_speakers, max_speakers)
        windows = self.embed_windows(path)
        labels = self.cluster(windows, num_speakers, min_speakers, max_speakers)
        return self.result(path, windows, labels)

    def _names(
        self, windows: SpeechWindows, labels: np.ndarray
    ) -> tuple[dict[int, str], dict[str, float]]:
        """Cluster -> label (enrolled name or ``SPEAKER_NN``), and the LLR (or
        score) of each enrolled name given."""
        clusters = int(labels.max()) + 1 if labels.size else 0
        named: dict[int, str] = {}
        values: dict[str, float] = {}
        if self.identifier is not None and clusters:
            embeddings, seconds = group_means(
                windows.embeddings, windows.seconds, labels
            )
            answers = self.identifier.answer(
                embeddings, seconds, [str(c) for c in range(clusters)]
            )
            on, threshold = self.identifier.rule()
            offers = sorted(
                (
                    (cand.llr if on == "llr" else cand.score, c, cand.speaker)
                    for c, answer in enumerate(answers)
                    for cand in answer.candidates
                    if (cand.llr if on == "llr" else cand.score) > threshold
                ),
                reverse=True,
            )
            for value, c, speaker in offers:
                if c not in named and speaker not in values:
                    named[c], values[speaker] = speaker, float(value)
        anonymous = 0
        for c in range(clusters):
            if c not in named:
                named[c] = ANONYMOUS.format(anonymous)
                anonymous += 1
        return named, values
