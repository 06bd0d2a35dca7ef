"""Logistic-regression calibration of countermeasure scores to LLRs."""

import json
import math

import numpy as np
import pytest
import torch

from speechbrain_pruning.spoofing.calibration import (
    LinearCalibration,
    effective_prior,
    evaluate_calibrated,
)
from speechbrain_pruning.spoofing.metrics import bayes_threshold, cllr, min_cllr

# Bona fide ~ N(MU1, S^2), spoof ~ N(MU0, S^2): the LLR of x is A * x + B.
MU1, MU0, S = 1.0, -1.0, 1.0
A = (MU1 - MU0) / S**2
B = -(MU1**2 - MU0**2) / (2 * S**2)
NUM_BONA, NUM_SPOOF = 60_000, 140_000  # unbalanced on purpose
# Affine distortions raw = alpha * x + beta, i.e. LLR = A / alpha * raw + B - A beta / alpha.
DISTORTIONS = [(0.5, -2.0), (5.0, 3.0), (0.03, 40.0)]


def gaussian_trials(seed, num_bona=NUM_BONA, num_spoof=NUM_SPOOF):
    """``(x, labels)``: equal-variance Gaussian scores whose exact LLR is ``A x + B``."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.ones(num_bona, int), np.zeros(num_spoof, int)])
    x = np.concatenate([rng.normal(MU1, S, num_bona), rng.normal(MU0, S, num_spoof)])
    return x, labels


def analytic(alpha, beta):
    """Scale and offset of the exact LLR as a function of ``raw = alpha x + beta``."""
    return A / alpha, B - A * beta / alpha


CENTRAL_X = np.linspace(-3.0, 3.0, 121)  # where both classes have data


@pytest.fixture(scope="module")
def trials():
    return gaussian_trials(seed=7)


@pytest.mark.parametrize("alpha, beta", DISTORTIONS)
def test_recovers_analytic_llr(trials, alpha, beta):
    x, labels = trials
    calibration = LinearCalibration().fit(alpha * x + beta, labels)
    scale, offset = analytic(alpha, beta)
    assert calibration.scale == pytest.approx(scale, rel=0.02)
    assert calibration.offset == pytest.approx(offset, rel=0.02, abs=0.05)
    fitted = calibration(alpha * CENTRAL_X + beta)
    assert np.max(np.abs(fitted - (A * CENTRAL_X + B))) < 0.1


def test_fit_is_invariant_to_the_distortion(trials):
    # The fit works on standardised scores: every affine distortion gives the same LLRs.
    x, labels = trials
    llrs = [LinearCalibration().fit(alpha * x + beta, labels)(alpha * x + beta)
            for alpha, beta in DISTORTIONS]
    for other in llrs[1:]:
        np.testing.assert_allclose(other, llrs[0], atol=1e-6)


@pytest.mark.parametrize("alpha, beta", [(0.5, -2.0), (0.03, 40.0)])
def test_calibration_brings_act_dcf_and_cllr_to_their_minimum(trials, alpha, beta):
    x, labels = trials
    raw = alpha * x + beta
    result = evaluate_calibrated(raw, labels, LinearCalibration().fit(raw, labels))
    before, after = result["raw"], result["calibrated"]
    assert set(after) == {"min_dcf", "act_dcf", "cllr", "min_cllr", "eer"}
    assert result["bayes_threshold"] == bayes_threshold()
    # Order-only metrics do not change (scale > 0).
    for key in ("min_dcf", "min_cllr", "eer"):
        assert after[key] == pytest.approx(before[key], abs=1e-12)
    assert before["act_dcf"] - before["min_dcf"] > 0.3
    assert before["min_dcf"] <= after["act_dcf"] < before["min_dcf"] + 0.01
    assert before["cllr"] > after["cllr"] + 0.3
    assert after["min_cllr"] <= after["cllr"] < after["min_cllr"] + 0.005
    # Analytic reference: d' = 2, EER = Phi(-1) = 15.87 %.
    assert after["eer"] == pytest.approx(100 * 0.5 * math.erfc(1 / math.sqrt(2)), abs=0.5)


@pytest.mark.parametrize("prior", [0.1, effective_prior(), 0.9])
def test_llrs_do_not_depend_on_the_training_prior(trials, prior):
    x, labels = trials
    raw = 5.0 * x + 3.0
    reference = LinearCalibration().fit(raw, labels, prior=0.5)
    other = LinearCalibration().fit(raw, labels, prior=prior)
    assert other.scale == pytest.approx(reference.scale, rel=0.02)
    central = 5.0 * CENTRAL_X + 3.0
    assert np.max(np.abs(other(central) - reference(central))) < 0.1
    assert np.max(np.abs(other(central) - (A * CENTRAL_X + B))) < 0.1


def test_effective_prior_matches_bayes_threshold():
    prior = effective_prior(0.05, 1.0, 10.0)
    assert prior == pytest.approx(0.95 / 1.45)
    assert -math.log(prior / (1 - prior)) == pytest.approx(bayes_threshold(0.05, 1.0, 10.0))


def test_small_exact_solution():
    # Each score value holds 2:1 or 1:2 bona fide / spoof trials (balanced classes):
    # the maximum-likelihood LLR is log 4 * score - log 2 exactly (posterior odds 1:2, 2:1 ...).
    scores = [2.0, 1.0, 0.0, 1.0, 0.0, -1.0]
    labels = ["bonafide"] * 3 + ["spoof"] * 3
    calibration = LinearCalibration().fit(scores, labels)
    # (the 1e-6 ridge moves this 6-trial fit by ~1e-5)
    assert calibration.scale == pytest.approx(math.log(4), abs=1e-4)
    assert calibration.offset == pytest.approx(-math.log(2), abs=1e-4)


def test_save_load_round_trip_is_exact(tmp_path, trials):
    x, labels = trials
    calibration = LinearCalibration().fit(0.03 * x + 40.0, labels)
    path = calibration.save(tmp_path / "sub" / "calibration.json")
    loaded = LinearCalibration.load(path)
    assert loaded == calibration
    assert loaded.scale == calibration.scale and loaded.offset == calibration.offset
    assert json.loads(path.read_text()) == calibration.to_dict()
    assert LinearCalibration.from_dict(calibration.to_dict()) == calibration
    assert all(type(v) is float for v in calibration.to_dict().values())


@pytest.mark.parametrize("np_dtype, torch_dtype", [(np.float64, torch.float64),
                                                   (np.float32, torch.float32)])
def test_numpy_and_torch_agree(np_dtype, torch_dtype):
    calibration = LinearCalibration(0.3712345, -1.2987654)
    scores = (10 * np.random.default_rng(0).normal(size=(4, 1000))).astype(np_dtype)
    from_numpy = calibration(scores)
    from_torch = calibration(torch.from_numpy(scores))
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np_dtype
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch_dtype
    assert from_torch.shape == (4, 1000)
    np.testing.assert_array_equal(from_numpy, from_torch.numpy())


def test_torch_input_for_fit_and_device_kept():
    x, labels = gaussian_trials(seed=1, num_bona=2000, num_spoof=2000)
    from_numpy = LinearCalibration().fit(x, labels)
    from_torch = LinearCalibration().fit(torch.from_numpy(x).float(), torch.from_numpy(labels))
    assert from_torch.scale == pytest.approx(from_numpy.scale, rel=1e-5)
    scores = torch.zeros(3, dtype=torch.float16)
    out = from_numpy(scores)
    assert out.dtype == torch.float16 and out.device == scores.device
    if torch.cuda.is_available():
        assert from_numpy(torch.zeros(3, device="cuda")).device.type == "cuda"


def test_separable_data_gives_a_large_finite_scale():
    rng = np.random.default_rng(3)
    for units in (1e-3, 1.0, 1e4):
        bona, spoof = rng.uniform(1, 2, 1000), rng.uniform(-2, -1, 3000)
        scores = units * np.concatenate([bona, spoof])
        labels = np.repeat([1, 0], [1000, 3000])
        calibration = LinearCalibration().fit(scores, labels)
        assert math.isfinite(calibration.scale) and math.isfinite(calibration.offset)
        assert calibration.scale * units > 4.0  # steeper than any Gaussian fit here
        llrs = calibration(scores)
        assert np.all(np.isfinite(llrs))
        assert llrs[:1000].min() > 5.0 and llrs[1000:].max() < -5.0  # confident, not inf
        assert cllr(llrs, labels) < 1e-3
        assert min_cllr(scores, labels) == 0.0


def test_constant_scores_give_zero_scale():
    calibration = LinearCalibration().fit([1.0, 1.0, 1.0, 1.0], [1, 0, 0, 0])
    assert calibration.scale == 0.0
    assert calibration.offset == pytest.approx(0.0, abs=1e-9)  # LLR 0: no evidence


@pytest.mark.parametrize("scores, labels, message", [
    ([1.0, 2.0, 3.0], [1, 1, 1], "at least one bona fide and one spoof"),
    ([1.0, 2.0, 3.0], ["spoof"] * 3, "at least one bona fide and one spoof"),
    ([1.0, float("nan"), 3.0], [1, 0, 1], "finite"),
    ([1.0, float("inf"), 3.0], [1, 0, 1], "finite"),
    ([1.0, 2.0, 3.0], [1, 0], "differ in length"),
    ([1.0, 2.0], [1, 2], "invalid values"),
])
def test_bad_inputs_raise(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        LinearCalibration().fit(scores, labels)


@pytest.mark.parametrize("prior", [0.0, 1.0, -0.5, float("nan")])
def test_bad_prior_raises(prior):
    with pytest.raises(ValueError, match="prior"):
        LinearCalibration().fit([1.0, 0.0], [1, 0], prior=prior)


@pytest.mark.parametrize("spec, message", [
    ({"scale": 1.0}, "missing"),
    ({"scale": float("nan"), "offset": 0.0}, "finite"),
    ({"scale": "abc", "offset": 0.0}, "number"),
    ([1.0, 2.0], "mapping"),
])
def test_bad_dicts_raise(spec, message):
    with pytest.raises(ValueError, match=message):
        LinearCalibration.from_dict(spec)


def test_load_rejects_non_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("scale: 1\n")
    with pytest.raises(ValueError, match="not a calibration JSON"):
        LinearCalibration.load(path)


# --------------------------------------------------------------------------
# PrunedSpoofDetector with a stub graph (no export)
# --------------------------------------------------------------------------
def make_detector(**hparams):
    from speechbrain_pruning.spoofing.interface import PrunedSpoofDetector

    class StubDetector(PrunedSpoofDetector):
        def graph(self, wavs, wav_lens):
            mean = wavs.mean(dim=1)
            return torch.stack([-mean, mean], dim=-1)  # raw score = 2 * mean

        def load_file(self, path):
            return torch.full((1600,), float(path))  # "path" is the sample value

    modules = {name: torch.nn.Identity() for name in ("wavlm", "backend", "classifier")}
    return StubDetector(modules=modules, hparams=dict(sample_rate=16000, **hparams),
                        run_opts={"device": "cpu"})


def test_interface_without_calibration_is_raw():
    detector = make_detector(threshold=0.5)
    wavs = torch.tensor([[0.1] * 8, [-0.2] * 8])
    assert detector.calibration is None
    torch.testing.assert_close(detector.score_batch(wavs), torch.tensor([0.2, -0.4]))
    torch.testing.assert_close(detector.raw_score_batch(wavs), detector.score_batch(wavs))
    assert detector.score_file("0.3") == pytest.approx(0.6)
    assert detector.raw_score_file("0.3") == pytest.approx(0.6)
    assert detector.classify_file("0.3") == "bonafide"  # 0.6 >= 0.5
    assert detector.classify_file("0.2") == "spoof"     # 0.4 < 0.5


def test_interface_with_calibration_uses_llrs():
    detector = make_detector(threshold=bayes_threshold(),
                             calibration={"scale": 2.0, "offset": -1.0})
    wavs = torch.tensor([[0.1] * 8, [-0.2] * 8])
    assert detector.calibration == LinearCalibration(2.0, -1.0)
    torch.testing.assert_close(detector.raw_score_batch(wavs), torch.tensor([0.2, -0.4]))
    torch.testing.assert_close(detector.score_batch(wavs), torch.tensor([-0.6, -1.8]))
    assert detector.raw_score_file("0.1") == pytest.approx(0.2)
    assert detector.score_file("0.1") == pytest.approx(-0.6)
    # LLR threshold log(0.5 / 0.95) = -0.64: raw 0.2 -> LLR -0.6 is accepted,
    # raw 0.1 -> LLR -0.8 is not (a raw-score threshold of -0.64 would accept both).
    assert detector.classify_file("0.1") == "bonafide"
    assert detector.classify_file("0.05") == "spoof"
    assert detector.classify_file("0.05", threshold=-1.0) == "bonafide"
