"""The ``eres2net`` command line on real recordings and on every kind of bad input."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).parent))
import metric_oracles  # noqa: E402
from model_builders import (  # noqa: E402
    QUICKSTART_YAML,
    imported_folder,
    real_wavs,
    recipe_run,
    trial_subset,
)

import speechbrain_eres2net.dataio.audio as audio_module
from speechbrain_eres2net.cli import main  # noqa: E402
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder


def read_kaldi_scp(scp: Path) -> dict[str, np.ndarray]:
    """Reads binary float vectors through the scp byte offsets (as Kaldi does)."""
    vectors = {}
    for line in scp.read_text().splitlines():
        key, location = line.split(" ", 1)
        ark, offset = location.rsplit(":", 1)
        with open(ark, "rb") as f:
            f.seek(int(offset))
            assert f.read(6) == b"\0BFV \x04"
            (dim,) = struct.unpack("<i", f.read(4))
            vectors[key] = np.frombuffer(f.read(4 * dim), dtype="<f4")
    return vectors


@pytest.fixture
def bad_files(tmp_path) -> dict[str, tuple[Path, str]]:
    """name -> (file, expected reason fragment) for every kind of bad input."""
    good = real_wavs(1)[0]
    wav, rate = soundfile.read(good, dtype="float32")
    files = {}
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    files["empty"] = (empty, "empty")
    text = tmp_path / "notes.wav"
    text.write_text("these are meeting notes, not audio\n" * 20)
    files["text"] = (text, "not a readable audio file")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["truncated"] = (truncated, "truncated")
    short = tmp_path / "short.wav"
    soundfile.write(short, wav[: int(0.05 * rate)], rate)
    files["short"] = (short, "of net speech")
    files["missing"] = (tmp_path / "missing.wav", "not found")
    return files


def test_embed_folders_lists_and_files_npz_and_kaldi(tmp_path, run_cli):
    folder = imported_folder()
    wavs = real_wavs(4)
    tree = tmp_path / "audio"
    (tree / "deep" / "er").mkdir(parents=True)
    shutil.copy(wavs[0], tree / "a.wav")
    shutil.copy(wavs[1], tree / "deep" / "er" / "b.wav")
    listing = tmp_path / "list.txt"
    listing.write_text(f"utt3 {wavs[2]}\n\n# a comment\n")
    inputs = [tree, listing, wavs[3]]
    out = tmp_path / "emb.npz"
    code, _, err = run_cli(
        [
            "embed",
            "--model",
            folder,
            *inputs,
            "--out",
            out,
            "--batch-size",
            2,
            "--device",
            "cpu",
        ],
    )
    assert code == 0, err
    expected_keys = [
        str(tree / "a.wav"),
        str(tree / "deep/er/b.wav"),
        str(wavs[2]),
        str(wavs[3]),
    ]
    stored = np.load(out)
    assert sorted(stored.files) == sorted(expected_keys)
    eager = SpeakerEmbedder.from_folder(folder, fast=False)
    for key in expected_keys:
        ref = eager.embed_file(key)
        cos = torch.cosine_similarity(torch.from_numpy(stored[key]), ref, dim=0)
        assert cos >= 0.9999, key  # fast path (bf16 where native) vs eager

    code, _, err = run_cli(
        [
            "embed",
            "--model",
            folder,
            *inputs,
            "--out",
            tmp_path / "emb.ark",
            "--no-fast",
            "--no-progress",
        ],
    )
    assert code == 0, err
    kaldi = read_kaldi_scp(tmp_path / "emb.scp")
    assert list(kaldi) == expected_keys  # input order, not length order
    for key in expected_keys:
        np.testing.assert_allclose(kaldi[key], eager.embed_file(key).numpy(), atol=1e-5)


def test_embed_keeps_good_files_and_reports_bad_ones(tmp_path, run_cli, bad_files):
    folder = imported_folder()
    good = real_wavs(2)
    inputs = [good[0], *(f for f, _ in bad_files.values()), good[1]]
    out = tmp_path / "emb.npz"
    code, _, err = run_cli(["embed", "--model", folder, *inputs, "--out", out])
    assert code == 1
    assert "Traceback" not in err and "5 of 7 file(s) could not be embedded" in err
    assert sorted(np.load(out).files) == sorted(str(g) for g in good)
    report = dict(
        line.split("\t") for line in Path(f"{out}.errors.txt").read_text().splitlines()
    )
    assert set(report) == {str(f) for f, _ in bad_files.values()}
    for path, reason in bad_files.values():
        assert reason in report[str(path)], (path, report[str(path)])
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "short", "missing"])
def test_verify_bad_input_is_one_line(kind, run_cli, bad_files):
    path, reason = bad_files[kind]
    good = real_wavs(1)[0]
    code, out, err = run_cli(
        ["verify", "--model", imported_folder(), good, path, "--threshold", "0.5"],
    )
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and reason in lines[0]


def test_bad_input_in_a_fresh_process_has_no_traceback(bad_files):
    path, _ = bad_files["text"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechbrain_eres2net.cli",
            "verify",
            "--model",
            str(imported_folder()),
            str(path),
            str(path),
            "--threshold",
            "0.5",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("eres2net verify: error:")


def test_other_rates_and_channels_are_converted_and_said_once(
    tmp_path, run_cli, monkeypatch
):
    monkeypatch.setattr(audio_module, "_announced", set())
    sources = real_wavs(2)
    files = []
    for i, src in enumerate(sources):
        wav, _ = soundfile.read(src, dtype="float32")
        import torchaudio

        low = torchaudio.functional.resample(torch.from_numpy(wav), 16000, 8000).numpy()
        stereo = np.stack([low, 0.5 * low], axis=1)
        files.append(tmp_path / f"tel{i}.wav")
        soundfile.write(files[-1], stereo, 8000)
    code, _, err = run_cli(
        ["embed", "--model", imported_folder(), *files, "--out", tmp_path / "e.npz"],
    )
    assert code == 0, err
    assert err.count("resampled to 16000 Hz") == 1
    assert err.count("averaged to mono") == 1
    assert len(np.load(tmp_path / "e.npz").files) == 2


def test_verify_uses_stored_or_given_threshold(tmp_path, run_cli):
    same = real_wavs(1)[0]
    folder = tmp_path / "with-threshold"
    shutil.copytree(imported_folder(), folder)
    yaml = folder / "hyperparams.yaml"
    yaml.write_text(
        yaml.read_text().replace(
            "verification_threshold:\n", "verification_threshold: 0.5\n"
        )
    )
    code, out, _ = run_cli(["verify", "--model", folder, same, same])
    assert code == 0
    assert out.strip() == "score 1.0000 > 0.5000 (cosine threshold) -> same speaker"
    code, out, _ = run_cli(
        ["verify", "--model", folder, same, same, "--threshold", "1.5"]
    )
    assert code == 0 and out.strip().endswith("-> different speakers")
    code, out, err = run_cli(["verify", "--model", imported_folder(), same, same])
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "neither a calibration nor a verification threshold" in err
    assert "cosine score 1.0000" in err and "pass --threshold" in err


def test_score_prints_eer_and_writes_results(tmp_path, run_cli, realspk):
    trials = trial_subset(tmp_path / "trials.txt")
    code, out, err = run_cli(
        [
            "score",
            "--model",
            imported_folder(),
            "--trials",
            trials,
            "--data-root",
            realspk,
            "--out",
            tmp_path / "results",
            "--no-fast",
        ],
    )
    assert code == 0, err
    # The printed metrics, recomputed from the written scores by brute force.
    fields, labels, columns = metric_oracles.read_scores(
        tmp_path / "results" / "scores.txt"
    )
    listed = [line.split() for line in trials.read_text().splitlines()]
    assert [f[:3] for f in fields] == [[a, b, lab] for lab, a, b in listed]
    scores = columns[:, 0]
    printed = re.search(
        r"EER ([\d.]+) % .* minDCF\(0.01\) ([\d.]+) minDCF\(0.05\) ([\d.]+) .* "
        r"on 10 trials$",
        out.strip(),
    )
    assert printed, out
    eer, dcf1, dcf5 = map(float, printed.groups())
    assert eer == pytest.approx(100 * metric_oracles.eer(scores, labels), abs=0.005)
    assert dcf1 == pytest.approx(metric_oracles.min_dcf(scores, labels, 0.01), abs=5e-5)
    assert dcf5 == pytest.approx(metric_oracles.min_dcf(scores, labels, 0.05), abs=5e-5)
    # The scores are cosines of the model's embeddings (a target and a
    # non-target trial checked, embedded alone).
    eager = SpeakerEmbedder.from_folder(imported_folder(), fast=False)
    for i in (0, len(fields) - 1):
        a, b = (eager.embed_file(realspk / "wav" / f) for f in fields[i][:2])
        assert scores[i] == pytest.approx(metric_oracles.cosine(a, b), abs=1e-5)
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["eer"] == pytest.approx(metric_oracles.eer(scores, labels))


def test_export_hub_writes_pushes_and_names_a_missing_checkpoint(
    tmp_path, run_cli, monkeypatch
):
    out_dir, hp = recipe_run()
    pushed = []
    import speechbrain_eres2net.export.hub as hub

    monkeypatch.setattr(
        hub,
        "push_to_hub",
        lambda folder, repo, **kw: pushed.append((Path(folder), repo, kw)),
    )
    code, _, err = run_cli(
        [
            "export-hub",
            "--hparams",
            QUICKSTART_YAML,
            "--checkpoint",
            hp["save_folder"],
            "--out",
            tmp_path / "model",
            "--override",
            "data_folder=/nowhere",
            "--push-to-hub",
            "me/tiny",
            "--private",
        ],
    )
    assert code == 0, err
    assert pushed == [(tmp_path / "model", "me/tiny", {"private": True})]
    assert (tmp_path / "model" / "hyperparams.yaml").is_file()
    code, _, err = run_cli(
        [
            "export-hub",
            "--hparams",
            QUICKSTART_YAML,
            "--checkpoint",
            tmp_path / "none",
            "--out",
            tmp_path / "m2",
        ],
    )
    assert code == 1 and "checkpoint folder not found" in err and err.count("\n") == 1


def test_quickstart_passes_its_arguments_through(monkeypatch):
    seen = []
    fake = types.ModuleType("speechbrain_eres2net.cli.quickstart")
    fake.main = lambda argv=None: seen.append(argv) or 3
    monkeypatch.setitem(sys.modules, "speechbrain_eres2net.cli.quickstart", fake)
    assert main(["quickstart", "--epochs", "2", "--help"]) == 3
    assert seen == [["--epochs", "2", "--help"]]


def test_quickstart_help_prints_usage_in_a_fresh_process():
    proc = subprocess.run(
        [sys.executable, "-m", "speechbrain_eres2net.cli", "quickstart", "--help"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "Traceback" not in proc.stderr


def test_package_warnings_reach_the_user_as_one_line(capsys, monkeypatch):
    import importlib
    import warnings

    from speechbrain_eres2net.inference import fastpath

    # The module, not the ``main`` function the package exports.
    cli_main = importlib.import_module("speechbrain_eres2net.cli.main")

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    cli_main.show_notices()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn_explicit(
            "int8 needs onnxruntime", UserWarning, fastpath.__file__, 1
        )
        warnings.warn_explicit("other library", UserWarning, warnings.__file__, 1)
    err = capsys.readouterr().err
    assert "eres2net: int8 needs onnxruntime\n" in err
    assert "fastpath.py" not in err
    # Other libraries' warnings keep Python's form (pytest records them here).
    assert "eres2net: other library" not in err
