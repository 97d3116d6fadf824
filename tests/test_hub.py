"""Model folders: recipe checkpoint -> folder -> SpeechBrain's inference classes.

The recipe side is the real one: ``hparams/quickstart.yaml`` (a tiny ERes2Net
with SpeechBrain's Fbank, sentence normalisation and an ECAPA classifier)
is loaded with hyperpyyaml and saved by its own ``checkpointer``, as the
training script does; BatchNorm statistics and the classifier are
randomised so that a wrong or missing tensor changes the embeddings.

The model card is read back with ``huggingface_hub.ModelCard``; its
model-index and the stored threshold are checked against metrics computed
here by brute force from trials scored one at a time through ``Verifier``,
not through the batched pipeline the export measures with.

The folder builders are in model_builders.py, shared with the other modules.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).parent))
from conftest import REPO  # noqa: E402
from model_builders import (  # noqa: E402
    QUICKSTART_YAML,
    real_wavs,
    recipe_folder,
    recipe_run,
    train_side,
    trial_subset,
)

from speechbrain_eres2net.export.hub import push_to_hub
from speechbrain_eres2net.export.recipe import export_hub
from speechbrain_eres2net.export.yaml_nodes import training_nodes
from speechbrain_eres2net.inference.folder import FolderPretrainer
from speechbrain_eres2net.training.checkpoints import latest_checkpoint


def reference_embeddings(hp: dict, wavs: list[torch.Tensor]) -> torch.Tensor:
    """Training-time modules on each utterance alone (no padding)."""
    out = []
    with torch.no_grad():
        for wav in wavs:
            feats = hp["compute_features"](wav.unsqueeze(0))
            feats = hp["mean_var_norm"](feats, torch.ones(1))
            out.append(hp["embedding_model"](feats)[0, 0])
    return torch.stack(out)


FRESH_PROCESS = r"""
import json, socket, sys, torch
def no_network(*args, **kwargs):
    raise RuntimeError("network access attempted")
socket.socket.connect = no_network
socket.create_connection = no_network
from speechbrain.inference.speaker import SpeakerRecognition
from speechbrain.inference.classifiers import EncoderClassifier
from speechbrain.dataio import audio_io
folder, savedir, out, *files = sys.argv[1:]
verifier = SpeakerRecognition.from_hparams(source=folder, savedir=savedir)
classifier = EncoderClassifier.from_hparams(source=folder, savedir=savedir + "-cls")
wavs = [audio_io.load(f)[0].squeeze(0) for f in files]
lengths = torch.tensor([len(w) for w in wavs], dtype=torch.float)
batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
result = {
    "padded": verifier.encode_batch(batch, lengths / lengths.max()),
    "single": torch.stack([verifier.encode_batch(w.unsqueeze(0))[0] for w in wavs]),
    "classifier_single": torch.stack(
        [classifier.encode_batch(w.unsqueeze(0))[0] for w in wavs]
    ),
    "states": {k: getattr(verifier.mods, k).state_dict() for k in
               ("embedding_model", "classifier")},
    "verify": verifier.verify_files(files[0], files[1]),
    "classify": classifier.classify_file(files[0])[3],
    "threshold": verifier.hparams.verification_threshold,
}
torch.save(result, out)
"""


@pytest.mark.slow
def test_export_loads_in_fresh_process_with_exact_weights(tmp_path):
    """SpeechBrain's classes load the folder offline; weights, embeddings match."""
    _, hp = recipe_run()
    folder = recipe_folder()
    files = real_wavs(3)
    assert len({soundfile.info(f).frames for f in files}) == 3
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    out = tmp_path / "result.pt"
    proc = subprocess.run(
        [sys.executable, str(script), str(folder), str(tmp_path / "savedir"), str(out)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # relative paths must not resolve against the repo
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "network access attempted" not in proc.stderr
    result = torch.load(out, weights_only=False)

    # Every tensor by name: same keys, bit-identical values.
    for key in ("embedding_model", "classifier"):
        expected = hp[key].state_dict()
        loaded = result["states"][key]
        assert loaded.keys() == expected.keys(), key
        for name, value in expected.items():
            assert torch.equal(loaded[name], value), f"{key}.{name}"

    wavs = [torch.from_numpy(soundfile.read(f, dtype="float32")[0]) for f in files]
    ref = reference_embeddings(hp, wavs)
    assert torch.allclose(result["single"][:, 0], ref, atol=1e-5)
    assert torch.allclose(result["classifier_single"][:, 0], ref, atol=1e-5)
    # Padded batches through SpeechBrain's encode_batch: Fbank frames near
    # the end of a short utterance see the padding, so only nearly equal.
    cos = torch.cosine_similarity(result["padded"][:, 0], ref, dim=-1)
    assert cos.min() > 0.999, cos
    score, decision = result["verify"]
    expected_score = torch.cosine_similarity(ref[0], ref[1], dim=0)
    assert abs(float(score) - float(expected_score)) < 1e-4
    assert result["classify"][0].startswith("spk")
    assert result["threshold"] is None
    # With a savedir, SpeechBrain links the folder's files: nothing copied wrong.
    assert (tmp_path / "savedir" / "embedding_model.ckpt").exists()


def test_folder_is_relocatable_and_names_our_classes(tmp_path):
    """No absolute paths: a moved copy loads from its new place."""
    folder = recipe_folder()
    text = (folder / "hyperparams.yaml").read_text()
    assert "!new:speechbrain_eres2net.ERes2Net" in text
    assert "!new:speechbrain_eres2net.FolderPretrainer" in text
    assert str(folder.parent) not in text and "/tmp" not in text
    expected = {
        "hyperparams.yaml",
        "embedding_model.ckpt",
        "classifier.ckpt",
        "mean_var_norm.ckpt",
        "label_encoder.txt",
        "README.md",
    }
    assert {p.name for p in folder.iterdir()} == expected
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    from speechbrain.inference.speaker import SpeakerRecognition

    model = SpeakerRecognition.from_hparams(source=str(moved))
    _, hp = recipe_run()
    loaded = model.mods.embedding_model.state_dict()
    for name, value in hp["embedding_model"].state_dict().items():
        assert torch.equal(loaded[name], value), name
    card = (folder / "README.md").read_text()
    params = sum(p.numel() for p in hp["embedding_model"].parameters())
    assert f"{params:,}" in card and "SpeakerRecognition.from_hparams" in card
    hub_card, results = card_results(folder)
    assert hub_card.data.license == "apache-2.0" and not results  # no trials
    assert "Not measured" in card
    assert_no_local_path(card, folder.parent)


def test_pretrainer_joins_bare_names_to_the_source():
    from speechbrain.utils.fetching import FetchFrom, FetchSource

    pre = FolderPretrainer(
        loadables={"m": torch.nn.Linear(1, 1)},
        paths={"m": "m.ckpt", "other": "https://host/x/o.ckpt"},
    )
    assert pre._folder_paths("/models/a")["m"] == "/models/a/m.ckpt"
    assert pre._folder_paths("user/repo")["other"] == "https://host/x/o.ckpt"
    joined = pre._folder_paths(FetchSource(FetchFrom.HUGGING_FACE, "user/repo"))["m"]
    assert joined == FetchSource(FetchFrom.HUGGING_FACE, "user/repo/m.ckpt")


def oracle_scores(folder: Path, trials: Path, data_root: Path) -> dict:
    """Labels, cosine scores and LLRs of a trial list, one trial at a time.

    Through :class:`Verifier` (each file embedded alone, as a user's
    ``eres2net verify`` does), not through the batched trial pipeline that
    the export measures with.
    """
    from speechbrain_eres2net.evaluation.decisions import Verifier

    verifier = Verifier.from_folder(folder, fast=False)
    labels, scores, llrs = [], [], []
    for line in trials.read_text().splitlines():
        label, enrol, test = line.split()
        decision = verifier.verify(data_root / "wav" / enrol, data_root / "wav" / test)
        labels.append(int(label))
        scores.append(decision.score)
        llrs.append(decision.llr)
    return {"labels": np.array(labels), "scores": np.array(scores), "llrs": llrs}


def brute_force_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """EER, its threshold and minDCF(0.01), trying every threshold.

    Written from the definitions, independently of
    ``speechbrain_eres2net.evaluation.metrics``: a trial is accepted when its
    score is above the threshold t; t runs over -inf and every score. The
    EER threshold is the lowest t with P_miss >= P_fa; the EER is where the
    straight segment from the operating point just before it meets the
    diagonal.
    """
    target, nontarget = scores[labels == 1], scores[labels == 0]
    points = []
    for t in sorted({-np.inf, *scores.tolist()}):
        points.append((t, np.mean(target <= t), np.mean(nontarget > t)))
    k = next(i for i, (_, miss, fa) in enumerate(points) if miss >= fa)
    threshold, miss1, fa1 = points[k]
    _, miss0, fa0 = points[k - 1]
    # P_miss and P_fa along the segment: miss0 + s (miss1 - miss0), ...
    s = (fa0 - miss0) / ((miss1 - miss0) - (fa1 - fa0))
    dcf = min(0.01 * miss + 0.99 * fa for _, miss, fa in points) / 0.01
    return {"eer": miss0 + s * (miss1 - miss0), "threshold": threshold, "dcf": dcf}


def card_results(folder: Path) -> tuple:
    """The card as the Hub reads it, and its model-index by metric type."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(folder / "README.md")
    return card, {r.metric_type: r for r in card.data.eval_results or []}


def assert_no_local_path(text: str, *paths: Path) -> None:
    for path in paths:
        for form in {str(path), str(path.resolve())}:
            assert form not in text, form
    # Nothing shaped like /a/b/ outside a URL.
    assert not re.findall(r"(?<![\w:/.])/[\w.-]+/", text)


def test_export_card_metrics_match_an_independent_oracle(tmp_path, realspk, capsys):
    """CLI export on 5 + 5 trials (too few to calibrate) from a tmp folder:
    the model-index and the stored threshold equal the brute-force metrics
    of the trials scored one by one, and no local path is published."""
    from speechbrain_eres2net.cli.main import main

    _, hp = recipe_run()
    trials = trial_subset(tmp_path / "trials.txt")
    folder = tmp_path / "model"
    code = main(
        [
            "export-hub",
            "--hparams",
            str(QUICKSTART_YAML),
            "--checkpoint",
            str(hp["save_folder"]),
            "--out",
            str(folder),
            "--trials",
            str(trials),
            "--data-root",
            str(realspk),
            "--training-data",
            "realspk",
            "--language",
            "en",
        ]
    )
    assert code == 0, capsys.readouterr().err
    oracle = oracle_scores(folder, trials, realspk)
    expected = brute_force_metrics(oracle["scores"], oracle["labels"])

    card, results = card_results(folder)
    assert set(results) == {"eer", "min_dcf"}  # not calibrated: no Cllr
    eer = results["eer"]
    assert eer.metric_name == "EER (%)"
    assert eer.metric_value == pytest.approx(100 * expected["eer"], abs=1e-3)
    assert results["min_dcf"].metric_value == pytest.approx(expected["dcf"], abs=1e-3)
    assert eer.task_type == "speaker-verification"
    # The data root's name, never its path; the trial list by file name.
    assert (eer.dataset_name, eer.dataset_split) == (
        realspk.resolve().name,
        "trials.txt",
    )
    data = card.data
    assert data.license == "apache-2.0" and data.library_name == "speechbrain"
    assert data.datasets == ["realspk"] and data.language == ["en"]
    assert {"speaker-verification", "embeddings", "eres2net", "speechbrain"} <= set(
        data.tags
    )
    assert not (folder / "calibration.json").exists()

    from speechbrain_eres2net.inference.embedder import SpeakerEmbedder

    threshold = SpeakerEmbedder.from_folder(folder, fast=False).threshold
    assert threshold == pytest.approx(expected["threshold"], abs=1e-4)

    text = (folder / "README.md").read_text()
    assert "Not calibrated" in text and "trials.txt" in text
    assert "## Limitations" in text and "@inproceedings{chen2023eres2net" in text
    assert_no_local_path(text, tmp_path, realspk, Path.cwd())


def test_calibrated_export_publishes_cllr_of_its_llrs(tmp_path, realspk):
    """10 + 10 trials: calibrated; the model-index Cllr equals the Cllr of the
    LLRs a Verifier gives trial by trial, computed here from its definition."""
    _, hp = recipe_run()
    trials = trial_subset(tmp_path / "dev.txt", per_label=10)
    folder = export_hub(
        QUICKSTART_YAML,
        hp["save_folder"],
        tmp_path / "model",
        trials=trials,
        data_root=realspk,
        eval_dataset="realspk-dev",
    )
    assert (folder / "calibration.json").is_file()
    oracle = oracle_scores(folder, trials, realspk)
    llr, labels = np.array(oracle["llrs"], dtype=float), oracle["labels"]
    # Cllr = (mean log2(1 + e^-llr) over targets + mean log2(1 + e^llr)
    # over non-targets) / 2, in bits.
    cllr = (
        0.5
        * (
            np.mean(np.logaddexp(0, -llr[labels == 1]))
            + np.mean(np.logaddexp(0, llr[labels == 0]))
        )
        / np.log(2)
    )
    expected = brute_force_metrics(oracle["scores"], labels)
    card, results = card_results(folder)
    assert results["cllr"].metric_value == pytest.approx(cllr, abs=1e-3)
    assert results["eer"].metric_value == pytest.approx(100 * expected["eer"], abs=1e-3)
    assert results["eer"].dataset_name == "realspk-dev"
    assert card.data.metrics == ["eer", "min_dcf", "cllr"]
    assert card.data.datasets is None and card.data.language is None  # not stated
    text = (folder / "README.md").read_text()
    fitted = json.loads((folder / "calibration.json").read_text())["fitted_on"]
    # 10 + 10 trials of the list, and the same with 3-recording enrollments.
    counts = f"{fitted['n_target']} target / {fitted['n_nontarget']} non-target"
    assert fitted["n_target"] + fitted["n_nontarget"] == 20 + fitted["enrolled_trials"]
    assert fitted["enrolled_trials"] > 0 and counts in text
    assert "enrolled from 3 recordings" in text
    assert "What the calibration covers" in text
    assert_no_local_path(text, tmp_path, realspk)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--license", "apache2", "--license 'apache2' is not a Hugging Face Hub"),
        ("--language", "English", "--language 'English' is not an ISO 639 code"),
        ("--training-data", "/data/vox2", "--training-data must name the data"),
        ("--eval-dataset", "~/corpora/vox1", "--eval-dataset must name the data"),
    ],
)
def test_bad_card_option_is_one_line_before_any_work(
    tmp_path, capsys, option, value, message
):
    from speechbrain_eres2net.cli.main import main

    out = tmp_path / "model"
    args = ["export-hub", "--hparams", str(QUICKSTART_YAML), "--checkpoint"]
    code = main([*args, str(tmp_path / "none"), "--out", str(out), option, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith(f"eres2net export-hub: error: {message}")
    if option == "--license":
        assert "apache-2.0" in err[0] and "cc-by-4.0" in err[0] and "other" in err[0]
    assert not out.exists()


def test_latest_checkpoint_is_taken_from_a_save_folder(tmp_path):
    hp = train_side(tmp_path, seed=1)
    first = latest_checkpoint(hp["save_folder"])
    with torch.no_grad():
        for p in hp["embedding_model"].parameters():
            p.add_(1.0)
    hp["checkpointer"].save_checkpoint()
    second = latest_checkpoint(hp["save_folder"])
    assert second != first and latest_checkpoint(second) == second
    folder = export_hub(QUICKSTART_YAML, hp["save_folder"], tmp_path / "model")
    saved = torch.load(folder / "embedding_model.ckpt", weights_only=True)
    for name, value in hp["embedding_model"].state_dict().items():
        assert torch.equal(saved[name], value), name


def test_architecture_mismatch_is_an_error_and_leaves_nothing(tmp_path):
    out, hp = recipe_run()
    yaml = tmp_path / "wider.yaml"
    yaml.write_text(
        QUICKSTART_YAML.read_text().replace("m_channels: 8", "m_channels: 16")
    )
    target = tmp_path / "model"
    with pytest.raises(ValueError, match="does not fit the embedding_model"):
        export_hub(yaml, hp["save_folder"], target)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


def test_export_refuses_to_replace_a_non_model_folder(tmp_path):
    out, hp = recipe_run()
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        export_hub(QUICKSTART_YAML, hp["save_folder"], target)
    assert (target / "notes.txt").read_text() == "keep me"


def test_training_nodes_of_the_base_recipe():
    """The full-size recipe YAML parses without data paths; nothing is built."""
    nodes = training_nodes(REPO / "hparams" / "train_eres2net_base.yaml")
    model = nodes["embedding_model"]
    assert model.tag.value == "!new:speechbrain_eres2net.ERes2Net"
    assert dict(model) == {
        "feat_dim": 80,
        "embedding_size": 192,
        "m_channels": 32,
        "lff_stages": [3, 4],
        "fusion": "aff",
        "global_fusion": "bottom_up",
    }
    assert nodes["mean_var_norm"]["norm_type"] == "sentence"
    assert nodes["sample_rate"] == 16000


def test_push_to_hub_builds_the_upload(monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, **kwargs):
            calls.append(("create_repo", kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))
            return "commit-url"

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    folder = recipe_folder()
    assert (
        push_to_hub(folder, "me/eres2net-tiny", token="t0k", private=True)
        == "commit-url"
    )
    assert calls[0] == ("init", "t0k")
    assert calls[1] == (
        "create_repo",
        {
            "repo_id": "me/eres2net-tiny",
            "repo_type": "model",
            "private": True,
            "exist_ok": True,
        },
    )
    name, upload = calls[2]
    assert name == "upload_folder" and upload["folder_path"] == str(folder)
    assert upload["repo_id"] == "me/eres2net-tiny" and upload["repo_type"] == "model"
    with pytest.raises(FileNotFoundError):
        push_to_hub(folder / "README.md", "me/x")
