"""Tests for speaker verification metrics and scoring (against brute force)."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from speechbrain_pruning.speaker.metrics import (
    cosine_scores,
    det_curve,
    eer,
    evaluate,
    min_dcf,
    plot_det,
    read_trials,
    score_trials,
)


# --------------------------------------------------------------------------
# Brute-force references
# --------------------------------------------------------------------------
def brute_force_rates(scores, labels):
    """FNR/FPR at -inf, every unique score and +inf, computed directly."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    targets, nontargets = scores[labels == 1], scores[labels == 0]
    thresholds = np.concatenate(([-np.inf], np.unique(scores), [np.inf]))
    fnr = np.array([np.mean(targets < t) for t in thresholds])
    fpr = np.array([np.mean(nontargets >= t) for t in thresholds])
    return fnr, fpr, thresholds


def brute_force_eer(scores, labels):
    """Linear interpolation between the two points where FNR - FPR changes sign."""
    fnr, fpr, _ = brute_force_rates(scores, labels)
    for i in range(1, len(fnr)):
        d_prev, d_here = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
        if d_here == 0:
            return fnr[i]
        if d_prev < 0 < d_here:
            alpha = -d_prev / (d_here - d_prev)
            return fnr[i - 1] + alpha * (fnr[i] - fnr[i - 1])
    raise AssertionError("no crossing")


def brute_force_min_dcf(scores, labels, p_target, c_miss=1.0, c_fa=1.0):
    fnr, fpr, _ = brute_force_rates(scores, labels)
    dcf = c_miss * p_target * fnr + c_fa * (1 - p_target) * fpr
    return np.min(dcf) / min(c_miss * p_target, c_fa * (1 - p_target))


def random_scores(seed, n=2000, separation=1.5, target_fraction=0.3, decimals=1):
    """Gaussian targets vs non-targets, rounded so that many scores tie."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < target_fraction).astype(int)
    scores = rng.normal(0.0, 1.0, n) + separation * labels
    return np.round(scores, decimals), labels


# --------------------------------------------------------------------------
# EER / minDCF / DET
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "seed, separation, decimals", [(0, 1.5, 1), (1, 0.5, 2), (2, 3.0, 1), (3, 1.0, 6)]
)
def test_eer_and_min_dcf_match_brute_force(seed, separation, decimals):
    scores, labels = random_scores(seed, separation=separation, decimals=decimals)
    value, threshold = eer(scores, labels)
    assert abs(value - brute_force_eer(scores, labels)) < 1e-9
    assert scores.min() <= threshold <= scores.max()
    for p_target, c_miss, c_fa in [(0.01, 1, 1), (0.05, 1, 1), (0.5, 1, 1), (0.01, 10, 1)]:
        dcf, dcf_threshold = min_dcf(scores, labels, p_target, c_miss, c_fa)
        expected = brute_force_min_dcf(scores, labels, p_target, c_miss, c_fa)
        assert abs(dcf - expected) < 1e-12
        # The returned threshold really reaches that cost.
        fnr = np.mean(scores[labels == 1] < dcf_threshold)
        fpr = np.mean(scores[labels == 0] >= dcf_threshold)
        norm_ = min(c_miss * p_target, c_fa * (1 - p_target))
        cost = (c_miss * p_target * fnr + c_fa * (1 - p_target) * fpr) / norm_
        assert abs(cost - dcf) < 1e-12


def test_det_curve_matches_brute_force():
    scores, labels = random_scores(4, n=500)
    fpr, fnr, thresholds = det_curve(scores, labels)
    ref_fnr, ref_fpr, ref_thresholds = brute_force_rates(scores, labels)
    # The reference's -inf point equals the first (accept-all) point.
    np.testing.assert_array_equal(thresholds, ref_thresholds[1:])
    np.testing.assert_allclose(fnr, ref_fnr[1:], atol=1e-15)
    np.testing.assert_allclose(fpr, ref_fpr[1:], atol=1e-15)
    assert fnr[0] == 0 and fpr[0] == 1 and fnr[-1] == 1 and fpr[-1] == 0


def test_eer_lies_between_rates_at_crossing():
    scores, labels = random_scores(5, n=300)
    value, _ = eer(scores, labels)
    fnr, fpr, _ = brute_force_rates(scores, labels)
    i = int(np.argmax(fnr - fpr >= 0))
    assert min(fnr[i - 1], fpr[i]) - 1e-12 <= value <= max(fnr[i], fpr[i - 1]) + 1e-12


def test_perfect_separation():
    scores = np.array([5.0, 4.0, 3.5, 1.0, 0.0, -2.0])
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert eer(scores, labels) == (0.0, 3.5)
    assert min_dcf(scores, labels)[0] == 0.0
    assert min_dcf(scores, labels, p_target=0.5)[0] == 0.0


def test_identical_distributions_give_half():
    rng = np.random.default_rng(6)
    scores = rng.normal(size=20000)
    labels = rng.integers(0, 2, size=20000)
    assert abs(eer(scores, labels)[0] - 0.5) < 0.02
    # No threshold beats the trivial system by much.
    assert min_dcf(scores, labels, p_target=0.5)[0] > 0.95


def test_tiny_hand_computed_example():
    # Ascending thresholds 0.5, 0.6, 0.7, 0.8, 0.9, inf; targets 0.9, 0.8, 0.6.
    # At 0.7: FNR 1/3, FPR 1/2; at 0.8: FNR 1/3, FPR 0 -> crossing at 1/3.
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = [1, 1, 0, 1, 0]
    value, threshold = eer(scores, labels)
    assert value == pytest.approx(1 / 3, abs=1e-12)
    assert threshold == pytest.approx(0.7 + 0.1 / 3, abs=1e-12)
    # p = 0.5: cost = FNR + FPR, best 1/3 at threshold 0.8.
    assert min_dcf(scores, labels, p_target=0.5) == (pytest.approx(1 / 3), 0.8)
    # Exact crossing on a score: FNR = FPR = 0.5 at threshold 3.
    assert eer([4, 3, 2, 1], [1, 0, 1, 0]) == (0.5, 3.0)
    # Rejecting all trials is optimal when targets are rare and scores useless.
    assert min_dcf([1, 2], [1, 0], p_target=0.01) == (1.0, np.inf)


def test_ties_are_kept_on_the_same_side():
    # All four trials tie: the only operating points are accept/reject all.
    fpr, fnr, thresholds = det_curve([1.0, 1.0, 1.0, 1.0], [1, 0, 1, 0])
    assert fpr.tolist() == [1.0, 0.0] and fnr.tolist() == [0.0, 1.0]
    assert thresholds.tolist() == [1.0, np.inf]
    assert eer([1.0, 1.0, 1.0, 1.0], [1, 0, 1, 0])[0] == 0.5


def test_one_million_trials_matches_analytic_eer():
    x = 1.2
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=1_000_000)
    scores = rng.normal(size=labels.size) + 2 * x * labels
    value, threshold = eer(scores, labels)
    assert abs(value - norm.cdf(-x)) < 0.01
    assert abs(threshold - x) < 0.05


def test_evaluate_report():
    report = evaluate([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0], p_target=0.5)
    assert report["eer"] == pytest.approx(100 / 3)
    assert report["min_dcf"] == pytest.approx(1 / 3)
    assert report["min_dcf_threshold"] == 0.8
    assert report["eer_threshold"] == pytest.approx(0.7 + 0.1 / 3)
    assert (report["num_target"], report["num_nontarget"]) == (3, 2)


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([1.0, 2.0], [1, 1], "non-target"),
        ([1.0, 2.0], [0, 0], "target"),
        ([1.0, 2.0, 3.0], [1, 0], "length"),
        ([1.0, np.nan], [1, 0], "finite"),
        ([1.0, 2.0], [1, 2], "labels"),
    ],
)
def test_invalid_inputs_raise(scores, labels, match):
    for fn in (eer, min_dcf, det_curve):
        with pytest.raises(ValueError, match=match):
            fn(scores, labels)


# --------------------------------------------------------------------------
# Trial files
# --------------------------------------------------------------------------
def test_read_trials_voxceleb_format(tmp_path):
    path = tmp_path / "veri_test.txt"
    path.write_text(
        "1 id10270/5r0dWxy17C8/00001.wav id10270/x6uYqmx31kE/00001.wav\n"
        "\n"
        "0 id10270/5r0dWxy17C8/00001.wav id10300/ize_eiCFEg0/00003.wav\n",
        encoding="utf-8",
    )
    assert read_trials(path) == [
        (1, "id10270/5r0dWxy17C8/00001.wav", "id10270/x6uYqmx31kE/00001.wav"),
        (0, "id10270/5r0dWxy17C8/00001.wav", "id10300/ize_eiCFEg0/00003.wav"),
    ]


def test_read_trials_kaldi_format_and_non_ascii(tmp_path):
    path = tmp_path / "trials"
    path.write_text(
        "id1/vidé/ü1.wav id1/vidé/ü2.wav target\nid1/vidé/ü1.wav id2/x/3.wav nontarget\n",
        encoding="utf-8",
    )
    assert read_trials(str(path)) == [
        (1, "id1/vidé/ü1.wav", "id1/vidé/ü2.wav"),
        (0, "id1/vidé/ü1.wav", "id2/x/3.wav"),
    ]


@pytest.mark.parametrize("bad", ["2 a b", "a b maybe", "1 a", "1 a b c"])
def test_read_trials_bad_line_names_file_and_line(tmp_path, bad):
    path = tmp_path / "bad.txt"
    path.write_text(f"1 a b\n\n{bad}\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        read_trials(path)
    message = str(info.value)
    assert "line 3" in message and str(path) in message and bad in message


def test_read_trials_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.txt"):
        read_trials(path)


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------
def make_embeddings(seed, num_ids=40, dim=16):
    rng = np.random.default_rng(seed)
    ids = [f"id{i // 4}/vid/{i}.wav" for i in range(num_ids)]
    embeddings = {name: rng.normal(size=dim) for name in ids}
    trials = [
        (int(a[:4] == b[:4]), a, b)
        for a, b in zip(rng.choice(ids, 200), rng.choice(ids, 200))
    ]
    return embeddings, trials


def loop_cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_cosine_scores_numpy_and_torch():
    rng = np.random.default_rng(8)
    enrol, test = rng.normal(size=(10, 5)), rng.normal(size=(10, 5))
    expected = [loop_cosine(a, b) for a, b in zip(enrol, test)]
    np.testing.assert_allclose(cosine_scores(enrol, test), expected, atol=1e-12)
    got = cosine_scores(torch.from_numpy(enrol).float(), torch.from_numpy(test).float())
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_score_trials_without_cohort_is_cosine():
    embeddings, trials = make_embeddings(9)
    scores, labels = score_trials(embeddings, trials)
    expected = [loop_cosine(embeddings[e], embeddings[t]) for _, e, t in trials]
    np.testing.assert_allclose(scores, expected, atol=1e-12)
    assert labels.tolist() == [label for label, _, _ in trials]


def loop_as_norm(embeddings, trials, cohort, top_n):
    """Straightforward per-trial AS-norm (unbiased std of top-n cohort scores)."""

    def stats(x):
        best = sorted((loop_cosine(x, c) for c in cohort), reverse=True)[:top_n]
        return np.mean(best), np.std(best, ddof=1)

    out = []
    for _, e, t in trials:
        s = loop_cosine(embeddings[e], embeddings[t])
        (mu_e, sd_e), (mu_t, sd_t) = stats(embeddings[e]), stats(embeddings[t])
        out.append(0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t))
    return np.array(out)


def test_score_trials_as_norm_matches_loop():
    embeddings, trials = make_embeddings(10)
    cohort = np.random.default_rng(11).normal(size=(30, 16))
    scores, _ = score_trials(embeddings, trials, cohort=cohort, top_n=7)
    expected = loop_as_norm(embeddings, trials, cohort, top_n=7)
    np.testing.assert_allclose(scores, expected, atol=1e-9)
    # Float32 torch embeddings with singleton dims give the same scores.
    as_torch = {k: torch.tensor(v, dtype=torch.float32)[None] for k, v in embeddings.items()}
    scores32, _ = score_trials(as_torch, trials, cohort=torch.tensor(cohort), top_n=7)
    np.testing.assert_allclose(scores32, expected, atol=1e-4)


def test_score_trials_missing_id():
    embeddings, trials = make_embeddings(12)
    trials = trials[:5] + [(1, trials[0][1], "nobody/x/ü.wav")]
    with pytest.raises(KeyError, match="nobody/x/ü.wav.*trial index 5"):
        score_trials(embeddings, trials)


# --------------------------------------------------------------------------
# DET plot
# --------------------------------------------------------------------------
def test_plot_det_writes_png(tmp_path):
    curves = {"good": random_scores(13, separation=3.0), "bad": random_scores(14)}
    out = plot_det(curves, tmp_path / "plots" / "det.png", title="test")
    data = (tmp_path / "plots" / "det.png").read_bytes()
    assert out == tmp_path / "plots" / "det.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
