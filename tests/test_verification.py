"""Verification: trial lists, length-batched embeddings, scoring outputs, recipe."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import metric_oracles
import numpy as np
import pytest
import torch
from conftest import net_speech
from hyperpyyaml import load_hyperpyyaml
from speechbrain.processing.features import InputNormalization
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_eres2net import ERes2Net
from speechbrain_eres2net.dataio.trials import read_trials
from speechbrain_eres2net.dataio.voxceleb_prepare import trial_utterances
from speechbrain_eres2net.evaluation.pipeline import (
    embed_csv,
    embed_utterances,
    evaluate_trials,
)
from speechbrain_eres2net.evaluation.scoring import score_trials, speaker_cohort
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder
from speechbrain_eres2net.lobes.features import make_front_end
from speechbrain_eres2net.training.checkpoints import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = {"m_channels": 8, "num_blocks": [1, 1, 1, 1], "embedding_size": 32}


def tiny_modules(seed: int = 0):
    torch.manual_seed(seed)
    model = ERes2Net(**TINY).eval()
    return (
        make_front_end("sherpa"),  # the recipes' front end, verification.yaml's
        InputNormalization(norm_type="sentence", std_norm=False),
        model,
    )


def synthetic_set(rng, prefix, n_speakers, n_utts=5, dim=32, offset_scale=3.0):
    """Embeddings = speaker direction + noise + a shared direction scaled per
    utterance (a per-utterance score offset, as channel effects give)."""
    common = np.ones(dim) / np.sqrt(dim)
    embeddings, speakers = {}, {}
    for s in range(n_speakers):
        centre = rng.normal(size=dim)
        centre /= np.linalg.norm(centre)
        for u in range(n_utts):
            noise = 0.8 * rng.normal(size=dim) / np.sqrt(dim)
            key = f"{prefix}{s}/s/{u}.wav"
            embeddings[key] = centre + noise + rng.uniform(0, offset_scale) * common
            speakers[key] = f"{prefix}{s}"
    return embeddings, speakers


def write_all_pairs(path: Path, speakers: dict[str, str]) -> None:
    ids = sorted(speakers)
    lines = [
        f"{int(speakers[a] == speakers[b])} {a} {b}"
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
    ]
    path.write_text("\n".join(lines) + "\n")


def write_trials(path: Path, pairs: list[tuple[str, str]]) -> None:
    """A trial list labelled by the speaker folder of each path."""
    lines = [f"{int(a.split('/')[0] == b.split('/')[0])} {a} {b}" for a, b in pairs]
    path.write_text("\n".join(lines) + "\n")


def test_read_trials_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="trial list not found"):
        read_trials(tmp_path / "x.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("1 a b c\n")
    with pytest.raises(ValueError, match=re.escape(f"{bad}:1: expected")):
        read_trials(bad)


def test_score_trials_cosine_and_missing_embedding():
    emb = {
        "a": np.array([3.0, 0.0]),
        "b": np.array([1.0, 1.0]),
        "c": np.array([-2.0, 0]),
    }
    np.testing.assert_allclose(
        score_trials(emb, ["a", "a", "b"], ["b", "c", "b"]), [2**-0.5, -1.0, 1.0]
    )
    with pytest.raises(KeyError, match="no embedding for 1 trial utterance.*zz"):
        score_trials(emb, ["a"], ["zz"])


def test_speaker_cohort_means_unit_embeddings():
    emb = {
        "x": np.array([2.0, 0.0]),
        "y": np.array([0.0, 5.0]),
        "z": np.array([0, 1.0]),
    }
    cohort = speaker_cohort(emb, {"x": "s1", "y": "s1", "z": "s2"})
    # Each utterance counts equally whatever its norm.
    np.testing.assert_allclose(cohort, [[2**-0.5, 2**-0.5], [0.0, 1.0]], atol=1e-6)


def test_evaluate_trials_outputs(tmp_path):
    rng = np.random.default_rng(0)
    test, speakers = synthetic_set(rng, "t", 8)
    cohort_emb, cohort_spk = synthetic_set(rng, "c", 40)
    trials = tmp_path / "trials.txt"
    write_all_pairs(trials, speakers)
    out = tmp_path / "out"
    cohort = speaker_cohort(cohort_emb, cohort_spk)
    results = evaluate_trials(test, trials, out, cohort=cohort, top_k=10)

    assert sorted(p.name for p in out.iterdir()) == [
        "det.png",
        "hist.png",
        "results.json",
        "scores.txt",
    ]
    for png in ("det.png", "hist.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "results.json").read_text()) == results

    labels, enrol, test_ids = read_trials(trials)
    fields, file_labels, columns = metric_oracles.read_scores(out / "scores.txt")
    assert len(fields) == len(labels) == results["n_trials"] == 780
    assert [f[:3] for f in fields] == [
        [e, t, str(lab)] for e, t, lab in zip(enrol, test_ids, labels)
    ]
    # Column 4: the cosine of the two raw embeddings.
    cosine = columns[:, 0]
    expected = [
        metric_oracles.cosine(test[e], test[t]) for e, t in zip(enrol, test_ids)
    ]
    np.testing.assert_allclose(cosine, expected, atol=1e-6)
    # Metrics: every threshold tried by counting (scores.txt keeps 6 decimals).
    assert results["eer"] == pytest.approx(metric_oracles.eer(cosine, labels), abs=1e-4)
    for p in (0.01, 0.05):
        assert results[f"min_dcf_{p:g}"] == pytest.approx(
            metric_oracles.min_dcf(cosine, labels, p), abs=1e-3
        )

    # Column 5: AS-norm, one trial at a time: each side's 10 closest cohort
    # speakers (cosine to the unit cohort means) give its mean and std.
    def top_stats(key):
        sims = sorted(
            (metric_oracles.cosine(test[key], c) for c in cohort), reverse=True
        )
        return np.mean(sims[:10]), np.std(sims[:10])

    stats = {key: top_stats(key) for key in test}
    expected = [
        0.5 * ((s - stats[e][0]) / stats[e][1] + (s - stats[t][0]) / stats[t][1])
        for s, e, t in zip(expected, enrol, test_ids)
    ]
    normed = columns[:, 1]
    # float32 embeddings and cohort: ~1e-6 relative error, scaled by 1/std.
    np.testing.assert_allclose(normed, expected, rtol=2e-5, atol=1e-5)
    assert results["asnorm"]["eer"] == pytest.approx(
        metric_oracles.eer(normed, labels), abs=1e-4
    )
    assert results["asnorm"]["top_k"] == 10 and results["asnorm"]["cohort_size"] == 40
    print(f"EER cosine {results['eer']:.3f} -> AS-norm {results['asnorm']['eer']:.3f}")
    # Per-utterance offsets hurt cosine; AS-norm takes much of them out.
    assert results["asnorm"]["eer"] < 0.7 * results["eer"]


def test_evaluate_trials_without_plots_and_missing_embedding(tmp_path):
    trials = tmp_path / "t.txt"
    trials.write_text("1 a b\n0 a c\n")
    emb = {"a": np.ones(3), "b": np.ones(3), "c": -np.ones(3)}
    evaluate_trials(emb, trials, tmp_path / "o", plots=False)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "results.json",
        "scores.txt",
    ]
    del emb["c"]
    with pytest.raises(KeyError, match="no embedding for 1 trial utterance"):
        evaluate_trials(emb, trials, tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


def test_trial_utterances_missing_file(tmp_path):
    (tmp_path / "wav" / "s" / "x").mkdir(parents=True)
    (tmp_path / "wav" / "s" / "x" / "1.wav").write_bytes(b"")
    trials = tmp_path / "t.txt"
    trials.write_text("1 s/x/1.wav s/x/2.wav\n")
    with pytest.raises(FileNotFoundError, match=r"names 1 file\(s\) .*s/x/2.wav"):
        trial_utterances(trials, tmp_path)


@pytest.fixture(scope="module")
def realspk_files(request):
    """Six short dev utterances of realspk: two of one speaker first, then
    one each of four others, all with >= 1.5 s of speech (short keeps CPU
    time low; speech keeps them from being refused)."""
    realspk = request.getfixturevalue("realspk")
    rows = [
        line.split("\t")
        for line in (realspk / "utt_meta.tsv").read_text().splitlines()[1:]
    ]
    by_speaker: dict[str, list[str]] = {}
    for _, rel in sorted((float(r[3]), r[0]) for r in rows if r[2] == "dev"):
        if net_speech(realspk / "wav" / rel) >= 1.5:
            by_speaker.setdefault(rel.split("/")[0], []).append(rel)
        pair = [utts for utts in by_speaker.values() if len(utts) >= 2]
        if pair and len(by_speaker) >= 5:
            break
    first = pair[0][:2]
    others = [utts[0] for utts in by_speaker.values() if utts[0] not in first][:4]
    return {rel: realspk / "wav" / rel for rel in first + others}


def test_batched_equals_one_at_a_time(realspk_files):
    modules = tiny_modules()
    batched = embed_utterances(SpeakerEmbedder(*modules), realspk_files, batch_size=6)
    alone = embed_utterances(SpeakerEmbedder(*modules), realspk_files, batch_size=1)
    assert set(batched) == set(realspk_files)
    for key in realspk_files:
        a, b = batched[key], alone[key]
        cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        assert cosine >= 0.9999, key
    keys = sorted(realspk_files)
    assert not np.allclose(batched[keys[0]], batched[keys[1]], atol=1e-3)


def test_embed_errors_and_csv(tmp_path, realspk_files):
    modules = tiny_modules()
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(
        ValueError, match=r"1 utterance\(s\) could not be embedded.*bad.wav"
    ):
        embed_utterances(SpeakerEmbedder(*modules), {"bad": bad})
    rows = ["ID,duration,wav,start,stop,spk_id"]
    for i, (rel, path) in enumerate(list(realspk_files.items())[:3]):
        rows.append(f"u{i},1.0,{path},0,16000,{rel.split('/')[0]}")
    rows.append(f"broken,1.0,{bad},0,16000,zz")
    csv_path = tmp_path / "train.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    embeddings, speakers = embed_csv(
        SpeakerEmbedder(*modules), csv_path, max_per_speaker=1
    )
    assert len(embeddings) == len({s for s in speakers.values()})
    assert str(bad) not in embeddings
    with pytest.raises(FileNotFoundError, match="CSV file not found"):
        embed_csv(SpeakerEmbedder(*modules), tmp_path / "none.csv")


def load_recipe():
    path = REPO / "recipes" / "VoxCeleb" / "ERes2Net" / "speaker_verification.py"
    spec = importlib.util.spec_from_file_location("speaker_verification", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recipe_from_training_checkpoint(tmp_path, realspk, realspk_files, capsys):
    _, norm, model = tiny_modules(seed=3)
    Checkpointer(
        tmp_path / "save", {"embedding_model": model, "normalizer": norm}
    ).save_checkpoint()
    keys = list(realspk_files)
    trials = tmp_path / "trials.txt"
    write_trials(trials, [(keys[0], keys[1]), (keys[0], keys[-1]), (keys[2], keys[3])])
    overrides = [
        f"--data_folder={realspk}",
        f"--verification_file={trials}",
        f"--checkpoint_folder={tmp_path / 'save'}",
        f"--output_folder={tmp_path / 'out'}",
        "--m_channels=8",
        "--num_blocks=[1, 1, 1, 1]",
        "--emb_dim=32",
        "--noprogressbar",
    ]
    recipe = load_recipe()
    assert recipe.main([str(REPO / "hparams" / "verification.yaml"), *overrides]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["n_trials"] == 3 and "asnorm" not in results
    assert "EER" in capsys.readouterr().out

    # The scores are those of the checkpointed weights, not a fresh model.
    embeddings = embed_utterances(
        SpeakerEmbedder(*tiny_modules(seed=3)[:2], model), realspk_files
    )
    _, labels, columns = metric_oracles.read_scores(tmp_path / "out" / "scores.txt")
    expected = metric_oracles.cosine(embeddings[keys[0]], embeddings[keys[1]])
    assert columns[0, 0] == pytest.approx(expected, abs=1e-5)
    assert labels.tolist() == [1, 0, 0]
    assert results["eer"] == pytest.approx(metric_oracles.eer(columns[:, 0], labels))

    # Errors: one line on stderr, exit code 1.
    code = recipe.main(
        [str(REPO / "hparams" / "verification.yaml"), *overrides[:2], "--noprogressbar"]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: set checkpoint_folder")
    assert err.count("\n") == 1


def test_load_checkpoint_restores_weights(tmp_path):
    _, _, saved = tiny_modules(seed=1)
    Checkpointer(tmp_path, {"embedding_model": saved}).save_checkpoint()
    _, norm, fresh = tiny_modules(seed=2)
    load_checkpoint(tmp_path, fresh, norm)  # normaliser absent: partial load
    for a, b in zip(saved.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no CKPT"):
        load_checkpoint(tmp_path / "empty", fresh)
    with pytest.raises(FileNotFoundError, match="checkpoint folder not found"):
        load_checkpoint(tmp_path / "missing", fresh)


def test_yaml_builds_modules_matching_training_keys():
    with open(REPO / "hparams" / "verification.yaml") as f:
        hparams = load_hyperpyyaml(f, {"data_folder": "d", "verification_file": "v"})
    assert isinstance(hparams["embedding_model"], ERes2Net)
    assert isinstance(hparams["mean_var_norm"], InputNormalization)
    assert hparams["mean_var_norm"].norm_type == "sentence"
    assert hparams["top_k"] == 300 and hparams["cohort_csv"] is None


ECAPA_TRAINING_YAML = """
data_folder: !PLACEHOLDER
save_folder: !PLACEHOLDER
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: 40
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: 40
    channels: [16, 16, 16, 16, 48]
    attention_channels: 8
    lin_neurons: 12
"""


def test_recipe_with_training_yaml_any_model(tmp_path, realspk, realspk_files):
    train_yaml = tmp_path / "train.yaml"
    train_yaml.write_text(ECAPA_TRAINING_YAML)
    with open(train_yaml) as f:
        trained = load_hyperpyyaml(f, {"data_folder": "x", "save_folder": "y"})
    Checkpointer(
        tmp_path / "save", {"embedding_model": trained["embedding_model"]}
    ).save_checkpoint()
    keys = list(realspk_files)[:4]
    trials = tmp_path / "trials.txt"
    write_trials(trials, [(keys[0], keys[1]), (keys[2], keys[3])])
    save = tmp_path / "save"
    # An AS-norm cohort CSV: the other realspk files, one speaker each.
    cohort_rows = [
        f"c{i},1.0,{realspk_files[k]},0,1,{k.split('/')[0]}"
        for i, k in enumerate(list(realspk_files)[4:])
    ]
    cohort_csv = tmp_path / "cohort.csv"
    cohort_csv.write_text(
        "ID,duration,wav,start,stop,spk_id\n" + "\n".join(cohort_rows)
    )
    code = load_recipe().main(
        [
            str(REPO / "hparams" / "verification.yaml"),
            f"--data_folder={realspk}",
            f"--verification_file={trials}",
            f"--train_hparams={train_yaml}",
            f"--train_overrides={{save_folder: {save}}}",
            f"--cohort_csv={cohort_csv}",
            "--top_k=1",
            f"--output_folder={tmp_path / 'out'}",
            "--plots=False",
            "--noprogressbar",
        ]
    )
    assert code == 0
    trained["embedding_model"].eval()
    embedder = SpeakerEmbedder(
        trained["compute_features"],
        trained["mean_var_norm"],
        trained["embedding_model"],
    )
    embeddings = embed_utterances(embedder, {k: realspk_files[k] for k in keys})
    fields = (tmp_path / "out" / "scores.txt").read_text().split("\n")[0].split()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(fields) == 5 and results["asnorm"]["cohort_size"] == 2
    score = float(fields[3])
    # The same batch as the recipe's: ECAPA-TDNN's convolutions see the zero
    # padding of shorter utterances, so its embeddings depend on the batch.
    assert score == pytest.approx(
        metric_oracles.cosine(embeddings[keys[0]], embeddings[keys[1]]), abs=1e-5
    )
