"""int8 and engine choice of the fast path: agreement, fallbacks, CLI, ONNX export.

Both graph engines (ONNX Runtime and OpenVINO) are held to the same checks.

Agreement threshold: int8 embeddings of held-out real speech must reach
cosine >= 0.999 to the fp32 model. Measured with this file's tiny model
(m_channels 8, random weights, BN statistics randomised) calibrated on 20
realspk train utterances: worst cosine 0.99997 over 8 held-out utterances,
so 0.999 leaves a 30x margin on ``1 - cosine`` for platform differences
while a broken quantization (a wrong scale, zero point or layout) lands far
below it. Whether int8 is good enough is judged by verification accuracy
(``python -m benchmarks --only accuracy --int8-model ...``), not here.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REALSPK  # noqa: E402
from model_builders import (  # noqa: E402
    imported_folder,
    official_checkpoint,
    randomise_batchnorms,
)

from speechbrain_eres2net import ERes2Net, KaldiFbank
from speechbrain_eres2net.inference import fastpath
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.inference.fastpath import optimize_for_inference

pytest.importorskip("onnxruntime", reason="onnxruntime is optional (export)")
GRAPH_ENGINES = [
    "onnxruntime",
    pytest.param(
        "openvino",
        marks=pytest.mark.skipif(
            not fastpath.engine_available("openvino"),
            reason="openvino is optional (the openvino extra)",
        ),
    ),
]

INT8_MIN_COSINE = 0.999


def speech_feats(count: int, offset: int = 0) -> list[torch.Tensor]:
    """Mean-normalised fbank of ``count`` realspk train utterances.

    Skips without the corpus: int8 calibrated and checked on noise says
    nothing about int8 on speech.
    """
    listing = REALSPK / "train_list.txt"
    if not listing.exists():
        pytest.skip(f"real corpus not found at {REALSPK} (set ERES2NET_REALSPK)")
    paths = [line.split()[1] for line in listing.read_text().splitlines() if line]
    fbank = KaldiFbank(mean_norm=True)
    feats = []
    with torch.inference_mode():
        for path in paths[offset :: len(paths) // count][:count]:
            wav, _ = soundfile.read(str(REALSPK / "wav" / path), dtype="float32")
            feats.append(fbank(torch.from_numpy(wav).unsqueeze(0))[0][:400])
    return feats


def noise_feats(count: int) -> list[torch.Tensor]:
    """Random features, for the tests of which engine runs int8 (calibration
    data plays no part in that choice)."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(200, 80, generator=generator) for _ in range(count)]


def quantized_convs(graph) -> tuple[int, int]:
    """(quantized, all) convolutions of an ``onnx.ModelProto``.

    A convolution is quantized when it is a ``QLinearConv`` (QOperator
    format) or a ``Conv`` whose input and weight both come out of a
    ``DequantizeLinear`` of int8/uint8 data (QDQ format), the weight with
    one scale per output channel.
    """
    import onnx

    nodes = graph.graph.node
    producer = {out: node for node in nodes for out in node.output}
    initializers = {init.name: init for init in graph.graph.initializer}
    int8_types = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)

    def dequantized(name: str):
        node = producer.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    qlinear = sum(node.op_type == "QLinearConv" for node in nodes)
    convs = [node for node in nodes if node.op_type == "Conv"]
    qdq = 0
    for conv in convs:
        x, w = dequantized(conv.input[0]), dequantized(conv.input[1])
        if x is None or w is None:
            continue
        weight, scale = initializers.get(w.input[0]), initializers.get(w.input[1])
        if weight is None or weight.data_type not in int8_types:
            continue
        qdq += scale is not None and list(scale.dims) == [weight.dims[0]]
    return qlinear + qdq, qlinear + len(convs)


@pytest.fixture(scope="module")
def tiny() -> ERes2Net:
    torch.manual_seed(0)
    return randomise_batchnorms(ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1]))


@pytest.fixture(scope="module", params=GRAPH_ENGINES)
def int8(request, tiny):
    return optimize_for_inference(
        tiny,
        precision="int8",
        calibration_feats=speech_feats(20),
        engine=request.param,
    )


def test_int8_agrees_with_fp32_on_held_out_speech(tiny, int8):
    assert int8.precision == "int8"
    held_out = speech_feats(8, offset=3)
    with torch.inference_mode():
        for feats in held_out:
            x = feats.unsqueeze(0)
            cosine = torch.cosine_similarity(int8(x), tiny(x), dim=-1)
            assert float(cosine) >= INT8_MIN_COSINE
        # Padded batch: each row gets its unpadded embedding.
        a = held_out[0]
        b = held_out[1][: a.shape[0] // 2]
        batch = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
        padded = int8(batch, torch.tensor([1.0, b.shape[0] / a.shape[0]]))
        alone = int8(b.unsqueeze(0))
    assert padded.shape == (2, 1, 192)
    torch.testing.assert_close(padded[1:], alone)


def test_int8_graph_is_quantized(int8):
    import onnx

    quantized, convs = quantized_convs(onnx.load_from_string(int8.graph))
    # ERes2Net with one block per stage: 34 convolutions; all of them are
    # quantized today (per-channel int8 weights); most must stay so.
    assert convs >= 30
    assert quantized >= 0.9 * convs, (quantized, convs)


def test_int8_needs_calibration(tiny):
    with pytest.raises(ValueError, match="calibration_feats"):
        optimize_for_inference(tiny, precision="int8")
    with pytest.raises(ValueError, match="engine"):
        optimize_for_inference(tiny, engine="tensorrt")


@pytest.fixture
def avx2_cpu(monkeypatch):
    """A CPU without native bf16 whose capability is AVX2."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(fastpath, "native_bf16", lambda device: False)


@pytest.mark.parametrize("engine", GRAPH_ENGINES)
def test_each_fp32_graph_engine_agrees_with_eager(tiny, engine):
    fast = optimize_for_inference(tiny, example_frames=60, engine=engine)
    assert (fast.engine, fast.precision) == (engine, "fp32")
    a, b = torch.randn(90, 80), torch.randn(50, 80)
    batch = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    lengths = torch.tensor([1.0, 50 / 90])
    with torch.inference_mode():
        torch.testing.assert_close(fast(batch, lengths), tiny(batch, lengths))
        torch.testing.assert_close(fast(batch[:1]), tiny(batch[:1]))


def test_auto_picks_the_first_installed_engine_on_avx2(tiny, avx2_cpu):
    expected = "openvino" if fastpath.engine_available("openvino") else "onnxruntime"
    fast = optimize_for_inference(tiny, example_frames=60)
    assert (fast.engine, fast.precision) == (expected, "fp32")
    int8 = optimize_for_inference(
        tiny, precision="int8", calibration_feats=noise_feats(2)
    )
    assert (int8.engine, int8.precision) == (expected, "int8")
    x = torch.randn(2, 80, 80)
    with torch.inference_mode():
        assert torch.cosine_similarity(fast(x), tiny(x), dim=-1).min() >= 0.9999


def test_fp32_asked_for_runs_the_fp32_engine_on_a_bf16_cpu(tiny, monkeypatch):
    """``precision="fp32"`` is the fastest fp32 engine, not PyTorch's, where the
    CPU computes bf16 natively (``auto`` there is PyTorch bf16)."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(fastpath, "native_bf16", lambda device: True)
    expected = fastpath.fp32_engine(torch.device("cpu"))
    assert expected in ("openvino", "onnxruntime")
    fast = optimize_for_inference(tiny, example_frames=60, precision="fp32")
    assert (fast.engine, fast.precision) == (expected, "fp32")
    auto = optimize_for_inference(tiny, example_frames=60)
    assert auto.engine == "torch"


def test_auto_falls_back_to_onnxruntime_without_openvino(tiny, avx2_cpu, monkeypatch):
    # None in sys.modules makes ``import openvino`` raise ImportError.
    monkeypatch.setitem(sys.modules, "openvino", None)
    fast = optimize_for_inference(tiny, example_frames=60)
    assert (fast.engine, fast.precision) == ("onnxruntime", "fp32")
    int8 = optimize_for_inference(
        tiny, precision="int8", calibration_feats=noise_feats(2)
    )
    assert (int8.engine, int8.precision) == ("onnxruntime", "int8")
    from speechbrain_eres2net.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"\[openvino\]"):
        optimize_for_inference(tiny, engine="openvino")


def test_auto_falls_back_to_torch_without_onnxruntime(tiny, avx2_cpu, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "openvino", None)
    fast = optimize_for_inference(tiny, example_frames=60)
    assert (fast.engine, fast.precision) == ("torch", "fp32")
    with pytest.warns(UserWarning, match="int8 needs onnxruntime"):
        fallback = optimize_for_inference(
            tiny, precision="int8", calibration_feats=noise_feats(2)
        )
    assert fallback.engine == "torch"
    from speechbrain_eres2net.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match="export"):
        optimize_for_inference(tiny, engine="onnxruntime")


def test_openvino_alone_still_runs_int8_through_the_torch_fallback(
    tiny, avx2_cpu, monkeypatch
):
    """openvino without onnxruntime: fp32 on OpenVINO, int8 warns (no quantizer)."""
    if not fastpath.engine_available("openvino"):
        pytest.skip("openvino is optional (the openvino extra)")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert optimize_for_inference(tiny, example_frames=60).engine == "openvino"
    with pytest.warns(UserWarning, match="int8 needs onnxruntime"):
        fallback = optimize_for_inference(
            tiny, precision="int8", calibration_feats=noise_feats(2)
        )
    assert fallback.engine == "torch"


def test_a_wrong_engine_list_in_the_settings_names_the_key(tiny, avx2_cpu, monkeypatch):
    from speechbrain_eres2net import settings

    real = settings.default
    monkeypatch.setattr(
        settings,
        "default",
        lambda key: ["tensorrt"] if key == "fp32_engine_cpu" else real(key),
    )
    with pytest.raises(ValueError, match="fp32_engine_cpu.*tensorrt"):
        optimize_for_inference(tiny, example_frames=60)


def test_cli_precision_int8_end_to_end(tmp_path, capsys):
    from speechbrain_eres2net.cli import main

    wavs = sorted((REALSPK / "wav").glob("spk00*/*/*.wav"))[:6]
    if not wavs:
        pytest.skip(f"real corpus not found at {REALSPK} (set ERES2NET_REALSPK)")
    folder = imported_folder()
    outs = {}
    for precision in ("fp32", "int8"):
        out = tmp_path / f"{precision}.npz"
        args = ["embed", "--model", str(folder), *map(str, wavs[:3]), "--out", str(out)]
        args += ["--precision", precision, "--no-progress"]
        if precision == "int8":
            for wav in wavs[3:]:
                args += ["--int8-calibration", str(wav)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no silent fallback to fp32
            assert main(args) == 0, capsys.readouterr().err
        outs[precision] = np.load(out)
    capsys.readouterr()
    for key in outs["fp32"].files:
        a, b = outs["fp32"][key], outs["int8"][key]
        cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        assert cosine >= INT8_MIN_COSINE, key
    code = main(
        [
            "embed",
            "--model",
            str(folder),
            str(wavs[0]),
            "--out",
            str(tmp_path / "x.npz"),
            "--precision",
            "int8",
        ]
    )
    err = capsys.readouterr().err
    assert code != 0 and "--int8-calibration" in err and err.count("\n") == 1
    assert "stores none" in err


def test_int8_calibration_stored_in_the_folder_needs_no_audio(tmp_path, capsys):
    """``import-3dspeaker --int8-calibration AUDIO``: int8 then runs without audio.

    The stored calibration (float16 features) quantizes as the audio does:
    embeddings agree with audio-calibrated int8 and with fp32.
    """
    from speechbrain_eres2net.cli import main

    wavs = sorted((REALSPK / "wav").glob("spk00*/*/*.wav"))[:6]
    if not wavs:
        pytest.skip(f"real corpus not found at {REALSPK} (set ERES2NET_REALSPK)")
    _, checkpoint = official_checkpoint("v1")
    folder = tmp_path / "stored"
    args = ["import-3dspeaker", "--checkpoint", str(checkpoint), "--out", str(folder)]
    for wav in wavs[3:]:
        args += ["--int8-calibration", str(wav)]
    assert main(args) == 0, capsys.readouterr().err
    assert (folder / "int8_calibration.npz").is_file()
    assert "int8_calibration.npz" in (folder / "README.md").read_text()
    outs = {}
    runs = {
        "stored": (folder, []),
        "audio": (imported_folder(), [f"--int8-calibration={w}" for w in wavs[3:]]),
        "fp32": (imported_folder(), []),
    }
    for name, (model, extra) in runs.items():
        out = tmp_path / f"{name}.npz"
        precision = "fp32" if name == "fp32" else "int8"
        args = ["embed", "--model", str(model), *map(str, wavs[:3]), "--out", str(out)]
        args += ["--precision", precision, "--no-progress", *extra]
        assert main(args) == 0, capsys.readouterr().err
        outs[name] = np.load(out)
    for key in outs["fp32"].files:
        stored, audio, fp32 = (outs[n][key] for n in ("stored", "audio", "fp32"))
        assert cosine(stored, audio) >= 0.9999, key
        assert cosine(stored, fp32) >= INT8_MIN_COSINE, key


def test_int8_of_a_loaded_folder_without_calibration_is_a_value_error():
    """``from_recognizer`` with neither audio nor stored features: the user's
    one-line error, not a TypeError from iterating nothing."""
    from speechbrain_eres2net.inference.folder import load_model_folder

    with pytest.raises(ValueError, match="no audio files found"):
        SpeakerEmbedder.from_recognizer(
            load_model_folder(imported_folder()), precision="int8"
        )


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_export_onnx_int8(tmp_path, capsys):
    """``eres2net export-onnx --int8-calibration AUDIO...``: a quantized graph."""
    import onnx
    import onnxruntime

    from speechbrain_eres2net.cli import main

    wavs = sorted((REALSPK / "wav").glob("spk00*/*/*.wav"))[:5]
    if not wavs:
        pytest.skip(f"real corpus not found at {REALSPK} (set ERES2NET_REALSPK)")
    calibration, held_out = wavs[:4], wavs[4]
    out = tmp_path / "m.onnx"
    args = ["export-onnx", "--model", str(imported_folder()), "--out", str(out)]
    assert main([*args, *(f"--int8-calibration={w}" for w in calibration)]) == 0
    assert "int8" in capsys.readouterr().err
    quantized, convs = quantized_convs(onnx.load(str(out)))
    assert convs >= 30 and quantized >= 0.9 * convs, (quantized, convs)
    # On speech it was not calibrated on, the graph's embedding is close to
    # the fp32 model's.
    embedder = SpeakerEmbedder.from_folder(imported_folder(), fast=False)
    wav = torch.from_numpy(soundfile.read(held_out, dtype="float32")[0])
    with torch.no_grad():
        feats = embedder.compute_features(wav.unsqueeze(0))
        feats = embedder.mean_var_norm(feats, torch.ones(1))
        ref = embedder.embedding_model(feats)[:, 0]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"feats": feats.numpy()})[0])
    assert got.shape == (1, 64)
    assert float(torch.cosine_similarity(got, ref)[0]) >= INT8_MIN_COSINE


def test_int8_calibration_option_never_swallows_the_positional_files():
    from speechbrain_eres2net.cli.main import build_parser

    args = build_parser().parse_args(
        ["verify", "--model", "m", "--int8-calibration", "cal/", "a.wav", "b.wav"]
    )
    assert (args.first, args.second, args.int8_calibration) == (
        "a.wav",
        "b.wav",
        ["cal/"],
    )
