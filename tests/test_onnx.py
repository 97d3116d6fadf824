"""ONNX export: onnxruntime embeddings equal PyTorch's, 0.5 s to 30 s, batch 1 and 8."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).parent))
from model_builders import (  # noqa: E402
    imported_folder,
    real_wavs,
    recipe_folder,
)

from speechbrain_eres2net.export.onnx import (
    OPSET,
    ExportableKaldiFbank,
    export_onnx,
    exportable_front_end,
)
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.lobes.features import KaldiFbank

onnx = pytest.importorskip("onnx", reason="onnx is an optional dependency (export)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is optional (export)")

# (seconds, batch): the features graph is checked on the whole grid; the
# waveform graphs (same network, front end added) on its corners, to keep
# the suite fast on 2 CPU cores.
GRID = [(s, b) for s in (0.5, 3.0, 30.0) for b in (1, 8)]
CORNERS = [(0.5, 8), (30.0, 1)]


def speech(seconds: float, batch: int) -> torch.Tensor:
    """(batch, samples) of real speech, looped to the length.

    Skips without the real corpus (``real_wavs`` says where it looked):
    the front ends' near-empty bins and the graphs' tolerances are set for
    speech, which noise would not exercise.
    """
    n = int(seconds * 16000)
    files = real_wavs(batch)
    rows = []
    for i in range(batch):
        wav = torch.from_numpy(
            soundfile.read(files[i % len(files)], dtype="float32")[0]
        )
        rows.append(wav.repeat(n // len(wav) + 1)[:n])
    return torch.stack(rows)


def check_graph(path: Path, input_name: str, axis: str) -> ort.InferenceSession:
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}[
        "ai.onnx"
    ] == OPSET
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert model.graph.input[0].name == input_name and dims[:2] == ["batch", axis]
    assert model.graph.output[0].name == "embedding"
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_features_graph_matches_pytorch(tmp_path):
    """Input: normalised features (batch, frames, 80), as the official export.

    The network is the same whatever the front end, so one folder suffices.
    """
    model_dir = imported_folder()
    session = check_graph(
        export_onnx(model_dir, tmp_path / "m.onnx"), "feats", "frames"
    )
    embedder = SpeakerEmbedder.from_folder(model_dir, fast=False)
    for seconds, batch in GRID:
        wavs = speech(seconds, batch)
        with torch.no_grad():
            feats = embedder.compute_features(wavs)
            feats = embedder.mean_var_norm(feats, torch.ones(batch))
            ref = embedder.embedding_model(feats)[:, 0].numpy()
        out = session.run(None, {"feats": feats.numpy()})[0]
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-4, (seconds, batch)


@pytest.mark.slow
@pytest.mark.parametrize(
    "folder", [imported_folder, recipe_folder], ids=["kaldi", "sb"]
)
def test_waveform_graph_matches_pytorch(tmp_path, folder):
    """--with-features: waveforms in, the model folder's own front end inside."""
    model_dir = folder()
    path = export_onnx(model_dir, tmp_path / "m.onnx", with_features=True)
    session = check_graph(path, "wavs", "samples")
    embedder = SpeakerEmbedder.from_folder(model_dir, fast=False)
    for seconds, batch in CORNERS:
        wavs = speech(seconds, batch)
        ref = embedder.embed_batch(list(wavs)).numpy()
        out = session.run(None, {"wavs": wavs.numpy()})[0]
        assert np.abs(out - ref).max() <= 1e-4, (seconds, batch)


def test_exportable_front_ends_match_the_originals():
    wavs = speech(2.0, 2)
    kaldi_fbank = KaldiFbank(mean_norm=True)
    ours = ExportableKaldiFbank(kaldi_fbank)(wavs)
    ref = kaldi_fbank(wavs)
    assert ours.shape == ref.shape
    # Float32 FFT (reference) vs float64 DFT: tiny except in near-empty bins.
    assert (ours - ref).abs().mean() < 1e-4 and (ours - ref).abs().max() < 1e-2
    from speechbrain.lobes.features import Fbank

    sb = Fbank(n_mels=80)
    assert torch.allclose(exportable_front_end(sb)(wavs), sb(wavs), atol=1e-3)
    with pytest.raises(ValueError, match="--with-features supports"):
        exportable_front_end(torch.nn.Identity())


def test_cli_export_onnx(tmp_path, capsys):
    from speechbrain_eres2net.cli import main

    out = tmp_path / "model.onnx"
    assert (
        main(["export-onnx", "--model", str(imported_folder()), "--out", str(out)]) == 0
    )
    assert f"opset {OPSET}" in capsys.readouterr().err
    check_graph(out, "feats", "frames")
    assert (
        main(["export-onnx", "--model", str(tmp_path / "nope"), "--out", str(out)]) == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err
