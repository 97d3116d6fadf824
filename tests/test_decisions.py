"""Calibrated decisions: a model folder's calibration, verify, score and the recipe."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import metric_oracles  # noqa: E402
from model_builders import (  # noqa: E402
    imported_folder,
    official_checkpoint,
    real_wavs,
    trial_subset,
)

from speechbrain_eres2net.cli import main  # noqa: E402
from speechbrain_eres2net.evaluation.calibration import (  # noqa: E402
    Calibration,
    bayes_threshold,
)
from speechbrain_eres2net.evaluation.decisions import (  # noqa: E402
    CALIBRATION_FILE,
    Verifier,
    decide,
)
from speechbrain_eres2net.evaluation.metrics import compute_min_dcf  # noqa: E402
from speechbrain_eres2net.evaluation.pipeline import (  # noqa: E402
    evaluate_embedder,
    fit_trial_calibration,
    trial_embeddings,
)
from speechbrain_eres2net.inference.embedder import SpeakerEmbedder  # noqa: E402
from speechbrain_eres2net.training.verification import run_verification  # noqa: E402


@pytest.fixture(scope="module")
def calibrated_folder(tmp_path_factory, realspk) -> Path:
    """An imported folder re-exported with a 12 + 12 trial calibration."""
    folder = tmp_path_factory.mktemp("cal") / "model"
    trials = trial_subset(folder.parent / "trials.txt", per_label=12)
    code = main(
        [
            "import-3dspeaker",
            "--checkpoint",
            str(official_checkpoint("v1")[1]),
            "--out",
            str(folder),
            "--trials",
            str(trials),
            "--data-root",
            str(realspk),
        ]
    )
    assert code == 0
    return folder


def test_decision_rules_by_hand():
    # Bayes threshold log(c_fa (1 - p) / (c_miss p)).
    assert bayes_threshold(0.01) == pytest.approx(np.log(99))
    assert bayes_threshold(0.5, c_miss=10.0) == pytest.approx(-np.log(10))
    calibrated = decide(0.3, llr=0.2)  # default p_target 0.5: threshold 0
    assert calibrated.on == "llr" and calibrated.threshold == 0.0
    assert calibrated.accept
    assert not decide(0.3, llr=0.2, p_target=0.01).accept  # needs llr > 4.6
    assert decide(0.3, llr=-5.0, threshold=0.25).accept  # a given threshold wins
    # Strictly above, as in the metrics.
    assert not decide(0.25, threshold=0.25).accept
    assert decide(0.3, fallback_threshold=0.2).on == "score"
    with pytest.raises(ValueError, match="cosine score 0.3000"):
        decide(0.3, source="m")


def test_folder_stores_calibration_and_card(calibrated_folder):
    calibration = Calibration.load(calibrated_folder / CALIBRATION_FILE)
    fitted = calibration.fitted_on
    assert fitted["trials"] == "trials.txt"
    # 12 + 12 trials of the list, and those with a 3-recording enrollment.
    assert fitted["n_target"] + fitted["n_nontarget"] == 24 + fitted["enrolled_trials"]
    assert fitted["n_target"] >= 12 and fitted["n_nontarget"] >= 12
    assert calibration.quality_names == (
        "log_dur_min",
        "log_dur_max",
        "norm_min",
        "norm_max",
    )
    card = (calibrated_folder / "README.md").read_text()
    assert "calibration.json" in card and "trials.txt" in card
    assert f"{fitted['n_target']} target / {fitted['n_nontarget']} non-target" in card


def test_verifier_llr_is_the_stored_calibration(calibrated_folder):
    a, b = real_wavs(2)
    verifier = Verifier.from_folder(calibrated_folder, fast=False)
    decision = verifier.verify(a, b)
    embedder = SpeakerEmbedder.from_folder(calibrated_folder, fast=False)
    ea, eb = embedder.embed_file(a).numpy(), embedder.embed_file(b).numpy()
    cosine = float(ea @ eb / np.linalg.norm(ea) / np.linalg.norm(eb))
    assert decision.score == pytest.approx(cosine, abs=1e-6)
    calibration = verifier.calibration
    import soundfile

    from speechbrain_eres2net.dataio.vad import SpeechDetector

    def net_speech(path):
        wav, rate = soundfile.read(path, dtype="float32")
        return SpeechDetector()(torch.from_numpy(wav), rate).seconds

    # The duration measures are net speech, not the files' lengths.
    durations = sorted([net_speech(a), net_speech(b)])
    assert durations[0] < min(soundfile.info(a).duration, soundfile.info(b).duration)
    norms = sorted([float(np.linalg.norm(ea)), float(np.linalg.norm(eb))])
    quality = np.array([[*np.log(durations), *norms]])
    expected = calibration.llr(np.array([cosine]), quality)[0]
    assert decision.llr == pytest.approx(expected, abs=1e-3)
    assert decision.accept == (decision.llr > 0.0)


def test_verify_prints_llr_and_decision_at_a_prior(calibrated_folder, run_cli):
    a = real_wavs(1)[0]
    code, out, _ = run_cli(["verify", "--model", calibrated_folder, a, a])
    assert code == 0
    assert out.startswith("score 1.0000 llr ") and "p_target 0.5" in out
    code, out, _ = run_cli(
        ["verify", "--model", calibrated_folder, a, a, "--json", "--p-target", "0.9"],
    )
    decision = json.loads(out)
    assert decision["schema"] == 1
    assert decision["on"] == "llr" and decision["p_target"] == 0.9
    assert decision["threshold"] == pytest.approx(np.log(0.1 / 0.9))
    # A prior so low that even the same file is not accepted.
    code, out, _ = run_cli(
        ["verify", "--model", calibrated_folder, a, a, "--p-target", "1e-300"],
    )
    assert code == 0 and out.strip().endswith("-> different speakers")


def test_score_reports_calibration_metrics(
    calibrated_folder, tmp_path, run_cli, realspk
):
    trials = trial_subset(tmp_path / "t.txt", per_label=6)
    code, out, _ = run_cli(
        [
            "score",
            "--model",
            calibrated_folder,
            "--trials",
            trials,
            "--data-root",
            realspk,
            "--out",
            tmp_path / "out",
            "--no-progress",
        ],
    )
    assert code == 0
    assert "minCllr" in out and "Cllr" in out and "actDCF(0.01)" in out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["calibration"]["trials"] == "trials.txt"
    # scores.txt: enrol test label cosine llr, the LLRs of the calibration.
    _, labels, columns = metric_oracles.read_scores(tmp_path / "out" / "scores.txt")
    assert columns.shape == (12, 2) and labels.sum() == 6
    llrs = columns[:, 1]
    # Cllr by its definition, one trial at a time (LLRs kept to 6 decimals).
    assert results["cllr"] == pytest.approx(metric_oracles.cllr(llrs, labels), abs=1e-5)
    assert f"Cllr {results['cllr']:.3f}" in out
    for p in (0.01, 0.05):
        # The cost of the Bayes decision llr > log((1 - p) / p), counted ...
        actual = metric_oracles.act_dcf(llrs, labels, p)
        assert results[f"act_dcf_{p:g}"] == pytest.approx(actual, abs=1e-9)
        # ... is never below the minimum over all thresholds on the same LLRs.
        assert actual >= compute_min_dcf(llrs, labels, p)[0] - 1e-12


def test_uncalibrated_folder_reports_min_cllr_only(tmp_path, capsys, realspk):
    folder = tmp_path / "plain"
    shutil.copytree(imported_folder(), folder)
    results = evaluate_embedder(
        SpeakerEmbedder.from_folder(folder, fast=False),
        trial_subset(tmp_path / "t.txt"),
        realspk,
    )
    assert "min_cllr" in results and "cllr" not in results


def test_calibration_errors_name_the_file(tmp_path, realspk):
    embedder = SpeakerEmbedder.from_folder(imported_folder(), fast=False)

    def calibrate(trials):
        measured = trial_embeddings(embedder, trials, realspk)
        return fit_trial_calibration(
            measured.embeddings, measured.durations, trials, refused=measured.refused
        )

    lines = trial_subset(tmp_path / "t.txt", per_label=12).read_text().splitlines()
    one_class = tmp_path / "targets_only.txt"
    one_class.write_text("\n".join(line for line in lines if line[0] == "1") + "\n")
    with pytest.raises(ValueError, match="targets_only.txt: need both target"):
        calibrate(one_class)
    few = trial_subset(tmp_path / "few.txt", per_label=3)
    with pytest.raises(ValueError, match=r"few.txt: need at least 10 target"):
        calibrate(few)
    broken = tmp_path / "calibration.json"
    broken.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="calibration.json"):
        Calibration.load(broken)


def test_recipe_yaml_scores_with_a_calibration_file(
    calibrated_folder, tmp_path, realspk
):
    from speechbrain_eres2net.paths import hparams_file
    from speechbrain_eres2net.training.recipe import load_hparams

    hparams = load_hparams(
        hparams_file("verification.yaml"),
        {
            "data_folder": str(realspk),
            "verification_file": str(trial_subset(tmp_path / "t.txt", per_label=6)),
            "output_folder": str(tmp_path / "out"),
            "pretrained_folder": str(calibrated_folder),
            "calibration_file": str(calibrated_folder / CALIBRATION_FILE),
            "plots": False,
            "progress": False,
        },
    )
    results = run_verification(hparams)
    assert {"cllr", "act_dcf_0.01", "min_cllr"} <= results.keys()
