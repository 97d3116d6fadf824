"""Length-exact batched speaker embeddings from a model folder.

SpeechBrain's ``EncoderClassifier.encode_batch`` runs the front end on the
padded batch, so a short utterance padded next to a long one gets slightly
different features (and, with the Kaldi front end, extra frames) than it
gets alone. :class:`SpeakerEmbedder` computes the features of each
utterance on its own samples, pads the features, and passes exact relative
frame lengths to the normaliser and to the padding-aware ERes2Net: a batched
embedding equals the utterance's embedding alone up to float rounding. A
lobe that does not say it is padding-exact (``padding_exact = True``, as
ERes2Net does) runs each utterance alone, so no embedding depends on the
files beside it in a batch. It
loads any model folder (local or on the Hugging Face Hub) through
SpeechBrain's own ``SpeakerRecognition.from_hparams`` and is what the
``eres2net`` command line uses.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..dataio.audio import (
    AudioInfo,
    announce_once,
    audio_blocks,
    check_audio_file,
    read_audio,
)
from ..dataio.input_files import LIST_SUFFIXES, expand_inputs
from ..dataio.speech_handling import SPEECH_KEYS, SpeechHandling
from ..dataio.vad import Speech
from ..paths import PathLike
from ..settings import default
from . import file_batches, int8_calibration
from .batching import length_batches
from .fastpath import fast_path
from .file_batches import EmbeddedFiles, FileResult
from .fingerprint import model_fingerprint
from .folder import folder_file, load_model_folder
from .int8_store import INT8_CALIBRATION_FILE, read_int8_calibration
from .probe import fewest_samples, probe_model
from .speech_checks import NotEnoughSpeechError, check_samples, check_speech
from .streaming import SampleWindows, WindowMean, merge_segments

# Names of the parts, importable from here as before the split.
__all__ = [
    "LIST_SUFFIXES",
    "EmbeddedFiles",
    "FileResult",
    "NotEnoughSpeechError",
    "SpeakerEmbedder",
    "expand_inputs",
    "length_batches",
    "model_fingerprint",
]


class SpeakerEmbedder:
    """Batched, length-exact embeddings with a model folder's modules.

    Every recording is read once, its net speech measured
    (:class:`~speechbrain_eres2net.dataio.vad.SpeechDetector`), refused with
    :class:`NotEnoughSpeechError` below ``min_speech_seconds``, and (``vad``
    ``"trim"``) embedded from its speech alone. Recordings longer than
    ``window_seconds`` are read, checked and embedded window by window.

    Arguments
    ---------
    compute_features : nn.Module
        Waveforms (1, samples) -> features (1, frames, feats).
    mean_var_norm : nn.Module or None
        SpeechBrain-style normaliser ``(feats, relative_lengths)``; None for
        front ends that normalise themselves.
    embedding_model : nn.Module
        Any embedding lobe: ``(feats, lengths) -> (B, 1, E)``. Its feature
        size, embedding size and fewest frames are probed
        (:func:`~speechbrain_eres2net.inference.probe.probe_model`). It gets
        padded batches only if its ``padding_exact`` attribute is true.
    sample_rate : int
        Rate the model expects; files are resampled to it.
    threshold : float, optional
        Cosine threshold for same/different decisions, if known.
    device : str
        Where to run.
    speech : SpeechHandling, optional
        What of a recording is embedded and how much speech it needs
        (default: the speech entries of ``hparams/verification.yaml``).
    window_seconds : float, optional
        Longer recordings are embedded window by window (default: the YAML's).
    **speech_options
        Speech settings by their YAML names (``vad``, ``min_speech_seconds``,
        ``vad_min_silence_seconds``, ... :data:`SPEECH_KEYS`), each replacing
        that of ``speech``; None keeps it.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> from speechbrain.processing.features import InputNormalization
    >>> embedder = SpeakerEmbedder(
    ...     KaldiFbank(mean_norm=False),
    ...     InputNormalization(norm_type="sentence", std_norm=False),
    ...     ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]),
    ...     vad="off",
    ... )
    >>> embedder.min_samples  # 9 frames of 25 ms windows every 10 ms
    1680
    >>> wavs = [torch.randn(4000), torch.randn(2000)]
    >>> batch = embedder.embed_batch(wavs)
    >>> alone = embedder.embed_batch(wavs[1:])
    >>> batch.shape, bool(torch.allclose(batch[1], alone[0], atol=1e-5))
    (torch.Size([2, 192]), True)
    """

    def __init__(
        self,
        compute_features: nn.Module,
        mean_var_norm: Optional[nn.Module],
        embedding_model: nn.Module,
        sample_rate: int = 16000,
        threshold: Optional[float] = None,
        device: str = "cpu",
        speech: Optional[SpeechHandling] = None,
        window_seconds: Optional[float] = None,
        **speech_options: Any,
    ) -> None:
        unknown = set(speech_options) - set(SPEECH_KEYS)
        if unknown:
            raise TypeError(f"unexpected speech option(s) {sorted(unknown)}")
        self.speech = (speech or SpeechHandling.resolve()).with_overrides(
            **speech_options
        )
        self.window_seconds = float(
            default("window_seconds") if window_seconds is None else window_seconds
        )
        if not self.window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {self.window_seconds}")
        self.device = torch.device(device)
        self.compute_features = compute_features.to(self.device).eval()
        self.mean_var_norm = (
            None if mean_var_norm is None else mean_var_norm.to(self.device).eval()
        )
        self.embedding_model = embedding_model.to(self.device).eval()
        self.fingerprint = model_fingerprint(
            self.compute_features, self.mean_var_norm, self.embedding_model
        )
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.shape = probe_model(
            self.compute_features, self.embedding_model, sample_rate, self.device
        )
        self.min_frames = self.shape.min_frames
        self.min_samples = fewest_samples(
            self.compute_features, self.min_frames, sample_rate, self.device
        )
        self.detector = self.speech.detector(device)

    @property
    def vad(self) -> str:
        """``"trim"``, ``"check"`` or ``"off"`` (:class:`SpeechHandling`)."""
        return self.speech.vad

    @property
    def min_speech_seconds(self) -> float:
        """Least net speech of an accepted recording."""
        return self.speech.min_speech_seconds

    @classmethod
    def from_folder(
        cls,
        source: PathLike,
        savedir: Optional[PathLike] = None,
        device: str = "cpu",
        fast: bool = True,
        precision: str = "auto",
        int8_calibration: Optional[Sequence[PathLike]] = None,
        trust_code: bool = False,
        **speech_options,
    ) -> SpeakerEmbedder:
        """Loads a model folder; ``fast`` uses the optimised inference path.

        ``trust_code`` loads a folder whose ``hyperparams.yaml`` names code
        outside the allow-list (:func:`~.folder.load_model_folder`).

        ``speech_options`` (``window_seconds`` and the speech settings of
        :data:`SPEECH_KEYS`, e.g. ``vad``) replace the folder's own: a
        folder records the speech handling it was trained and calibrated
        with, and the API's defaults apply only where it records none
        (:meth:`from_recognizer`).

        ``precision`` is that of
        :func:`~speechbrain_eres2net.inference.fastpath.optimize_for_inference`
        (``"auto"``, ``"fp32"``, ``"bf16"``, ``"int8"``); ``"int8"`` needs
        ``calibration``: audio files, folders or lists of real speech
        (:func:`expand_inputs`), of which ``int8_calibration_utterances``
        (verification.yaml), evenly spread over the sorted list, calibrate
        the quantization; without them, the calibration the folder stores
        (:mod:`~speechbrain_eres2net.inference.int8_store`). Other
        precisions ignore ``int8_calibration``.
        """
        if precision == "int8" and not fast:
            raise ValueError("from_folder: precision='int8' needs fast=True")
        stored = None
        if precision == "int8" and not int8_calibration:
            stored = read_int8_calibration(folder_file(source, INT8_CALIBRATION_FILE))
            if stored is None:
                raise ValueError(
                    f"--precision int8 needs --int8-calibration (audio files or "
                    f"folders of real speech to calibrate the quantization): "
                    f"{source} stores none ({INT8_CALIBRATION_FILE}, written by "
                    "export-hub/import-3dspeaker --int8-calibration)"
                )
        return cls.from_recognizer(
            load_model_folder(source, savedir, device, trust_code),
            device,
            fast,
            precision,
            int8_calibration,
            int8_features=stored,
            **speech_options,
        )

    @classmethod
    def from_recognizer(
        cls,
        pretrained,
        device: str = "cpu",
        fast: bool = True,
        precision: str = "auto",
        int8_calibration: Optional[Sequence[PathLike]] = None,
        int8_features: Optional[Sequence[torch.Tensor]] = None,
        **speech_options,
    ) -> SpeakerEmbedder:
        """The embedder of an already loaded ``SpeakerRecognition`` (a model
        folder); the other arguments are those of :meth:`from_folder`, and
        ``int8_features`` calibrates int8 when no ``int8_calibration`` audio
        is given (features as :meth:`calibration_features` returns them).

        The speech handling is the folder's (its ``hyperparams.yaml``
        records the one it was trained and calibrated with), with the
        packaged defaults for what it does not record; a given option that
        differs from the folder's is applied and said in one warning.
        """
        hparams = pretrained.hparams
        recorded = {
            key: getattr(hparams, key)
            for key in SPEECH_KEYS
            if getattr(hparams, key, None) is not None
        }
        speech = SpeechHandling.resolve(recorded)
        changed = [
            f"{key}={value} (folder: {recorded[key]})"
            for key, value in speech_options.items()
            if key in recorded and value is not None and value != recorded[key]
        ]
        if changed:
            announce_once(
                f"speech:{changed}",
                "speech handling overridden: " + ", ".join(changed) + "; the model "
                "folder was trained and calibrated with its own",
            )
        embedder = cls(
            pretrained.mods.compute_features,
            pretrained.mods.mean_var_norm,
            pretrained.mods.embedding_model,
            sample_rate=int(getattr(hparams, "sample_rate", 16000)),
            threshold=getattr(hparams, "verification_threshold", None),
            device=device,
            speech=speech,
            **speech_options,
        )
        if fast:
            feats = None
            if precision == "int8":
                feats = (
                    embedder.calibration_features(int8_calibration or [])
                    if int8_calibration or int8_features is None
                    else int8_features
                )
            embedder.embedding_model = fast_path(
                embedder.embedding_model, precision=precision, calibration_feats=feats
            )
        return embedder

    @staticmethod
    def calibration_files(
        inputs: Sequence[PathLike], limit: Optional[int] = None
    ) -> list[Path]:
        """Audio files for int8 calibration, evenly spread over the sorted list
        (:func:`~speechbrain_eres2net.inference.int8_calibration.calibration_files`).
        """
        return int8_calibration.calibration_files(inputs, limit)

    @torch.no_grad()
    def calibration_features(
        self, inputs: Sequence[PathLike], limit: Optional[int] = None
    ) -> list[torch.Tensor]:
        """Normalised (frames, feats) features of audio files, for int8 calibration.

        Arguments
        ---------
        inputs : sequence of path
            Audio files, folders or lists (:func:`expand_inputs`).
        limit : int, optional
            Most files (:meth:`calibration_files`).

        Returns
        -------
        list of torch.Tensor
            One (frames, feats) tensor per readable file.

        Example
        -------
        >>> import tempfile, numpy as np, soundfile
        >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
        >>> embedder = SpeakerEmbedder(
        ...     KaldiFbank(), None, ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1])
        ... )
        >>> folder = tempfile.mkdtemp()
        >>> soundfile.write(f"{folder}/a.wav", np.random.randn(8000) * 0.1, 16000)
        >>> [f.shape for f in embedder.calibration_features([folder])]
        [torch.Size([48, 80])]
        """
        return int8_calibration.calibration_features(
            inputs, self._features, self.sample_rate, self.min_samples, limit
        )

    def _features(self, wav: torch.Tensor) -> torch.Tensor:
        """Normalised (frames, feats) features of one (samples,) waveform."""
        x = self.compute_features(wav.to(self.device).float().unsqueeze(0))
        if self.mean_var_norm is not None:
            x = self.mean_var_norm(x, torch.ones(1, device=self.device))
        return x[0]

    @torch.no_grad()
    def embed_batch(self, wavs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Embeds waveforms of any lengths; (batch, embedding_size).

        Each waveform gets its own features and their normalisation (so
        padding never changes them); features are padded and passed with
        exact relative lengths to a ``padding_exact`` lobe, and run one
        utterance at a time through any other.
        """
        whole = torch.ones(1, device=self.device)
        feats = []
        for i, wav in enumerate(wavs):
            if wav.dim() != 1:
                raise ValueError(
                    f"waveform {i} must be 1-D (samples,), got {tuple(wav.shape)}"
                )
            if wav.shape[0] < self.min_samples:
                raise ValueError(
                    f"waveform {i} has {wav.shape[0]} samples; the model needs "
                    f"at least {self.min_samples}"
                )
            feats.append(
                self.compute_features(wav.to(self.device).float().unsqueeze(0))[0]
            )
        if self.mean_var_norm is not None:
            # Each utterance alone: SpeechBrain's padding mask turns relative
            # lengths back into frames with float32 rounding and a 1e-6
            # margin, which counts one padded frame into the statistics for
            # about one padded length in ten (245 frames padded to 370:
            # 246), so the batch would change the embedding.
            feats = [self.mean_var_norm(f.unsqueeze(0), whole)[0] for f in feats]
        if not getattr(self.embedding_model, "padding_exact", False):
            # SpeechBrain's ECAPA-TDNN convolutions see the padding: next to
            # a longer utterance an embedding moved by up to 0.47 (cosine
            # 0.9993, a resumed embed against a straight one), so such a
            # lobe runs each utterance alone and a resumed or sharded embed
            # equals an uninterrupted one.
            return torch.cat(
                [self.embedding_model(f.unsqueeze(0), whole).squeeze(1) for f in feats]
            )
        frames = torch.tensor([f.shape[0] for f in feats], device=self.device)
        padded = nn.utils.rnn.pad_sequence(feats, batch_first=True)
        lengths = frames.float() / padded.shape[1]
        return self.embedding_model(padded, lengths).squeeze(1)

    def speech_of(
        self, path: PathLike, wav: torch.Tensor
    ) -> tuple[torch.Tensor, Speech]:
        """The part of a recording to embed, and its speech; refuses too little.

        Arguments
        ---------
        path : path
            Named in errors.
        wav : torch.Tensor
            (samples,) mono waveform at ``sample_rate``.

        Returns
        -------
        wav : torch.Tensor
            The speech alone (``vad="trim"``) or ``wav`` itself.
        speech : Speech
            Where the speech is (the whole recording with ``vad="off"``).

        Raises
        ------
        NotEnoughSpeechError
            Less net speech than ``min_speech_seconds`` (not with ``"off"``).
        AudioError
            Less audio than the model's fewest frames.
        """
        if self.detector is None:
            speech = Speech.whole(int(wav.shape[0]), self.sample_rate)
        else:
            speech = self.detector(wav, self.sample_rate)
            self._check_speech(path, speech)
            wav = self.speech.kept(wav, speech)
        self._check_samples(path, int(wav.shape[0]))
        return wav, speech

    def _check_speech(self, path: PathLike, speech: Speech) -> None:
        check_speech(path, speech, self.min_speech_seconds)

    def _check_samples(self, path: PathLike, samples: int) -> None:
        check_samples(path, samples, self.min_samples, self.sample_rate, self.vad)

    def embed_recording(
        self, path: PathLike, duration: Optional[float] = None
    ) -> tuple[torch.Tensor, Speech]:
        """Embedding (embedding_size,) and speech of one audio file.

        The file is read once: whole when ``duration`` (seconds; read from
        its header when None) is at most ``window_seconds``, else block by
        block (:meth:`embed_stream`).

        Raises
        ------
        AudioError
            Unreadable file, too little speech (:class:`NotEnoughSpeechError`)
            or audio.
        """
        info = None
        if duration is None:
            info = check_audio_file(path)  # the header is read this once
            duration = info.duration
        if duration > self.window_seconds:
            return self.embed_stream(path, info)
        wav = read_audio(path, self.sample_rate, info=info)
        wav, speech = self.speech_of(path, wav)
        return self.embed_batch([wav])[0], speech

    def embed_file(self, path: PathLike) -> torch.Tensor:
        """Embedding of one audio file; raises :class:`AudioError` on bad input."""
        return self.embed_recording(path)[0]

    @torch.no_grad()
    def embed_stream(
        self, path: PathLike, info: Optional[AudioInfo] = None
    ) -> tuple[torch.Tensor, Speech]:
        """Embeds a recording of any length with memory bounded by the window.

        The file is decoded ``window_seconds`` at a time; each block's speech
        is found (the detector's state carried from block to block) and, with
        ``vad="trim"``, kept alone. The kept audio is cut into windows of
        ``window_seconds``; the last window ends at the last kept sample
        (overlapping the one before, so every window has the same length).
        The embedding is the mean direction of the windows' embeddings scaled
        to their mean norm. A recording whose kept audio fits one window gets
        the embedding of one forward pass, as a short recording does.
        ``info`` is the file's header when the caller has read it.

        Returns
        -------
        embedding : torch.Tensor
            (embedding_size,).
        speech : Speech
            Duration and speech segments of the whole recording.
        """
        windows = SampleWindows(int(self.window_seconds * self.sample_rate))
        mean = WindowMean()
        segments: list[tuple[int, int]] = []
        state, offset = None, 0
        blocks = audio_blocks(path, self.sample_rate, self.window_seconds, info)
        for block in blocks:
            if self.detector is None:
                kept, found = block, Speech.whole(int(block.shape[0]), self.sample_rate)
            else:
                found, state = self.detector.detect(block, self.sample_rate, state)
                kept = self.speech.kept(block, found)
            segments.extend(found.shifted(offset))
            offset += int(block.shape[0])
            for window in windows.add(kept):
                mean.add(self.embed_batch([window])[0])
        speech = Speech(tuple(merge_segments(segments)), offset, self.sample_rate)
        if self.detector is not None:
            self._check_speech(path, speech)
        tail = windows.tail()
        if not windows.completed:  # everything kept fits one window
            self._check_samples(path, int(tail.shape[0]))
            return self.embed_batch([tail])[0], speech
        if tail is not None:
            mean.add(self.embed_batch([tail])[0])
        return mean.result(), speech

    def iter_files(
        self,
        paths: Sequence[PathLike],
        indices: Optional[Sequence[int]] = None,
        batch_size: Optional[int] = None,
        batch_seconds: Optional[float] = None,
        num_workers: Optional[int] = None,
    ) -> Iterator[list[FileResult]]:
        """Embeds files in batches of similar length, yielding as they finish
        (:func:`~speechbrain_eres2net.inference.file_batches.iter_files`:
        each file read once, batches within ``batch_size`` and
        ``batch_seconds``, decoding in ``num_workers`` workers)."""
        return file_batches.iter_files(
            self, paths, indices, batch_size, batch_seconds, num_workers
        )

    def embed_files(
        self,
        paths: Sequence[PathLike],
        batch_size: Optional[int] = None,
        progress: bool = True,
        batch_seconds: Optional[float] = None,
        num_workers: Optional[int] = None,
    ) -> EmbeddedFiles:
        """Embeds many files, keeping every result in memory
        (:func:`~speechbrain_eres2net.inference.file_batches.embed_files`)."""
        return file_batches.embed_files(
            self, paths, batch_size, progress, batch_seconds, num_workers
        )
