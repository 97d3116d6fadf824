"""Our ONNX in sherpa-onnx itself (PyPI), as a user deploying a model runs it.

The graph ``eres2net export-onnx`` writes is loaded by sherpa-onnx's
``SpeakerEmbeddingExtractor`` -- its own feature extraction, metadata
reading and normalisation, no copy of its logic here -- and its embeddings
are compared with ``eres2net embed --vad off`` of the same folder on real
recordings; its ``SpeakerEmbeddingManager`` enrolls and searches with them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speechbrain_eres2net.export.sherpa_onnx import (
    NotDeployableError,
    sherpa_deployment,
)

sherpa_onnx = pytest.importorskip(
    "sherpa_onnx", reason="sherpa-onnx is not installed (pip install '.[dev]')"
)


def eres2net(*args: str) -> subprocess.CompletedProcess:
    """The ``eres2net`` command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "speechbrain_eres2net.cli", *args],
        capture_output=True,
        text=True,
    )


def recordings(realspk: Path, count: int) -> list[Path]:
    """``count`` dev recordings of different speakers, at least 2 s long."""
    found = []
    for speaker in sorted((realspk / "wav").iterdir()):
        for wav in sorted(speaker.rglob("*.wav")):
            if soundfile.info(wav).duration >= 2.0:
                found.append(wav)
                break
        if len(found) == count:
            return found
    return found


def sherpa_embeddings(model: Path, wavs: list[Path]) -> np.ndarray:
    """sherpa-onnx's embeddings of ``wavs`` with the graph ``model``."""
    config = sherpa_onnx.SpeakerEmbeddingExtractorConfig(
        model=str(model), num_threads=1
    )
    assert config.validate(), f"sherpa-onnx refuses the config for {model}"
    extractor = sherpa_onnx.SpeakerEmbeddingExtractor(config)
    out = []
    for wav in wavs:
        samples, rate = soundfile.read(wav, dtype="float32")
        stream = extractor.create_stream()
        stream.accept_waveform(sample_rate=rate, waveform=samples)
        stream.input_finished()
        assert extractor.is_ready(stream)
        out.append(np.asarray(extractor.compute(stream)))
    return np.stack(out)


def our_embeddings(folder: Path, wavs: list[Path], out: Path) -> np.ndarray:
    """``eres2net embed --vad off`` of ``wavs``, in their order."""
    result = eres2net(
        "embed", "--model", str(folder), "--vad", "off", "--no-progress",
        "--out", str(out), *map(str, wavs),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    stored = np.load(out)
    return np.stack([stored[str(wav)] for wav in wavs])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def export(folder: Path, out: Path) -> Path:
    result = eres2net(
        "export-onnx", "--model", str(folder), "--out", str(out), "--sherpa-onnx"
    )
    assert result.returncode == 0, result.stderr
    return out


def test_imported_3dspeaker_folder_runs_in_sherpa_onnx_and_agrees(realspk, tmp_path):
    from model_builders import imported_folder

    folder = imported_folder()
    wavs = recordings(realspk, 8)
    graph = export(folder, tmp_path / "imported.onnx")
    ours = our_embeddings(folder, wavs, tmp_path / "ours.npz")
    theirs = sherpa_embeddings(graph, wavs)
    assert theirs.shape == ours.shape
    assert cosines(ours, theirs).min() >= 0.999


def test_recipe_trained_folder_runs_in_sherpa_onnx_on_its_own_features(
    realspk_quickstart, realspk, tmp_path
):
    folder = realspk_quickstart["out"] / "model"
    wavs = recordings(realspk, 8)
    graph = export(folder, tmp_path / "quickstart.onnx")
    ours = our_embeddings(folder, wavs, tmp_path / "ours.npz")
    theirs = sherpa_embeddings(graph, wavs)
    assert cosines(ours, theirs).min() >= 0.999
    # Exact front end: agreement is to float rounding, not just 0.999.
    assert cosines(ours, theirs).min() >= 0.9999


def test_ecapa_recipe_folder_runs_in_sherpa_onnx_and_agrees(realspk, tmp_path):
    """Everything after the lobe works with any lobe: ECAPA-TDNN deploys too."""
    from model_builders import ecapa_folder

    folder = ecapa_folder()
    wavs = recordings(realspk, 6)
    graph = export(folder, tmp_path / "ecapa.onnx")
    ours = our_embeddings(folder, wavs, tmp_path / "ours.npz")
    assert cosines(ours, sherpa_embeddings(graph, wavs)).min() >= 0.9999


def test_sherpa_manager_enrolls_and_finds_speakers_with_our_embeddings(
    realspk_quickstart, realspk, tmp_path
):
    """Enroll 3 dev speakers from 3 recordings each; search held-out ones."""
    graph = export(realspk_quickstart["out"] / "model", tmp_path / "q.onnx")
    speakers = sorted((realspk / "wav").iterdir())
    dev = [
        line.split()[1].split("/")[0]
        for line in (realspk / "dev_list.txt").read_text().splitlines()
        if line.strip()
    ]
    chosen = [s for s in speakers if s.name in set(dev)][:3]
    config = sherpa_onnx.SpeakerEmbeddingExtractorConfig(model=str(graph))
    extractor = sherpa_onnx.SpeakerEmbeddingExtractor(config)
    manager = sherpa_onnx.SpeakerEmbeddingManager(extractor.dim)
    held_out = {}
    for speaker in chosen:
        wavs = sorted(speaker.rglob("*.wav"))
        embeddings = sherpa_embeddings(graph, wavs[:3])
        assert manager.add(speaker.name, [e.tolist() for e in embeddings])
        held_out[speaker.name] = wavs[3:6]
    assert sorted(manager.all_speakers) == sorted(held_out)
    found = {
        name: [
            manager.search(e.tolist(), threshold=0.3)
            for e in sherpa_embeddings(graph, wavs)
        ]
        for name, wavs in held_out.items()
    }
    hits = sum(r == name for name, results in found.items() for r in results)
    assert hits >= 7, found  # of 9; the tiny model's EER is ~7 %


def test_front_end_sherpa_onnx_cannot_compute_is_refused_in_one_line(tmp_path):
    from model_builders import imported_folder

    folder = tmp_path / "fbank"
    subprocess.run(["cp", "-r", str(imported_folder()), str(folder)], check=True)
    hparams = folder / "hyperparams.yaml"
    text = hparams.read_text()
    kaldi = "compute_features: !new:speechbrain_eres2net.KaldiFbank\n"
    assert kaldi in text
    # The front end this package's recipes trained with before 0.3.
    hparams.write_text(
        text.replace(
            kaldi, "compute_features: !new:speechbrain.lobes.features.Fbank\n"
        ).replace("  mean_norm: false\n", "")
    )
    result = eres2net(
        "export-onnx", "--model", str(folder), "--out", str(tmp_path / "x.onnx"),
        "--sherpa-onnx",
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sherpa-onnx" in lines[0] and "Fbank" in lines[0]
    assert not (tmp_path / "x.onnx").exists()
    # Without --sherpa-onnx the graph is still written, for onnxruntime.
    plain = eres2net(
        "export-onnx", "--model", str(folder), "--out", str(tmp_path / "y.onnx")
    )
    assert plain.returncode == 0, plain.stderr
    import onnx

    keys = {p.key for p in onnx.load(str(tmp_path / "y.onnx")).metadata_props}
    assert "framework" not in keys


def test_not_deployable_settings_name_what_differs():
    from speechbrain_eres2net import KaldiFbank

    with pytest.raises(NotDeployableError, match="high_freq"):
        sherpa_deployment(KaldiFbank(high_freq=-200.0, snip_edges=False), None)
    from speechbrain.processing.features import InputNormalization

    with pytest.raises(NotDeployableError, match="normalises"):
        sherpa_deployment(
            KaldiFbank(high_freq=-400.0, snip_edges=False, mean_norm=False),
            InputNormalization(norm_type="sentence", std_norm=True),
        )
