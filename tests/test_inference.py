"""SpeakerEmbedder.embed_files: batching by a padded-seconds budget."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from speechbrain.processing.features import InputNormalization

from speechbrain_eres2net import ERes2Net, KaldiFbank
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.settings import batch_seconds


@pytest.fixture(scope="module")
def embedder():
    torch.manual_seed(0)
    return SpeakerEmbedder(
        KaldiFbank(mean_norm=False),
        InputNormalization(norm_type="sentence", std_norm=False),
        ERes2Net(m_channels=8, num_blocks=[1, 1, 1, 1], embedding_size=16),
        vad="off",  # batching of noise files, not speech presence, is tested
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wavs")
    rng = np.random.default_rng(0)
    paths = []
    for k, seconds in enumerate([3.0, 0.5, 6.0, 1.0, 2.0, 4.0]):
        path = folder / f"u{k}.wav"
        soundfile.write(path, rng.normal(size=int(16000 * seconds)) * 0.1, 16000)
        paths.append(str(path))
    return paths


def record_batches(embedder, monkeypatch) -> list[list[float]]:
    batches = []
    original = SpeakerEmbedder.embed_batch

    def spy(self, wavs):
        batches.append([w.shape[-1] / 16000 for w in wavs])
        return original(self, wavs)

    monkeypatch.setattr(SpeakerEmbedder, "embed_batch", spy)
    return batches


def test_batches_stay_within_the_padded_seconds_budget(embedder, files, monkeypatch):
    batches = record_batches(embedder, monkeypatch)
    small, errors, _, _ = embedder.embed_files(files, progress=False, batch_seconds=8.0)
    assert not errors
    assert [len(b) for b in batches] == [1, 2, 3]  # 6 | 4 3 | 2 1 0.5
    assert all(len(b) == 1 or len(b) * max(b) <= 8.0 for b in batches)

    batches.clear()
    one, *_ = embedder.embed_files(
        files, progress=False, batch_size=100, batch_seconds=1e6
    )
    assert [len(b) for b in batches] == [6]
    for path in files:  # length-exact: same embedding in any batch
        assert np.allclose(small[path], one[path], atol=1e-5)


def test_batch_size_still_caps_utterances(embedder, files, monkeypatch):
    batches = record_batches(embedder, monkeypatch)
    embedder.embed_files(files, progress=False, batch_size=2, batch_seconds=1e6)
    assert [len(b) for b in batches] == [2, 2, 2]


def test_default_budget_follows_the_device(embedder, files, monkeypatch):
    batches = record_batches(embedder, monkeypatch)
    embedder.embed_files(files, progress=False)
    cpu_budget = batch_seconds("cpu")
    assert all(len(b) == 1 or len(b) * max(b) <= cpu_budget for b in batches)
    with pytest.raises(ValueError, match="batch_seconds"):
        embedder.embed_files(files, progress=False, batch_seconds=0)
