"""An OpenVINO engine for ERes2Net graphs (fp32 or int8) on x86 CPUs.

OpenVINO's CPU plugin runs the same in-memory ONNX graph as the ONNX
Runtime engine (:func:`~.onnx_engine.onnx_graph`, or its int8 QDQ form from
:func:`~.onnx_engine.quantize_int8`, which OpenVINO executes as int8
convolutions). It is the fastest fp32 and int8 engine measured for this
network on CPUs without native bf16 (``python -m benchmarks --only
engines``; the figures are in :mod:`.fastpath`): its oneDNN-based
convolutions beat ONNX Runtime's MLAS kernels here, and it fuses the AFF
element-wise tails into them.

The precision hint is fixed to f32: on bf16-capable CPUs OpenVINO would
otherwise run "fp32" graphs in bf16 by default, which is the PyTorch bf16
path's job (with its own agreement check).

openvino is optional (the ``openvino`` extra):
:func:`openvino_available` lets :mod:`.fastpath` choose another engine.

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

from typing import Optional

import torch

from ..errors import importable, require
from ..settings import default
from .onnx_engine import GraphERes2Net


def openvino_available() -> bool:
    """Whether openvino, and onnx (which builds its graph), can be imported.

    Example
    -------
    >>> import sys
    >>> from unittest import mock
    >>> with mock.patch.dict(sys.modules, {"onnx": None}):  # as if not installed
    ...     openvino_available()
    False
    """
    return importable("onnx", "openvino")


def compile_graph(graph: bytes, threads: Optional[int] = None):
    """An OpenVINO CPU model of an ONNX ``graph``, set for single-stream latency.

    ``threads`` defaults to ``torch.get_num_threads()``, so that
    ``torch.set_num_threads`` / ``OMP_NUM_THREADS`` govern every engine.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> from speechbrain_eres2net.inference.onnx_engine import onnx_graph
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> compiled = compile_graph(onnx_graph(model, torch.randn(1, 50, 80)), 1)
    >>> compiled.input(0).get_any_name()
    'feats'
    """
    openvino = require("openvino", "openvino", "the OpenVINO engine")
    core = openvino.Core()
    config = {
        "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    }
    return core.compile_model(core.read_model(graph), "CPU", config)


def kernel_isas(compiled) -> dict[str, int]:
    """Convolution kernels of a compiled model by implementation, with counts.

    The implementation names say which instruction set runs
    (``brgconv_avx2_f32``, ``jit_avx512_I8``...): the benchmark reports
    them to show that an ISA restriction (``ONEDNN_MAX_CPU_ISA``) took.

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> from speechbrain_eres2net.inference.onnx_engine import onnx_graph
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> kernels = kernel_isas(compile_graph(onnx_graph(model, torch.randn(1, 50, 80))))
    >>> sum(kernels.values())  # one kernel for each of its 34 convolutions
    34
    """
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) != "Convolution":
            continue
        kind = info["primitiveType"].astype(str)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


class OpenVINOERes2Net(GraphERes2Net):
    """An ERes2Net run by OpenVINO (arguments: :class:`~.onnx_engine.GraphERes2Net`).

    Example
    -------
    >>> from speechbrain_eres2net import ERes2Net
    >>> from speechbrain_eres2net.inference.onnx_engine import onnx_graph
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> graph = onnx_graph(model, torch.randn(1, 50, 80), lengths=torch.ones(1))
    >>> ov_model = OpenVINOERes2Net(model, graph)
    >>> x = torch.randn(2, 60, 80)
    >>> ov_model(x, torch.tensor([1.0, 0.5])).shape
    torch.Size([2, 1, 192])
    >>> bool(torch.allclose(ov_model(x), model(x), atol=1e-4))
    True
    """

    engine = "openvino"

    def _load(self, graph: bytes, threads: int) -> None:
        self.threads = threads
        self.lengths_kept = int(default("openvino_lengths_kept"))
        self.shapes: set[tuple[int, ...]] = set()
        self.recompiles = 0
        self._compile()

    def _compile(self) -> None:
        self.compiled = compile_graph(self.graph, self.threads)
        # One request, reused: a SpeakerEmbedder embeds batches one by one.
        self.request = self.compiled.create_infer_request()

    def _run(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in self.shapes:
            # The compiled model holds kernels for every shape it has run
            # (memory grows with the distinct shapes): a fresh one forgets
            # them (hparams/verification.yaml, openvino_lengths_kept).
            if len(self.shapes) >= self.lengths_kept:
                del self.request, self.compiled
                self._compile()
                self.shapes.clear()
                self.recompiles += 1
            self.shapes.add(shape)
        feed = {
            0: x.detach().float().cpu().contiguous().numpy(),
            1: lengths.float().numpy(),
        }
        out = self.request.infer(feed)[self.compiled.output(0)]
        return torch.from_numpy(out.copy())
