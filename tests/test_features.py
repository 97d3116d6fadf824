"""KaldiFbank: the official 3D-Speaker front end, batched and length-aware."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from torchaudio.compliance import kaldi

from speechbrain_eres2net import KaldiFbank


def official_fbank(wav: torch.Tensor) -> torch.Tensor:
    """The reference: speakerlab.process.processor.FBank(80, 16000, mean_nor=True)."""
    feat = kaldi.fbank(
        wav.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0
    )
    return feat - feat.mean(0, keepdim=True)


def test_matches_official_front_end_on_real_speech(realspk):
    wavs = sorted((realspk / "wav").rglob("*.wav"))[:4]
    signals = [torch.from_numpy(sf.read(w, dtype="float32")[0]) for w in wavs]
    longest = max(len(s) for s in signals)
    batch = torch.zeros(len(signals), longest)
    for i, s in enumerate(signals):
        batch[i, : len(s)] = s
    rel = torch.tensor([len(s) / longest for s in signals])
    feats = KaldiFbank().eval()(batch, rel)
    fbank = KaldiFbank()
    for i, s in enumerate(signals):
        expected = official_fbank(s)
        n = fbank.num_frames(len(s))
        assert expected.shape[0] == n
        assert torch.allclose(feats[i, :n], expected, atol=1e-4)
        assert (feats[i, n:] == 0).all()


def test_ten_seconds_give_998_frames():
    # Spec section 11: 10 s of audio -> 998 frames.
    assert KaldiFbank()(torch.zeros(160000).uniform_(-0.5, 0.5)).shape == (1, 998, 80)


def test_mean_norm_can_be_disabled():
    wav = torch.rand(1, 8000) - 0.5
    raw = KaldiFbank(mean_norm=False)(wav)
    normed = KaldiFbank()(wav)
    assert torch.allclose(raw - raw.mean(1, keepdim=True), normed, atol=1e-5)
    assert normed.mean(1).abs().max() < 1e-4
    assert raw.mean().abs() > 1


def test_errors_are_clear():
    with pytest.raises(ValueError, match="fewer samples than one 25.0 ms window"):
        KaldiFbank()(torch.zeros(1, 100))
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        KaldiFbank()(torch.zeros(1, 2, 16000))
