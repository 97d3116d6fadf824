"""Official 3D-Speaker checkpoints -> model folders, checked against the official code.

A random-weight official model (the 3D-Speaker code itself, from
tests/oracle.py; BatchNorm statistics randomised) is saved with
``torch.save`` as 3D-Speaker releases its weights, imported, and loaded
through SpeechBrain; its embeddings must equal the official front end +
official model on real recordings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import soundfile
import torch
from torchaudio.compliance import kaldi

sys.path.insert(0, str(Path(__file__).parent))
from model_builders import (  # noqa: E402
    imported_folder,
    official_checkpoint,
    real_wavs,
    trial_subset,
)

from speechbrain_eres2net.export.import_3dspeaker import import_3dspeaker
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.inference.folder import load_model_folder


def official_fbank(wav: torch.Tensor) -> torch.Tensor:
    """speakerlab.process.processor.FBank(80, 16000, mean_nor=True)."""
    feat = kaldi.fbank(
        wav.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0
    )
    return feat - feat.mean(0, keepdim=True)


def test_import_matches_official_front_end_and_model(realspk):
    model, _ = official_checkpoint("v1")
    folder = imported_folder()
    text = (folder / "hyperparams.yaml").read_text()
    assert "!new:speechbrain_eres2net.KaldiFbank" in text and "mean_norm: false" in text
    assert "norm_type: sentence" in text and "std_norm: false" in text
    files = real_wavs(3)
    wavs = [torch.from_numpy(soundfile.read(f, dtype="float32")[0]) for f in files]
    with torch.no_grad():
        ref = torch.stack([model(official_fbank(w).unsqueeze(0))[0] for w in wavs])

    # SpeechBrain's own class, one utterance at a time: the official numbers.
    verifier = load_model_folder(folder)
    single = torch.stack([verifier.encode_batch(w.unsqueeze(0))[0, 0] for w in wavs])
    assert (single - ref).abs().max() <= 1e-4

    # Our length-exact batching (eager): the same numbers in one padded batch.
    embedder = SpeakerEmbedder.from_folder(folder, fast=False)
    batched = embedder.embed_batch(wavs)
    assert (batched - ref).abs().max() <= 1e-4

    # SpeechBrain's encode_batch on a padded batch: fbank frames at the end of
    # a shorter utterance overlap the padding, so it is close, not exact.
    lengths = torch.tensor([len(w) for w in wavs], dtype=torch.float)
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    sb_batch = verifier.encode_batch(padded, lengths / lengths.max())[:, 0]
    assert torch.cosine_similarity(sb_batch, ref, dim=-1).min() > 0.9999


def test_import_v2_keeps_every_tensor():
    """ERes2NetV2 (the 'last' global fusion) imports; embeddings equal official."""
    model, path = official_checkpoint("v2")
    folder = import_3dspeaker(path, path.parent / "imported_v2")
    text = (folder / "hyperparams.yaml").read_text()
    assert "global_fusion: last" in text and "embedding_size: 48" in text
    loaded = load_model_folder(folder).mods.embedding_model
    from speechbrain_eres2net.lobes.eres2net_3dspeaker import to_3dspeaker

    back = to_3dspeaker(loaded)
    official_state = model.state_dict()
    assert back.keys() == official_state.keys()
    for name, value in official_state.items():
        assert torch.equal(back[name], value), name
    feats = torch.randn(2, 120, 80)
    with torch.no_grad():
        assert torch.allclose(loaded(feats), model(feats).unsqueeze(1), atol=1e-5)


def test_import_with_trials_stores_threshold(tmp_path, realspk):
    _, path = official_checkpoint("v1")
    trials = trial_subset(tmp_path / "trials.txt")
    folder = import_3dspeaker(path, tmp_path / "m", trials=trials, data_root=realspk)
    embedder = SpeakerEmbedder.from_folder(folder)
    assert isinstance(embedder.threshold, float)
    card = (folder / "README.md").read_text()
    assert "trials.txt" in card and "3D-Speaker" in card and "EER" in card


def test_cli_import_bad_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "model.ckpt"
    bad.write_text("not a checkpoint")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechbrain_eres2net.cli",
            "import-3dspeaker",
            "--checkpoint",
            str(bad),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
