"""ONNX graphs of an ERes2Net and an ONNX Runtime engine for them (fp32 or int8).

This module builds the graph in memory (:func:`onnx_graph`), quantizes it
(:func:`quantize_int8`: post-training static quantization of the
convolutions, per-channel weights, calibrated on features of real speech)
and runs it (:class:`OrtERes2Net`, same call contract as
:class:`~speechbrain_eres2net.ERes2Net`; :class:`GraphERes2Net` is that
contract for any engine that runs the graph, OpenVINO's included).
``export/onnx.py`` writes the same graphs to files; it lives above
``inference/`` in the package layout, so the graph building lives here.

onnxruntime and onnx are optional (the ``export`` extra): the functions
import them when called and raise
:class:`~speechbrain_eres2net.errors.MissingDependencyError` without them;
:func:`onnxruntime_available` lets callers choose another engine instead.

Quantization format: QDQ (QuantizeLinear/DequantizeLinear pairs around
each convolution), which ONNX Runtime's graph optimiser turns into
``QLinearConv`` kernels, uint8 activations and int8 weights (U8S8, the
pair ONNX Runtime's x86 kernels are built for; see "Quantize ONNX models",
onnxruntime.ai/docs/performance/model-optimizations/quantization.html).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import importable, require
from ..lobes.eres2net import ERes2Net, valid_frames
from ..settings import default

logger = logging.getLogger(__name__)

OPSET = 17
# onnxruntime 1.32's histogram calibrators (percentile, entropy) stack the
# activations of all calibration runs into one array and fail on utterances
# of different lengths (measured: "inhomogeneous shape"), so min/max only.
CALIBRATION_METHODS = ("minmax",)


def onnxruntime_available() -> bool:
    """Whether onnxruntime (and onnx) can be imported.

    Example
    -------
    >>> import sys
    >>> from unittest import mock
    >>> with mock.patch.dict(sys.modules, {"onnx": None}):  # as if not installed
    ...     onnxruntime_available()
    False
    """
    return importable("onnx", "onnxruntime")


def onnx_graph(
    module: nn.Module,
    example: torch.Tensor,
    input_name: str = "feats",
    time_axis: str = "frames",
    opset: int = OPSET,
    lengths: Optional[torch.Tensor] = None,
) -> bytes:
    """Traces ``module`` to an ONNX graph (dynamic batch and time), as bytes.

    The TorchScript exporter (``dynamo=False``) is used: the dynamo one
    needs ``onnxscript``, which this package does not depend on, and the
    traced ERes2Net graph is shape-generic (strides and the statistics
    pooling are computed from the runtime shape).

    Arguments
    ---------
    module : torch.nn.Module
        Maps ``example`` to (batch, emb) or (batch, 1, emb) embeddings.
    example : torch.Tensor
        Example input, (batch, time, ...).
    input_name : str
        Name of the graph input.
    time_axis : str
        Name of the dynamic axis 1 of the input.
    opset : int
        ONNX opset.
    lengths : torch.Tensor, optional
        Example (batch,) relative lengths: the graph then takes them as a
        second input, ``lengths``, and masks the padding as ``module``
        does (an ERes2Net traced with lengths always masks).

    Returns
    -------
    bytes
        The serialised ``onnx.ModelProto``, output named ``embedding``.

    Example
    -------
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> graph = onnx_graph(model, torch.randn(1, 50, 80))
    >>> import onnx
    >>> proto = onnx.load_from_string(graph)
    >>> shape = proto.graph.input[0].type.tensor_type.shape.dim
    >>> [d.dim_param or d.dim_value for d in shape], proto.graph.output[0].name
    (['batch', 'frames', 80], 'embedding')
    >>> import onnxruntime  # another batch size and length than the example
    >>> x = torch.randn(2, 70, 80)
    >>> cpu = ["CPUExecutionProvider"]
    >>> session = onnxruntime.InferenceSession(graph, providers=cpu)
    >>> out = session.run(None, {"feats": x.numpy()})[0]
    >>> torch.allclose(torch.from_numpy(out), model(x).detach(), atol=1e-5)
    True
    >>> masked = onnx_graph(model, torch.randn(1, 50, 80), lengths=torch.ones(1))
    >>> session = onnxruntime.InferenceSession(masked, providers=cpu)
    >>> [i.name for i in session.get_inputs()]
    ['feats', 'lengths']
    >>> padded = torch.cat([x[:1, :40], torch.zeros(1, 24, 80)], dim=1)
    >>> feed = {"feats": padded.numpy(), "lengths": torch.tensor([40 / 64]).numpy()}
    >>> out = session.run(None, feed)[0]  # the padding is masked
    >>> torch.allclose(torch.from_numpy(out), model(x[:1, :40]).detach(), atol=1e-5)
    True
    """
    inputs, names = (example,), [input_name]
    axes = {input_name: {0: "batch", 1: time_axis}, "embedding": {0: "batch"}}
    if lengths is not None:
        inputs, names = (example, lengths), [input_name, "lengths"]
        axes["lengths"] = {0: "batch"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its own deprecation and about
        # traced shape arithmetic, which is what makes the axes dynamic.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            inputs,
            buffer,
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return buffer.getvalue()


class _FeatsReader:
    """onnxruntime ``CalibrationDataReader`` over (frames, feat_dim) tensors
    (unpadded: relative length 1 where the graph takes ``lengths``)."""

    def __init__(
        self, feats: Sequence[torch.Tensor], input_name: str, with_lengths: bool
    ) -> None:
        self.items = iter(list(feats))
        self.input_name = input_name
        self.with_lengths = with_lengths

    def get_next(self) -> Optional[dict]:
        item = next(self.items, None)
        if item is None:
            return None
        feed = {self.input_name: item.detach().float().cpu().unsqueeze(0).numpy()}
        if self.with_lengths:
            feed["lengths"] = torch.ones(1).numpy()
        return feed


def quantize_int8(
    graph: bytes,
    calibration_feats: Sequence[torch.Tensor],
    *,
    method: str = "minmax",
    reduce_range: bool = False,
    input_name: str = "feats",
) -> bytes:
    """Post-training static int8 quantization of a graph's convolutions.

    Weights are quantized per output channel (int8, symmetric), activations
    per tensor (uint8) with ranges calibrated by running the fp32 graph on
    ``calibration_feats``; only ``Conv`` nodes are quantized (the
    statistics pooling and the embedding layer stay fp32).

    Arguments
    ---------
    graph : bytes
        fp32 graph from :func:`onnx_graph`.
    calibration_feats : sequence of torch.Tensor
        Single utterances of real speech as the graph takes them without
        the batch axis: (frames, feat_dim) normalised features, or
        (samples,) waveforms for a graph with the front end inside; each is
        run alone (batch 1).
    method : str
        Calibration: ``"minmax"`` (the only one that takes utterances of
        different lengths).
    reduce_range : bool
        7-bit weights: avoids the int16 saturation of the U8S8 kernels on
        x86 CPUs without VNNI (AVX2), at some precision cost.
    input_name : str
        The graph's input name.

    Returns
    -------
    bytes
        The quantized graph (QDQ format).

    Example
    -------
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> graph = onnx_graph(model, torch.randn(1, 50, 80))
    >>> int8 = quantize_int8(graph, [torch.randn(60, 80), torch.randn(80, 80)])
    >>> b"QuantizeLinear" in int8
    True
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(
            f"quantize_int8: method must be one of {CALIBRATION_METHODS}, "
            f"got {method!r}"
        )
    feats = list(calibration_feats)
    if not feats:
        raise ValueError("quantize_int8: calibration_feats is empty")
    if any(f.dim() not in (1, 2) for f in feats):
        raise ValueError(
            "quantize_int8: calibration_feats must be single utterances, "
            "(frames, feat_dim) features or (samples,) waveforms"
        )
    onnx = require("onnx", "export", "int8 quantization")
    quantization = require("onnxruntime.quantization", "export", "int8 quantization")
    inputs = [i.name for i in onnx.load_from_string(graph).graph.input]
    calibrate_method = {"minmax": quantization.CalibrationMethod.MinMax}[method]
    with tempfile.TemporaryDirectory(prefix="eres2net-int8-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(graph)
        # Quantization logs one line per tensor at INFO; keep them quiet.
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(max(quiet, logging.WARNING))
        try:
            quantization.quantize_static(
                str(source),
                str(target),
                _FeatsReader(feats, input_name, "lengths" in inputs),
                quant_format=quantization.QuantFormat.QDQ,
                op_types_to_quantize=["Conv"],
                per_channel=True,
                reduce_range=reduce_range,
                activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
                calibrate_method=calibrate_method,
            )
        finally:
            logging.getLogger().setLevel(quiet)
        return target.read_bytes()


def ort_session(graph: bytes, threads: Optional[int] = None):
    """An ONNX Runtime CPU session of ``graph``, all graph optimisations on.

    ``threads`` defaults to ``torch.get_num_threads()``, so that
    ``torch.set_num_threads`` / ``OMP_NUM_THREADS`` govern both engines.

    Example
    -------
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> session = ort_session(onnx_graph(model, torch.randn(1, 50, 80)), threads=1)
    >>> session.get_inputs()[0].name
    'feats'
    """
    ort = require("onnxruntime", "export", "the ONNX Runtime engine")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class GraphERes2Net(nn.Module):
    """An ERes2Net graph run by another engine, with the ERes2Net call contract.

    ``forward(x, lengths=None) -> (batch, 1, emb)``. The graph takes
    features and relative lengths and masks the padding as the eager
    model does (:func:`onnx_graph` with ``lengths``). A batch with
    ``lengths`` runs one utterance at a time, each on its valid frames
    zero-padded to the next multiple of ``graph_frames_multiple``
    (verification.yaml): the engines set kernels up for each new input
    shape (OpenVINO: about 40 ms for ERes2Net-base, measured, a fifth of
    an utterance's time when every file has its own length), and a shape
    that depends on the utterance alone gives it the same bits in any
    batch (a resumed embed equals an uninterrupted one), where a batched
    kernel may round differently. Without ``lengths`` the batch runs as
    one, at its own shape. Subclasses implement :meth:`_run`.

    Arguments
    ---------
    model : ERes2Net
        The model the graph was made from (shape checks, ``min_frames``).
    graph : bytes
        Its ONNX graph (fp32 or int8), inputs ``feats`` and ``lengths``.
    precision : str
        ``"fp32"`` or ``"int8"``, for reports.
    threads : int, optional
        The engine's threads (default: ``torch.get_num_threads()``, so that
        ``torch.set_num_threads`` / ``OMP_NUM_THREADS`` govern every engine).
    """

    engine = ""
    padding_exact = True  # each utterance runs alone, at its own shape

    def __init__(
        self,
        model: ERes2Net,
        graph: bytes,
        precision: str = "fp32",
        threads: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.graph = graph
        self.precision = precision
        self.feat_dim = model.feat_dim
        self.embedding_size = model.embedding_size
        self.min_frames = model.min_frames
        self.frames_multiple = int(default("graph_frames_multiple"))
        self._load(graph, threads or torch.get_num_threads())

    def _load(self, graph: bytes, threads: int) -> None:
        """Prepares the engine to run ``graph`` on ``threads`` threads."""
        raise NotImplementedError

    def _run(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embeddings of one (batch, time, feat_dim) batch and its (batch,)
        relative lengths."""
        raise NotImplementedError

    def _padded(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One utterance's (frames, feat_dim) features padded to the next
        multiple of ``frames_multiple`` frames, and its relative length."""
        frames = feats.shape[0]
        steps = -(-frames // self.frames_multiple) * self.frames_multiple
        padded = feats.new_zeros(1, steps, feats.shape[1])
        padded[0, :frames] = feats
        return padded, torch.tensor([frames / steps])

    def forward(
        self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Computes (batch, 1, embedding_size) fp32 embeddings.

        Arguments
        ---------
        x : torch.Tensor
            (batch, time, feat_dim) features.
        lengths : torch.Tensor, optional
            (batch,) relative lengths; None means no padding.

        Returns
        -------
        torch.Tensor
            (batch, 1, embedding_size) embeddings, on the device of ``x``.
        """
        frames = valid_frames(x, lengths, self.feat_dim, self.min_frames)
        if lengths is None:
            out = self._run(x, torch.ones(x.shape[0]))
        else:
            if frames is None:  # nothing padded
                frames = torch.full((x.shape[0],), x.shape[1])
            out = torch.cat(
                [
                    self._run(*self._padded(x[i, : int(n)]))
                    for i, n in enumerate(frames.tolist())
                ]
            )
        return out.reshape(x.shape[0], 1, -1).to(x.device)


class OrtERes2Net(GraphERes2Net):
    """An ERes2Net run by ONNX Runtime (arguments: :class:`GraphERes2Net`).

    Example
    -------
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> graph = onnx_graph(model, torch.randn(1, 50, 80), lengths=torch.ones(1))
    >>> ort_model = OrtERes2Net(model, graph)
    >>> x = torch.randn(2, 60, 80)
    >>> ort_model(x, torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 1, 192])
    >>> bool(torch.allclose(ort_model(x), model(x), atol=1e-4))
    True
    """

    engine = "onnxruntime"

    def _load(self, graph: bytes, threads: int) -> None:
        self.session = ort_session(graph, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def _run(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        arrays = [x.detach().float().cpu().contiguous(), lengths.float()]
        feed = dict(zip(self.input_names, (a.numpy() for a in arrays)))
        return torch.from_numpy(self.session.run(None, feed)[0])
