"""Length-exact batched speaker embeddings from a model folder.

SpeechBrain's ``EncoderClassifier.encode_batch`` runs the front end on the
padded batch, so a short utterance padded next to a long one gets slightly
different features (and, with the Kaldi front end, extra frames) than it
gets alone. :class:`SpeakerEmbedder` computes the features of each
utterance on its own samples, pads the features, and passes exact relative
frame lengths to the normaliser and to the padding-aware ERes2Net: a batched
embedding equals the utterance's embedding alone up to float rounding. It
loads any model folder (local or on the Hugging Face Hub) through
SpeechBrain's own ``SpeakerRecognition.from_hparams`` and is what the
``eres2net`` command line uses.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..dataio.audio import AUDIO_SUFFIXES, AudioError, check_audio_file, read_audio
from ..paths import PathLike
from ..settings import batch_seconds as default_batch_seconds
from ..settings import default
from .fastpath import fast_path
from .folder import load_model_folder
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


class SpeakerEmbedder:
    """Batched, length-exact embeddings with a model folder's modules.

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
        (:func:`~speechbrain_eres2net.inference.probe.probe_model`).
    sample_rate : int
        Rate the model expects; files are resampled to it.
    threshold : float, optional
        Cosine threshold for same/different decisions, if known.
    device : str
        Where to run.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net, KaldiFbank
    >>> from speechbrain.processing.features import InputNormalization
    >>> embedder = SpeakerEmbedder(
    ...     KaldiFbank(mean_norm=False),
    ...     InputNormalization(norm_type="sentence", std_norm=False),
    ...     ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]),
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
    ) -> None:
        self.device = torch.device(device)
        self.compute_features = compute_features.to(self.device).eval()
        self.mean_var_norm = (
            None if mean_var_norm is None else mean_var_norm.to(self.device).eval()
        )
        self.embedding_model = embedding_model.to(self.device).eval()
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.shape = probe_model(
            self.compute_features, self.embedding_model, sample_rate, self.device
        )
        self.min_frames = self.shape.min_frames
        self.min_samples = self._fewest_samples()

    @classmethod
    def from_folder(
        cls,
        source: PathLike,
        savedir: Optional[PathLike] = None,
        device: str = "cpu",
        fast: bool = True,
        precision: str = "auto",
        int8_calibration: Optional[Sequence[PathLike]] = None,
    ) -> SpeakerEmbedder:
        """Loads a model folder; ``fast`` uses the optimised inference path.

        ``precision`` is that of
        :func:`~speechbrain_eres2net.inference.fastpath.optimize_for_inference`
        (``"auto"``, ``"fp32"``, ``"bf16"``, ``"int8"``); ``"int8"`` needs
        ``calibration``: audio files, folders or lists of real speech
        (:func:`expand_inputs`), of which ``int8_calibration_utterances``
        (verification.yaml), evenly spread over the sorted list, calibrate
        the quantization. Other precisions ignore ``int8_calibration``.
        """
        if precision == "int8" and not fast:
            raise ValueError("from_folder: precision='int8' needs fast=True")
        return cls.from_recognizer(
            load_model_folder(source, savedir, device),
            device,
            fast,
            precision,
            int8_calibration,
        )

    @classmethod
    def from_recognizer(
        cls,
        pretrained,
        device: str = "cpu",
        fast: bool = True,
        precision: str = "auto",
        int8_calibration: Optional[Sequence[PathLike]] = None,
    ) -> SpeakerEmbedder:
        """The embedder of an already loaded ``SpeakerRecognition`` (a model
        folder); the other arguments are those of :meth:`from_folder`.
        """
        hparams = pretrained.hparams
        embedder = cls(
            pretrained.mods.compute_features,
            pretrained.mods.mean_var_norm,
            pretrained.mods.embedding_model,
            sample_rate=int(getattr(hparams, "sample_rate", 16000)),
            threshold=getattr(hparams, "verification_threshold", None),
            device=device,
        )
        if fast:
            feats = None
            if precision == "int8":
                feats = embedder.calibration_features(int8_calibration or [])
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

        Each waveform gets its own features (so padding never changes them);
        features are padded and passed with exact relative lengths.
        """
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
        frames = torch.tensor([f.shape[0] for f in feats], device=self.device)
        padded = nn.utils.rnn.pad_sequence(feats, batch_first=True)
        lengths = frames.float() / padded.shape[1]
        if self.mean_var_norm is not None:
            padded = self.mean_var_norm(padded, lengths)
        return self.embedding_model(padded, lengths).squeeze(1)

    def embed_file(self, path: PathLike) -> torch.Tensor:
        """Embedding of one audio file; raises :class:`AudioError` on bad input."""
        wav = read_audio(path, self.sample_rate, self.min_samples)
        return self.embed_batch([wav])[0]

    def embed_files(
        self,
        paths: Sequence[PathLike],
        batch_size: Optional[int] = None,
        progress: bool = True,
        batch_seconds: Optional[float] = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Embeds many files in batches of similar length.

        Files are sorted longest first and grouped while the padded batch
        (utterances x longest duration) stays within ``batch_seconds`` of
        audio and ``batch_size`` utterances; a longer file forms a batch
        alone. The defaults (``batch_size``, ``batch_seconds_cpu`` /
        ``batch_seconds_cuda``) are those of ``hparams/verification.yaml``:
        on a CPU, batches beyond ~20 s of audio ran slower per utterance
        than batches of one (2-D activations outgrow the caches; README,
        Performance), while a GPU needs large batches to fill up.

        Returns
        -------
        embeddings : dict
            str(path) -> float32 (embedding_size,) array, for every good file.
        errors : dict
            str(path) -> reason, for every file that could not be embedded.
        """
        from tqdm import tqdm

        if batch_size is None:
            batch_size = int(default("batch_size"))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_seconds is None:
            batch_seconds = default_batch_seconds(self.device.type)
        if not batch_seconds > 0:
            raise ValueError(f"batch_seconds must be > 0, got {batch_seconds}")
        errors: dict[str, str] = {}
        sized = []
        for path in paths:
            try:
                sized.append((check_audio_file(path).duration, str(path)))
            except AudioError as err:
                errors[str(path)] = err.reason
        # Longest first, so the first batch shows the peak memory at once.
        sized.sort(key=lambda item: -item[0])
        embeddings: dict[str, np.ndarray] = {}
        bar = tqdm(
            total=len(sized), unit="file", disable=not progress, desc="embedding"
        )
        for batch in length_batches([d for d, _ in sized], batch_size, batch_seconds):
            names, wavs = [], []
            for _, path in (sized[i] for i in batch):
                try:
                    wavs.append(read_audio(path, self.sample_rate, self.min_samples))
                    names.append(path)
                except AudioError as err:
                    errors[path] = err.reason
            if wavs:
                for name, emb in zip(names, self.embed_batch(wavs).cpu().numpy()):
                    embeddings[name] = emb.astype(np.float32)
            bar.update(len(batch))
        bar.close()
        return embeddings, errors

    def score(self, first: torch.Tensor, second: torch.Tensor) -> float:
        """Cosine similarity of two embeddings."""
        return float(nn.functional.cosine_similarity(first, second, dim=-1, eps=1e-8))


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
