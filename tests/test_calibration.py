"""Calibration: Cllr/minCllr, actual DCF, logistic (QMF) fits and the file format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from speechbrain_eres2net.evaluation.calibration import (
    Calibration,
    act_dcf,
    bayes_threshold,
    cllr,
    fit_calibration,
    min_cllr,
    quality_measures,
)
from speechbrain_eres2net.evaluation.metrics import compute_min_dcf

SOURCE = "dev_trials.txt"


def gaussian_trials(n_per_class: int, mu: float, sigma: float, seed: int = 0):
    """Scores N(+mu, sigma) for targets and N(-mu, sigma) for non-targets.

    Their exact LLR is ``2 * mu * s / sigma**2``.
    """
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_per_class, int), np.zeros(n_per_class, int)]
    scores = np.where(labels == 1, mu, -mu) + sigma * rng.standard_normal(labels.size)
    return scores, labels


@pytest.fixture(scope="module")
def gaussian():
    mu, sigma = 1.0, 1.5
    scores, labels = gaussian_trials(100_000, mu, sigma)
    return scores, labels, 2 * mu / sigma**2


# --- Cllr / minCllr ---------------------------------------------------------


def test_cllr_of_uninformative_system_is_one():
    labels = np.r_[np.ones(7, int), np.zeros(3, int)]
    assert cllr(np.zeros(10), labels) == 1.0


def test_cllr_hand_computed():
    # 0.5 * mean(log2(1 + e^-2), log2(1 + e^-1)) + 0.5 * log2(1 + e^-3)
    expected = 0.5 * (
        0.5 * (math.log2(1 + math.exp(-2)) + math.log2(1 + math.exp(-1)))
        + math.log2(1 + math.exp(-3))
    )
    assert cllr([2.0, 1.0, -3.0], [1, 1, 0]) == pytest.approx(expected, abs=1e-12)


def test_cllr_is_stable_for_huge_llrs():
    # Naive log(1 + exp(x)) overflows at x ~ 710.
    assert cllr([1e4, -1e4], [1, 0]) == 0.0
    assert cllr([-1e4, 1e4], [1, 0]) == pytest.approx(1e4 / math.log(2))


def test_cllr_of_exact_llrs_matches_min_cllr(gaussian):
    scores, labels, w = gaussian
    llrs = w * scores
    actual = cllr(llrs, labels)
    minimum = min_cllr(scores, labels)
    assert actual < 1.0
    assert minimum <= actual
    assert actual == pytest.approx(minimum, abs=0.01)
    # minCllr depends only on the order of the scores.
    assert min_cllr(np.exp(scores), labels) == pytest.approx(minimum, abs=1e-12)


@pytest.mark.parametrize("distort", [lambda x: 3 * x, lambda x: x + 2.0])
def test_miscalibrated_llrs_cost_more(gaussian, distort):
    scores, labels, w = gaussian
    llrs = w * scores
    assert cllr(distort(llrs), labels) > cllr(llrs, labels) + 0.02


def test_min_cllr_by_hand():
    # PAV on labels [0, 1, 0, 1] -> posteriors [0, .5, .5, 1]; the prior is
    # 0.5, so LLRs are [-inf, 0, 0, inf]: each class has one trial costing
    # log2(2) = 1 bit and one costing 0.
    assert min_cllr([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1]) == pytest.approx(0.5, abs=1e-12)


def test_min_cllr_by_hand_unequal_prior():
    # Labels [0, 1, 0, 1, 1] -> posteriors [0, .5, .5, 1, 1]; prior log-odds
    # log(3/2), so the pooled pair has LLR -log(1.5).
    expected = 0.5 * (math.log2(2.5) / 3 + math.log2(5 / 3) / 2)
    got = min_cllr([1.0, 2.0, 3.0, 4.0, 5.0], [0, 1, 0, 1, 1])
    assert got == pytest.approx(expected, abs=1e-12)


def test_min_cllr_separable_is_zero():
    assert min_cllr([0.1, 0.2, 0.3, 0.7, 0.8], [0, 0, 0, 1, 1]) == 0.0


def test_min_cllr_pools_tied_scores():
    # The tied pair at 3 must share one posterior (0.5): ordering it as
    # non-target then target would make the list look separable (0 bits).
    assert min_cllr([3.0, 3.0, 1.0, 5.0], [0, 1, 0, 1]) == pytest.approx(0.5)
    assert min_cllr([3.0, 3.0, 1.0, 5.0], [1, 0, 0, 1]) == pytest.approx(0.5)
    assert min_cllr([2.0, 2.0], [0, 1]) == pytest.approx(1.0)


def test_min_cllr_never_nan_with_extreme_blocks():
    rng = np.random.default_rng(3)
    scores = np.r_[rng.normal(-5, 1, 500), rng.normal(5, 1, 50)]
    labels = np.r_[np.zeros(500, int), np.ones(50, int)]
    labels[0] = 1  # one outlier target among the lowest scores
    value = min_cllr(scores, labels)
    assert np.isfinite(value)
    assert 0.0 < value < 1.0


# --- Bayes decisions ----------------------------------------------------------


def test_bayes_threshold():
    assert bayes_threshold(0.01) == math.log(99)
    assert bayes_threshold(0.5) == 0.0
    assert bayes_threshold(0.5, c_miss=10.0, c_fa=1.0) == pytest.approx(-math.log(10))
    with pytest.raises(ValueError):
        bayes_threshold(1.0)


def test_act_dcf_by_hand():
    llrs = [-2.0, 0.5, 1.0, -1.0, 3.0, -3.0]
    labels = [1, 1, 1, 0, 0, 0]
    # Threshold 0: one miss of 3 targets and one false alarm of 3 non-targets.
    # (0.5 * 1/3 + 0.5 * 1/3) / min(0.5, 0.5)
    assert act_dcf(llrs, labels, p_target=0.5) == pytest.approx(2 / 3)
    # Threshold log(99) rejects every trial: the cost of rejecting everything.
    assert act_dcf(llrs, labels, p_target=0.01) == pytest.approx(1.0)
    # c_miss = 3, p = 0.5: threshold -log 3 ~ -1.10 accepts -1.0 (false alarm),
    # misses -2: (3 * .5 * 1/3 + .5 * 2/3) / min(1.5, .5) = (0.5 + 1/3) / 0.5
    assert act_dcf(llrs, labels, p_target=0.5, c_miss=3.0) == pytest.approx(5 / 3)


def test_act_dcf_accepts_strictly_above_threshold():
    # An LLR equal to the threshold is rejected: one miss of one target.
    assert act_dcf([0.0, -1.0], [1, 0], p_target=0.5) == pytest.approx(1.0)


@pytest.mark.parametrize("p_target", [0.01, 0.05, 0.5])
def test_act_dcf_not_below_min_dcf(p_target):
    rng = np.random.default_rng(1)
    for _ in range(5):
        labels = (rng.random(3000) < 0.3).astype(int)
        llrs = rng.normal(0, 2, labels.size) + 2.0 * labels + rng.normal(0, 2)
        actual = act_dcf(llrs, labels, p_target)
        minimum = compute_min_dcf(llrs, labels, p_target)[0]
        assert actual >= minimum - 1e-12


def test_act_dcf_of_exact_llrs_is_near_min_dcf(gaussian):
    scores, labels, w = gaussian
    llrs = w * scores
    for p in (0.05, 0.5):
        minimum = compute_min_dcf(llrs, labels, p)[0]
        assert act_dcf(llrs, labels, p) == pytest.approx(minimum, abs=0.01)
        assert act_dcf(llrs + 3.0, labels, p) > minimum + 0.05


# --- fit_calibration ------------------------------------------------------------


def test_fit_recovers_exact_llr(gaussian):
    scores, labels, w = gaussian
    cal = fit_calibration(scores, labels, p_target=0.5)
    assert cal.score_weight == pytest.approx(w, rel=0.03)
    assert abs(cal.bias) < 0.02
    assert cal.quality_names == ()
    assert cal.fitted_on["n_target"] == 100_000
    assert cal.fitted_on["n_nontarget"] == 100_000
    assert cal.fitted_on["p_target"] == 0.5


def test_fit_inverts_affine_map(gaussian):
    scores, labels, w = gaussian
    raw = 0.1 * scores + 0.3  # llr = w * (raw - 0.3) / 0.1
    cal = fit_calibration(raw, labels)
    assert cal.score_weight == pytest.approx(w / 0.1, rel=0.03)
    assert cal.bias == pytest.approx(-3.0 * w, rel=0.03)
    np.testing.assert_allclose(cal.llr(raw[:5]), w * scores[:5], atol=0.05)


def test_fit_with_low_prior_is_still_calibrated(gaussian):
    # Well-specified model: the prior weighting hardly changes the map.
    scores, labels, w = gaussian
    cal = fit_calibration(scores, labels, p_target=0.05)
    assert cal.score_weight == pytest.approx(w, rel=0.05)
    assert abs(cal.bias) < 0.05


def test_fit_is_not_disturbed_by_class_imbalance():
    # 20 non-targets per target: the objective weights classes, not trials.
    rng = np.random.default_rng(4)
    labels = np.r_[np.ones(5_000, int), np.zeros(100_000, int)]
    scores = np.where(labels == 1, 1.0, -1.0) + rng.standard_normal(labels.size)
    cal = fit_calibration(scores, labels)
    assert cal.score_weight == pytest.approx(2.0, rel=0.05)
    assert abs(cal.bias) < 0.05


def test_fit_on_separable_data_stays_finite():
    scores = np.r_[np.linspace(-2, -1, 20), np.linspace(1, 2, 20)]
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    cal = fit_calibration(scores, labels)
    assert np.isfinite([cal.score_weight, cal.bias]).all()
    assert cal.score_weight > 0
    assert cllr(cal.llr(scores), labels) < 0.01


def duration_trials(n: int, seed: int):
    """Trials whose scores shift down and compress for short speech.

    Both classes' scores move down by ``0.8 * log(5 / d_min)`` and the
    target/non-target separation shrinks for short trials, as with cosine
    scores of short utterances, so the best threshold depends on duration.
    """
    rng = np.random.default_rng(seed)
    dur_e = np.exp(rng.uniform(np.log(1.0), np.log(30.0), n))
    dur_t = np.exp(rng.uniform(np.log(1.0), np.log(30.0), n))
    d_min = np.minimum(dur_e, dur_t)
    labels = (rng.random(n) < 0.5).astype(int)
    separation = 0.6 + 0.4 * np.log(d_min) / np.log(30.0)
    scores = (
        np.where(labels == 1, separation, -separation)
        + 0.8 * np.log(d_min / 5.0)
        + 0.7 * rng.standard_normal(n)
    )
    return scores, labels, dur_e, dur_t


def test_quality_measures_improve_held_out_cllr():
    train = duration_trials(20_000, seed=10)
    test = duration_trials(20_000, seed=11)
    q_train, names = quality_measures(train[2], train[3])
    q_test, _ = quality_measures(test[2], test[3])
    assert names == ("log_dur_min", "log_dur_max")

    plain = fit_calibration(train[0], train[1], source=SOURCE)
    qmf = fit_calibration(
        train[0], train[1], quality=q_train, quality_names=names, source=SOURCE
    )
    cllr_plain = cllr(plain.llr(test[0]), test[1])
    cllr_qmf = cllr(qmf.llr(test[0], quality=q_test), test[1])
    assert cllr_qmf < cllr_plain - 0.05
    # The duration shift lowers scores of short trials: the fit compensates
    # with a negative weight on the shorter side's log-duration.
    assert qmf.quality_weights[0] < 0
    assert qmf.fitted_on["quality_names"] == list(names)
    with pytest.raises(ValueError, match="quality"):
        qmf.llr(test[0])


def test_quality_measures_columns():
    q, names = quality_measures(
        [2.0, 8.0],
        [4.0, 1.0],
        norms_enrol=[10.0, 20.0],
        norms_test=[15.0, 5.0],
    )
    assert names == ("log_dur_min", "log_dur_max", "norm_min", "norm_max")
    np.testing.assert_allclose(
        q,
        [
            [math.log(2), math.log(4), 10.0, 15.0],
            [math.log(1), math.log(8), 5.0, 20.0],
        ],
    )
    with pytest.raises(ValueError, match="both"):
        quality_measures([1.0], [2.0], norms_enrol=[1.0])
    with pytest.raises(ValueError, match="positive"):
        quality_measures([0.0], [2.0])
    with pytest.raises(ValueError, match="shape"):
        quality_measures([1.0, 2.0], [2.0])


# --- errors -----------------------------------------------------------------------


def test_fit_errors_name_the_source():
    scores, labels = gaussian_trials(50, 1.0, 1.0)
    with pytest.raises(ValueError, match=f"^{SOURCE}: need both target"):
        fit_calibration(scores, np.ones_like(labels), source=SOURCE)
    with pytest.raises(ValueError, match=f"^{SOURCE}: need at least 10 target"):
        fit_calibration(scores[45:60], labels[45:60], source=SOURCE)
    bad = scores.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=f"^{SOURCE}: scores contain NaN"):
        fit_calibration(bad, labels, source=SOURCE)
    with pytest.raises(ValueError, match=f"^{SOURCE}: quality must have shape"):
        fit_calibration(
            scores,
            labels,
            quality=np.zeros((labels.size, 2)),
            quality_names=("log_dur_min",),
            source=SOURCE,
        )
    quality = np.zeros((labels.size, 1))
    quality[0, 0] = np.inf
    with pytest.raises(ValueError, match=f"^{SOURCE}: quality contains NaN"):
        fit_calibration(
            scores, labels, quality=quality, quality_names=("q",), source=SOURCE
        )
    with pytest.raises(ValueError, match=f"^{SOURCE}: p_target"):
        fit_calibration(scores, labels, p_target=0.0, source=SOURCE)
    # The threshold is a keyword argument.
    fit_calibration(scores[45:60], labels[45:60], min_trials_per_class=5)


def test_metric_errors():
    with pytest.raises(ValueError, match="both target"):
        cllr([0.0, 1.0], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        min_cllr([0.0, np.nan], [1, 0])
    with pytest.raises(ValueError, match="p_target"):
        act_dcf([0.0, 1.0], [1, 0], p_target=0.0)


# --- file format ------------------------------------------------------------------


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    cal = Calibration(
        score_weight=12.5,
        bias=-3.25,
        quality_weights=(-0.4, 0.1),
        quality_names=("log_dur_min", "log_dur_max"),
        fitted_on={"trials": SOURCE, "n_target": 10, "n_nontarget": 90},
    )
    path = tmp_path / "calibration.json"
    cal.save(path)
    data = json.loads(path.read_text())
    assert data["format"] == "speechbrain-eres2net-calibration"
    assert data["version"] == 1
    assert data["fitted_on"]["trials"] == SOURCE
    loaded = Calibration.load(path)
    assert loaded == cal
    scores = rng.normal(size=20)
    quality = rng.normal(size=(20, 2))
    np.testing.assert_array_equal(loaded.llr(scores, quality), cal.llr(scores, quality))
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]


def test_fitted_calibration_round_trip(tmp_path, gaussian):
    scores, labels, _ = gaussian
    cal = fit_calibration(scores, labels, fitted_on={"trials": SOURCE})
    path = tmp_path / "cal.json"
    cal.save(path)
    loaded = Calibration.load(path)
    np.testing.assert_array_equal(loaded.llr(scores), cal.llr(scores))
    assert loaded.fitted_on["trials"] == SOURCE
    assert loaded.fitted_on["n_target"] == 100_000


@pytest.mark.parametrize(
    "content",
    [
        "not json at all {",
        b"\xff\xfe\x00binary",
        json.dumps({"format": "something-else", "version": 1}),
        json.dumps({"format": "speechbrain-eres2net-calibration", "version": 1}),
        json.dumps(
            {
                "format": "speechbrain-eres2net-calibration",
                "version": 1,
                "score_weight": "a lot",
                "bias": 0.0,
            }
        ),
        json.dumps([1, 2, 3]),
    ],
)
def test_load_rejects_other_files(tmp_path, content):
    path = tmp_path / "bad_calibration.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match="bad_calibration.json") as info:
        Calibration.load(path)
    assert "\n" not in str(info.value)


def test_load_rejects_unknown_version(tmp_path):
    path = tmp_path / "future.json"
    data = Calibration(1.0, 0.0).to_dict()
    data["version"] = 2
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"^\S*future.json: .*version 2") as info:
        Calibration.load(path)
    assert "\n" not in str(info.value)


def test_llr_checks_quality_shape():
    cal = Calibration(1.0, 0.0, (1.0,), ("q",))
    with pytest.raises(ValueError, match="shape"):
        cal.llr([1.0, 2.0], quality=np.zeros((2, 2)))
    with pytest.raises(ValueError):
        Calibration(1.0, 0.0, (1.0, 2.0), ("q",))
