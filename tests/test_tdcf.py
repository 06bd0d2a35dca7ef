"""Tests for the ASVspoof 2019 min t-DCF (speechbrain_pruning.spoofing.tdcf)."""

import csv
import logging

import numpy as np
import pytest

from speechbrain_pruning.spoofing.metrics import cm_eer, write_scores
from speechbrain_pruning.spoofing.tdcf import (
    ASVSPOOF2019_COST_MODEL,
    AsvScores,
    asv_error_rates,
    evaluate_tdcf,
    min_tdcf,
    read_asv_scores,
    tdcf_coefficients,
    tdcf_curve,
    write_asv_scores,
)

PTAR, PNON, PSPOOF = 0.95 * 0.99, 0.95 * 0.01, 0.05  # 0.9405, 0.0095, 0.05
CMISS_ASV, CFA_ASV, CMISS_CM, CFA_CM = 1.0, 10.0, 1.0, 10.0

# ---------------------------------------------------------------- hand case
# ASV scores. Sorted (targets before nontargets on ties):
#   -1 n, 0 n, 1 n, 2 t, 2.5 n, 3 t, 4 t, 5 t
# After the k lowest: FRR_k = targets among them / 4, FAR_k = nontargets
# above them / 4:  k=0: 0, 1 | k=1: 0, 3/4 | k=2: 0, 2/4 | k=3: 0, 1/4 |
# k=4: 1/4, 1/4  -> |FRR - FAR| = 0, first minimum: k=4, threshold = the
# 4th lowest score = 2.0, ASV EER = 1/4.
# Rates with "accept if score >= 2.0":
#   Pfa_asv = #{2.5} / 4 = 0.25, Pmiss_asv = #{} / 4 = 0,
#   Pmiss_spoof_asv = #{1.5} / 4 = 0.25 (spoofs 1.5, 2.0, 3.5, 4.5).
HAND_TARGET = [2.0, 3.0, 4.0, 5.0]
HAND_NONTARGET = [-1.0, 0.0, 1.0, 2.5]
HAND_SPOOF = [1.5, 2.0, 3.5, 4.5]
# C0 = Ptar * 1 * 0 + Pnon * 10 * 0.25          = 0.02375
# C1 = Ptar * (1 - 1 * 0) - Pnon * 10 * 0.25    = 0.9405 - 0.02375 = 0.91675
# C2 = 10 * Pspoof * (1 - 0.25)                 = 0.375
# min(C1, C2) = C2, so t-DCF_norm(s) = (C1 / C2) Pmiss_cm(s) + Pfa_cm(s),
# beta = C1 / C2 = 0.91675 / 0.375 = 2.444666...
HAND_C = (0.02375, 0.91675, 0.375)
BETA = 0.91675 / 0.375
# CM scores: bona fide 0.9, 0.7, 0.4; spoof 0.8, 0.3, 0.2, 0.1.
# threshold s (accept >= s) | Pmiss_cm | Pfa_cm | t-DCF_norm
#   0.1                      |   0      |  4/4   | 1
#   0.2                      |   0      |  3/4   | 0.75
#   0.3                      |   0      |  2/4   | 0.5
#   0.4                      |   0      |  1/4   | 0.25      <- minimum
#   0.7                      |   1/3    |  1/4   | beta/3 + 0.25 = 1.0648888...
#   0.8                      |   2/3    |  1/4   | 2 beta/3 + 0.25 = 1.8797777...
#   0.9                      |   2/3    |  0     | 2 beta/3 = 1.6297777...
#   inf                      |   1      |  0     | beta = 2.4446666...
HAND_CM = [0.9, 0.7, 0.4, 0.8, 0.3, 0.2, 0.1]
HAND_LABELS = ["bonafide"] * 3 + ["spoof"] * 4
HAND_CURVE = [1.0, 0.75, 0.5, 0.25, BETA / 3 + 0.25, 2 * BETA / 3 + 0.25, 2 * BETA / 3, BETA]
HAND_THRESHOLDS = [0.1, 0.2, 0.3, 0.4, 0.7, 0.8, 0.9, np.inf]
# CM EER (interpolated as in cm_eer): Pmiss - Pfa changes sign between
# s=0.4 (0 - 1/4) and s=0.7 (1/3 - 1/4 = 1/12); alpha = (1/4) / (1/3) = 3/4,
# EER = 3/4 * 1/3 = 0.25 at threshold 0.4 + 3/4 * 0.3 = 0.625.


def hand_asv():
    scores = HAND_TARGET + HAND_NONTARGET + HAND_SPOOF
    keys = ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 4
    return np.array(scores), np.array(keys)


def test_hand_computed_asv_rates():
    rates = asv_error_rates(*hand_asv())
    assert rates["asv_threshold"] == 2.0
    assert rates["asv_eer"] == 0.25
    assert (rates["pfa_asv"], rates["pmiss_asv"], rates["pmiss_spoof_asv"]) == (0.25, 0.0, 0.25)
    assert (rates["num_target"], rates["num_nontarget"], rates["num_spoof"]) == (4, 4, 4)
    assert tdcf_coefficients(rates) == pytest.approx(HAND_C, rel=1e-12)


def test_hand_computed_tdcf():
    curve, thresholds = tdcf_curve(HAND_CM, HAND_LABELS, *hand_asv())
    assert thresholds.tolist() == HAND_THRESHOLDS
    assert curve == pytest.approx(HAND_CURVE, rel=1e-12)
    value, threshold, eer_value = min_tdcf(HAND_CM, HAND_LABELS, *hand_asv())
    assert value == pytest.approx(0.25, rel=1e-12)
    assert threshold == 0.4
    assert eer_value == pytest.approx(0.25, rel=1e-12)

    result = evaluate_tdcf(HAND_CM, HAND_LABELS, hand_asv())
    assert result["min_tdcf"] == pytest.approx(0.25, rel=1e-12)
    assert result["tdcf_threshold"] == 0.4
    assert result["eer"] == pytest.approx(25.0) and result["eer_threshold"] == pytest.approx(0.625)
    # unnormalised: C0 + 0.25 * C2 = 0.02375 + 0.09375
    assert result["min_tdcf_unnormalised"] == pytest.approx(0.1175, rel=1e-12)
    assert (result["tdcf_c0"], result["tdcf_c1"], result["tdcf_c2"]) == pytest.approx(HAND_C)
    assert result["asv_eer"] == 25.0 and result["asv_threshold"] == 2.0
    assert (result["num_bonafide"], result["num_spoof"]) == (3, 4)
    assert (result["num_asv_target"], result["num_asv_nontarget"],
            result["num_asv_spoof"]) == (4, 4, 4)
    assert all(isinstance(v, (int, float)) for v in result.values())


def test_integer_labels_and_order_do_not_matter():
    rng = np.random.default_rng(0)
    order = rng.permutation(len(HAND_CM))
    labels = np.array([1] * 3 + [0] * 4)[order]
    scores = np.array(HAND_CM)[order]
    asv_scores, asv_keys = hand_asv()
    asv_order = rng.permutation(asv_scores.size)
    value = min_tdcf(scores, labels, asv_scores[asv_order], asv_keys[asv_order])
    assert value == pytest.approx((0.25, 0.4, 0.25))


# ------------------------------------------------------------ limiting cases
def test_perfect_cm_leaves_the_asv_cost_alone():
    # ASV that separates targets from nontargets perfectly: sorted scores are
    # 0..9 (nontargets) then 10..19 (targets); FRR = FAR = 0 after the 10
    # lowest, so the reference's threshold is the 10th lowest score, 9.0,
    # and counting "accept if >= 9.0" gives Pfa_asv = 1/10 (the score 9
    # itself), Pmiss_asv = 0, Pmiss_spoof_asv = #{5} / 2 = 1/2.
    target, nontarget, spoof = np.arange(10.0, 20.0), np.arange(10.0), np.array([5.0, 15.0])
    asv = (np.concatenate((target, nontarget, spoof)),
           ["target"] * 10 + ["nontarget"] * 10 + ["spoof"] * 2)
    rates = asv_error_rates(*asv)
    assert (rates["asv_threshold"], rates["pfa_asv"], rates["pmiss_asv"],
            rates["pmiss_spoof_asv"], rates["asv_eer"]) == (9.0, 0.1, 0.0, 0.5, 0.0)
    # Cost of the ASV alone (perfect CM): C0 = Ptar*Cmiss_asv*0 + Pnon*Cfa_asv*0.1
    asv_only = PTAR * CMISS_ASV * 0.0 + PNON * CFA_ASV * 0.1
    cm_scores = [3.0, 2.5, 2.0, -1.0, -2.0, -3.0]
    cm_labels = [1, 1, 1, 0, 0, 0]
    result = evaluate_tdcf(cm_scores, cm_labels, asv)
    assert result["min_tdcf"] == 0.0 and result["tdcf_threshold"] == 2.0
    assert result["eer"] == 0.0
    assert result["tdcf_c0"] == pytest.approx(asv_only, rel=1e-12)
    assert result["min_tdcf_unnormalised"] == pytest.approx(asv_only, rel=1e-12)
    # same with the hand case ASV (Pfa 0.25, Pmiss 0): C0 = Pnon * 10 * 0.25
    result = evaluate_tdcf(cm_scores, cm_labels, hand_asv())
    assert result["min_tdcf"] == 0.0
    assert result["min_tdcf_unnormalised"] == pytest.approx(PNON * CFA_ASV * 0.25, rel=1e-12)


def test_random_cm_is_close_to_one_and_never_above():
    asv_scores, asv_keys = hand_asv()
    for seed in range(5):
        rng = np.random.default_rng(seed)
        labels = rng.random(20000) < 0.1
        scores = rng.normal(size=labels.size)  # independent of the labels
        value, _, eer_value = min_tdcf(scores, labels.astype(int), asv_scores, asv_keys)
        assert 0.95 < value <= 1.0
        assert abs(eer_value - 0.5) < 0.03
    # The normalisation makes the better of "accept all" (C2 / min) and
    # "reject all" (C1 / min) exactly 1; both are on the curve.
    curve, _ = tdcf_curve(scores, labels.astype(int), asv_scores, asv_keys)
    _, c1, c2 = HAND_C
    assert curve[0] == pytest.approx(c2 / min(c1, c2))
    assert curve[-1] == pytest.approx(c1 / min(c1, c2))
    assert min(curve[0], curve[-1]) == 1.0


def test_inverted_cm_gives_exactly_one_at_accept_all():
    # Every spoof scores above every bona fide trial: any threshold between
    # them costs more than accepting everything (C2 < C1 here).
    scores = [0.0, 1.0, 2.0, 3.0, 4.0]
    labels = [1, 1, 0, 0, 0]
    assert min_tdcf(scores, labels, *hand_asv())[:2] == (1.0, 0.0)
    # with C1 < C2 (expensive CM false alarms) rejecting everything is best
    costs = {"Cfa_cm": 100.0}
    value, threshold, _ = min_tdcf(scores, labels, *hand_asv(), cost_model=costs)
    assert (value, threshold) == (1.0, np.inf)


def test_cost_model_override_changes_the_weights():
    rates = asv_error_rates(*hand_asv())
    c0, c1, c2 = tdcf_coefficients(rates, {"Cfa_cm": 20.0})
    assert c2 == pytest.approx(20.0 * PSPOOF * 0.75) and c1 == pytest.approx(HAND_C[1])
    model = {"Pspoof": 0.5, "Ptar": 0.25, "Pnon": 0.25, "Cfa_asv": 1.0}
    c0, c1, c2 = tdcf_coefficients(rates, model)
    assert c0 == pytest.approx(0.25 * 1.0 * 0.25)
    assert c1 == pytest.approx(0.25 * 1.0 - 0.25 * 1.0 * 0.25)
    assert c2 == pytest.approx(10.0 * 0.5 * 0.75)
    assert ASVSPOOF2019_COST_MODEL["Cfa_cm"] == 10.0  # the default is untouched


# -------------------------------------------------------------- brute force
def brute_asv_threshold(target, nontarget):
    """The reference's EER threshold, by direct counting (no ties assumed)."""
    all_scores = np.sort(np.concatenate((target, nontarget)))
    candidates = [all_scores[0] - 0.001] + all_scores.tolist()
    best, best_gap = None, np.inf
    for k, t in enumerate(candidates):
        frr = 0.0 if k == 0 else np.sum(target <= t) / target.size
        far = 1.0 if k == 0 else np.sum(nontarget > t) / nontarget.size
        if abs(frr - far) < best_gap:
            best, best_gap = t, abs(frr - far)
    return best


def brute_min_tdcf(cm_scores, is_bona, target, nontarget, spoof):
    """Min normalised t-DCF from the expected cost of the tandem system."""
    t_asv = brute_asv_threshold(target, nontarget)
    pfa_asv = np.mean(nontarget >= t_asv)
    pmiss_asv = np.mean(target < t_asv)
    pmiss_spoof_asv = np.mean(spoof < t_asv)

    def cost(pmiss_cm, pfa_cm):
        # a target passes the CM (1 - Pmiss_cm) and may then be missed by the
        # ASV; a nontarget passing the CM may be accepted; a spoof accepted by
        # the CM may then be accepted by the ASV.
        return (PTAR * (CMISS_CM * pmiss_cm + CMISS_ASV * (1 - pmiss_cm) * pmiss_asv)
                + PNON * CFA_ASV * (1 - pmiss_cm) * pfa_asv
                + PSPOOF * CFA_CM * pfa_cm * (1 - pmiss_spoof_asv))

    perfect = cost(0.0, 0.0)
    scale = min(cost(0.0, 1.0), cost(1.0, 0.0)) - perfect
    values = []
    for t in np.concatenate((np.unique(cm_scores), [np.inf])):
        accepted = cm_scores >= t
        pmiss_cm = np.mean(~accepted[is_bona])
        pfa_cm = np.mean(accepted[~is_bona])
        values.append((cost(pmiss_cm, pfa_cm) - perfect) / scale)
    return min(values)


@pytest.mark.parametrize("seed", range(8))
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    target = rng.normal(2.0, 1.0, rng.integers(5, 200))
    nontarget = rng.normal(0.0, 1.0, rng.integers(5, 200))
    spoof = rng.normal(rng.uniform(0.5, 2.0), 1.0, rng.integers(5, 200))
    is_bona = rng.random(rng.integers(50, 600)) < 0.3
    is_bona[:2] = True, False
    cm_scores = np.round(rng.normal(0.0, 1.0, is_bona.size) + 1.5 * is_bona, 1)  # ties
    asv_scores = np.concatenate((target, nontarget, spoof))
    asv_keys = ["target"] * target.size + ["nontarget"] * nontarget.size + ["spoof"] * spoof.size
    order = rng.permutation(asv_scores.size)
    value, threshold, eer_value = min_tdcf(cm_scores, is_bona.astype(int),
                                           asv_scores[order], np.array(asv_keys)[order])
    expected = brute_min_tdcf(cm_scores, is_bona, target, nontarget, spoof)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert eer_value == cm_eer(cm_scores, is_bona.astype(int))[0]
    assert threshold in np.unique(cm_scores).tolist() + [np.inf]


def test_asv_threshold_with_ties_follows_the_reference():
    # Tied target / nontarget scores (1.0): the stable sort puts the target
    # first, the threshold is one of the scores and the rates then count a
    # score equal to it as accepted.
    target = [1.0, 3.0]
    nontarget = [0.0, 1.0, 2.0]
    asv = (target + nontarget + [1.0], ["target"] * 2 + ["nontarget"] * 3 + ["spoof"])
    rates = asv_error_rates(*asv)
    # sorted: 0 n, 1 t, 1 n, 2 n, 3 t
    # k: FRR, FAR = 0: 0, 1 | 1: 0, 2/3 | 2: 1/2, 2/3 | 3: 1/2, 1/3 | 4: 1/2, 0 | 5: 1, 0
    # |diff|: 1, 2/3, 1/6, 1/6, 1/2, 1 -> first minimum k=2, threshold = 1.0
    assert rates["asv_threshold"] == 1.0
    assert rates["asv_eer"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert rates["pfa_asv"] == pytest.approx(2 / 3)  # nontargets 1, 2 >= 1
    assert rates["pmiss_asv"] == 0.0 and rates["pmiss_spoof_asv"] == 0.0


# ------------------------------------------------------------------- errors
def test_sanity_checks():
    asv = hand_asv()
    with pytest.raises(ValueError, match="soft CM scores"):
        min_tdcf([1.0, 1.0, 0.0, 0.0], [1, 1, 0, 0], *asv)
    with pytest.raises(ValueError, match="sum to 1"):
        min_tdcf(HAND_CM, HAND_LABELS, *asv, cost_model={"Pspoof": 0.1})
    with pytest.raises(ValueError, match="unknown cost model keys"):
        min_tdcf(HAND_CM, HAND_LABELS, *asv, cost_model={"Pfa": 0.1})
    with pytest.raises(ValueError, match="spoof"):
        min_tdcf(HAND_CM, HAND_LABELS, [1.0, 0.0], ["target", "nontarget"])
    with pytest.raises(ValueError, match="ASV keys"):
        asv_error_rates([1.0, 0.0, 0.5], ["target", "nontarget", "bonafide"])
    with pytest.raises(ValueError, match="finite"):
        asv_error_rates([1.0, np.nan, 0.5], ["target", "nontarget", "spoof"])
    with pytest.raises(ValueError, match="differ in length"):
        asv_error_rates([1.0, 0.0], ["target", "nontarget", "spoof"])
    with pytest.raises(ValueError, match="finite"):
        min_tdcf([1.0, np.inf, 0.0, 0.5], [1, 1, 0, 0], *asv)
    with pytest.raises(ValueError, match="bona fide and one spoof"):
        min_tdcf([1.0, 2.0, 3.0], [1, 1, 1], *asv)
    # the ASV rejects every spoof: C2 = 0 and the normalisation is undefined
    with pytest.raises(ValueError, match="C2 = 0"):
        min_tdcf(HAND_CM, HAND_LABELS, [2.0, 0.0, -5.0], ["target", "nontarget", "spoof"])


def test_negative_cost_warns(caplog):
    rates = {"pfa_asv": 0.0, "pmiss_asv": 0.0, "pmiss_spoof_asv": 0.0}
    with caplog.at_level(logging.WARNING, logger="speechbrain_pruning.spoofing.tdcf"):
        tdcf_coefficients(rates, {"Cfa_asv": -1.0})
    assert "positive" in caplog.text


# ------------------------------------------------------------ ASV score files
ASV_FILE = """bonafide target 2.0
bonafide target 3.0
bonafide\ttarget 4.0
bonafide target 5.0
bonafide nontarget -1.0

bonafide nontarget 0.0
bonafide nontarget 1.0
bonafide nontarget 2.5
A07 spoof 1.5
A08 spoof 2.0
A19 spoof 3.5
A10 spoof 4.5
"""


def test_read_asv_scores(tmp_path):
    path = tmp_path / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    path.write_text(ASV_FILE, encoding="utf-8")
    data = read_asv_scores(path)
    assert isinstance(data, AsvScores)
    assert data.sources.tolist()[-4:] == ["A07", "A08", "A19", "A10"]
    assert data.keys.tolist() == ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 4
    assert data.scores.tolist() == HAND_TARGET + HAND_NONTARGET + HAND_SPOOF
    assert asv_error_rates(data.scores, data.keys) == asv_error_rates(*hand_asv())


def test_write_asv_scores_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=6)
    sources = ["bonafide"] * 4 + ["A01", "A02"]
    keys = ["target", "nontarget", "target", "nontarget", "spoof", "spoof"]
    path = write_asv_scores(tmp_path / "sub" / "asv.txt", sources, keys, scores)
    data = read_asv_scores(path)
    assert data.sources.tolist() == sources and data.keys.tolist() == keys
    assert data.scores.tolist() == scores.tolist()
    with pytest.raises(ValueError, match="differ in length"):
        write_asv_scores(tmp_path / "x.txt", sources, keys, scores[:3])
    with pytest.raises(ValueError, match="ASV keys"):
        write_asv_scores(tmp_path / "x.txt", ["bonafide"], ["impostor"], [1.0])


@pytest.mark.parametrize("bad_line, problem", [
    ("bonafide target", "2 columns instead of 3"),
    ("LA_E_1 bonafide target 1.0", "4 columns instead of 3"),
    ("bonafide impostor 1.0", "ASV key 'impostor'"),
    ("target bonafide 1.0", "ASV key 'bonafide'"),
    ("bonafide target abc", "score 'abc' is not a number"),
    ("bonafide target nan", "not finite"),
])
def test_malformed_asv_file_names_the_line(tmp_path, bad_line, problem):
    lines = ASV_FILE.splitlines()
    lines.insert(7, bad_line)  # becomes line 8 (the blank line 6 counts)
    path = tmp_path / "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_asv_scores(path)
    message = str(err.value)
    assert str(path) in message and "line 8:" in message
    assert problem in message and repr(bad_line) in message


def test_empty_asv_file(tmp_path):
    path = tmp_path / "asv.txt"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no scores"):
        read_asv_scores(path)


# ------------------------------------------------------- evaluate from files
HAND_IDS = [f"LA_E_{i}" for i in range(len(HAND_CM))]
HAND_ATTACKS = ["-"] * 3 + ["A07", "A08", "A09", "A10"]


def write_hand_files(tmp_path):
    asv = tmp_path / "asv.txt"
    asv.write_text(ASV_FILE, encoding="utf-8")
    scores = write_scores(tmp_path / "scores.txt", HAND_IDS, HAND_CM)
    protocol = tmp_path / "ASVspoof2019.LA.cm.eval.trl.txt"
    lines = [f"LA_0001 {name} - {attack} {label}"
             for name, attack, label in zip(HAND_IDS, HAND_ATTACKS, HAND_LABELS)]
    protocol.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    return scores, protocol, asv


def test_evaluate_from_files(tmp_path, caplog):
    scores, protocol, asv = write_hand_files(tmp_path)
    expected = evaluate_tdcf(HAND_CM, HAND_LABELS, hand_asv())
    assert evaluate_tdcf(scores, protocol, asv) == expected
    assert evaluate_tdcf(str(scores), str(protocol), str(asv)) == expected
    assert evaluate_tdcf(scores, dict(zip(HAND_IDS, HAND_LABELS)), read_asv_scores(asv)) == expected
    assert evaluate_tdcf(scores, HAND_LABELS, asv) == expected

    # SpeechBrain manifest with ID and label columns
    manifest = tmp_path / "eval.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "duration", "wav", "label", "attack"])
        for name, label in zip(HAND_IDS, HAND_LABELS):
            writer.writerow([name, "1.0", f"/x/{name}.flac", label, "-"])
        writer.writerow(["LA_E_unscored", "1.0", "/x/u.flac", "spoof", "A07"])
    with caplog.at_level(logging.WARNING, logger="speechbrain_pruning.spoofing.tdcf"):
        assert evaluate_tdcf(scores, manifest, asv) == expected
    assert "1 of the 8 labelled files" in caplog.text

    # baseline score file "ID SOURCE KEY SCORE", labels inside
    baseline = tmp_path / "cm_baseline.txt"
    baseline.write_text("".join(
        f"{name} {attack} {label} {score}\n"
        for name, attack, label, score in zip(HAND_IDS, HAND_ATTACKS, HAND_LABELS, HAND_CM)))
    assert evaluate_tdcf(baseline, None, asv) == expected


def test_evaluate_file_errors(tmp_path):
    scores, protocol, asv = write_hand_files(tmp_path)
    labels = dict(zip(HAND_IDS[1:], HAND_LABELS[1:]))
    with pytest.raises(ValueError, match="1 scored ids have no label.*LA_E_0"):
        evaluate_tdcf(scores, labels, asv)
    with pytest.raises(ValueError, match="line 2: 4 columns instead of 3"):
        (tmp_path / "bad_asv.txt").write_text("bonafide target 1\nLA_E_1 - spoof 2\n")
        evaluate_tdcf(scores, protocol, tmp_path / "bad_asv.txt")
    bad_protocol = tmp_path / "bad_protocol.txt"
    bad_protocol.write_text("LA_0001 LA_E_0 - - bonafide\nLA_0001 LA_E_1 - - genuine\n")
    with pytest.raises(ValueError, match="bad_protocol.txt, line 2: key 'genuine'"):
        evaluate_tdcf(scores, bad_protocol, asv)
    with pytest.raises(ValueError, match="line 1: 2 columns instead of 4"):
        evaluate_tdcf(scores, None, asv)  # a 2-column file needs labels
    with pytest.raises(ValueError, match="cm_labels is required"):
        evaluate_tdcf(HAND_CM, None, asv)
    with pytest.raises(ValueError, match="asv must be"):
        evaluate_tdcf(HAND_CM, HAND_LABELS, np.zeros(3))
