"""The benchmark driver: rows rendered from their specs carry the right values.

The unit tests check the driver's arithmetic on hand-made values (a ratio is
ours / reference, or reference / ours for a speed-up; a reference row against
itself is exactly 1.0x; a missing value leaves its row out) and the metrics a
benchmark builds on (a perfectly separable toy has an EER of 0). The quick runs
(``--quick``, tiny sizes, no timing asserted) check every row of the result
file against the same rule and the values that must hold whatever the
machine: engines that compute the same embedding agree within a cosine bound,
a resumed extraction equals a straight one, the reference row is 1.0x.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.driver import Row, Spec, parse_args, render, table

REPO = Path(__file__).resolve().parents[1]
HEADER = ["section", "name", "ours", "reference", "unit", "ratio", "target", "pass"]
# JSON keys: the printed columns (pass -> passed) plus the target's sense.
COLUMNS = set(HEADER[:-1]) | {"higher_is_better", "absolute", "note", "passed"}


def expected_ratio(row: dict):
    """The one rule: reference / ours for a time where higher is better (a
    speed-up), ours / reference otherwise."""
    if row["unit"] in ("s", "ms") and row["higher_is_better"]:
        return row["reference"] / row["ours"]
    return row["ours"] / row["reference"]


def run_quick(tmp_path: Path, *options: str) -> tuple[list[dict], str, dict]:
    """Rows, printed table and payload of ``python -m benchmarks --quick``."""
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "benchmarks", "--quick", *options]
    process = subprocess.run(
        [*command, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "ERES2NET_BENCH_CACHE": str(tmp_path)},
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert process.stdout.splitlines()[0].split() == HEADER
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    for row in rows:
        assert set(row) == COLUMNS
        assert row["name"] != "section failed", row["note"]
        assert any(
            line.startswith(row["section"]) and row["name"] in line
            for line in process.stdout.splitlines()
        ), row["name"]
        if row["ratio"] is not None:
            assert row["ratio"] == pytest.approx(expected_ratio(row), rel=1e-9), row
        if row["target"] is not None and (row["ratio"] is not None or row["absolute"]):
            assert isinstance(row["passed"], bool), row
    return rows, process.stdout, payload


def by_name(rows: list[dict], part: str) -> dict:
    """The one row whose name holds ``part``."""
    (row,) = [r for r in rows if part in r["name"]]
    return row


def number_after(text: str, label: str) -> float:
    """The number printed after ``label`` in a note."""
    return float(re.search(re.escape(label) + r"\s*([-+0-9.e]+)", text).group(1))


def tiny_model_folder(tmp_path: Path, qualities: tuple[str, ...]) -> Path:
    """The tiny recipe's model folder with a calibration using ``qualities``."""
    sys.path.insert(0, str(Path(__file__).parent))
    from model_builders import recipe_folder

    from speechbrain_eres2net.evaluation.calibration import Calibration

    folder = tmp_path / "model"
    shutil.copytree(recipe_folder(), folder)
    weights = (0.5, 0.5, 0.1, 0.1)[: len(qualities)]
    Calibration(10.0, -5.0, quality_weights=weights, quality_names=qualities).save(
        folder / "calibration.json"
    )
    return folder


# ------------------------------------------------------------- the driver


def test_a_reference_row_against_itself_is_exactly_one():
    specs = table(
        """
        reference: actDCF
            dcf / dcf, actDCF, lower
        reference: time
            seconds / seconds, ms, >= 1 x1000
        """
    )
    rows = render("demo", specs, {"dcf": 0.3721, "seconds": 0.0137})
    assert [r.ratio for r in rows] == [1.0, 1.0]
    assert rows[1].ours == rows[1].reference == pytest.approx(13.7)
    assert rows[1].passed is True


def test_ratio_is_ours_over_reference_and_reference_over_ours_for_a_speedup():
    specs = table(
        """
        memory
            ours_mb / ref_mb, MiB, <= 1.2
        speed
            ours_s / ref_s, s, >= 2
        cost
            ours_s / ref_s, s, <= 1.05
        rate {n} files
            rate / ref_rate, files/s, >= 2
            {n} files in {ours_s:.1f} s
        """
    )
    values = {"ours_mb": 300.0, "ref_mb": 200.0, "ours_s": 1.0, "ref_s": 4.0}
    values.update(rate=50.0, ref_rate=20.0, n=7)
    memory, speed, cost, rate = render("demo", specs, values)
    assert memory.ratio == 1.5 and memory.passed is False
    assert not memory.higher_is_better
    assert speed.ratio == 4.0 and speed.passed is True  # a speed-up
    assert cost.ratio == 0.25 and cost.passed is True  # lower is better: ours / ref
    assert rate.ratio == 2.5 and rate.name == "rate 7 files"
    assert rate.note == "7 files in 1.0 s"
    for row in (memory, speed, cost, rate):
        assert row.ratio == pytest.approx(expected_ratio(row.as_dict()))


def test_absolute_targets_a_key_as_target_and_rows_left_out():
    specs = table(
        """
        refused {kind}
            refused / energy, % refused, >= 100 absolute
        delta
            delta / reference, EER points, <= target absolute no-ratio
        optional
            missing, s
        only when asked
            -, , when=asked
            skipped: not asked
        """
    )
    values = {"kind": "tone", "refused": 100.0, "energy": 0.0, "delta": 0.3}
    values.update(reference=7.0, target=0.5, asked=False)
    refused, delta = render("demo", specs, values)
    # A zero reference leaves the ratio empty, the absolute target still holds.
    assert refused.ratio is None and refused.passed is True
    assert delta.ratio is None and delta.target == 0.5 and delta.passed is True
    assert delta.reference == 7.0
    assert len(render("demo", specs, {**values, "target": None, "asked": True})) == 3
    assert render("demo", specs[3:], {"asked": True})[0].note == "skipped: not asked"


def test_table_reads_the_row_grammar():
    (spec,) = table(
        """
        {n} files: time
            ours_s / ref_s, ms, >= 2 x1000
            median of {repeats},
            interleaved
        """
    )
    assert spec == Spec(
        "{n} files: time",
        "ours_s",
        "ref_s",
        "ms",
        target=2.0,
        note="median of {repeats}, interleaved",
        scale=1000.0,
    )


def test_row_of_leaves_the_ratio_empty_without_two_finite_values():
    assert Row.of("s", "n", 1.0, None, "ms").ratio is None
    assert Row.of("s", "n", math.nan, 2.0, "MiB").ratio is None
    assert Row.of("s", "n", 0.0, 2.0, "MiB").ratio == 0.0


def test_every_option_of_the_command_line_still_parses():
    options = """
        --only inference,engines --skip engines --quick --threads 2 --sizes base
        --seconds 3 --large-seconds 10 --repeats 2 --train-batch 4 --train-frames 8
        --train-steps 1 --long-minutes 0.5 --utterances 8 --int8-model m --isas native
        --calibration-utts 4 --metrics-trials 1000 --dataprep-files 10
        --robustness-model m --robustness-trials 6 --robustness-minutes 1,0.5
        --speech-models A=m --speech-trained-alike B=m --speech-candidates off
        --extraction-model random-base --extraction-files 9 --extraction-parts
        scoring --identification-model m --device cpu --json x.json
    """
    args = parse_args(options.split())
    assert args.sections == ["inference"]
    assert args.thread_counts == [2] and args.metrics_trials == 1000
    assert args.long_minutes == 0.5 and args.robustness_minutes == "1,0.5"
    full = parse_args([])
    assert full.metrics_trials == 10_000_000 and full.thread_counts == [1, 2]
    assert full.int8_model is None and full.extraction_files is None


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


@pytest.mark.parametrize(
    "name, option",
    [
        ("robustness", "--robustness-model"),
        ("identification", "--identification-model"),
        ("extraction", "--extraction-model"),
        ("diarization", "--diarization-model"),
    ],
)
def test_a_benchmark_without_its_model_folder_says_which_option(
    name, option, monkeypatch
):
    import importlib

    module = importlib.import_module(f"benchmarks.{name}")
    # Only the skip logic: the parts that need no model folder are stubbed.
    monkeypatch.setattr(module, "run_parts", lambda section, parts: [])
    rows = getattr(module, f"bench_{name}")(parse_args(["--quick"]))
    assert rows and all(r.ours is None for r in rows)
    assert any(option in r.note for r in rows)


# ------------------------------------------------------- what rows rest on


def test_eer_of_a_perfectly_separable_toy_is_zero():
    from benchmarks.trials import Side, score_trials

    rng = np.random.default_rng(0)
    speakers = rng.standard_normal((4, 16))
    names = [f"s{k}_{i}" for k in range(4) for i in range(3)]
    side = Side(
        {n: speakers[int(n[1])] + 0.01 * rng.standard_normal(16) for n in names},
        {n: 3.0 for n in names},
        {},
    )
    pairs = [(a, b) for a in names for b in names if a < b]
    labels = np.array([int(a[:2] == b[:2]) for a, b in pairs])
    result = score_trials(
        (labels, [a for a, _ in pairs], [b for _, b in pairs]), side, side, None
    )
    assert result["eer"] == 0.0 and result["min_dcf"] == 0.0
    assert result["n_trials"] == len(pairs) and result["left_out"] == 0


def test_identification_open_set_metrics_by_hand():
    """Accuracy, DIR and the oracle share of a tiny score matrix."""
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
    out = open_set(scores, np.array([0, 0, 1, -1, -1]))
    assert out["top1"] == pytest.approx(200 / 3)
    assert out["top5"] == 100.0
    # 1 % of 2 unknown queries: none may exceed, so the threshold is 0.7.
    assert out["far_0.01"] == 0.0 and out["dir_0.01"] == pytest.approx(200 / 3)
    # The best threshold is 0.7 too: both right answers named, both unknown
    # queries rejected, the wrong top candidate (0.6) rejected: 4 of 5. At
    # 0.4 the 0.7 unknown would be named: 3 of 5.
    assert out["oracle_share"] == pytest.approx(80.0)
    assert out["oracle_threshold"] == pytest.approx(0.7)


# ------------------------------------------------------------ quick runs


@pytest.mark.slow
def test_quick_run_rows_follow_the_ratio_rule_and_engines_agree(tmp_path):
    import torch

    sections = "inference,throughput,long,training,evaluation,dataprep"
    rows, _, payload = run_quick(tmp_path, "--only", sections)
    assert payload["command"].startswith("python -m benchmarks --quick --only")
    capability = str(torch.backends.cpu.get_cpu_capability())
    assert payload["machine"]["cpu_capability"] == capability
    assert {r["section"] for r in rows} == {
        "inference",
        "long audio",
        "training",
        "evaluation",
        "dataprep",
        "throughput",
    }
    # Our batched model and the official one embed the same utterances.
    for row in [r for r in rows if r["section"] == "throughput"]:
        assert number_after(row["note"], "min cosine to official") > 0.999, row
    # Our metrics and SpeechBrain's agree on the common list.
    rate = by_name(rows, "trials/s: ours")
    assert number_after(rate["note"], "max |difference| at 5,000:") < 1e-4
    assert rate["ratio"] == pytest.approx(rate["ours"] / rate["reference"])
    seconds = by_name(rows, "EER+minDCF(0.01,0.05)")
    assert 0.1 < number_after(seconds["note"], "EER") < 0.25  # the toy's ~16 %
    assert by_name(rows, "step time (channels-last)")["unit"] == "s"
    # The README's Markdown table is rendered from the JSON, row for row.
    report = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", str(tmp_path / "results.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    markdown = [line for line in report.stdout.splitlines() if line.startswith("|")]
    assert markdown[0] == "| " + " | ".join(HEADER) + " |"
    assert len(markdown) == 2 + len(rows)


def test_robustness_quick_run_on_a_tiny_model_folder(tmp_path, realspk):
    folder = tiny_model_folder(tmp_path, ("log_dur_min", "log_dur_max"))
    rows, _, _ = run_quick(
        tmp_path, "--only", "robustness", "--robustness-model", str(folder)
    )
    assert {row["section"] for row in rows} == {"robustness"}
    for row in rows:
        if not row["note"].startswith("skipped"):  # webrtcvad is optional
            assert math.isfinite(row["ours"]), row
    refused = [r for r in rows if r["name"].startswith("non-speech refused")]
    assert len(refused) == 13 and all(r["unit"] == "% refused" for r in refused)
    # Digital zero holds no speech by any detector: all refused, energy too.
    zero = by_name(rows, "non-speech refused: digital zero")
    assert zero["ours"] == zero["reference"] == 100.0 and zero["ratio"] == 1.0
    # The reference row against itself.
    reference = by_name(rows, "clean dev trials, vad off (reference): actDCF")
    assert reference["ratio"] == 1.0 and reference["ours"] == reference["reference"]
    clean = number_after(by_name(rows, "vad off (reference): EER")["name"], "EER")
    # Every EER-delta row is its condition's EER minus the reference's.
    deltas = [r for r in rows if r["unit"] == "EER points vs clean"]
    assert len(deltas) == 8
    for row in deltas:
        eer = number_after(row["name"], ": EER")
        assert number_after(row["name"], "vs clean") == clean
        assert row["ours"] == pytest.approx(eer - clean, abs=0.011), row
    for part in (
        "silence (zero + -70 dBFS dither), vad trim: EER",
        "white noise, vad check: actDCF(0.01)",
        "cut to 0.5 s of net speech, vad trim: Cllr",
        "VAD cost: SpeechDetector vs base embedding",
        "embed_recording peak RSS, 2 min vs 0.5 min",
        "real speech wrongly refused",
    ):
        assert any(part in r["name"] for r in rows), part


def test_extraction_quick_run_on_a_tiny_model_folder(tmp_path, realspk):
    from benchmarks.extraction import TINY_MODEL, random_model_folder

    folder = random_model_folder(tmp_path / "model", TINY_MODEL, "Tiny ERes2Net")
    rows, _, _ = run_quick(
        tmp_path, "--only", "extraction", "--extraction-model", str(folder)
    )
    assert {row["section"] for row in rows} == {"extraction"}
    assert all(math.isfinite(row["ours"]) for row in rows)
    # Our command and SpeechBrain's loop compute the same embeddings.
    one = by_name(rows, "1 process x 1 thr (files/s)")
    assert number_after(one["note"], "min cosine to SpeechBrain's embeddings") > 0.9999
    assert one["ratio"] == pytest.approx(one["ours"] / one["reference"])
    int8 = by_name(rows, "--precision int8 (opt-in)")
    assert number_after(int8["note"], "min cosine to SpeechBrain's embeddings") > 0.99
    # Resuming must not change the output, whatever the timing.
    assert by_name(rows, "keys in the same order")["ours"] == 100.0
    difference = by_name(rows, "max |difference|")
    assert difference["ours"] <= 1e-5 and difference["passed"]
    for part in (
        "torchrun --nproc_per_node=2, 1 thr each (files/s)",
        "--num-workers 2 (files/s)",
        "eres2net embed start-up",
        "streaming + resume machinery cost",
        "resumed after SIGKILL at 50%",
        "eres2net embed peak RSS, 400 vs 200 files",
        "evaluate_trials, AS-norm, 2,000 keys x 5,000 trials",
    ):
        assert any(part in r["name"] for r in rows), part


def test_identification_quick_run_on_a_tiny_model_folder(tmp_path, realspk):
    from speechbrain_eres2net.evaluation.gallery import SCORINGS

    qualities = ("log_dur_min", "log_dur_max", "norm_min", "norm_max")
    folder = tiny_model_folder(tmp_path, qualities)
    rows, _, _ = run_quick(
        tmp_path, "--only", "identification", "--identification-model", str(folder)
    )
    assert all(math.isfinite(row["ours"]) for row in rows)
    for scoring in SCORINGS:
        mine = [r for r in rows if r["name"].startswith(f"{scoring} scoring")]
        top1 = by_name(mine, "closed-set top-1 accuracy (6 speakers x 3")
        top5 = by_name(mine, "closed-set top-5 accuracy")
        assert 0 <= top1["ours"] <= top5["ours"] <= 100
        # Detection can only lose queries that closed-set identification names.
        for far in (1, 10):
            assert by_name(mine, f"DIR at {far} % false")["ours"] <= top1["ours"]
        cllr = by_name(mine, "3-recording enrollment: Cllr")
        assert cllr["ours"] >= cllr["reference"] > 0  # Cllr >= minCllr
    # The target sits on the default scoring's answers alone.
    (targeted,) = [r for r in rows if r["target"] is not None]
    assert "(default)" in targeted["name"] and "Bayes rule" in targeted["note"]
    for speakers in ("100", "1,000"):
        query = by_name(rows, f"one query vs {speakers} speakers x 3 recordings")
        assert "same best speaker: True" in query["note"]
        size = by_name(rows, f"gallery of {speakers} speakers x 3 recordings: file")
        # At least the float32 embeddings: 3 x 192 x 4 bytes per speaker.
        assert number_after(size["note"], "") >= 3 * 192 * 4


def test_diarization_quick_run_scores_every_clustering_on_one_set(tmp_path, realspk):
    pytest.importorskip("pyannote.metrics", reason="pyannote.metrics scores DER")
    pytest.importorskip("sklearn", reason="SpeechBrain's clustering needs it")
    folder = tiny_model_folder(tmp_path, ("log_dur_min", "log_dur_max"))
    rows, _, _ = run_quick(
        tmp_path, "--only", "diarization", "--diarization-model", str(folder)
    )
    der = by_name(rows, "DER, collar 0.25 s, unknown speaker count")
    # The reference is the better anchor: no anchor's test DER is below it.
    anchors = [
        r for r in rows if r["name"].split(":")[0] in ("SpeechBrain", "3D-Speaker")
    ]
    assert anchors and min(r["ours"] for r in anchors) == pytest.approx(
        der["reference"]
    )
    for family in ("ours AHC", "ours spectral", "ours spectral-ahc", "SpeechBrain"):
        row = by_name(rows, f"{family}: DER on the test set")
        assert 0 <= row["ours"] <= 100 and "chosen on the tuning set" in row["note"]
    # The DER row's "ours" is the family chosen on the tuning set.
    chosen = der["note"].split("ours: ")[1].split(",")[0]
    assert by_name(rows, f"{chosen}: DER on the test set")["ours"] == der["ours"]
    assert 0 <= by_name(rows, "speaker count exact")["ours"] <= 100
    for row in [r for r in rows if r["name"].startswith("real-time factor")]:
        assert 0 < row["ours"] < 1
    memory = by_name(rows, "peak RSS")
    assert memory["ours"] > memory["reference"] * 0.5 > 0


def test_sherpa_quick_run_embeds_what_sherpa_onnx_embeds(tmp_path, realspk):
    pytest.importorskip("sherpa_onnx")
    rows, _, _ = run_quick(tmp_path, "--only", "sherpa", "--isas", "native")
    # One exported graph, two programs: the embeddings must agree.
    cosine = by_name(rows, "worst cosine, eres2net embed vs sherpa-onnx")
    assert cosine["ours"] >= 0.999 and cosine["passed"]
    speed = by_name(rows, "eres2net embed vs sherpa-onnx files/s")
    assert speed["ratio"] == pytest.approx(speed["ours"] / speed["reference"])
