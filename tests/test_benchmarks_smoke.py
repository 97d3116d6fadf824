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
    from test_hub import recipe_folder

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
        "clean dev trials, vad trim (reference)",
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

    from benchmarks.extraction import tiny_model_folder

    folder = tiny_model_folder(tmp_path / "model")
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
