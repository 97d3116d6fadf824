"""Tests of the training pieces: schedules, loss, data pipeline, YAMLs."""

from __future__ import annotations

import copy
import csv
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import speechbrain as sb
import torch
import torch.nn.functional as F

from speechbrain_eres2net.augment.environment import EnvCorruption
from speechbrain_eres2net.augment.speed import change_speed, num_classes
from speechbrain_eres2net.dataio.synthetic import make_corpus
from speechbrain_eres2net.dataio.voxceleb_prepare import prepare_voxceleb
from speechbrain_eres2net.export.sherpa_onnx import sherpa_deployment
from speechbrain_eres2net.lobes.eres2net import ERes2Net
from speechbrain_eres2net.lobes.eres2net_3dspeaker import to_3dspeaker
from speechbrain_eres2net.nnet.losses import ArcMarginLoss
from speechbrain_eres2net.nnet.schedulers import MarginSchedule, WarmupCosineLR
from speechbrain_eres2net.training.brain import SpeakerBrain
from speechbrain_eres2net.training.data import (
    build_datasets,
    dataloader_options,
    per_process_batch_size,
    random_window,
    read_csv_rows,
)
from speechbrain_eres2net.training.recipe import (
    fit_classifier_size,
    load_hparams,
    load_pretrained,
    train,
)

REPO = Path(__file__).resolve().parents[1]
HPARAMS = REPO / "hparams"
TRAINING_YAMLS = [
    "train_eres2net_base.yaml",
    "train_eres2net_large.yaml",
    "train_ecapa_tdnn.yaml",
    "finetune_large_margin.yaml",
    "finetune_own_speakers.yaml",
    "quickstart.yaml",
    "quickstart_ecapa.yaml",
]


# ---------------------------------------------------------------- schedules


def test_lr_schedule_official_endpoints():
    sched = WarmupCosineLR(0.2, 5e-5, warmup_epochs=5, total_epochs=70)
    assert sched.value(0) == pytest.approx(5e-5)
    assert sched.value(2.5) == pytest.approx((0.2 + 5e-5) / 2)
    assert sched.value(5) == pytest.approx(0.2)
    # Half-way through the cosine: the mean of the two ends.
    assert sched.value(37.5) == pytest.approx((0.2 + 5e-5) / 2)
    assert sched.value(70) == pytest.approx(5e-5)
    assert sched.value(80) == pytest.approx(5e-5)
    values = [sched.value(e / 10) for e in range(0, 701)]
    peak = values.index(max(values))
    assert peak == 50
    assert all(a <= b for a, b in zip(values[:peak], values[1 : peak + 1]))
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1 :]))


def test_margin_schedule_official_values():
    sched = MarginSchedule(0.3, start_epoch=20, end_epoch=50)
    assert sched.value(0) == 0.0
    assert sched.value(19.999) == 0.0
    assert sched.value(20) == pytest.approx(0.0)
    # m(t) = 0.3 (1 - 10^(-3t)), t = fraction of the ramp
    for epoch in (23, 30, 40, 49.9):
        t = (epoch - 20) / 30
        assert sched.value(epoch) == pytest.approx(0.3 * (1 - 10 ** (-3 * t)))
    assert sched.value(23) == pytest.approx(0.15, abs=0.002)
    assert sched.value(30) == pytest.approx(0.27, abs=0.001)
    assert sched.value(50) == 0.3 and sched.value(70) == 0.3
    linear = MarginSchedule(0.3, 20, 50, curve="linear")
    assert linear.value(35) == pytest.approx(0.15)
    with pytest.raises(ValueError, match="curve"):
        MarginSchedule(0.3, 20, 50, curve="cubic")


def test_schedules_drive_optimizer_and_loss_and_survive_checkpoint(tmp_path):
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    lr_sched = WarmupCosineLR(0.2, 5e-5, 5, 70)
    # One epoch into the 5-epoch warm-up: a fifth of the way from 5e-5 to 0.2.
    assert lr_sched(opt, 1.0) == pytest.approx(5e-5 + (0.2 - 5e-5) / 5)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.04004)
    loss = ArcMarginLoss(scale=32)
    margin_sched = MarginSchedule(0.3, 20, 50)
    margin_sched(loss, 30.0)
    assert loss.margin == pytest.approx(0.27, abs=1e-3)
    ckpt = sb.utils.checkpoints.Checkpointer(
        tmp_path, {"lr": lr_sched, "margin": margin_sched}
    )
    ckpt.save_checkpoint()
    fresh_lr = WarmupCosineLR(0.2, 5e-5, 5, 70)
    fresh_margin = MarginSchedule(0.3, 20, 50)
    sb.utils.checkpoints.Checkpointer(
        tmp_path, {"lr": fresh_lr, "margin": fresh_margin}
    ).recover_if_possible()
    assert fresh_lr.progress == 1.0 and fresh_lr.current == lr_sched.current
    assert fresh_margin.current == margin_sched.current


def test_bad_schedules_are_rejected():
    with pytest.raises(ValueError, match="total_epochs"):
        WarmupCosineLR(0.2, 5e-5, warmup_epochs=5, total_epochs=5)
    with pytest.raises(ValueError, match="end_epoch"):
        MarginSchedule(0.3, start_epoch=5, end_epoch=2)


# ---------------------------------------------------------------- loss


def test_arc_margin_loss_matches_formula():
    torch.manual_seed(0)
    cosines = torch.rand(6, 1, 5) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3, 4, 0]).unsqueeze(1)
    loss = ArcMarginLoss(scale=32, margin=0.0)
    plain = F.cross_entropy(32 * cosines.squeeze(1), labels.squeeze(1))
    assert loss(cosines, labels) == pytest.approx(float(plain), rel=1e-5)

    margin = 0.3
    loss.set_margin(margin)
    logits = cosines.squeeze(1).clone()
    for row, target in enumerate(labels.squeeze(1).tolist()):
        cos = float(logits[row, target])
        if cos > math.cos(math.pi - margin):
            logits[row, target] = math.cos(math.acos(cos) + margin)
        else:  # past the monotonic range: the official linear fallback
            logits[row, target] = cos - (1 + math.cos(math.pi - margin))
    expected = F.cross_entropy(32 * logits, labels.squeeze(1))
    assert loss(cosines, labels) == pytest.approx(float(expected), rel=1e-5)
    # A margin makes the task harder: the loss grows.
    assert float(loss(cosines, labels)) > float(plain)
    with pytest.raises(ValueError, match="targets"):
        loss(cosines, labels[:3])


# ---------------------------------------------------------------- data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    paths = make_corpus(
        root,
        num_speakers=5,
        num_trial_speakers=2,
        utts_per_speaker=3,
        min_duration=1.5,
        max_duration=2.5,
    )
    save = root / "prep"
    csvs = prepare_voxceleb(root, save, paths["trials"], split_ratio=(100, 0))
    return {"root": root, "train_csv": csvs["train"], **paths}


def tiny_hparams(corpus, tmp_path, **overrides):
    base = {
        "data_folder": str(corpus["root"]),
        "output_folder": str(tmp_path / "out"),
        "train_annotation": corpus["train_csv"],
        "m_channels": 4,
        "emb_dim": 16,
        "sentence_len": 1.0,
        "batch_size": 4,
        "number_of_epochs": 2,
        # Synthetic voices, which Silero does not take for speech (as the
        # quickstart does on its built-in corpus).
        "vad": "off",
    }
    base.update(overrides)
    return load_hparams(HPARAMS / "quickstart.yaml", base)


def test_speed_perturbation_makes_new_speakers(corpus, tmp_path):
    hparams = tiny_hparams(
        corpus, tmp_path, speed_perturb=True, feature_cache=False, out_n_neurons=9
    )
    train_data, _, encoder = build_datasets(hparams, progress=False)
    num_speakers = len(encoder.lab2ind)
    assert num_speakers == 3
    assert num_classes(hparams, num_speakers) == 9
    seen = set()
    for epoch in range(1, 6):
        hparams["epoch_clock"].epoch = epoch
        for index in range(len(train_data)):
            item = train_data[index]
            label = int(item["spk_label"])
            speaker = encoder.lab2ind[train_data.data[item["id"]]["spk_id"]]
            assert 0 <= label < 3 * num_speakers
            assert label % num_speakers == speaker
            seen.add(label // num_speakers)
            assert item["sig"].shape == (16000,)
    assert seen == {0, 1, 2}
    # Speed 1.1 plays faster: fewer samples, as sox speed + rate.
    wav = torch.randn(16000)
    assert change_speed(wav, 1.1).shape[0] == pytest.approx(16000 / 1.1, abs=1)
    assert change_speed(wav, 0.9).shape[0] == pytest.approx(16000 / 0.9, abs=1)
    assert change_speed(wav, 1.0) is wav


def test_fit_classifier_size_reloads_with_speakers_times_speeds(corpus, tmp_path):
    overrides = {
        "data_folder": str(corpus["root"]),
        "output_folder": str(tmp_path / "out"),
        "train_annotation": corpus["train_csv"],
        "speed_perturb": True,
    }
    hparams = load_hparams(HPARAMS / "quickstart.yaml", overrides)
    sized = fit_classifier_size(HPARAMS / "quickstart.yaml", overrides, hparams)
    assert sized["out_n_neurons"] == 9
    assert sized["classifier"].weight.shape[0] == 9
    fixed = load_hparams(
        HPARAMS / "quickstart.yaml",
        {**overrides, "auto_out_neurons": False, "out_n_neurons": 4},
    )
    with pytest.raises(ValueError, match="need 9 classes"):
        fit_classifier_size(HPARAMS / "quickstart.yaml", overrides, fixed)


def write_chunk_csv(path, wav, spk, chunks):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "duration", "wav", "start", "stop", "spk_id"])
        for index, (start, stop) in enumerate(chunks):
            writer.writerow(
                [f"u_{index}", (stop - start) / 16000, wav, start, stop, spk]
            )


def test_crop_stays_inside_speechbrain_chunks(tmp_path):
    """SpeechBrain's prep writes 3 s chunks: crops must come from inside them."""
    wav = tmp_path / "noise.wav"
    signal = np.random.default_rng(0).integers(-20000, 20000, 16000 * 6, dtype=np.int16)
    sf.write(wav, signal, 16000, subtype="PCM_16")
    csv_path = tmp_path / "chunks.csv"
    chunks = [(0, 48000), (48000, 96000), (16000, 16000 + 24000)]
    write_chunk_csv(csv_path, wav, "spkA", chunks)
    hparams = load_hparams(
        HPARAMS / "quickstart.yaml",
        {
            "data_folder": str(tmp_path),
            "output_folder": str(tmp_path / "out"),
            "train_annotation": str(csv_path),
            "feature_cache": False,
            "sentence_len": 1.0,
        },
    )
    train_data, _, _ = build_datasets(hparams, progress=False)
    full = sf.read(wav, dtype="float32")[0]
    offsets = {i: set() for i in range(len(chunks))}
    for epoch in range(1, 8):
        hparams["epoch_clock"].epoch = epoch
        for index, (start, stop) in enumerate(chunks):
            sig = train_data[index]["sig"].numpy()
            assert sig.shape == (16000,)
            # Locate the crop in the file (random samples: positions are unique).
            candidates = np.flatnonzero(full == sig[0])
            offset = next(
                c for c in candidates if np.array_equal(full[c : c + 16000], sig)
            )
            assert start <= offset and offset + 16000 <= stop
            offsets[index].add(offset)
    # Random crops: different epochs crop different places.
    assert all(len(found) > 1 for found in offsets.values())
    # Same epoch and seed: the same crop (resumable).
    hparams["epoch_clock"].epoch = 3
    assert torch.equal(train_data[0]["sig"], train_data[0]["sig"])


def test_short_segments_are_kept_whole(tmp_path):
    wav = tmp_path / "short.wav"
    sf.write(wav, np.zeros(8000, dtype=np.int16), 16000, subtype="PCM_16")
    csv_path = tmp_path / "short.csv"
    write_chunk_csv(csv_path, wav, "spkA", [(0, 8000)])
    hparams = load_hparams(
        HPARAMS / "quickstart.yaml",
        {
            "data_folder": str(tmp_path),
            "output_folder": str(tmp_path / "out"),
            "train_annotation": str(csv_path),
            "sentence_len": 2.0,
        },
    )
    train_data, _, _ = build_datasets(hparams, progress=False)
    hparams["epoch_clock"].epoch = 1
    feats = train_data[0]["feats"]
    # All 0.5 s there is: 50 frames of the recipes' centred 10 ms framing.
    assert feats.shape == (hparams["compute_features"].num_frames(8000), 80) == (50, 80)


def test_random_window_bounds():
    gen = torch.Generator().manual_seed(1)
    starts = {random_window(10, 4, gen) for _ in range(200)}
    assert starts == set(range(7))
    assert random_window(3, 4, gen) == 0


def test_bad_csv_is_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,path\nx,y\n")
    with pytest.raises(ValueError, match="bad.csv"):
        read_csv_rows(str(bad))


def test_batch_size_is_global_under_ddp(monkeypatch):
    assert per_process_batch_size(256, 4) == 64
    monkeypatch.setenv("WORLD_SIZE", "2")
    options = dataloader_options(
        {"batch_size": 256, "dataloader_options": {"batch_size": 256, "shuffle": True}}
    )
    assert options == {"batch_size": 128, "shuffle": True}


# ---------------------------------------------------------------- YAMLs


@pytest.mark.parametrize("name", TRAINING_YAMLS)
def test_training_yamls_instantiate(name, tmp_path):
    overrides = {
        "data_folder": str(tmp_path / "data"),
        "output_folder": str(tmp_path / "out"),
        "pretrained_path": str(tmp_path / "pretrained"),
    }
    text = (HPARAMS / name).read_text()
    hparams = load_hparams(
        HPARAMS / name, {k: v for k, v in overrides.items() if k in text}
    )
    for key in ("compute_features", "mean_var_norm", "embedding_model", "classifier"):
        assert hparams["modules"][key] is hparams[key]
    recoverables = hparams["checkpointer"].recoverables
    for key in ("embedding_model", "classifier", "normalizer", "counter"):
        assert key in recoverables
    assert recoverables["lr_scheduler"] is hparams["lr_scheduler"]
    assert recoverables["margin_scheduler"] is hparams["margin_scheduler"]
    assert hparams["sample_rate"] == 16000 and hparams["n_mels"] == 80
    assert hparams["mean_var_norm"].norm_type == "sentence"
    assert not hparams["mean_var_norm"].std_norm
    # Every recipe trains on the features sherpa-onnx computes at deployment.
    front = sherpa_deployment(hparams["compute_features"], hparams["mean_var_norm"])
    assert front.exact, front.note
    assert hparams["save_folder"].startswith(str(tmp_path / "out"))
    assert (
        hparams["label_encoder_file"] == f"{hparams['save_folder']}/label_encoder.txt"
    )
    feats = hparams["compute_features"](torch.zeros(1, 8000))
    emb = hparams["embedding_model"].eval()(feats, torch.ones(1))
    assert emb.shape == (1, 1, hparams["emb_dim"])
    assert isinstance(hparams["compute_cost"], ArcMarginLoss)


def test_base_yaml_is_the_official_recipe(tmp_path):
    hparams = load_hparams(
        HPARAMS / "train_eres2net_base.yaml",
        {"data_folder": str(tmp_path), "output_folder": str(tmp_path / "o")},
    )
    assert hparams["sentence_len"] == 3.0
    assert hparams["speeds"] == [1.0, 0.9, 1.1] and hparams["speed_perturb"]
    assert hparams["batch_size"] == 256 and hparams["number_of_epochs"] == 70
    assert hparams["compute_cost"].scale == 32
    lr, margin = hparams["lr_scheduler"], hparams["margin_scheduler"]
    assert lr.value(0) == pytest.approx(5e-5) and lr.value(5) == pytest.approx(0.2)
    assert lr.value(70) == pytest.approx(5e-5)
    assert margin.value(19.9) == 0 and margin.value(50) == pytest.approx(0.3)
    opt = hparams["opt_class"]([torch.nn.Parameter(torch.zeros(1))])
    group = opt.param_groups[0]
    assert group["momentum"] == 0.9 and group["nesterov"]
    assert group["weight_decay"] == pytest.approx(1e-4)
    params = sum(p.numel() for p in hparams["embedding_model"].parameters())
    assert params == pytest.approx(6.61e6, rel=0.01)
    large = load_hparams(
        HPARAMS / "train_eres2net_large.yaml",
        {"data_folder": str(tmp_path), "output_folder": str(tmp_path / "o")},
    )
    params = sum(p.numel() for p in large["embedding_model"].parameters())
    assert params == pytest.approx(22.46e6, rel=0.01)


def test_large_margin_yaml_is_the_official_stage(tmp_path):
    hparams = load_hparams(
        HPARAMS / "finetune_large_margin.yaml",
        {
            "data_folder": str(tmp_path),
            "output_folder": str(tmp_path / "o"),
            "pretrained_path": str(tmp_path / "p"),
        },
    )
    assert hparams["sentence_len"] == 6.0 and not hparams["speed_perturb"]
    assert hparams["number_of_epochs"] == 7
    margin, lr = hparams["margin_scheduler"], hparams["lr_scheduler"]
    assert margin.value(0) == 0.5 and margin.value(6.5) == 0.5
    assert lr.value(1) == pytest.approx(1e-4) and lr.value(7) == pytest.approx(2e-5)
    loadables = hparams["pretrainer"].loadables
    assert loadables["embedding_model"] is hparams["embedding_model"]
    assert loadables["classifier"] is hparams["classifier"]


def test_pretrained_model_folder_initialises(tmp_path):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    overrides = {
        "data_folder": str(tmp_path),
        "output_folder": str(tmp_path / "o"),
        "pretrained_path": str(folder),
        "m_channels": 8,
        "emb_dim": 32,
        "out_n_neurons": 6,
    }
    source = load_hparams(HPARAMS / "finetune_large_margin.yaml", overrides)
    with torch.no_grad():
        for p in source["embedding_model"].parameters():
            p.add_(1.0)
    torch.save(source["embedding_model"].state_dict(), folder / "embedding_model.ckpt")
    torch.save(source["classifier"].state_dict(), folder / "classifier.ckpt")
    target = load_hparams(HPARAMS / "finetune_large_margin.yaml", overrides)
    load_pretrained(target)
    for a, b in zip(
        source["embedding_model"].state_dict().values(),
        target["embedding_model"].state_dict().values(),
    ):
        assert torch.equal(a, b)
    assert torch.equal(source["classifier"].weight, target["classifier"].weight)


def test_finetune_from_3dspeaker_checkpoint(tmp_path):
    official = ERes2Net(m_channels=8, embedding_size=32)
    with torch.no_grad():
        for p in official.parameters():
            p.normal_()
    path = tmp_path / "pretrained_eres2net.ckpt"
    torch.save(to_3dspeaker(official), path)
    overrides = {
        "data_folder": str(tmp_path),
        "output_folder": str(tmp_path / "o"),
        "pretrained_3dspeaker": str(path),
        "front_end": "kaldi",
        "m_channels": 8,
        "emb_dim": 32,
    }
    hparams = load_hparams(HPARAMS / "finetune_own_speakers.yaml", overrides)
    load_pretrained(hparams)
    model = hparams["embedding_model"].eval()
    x = torch.randn(1, 120, 80)
    assert torch.allclose(model(x), official.eval()(x), atol=1e-5)
    assert type(hparams["compute_features"]).__name__ == "KaldiFbank"
    wrong = load_hparams(
        HPARAMS / "finetune_own_speakers.yaml",
        {**overrides, "front_end": "speechbrain"},
    )
    with pytest.raises(ValueError, match="front_end: kaldi"):
        load_pretrained(wrong)
    mismatched = load_hparams(
        HPARAMS / "finetune_own_speakers.yaml", {**overrides, "m_channels": 16}
    )
    with pytest.raises(ValueError, match="m_channels"):
        load_pretrained(mismatched)


# ---------------------------------------------------------------- augmentation


def test_env_corruption_from_local_folders(tmp_path, caplog):
    rng = np.random.default_rng(0)
    noise = tmp_path / "musan" / "noise" / "free-sound"
    rirs = tmp_path / "rirs"
    noise.mkdir(parents=True)
    rirs.mkdir()
    for i in range(2):
        sf.write(noise / f"n{i}.wav", rng.normal(size=16000) * 0.1, 16000)
        rir = np.zeros(800)
        rir[0], rir[400] = 1.0, 0.5
        sf.write(rirs / f"r{i}.wav", rir, 16000)
    corrupt = EnvCorruption(
        str(noise), str(rirs), csv_folder=str(tmp_path / "csv"), prob=1.0
    )
    assert (tmp_path / "csv" / "noise.csv").read_text().count("\n") == 3
    wavs = torch.sin(torch.linspace(0, 300, 16000)).repeat(4, 1) * 0.5
    out = corrupt(wavs, torch.ones(4))
    assert out.shape == wavs.shape
    assert not torch.allclose(out, wavs)
    assert torch.allclose(out.abs().amax(dim=1), torch.ones(4), atol=1e-5)
    with caplog.at_level(
        logging.INFO, logger="speechbrain_eres2net.augment.environment"
    ):
        off = EnvCorruption(None, None)
    assert "augmentation is OFF" in caplog.text
    assert torch.equal(off(wavs, torch.ones(4)), wavs)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        EnvCorruption(str(tmp_path / "nowhere"), None)


# ---------------------------------------------------------------- training loop


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """A separable toy task: 3 "speakers" that are pure tones (200 Hz, 1 kHz,
    4 kHz) with random phase and a little noise, 3 utterances each."""
    root = tmp_path_factory.mktemp("tones")
    rng = np.random.default_rng(0)
    rows = []
    for speaker, freq in enumerate((200, 1000, 4000)):
        for utt in range(3):
            n = int(16000 * (1.5 + 0.25 * utt))
            t = np.arange(n) / 16000
            wav = 0.3 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
            wav += 0.01 * rng.normal(size=n)
            path = root / f"tone{speaker}_{utt}.wav"
            sf.write(path, wav.astype(np.float32), 16000)
            rows.append((f"tone{speaker}_{utt}", (0, n), path, f"spk{speaker}"))
    csv_path = root / "train.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "duration", "wav", "start", "stop", "spk_id"])
        for uid, (start, stop), path, spk in rows:
            writer.writerow([uid, (stop - start) / 16000, path, start, stop, spk])
    return {"root": root, "train_csv": str(csv_path)}


def training_set_loss(hparams, dataset) -> float:
    """Cross-entropy (scale 32, no margin) of every epoch-1 training crop.

    On a copy of the modules in train mode, so BatchNorm uses the batch's
    own statistics (six optimiser steps leave the running ones mostly at
    their initial values) and the model being trained is left untouched.
    """
    from speechbrain.dataio.batch import PaddedBatch

    hparams["epoch_clock"].epoch = 1
    batch = PaddedBatch([dataset[i] for i in range(len(dataset))])
    modules = {k: copy.deepcopy(m).train() for k, m in hparams["modules"].items()}
    with torch.no_grad():
        feats, lens = batch.feats
        feats = modules["mean_var_norm"](feats, lens)
        embeddings = modules["embedding_model"](feats, lens)
        cosines = modules["classifier"](embeddings).squeeze(1)
    return float(F.cross_entropy(32 * cosines, batch.spk_label[0].reshape(-1)))


def test_short_fit_updates_lr_per_iteration_and_learns(tones, tmp_path):
    # 8 base channels: on the recipes' Kaldi fbank, 4 did not learn the tones
    # in six steps (measured 4.6 -> 4.9; 8 channels: 2.6 -> 0.15).
    hparams = tiny_hparams(
        tones, tmp_path, out_n_neurons=3, number_of_epochs=3, m_channels=8
    )
    seen = []

    class Recording(SpeakerBrain):
        def on_fit_batch_start(self, batch, should_step):
            super().on_fit_batch_start(batch, should_step)
            seen.append(
                (
                    self.hparams.lr_scheduler.progress,
                    self.optimizer.param_groups[0]["lr"],
                )
            )

    train_data, _, _ = build_datasets(hparams, progress=False)
    loss_before = training_set_loss(hparams, train_data)
    brain = Recording(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"noprogressbar": True},
        checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        hparams["epoch_counter"],
        train_data,
        train_loader_kwargs=dataloader_options(hparams),
    )
    # 9 utterances in batches of 4 (the last, partial one dropped).
    assert len(train_data) == 9 and brain.steps_per_epoch == 2
    progress = [p for p, _ in seen]
    assert progress == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])
    # quickstart.yaml: linear warm-up from lr_min 1e-4 to lr 3e-3 over the
    # first epoch, then a half cosine down to 1e-4 at the last (3rd) epoch:
    # lr(e) = 1e-4 + 2.9e-3 * (1 + cos(pi (e - 1) / 2)) / 2 for e >= 1.
    half = 2.9e-3 / 2
    expected = [
        1e-4,
        1e-4 + 0.5 * 2.9e-3,  # half-way through the warm-up
        3e-3,
        1e-4 + half * (1 + math.sqrt(0.5)),
        1e-4 + half,
        1e-4 + half * (1 - math.sqrt(0.5)),
    ]
    assert [lr for _, lr in seen] == pytest.approx(expected, rel=1e-9)
    # It learns: the loss over the training set falls (measured: 2.6 -> 0.15).
    loss_after = training_set_loss(hparams, train_data)
    print(f"training-set loss {loss_before:.2f} -> {loss_after:.2f}")
    assert loss_after < 0.3 * loss_before
    assert (Path(hparams["save_folder"]) / "label_encoder.txt").is_file()
    assert "epoch: 3" in Path(hparams["train_log"]).read_text()


@pytest.mark.parametrize("channels_last", [False, True])
def test_channels_last_switch_changes_layout_not_values(
    corpus, tmp_path, channels_last
):
    # 8 base channels: the stride-2 1x1 convs see 16 channels, which oneDNN's
    # NHWC weight gradient handles (fewer: see the next test).
    hparams = tiny_hparams(corpus, tmp_path, channels_last=channels_last, m_channels=8)
    model = hparams["embedding_model"]
    feats = torch.randn(3, 120, 80)
    lengths = torch.tensor([1.0, 0.7, 0.5])
    expected = model.eval()(feats, lengths)
    SpeakerBrain(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts={"noprogressbar": True},
    )
    # 3x3 weights with several input channels: the layouts differ for these.
    weights = [
        m.weight
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
        and m.in_channels > 1
        and m.kernel_size != (1, 1)
    ]
    assert weights and all(
        w.is_contiguous(memory_format=torch.channels_last) == channels_last
        for w in weights
    )
    assert torch.allclose(model.eval()(feats, lengths), expected, atol=1e-5)


def test_channels_last_is_skipped_where_onednn_would_crash(corpus, tmp_path, caplog):
    hparams = tiny_hparams(corpus, tmp_path, channels_last=True, m_channels=4)
    with caplog.at_level(logging.WARNING):
        brain = SpeakerBrain(
            modules=hparams["modules"],
            opt_class=hparams["opt_class"],
            hparams=hparams,
            run_opts={"noprogressbar": True},
        )
    assert "channels_last ignored: stages.1.0.conv_in" in caplog.text
    conv = brain.modules.embedding_model.stages[0][0].split_convs[0]
    assert conv.weight.is_contiguous()


def test_waveform_pipeline_with_speed_perturbation_and_validation(corpus, tmp_path):
    """The full-recipe path: crops read per item, speed perturbation, dev set."""
    csvs = prepare_voxceleb(
        corpus["root"], tmp_path / "prep", corpus["trials"], split_ratio=(2, 1)
    )
    hparams = tiny_hparams(
        corpus,
        tmp_path,
        train_annotation=csvs["train"],
        valid_annotation=csvs["dev"],
        feature_cache=False,
        speed_perturb=True,
        out_n_neurons=9,
        number_of_epochs=1,
        warmup_epochs=0.5,
        batch_size=2,
    )
    brain = train(hparams, {"noprogressbar": True})
    assert brain.steps_per_epoch == 3  # 6 training utterances, batches of 2
    log = Path(hparams["train_log"]).read_text()
    assert "epoch: 1," in log and "valid loss" in log and "valid accuracy" in log
    ckpts = list(Path(hparams["save_folder"]).glob("CKPT+*"))
    assert len(ckpts) == 1


def test_an_augmentation_is_one_yaml_entry(corpus, tmp_path):
    """wav_augment is SpeechBrain's Augmenter: listing a module adds it."""
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, wavs, lengths):
            seen.append(wavs.shape[0])
            return wavs * 0.5

    yaml = f"""
recorder: !new:{__name__}.RecorderHolder.make
wav_augment: !new:speechbrain.augment.augmenter.Augmenter
    concat_original: True
    augmentations: [!ref <recorder>]
"""
    RecorderHolder.make = Recorder
    from hyperpyyaml import load_hyperpyyaml

    augment = load_hyperpyyaml(yaml)["wav_augment"]
    hparams = tiny_hparams(
        corpus,
        tmp_path,
        feature_cache=False,
        number_of_epochs=1,
        warmup_epochs=0.5,
        batch_size=2,
    )
    hparams["wav_augment"] = augment
    brain = train(hparams, {"noprogressbar": True})
    # Every training batch went through the listed module, and with
    # concat_original the batch (and its labels) doubled without an error.
    assert seen and len(seen) == brain.steps_per_epoch
    assert brain.accuracy.total == 2 * sum(seen)


class RecorderHolder:
    make = None
