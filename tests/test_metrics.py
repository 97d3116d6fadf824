"""EER, minDCF and AS-norm: hand-computed cases, SpeechBrain parity, scale."""

from __future__ import annotations

import time
import tracemalloc

import metric_oracles
import numpy as np
import pytest
import torch
from speechbrain.utils import metric_stats

from speechbrain_eres2net.evaluation.metrics import (
    asnorm,
    cohort_stats,
    compute_eer,
    compute_min_dcf,
    error_curve,
    verification_metrics,
)


def trials(target, nontarget):
    scores = np.concatenate([target, nontarget]).astype(float)
    labels = np.r_[np.ones(len(target), int), np.zeros(len(nontarget), int)]
    return scores, labels


@pytest.mark.parametrize(
    ("target", "nontarget", "eer"),
    [
        ([0.9, 0.8], [0.2, 0.1], 0.0),  # separable
        ([0.1, 0.2], [0.8, 0.9], 1.0),  # every decision wrong
        ([0.5, 0.5], [0.5, 0.5], 0.5),  # all tied: only the two trivial systems
        ([1.0], [1.0], 0.5),  # one tie: the straight segment crosses at 0.5
        # Points (p_miss, p_fa) = (1/3, 1/2) then (1/3, 0): crossing at 1/3.
        ([1.0, 2.0, 3.0], [1.5, 0.0], 1 / 3),
        # A point with equal rates: (1/3, 1/3) at threshold 0.7.
        ([0.9, 0.8, 0.7], [0.2, 0.1, 0.75], 1 / 3),
        # Tie at 2 jumps (1/4, 1/2) -> (1/2, 0): p_fa - p_miss = 1/4 then -1/2,
        # crossing 1/3 of the way: p_miss = 1/4 + (1/3)(1/4) = 1/3.
        ([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 0.0, 0.0], 1 / 3),
    ],
)
def test_eer_hand_cases(target, nontarget, eer):
    assert compute_eer(*trials(target, nontarget))[0] == pytest.approx(eer)
    # The brute-force oracle of the other tests gives the same known answers.
    assert metric_oracles.eer(*trials(target, nontarget)) == pytest.approx(eer)


def test_eer_threshold_separates_at_the_crossing():
    eer, threshold = compute_eer(*trials([0.9, 0.8, 0.7], [0.2, 0.1, 0.75]))
    # Accepting scores > 0.7 misses 1 of 3 targets and accepts 1 of 3 impostors.
    assert threshold == 0.7


def test_min_dcf_hand_cases():
    scores, labels = trials([0.9, 0.3], [0.7, 0.2])
    # Operating points (p_miss, p_fa): (0,1) (0,.5) (.5,.5) (.5,0) (1,0).
    # p_target 0.01: best is (.5, 0): 0.005 / min(0.01, 0.99) = 0.5.
    assert compute_min_dcf(scores, labels, p_target=0.01) == (0.5, 0.7)
    # p_target 0.5: costs .5, .25, .5, .25, .5 -> min .25 / .5 = 0.5.
    assert compute_min_dcf(scores, labels, p_target=0.5)[0] == pytest.approx(0.5)
    # c_miss 10 at p_target 0.5: (0, .5) costs .25, normaliser .5 -> 0.5;
    # (.5, 0) would cost 2.5.
    dcf, threshold = compute_min_dcf(scores, labels, p_target=0.5, c_miss=10)
    assert (dcf, threshold) == (pytest.approx(0.5), 0.2)
    assert compute_min_dcf(*trials([2.0], [1.0]))[0] == 0.0
    # A useless system is no better than the trivial one: normalised 1.
    assert compute_min_dcf(*trials([0.1], [0.9]))[0] == pytest.approx(1.0)


def test_error_curve_is_monotone_and_spans_trivial_systems():
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=500), 1)  # many ties
    labels = rng.integers(0, 2, 500)
    curve = error_curve(scores, labels)
    assert np.all(np.diff(curve.thresholds) > 0)
    assert np.all(np.diff(curve.p_miss) >= 0) and np.all(np.diff(curve.p_fa) <= 0)
    assert (curve.p_miss[0], curve.p_fa[0]) == (0.0, 1.0)
    assert (curve.p_miss[-1], curve.p_fa[-1]) == (1.0, 0.0)
    # Each point is the brute-force count at its threshold.
    for t, pm, pf in list(zip(*curve))[1::7]:
        assert pm == np.mean(scores[labels == 1] <= t)
        assert pf == np.mean(scores[labels == 0] > t)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_speechbrain(seed):
    rng = np.random.default_rng(seed)
    n_target, n_nontarget = int(rng.integers(50, 300)), int(rng.integers(200, 800))
    target = rng.normal(1.0, 1.0, n_target)
    nontarget = rng.normal(0.0, 1.0, n_nontarget)
    if seed == 4:  # heavy ties
        target, nontarget = np.round(target, 1), np.round(nontarget, 1)
    scores, labels = trials(target, nontarget)
    pos = torch.tensor(target, dtype=torch.float64)
    neg = torch.tensor(nontarget, dtype=torch.float64)

    # SpeechBrain's minDCF is the unnormalised minimum over the same
    # operating points (its mid-point thresholds add no new ones).
    for p in (0.01, 0.05):
        ours = compute_min_dcf(scores, labels, p_target=p)[0]
        theirs = metric_stats.minDCF(pos, neg, p_target=p)[0] / min(p, 1 - p)
        assert ours == pytest.approx(theirs, rel=1e-6, abs=1e-9)

    # SpeechBrain's EER is (p_miss + p_fa) / 2 at the grid point where the
    # two are closest; ours interpolates between the two points around the
    # crossing. Both lie between the rates of those points, whose gap is at
    # most one step of the staircase (k / n for k tied trials), so they
    # differ by at most one step.
    step = max(
        np.unique(target, return_counts=True)[1].max() / n_target,
        np.unique(nontarget, return_counts=True)[1].max() / n_nontarget,
    )
    ours = compute_eer(scores, labels)[0]
    theirs = metric_stats.EER(pos, neg)[0]
    assert abs(ours - theirs) <= step + 1e-12
    assert 0.2 < ours < 0.45  # d' = 1: EER near 31 %


@pytest.mark.parametrize("decimals", [None, 1])
def test_agrees_with_brute_force(decimals):
    """Every threshold tried by counting, on tie-free and heavily tied scores."""
    rng = np.random.default_rng(7)
    scores, labels = trials(rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 140))
    if decimals is not None:
        scores = np.round(scores, decimals)
    metrics = verification_metrics(scores, labels, p_targets=(0.01, 0.05, 0.5))
    assert metrics["eer"] == pytest.approx(metric_oracles.eer(scores, labels))
    assert compute_eer(scores, labels)[0] == pytest.approx(metrics["eer"])
    for p in (0.01, 0.05, 0.5):
        expected = metric_oracles.min_dcf(scores, labels, p)
        assert metrics[f"min_dcf_{p:g}"] == pytest.approx(expected)
        assert compute_min_dcf(scores, labels, p)[0] == pytest.approx(expected)
    expected = metric_oracles.min_dcf(scores, labels, 0.05, c_miss=10, c_fa=2)
    dcf, threshold = compute_min_dcf(scores, labels, 0.05, c_miss=10, c_fa=2)
    assert dcf == pytest.approx(expected)
    # The returned threshold reaches it (accepting scores above it).
    p_miss = np.mean(scores[labels == 1] <= threshold)
    p_fa = np.mean(scores[labels == 0] > threshold)
    cost = (10 * 0.05 * p_miss + 2 * 0.95 * p_fa) / min(10 * 0.05, 2 * 0.95)
    assert cost == pytest.approx(expected)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="same length"):
        compute_eer([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="both target"):
        compute_eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="labels must be 0"):
        compute_eer([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        compute_eer([np.nan, 0.2], [1, 0])
    with pytest.raises(ValueError, match="p_target"):
        compute_min_dcf([0.1, 0.2], [1, 0], p_target=1.5)


@pytest.mark.slow
def test_ten_million_trials_fast_and_small():
    rng = np.random.default_rng(0)
    n = 10_000_000
    labels = rng.random(n) < 0.1
    scores = rng.normal(size=n)
    scores[labels] += 2.0
    tracemalloc.start()
    start = time.perf_counter()
    metrics = verification_metrics(scores, labels)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"10M trials: {elapsed:.1f} s, peak {peak / 2**20:.0f} MiB")
    assert peak < 1024**3
    assert elapsed < 30  # ~3 s on an idle 2-core machine; CI machines are noisy
    # d' = 2 between two unit Gaussians: EER = Phi(-1) = 15.87 %.
    assert metrics["eer"] == pytest.approx(0.1587, abs=0.002)


def test_cohort_stats_top_k():
    cohort = np.array([[0.1, 0.5, 0.3, 0.9], [1.0, 2.0, 3.0, 4.0]])
    mean, std = cohort_stats(cohort, top_k=3)
    np.testing.assert_allclose(mean, [(0.9 + 0.5 + 0.3) / 3, 3.0])
    np.testing.assert_allclose(std, [np.std([0.9, 0.5, 0.3]), np.std([2, 3, 4])])
    # top_k above the cohort size uses the whole cohort.
    np.testing.assert_allclose(cohort_stats(cohort, top_k=100)[0], cohort.mean(1))
    with pytest.raises(ValueError, match="top_k"):
        cohort_stats(cohort, top_k=0)


def test_asnorm_hand_case_and_invariances():
    # Two utterances against a 4-member cohort, top 2 of each row:
    #   u0: 0.9, 0.5 -> mean 0.7, std 0.2;   u1: 0.4, 0.2 -> mean 0.3, std 0.1.
    cohort_scores = np.array([[0.1, 0.5, 0.3, 0.9], [0.4, -0.2, 0.0, 0.2]])
    mean, std = cohort_stats(cohort_scores, top_k=2)
    np.testing.assert_allclose(mean, [0.7, 0.3])
    np.testing.assert_allclose(std, [0.2, 0.1])
    enrol, test = np.array([0, 1]), np.array([1, 0])
    scores = np.array([0.5, 0.9])
    # Trial 0 (u0, u1), score 0.5: ((0.5 - 0.7) / 0.2 + (0.5 - 0.3) / 0.1) / 2
    #   = (-1 + 2) / 2 = 0.5.
    # Trial 1 (u1, u0), score 0.9: ((0.9 - 0.3) / 0.1 + (0.9 - 0.7) / 0.2) / 2
    #   = (6 + 1) / 2 = 3.5.
    normed = asnorm(scores, (mean[enrol], std[enrol]), (mean[test], std[test]))
    np.testing.assert_allclose(normed, [0.5, 3.5])
    # Symmetric: swapping the sides of a trial changes nothing.
    swapped = asnorm(scores, (mean[test], std[test]), (mean[enrol], std[enrol]))
    np.testing.assert_allclose(swapped, normed)
    # A shift shared by a side's trial and cohort scores cancels, and so does
    # a positive scale of every score (cohort included).
    shift = asnorm(
        scores + 7.0, (mean[enrol] + 7.0, std[enrol]), (mean[test] + 7.0, std[test])
    )
    np.testing.assert_allclose(shift, normed)
    m3, s3 = cohort_stats(3.0 * cohort_scores, top_k=2)
    scaled = asnorm(3.0 * scores, (m3[enrol], s3[enrol]), (m3[test], s3[test]))
    np.testing.assert_allclose(scaled, normed)
    with pytest.raises(ValueError, match="one per trial"):
        asnorm(scores, (mean[:1], std[:1]), (mean[test], std[test]))


def test_asnorm_removes_per_utterance_offsets():
    # Each utterance raises all its scores (against trials and cohort alike)
    # by its own offset, as channel or duration effects do.
    rng = np.random.default_rng(0)
    n_utts, n_trials, n_cohort = 200, 4000, 300
    offset = rng.normal(0.0, 1.0, n_utts)
    e = rng.integers(0, n_utts, n_trials)
    t = rng.integers(0, n_utts, n_trials)
    labels = rng.integers(0, 2, n_trials)
    raw = labels * 1.5 + offset[e] + offset[t] + rng.normal(0, 0.5, n_trials)
    cohort_scores = offset[:, None] + rng.normal(0, 0.5, (n_utts, n_cohort))
    mean, std = cohort_stats(cohort_scores, top_k=50)
    normed = asnorm(raw, (mean[e], std[e]), (mean[t], std[t]))
    raw_eer, norm_eer = compute_eer(raw, labels)[0], compute_eer(normed, labels)[0]
    print(f"EER raw {raw_eer:.3f} -> AS-norm {norm_eer:.3f}")
    # Each side's cohort mean removes that side's offset from its half of
    # the symmetric average, so half of the offset variance goes: here the
    # EER falls from 30 % to 20 % (scores without offsets: 7 %).
    assert norm_eer < 0.75 * raw_eer
