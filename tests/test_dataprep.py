"""Data preparation: CSV contents, exclusions, idempotence, atomicity, errors."""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import stat
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import speechbrain_eres2net.dataio.voxceleb_prepare as voxceleb_prepare
from speechbrain_eres2net.dataio.m4a import convert_m4a_tree
from speechbrain_eres2net.dataio.trials import read_trials, read_trials_indexed
from speechbrain_eres2net.dataio.voxceleb_prepare import (
    CSV_COLUMNS,
    MANIFEST_NAME,
    UNREADABLE_REPORT,
    prepare_voxceleb,
    read_headers,
    scan_audio,
)

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "VoxCeleb" / "ERes2Net"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_tree(root: Path, speakers: dict[str, int], sessions: int = 2) -> dict:
    """Tiny wavs: speaker -> utterances per session; returns path -> samples."""
    lengths = {}
    rng = np.random.default_rng(len(speakers))
    for spk, per_session in speakers.items():
        for s in range(sessions):
            folder = root / spk / f"sess{s}"
            folder.mkdir(parents=True, exist_ok=True)
            for u in range(per_session):
                n = int(rng.integers(400, 1600))
                sf.write(folder / f"{u:03d}.wav", rng.normal(0, 0.1, n), 16000)
                lengths[f"{spk}/sess{s}/{u:03d}.wav"] = n
    return lengths


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        return list(reader)


@pytest.fixture
def corpus(tmp_path):
    """Two roots: ``a`` in the <root>/wav layout, ``b`` given as its wav folder."""
    lengths_a = write_tree(tmp_path / "a" / "wav", {"s1": 5, "s2": 5, "s3": 3})
    lengths_b = write_tree(tmp_path / "b_wav", {"s4": 5, "s5": 1}, sessions=1)
    trials = tmp_path / "trials.txt"
    trials.write_text(
        "1 s3/sess0/000.wav s3/sess1/001.wav\n0 s3/sess0/000.wav ./s5/sess0/000.wav\n"
    )
    return {
        "roots": [tmp_path / "a", tmp_path / "b_wav"],
        "lengths": {**lengths_a, **lengths_b},
        "trials": trials,
        "save": tmp_path / "save",
    }


def test_csv_contents_and_split(corpus):
    out = prepare_voxceleb(corpus["roots"], corpus["save"], split_ratio=(80, 20))
    assert set(out) == {"train", "dev"}
    train, dev = read_csv(out["train"]), read_csv(out["dev"])
    rows = train + dev
    assert len(rows) == len(corpus["lengths"]) == 32
    assert len({r["ID"] for r in rows}) == len(rows)
    for r in rows:
        path = Path(r["wav"])
        assert path.is_absolute() and path.is_file()
        spk, sess, utt = r["ID"].split("--")
        rel = f"{spk}/{sess}/{utt}.wav"
        assert path.as_posix().endswith(rel)
        assert r["spk_id"] == spk
        assert (int(r["start"]), int(r["stop"])) == (0, corpus["lengths"][rel])
        assert float(r["duration"]) == pytest.approx(int(r["stop"]) / 16000, abs=1e-6)
    # Split by utterance inside each speaker: 20 % of 10 -> 2 dev utterances,
    # every speaker keeps training data (s5 has a single utterance).
    per_speaker = {s: sum(r["spk_id"] == s for r in dev) for s in ("s1", "s4", "s5")}
    assert per_speaker == {"s1": 2, "s4": 1, "s5": 0}
    assert {r["spk_id"] for r in train} == {"s1", "s2", "s3", "s4", "s5"}


def test_split_is_deterministic_and_seeded(corpus, tmp_path):
    def dev_ids(save, seed):
        out = prepare_voxceleb(corpus["roots"], save, seed=seed)
        return [r["ID"] for r in read_csv(out["dev"])]

    assert dev_ids(tmp_path / "x", 1) == dev_ids(tmp_path / "y", 1)
    assert dev_ids(tmp_path / "x", 1) != dev_ids(tmp_path / "z", 2)


def test_trial_speakers_excluded_and_veri_csv(corpus):
    out = prepare_voxceleb(
        corpus["roots"], corpus["save"], verification_pairs_file=corpus["trials"]
    )
    speakers = {r["spk_id"] for name in ("train", "dev") for r in read_csv(out[name])}
    assert speakers == {"s1", "s2", "s4"}
    veri = read_csv(out["veri"])
    # ID = the path as written in the trial list (less "./").
    assert [r["ID"] for r in veri] == [
        "s3/sess0/000.wav",
        "s3/sess1/001.wav",
        "s5/sess0/000.wav",
    ]
    assert all(Path(r["wav"]).as_posix().endswith(r["ID"]) for r in veri)
    assert veri[2]["wav"].startswith(str(corpus["roots"][1].resolve()))

    kept = prepare_voxceleb(
        corpus["roots"],
        corpus["save"],
        verification_pairs_file=corpus["trials"],
        exclude_trial_speakers=False,
    )
    speakers = {r["spk_id"] for r in read_csv(kept["train"])}
    assert speakers == {"s1", "s2", "s3", "s4", "s5"}


def test_second_run_does_no_work(corpus, monkeypatch):
    args = (corpus["roots"], corpus["save"])
    out = prepare_voxceleb(*args, verification_pairs_file=corpus["trials"])
    mtimes = {p: os.stat(p).st_mtime_ns for p in out.values()}

    def fail(*_args, **_kwargs):
        raise AssertionError("headers read again")

    monkeypatch.setattr(voxceleb_prepare, "read_headers", fail)
    monkeypatch.setattr(voxceleb_prepare, "scan_audio", fail)
    again = prepare_voxceleb(*args, verification_pairs_file=corpus["trials"])
    assert again == out
    assert {p: os.stat(p).st_mtime_ns for p in out.values()} == mtimes


@pytest.mark.parametrize(
    "change",
    [
        {"split_ratio": (50, 50)},
        {"seed": 7},
        {"exclude_trial_speakers": False},
        {"verification_pairs_file": None},
    ],
)
def test_changed_option_redoes(corpus, change):
    options = {"verification_pairs_file": corpus["trials"]}
    out = prepare_voxceleb(corpus["roots"], corpus["save"], **options)
    before = Path(out["dev"]).read_text()
    manifest = (corpus["save"] / MANIFEST_NAME).read_text()
    time.sleep(0.01)
    prepare_voxceleb(corpus["roots"], corpus["save"], **{**options, **change})
    assert (corpus["save"] / MANIFEST_NAME).read_text() != manifest
    if "verification_pairs_file" not in change:
        assert Path(out["dev"]).read_text() != before


def test_edited_trial_list_redoes(corpus):
    out = prepare_voxceleb(
        corpus["roots"], corpus["save"], verification_pairs_file=corpus["trials"]
    )
    with open(corpus["trials"], "a") as f:
        f.write("0 s1/sess0/000.wav s2/sess0/000.wav\n")
    prepare_voxceleb(
        corpus["roots"], corpus["save"], verification_pairs_file=corpus["trials"]
    )
    assert len(read_csv(out["veri"])) == 5
    assert "s1" not in {r["spk_id"] for r in read_csv(out["train"])}


def test_no_temp_files_and_crash_keeps_old_files(corpus, monkeypatch):
    out = prepare_voxceleb(corpus["roots"], corpus["save"])
    old = {p: Path(p).read_bytes() for p in out.values()}
    manifest = (corpus["save"] / MANIFEST_NAME).read_bytes()

    real_writer = csv.writer

    class CrashingWriter:
        """Writes the header and one row, then dies like a killed process."""

        def __init__(self, f):
            self.inner = real_writer(f)

        def writerow(self, row):
            self.inner.writerow(row)

        def writerows(self, rows):
            self.inner.writerow(next(iter(rows)))
            raise KeyboardInterrupt

    monkeypatch.setattr(csv, "writer", CrashingWriter)
    with pytest.raises(KeyboardInterrupt):
        prepare_voxceleb(corpus["roots"], corpus["save"], seed=99)
    assert {p: Path(p).read_bytes() for p in out.values()} == old
    assert (corpus["save"] / MANIFEST_NAME).read_bytes() == manifest
    assert sorted(p.name for p in corpus["save"].iterdir()) == [
        "dev.csv",
        MANIFEST_NAME,
        "train.csv",
    ]
    mode = stat.S_IMODE(os.stat(out["train"]).st_mode)
    assert mode & stat.S_IRGRP, "atomic files must not stay private (0600)"

    # The interrupted option change is redone by the next run.
    monkeypatch.undo()
    prepare_voxceleb(corpus["roots"], corpus["save"], seed=99)
    assert Path(out["dev"]).read_bytes() != old[out["dev"]]


def test_unreadable_audio_reported_rest_prepared(corpus):
    bad = corpus["roots"][0] / "wav" / "s1" / "sess0" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00garbage")
    with pytest.warns(UserWarning, match="1 unreadable audio file"):
        out = prepare_voxceleb(corpus["roots"], corpus["save"])
    report = corpus["save"] / UNREADABLE_REPORT
    lines = report.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(bad.resolve()))
    rows = read_csv(out["train"]) + read_csv(out["dev"])
    assert len(rows) == len(corpus["lengths"])
    # Fixed file: the report goes away on the next (changed-option) run.
    bad.unlink()
    prepare_voxceleb(corpus["roots"], corpus["save"], seed=5)
    assert not report.exists()


def test_errors_name_the_path(corpus, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"data folder not found: {missing}")
    ):
        prepare_voxceleb(missing, tmp_path / "o")
    empty = tmp_path / "empty" / "wav"
    empty.mkdir(parents=True)
    with pytest.raises(
        ValueError, match=f"no audio files .* under {re.escape(str(empty))}"
    ):
        prepare_voxceleb(empty.parent, tmp_path / "o")
    (empty / "spk" / "s").mkdir(parents=True)
    (empty / "spk" / "s" / "x.m4a").write_bytes(b"")
    with pytest.raises(ValueError, match="found 1 .m4a files: convert them"):
        prepare_voxceleb(empty, tmp_path / "o")
    absent = tmp_path / "absent_trials.txt"
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"trial list not found: {absent}")
    ):
        prepare_voxceleb(
            corpus["roots"], tmp_path / "o", verification_pairs_file=absent
        )
    trials = tmp_path / "t.txt"
    trials.write_text("1 s1/sess0/000.wav s9/x/gone.wav\n")
    with pytest.raises(FileNotFoundError, match=r"names 1 file\(s\) .*s9/x/gone.wav"):
        prepare_voxceleb(
            corpus["roots"], tmp_path / "o", verification_pairs_file=trials
        )
    with pytest.raises(ValueError, match="under two data folders"):
        prepare_voxceleb(
            [corpus["roots"][0], corpus["roots"][0] / "wav"], tmp_path / "o"
        )


def test_read_trials_formats_and_errors(tmp_path):
    vox = tmp_path / "vox.txt"
    vox.write_text("1 a/1.wav a/2.wav\n\n0 ./a/1.wav b/1.wav\n")
    labels, enrol, test = read_trials(vox)
    assert labels.tolist() == [1, 0] and enrol == ["a/1.wav", "a/1.wav"]
    kaldi = tmp_path / "kaldi.txt"
    kaldi.write_text("a/1.wav a/2.wav target\na/1.wav b/1.wav nontarget\n")
    assert read_trials(kaldi)[0].tolist() == [1, 0]
    assert read_trials(kaldi)[2] == test
    bad = tmp_path / "bad.txt"
    bad.write_text("1 a/1.wav a/2.wav\nyes a b\n")
    with pytest.raises(ValueError, match=re.escape(f"{bad}:2: expected")):
        read_trials(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match=re.escape(f"trial list is empty: {empty}")):
        read_trials(empty)
    with pytest.raises(FileNotFoundError, match="trial list not found"):
        read_trials(tmp_path / "none.txt")


def test_scan_and_headers_parallel_equal_serial(corpus):
    root = corpus["roots"][0] / "wav"
    files = [root / r for r in scan_audio(root)]
    assert len(files) == 26
    assert read_headers(files, num_workers=1) == read_headers(files, num_workers=4)
    assert read_headers(files[:1])[0] == (corpus["lengths"]["s1/sess0/000.wav"], 16000)


def test_headers_use_threads_only_when_reads_wait_on_storage(corpus, monkeypatch):
    root = corpus["roots"][0] / "wav"
    files = [root / r for r in scan_audio(root)]
    expected = read_headers(files, num_workers=1)
    monkeypatch.setattr(voxceleb_prepare, "_HEADER_CHUNK", 4)  # several chunks

    class NoPool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("cached headers must not go to a thread pool")

    real_pool = voxceleb_prepare.ThreadPoolExecutor
    monkeypatch.setattr(voxceleb_prepare, "ThreadPoolExecutor", NoPool)
    monkeypatch.setattr(voxceleb_prepare, "_IO_BOUND_SECONDS", 10.0)  # "fast" storage
    assert read_headers(files, num_workers=4) == expected

    pools = []

    def counting_pool(*args, **kwargs):
        pools.append(kwargs.get("max_workers"))
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(voxceleb_prepare, "ThreadPoolExecutor", counting_pool)
    monkeypatch.setattr(voxceleb_prepare, "_IO_BOUND_SECONDS", 0.0)  # "slow" storage
    assert read_headers(files, num_workers=4) == expected  # same order
    assert pools == [4]


def test_prepare_cli_one_line_error(tmp_path, capsys):
    script = load_script("voxceleb_prepare")
    assert (
        script.main(["--data_folder", str(tmp_path / "x"), "--save_folder", "o"]) == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "x") in err


def list_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_realspk(realspk, tmp_path):
    trials = realspk / "dev_trials.txt"
    start = time.perf_counter()
    out = prepare_voxceleb(realspk, tmp_path, verification_pairs_file=trials)
    elapsed = time.perf_counter() - start
    print(f"realspk prepared in {elapsed:.2f} s")
    train, dev, veri = (read_csv(out[k]) for k in ("train", "dev", "veri"))
    train_list = {line.split()[1] for line in list_lines(realspk / "train_list.txt")}
    dev_list = {line.split()[1] for line in list_lines(realspk / "dev_list.txt")}
    prepared = {r["wav"].split("/wav/", 1)[1] for r in train + dev}
    assert prepared == train_list  # dev speakers are the trial speakers
    assert len(dev) == 100 and len({r["spk_id"] for r in train}) == 100
    assert {r["ID"] for r in veri} == dev_list
    meta = {}
    with open(realspk / "utt_meta.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            meta[row["path"]] = float(row["duration_s"])
    for r in veri[:20]:
        assert float(r["duration"]) == pytest.approx(meta[r["ID"]], abs=0.01)
    # Without the trial list every speaker is training data.
    everything = prepare_voxceleb(realspk, tmp_path / "all")
    assert len(read_csv(everything["train"]) + read_csv(everything["dev"])) == 1040


def write_fake_ffmpeg(folder: Path) -> Path:
    """An ffmpeg stand-in: reads the input with soundfile, writes mono wav.

    Fails on inputs named ``bad*``; logs every call so tests can count them.
    """
    script = folder / "ffmpeg"
    body = """
        import sys, soundfile as sf
        args = sys.argv[1:]
        src, dst = args[args.index("-i") + 1], args[-1]
        rate = int(args[args.index("-ar") + 1])
        open(__file__ + ".log", "a").write(src + "\\n")
        if "/bad" in src:
            sys.exit("Invalid data found when processing input")
        data, sr = sf.read(src, always_2d=True)
        assert sr == rate
        sf.write(dst, data.mean(1), rate, format="WAV", subtype="PCM_16")
    """
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def test_convert_m4a_resumable_with_fake_ffmpeg(tmp_path):
    source, target = tmp_path / "aac", tmp_path / "wav"
    for spk in ("id1", "id2"):
        (source / spk / "v1").mkdir(parents=True)
        for u in range(3):
            # Stereo "m4a" (really WAV, which the fake ffmpeg reads).
            sf.write(
                source / spk / "v1" / f"{u}.m4a",
                np.zeros((800, 2)),
                16000,
                format="WAV",
            )
    ffmpeg = write_fake_ffmpeg(tmp_path)
    counts = convert_m4a_tree(source, target, num_workers=2, ffmpeg=str(ffmpeg))
    assert counts == {"converted": 6, "skipped": 0, "failed": 0}
    info = sf.info(target / "id1" / "v1" / "0.wav")
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 800)
    log = Path(str(ffmpeg) + ".log")
    assert len(log.read_text().splitlines()) == 6

    # Rerun: nothing converted again; a truncated output and a new bad file
    # are redone / reported; no partial files stay behind.
    (target / "id2" / "v1" / "1.wav").write_bytes(b"RIFF")
    (source / "id2" / "v1" / "bad.m4a").write_bytes(b"junk")
    counts = convert_m4a_tree(source, target, num_workers=2, ffmpeg=str(ffmpeg))
    assert counts == {"converted": 1, "skipped": 5, "failed": 1}
    assert len(log.read_text().splitlines()) == 8
    assert sf.info(target / "id2" / "v1" / "1.wav").frames == 800
    report = (target / "convert_failures.txt").read_text()
    assert "bad.m4a" in report and "Invalid data" in report
    assert not list(target.rglob("*.part")) and not (target / "id2/v1/bad.wav").exists()


def test_convert_m4a_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="m4a source folder not found"):
        convert_m4a_tree(tmp_path / "none", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="ffmpeg not found .*'no-such-ffmpeg'"):
        convert_m4a_tree(tmp_path, tmp_path / "out", ffmpeg="no-such-ffmpeg")
    script = load_script("convert_m4a")
    code = script.main(
        ["--source", str(tmp_path), "--target", "o", "--ffmpeg", "no-such-ffmpeg"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ffmpeg not found") and err.count("\n") == 1


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_convert_with_real_ffmpeg(tmp_path):
    source = tmp_path / "aac" / "id1" / "v1"
    source.mkdir(parents=True)
    sf.write(
        source / "0.wav", np.random.default_rng(0).normal(0, 0.1, (44100, 2)), 44100
    )
    import subprocess

    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(source / "0.wav"),
            str(source / "0.m4a"),
        ],
        check=True,
    )
    (source / "0.wav").unlink()
    counts = convert_m4a_tree(tmp_path / "aac", tmp_path / "wav")
    assert counts["converted"] == 1
    info = sf.info(tmp_path / "wav" / "id1" / "v1" / "0.wav")
    assert (info.samplerate, info.channels) == (16000, 1)
    assert info.frames == pytest.approx(16000, abs=1600)


def test_read_trials_large_list_in_blocks(tmp_path):
    # ~7 MB: read in several blocks; names shared, indices consistent.
    rng = np.random.default_rng(0)
    names = [f"id{i:05d}/vid{i % 7}/{i:05d}.wav" for i in range(3000)]
    n = 200_000
    e, t, lab = (
        rng.integers(0, 3000, n),
        rng.integers(0, 3000, n),
        rng.integers(0, 2, n),
    )
    lines = [f"{lab[i]} {names[e[i]]} {names[t[i]]}" for i in range(n)]
    lines[150_000] = lines[150_000].replace(" id", " ./id", 1)  # in a later block
    path = tmp_path / "big.txt"
    path.write_text("\n".join(lines) + "\n")
    labels, enrol, test = read_trials(path)
    assert labels.tolist() == lab.tolist()
    assert enrol == [names[i] for i in e] and test == [names[i] for i in t]
    assert len({id(s) for s in enrol + test}) == len(set(enrol + test))
    labels, unique, left, right = read_trials_indexed(path)
    assert [unique[i] for i in left[:50]] == enrol[:50]
    assert sorted(unique) == sorted(set(enrol + test))

    lines[180_000] = "x y"  # a bad line far into the file: exact line number
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:180001: expected")):
        read_trials(path)
    lines[180_000] = f"{names[0]} {names[1]} target"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="mixes"):
        read_trials(path)
