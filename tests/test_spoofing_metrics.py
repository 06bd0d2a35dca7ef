"""Tests for the ASVspoof5 countermeasure metrics (against brute force)."""

import logging
import math

import numpy as np
import pytest
from scipy.stats import norm

from speechbrain_pruning.detection import eer
from speechbrain_pruning.spoofing.metrics import (
    bayes_threshold,
    breakdown,
    breakdown_table,
    cllr,
    cm_act_dcf,
    cm_eer,
    cm_min_dcf,
    evaluate_cm,
    min_cllr,
    read_scores,
    write_scores,
)

DEFAULT_COSTS = (0.05, 1.0, 10.0)


# --------------------------------------------------------------------------
# Brute-force references
# --------------------------------------------------------------------------
def random_scores(seed, n=2000, separation=1.5, bona_fraction=0.4, decimals=1):
    """Gaussian bona fide vs spoof scores, rounded so that many scores tie."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < bona_fraction).astype(int)
    scores = rng.normal(0.0, 1.0, n) + separation * labels
    return np.round(scores, decimals), labels


def brute_rates(scores, labels, threshold):
    """(P_miss, P_fa) at one threshold, computed directly."""
    bona, spoof = scores[labels == 1], scores[labels == 0]
    return np.mean(bona < threshold), np.mean(spoof >= threshold)


def brute_dcf(scores, labels, threshold, p_spoof, c_miss, c_fa):
    p_miss, p_fa = brute_rates(scores, labels, threshold)
    cost = c_miss * (1 - p_spoof) * p_miss + c_fa * p_spoof * p_fa
    return cost / min(c_miss * (1 - p_spoof), c_fa * p_spoof)


def brute_min_dcf(scores, labels, p_spoof, c_miss, c_fa):
    """Loop over every candidate threshold (each unique score and +-inf)."""
    candidates = np.concatenate(([-np.inf], np.unique(scores), [np.inf]))
    return min(brute_dcf(scores, labels, t, p_spoof, c_miss, c_fa) for t in candidates)


def brute_act_dcf(scores, labels, p_spoof, c_miss, c_fa):
    threshold = -math.log(c_miss * (1 - p_spoof) / (c_fa * p_spoof))
    return brute_dcf(scores, labels, threshold, p_spoof, c_miss, c_fa)


def brute_cllr(scores, labels):
    """Direct formula, term by term with math.log1p/exp (small scores only)."""
    bona = [math.log2(1 + math.exp(-s)) for s in scores[labels == 1]]
    spoof = [math.log2(1 + math.exp(s)) for s in scores[labels == 0]]
    return 0.5 * (np.mean(bona) + np.mean(spoof))


def brute_eer(scores, labels):
    """Linear interpolation between the two points where P_miss - P_fa changes sign."""
    thresholds = np.concatenate(([-np.inf], np.unique(scores), [np.inf]))
    rates = [brute_rates(scores, labels, t) for t in thresholds]
    for (miss0, fa0), (miss1, fa1) in zip(rates, rates[1:]):
        d0, d1 = miss0 - fa0, miss1 - fa1
        if d1 == 0:
            return miss1
        if d0 < 0 < d1:
            return miss0 + (-d0 / (d1 - d0)) * (miss1 - miss0)
    raise AssertionError("no crossing")


def brute_pav_min_cllr(scores, labels):
    """Textbook PAV on tied-score bins: pool the first violating pair, repeat."""
    values = np.unique(scores)
    bins = [[int(np.sum(labels[scores == v])), int(np.sum(scores == v))] for v in values]
    merged = True
    while merged:
        merged = False
        for k in range(len(bins) - 1):
            (b0, w0), (b1, w1) = bins[k], bins[k + 1]
            if b0 / w0 >= b1 / w1:
                bins[k : k + 2] = [[b0 + b1, w0 + w1]]
                merged = True
                break
    num_bona, num_spoof = int(labels.sum()), int((1 - labels).sum())
    prior_log_odds = math.log(num_bona / num_spoof)
    bona_cost = spoof_cost = 0.0
    for b, w in bins:
        s = w - b
        if b and s:
            llr = math.log(b / s) - prior_log_odds
            bona_cost += b * math.log2(1 + math.exp(-llr))
            spoof_cost += s * math.log2(1 + math.exp(llr))
    return 0.5 * (bona_cost / num_bona + spoof_cost / num_spoof)


# --------------------------------------------------------------------------
# EER, minDCF, actDCF, Cllr against brute force
# --------------------------------------------------------------------------
SEEDS = [(0, 1.5, 1), (1, 0.5, 2), (2, 3.0, 1), (3, 1.0, 6), (4, -0.5, 1)]
COSTS = [DEFAULT_COSTS, (0.5, 1.0, 1.0), (0.05, 1.0, 1.0), (0.3, 2.0, 5.0)]


@pytest.mark.parametrize("seed, separation, decimals", SEEDS)
def test_eer_matches_brute_force_and_verification(seed, separation, decimals):
    scores, labels = random_scores(seed, separation=separation, decimals=decimals)
    value, threshold = cm_eer(scores, labels)
    assert value == pytest.approx(brute_eer(scores, labels), abs=1e-12)
    assert (value, threshold) == eer(scores, labels)
    assert scores.min() <= threshold <= scores.max()


@pytest.mark.parametrize("seed, separation, decimals", SEEDS)
@pytest.mark.parametrize("p_spoof, c_miss, c_fa", COSTS)
def test_min_dcf_matches_brute_force(seed, separation, decimals, p_spoof, c_miss, c_fa):
    scores, labels = random_scores(seed, separation=separation, decimals=decimals)
    value, threshold = cm_min_dcf(scores, labels, p_spoof, c_miss, c_fa)
    expected = brute_min_dcf(scores, labels, p_spoof, c_miss, c_fa)
    assert value == pytest.approx(expected, abs=1e-12)
    # The returned threshold really reaches that cost.
    reached = brute_dcf(scores, labels, threshold, p_spoof, c_miss, c_fa)
    assert reached == pytest.approx(value, abs=1e-12)
    assert value <= 1.0


@pytest.mark.parametrize("seed, separation, decimals", SEEDS)
@pytest.mark.parametrize("p_spoof, c_miss, c_fa", COSTS)
def test_act_dcf_matches_brute_force(seed, separation, decimals, p_spoof, c_miss, c_fa):
    scores, labels = random_scores(seed, separation=separation, decimals=decimals)
    value = cm_act_dcf(scores, labels, p_spoof, c_miss, c_fa)
    assert value == pytest.approx(brute_act_dcf(scores, labels, p_spoof, c_miss, c_fa), abs=1e-12)
    assert value >= cm_min_dcf(scores, labels, p_spoof, c_miss, c_fa)[0] - 1e-12


@pytest.mark.parametrize("seed, separation, decimals", SEEDS)
def test_cllr_and_min_cllr_match_brute_force(seed, separation, decimals):
    scores, labels = random_scores(seed, separation=separation, decimals=decimals)
    assert cllr(scores, labels) == pytest.approx(brute_cllr(scores, labels), abs=1e-12)
    small = scores[:400], labels[:400]
    assert min_cllr(*small) == pytest.approx(brute_pav_min_cllr(*small), abs=1e-12)
    assert min_cllr(scores, labels) <= cllr(scores, labels) + 1e-12


def test_min_cllr_with_spoof_cluster_above_bona_fide():
    # Rising bona fide rate, then a block of spoofs on top: long PAV cascades.
    rng = np.random.default_rng(3)
    scores = np.arange(300.0)
    labels = (rng.random(300) < np.linspace(0.2, 1.0, 300)).astype(int)
    labels[-60:] = 0
    assert min_cllr(scores, labels) == pytest.approx(
        brute_pav_min_cllr(scores, labels), abs=1e-12
    )


def test_bayes_threshold_and_act_dcf_at_the_boundary():
    threshold = bayes_threshold()
    assert threshold == pytest.approx(math.log(0.5 / 0.95))
    # A score exactly on the threshold is accepted as bona fide.
    assert cm_act_dcf([threshold, threshold - 1e-9], [1, 0]) == 0.0
    assert cm_act_dcf([threshold - 1e-9, threshold], [1, 0]) == pytest.approx(
        (0.95 + 0.5) / 0.5
    )


# --------------------------------------------------------------------------
# Cllr / min Cllr properties
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed, separation, decimals", SEEDS)
def test_min_cllr_is_invariant_to_monotonic_transforms(seed, separation, decimals):
    scores, labels = random_scores(seed, separation=separation, decimals=decimals)
    reference = min_cllr(scores, labels)
    assert min_cllr(3 * scores + 1, labels) == pytest.approx(reference, abs=1e-9)
    assert min_cllr(np.exp(scores), labels) == pytest.approx(reference, abs=1e-9)
    assert min_cllr(-1.0 / (scores - scores.min() + 1), labels) == pytest.approx(
        reference, abs=1e-9
    )


@pytest.mark.parametrize("seed", [0, 1])
def test_min_cllr_lower_bounds_affine_calibrations(seed):
    scores, labels = random_scores(seed)
    best = min(
        cllr(a * scores + b, labels)
        for a in np.linspace(0.2, 4.0, 20)
        for b in np.linspace(-3.0, 3.0, 25)
    )
    assert min_cllr(scores, labels) <= best
    assert best - min_cllr(scores, labels) < 0.05  # Gaussian: affine is near optimal


def test_calibrated_scores_have_cllr_near_min_cllr():
    # Bona fide ~ N(mu, 2 mu), spoof ~ N(-mu, 2 mu): the scores are exact LLRs.
    rng = np.random.default_rng(20)
    mu, n = 2.0, 200_000
    labels = rng.integers(0, 2, n)
    scores = np.where(labels == 1, mu, -mu) + math.sqrt(2 * mu) * rng.normal(size=n)
    cllr_value, min_value = cllr(scores, labels), min_cllr(scores, labels)
    assert min_value <= cllr_value < min_value + 0.005
    act, best = cm_act_dcf(scores, labels), cm_min_dcf(scores, labels)[0]
    assert best <= act < best + 0.02


def test_perfectly_separated():
    scores = np.array([5.0, 4.0, 3.5, 1.0, 0.0, -2.0])
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert cm_eer(scores, labels) == (0.0, 3.5)
    assert cm_min_dcf(scores, labels) == (0.0, 3.5)
    assert min_cllr(scores, labels) == 0.0
    assert min_cllr(scores * 1e-6, labels) == 0.0
    report = evaluate_cm(scores, labels)
    assert report["eer"] == 0.0 and report["min_dcf"] == 0.0 and report["min_cllr"] == 0.0


def test_cllr_is_stable_for_huge_scores():
    assert cllr([1e6, -1e6], [1, 0]) == 0.0
    assert cllr([-1e6, 1e6], [1, 0]) == pytest.approx(1e6 / math.log(2))


# --------------------------------------------------------------------------
# Hand-computed examples
# --------------------------------------------------------------------------
def test_tiny_hand_computed_example():
    # Ascending: 0.5 s, 0.6 b, 0.7 s, 0.8 b, 0.9 b.
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = [1, 1, 0, 1, 0]
    value, threshold = cm_eer(scores, labels)
    assert value == pytest.approx(1 / 3) and threshold == pytest.approx(0.7 + 0.1 / 3)
    # Default costs 0.95 * P_miss + 0.5 * P_fa (normalised by 0.5): at 0.5 the
    # cost is 0.5 (accept all); at 0.6: 0.25 / 0.5; at 0.8: (0.95 / 3) / 0.5.
    value, threshold = cm_min_dcf(scores, labels)
    assert (value, threshold) == (pytest.approx(0.5), 0.6)
    # Bayes threshold -0.64: everything accepted, P_fa = 1 -> 0.5 / 0.5.
    assert cm_act_dcf(scores, labels) == pytest.approx(1.0)
    # Cllr: bona fide terms log2(1 + e^-s), spoof terms log2(1 + e^s).
    bona = np.log2(1 + np.exp(-np.array([0.9, 0.8, 0.6]))).mean()
    spoof = np.log2(1 + np.exp(np.array([0.7, 0.5]))).mean()
    assert cllr(scores, labels) == pytest.approx(0.5 * (bona + spoof), abs=1e-15)
    # PAV bins (ascending): s | b s (pooled, rate 1/2) | b b. Prior log-odds
    # log(3/2): the pooled bin's LLR is -log(3/2), the ends are certain.
    llr = -math.log(1.5)
    expected = 0.5 * (math.log2(1 + math.exp(-llr)) / 3 + math.log2(1 + math.exp(llr)) / 2)
    assert min_cllr(scores, labels) == pytest.approx(expected, abs=1e-15)


def test_min_cllr_hand_computed():
    assert min_cllr([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1]) == pytest.approx(0.5)
    # Reversed scores: PAV pools everything, LLR 0, Cllr 1 bit.
    assert min_cllr([4.0, 3.0, 2.0, 1.0], [0, 0, 1, 1]) == pytest.approx(1.0)
    # All scores tie: one bin, LLR 0 after removing the prior.
    assert min_cllr([7.0] * 5, [1, 0, 0, 1, 0]) == pytest.approx(1.0)
    assert cm_eer([7.0] * 4, [1, 0, 1, 0])[0] == 0.5


def test_evaluate_cm_report():
    scores, labels = random_scores(5, separation=2.0)
    report = evaluate_cm(scores, labels)
    assert set(report) >= {
        "eer", "min_dcf", "act_dcf", "cllr", "min_cllr",
        "eer_threshold", "num_bonafide", "num_spoof",
    }
    value, threshold = cm_eer(scores, labels)
    assert report["eer"] == pytest.approx(100 * value) and report["eer_threshold"] == threshold
    assert (report["min_dcf"], report["min_dcf_threshold"]) == cm_min_dcf(scores, labels)
    assert report["act_dcf"] == cm_act_dcf(scores, labels)
    assert report["cllr"] == pytest.approx(cllr(scores, labels), abs=1e-15)
    assert report["min_cllr"] == min_cllr(scores, labels)
    assert report["num_bonafide"] == labels.sum()
    assert report["num_spoof"] == labels.size - labels.sum()
    assert all(type(v) in (int, float) for v in report.values())
    other = evaluate_cm(scores, labels, p_spoof=0.5, c_miss=1.0, c_fa=1.0)
    assert other["min_dcf"] == cm_min_dcf(scores, labels, 0.5, 1.0, 1.0)[0]


# --------------------------------------------------------------------------
# Labels and input checks
# --------------------------------------------------------------------------
def test_string_and_boolean_labels():
    scores, labels = random_scores(6, n=300)
    as_text = np.where(labels == 1, "bonafide", "spoof")
    as_list = [" Bonafide " if x else "SPOOF" for x in labels]
    expected = evaluate_cm(scores, labels)
    assert evaluate_cm(scores, as_text) == expected
    assert evaluate_cm(scores, as_list) == expected
    assert evaluate_cm(scores, labels.astype(bool)) == expected
    assert evaluate_cm(scores, labels.astype(float)) == expected
    assert evaluate_cm(scores, labels.astype(object)) == expected


@pytest.mark.parametrize(
    "labels, bad",
    [
        (["bonafide", "spoof", "bona-fide"], "bona-fide"),
        (["bonafide", "spoof", "target"], "target"),
        ([1, 0, 2], "2"),
        ([1.0, 0.0, 0.5], "0.5"),
        ([1, "spoof", "spoof"], "'1'"),
    ],
)
def test_bad_labels_name_the_values(labels, bad):
    for fn in (cm_eer, cm_min_dcf, cm_act_dcf, cllr, min_cllr, evaluate_cm):
        with pytest.raises(ValueError, match="labels") as info:
            fn([1.0, 2.0, 3.0], labels)
        assert bad in str(info.value)


@pytest.mark.parametrize(
    "scores, labels, match",
    [
        ([1.0, 2.0], [1, 1], "spoof"),
        ([1.0, 2.0], ["spoof", "spoof"], "bona fide"),
        ([1.0, 2.0, 3.0], [1, 0], "length"),
        ([1.0, np.inf], [1, 0], "finite"),
    ],
)
def test_invalid_inputs_raise(scores, labels, match):
    for fn in (cm_eer, cm_min_dcf, cm_act_dcf, cllr, min_cllr, evaluate_cm):
        with pytest.raises(ValueError, match=match):
            fn(scores, labels)


def test_invalid_costs_raise():
    with pytest.raises(ValueError, match="p_spoof"):
        cm_min_dcf([1.0, 2.0], [1, 0], p_spoof=1.0)
    with pytest.raises(ValueError, match="costs"):
        cm_act_dcf([1.0, 2.0], [1, 0], c_fa=0.0)


# --------------------------------------------------------------------------
# Breakdowns
# --------------------------------------------------------------------------
def attack_set():
    """10 bona fide trials 0..9; A01 below them, A02 above, A03 in the middle."""
    bona = np.arange(10.0)
    spoofs = {"A01": [-3.0, -2.0, -1.0, -0.5], "A02": [10.0, 11.0, 12.0, 13.0], "A03": [4.5]}
    scores = np.concatenate([bona] + [spoofs[a] for a in spoofs])
    labels = ["bonafide"] * 10 + ["spoof"] * 9
    codecs = ["none", "mp3"] * 5  # bona fide group values are ignored for attacks
    attacks = codecs + [a for a in spoofs for _ in spoofs[a]]
    return scores, np.array(labels), np.array(attacks)


def test_breakdown_per_attack_pools_bona_fide():
    scores, labels, attacks = attack_set()
    result = breakdown(scores, labels, attacks, pool_bonafide=True)
    assert list(result) == ["A02", "A03", "A01"]  # ordered by EER, worst first
    assert result["A01"]["eer"] == 0.0
    assert result["A02"]["eer"] == pytest.approx(100.0)
    # A03: at 4.5 P_miss = 0.5, P_fa = 1; at 5 P_miss = 0.5, P_fa = 0 -> 50 %.
    assert result["A03"]["eer"] == pytest.approx(50.0)
    assert [r["num_bonafide"] for r in result.values()] == [10, 10, 10]
    assert [r["num_spoof"] for r in result.values()] == [4, 1, 4]
    mask = (attacks == "A03") | (labels == "bonafide")
    assert result["A03"] == evaluate_cm(scores[mask], labels[mask])
    assert list(breakdown(scores, labels, attacks, metric=None)) == ["A01", "A02", "A03"]
    ranked = breakdown(scores, labels, attacks, metric="num_spoof")
    assert list(ranked) == ["A01", "A02", "A03"]


def test_breakdown_per_codec_and_skipped_groups(caplog):
    scores = np.array([1.0, 2.0, 3.0, -1.0, 0.0, 0.0, 1.0, 0.5, 2.0, 5.0, 6.0])
    labels = np.array([1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0])
    codecs = ["none"] * 5 + ["mp3"] * 4 + ["opus", "aac"]
    with caplog.at_level(logging.WARNING):
        result = breakdown(scores, labels, codecs, pool_bonafide=False, metric=None)
    assert list(result) == ["mp3", "none"]
    assert result["none"]["eer"] == 0.0
    # mp3 ascending: 0 b, 0.5 s, 1 b, 2 s -> P_miss = P_fa = 0.5 at 1.
    assert result["mp3"]["eer"] == pytest.approx(50.0)
    assert (result["mp3"]["num_bonafide"], result["mp3"]["num_spoof"]) == (2, 2)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "'opus'" in messages and "'aac'" in messages
    # Pooling the bona fide trials instead: every spoof vs all 6 bona fide.
    pooled = breakdown(scores, labels, codecs, pool_bonafide=True)
    assert set(pooled) == {"none", "mp3", "aac"}
    assert all(r["num_bonafide"] == 6 for r in pooled.values())


def test_breakdown_integer_groups_and_errors():
    scores, labels, _ = attack_set()
    groups = np.r_[np.zeros(10, int), [2, 2, 2, 2, 10, 10, 10, 10, 1]]
    result = breakdown(scores, labels, groups, metric=None)
    assert list(result) == [1, 2, 10] and all(type(g) is int for g in result)
    with pytest.raises(ValueError, match="length"):
        breakdown(scores, labels, groups[:-1])
    with pytest.raises(ValueError, match="metric"):
        breakdown(scores, labels, groups, metric="accuracy")


def test_breakdown_table_format():
    scores, labels, attacks = attack_set()
    table = breakdown_table(breakdown(scores, labels, attacks), "Per attack")
    lines = table.splitlines()
    assert lines[0] == "### Per attack" and lines[1] == ""
    assert lines[2] == "| Group | EER (%) | minDCF | actDCF | Cllr | #bona | #spoof |"
    assert lines[3] == "|:---|---:|---:|---:|---:|---:|---:|"
    assert [line.split(" | ")[0] for line in lines[4:]] == ["| A01", "| A02", "| A03"]
    result = evaluate_cm(*attack_set()[:2])
    a03 = breakdown(scores, labels, attacks)["A03"]
    assert lines[6] == (
        f"| A03 | 50.00 | {a03['min_dcf']:.4f} | {a03['act_dcf']:.4f} | "
        f"{a03['cllr']:.4f} | 10 | 1 |"
    )
    assert table.endswith("|\n") and result["num_spoof"] == 9
    # Numbers sort numerically, pipes are escaped, no title -> no heading.
    row = evaluate_cm([1.0, 0.0], [1, 0])
    plain = breakdown_table({10: row, 2: row, "a|b": row}, None)
    groups = [line.split(" | ")[0] for line in plain.splitlines()[2:]]
    assert groups == ["| 2", "| 10", "| a\\|b"]
    assert breakdown_table({}, None).count("\n") == 2


# --------------------------------------------------------------------------
# Score files
# --------------------------------------------------------------------------
def test_score_file_round_trip(tmp_path):
    rng = np.random.default_rng(9)
    ids = [f"E_{i:07d}" for i in range(50)]
    scores = rng.normal(size=50) * 10.0 ** rng.integers(-8, 8, 50)
    path = write_scores(tmp_path / "out" / "scores.txt", ids, scores)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "filename\tcm-score" and lines[1].startswith("E_0000000\t")
    got_ids, got_scores = read_scores(path)
    assert got_ids == ids
    np.testing.assert_array_equal(got_scores, scores)  # exact
    write_scores(tmp_path / "plain.txt", ids, scores, header=False)
    assert read_scores(tmp_path / "plain.txt")[0] == ids


def test_read_scores_spaces_blank_lines_and_header(tmp_path):
    path = tmp_path / "scores.txt"
    path.write_text("FILENAME  CM-SCORE\n\nT_1 1e-3\n  T_2\t\t-4.5  \n", encoding="utf-8")
    ids, scores = read_scores(str(path))
    assert ids == ["T_1", "T_2"] and scores.tolist() == [1e-3, -4.5]


@pytest.mark.parametrize(
    "bad", ["T_3", "T_3 1.0 2.0", "T_3 high", "T_3 nan", "filename\tcm-score"]
)
def test_read_scores_malformed_line_names_file_and_line(tmp_path, bad):
    path = tmp_path / "bad.txt"
    path.write_text(f"filename\tcm-score\nT_1 0.5\n\nT_2 1.5\n{bad}\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        read_scores(path)
    message = str(info.value)
    assert "line 5" in message and str(path) in message


def test_write_scores_rejects_bad_ids(tmp_path):
    with pytest.raises(ValueError, match="length"):
        write_scores(tmp_path / "s.txt", ["a"], [1.0, 2.0])
    with pytest.raises(ValueError, match="whitespace"):
        write_scores(tmp_path / "s.txt", ["a b"], [1.0])


# --------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------
def test_one_million_scores():
    x = 1.2
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=1_000_000)
    scores = rng.normal(size=labels.size) + 2 * x * labels
    report = evaluate_cm(scores, labels)
    assert abs(report["eer"] / 100 - norm.cdf(-x)) < 0.01
    assert abs(report["eer_threshold"] - x) < 0.05
    assert 0.0 < report["min_cllr"] <= report["cllr"]
    assert report["min_dcf"] <= report["act_dcf"]
    codecs = rng.integers(0, 8, size=labels.size)
    assert len(breakdown(scores, labels, codecs, pool_bonafide=False)) == 8
