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

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from ..dataio.audio import (
    AUDIO_SUFFIXES,
    AudioError,
    AudioInfo,
    announce_once,
    audio_blocks,
    check_audio_file,
    read_audio,
)
from ..dataio.decoding import AudioChunks, DecodedFile, decoded_chunks
from ..dataio.speech_handling import SPEECH_KEYS, SpeechHandling
from ..dataio.vad import Speech
from ..paths import PathLike
from ..settings import batch_seconds as default_batch_seconds
from ..settings import default
from .fastpath import fast_path
from .folder import folder_file, load_model_folder
from .heap import trim_heap
from .int8_store import INT8_CALIBRATION_FILE, read_int8_calibration
from .probe import probe_model


def length_batches(
    durations: Sequence[float], batch_size: int, batch_seconds: float
) -> list[range]:
    """Consecutive index ranges of longest-first ``durations`` for batching.

    A batch grows while ``len(batch) * longest <= batch_seconds`` (its padded
    size; the first item is the longest) and ``len(batch) <= batch_size``;
    every batch holds at least one item.

    Example
    -------
    >>> [list(b) for b in length_batches([9.0, 6.0, 5.0, 2.0, 1.0], 3, 20.0)]
    [[0, 1], [2, 3, 4]]
    """
    batches = []
    start = 0
    while start < len(durations):
        end = start + 1
        while (
            end < len(durations)
            and end - start < batch_size
            and (end - start + 1) * durations[start] <= batch_seconds
        ):
            end += 1
        batches.append(range(start, end))
        start = end
    return batches


def model_fingerprint(*modules: Optional[nn.Module]) -> str:
    """SHA-256 (hex, 16 characters) of the modules' weights and buffers.

    It names the model that made an embedding, whatever folder or Hub id it
    came from: embeddings of two models are never compared.

    Example
    -------
    >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    >>> fa, fb = model_fingerprint(a), model_fingerprint(b)
    >>> fa == model_fingerprint(a), fa == fb, len(fa)
    (True, False, 16)
    """
    sha = hashlib.sha256()
    for module in modules:
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            sha.update(name.encode())
            if isinstance(tensor, torch.Tensor):
                data = tensor.detach().to("cpu", torch.float32).contiguous()
                sha.update(data.numpy().tobytes())
    return sha.hexdigest()[:16]


class NotEnoughSpeechError(AudioError):
    """A recording with less net speech than the minimum: never embedded."""


class EmbeddedFiles(NamedTuple):
    """What :meth:`SpeakerEmbedder.embed_files` returns."""

    embeddings: dict[str, np.ndarray]
    """str(path) -> float32 (embedding_size,) array, for every good file."""
    errors: dict[str, str]
    """str(path) -> reason, for every file that was refused or unreadable."""
    speech: dict[str, Speech]
    """str(path) -> its duration and net speech, for every embedded file."""
    refused: set[str]
    """The paths of ``errors`` refused for too little speech."""


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
        self.min_samples = self._fewest_samples()
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
                    embedder.calibration_features(int8_calibration)
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
        """Audio files for int8 calibration, evenly spread over the sorted list.

        Arguments
        ---------
        inputs : sequence of path
            Audio files, folders or lists (:func:`expand_inputs`).
        limit : int, optional
            Most files (default: ``int8_calibration_utterances`` of
            verification.yaml).

        Returns
        -------
        list of Path
            Every ``len // limit``-th file of the sorted list, at most ``limit``.

        Example
        -------
        >>> SpeakerEmbedder.calibration_files(["a.wav", "b.wav", "c.wav"], limit=2)
        [PosixPath('a.wav'), PosixPath('b.wav')]
        """
        files = sorted(expand_inputs(inputs))
        if not files:
            raise ValueError(
                "int8_calibration: no audio files found (give files or folders of "
                "real speech)"
            )
        limit = limit or int(default("int8_calibration_utterances"))
        return files[:: max(1, len(files) // limit)][:limit]

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
        >>> import tempfile, soundfile
        >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
        >>> embedder = SpeakerEmbedder(
        ...     KaldiFbank(), None, ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1])
        ... )
        >>> folder = tempfile.mkdtemp()
        >>> soundfile.write(f"{folder}/a.wav", np.random.randn(8000) * 0.1, 16000)
        >>> [f.shape for f in embedder.calibration_features([folder])]
        [torch.Size([48, 80])]
        """
        feats = []
        for path in self.calibration_files(inputs, limit):
            try:
                wav = read_audio(path, self.sample_rate, self.min_samples)
            except AudioError:
                continue  # one unreadable file does not spoil calibration
            x = self.compute_features(wav.to(self.device).float().unsqueeze(0))
            if self.mean_var_norm is not None:
                x = self.mean_var_norm(x, torch.ones(1, device=self.device))
            feats.append(x[0])
        if not feats:
            raise ValueError("int8_calibration: none of the audio files could be read")
        return feats

    def _frames(self, samples: int) -> int:
        """Feature frames the front end gives for a waveform of this length."""
        with torch.no_grad():
            probe = torch.zeros(1, samples, device=self.device)
            try:
                return int(self.compute_features(probe).shape[1])
            except (ValueError, RuntimeError):
                return 0  # shorter than one analysis window

    def _fewest_samples(self) -> int:
        """Smallest waveform that gives ``min_frames`` frames (bisection)."""
        low, high = 1, self.sample_rate
        while self._frames(high) < self.min_frames:
            high *= 2
        while low < high:
            mid = (low + high) // 2
            if self._frames(mid) >= self.min_frames:
                high = mid
            else:
                low = mid + 1
        return low

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
        if speech.seconds < self.min_speech_seconds:
            raise NotEnoughSpeechError(
                path,
                f"{speech.seconds:.2f} s of net speech in {speech.duration:.2f} s "
                f"of audio, less than the {self.min_speech_seconds:g} s minimum "
                "(min_speech_seconds; --min-speech-seconds or --vad off to change)",
            )

    def _check_samples(self, path: PathLike, samples: int) -> None:
        if samples < self.min_samples:
            what = "speech" if self.vad == "trim" else "audio"
            raise AudioError(
                path,
                f"{what} is {samples / self.sample_rate:.3f} s long, shorter than "
                f"the {self.min_samples / self.sample_rate:.3f} s the model needs",
            )

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
        window = int(self.window_seconds * self.sample_rate)
        pending: list[torch.Tensor] = []  # kept audio not yet in a window
        pending_samples = 0
        last_window = None
        directions, norms = None, []
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
            pending.append(kept)
            pending_samples += int(kept.shape[0])
            while pending_samples >= window:
                audio = torch.cat(pending)
                last_window, rest = audio[:window], audio[window:]
                pending, pending_samples = [rest], int(rest.shape[0])
                emb = self.embed_batch([last_window])[0].float()
                norms.append(float(emb.norm()))
                unit = nn.functional.normalize(emb, dim=-1)
                directions = unit if directions is None else directions + unit
        speech = Speech(tuple(_merge(segments)), offset, self.sample_rate)
        if self.detector is not None:
            self._check_speech(path, speech)
        rest = torch.cat(pending) if pending else torch.zeros(0)
        if last_window is None:  # everything kept fits one window
            self._check_samples(path, int(rest.shape[0]))
            return self.embed_batch([rest])[0], speech
        if rest.shape[0]:
            tail = torch.cat([last_window[rest.shape[0] :], rest])
            emb = self.embed_batch([tail])[0].float()
            norms.append(float(emb.norm()))
            directions = directions + nn.functional.normalize(emb, dim=-1)
        direction = nn.functional.normalize(directions, dim=-1)
        return direction * (sum(norms) / len(norms)), speech

    def iter_files(
        self,
        paths: Sequence[PathLike],
        indices: Optional[Sequence[int]] = None,
        batch_size: Optional[int] = None,
        batch_seconds: Optional[float] = None,
        num_workers: Optional[int] = None,
    ) -> Iterator[list[FileResult]]:
        """Embeds files in batches of similar length, yielding as they finish.

        Each file's header is read once, then its audio once, in chunks of
        ``decode_chunk_files`` files (in ``num_workers`` DataLoader worker
        processes when > 0, so the model does not wait for decoding). A
        chunk is sorted longest first and grouped while the padded batch
        (utterances x longest duration) stays within ``batch_seconds`` of
        audio and ``batch_size`` utterances; a longer file forms a batch
        alone, and a file longer than ``window_seconds`` is embedded window
        by window (:meth:`embed_stream`). The defaults (``batch_size``,
        ``batch_seconds_cpu`` / ``batch_seconds_cuda``, ``num_workers``) are
        those of ``hparams/verification.yaml``: on a CPU, batches beyond
        ~20 s of audio ran slower per utterance than batches of one (2-D
        activations outgrow the caches; README, Performance), while a GPU
        needs large batches to fill up.

        Arguments
        ---------
        paths : sequence
            Audio files.
        indices : sequence of int, optional
            The positions of ``paths`` to embed (default: all).
        batch_size, batch_seconds, num_workers : optional
            Batch limits and decoding workers (defaults: the YAML's).

        Yields
        ------
        list of FileResult
            The files of one batch (or one streamed or failed file), each
            with its embedding or the reason it has none.
        """
        if batch_size is None:
            batch_size = int(default("batch_size"))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_seconds is None:
            batch_seconds = default_batch_seconds(self.device.type)
        if not batch_seconds > 0:
            raise ValueError(f"batch_seconds must be > 0, got {batch_seconds}")
        if num_workers is None:
            num_workers = int(default("num_workers"))
        chunks = AudioChunks(
            [str(p) for p in paths],
            range(len(paths)) if indices is None else indices,
            self.sample_rate,
            self.window_seconds,
            int(default("decode_chunk_files")),
        )
        for chunk in decoded_chunks(chunks, num_workers):
            done = [_failed(f, f.error) for f in chunk if f.error is not None]
            if done:
                yield done
            ready = [f for f in chunk if f.error is None]
            for batch in length_batches(
                [f.duration for f in ready], batch_size, batch_seconds
            ):
                yield self._embed_decoded([ready[i] for i in batch])
            del chunk, ready
            trim_heap()

    def _embed_decoded(self, files: Sequence[DecodedFile]) -> list[FileResult]:
        """One batch of decoded files (a streamed file is a batch alone)."""
        results, kept, wavs = [], [], []
        for f in files:
            try:
                if f.wav is None:
                    emb, speech = self.embed_stream(f.path, f.info)
                    results.append(
                        FileResult(f.index, f.path, _numpy(emb), speech, None, False)
                    )
                    continue
                wav, speech = self.speech_of(f.path, f.wav)
                wavs.append(wav)
                kept.append((f, speech))
            except AudioError as err:
                results.append(_failed(f, err.reason, err))
        if wavs:
            for (f, speech), emb in zip(kept, self.embed_batch(wavs)):
                results.append(
                    FileResult(f.index, f.path, _numpy(emb), speech, None, False)
                )
        return results

    def embed_files(
        self,
        paths: Sequence[PathLike],
        batch_size: Optional[int] = None,
        progress: bool = True,
        batch_seconds: Optional[float] = None,
        num_workers: Optional[int] = None,
    ) -> EmbeddedFiles:
        """Embeds many files in batches of similar length (:meth:`iter_files`),
        keeping every result in memory; ``eres2net embed`` streams them to
        disk instead (:mod:`speechbrain_eres2net.inference.extraction`).

        Returns
        -------
        EmbeddedFiles
            Embeddings of the good files, the reason of every refused or
            unreadable one, and each embedded file's speech.
        """
        from tqdm import tqdm

        out = EmbeddedFiles({}, {}, {}, set())
        with tqdm(
            total=len(paths), unit="file", disable=not progress, desc="embedding"
        ) as bar:
            for batch in self.iter_files(
                paths, None, batch_size, batch_seconds, num_workers
            ):
                for r in batch:
                    if r.embedding is not None:
                        out.embeddings[r.path] = r.embedding
                        out.speech[r.path] = r.speech
                    else:
                        out.errors[r.path] = r.error
                        if r.refused:
                            out.refused.add(r.path)
                bar.update(len(batch))
        return out


class FileResult(NamedTuple):
    """One file's outcome in :meth:`SpeakerEmbedder.iter_files`."""

    index: int
    """Position in the input list."""
    path: str
    embedding: Optional[np.ndarray]
    """float32 (embedding_size,), or None when refused or unreadable."""
    speech: Optional[Speech]
    error: Optional[str]
    """Why there is no embedding."""
    refused: bool
    """True when refused for too little speech."""


def _numpy(embedding: torch.Tensor) -> np.ndarray:
    return embedding.detach().float().cpu().numpy().astype(np.float32)


def _failed(
    f: DecodedFile, reason: str, error: Optional[Exception] = None
) -> FileResult:
    refused = isinstance(error, NotEnoughSpeechError)
    return FileResult(f.index, f.path, None, None, reason, refused)


def _merge(segments: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted segments with touching neighbours joined (blocks' edges)."""
    merged: list[tuple[int, int]] = []
    for start, end in segments:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def expand_inputs(inputs: Iterable[PathLike]) -> list[Path]:
    """Audio files named by paths, folders (recursive) or list files.

    A folder contributes every audio file below it (sorted); a ``.txt``,
    ``.lst``, ``.list`` or ``.scp`` file contributes one path per line
    (the last field of a line, so Kaldi ``wav.scp`` lines ``<id> <path>``
    work; relative paths are taken relative to the list file).

    Example
    -------
    >>> expand_inputs([])
    []
    """
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(
                sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            )
        elif item.suffix.lower() in LIST_SUFFIXES and item.is_file():
            for line in item.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    entry = Path(line.split()[-1])
                    files.append(entry if entry.is_absolute() else item.parent / entry)
        else:
            files.append(item)
    return files


LIST_SUFFIXES = {".txt", ".lst", ".list", ".scp"}
