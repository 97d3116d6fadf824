"""ONNX export of a model folder, optionally with the filterbank inside the graph.

Exporter choice (torch 2.14): ``torch.onnx.export(..., dynamo=True)`` is
the default there but needs ``onnxscript``, which this package does not
depend on; the TorchScript exporter (``dynamo=False``) traces ERes2Net in
well under a second, and the traced graph is shape-generic (convolution
strides and the statistics pooling are computed from the runtime shape),
so batch and time are dynamic axes. Opset :data:`OPSET` (17).

Neither front end exports as is: SpeechBrain's ``Fbank`` uses a complex
``torch.stft`` and the Kaldi fbank ``torch.fft.rfft``, which the TorchScript
exporter cannot convert. :class:`FramedDFT` computes the same short-time
spectrum with a frame gather and a real DFT as a (float64) matrix product,
and :class:`ExportableKaldiFbank` / :func:`exportable_front_end` rebuild
both front ends on it, so ``--with-features`` graphs take 16 kHz waveforms.

Graphs take unpadded batches (every row a full utterance): inputs
``feats`` (batch, frames, n_mels) -- normalised features, as the
official 3D-Speaker ONNX export -- or ``wavs`` (batch, samples); output
``embedding`` (batch, embedding_size).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torchaudio.compliance import kaldi

from .. import settings
from ..dataio.audio import read_audio
from ..dataio.files import atomic_path
from ..errors import require
from ..inference.onnx_engine import OPSET
from ..lobes.features import KaldiFbank
from ..paths import PathLike
from .sherpa_onnx import (
    NotDeployableError,
    SherpaDeployment,
    sherpa_deployment,
    sherpa_metadata,
)

logger = logging.getLogger(__name__)


class FramedDFT(nn.Module):
    """Windowed frames and their real DFT, traceable to plain ONNX ops.

    Frames are gathered with an index computed from the runtime length
    (``snip_edges`` framing: ``1 + (samples - frame_length) // hop``); the
    DFT is a product with cosine and sine matrices in float64, so it is as
    exact as an FFT.

    Arguments
    ---------
    frame_length : int
        Samples per frame.
    hop : int
        Samples between frame starts.
    n_fft : int
        DFT size (frames are zero-padded to it).

    Example
    -------
    >>> dft = FramedDFT(400, 160, 512)
    >>> frames = dft.frames(torch.randn(2, 16000))
    >>> frames.shape
    torch.Size([2, 98, 400])
    >>> re, im = dft.dft(frames)
    >>> ref = torch.fft.rfft(frames.double(), n=512)
    >>> bool(torch.allclose(re, ref.real, atol=1e-9))
    True
    """

    def __init__(self, frame_length: int, hop: int, n_fft: int) -> None:
        super().__init__()
        self.frame_length = frame_length
        self.hop = hop
        self.n_fft = n_fft
        time = torch.arange(frame_length, dtype=torch.float64)
        freq = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        angle = 2 * math.pi * time[:, None] * freq[None, :] / n_fft
        self.register_buffer("cos", torch.cos(angle), persistent=False)
        self.register_buffer("sin", -torch.sin(angle), persistent=False)
        self.register_buffer("offsets", torch.arange(frame_length), persistent=False)

    def frames(self, wavs: torch.Tensor, snip_edges: bool = True) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, frame_length).

        ``snip_edges=False`` is Kaldi's centred framing: one frame per hop,
        samples before the start or past the end reflected back in.
        """
        samples = wavs.shape[1]
        if snip_edges:
            count = torch.div(
                samples - self.frame_length, self.hop, rounding_mode="floor"
            )
            starts = torch.arange(count + 1, device=wavs.device) * self.hop
        else:
            count = torch.div(samples + self.hop // 2, self.hop, rounding_mode="floor")
            shift = self.hop // 2 - self.frame_length // 2
            starts = torch.arange(count, device=wavs.device) * self.hop + shift
        index = starts[:, None] + self.offsets[None, :]
        if not snip_edges:
            index = torch.where(index < 0, -index - 1, index)
            index = torch.where(index >= samples, 2 * samples - 1 - index, index)
        return wavs[:, index]

    def dft(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary DFT parts (float64) of zero-padded frames."""
        frames = frames.double()
        return frames @ self.cos, frames @ self.sin


class ExportableKaldiFbank(nn.Module):
    """:class:`~speechbrain_eres2net.lobes.features.KaldiFbank` as traceable ops.

    Same computation as ``torchaudio.compliance.kaldi.fbank`` (DC removal,
    pre-emphasis 0.97, povey window, power spectrum, Kaldi mel banks, log
    with float epsilon floor) with the reference's framing and mel range,
    batched over full-length waveforms.

    Example
    -------
    >>> wavs = torch.rand(2, 8000) - 0.5
    >>> for ref in (KaldiFbank(), KaldiFbank(high_freq=-400.0, snip_edges=False)):
    ...     ours = ExportableKaldiFbank(ref)(wavs)
    ...     print(bool(torch.allclose(ours, ref(wavs), atol=1e-3)))
    True
    True
    """

    def __init__(self, reference: KaldiFbank) -> None:
        super().__init__()
        n_fft = 2 ** math.ceil(math.log2(reference.window_samples))
        self.dft = FramedDFT(reference.window_samples, reference.hop_samples, n_fft)
        self.mean_norm = reference.mean_norm
        self.snip_edges = reference.snip_edges
        window = torch.hann_window(
            reference.window_samples, periodic=False, dtype=torch.float64
        )
        self.register_buffer("window", window.pow(0.85), persistent=False)
        banks, _ = kaldi.get_mel_banks(
            reference.n_mels,
            n_fft,
            float(reference.sample_rate),
            reference.low_freq,
            reference.high_freq,
            100.0,
            -500.0,
            1.0,
        )
        banks = nn.functional.pad(banks, (0, 1)).double()  # Nyquist bin has no weight
        self.register_buffer("banks", banks.t(), persistent=False)

    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        """(batch, samples) waveforms -> (batch, frames, n_mels) features."""
        frames = self.dft.frames(wavs, self.snip_edges).double()
        frames = frames - frames.mean(dim=-1, keepdim=True)
        previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - 0.97 * previous) * self.window
        re, im = self.dft.dft(frames)
        mel = (re * re + im * im) @ self.banks
        feats = torch.log(mel.clamp(min=torch.finfo(torch.float32).eps))
        if self.mean_norm:
            feats = feats - feats.mean(dim=1, keepdim=True)
        return feats.to(wavs.dtype)


class ExportableSTFT(nn.Module):
    """SpeechBrain's ``STFT`` output (batch, frames, bins, 2) via :class:`FramedDFT`."""

    def __init__(self, reference: nn.Module) -> None:
        super().__init__()
        if reference.center and reference.pad_mode != "constant":
            raise ValueError(
                f"ONNX front end: STFT pad_mode {reference.pad_mode!r} is not supported"
            )
        self.center = reference.center
        self.pad = reference.n_fft // 2
        self.dft = FramedDFT(reference.n_fft, reference.hop_length, reference.n_fft)
        window = reference.window.double()
        left = (reference.n_fft - reference.win_length) // 2
        window = nn.functional.pad(
            window, (left, reference.n_fft - reference.win_length - left)
        )
        self.register_buffer("window", window, persistent=False)

    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, frames, bins, 2) real/imaginary parts."""
        if self.center:
            wavs = nn.functional.pad(wavs, (self.pad, self.pad))
        re, im = self.dft.dft(self.dft.frames(wavs) * self.window)
        return torch.stack([re, im], dim=-1).to(wavs.dtype)


def exportable_front_end(compute_features: nn.Module) -> nn.Module:
    """A traceable copy of a model folder's front end.

    Supports our :class:`KaldiFbank` and SpeechBrain's ``Fbank`` (its STFT
    replaced by :class:`ExportableSTFT`); anything else is a ``ValueError``.
    """
    if isinstance(compute_features, KaldiFbank):
        return ExportableKaldiFbank(compute_features)
    from speechbrain.lobes.features import Fbank

    if isinstance(compute_features, Fbank):
        front = copy.deepcopy(compute_features)
        front.compute_STFT = ExportableSTFT(compute_features.compute_STFT)
        return front
    raise ValueError(
        f"--with-features supports KaldiFbank and SpeechBrain Fbank front ends, "
        f"not {type(compute_features).__name__}; export without --with-features "
        "and compute features outside the graph"
    )


class EmbeddingGraph(nn.Module):
    """What the ONNX graph computes: (features or waveforms) -> embeddings.

    Arguments
    ---------
    embedding_model : nn.Module
        ERes2Net, ``(feats) -> (batch, 1, emb)``.
    front_end : nn.Module, optional
        Traceable waveform front end; None for a features-input graph.
    mean_var_norm : nn.Module, optional
        SpeechBrain normaliser applied after the front end.
    """

    def __init__(
        self,
        embedding_model: nn.Module,
        front_end: Optional[nn.Module] = None,
        mean_var_norm: Optional[nn.Module] = None,
    ) -> None:
        super().__init__()
        self.embedding_model = embedding_model
        self.front_end = front_end
        self.mean_var_norm = mean_var_norm

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(batch, frames, feats) or (batch, samples) -> (batch, emb)."""
        if self.front_end is not None:
            inputs = self.front_end(inputs)
            if self.mean_var_norm is not None:
                full = torch.ones(inputs.shape[0], device=inputs.device)
                inputs = self.mean_var_norm(inputs, full)
        return self.embedding_model(inputs).squeeze(1)


def _batch_generic_length_to_mask(length, max_len=None, dtype=None, device=None):
    """SpeechBrain's ``length_to_mask`` without ``len(length)``.

    ``len()`` of a tensor is a Python int, which the tracer records as a
    constant: the ECAPA-TDNN graph then only ran at the batch size it was
    traced with. Broadcasting keeps the batch dynamic.
    """
    if max_len is None:
        max_len = length.max().long()
    positions = torch.arange(max_len, device=length.device, dtype=length.dtype)
    mask = positions.unsqueeze(0) < length.unsqueeze(1)
    return mask.to(dtype=dtype or length.dtype, device=device or length.device)


@contextlib.contextmanager
def batch_generic_masks():
    """While tracing, ECAPA-TDNN's pooling masks keep the batch axis dynamic.

    A patch of SpeechBrain's module-level ``length_to_mask`` as ECAPA_TDNN
    sees it: SpeechBrain has no public hook for it, and the exporter that
    would not need one (torch's dynamo exporter) needs ``onnxscript``.
    """
    from speechbrain.lobes.models import ECAPA_TDNN

    original = ECAPA_TDNN.length_to_mask
    ECAPA_TDNN.length_to_mask = _batch_generic_length_to_mask
    try:
        yield
    finally:
        ECAPA_TDNN.length_to_mask = original


def _sherpa_check(
    pretrained, with_features: bool, sherpa_onnx: Optional[bool]
) -> Optional[SherpaDeployment]:
    """How the export serves sherpa-onnx: None where it adds no metadata."""
    if sherpa_onnx is False:
        return None
    mods = pretrained.mods
    try:
        if with_features:
            raise NotDeployableError(
                "sherpa-onnx computes the features itself and feeds them to the "
                "graph; export without --with-features"
            )
        deployment = sherpa_deployment(mods.compute_features, mods.mean_var_norm)
    except NotDeployableError as err:
        if sherpa_onnx:
            raise
        logger.info("no sherpa-onnx metadata: %s", err)
        return None
    if not deployment.exact:
        logger.warning("sherpa-onnx: %s", deployment.note)
    return deployment


def build_graph(pretrained, with_features: bool = False) -> EmbeddingGraph:
    """The module to export from a loaded model folder (``SpeakerRecognition``)."""
    mods = pretrained.mods
    if not with_features:
        return EmbeddingGraph(mods.embedding_model).eval()
    return EmbeddingGraph(
        mods.embedding_model,
        exportable_front_end(mods.compute_features),
        mods.mean_var_norm,
    ).eval()


def _with_metadata(model: bytes, metadata: dict[str, str]) -> bytes:
    """The serialized graph with ``metadata`` in its ``metadata_props``."""
    import onnx

    proto = onnx.load_from_string(model)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def _card_language(model_dir: PathLike) -> str:
    """The first language of the folder's model card, or ''."""
    card = Path(model_dir) / "README.md"
    if not card.is_file():
        return ""
    from huggingface_hub import ModelCard

    language = ModelCard.load(card).data.language or ""
    return language[0] if isinstance(language, list) and language else str(language)


def export_onnx(
    model_dir: PathLike,
    out: PathLike,
    with_features: bool = False,
    opset: int = OPSET,
    int8_calibration: Optional[Sequence[PathLike]] = None,
    sherpa_onnx: Optional[bool] = None,
) -> Path:
    """Exports a model folder to ONNX (dynamic batch and time) and checks it.

    Arguments
    ---------
    model_dir : path
        Model folder (or Hub id).
    out : path
        ``.onnx`` file to write (atomically).
    with_features : bool
        Put the filterbank in the graph: input ``wavs`` (batch, samples) at
        the model's sample rate instead of ``feats`` (batch, frames, n_mels).
    opset : int
        ONNX opset.
    int8_calibration : sequence of path, optional
        Audio files, folders or lists of real speech: write an int8 graph
        (convolutions statically quantized, QDQ format, calibrated on
        ``int8_calibration_utterances`` of them; see
        :func:`~speechbrain_eres2net.inference.onnx_engine.quantize_int8`).
    sherpa_onnx : bool, optional
        Write the metadata sherpa-onnx needs to run the graph
        (:mod:`~speechbrain_eres2net.export.sherpa_onnx`). None (default):
        whenever the folder can deploy there; True: the folder must, else
        :class:`~speechbrain_eres2net.export.sherpa_onnx.NotDeployableError`
        says why before anything is exported; False: never.

    Returns
    -------
    Path
        The written file, which ``onnx.checker`` accepts.
    """
    from ..inference.embedder import SpeakerEmbedder
    from ..inference.folder import load_model_folder
    from ..inference.onnx_engine import onnx_graph, quantize_int8

    onnx = require("onnx", "export", "ONNX export")

    pretrained = load_model_folder(model_dir)
    rate = int(getattr(pretrained.hparams, "sample_rate", 16000))
    deployment = _sherpa_check(pretrained, with_features, sherpa_onnx)
    graph = build_graph(pretrained, with_features)
    if with_features:
        example, name, axis = torch.randn(2, rate) * 0.1, "wavs", "samples"
    else:
        # Any lobe: the feature size is what the front end gives (ECAPA_TDNN
        # and ResNet have no feat_dim attribute).
        with torch.no_grad():
            feat_dim = pretrained.mods.compute_features(torch.zeros(1, rate)).shape[-1]
        example, name, axis = torch.randn(2, 200, feat_dim), "feats", "frames"
    with batch_generic_masks():
        model = onnx_graph(graph, example, name, axis, opset)
    if int8_calibration is not None:
        embedder = SpeakerEmbedder(
            pretrained.mods.compute_features,
            pretrained.mods.mean_var_norm,
            pretrained.mods.embedding_model,
            sample_rate=rate,
        )
        if with_features:
            files = embedder.calibration_files(int8_calibration)
            inputs = [read_audio(f, rate, embedder.min_samples) for f in files]
        else:
            inputs = embedder.calibration_features(int8_calibration)
        model = quantize_int8(
            model,
            inputs,
            method=settings.default("int8_calibration_method"),
            reduce_range=settings.default("int8_reduce_range"),
            input_name=name,
        )
    if deployment is not None:
        with torch.no_grad():
            dim = graph(example[:1]).shape[-1]
        model = _with_metadata(
            model,
            sherpa_metadata(
                rate,
                dim,
                language=_card_language(model_dir) if Path(model_dir).is_dir() else "",
                comment=f"ERes2Net model folder {Path(model_dir).name}",
            ),
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(model)
        onnx.checker.check_model(str(tmp), full_check=True)
    return out
