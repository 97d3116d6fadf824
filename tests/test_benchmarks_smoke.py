"""Smoke run of the benchmark entry point at tiny sizes (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADER = ["section", "name", "ours", "reference", "unit", "ratio", "target", "pass"]
# JSON keys: the printed columns (pass -> passed) plus the target's sense.
COLUMNS = set(HEADER[:-1]) | {"higher_is_better", "absolute", "note", "passed"}


@pytest.mark.slow
def test_quick_run_prints_table_and_writes_json(tmp_path):
    out = tmp_path / "results.json"
    env = dict(os.environ, ERES2NET_BENCH_CACHE=str(tmp_path / "cache"))
    sections = "inference,throughput,long,training,evaluation,dataprep"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            sections,
            "--json",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    header = process.stdout.splitlines()[0].split()
    assert header == HEADER

    payload = json.loads(out.read_text())
    assert payload["command"].startswith("python -m benchmarks")
    assert payload["machine"]["cores"] >= 1
    rows = payload["rows"]
    assert {row["section"] for row in rows} >= {
        "inference",
        "long audio",
        "training",
        "evaluation",
        "dataprep",
        "throughput",
    }
    for row in rows:
        assert set(row) == COLUMNS
        assert row["name"] != "section failed", row["note"]
        if row["ours"] is not None and row["reference"] is not None and row["ratio"]:
            assert row["ratio"] > 0
        if row["target"] is not None and (row["ratio"] is not None or row["absolute"]):
            assert isinstance(row["passed"], bool)
        # Every printed row is in the table, under its section.
        assert any(
            line.startswith(row["section"]) and row["name"] in line
            for line in process.stdout.splitlines()
        )
    names = [row["name"] for row in rows]
    assert any("fast path" in n for n in names)
    assert any("peak RSS" in n for n in names)
    evaluation = [r for r in rows if r["section"] == "evaluation"]
    assert all(r["ours"] > 0 for r in evaluation)
    assert any(n.endswith("step time (channels-last)") for n in names)

    # The README's Markdown table is rendered from this JSON.
    report = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    table = [line for line in report.stdout.splitlines() if line.startswith("|")]
    assert table[0] == "| " + " | ".join(HEADER) + " |"
    assert len(table) == 2 + len(rows)
    assert all(f"| {row['section']} | {row['name']} |" in report.stdout for row in rows)


def test_unknown_section_is_a_clear_error():
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nonsense"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2
    assert "unknown section" in process.stderr


def test_robustness_quick_run_on_a_tiny_model_folder(tmp_path, realspk):
    """The robustness section, quick, on an untrained folder with a calibration."""
    import math
    import shutil

    sys.path.insert(0, str(Path(__file__).parent))
    from model_builders import recipe_folder

    from speechbrain_eres2net.evaluation.calibration import Calibration

    folder = tmp_path / "model"
    shutil.copytree(recipe_folder(), folder)
    Calibration(
        score_weight=10.0,
        bias=-5.0,
        quality_weights=(0.5, 0.5),
        quality_names=("log_dur_min", "log_dur_max"),
    ).save(folder / "calibration.json")
    out = tmp_path / "robustness.json"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "robustness",
            "--robustness-model",
            str(folder),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert process.stdout.splitlines()[0].split() == HEADER
    rows = json.loads(out.read_text())["rows"]
    assert {row["section"] for row in rows} == {"robustness"}
    for row in rows:
        assert row["name"] != "section failed", row["note"]
        if row["note"].startswith("skipped"):  # webrtcvad is optional
            assert "webrtcvad" in row["name"]
            continue
        assert isinstance(row["ours"], float) and math.isfinite(row["ours"]), row
        if row["target"] is not None:
            assert isinstance(row["passed"], bool), row
        assert any(
            line.startswith("robustness") and row["name"] in line
            for line in process.stdout.splitlines()
        )
    names = " / ".join(row["name"] for row in rows)
    for part in (
        "non-speech refused: digital zero",
        "non-speech refused: DTMF-like dual tones",
        "detector Silero (ours), non-speech",
        "real speech refused: realspk",
        "clean dev trials, vad off (reference)",
        "silence (zero + -70 dBFS dither), vad trim: EER",
        "white noise, vad check: actDCF(0.01)",
        "white noise, vad off: EER",
        "cut to 0.5 s of net speech, vad trim: Cllr",
        "cut to 4 s of net speech, vad trim: EER",
        "VAD cost: SpeechDetector vs base embedding",
        "embed_recording peak RSS, 2 min vs 0.5 min",
    ):
        assert part in names, part
    refused = [r for r in rows if r["name"].startswith("non-speech refused")]
    assert len(refused) == 13 and all(r["unit"] == "% refused" for r in refused)


def test_robustness_without_a_model_folder_is_skipped_with_a_note():
    from benchmarks.robustness import bench_robustness

    (row,) = bench_robustness(None, quick=True)
    assert row.ours is None and "--robustness-model" in row.note


def test_extraction_quick_run_on_a_tiny_model_folder(tmp_path, realspk):
    """The extraction section, quick, on a tiny random model folder."""
    import math

    from benchmarks.extraction import TINY_MODEL, random_model_folder

    folder = random_model_folder(tmp_path / "model", TINY_MODEL, "Tiny ERes2Net")
    out = tmp_path / "extraction.json"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "extraction",
            "--extraction-model",
            str(folder),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert process.stdout.splitlines()[0].split() == HEADER
    rows = json.loads(out.read_text())["rows"]
    assert {row["section"] for row in rows} == {"extraction"}
    for row in rows:
        assert row["name"] != "section failed", row["note"]
        assert isinstance(row["ours"], float) and math.isfinite(row["ours"]), row
        if row["target"] is not None:
            assert isinstance(row["passed"], bool), row
        assert any(
            line.startswith("extraction") and row["name"] in line
            for line in process.stdout.splitlines()
        )
    names = " / ".join(row["name"] for row in rows)
    for part in (
        "1 process x 1 thr (files/s)",
        "torchrun --nproc_per_node=2, 1 thr each (files/s)",
        "--num-workers 2 (files/s)",
        "--precision int8 (opt-in) (files/s)",
        "eres2net embed start-up",
        "streaming + resume machinery cost",
        "resumed after SIGKILL at 50%",
        "resumed output vs straight output: max |difference|",
        "eres2net embed peak RSS, 400 vs 200 files",
        "evaluate_trials, AS-norm, 2,000 keys x 5,000 trials",
    ):
        assert part in names, part
    notes = " ".join(row["note"] for row in rows)
    assert "cpu capability" in notes and "min cosine to SpeechBrain's" in notes
    # Resuming must not change the output, whatever the timing.
    (same,) = [r for r in rows if r["name"].endswith("keys in the same order")]
    assert same["passed"], same["note"]


def test_extraction_without_a_model_folder_skips_its_rows_with_a_note(monkeypatch):
    import benchmarks.extraction as extraction

    # Only the skip logic: the parts that need no model folder are stubbed.
    monkeypatch.setattr(extraction, "memory_rows", lambda *a: [])
    monkeypatch.setattr(extraction, "scoring_rows", lambda *a: [])
    rows = extraction.bench_extraction(None, quick=True)
    assert [r.ours for r in rows] == [None] * len(rows)
    assert any("--extraction-model" in r.note for r in rows)


def test_identification_quick_run_on_a_tiny_model_folder(tmp_path, realspk):
    """The identification section, quick, on an untrained folder whose
    calibration uses durations and norms (as Identifier.answer computes them)."""
    import math
    import shutil

    sys.path.insert(0, str(Path(__file__).parent))
    from model_builders import recipe_folder

    from speechbrain_eres2net.evaluation.calibration import Calibration
    from speechbrain_eres2net.evaluation.gallery import SCORINGS

    folder = tmp_path / "model"
    shutil.copytree(recipe_folder(), folder)
    Calibration(
        score_weight=10.0,
        bias=-5.0,
        quality_weights=(0.5, 0.5, 0.1, 0.1),
        quality_names=("log_dur_min", "log_dur_max", "norm_min", "norm_max"),
    ).save(folder / "calibration.json")
    out = tmp_path / "identification.json"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "identification",
            "--identification-model",
            str(folder),
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert process.stdout.splitlines()[0].split() == HEADER
    rows = json.loads(out.read_text())["rows"]
    assert {row["section"] for row in rows} == {"identification"}
    for row in rows:
        assert row["name"] != "section failed", row["note"]
        assert isinstance(row["ours"], float) and math.isfinite(row["ours"]), row
        if row["target"] is not None:
            assert isinstance(row["passed"], bool), row
        assert any(
            line.startswith("identification") and row["name"] in line
            for line in process.stdout.splitlines()
        )
    names = " / ".join(row["name"] for row in rows)
    for scoring in SCORINGS:
        for part in (
            "closed-set top-1 accuracy (6 speakers x 3 recordings enrolled",
            "closed-set top-5 accuracy",
            "open-set DIR at 1 % false alarm",
            "open-set DIR at 10 % false alarm",
            "correct default answers (Identifier.answer)",
        ):
            assert f"{scoring} scoring" in names and part in names, (scoring, part)
        assert f"{scoring} scoring, 3-recording enrollment: Cllr" in names
    for part in (
        "single-recording enrollment (each enrolled recording alone): Cllr",
        "one query vs 1,000 speakers x 3 recordings: Identifier.answer",
        "gallery of 100 speakers x 3 recordings: file size after save",
        "gallery of 1,000 speakers x 3 recordings: load",
        "gallery of 1,000 speakers x 3 recordings: peak RSS of load + query",
        "gallery of 1,000 speakers x 3 recordings: enroll one more speaker",
    ):
        assert part in names, part
    # The target sits on the default scoring's answers alone.
    (targeted,) = [r for r in rows if r["target"] is not None]
    assert "(default)" in targeted["name"] and "default answers" in targeted["name"]
    assert "oracle" in targeted["note"] and "Bayes rule" in targeted["note"]


def test_identification_without_a_model_folder_skips_its_realspk_rows(monkeypatch):
    import benchmarks.identification as identification

    # Only the skip logic: the scale part, which needs no model, is stubbed.
    monkeypatch.setattr(identification, "scale_rows", lambda *a: [])
    (row,) = identification.bench_identification(None, quick=True)
    assert row.ours is None and "--identification-model" in row.note


def test_identification_open_set_metrics_by_hand():
    """Accuracy, DIR and the oracle share of a tiny score matrix."""
    import numpy as np

    from benchmarks.identification import open_set

    scores = np.array(
        [
            [0.9, 0.1],  # known speaker 0, right, high
            [0.2, 0.6],  # known speaker 0, wrong (speaker 1 on top)
            [0.1, 0.8],  # known speaker 1, right
            [0.7, 0.3],  # unknown, high top score
            [0.2, 0.4],  # unknown, low top score
        ]
    )
    truth = np.array([0, 0, 1, -1, -1])
    out = open_set(scores, truth)
    assert out["top1"] == pytest.approx(200 / 3)
    assert out["top5"] == 100.0
    # 1 % of 2 unknown queries: none may exceed, so the threshold is 0.7.
    assert out["far_0.01"] == 0.0 and out["dir_0.01"] == pytest.approx(200 / 3)
    # The best threshold is 0.7 too: both right answers named, both unknown
    # queries rejected, the wrong top candidate (0.6) rejected: 4 of 5. At
    # 0.4 the 0.7 unknown would be named: 3 of 5.
    assert out["oracle_share"] == pytest.approx(80.0)
    assert out["oracle_threshold"] == pytest.approx(0.7)
