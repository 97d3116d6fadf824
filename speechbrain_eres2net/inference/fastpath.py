"""Fast inference path for ERes2Net: folded BatchNorm, bf16, OpenVINO/ONNX Runtime.

:func:`optimize_for_inference` turns a trained :class:`ERes2Net` into a
module with the same ``forward(x, lengths=None) -> (batch, 1, emb)``
contract that runs faster:

* every BatchNorm2d is folded into the convolution before it
  (:mod:`.torch_engine`, which also holds the bf16 module; stem, block
  1x1/3x3 convolutions, projection shortcuts, the two 1x1 convolutions of
  every AFF); this is exact up to float rounding, also on padded frames,
  so the copy keeps the padding-aware ``lengths`` logic of the original;
* where the processor computes bf16 natively (AVX512-BF16 / AMX CPUs, or
  a CUDA GPU with bf16), convolutions and linear layers run under bf16
  autocast with fp32 accumulation, and the statistics pooling and the
  embedding layer run in fp32. Before returning, the fast module is
  compared with the original on a random input and falls back to fp32 if
  the cosine is below ``min_cosine``;
* on other x86 CPUs (``torch.backends.cpu.get_cpu_capability()`` AVX2 or
  AVX512 without bf16) the folded graph runs in fp32 on the first
  installed engine of ``fp32_engine_cpu`` (verification.yaml): OpenVINO
  (:mod:`.openvino_engine`), then ONNX Runtime (:mod:`.onnx_engine`), else
  PyTorch fp32 with channels-last weights; the graph is traced once per
  model and read from a cache folder after (:mod:`.graph_cache`);
* ``precision="int8"`` (opt-in, needs calibration features of real speech)
  runs the convolutions statically quantized, on the first installed
  engine of ``int8_engine_cpu`` (OpenVINO, then ONNX Runtime; both need
  onnxruntime's quantizer).

The engine order is measured (``python -m benchmarks --only engines``,
``benchmarks/results_engines.json``, base, 10 s, batch 1, vs the official
model in the same run; the README's Performance section has the table).
On the AVX2 side oneDNN was restricted with ``ONEDNN_MAX_CPU_ISA=AVX2``,
which PyTorch and OpenVINO honour (the rows list the AVX2 kernels that
ran) and ONNX Runtime does not, so ONNX Runtime has no AVX2 figure.
Tried and not used: ``torch.compile`` with freezing (1.47x restricted to
AVX2, 1 thread, after 160 s of compilation repeated for every new input
length), frozen TorchScript (no faster than eager), blocks rewritten
without channel split/concat for OpenVINO (within the run-to-run noise),
and int8 graphs without quantized convolution outputs (OpenVINO 1.04x
faster but cosine 0.994; ONNX Runtime 3x slower).

Authors
 * speechbrain-eres2net developers 2026
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable, Sequence
from typing import Optional

import torch
from torch import nn

from .. import settings
from ..lobes.eres2net import ERes2Net
from .torch_engine import FastERes2Net, Float32, fold_batchnorms, native_bf16

logger = logging.getLogger(__name__)

# The PyTorch engine's parts, importable from here as before they moved.
__all__ = [
    "FastERes2Net",
    "Float32",
    "fold_batchnorms",
    "native_bf16",
    "optimize_for_inference",
    "fast_path",
]

PRECISIONS = ("auto", "fp32", "bf16", "int8")
ENGINES = ("auto", "torch", "onnxruntime", "openvino")
# Engines that run the ONNX graph of the folded model (CPU only).
GRAPH_ENGINES = ("onnxruntime", "openvino")
# CPU capabilities (torch.backends.cpu.get_cpu_capability()) on which the
# engines named by ``fp32_engine_cpu`` / ``int8_engine_cpu``
# (verification.yaml) were measured; elsewhere (ARM, DEFAULT) the PyTorch
# path runs.
X86_CAPABILITIES = ("AVX2", "AVX512")


def engine_available(engine: str) -> bool:
    """Whether ``engine`` (one of :data:`ENGINES` but ``"auto"``) can run here.

    Example
    -------
    >>> engine_available("torch")
    True
    """
    from .onnx_engine import onnxruntime_available
    from .openvino_engine import openvino_available

    available = {
        "torch": lambda: True,
        "onnxruntime": onnxruntime_available,
        "openvino": openvino_available,
    }
    if engine not in available:
        raise ValueError(f"engine must be one of {tuple(available)}, got {engine!r}")
    return available[engine]()


def _preferred(key: str) -> list[str]:
    """The engine preference list ``key`` of verification.yaml, checked."""
    engines = settings.default(key)
    engines = [engines] if isinstance(engines, str) else list(engines)
    wrong = [e for e in engines if e not in ENGINES[1:]]
    if wrong:
        raise ValueError(
            f"verification.yaml: {key} lists {wrong}; expected engines among "
            f"{ENGINES[1:]}"
        )
    return engines


def fp32_engine(device: torch.device) -> str:
    """The engine ``precision="auto"`` runs fp32 with on ``device``.

    On x86 CPUs (capability AVX2 or AVX512) the first installed engine of
    ``fp32_engine_cpu`` in ``verification.yaml`` (OpenVINO, then ONNX
    Runtime: the measured order), else ``"torch"`` (folded fp32,
    channels-last).

    Example
    -------
    >>> fp32_engine(torch.device("cpu")) in ENGINES
    True
    """
    if device.type != "cpu":
        return "torch"
    if torch.backends.cpu.get_cpu_capability() not in X86_CAPABILITIES:
        return "torch"
    for engine in _preferred("fp32_engine_cpu"):
        if engine_available(engine):
            return engine
        logger.info("%s is not installed: trying the next fp32 engine", engine)
    return "torch"


def int8_engine() -> Optional[str]:
    """The engine ``precision="int8"`` runs with, None where int8 cannot run.

    The first installed engine of ``int8_engine_cpu`` (verification.yaml);
    every one needs onnxruntime, whose quantizer makes the int8 graph.

    Example
    -------
    >>> int8_engine() in (None, "onnxruntime", "openvino")
    True
    """
    if not engine_available("onnxruntime"):
        return None
    for engine in _preferred("int8_engine_cpu"):
        if engine in GRAPH_ENGINES and engine_available(engine):
            return engine
    return None


def _check_input(model: ERes2Net, example_frames: int) -> tuple:
    """A random (2, example_frames, feat_dim) batch, one row padded."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, example_frames, model.feat_dim, generator=generator)
    lengths = torch.tensor([1.0, 0.5 + 0.5 * model.min_frames / example_frames])
    return x.to(device), lengths.to(device)


def _worst_cosine(
    fast: nn.Module, model: nn.Module, batches: Iterable[tuple[torch.Tensor, ...]]
) -> float:
    """Lowest cosine between the embeddings of ``fast`` and of ``model`` (in
    eval mode), each batch of ``batches`` being the arguments of one call.

    Example
    -------
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> _worst_cosine(model, model, [(torch.randn(1, 50, 80),)]) > 0.9999
    True
    """
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        cosines = [
            torch.cosine_similarity(
                fast(*args).float(), model(*args).float(), dim=-1
            ).flatten()
            for args in batches
        ]
    model.train(was_training)
    return float(torch.cat(cosines).min())  # NaN if any is: never accepted


def _disagreement(
    worst: float, min_cosine: float, what: str, instead: str, digits: int = 6
) -> Optional[str]:
    """Why a fast path whose worst cosine is ``worst`` is replaced, or None."""
    if worst >= min_cosine:
        return None
    return (
        f"optimize_for_inference: {what} reach cosine {worst:.{digits}f} "
        f"< {min_cosine} {instead}"
    )


def _check_arguments(
    model: ERes2Net,
    example_frames: int,
    precision: str,
    engine: str,
    calibration_feats: Optional[Sequence[torch.Tensor]],
) -> torch.device:
    """Raises on arguments :func:`optimize_for_inference` cannot use; the
    device of ``model``."""
    if not isinstance(model, ERes2Net):
        raise TypeError(
            f"optimize_for_inference: expected an ERes2Net, got {type(model).__name__}"
        )
    if precision not in PRECISIONS:
        raise ValueError(
            f"optimize_for_inference: precision must be one of {PRECISIONS}, "
            f"got {precision!r}"
        )
    if engine not in ENGINES:
        raise ValueError(
            f"optimize_for_inference: engine must be one of {ENGINES}, got {engine!r}"
        )
    if example_frames < model.min_frames:
        raise ValueError(
            f"optimize_for_inference: example_frames must be >= "
            f"{model.min_frames}, got {example_frames}"
        )
    if precision == "int8" and not calibration_feats:
        raise ValueError(
            "optimize_for_inference: calibration_feats (features of real speech) "
            "is required for precision='int8'"
        )
    device = next(model.parameters()).device
    if engine in GRAPH_ENGINES and device.type != "cpu":
        raise ValueError(
            f"optimize_for_inference: engine {engine!r} runs on the CPU, "
            f"the model is on {device}"
        )
    return device


def _torch_fast_path(model: ERes2Net, bf16: bool, channels_last: bool) -> FastERes2Net:
    """A folded, frozen copy of ``model`` run by PyTorch, fp32 or bf16."""
    folded = fold_batchnorms(copy.deepcopy(model))
    for param in folded.parameters():
        param.requires_grad_(False)
    if channels_last:
        folded.to(memory_format=torch.channels_last)
    return FastERes2Net(folded, bf16=bf16)


def _graph_fast_path(
    model: ERes2Net,
    example_frames: int,
    precision: str,
    calibration_feats: Optional[Sequence[torch.Tensor]],
    engine: str,
) -> nn.Module:
    """The folded ``model`` as a graph run by ``engine``, fp32 or int8."""
    from .graph_cache import cached_graph, graph_key
    from .onnx_engine import OPSET, OrtERes2Net, onnx_graph, quantize_int8
    from .openvino_engine import OpenVINOERes2Net

    folded = fold_batchnorms(copy.deepcopy(model)).cpu()
    example = torch.randn(1, example_frames, model.feat_dim)
    graph = cached_graph(  # traced once per model: seconds of every start-up
        lambda: onnx_graph(folded, example, lengths=torch.ones(1)),
        graph_key(folded, example_frames, OPSET),
    )
    if precision == "int8":
        limit = int(settings.default("int8_calibration_utterances"))
        feats = list(calibration_feats)[:limit]
        graph = quantize_int8(
            graph,
            feats,
            method=settings.default("int8_calibration_method"),
            reduce_range=settings.default("int8_reduce_range"),
        )
    runner = OpenVINOERes2Net if engine == "openvino" else OrtERes2Net
    return runner(model, graph, precision=precision)


def _int8_fast_path(
    model: ERes2Net,
    example_frames: int,
    engine: str,
    calibration_feats: Sequence[torch.Tensor],
) -> tuple[nn.Module, Optional[str]]:
    """The int8 graph run by ``engine``, and why it is replaced (None: kept).

    Checked on up to 8 calibration utterances against ``int8_min_cosine``.
    """
    fast = _graph_fast_path(model, example_frames, "int8", calibration_feats, engine)
    utterances = [(f.unsqueeze(0),) for f in list(calibration_feats)[:8]]
    worst = _worst_cosine(fast, model, utterances)
    threshold = settings.default("int8_min_cosine")
    logger.info("int8 embeddings: worst cosine %.5f to the model", worst)
    instead = "of the fp32 model on the calibration data; using fp32"
    return fast, _disagreement(worst, threshold, "int8 embeddings", instead, 5)


def _float_fast_path(
    model: ERes2Net,
    example_frames: int,
    precision: str,
    engine: str,
    min_cosine: float,
    channels_last: bool,
    device: torch.device,
) -> tuple[nn.Module, Optional[str]]:
    """The fp32 or bf16 fast path, and why it is replaced (None: kept).

    A graph engine's fp32 and PyTorch's bf16 are checked on a random batch;
    PyTorch's folded fp32 is exact and is not.
    """
    # fp32, asked for or chosen: the fastest fp32 engine installed (on a
    # bf16 CPU too: OpenVINO fp32 ran ERes2Net-base over 100 realspk files
    # in 6.8 s where PyTorch fp32 took 10.1 s, Xeon AMX, 2 threads).
    if engine == "auto" and (
        precision == "fp32" or (precision == "auto" and not native_bf16(device))
    ):
        engine = fp32_engine(device)
    check = [_check_input(model, example_frames)]
    if engine in GRAPH_ENGINES and precision != "bf16":
        fast = _graph_fast_path(model, example_frames, "fp32", None, engine)
        worst = _worst_cosine(fast, model, check)
        instead = "of the model; using PyTorch fp32"
        return fast, _disagreement(worst, min_cosine, f"{engine} embeddings", instead)
    bf16 = precision == "bf16" or (precision == "auto" and native_bf16(device))
    fast = _torch_fast_path(model, bf16, channels_last)
    if not bf16:
        return fast, None
    worst = _worst_cosine(fast, model, check)
    instead = "of the fp32 model; using fp32"
    return fast, _disagreement(worst, min_cosine, "bf16 embeddings", instead)


def optimize_for_inference(
    model: ERes2Net,
    example_frames: int = 128,
    *,
    precision: str = "auto",
    min_cosine: float = 0.9999,
    channels_last: bool = True,
    engine: str = "auto",
    calibration_feats: Optional[Sequence[torch.Tensor]] = None,
) -> nn.Module:
    """Returns a faster copy of ``model`` for embedding extraction.

    BatchNorm is folded into the convolutions of a deep copy (the original
    is untouched). ``precision="auto"`` picks, by processor:

    * native bf16 (AVX512-BF16/AMX CPUs, bf16 GPUs): PyTorch, convolutions
      in bf16 (see the module docstring for measurements);
    * other x86 CPUs (capability AVX2/AVX512): OpenVINO fp32, else ONNX
      Runtime fp32, where installed (:func:`fp32_engine`), else PyTorch
      fp32, channels-last.

    ``precision="int8"`` quantizes the convolutions (ONNX Runtime's static
    post-training quantization calibrated on ``calibration_feats``, see
    :func:`~speechbrain_eres2net.inference.onnx_engine.quantize_int8`; run
    by OpenVINO where installed, else ONNX Runtime: :func:`int8_engine`).
    Without onnxruntime it warns and returns the PyTorch fast path.

    bf16 and the fp32 graph engines are checked against ``model`` on a random
    ``(2, example_frames, feat_dim)`` batch, one utterance padded, and fall
    back to PyTorch fp32 below ``min_cosine``. int8 is checked on up to 8
    calibration utterances against ``int8_min_cosine`` (verification.yaml)
    and falls back likewise, with a warning.

    Arguments
    ---------
    model : ERes2Net
        A trained model (its BN running statistics are used).
    example_frames : int
        Frames of the check input.
    precision : str
        ``"auto"``, ``"fp32"`` (the engine ``fp32_engine`` picks unless
        ``engine`` says otherwise),
        ``"bf16"`` (forced, still checked) or ``"int8"``.
    min_cosine : float
        Lowest accepted cosine between fast and original embeddings.
    channels_last : bool
        Store convolution weights channels-last (NHWC), PyTorch engine.
    engine : str
        ``"auto"``, ``"torch"``, ``"onnxruntime"`` or ``"openvino"``
        (raises ``MissingDependencyError`` where it is not installed).
    calibration_feats : sequence of torch.Tensor, optional
        (frames, feat_dim) normalised features of real speech, required
        for ``"int8"``; the first ``int8_calibration_utterances``
        (verification.yaml) are used.

    Returns
    -------
    torch.nn.Module
        A module with ``forward(x, lengths=None) -> (batch, 1, emb)``, on
        the device of ``model``, in eval mode; ``precision`` and ``engine``
        attributes say what it runs.

    Example
    -------
    >>> model = ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]).eval()
    >>> fast = optimize_for_inference(model, example_frames=40)
    >>> x = torch.randn(3, 40, 80)
    >>> cos = torch.cosine_similarity(fast(x), model(x), dim=-1)
    >>> bool((cos > 0.9999).all())
    True
    >>> feats = [torch.randn(60, 80) for _ in range(4)]
    >>> int8 = optimize_for_inference(model, precision="int8", calibration_feats=feats)
    >>> int8.precision, int8(x).shape
    ('int8', torch.Size([3, 1, 192]))
    """
    device = _check_arguments(
        model, example_frames, precision, engine, calibration_feats
    )
    if precision == "int8":
        if engine == "auto":
            engine = int8_engine() or "torch"
        if engine == "torch":
            warnings.warn(
                "optimize_for_inference: int8 needs onnxruntime, whose quantizer "
                "makes the int8 graph (pip install 'speechbrain-eres2net[openvino]' "
                "or '[export]'); using the PyTorch fast path",
                stacklevel=2,
            )
            return optimize_for_inference(
                model, example_frames, min_cosine=min_cosine, engine="torch"
            )
        fast, problem = _int8_fast_path(
            model, example_frames, engine, calibration_feats
        )
    else:
        fast, problem = _float_fast_path(
            model, example_frames, precision, engine, min_cosine, channels_last, device
        )
    if problem is None:
        return fast
    warnings.warn(problem, stacklevel=2)
    return _torch_fast_path(model, bf16=False, channels_last=channels_last)


def fast_path(
    model: nn.Module,
    precision: str = "auto",
    calibration_feats: Optional[Sequence[torch.Tensor]] = None,
) -> nn.Module:
    """The fast path of a model where one exists (ERes2Net), else the model.

    ``precision`` and ``calibration_feats`` as in
    :func:`optimize_for_inference`.

    Example
    -------
    >>> linear = nn.Linear(2, 2)
    >>> fast_path(linear) is linear
    True
    """
    if isinstance(model, ERes2Net):
        return optimize_for_inference(
            model, precision=precision, calibration_feats=calibration_feats
        )
    if precision not in ("auto", "fp32"):
        raise ValueError(
            f"precision {precision!r} needs an ERes2Net; "
            f"{type(model).__name__} runs as is"
        )
    logger.info("No fast path for %s: running it as is", type(model).__name__)
    return model
