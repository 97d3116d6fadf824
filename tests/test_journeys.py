"""Journeys a user walks, each driven by the documented commands in subprocesses.

Each test runs the commands of the README as a user types them
(``eres2net quickstart``, ``python recipes/VoxCeleb/ERes2Net/train_speaker_embeddings.py
hparams/<yaml> --key=value``, ``eres2net export-hub / verify / score /
export-onnx``) with no network (``HF_HUB_OFFLINE=1``) and checks what the user
is after: a model that got better, a folder that loads anywhere and gives the
recipe's embeddings, a decision with a score and an LLR, an ONNX graph that
computes the same numbers, a fine-tuning run that really starts from the
weights it was given. Trained models are shared between tests through
module-scoped fixtures; configurations are tiny and runs are a few steps.

Journeys on the real corpus skip when ``../shared/data/realspk`` is absent;
``cuda`` journeys skip without a GPU (see conftest.py).
"""

from __future__ import annotations

import csv
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
from conftest import randomize_batchnorm  # noqa: E402
from journeys_helpers import (  # noqa: E402
    CONVERT_M4A,
    HPARAMS,
    REPO,
    assert_reproduces,
    assert_same_state,
    batches,
    checkpoint_embeddings,
    checkpoint_state,
    eres2net,
    finite,
    first_step_state,
    fresh_process_embeddings,
    ok,
    parse_verify,
    read_wav,
    recipe,
    run,
    scores_file,
    train_log_losses,
)
from model_builders import resnet_yaml  # noqa: E402
from tiny_recipe import tiny_corpus as make_tiny_corpus  # noqa: E402
from tiny_recipe import tiny_settings  # noqa: E402

from speechbrain_eres2net.dataio.synthetic import make_corpus
from speechbrain_eres2net.training.checkpoints import latest_checkpoint
from speechbrain_eres2net.training.recipe import load_hparams

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """The quickstart's built-in synthetic corpus (its default arguments)."""
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus")


def trial_files(corpus_root: Path, n: int = 3) -> list[Path]:
    """``n`` trial utterances of different speakers and lengths."""
    files = sorted((corpus_root / "wav").glob("*/*/*.wav"))
    trial_speakers = {
        line.split()[1].split("/")[0]
        for line in (corpus_root / "dev_trials.txt").read_text().splitlines()
    }
    chosen, speakers = [], set()
    for path in files:
        speaker = path.relative_to(corpus_root / "wav").parts[0]
        if speaker in trial_speakers and speaker not in speakers:
            chosen.append(path)
            speakers.add(speaker)
    chosen = chosen[:n]
    assert len({soundfile.info(f).frames for f in chosen}) == n
    return chosen


def extremes(scores: Path, root: Path) -> tuple[list[Path], list[Path]]:
    """The best-scored target trial and the worst-scored non-target trial."""
    rows = scores_file(scores)
    target = max((r for r in rows if r[2] == 1), key=lambda r: r[3])
    nontarget = min((r for r in rows if r[2] == 0), key=lambda r: r[3])

    def files(row):
        return [root / "wav" / row[0], root / "wav" / row[1]]

    return files(target), files(nontarget)


def verify(folder: Path, first: Path, second: Path, cwd: Path, *options) -> dict:
    """``eres2net verify --model <folder> a.wav b.wav [options]``, parsed."""
    return parse_verify(
        ok(
            eres2net("verify", "--model", folder, first, second, *options, cwd=cwd)
        ).stdout
    )


# The built-in corpus's voices are buzz through resonators, which Silero VAD
# does not take for speech: its journeys verify with speech detection off,
# as the quickstart scores them (the realspk journeys keep the default).
SYNTHETIC = ("--vad", "off")


# ------------------------------------------- 1. the default quickstart


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> dict:
    """``eres2net quickstart``, the README's first command, in an empty folder."""
    cwd = tmp_path_factory.mktemp("quickstart-cwd")
    done = ok(eres2net("quickstart", cwd=cwd))
    out = cwd / "results" / "quickstart"
    return {
        "cwd": cwd,
        "out": out,
        "stdout": done.stdout,
        "summary": json.loads((out / "summary.json").read_text()),
    }


@pytest.mark.slow
def test_quickstart_learns_and_its_model_folder_reproduces_the_recipe(
    quickstart, tmp_path
):
    out, summary = quickstart["out"], quickstart["summary"]
    # The trained model is clearly better than the untrained one.
    assert summary["eer"] < summary["untrained_eer"] - 0.04, summary
    assert summary["eer"] < 0.8 * summary["untrained_eer"], summary
    assert re.search(
        r"EER +: [\d.]+ % +\(untrained model: [\d.]+ %\)", quickstart["stdout"]
    )
    # ... and exported, with its calibration and a model card.
    folder = out / "model"
    assert summary["model_folder"] == str(folder)
    for name in (
        "hyperparams.yaml",
        "embedding_model.ckpt",
        "calibration.json",
        "README.md",
    ):
        assert (folder / name).is_file(), name
    card = (folder / "README.md").read_text()
    assert "# ERes2Net speaker embeddings (quickstart)" in card
    assert "`calibration.json` maps a cosine score" in card

    # The folder loads in a fresh process, offline, and gives the embeddings
    # of the training checkpoint through the training YAML's modules.
    root = Path(summary["data_folder"])
    files = trial_files(root)
    loaded, name = fresh_process_embeddings(folder, files, tmp_path / "fresh")
    assert name == "ERes2Net"
    reference = checkpoint_embeddings(
        HPARAMS / "quickstart.yaml",
        out,
        {"data_folder": str(root), "verification_file": summary["trials"]},
        files,
    )
    assert_reproduces(loaded, reference)


@pytest.mark.slow
def test_quickstart_model_verifies_two_recordings(quickstart):
    out, summary = quickstart["out"], quickstart["summary"]
    root = Path(summary["data_folder"])
    scores = out / "verification" / "scores.txt"
    target, nontarget = extremes(scores, root)
    same = verify(out / "model", *target, quickstart["cwd"], *SYNTHETIC)
    different = verify(out / "model", *nontarget, quickstart["cwd"], *SYNTHETIC)
    assert same["verdict"] == "same speaker" and same["llr"] > 0
    assert different["verdict"] == "different speakers" and different["llr"] < 0
    # The printed scores are those the recipe scored these trials with
    # (verify runs the fast path: bf16 where the CPU computes it natively).
    expected = {(r[0], r[1]): r[3] for r in scores_file(scores)}
    for pair, result in ((target, same), (nontarget, different)):
        key = tuple(str(p.relative_to(root / "wav")) for p in pair)
        assert abs(result["score"] - expected[key]) < 0.02, (result, expected[key])


@pytest.mark.slow
def test_quickstart_export_failure_fails_the_command(corpus, tmp_path):
    output = tmp_path / "qs"
    (output / "model").mkdir(parents=True)
    (output / "model" / "notes.txt").write_text("my notes, not a model\n")
    done = eres2net(
        "quickstart",
        "--data_folder",
        corpus["root"],
        "--output_folder",
        output,
        "--epochs",
        "2",
        cwd=tmp_path,
    )
    assert done.returncode == 1, (done.stdout + done.stderr)[-3000:]
    errors = [
        line
        for line in done.stderr.splitlines()
        if line.startswith("eres2net quickstart:")
    ]
    assert errors == [
        f"eres2net quickstart: error: {output / 'model'} exists and is not a model "
        "folder; not replacing it"
    ], done.stderr[-3000:]
    assert done.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in done.stderr
    assert (
        "Quickstart done" not in done.stdout and not (output / "summary.json").exists()
    )
    assert (output / "model" / "notes.txt").read_text() == "my notes, not a model\n"


# ----------------------------- 2. any SpeechBrain embedding lobe


def onnx_parity(
    onnx_file: Path, folder: Path, files: list[Path], waveforms: bool
) -> None:
    """ONNX Runtime on the graph vs the folder's PyTorch modules, file by file.

    Features graph: same float32 network, different kernels: within 1e-4
    of the largest value. Waveform graph: the front end is recomputed
    with a float64 DFT instead of torch.stft, which moves the log-mel
    features by up to ~1e-3; the embeddings stay within 1e-3 of the scale.
    """
    import onnxruntime as ort

    from speechbrain_eres2net.inference.folder import load_model_folder

    mods = load_model_folder(folder).mods.eval()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    assert name == ("wavs" if waveforms else "feats")
    relative = 1e-3 if waveforms else 1e-4
    for path in files:
        wav = read_wav(path)[None]
        ones = torch.ones(1)
        with torch.no_grad():
            feats = mods.mean_var_norm(mods.compute_features(wav), ones)
            reference = mods.embedding_model(feats, ones).reshape(1, -1).numpy()
        inputs = wav if waveforms else feats
        got = session.run(None, {name: inputs.numpy()})[0]
        assert got.shape == reference.shape
        scale = float(np.abs(reference).max())
        assert float(np.abs(got - reference).max()) <= relative * scale, path
    # A batch of another size than the graph was traced with (2): all files
    # cut to the shortest.
    shortest = min(len(read_wav(f)) for f in files)
    wavs = torch.stack([read_wav(f)[:shortest] for f in files])
    ones = torch.ones(len(files))
    with torch.no_grad():
        feats = mods.mean_var_norm(mods.compute_features(wavs), ones)
        reference = mods.embedding_model(feats, ones).reshape(len(files), -1).numpy()
    got = session.run(None, {name: (wavs if waveforms else feats).numpy()})[0]
    scale = float(np.abs(reference).max())
    assert float(np.abs(got - reference).max()) <= relative * scale, "batch"


def card_names(card: str, model_class: str) -> None:
    """The model card describes ``model_class``, and never as ERes2Net."""
    assert f"# {model_class} speaker embeddings" in card
    assert f"- Embedding model: `{model_class}`" in card
    assert f"- {model_class.lower()}\n" in card  # Hub tag
    assert "ERes2Net" not in card and "Res2Net" not in card


@pytest.fixture(scope="module")
def ecapa_run(corpus, tmp_path_factory) -> Path:
    """``eres2net quickstart --hparams hparams/quickstart_ecapa.yaml --no_export``."""
    out = tmp_path_factory.mktemp("ecapa") / "run"
    done = ok(
        eres2net(
            "quickstart",
            "--hparams",
            "hparams/quickstart_ecapa.yaml",
            "--data_folder",
            corpus["root"],
            "--output_folder",
            out,
            "--epochs",
            "2",
            "--no_export",
            cwd=REPO,
        )
    )
    assert "Model folder" not in done.stdout and not (out / "model").exists()
    return out


@pytest.mark.slow
def test_ecapa_checkpoint_exports_loads_verifies_scores_and_runs_in_onnx(
    ecapa_run, corpus, tmp_path
):
    root = Path(corpus["root"])
    folder = tmp_path / "ecapa_model"
    done = ok(
        eres2net(
            "export-hub",
            "--hparams",
            "hparams/quickstart_ecapa.yaml",
            "--checkpoint",
            ecapa_run / "save",
            "--out",
            folder,
            "--trials",
            corpus["trials"],
            "--data-root",
            root,
            cwd=REPO,
        )
    )
    assert f"model folder written to {folder}" in done.stderr
    card_names((folder / "README.md").read_text(), "ECAPA_TDNN")
    assert "64-dimensional embeddings" in (folder / "README.md").read_text()
    assert (folder / "calibration.json").is_file()

    files = trial_files(root)
    loaded, name = fresh_process_embeddings(folder, files, tmp_path / "fresh")
    assert name == "ECAPA_TDNN"
    reference = checkpoint_embeddings(
        HPARAMS / "quickstart_ecapa.yaml",
        ecapa_run,
        {"data_folder": str(root), "verification_file": corpus["trials"]},
        files,
    )
    assert_reproduces(loaded, reference)

    verify(folder, files[0], files[1], tmp_path, *SYNTHETIC)

    # `score` measures what the quickstart measured after training.
    scored = ok(
        eres2net(
            "score",
            "--model",
            folder,
            "--trials",
            corpus["trials"],
            "--data-root",
            root,
            "--no-progress",
            cwd=tmp_path,
        )
    )
    line = scored.stdout.strip().splitlines()[-1]
    match = re.match(r"EER ([\d.]+) % .* Cllr [\d.]+ .* on (\d+) trials$", line)
    assert match, line
    recipe_results = json.loads(
        (ecapa_run / "verification" / "results.json").read_text()
    )
    assert int(match[2]) == recipe_results["n_trials"]
    assert abs(float(match[1]) / 100 - recipe_results["eer"]) <= 0.02, line

    for waveforms in (False, True):
        graph = tmp_path / f"ecapa{'_wav' if waveforms else ''}.onnx"
        args = ["export-onnx", "--model", folder, "--out", graph]
        ok(eres2net(*args, *(["--with-features"] if waveforms else []), cwd=tmp_path))
        onnx_parity(graph, folder, files, waveforms)


@pytest.mark.slow
def test_resnet_lobe_quickstart_exports_loads_and_runs_in_onnx(corpus, tmp_path):
    root = Path(corpus["root"])
    yaml_file = resnet_yaml(tmp_path)
    out = tmp_path / "resnet"
    ok(
        eres2net(
            "quickstart",
            "--hparams",
            yaml_file,
            "--data_folder",
            root,
            "--output_folder",
            out,
            "--epochs",
            "2",
            cwd=tmp_path,
        )
    )
    folder = out / "model"
    card_names((folder / "README.md").read_text(), "ResNet")
    files = trial_files(root)
    loaded, name = fresh_process_embeddings(folder, files, tmp_path / "fresh")
    assert name == "ResNet"
    reference = checkpoint_embeddings(
        yaml_file,
        out,
        {"data_folder": str(root), "verification_file": corpus["trials"]},
        files,
    )
    assert_reproduces(loaded, reference)
    verify(folder, files[0], files[1], tmp_path, *SYNTHETIC)
    graph = tmp_path / "resnet.onnx"
    ok(eres2net("export-onnx", "--model", folder, "--out", graph, cwd=tmp_path))
    onnx_parity(graph, folder, files, waveforms=False)


# ------------------------------- 3. official weights -> own speakers


def official_fbank(wav: torch.Tensor) -> torch.Tensor:
    """speakerlab.process.processor.FBank(80, 16000, mean_nor=True)."""
    from torchaudio.compliance import kaldi

    feat = kaldi.fbank(
        wav.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0
    )
    return feat - feat.mean(0, keepdim=True)


# finetune_own_speakers.yaml has no num_blocks: the official default [3, 4, 6, 3].
OWN = {"m_channels": 8, "emb_dim": 32}


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """A tiny official 3D-Speaker ERes2Net (the official code), saved as released."""
    from oracle import official

    v1, _, _ = official()
    torch.manual_seed(11)
    model = v1.ERes2Net(m_channels=OWN["m_channels"], embedding_size=OWN["emb_dim"])
    randomize_batchnorm(model, seed=7)
    model.eval()
    path = tmp_path_factory.mktemp("official") / "pretrained_eres2net.ckpt"
    torch.save(model.state_dict(), path)
    return model, path


def debug_steps(batches_per_stage: int) -> dict:
    """SpeechBrain's own options for a run of a few batches, checkpoints kept."""
    return {
        "debug": True,
        "debug_batches": batches_per_stage,
        "debug_epochs": 1,
        "debug_persistently": True,
    }


@pytest.fixture(scope="module")
def own_speakers(realspk, official_checkpoint, tmp_path_factory) -> dict:
    """finetune_own_speakers.yaml from official weights, 3 steps on realspk."""
    base = tmp_path_factory.mktemp("own")
    record, out = base / "record", base / "run"
    done = recipe(
        "finetune_own_speakers.yaml",
        cwd=REPO,
        record=record,
        pretrained_3dspeaker=official_checkpoint[1],
        front_end="kaldi",
        data_folder=realspk,
        verification_file=realspk / "dev_trials.txt",
        output_folder=out,
        batch_size=16,
        sentence_len=2.0,
        num_workers=0,
        noprogressbar=True,
        **OWN,
        **debug_steps(3),
    )
    ok(done)
    return {"out": out, "record": record, "log": done.stdout + done.stderr}


def real_files(realspk: Path, n: int = 2) -> list[Path]:
    """``n`` short dev utterances of different speakers."""
    lines = (realspk / "dev_trials.txt").read_text().splitlines()
    nontarget = next(line for line in lines if line.startswith("0 "))
    return [realspk / "wav" / p for p in nontarget.split()[1:]][:n]


def trial_subset(realspk: Path, target: Path, per_label: int = 10) -> Path:
    """The first dev trials of each label (enough to fit a calibration)
    whose files hold enough speech to be kept."""
    from conftest import has_speech

    wav = realspk / "wav"
    lines = [
        line
        for line in (realspk / "dev_trials.txt").read_text().splitlines()[:200]
        if has_speech(line, wav)
    ]
    chosen = [line for line in lines if line.startswith("1 ")][:per_label]
    chosen += [line for line in lines if line.startswith("0 ")][:per_label]
    target.write_text("\n".join(chosen) + "\n")
    return target


@pytest.mark.slow
def test_official_weights_finetune_on_own_speakers_export_and_verify(
    own_speakers, official_checkpoint, realspk, tmp_path
):
    official, _ = official_checkpoint
    out, record = own_speakers["out"], own_speakers["record"]
    overrides = {"data_folder": str(realspk), "front_end": "kaldi", **OWN}

    # Training started from the official model: before the first step, the
    # recipe's front end + embedding model give the official embeddings.
    hp = load_hparams(
        str(HPARAMS / "finetune_own_speakers.yaml"),
        {**overrides, "output_folder": str(tmp_path / "inspect")},
    )
    start = first_step_state(record)["embedding_model"]
    hp["embedding_model"].load_state_dict(start)
    hp["embedding_model"].eval()
    files = real_files(realspk)
    with torch.no_grad():
        for path in files:
            wav = read_wav(path)
            feats = hp["mean_var_norm"](
                hp["compute_features"](wav[None]), torch.ones(1)
            )
            ours = hp["embedding_model"](feats)[0].reshape(-1)
            theirs = official(official_fbank(wav).unsqueeze(0))[0]
            assert (ours - theirs).abs().max() <= 1e-4, path

    # It trained: 3 steps with finite losses, 300 classes (100 speakers x 3
    # speeds), and the checkpoint moved away from the official weights.
    seen = batches(record)
    assert len(seen) == 3 and finite(b["loss"] for b in seen)
    assert all(b["padded"] <= 32000 for b in seen)  # 2 s crops
    assert checkpoint_state(out / "save", "classifier")["weight"].shape[0] == 300
    trained = checkpoint_state(out / "save", "embedding_model")
    assert any(
        not torch.equal(trained[k], start[k]) for k in start if "running" not in k
    )

    # Export -> a folder that loads offline and reproduces the checkpoint.
    folder = tmp_path / "own_model"
    ok(
        eres2net(
            "export-hub",
            "--hparams",
            "hparams/finetune_own_speakers.yaml",
            "--checkpoint",
            out / "save",
            "--out",
            folder,
            "--override",
            "front_end=kaldi",
            "--override",
            f"m_channels={OWN['m_channels']}",
            "--override",
            f"emb_dim={OWN['emb_dim']}",
            "--trials",
            trial_subset(realspk, tmp_path / "trials.txt"),
            "--data-root",
            realspk,
            cwd=REPO,
        )
    )
    assert (
        "make_front_end\n  kind: kaldi\n" in (folder / "hyperparams.yaml").read_text()
    )
    loaded, name = fresh_process_embeddings(folder, files, tmp_path / "fresh")
    assert name == "ERes2Net"
    reference = checkpoint_embeddings(
        HPARAMS / "finetune_own_speakers.yaml", out, overrides, files
    )
    assert_reproduces(loaded, reference)
    assert (folder / "calibration.json").is_file()
    verify(folder, *files, cwd=tmp_path)


# -------------------------------------------------- 4. large-margin stage


def csv_lengths(csv_file: Path) -> dict[str, int]:
    """Samples of each row of a recipe CSV."""
    with open(csv_file, newline="") as handle:
        return {
            r["ID"]: int(r["stop"]) - int(r["start"]) for r in csv.DictReader(handle)
        }


def kept_lengths(csv_file: Path) -> dict[str, int]:
    """Samples the default speech handling keeps of each row of a recipe CSV,
    from the speech journaled next to it (rows with no speech: all of it)."""
    from speechbrain_eres2net.dataio.speech_cache import journal_path
    from speechbrain_eres2net.dataio.speech_handling import SpeechHandling

    lengths = csv_lengths(csv_file)
    handling = SpeechHandling.resolve()
    lines = journal_path(csv_file).read_text().splitlines()[1:]
    for entry in map(json.loads, lines):
        kept = handling.kept_segments(entry["segments"], lengths[entry["id"]], 16000)
        if kept:
            lengths[entry["id"]] = sum(end - start for start, end in kept)
    return lengths


@pytest.mark.slow
def test_large_margin_stage_restores_model_and_classifier_and_trains(
    own_speakers, realspk, tmp_path
):
    stage1 = latest_checkpoint(own_speakers["out"] / "save")
    classes = checkpoint_state(stage1, "classifier")["weight"].shape[0]
    record, out = tmp_path / "record", tmp_path / "lm"
    ok(
        recipe(
            "finetune_large_margin.yaml",
            cwd=REPO,
            record=record,
            data_folder=realspk,
            verification_file=realspk / "dev_trials.txt",
            pretrained_path=stage1,
            output_folder=out,
            out_n_neurons=classes,
            batch_size=8,
            num_workers=0,
            noprogressbar=True,
            **OWN,
            **debug_steps(2),
        )
    )
    # Before the first step: the stage-1 embedding model AND classifier.
    start = first_step_state(record)
    for name in ("embedding_model", "classifier"):
        assert_same_state(checkpoint_state(stage1, name), start[name], name)

    # 6 s crops: every item is what the default speech handling keeps of its
    # segment (training crops are trimmed as inference trims), whole or 6 s.
    lengths = kept_lengths(out / "save" / "train.csv")
    seen = batches(record)
    assert len(seen) == 2 and finite(b["loss"] for b in seen)
    long_items = 0
    for batch in seen:
        assert batch["padded"] <= 96000
        for item, got in zip(batch["ids"], batch["lengths"]):
            assert got == min(96000, lengths[item]), item
            long_items += lengths[item] > 96000
    assert long_items  # seeded shuffle: some segment is longer than a crop

    # Margin 0.5 from the start, finite loss, a checkpoint to continue from.
    log = (out / "train_log.txt").read_text()
    assert "margin: 5.00e-01" in log, log
    assert finite(train_log_losses(out / "train_log.txt"))
    trained = checkpoint_state(out / "save", "classifier")
    assert trained["weight"].shape[0] == classes


# ------------------------------------------------- 5. mixed precision


def tiny_options(corpus: dict, output: Path, **extra) -> dict:
    """A seconds-long recipe run: tiny model, 16 utterances, 2 epochs of 8 steps."""
    return tiny_settings(corpus, output, noprogressbar=True, **extra)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> dict:
    """6 speakers, 4 short utterances each; 2 speakers held out for trials."""
    return make_tiny_corpus(tmp_path_factory.mktemp("tiny") / "corpus")


def final_weights(output: Path) -> dict[str, torch.Tensor]:
    ckpts = sorted((output / "save").glob("CKPT+*"))
    assert len(ckpts) == 1, ckpts
    state = {}
    for name in ("embedding_model", "classifier"):
        loaded = torch.load(ckpts[0] / f"{name}.ckpt", weights_only=True)
        state.update({f"{name}.{k}": v for k, v in loaded.items()})
    return state


def mixed_precision_journey(tiny_corpus: dict, tmp_path: Path, **run_opts) -> None:
    """Straight run, a run killed mid-epoch, and its restart: all under autocast."""
    dtype = {"bf16": "torch.bfloat16", "fp16": "torch.float16"}[run_opts["precision"]]
    straight = tmp_path / "straight"
    ok(
        recipe(
            "quickstart.yaml",
            REPO,
            record=tmp_path / "rec_straight",
            **tiny_options(tiny_corpus, straight, **run_opts),
        )
    )
    seen = batches(tmp_path / "rec_straight")
    assert len(seen) == 16 and finite(b["loss"] for b in seen)
    assert {b["dtype"] for b in seen} == {dtype}  # the classifier ran in autocast
    assert finite(train_log_losses(straight / "train_log.txt"))
    weights = final_weights(straight)
    assert {str(v.dtype) for v in weights.values() if v.is_floating_point()} == {
        "torch.float32"
    }

    resumed = tmp_path / "resumed"
    options = tiny_options(tiny_corpus, resumed, **run_opts)
    crashed = recipe(
        "quickstart.yaml", REPO, record=tmp_path / "rec_resumed", crash_at=5, **options
    )
    assert crashed.returncode == 17, crashed.stderr[-3000:]
    ckpts = sorted((resumed / "save").glob("CKPT+*"))
    assert len(ckpts) == 1 and "step: 4" in (ckpts[0] / "brain.ckpt").read_text()
    restarted = ok(recipe("quickstart.yaml", REPO, **options))
    assert (
        f"Loading a checkpoint from {ckpts[0]}" in restarted.stdout + restarted.stderr
    )
    log = (resumed / "train_log.txt").read_text()
    assert log.count("epoch: 1,") == 1 and log.count("epoch: 2,") == 1
    assert finite(train_log_losses(resumed / "train_log.txt"))
    got = final_weights(resumed)
    different = [
        k for k in weights if not torch.allclose(weights[k], got[k], atol=1e-6)
    ]
    assert not different, f"resumed run differs in {different[:5]}"


@pytest.mark.slow
def test_bf16_training_is_finite_and_resumes(tiny_corpus, tmp_path):
    mixed_precision_journey(tiny_corpus, tmp_path, precision="bf16", device="cpu")


@pytest.mark.slow
@pytest.mark.cuda
def test_fp16_training_on_cuda_is_finite_and_resumes(tiny_corpus, tmp_path):
    mixed_precision_journey(tiny_corpus, tmp_path, precision="fp16", device="cuda:0")


@pytest.mark.slow
@pytest.mark.cuda
def test_quickstart_and_verify_on_cuda(tmp_path):
    done = ok(eres2net("quickstart", "--device", "cuda", cwd=tmp_path))
    out = tmp_path / "results" / "quickstart"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eer"] < summary["untrained_eer"] - 0.04, done.stdout[-2000:]
    root = Path(summary["data_folder"])
    target, nontarget = extremes(out / "verification" / "scores.txt", root)
    same = parse_verify(
        ok(
            eres2net(
                "verify",
                "--model",
                out / "model",
                *target,
                *SYNTHETIC,
                "--device",
                "cuda",
                cwd=tmp_path,
            )
        ).stdout
    )
    assert same["verdict"] == "same speaker"


# --------------------------------------------------------- 7. m4a


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_of_a_real_recording_converts_back_to_the_same_speech(realspk, tmp_path):
    original = real_files(realspk, 1)[0]
    wav, rate = soundfile.read(original, dtype="float32")
    assert rate == 16000
    source = tmp_path / "aac" / "id00001" / "vid1"
    source.mkdir(parents=True)
    # VoxCeleb2's format: AAC in an m4a container.
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", original, "-c:a", "aac",
         "-b:a", "128k", source / "00001.m4a"],
        check=True,
    )  # fmt: skip
    target = tmp_path / "wav"
    args = [
        sys.executable,
        CONVERT_M4A,
        "--source",
        tmp_path / "aac",
        "--target",
        target,
    ]
    done = ok(run(args, tmp_path))
    assert "converted 1, skipped 0 (done before), failed 0" in done.stdout
    converted, converted_rate = soundfile.read(
        target / "id00001" / "vid1" / "00001.wav", dtype="float32"
    )
    info = soundfile.info(target / "id00001" / "vid1" / "00001.wav")
    assert (converted_rate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    # Aligned at the start (ffmpeg drops the AAC priming samples); at most
    # one 1024-sample AAC frame of padding at the end.
    assert 0 <= len(converted) - len(wav) < 1024, (len(converted), len(wav))
    # The same speech, sample for sample (measured: 40 dB SNR at 128 kbps).
    n = min(len(wav), len(converted))
    a, b = wav[:n].astype(np.float64), converted[:n].astype(np.float64)
    snr = 10 * np.log10(np.sum(a**2) / np.sum((a - b) ** 2))
    assert snr > 30, snr
    again = ok(run(args, tmp_path))
    assert "converted 0, skipped 1 (done before), failed 0" in again.stdout
