"""Tests for the RawBoost waveform augmentation."""

import math

import numpy as np
import pytest
import torch
from scipy import signal

from speechbrain_pruning.spoofing.rawboost import RawBoost, notch_fir

RATE = 16000
ALGOS = list(range(1, 9))


def _wavs(batch=3, samples=8000, scale=0.1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, samples, generator=generator)


def _tone(freq, samples=8000, amplitude=0.1):
    t = torch.arange(samples, dtype=torch.float32) / RATE
    return amplitude * torch.sin(2 * math.pi * freq * t)


def _snr_db(clean, noisy):
    return 10 * torch.log10(clean.pow(2).sum(-1) / (noisy - clean).pow(2).sum(-1))


# ------------------------------------------------------------ interface
@pytest.mark.parametrize("algo", ALGOS)
def test_shapes_lengths_and_change(algo):
    augment = RawBoost(algo=algo).train()
    wavs, lengths = _wavs(), torch.tensor([1.0, 0.75, 0.5])
    torch.manual_seed(0)
    out, out_lengths = augment(wavs, lengths)
    assert out.shape == wavs.shape and out.dtype == wavs.dtype
    assert out_lengths is lengths
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[:, :4000], wavs[:, :4000])
    assert out.abs().max() <= 1.0 + 1e-5 or algo in (3, 4, 6, 7)  # SSI adds noise last


@pytest.mark.parametrize("algo", ALGOS)
def test_eval_mode_is_identity(algo):
    augment = RawBoost(algo=algo).eval()
    wavs, lengths = _wavs(), torch.tensor([1.0, 0.75, 0.5])
    out, out_lengths = augment(wavs, lengths)
    assert out is wavs and out_lengths is lengths


@pytest.mark.parametrize("algo", ALGOS)
def test_padded_samples_stay_zero(algo):
    augment = RawBoost(algo=algo).train()
    wavs, lengths = _wavs(), torch.tensor([1.0, 0.75, 0.5])
    wavs[1, 6000:] = 0.0
    wavs[2, 4000:] = 0.0
    torch.manual_seed(1)
    out, _ = augment(wavs, lengths)
    assert torch.count_nonzero(out[1, 6000:]) == 0
    assert torch.count_nonzero(out[2, 4000:]) == 0
    assert torch.count_nonzero(out[2, :4000]) > 3000


@pytest.mark.parametrize("algo", ALGOS)
def test_deterministic_with_manual_seed(algo):
    augment = RawBoost(algo=algo).train()
    wavs = _wavs()
    torch.manual_seed(3)
    first, _ = augment(wavs)
    torch.manual_seed(3)
    second, _ = augment(wavs)
    torch.manual_seed(4)
    third, _ = augment(wavs)
    assert torch.equal(first, second)
    assert not torch.allclose(first, third)


def test_silent_input_stays_finite():
    out = RawBoost(algo=4).augment(torch.zeros(2, 4000))
    assert torch.isfinite(out).all() and torch.count_nonzero(out) == 0


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="algo"):
        RawBoost(algo=9)
    with pytest.raises(ValueError, match="prob"):
        RawBoost(prob=1.5)
    with pytest.raises(ValueError, match=r"\[B, S\]"):
        RawBoost().augment(torch.zeros(4000))


def test_algo_zero_and_prob_zero_are_identity():
    wavs = _wavs()
    assert RawBoost(algo=0).train()(wavs)[0] is wavs
    assert RawBoost(algo=5, prob=0.0).train()(wavs)[0] is wavs


def test_prob_selects_utterances():
    augment = RawBoost(algo=3, prob=0.5).train()
    wavs = _wavs(batch=40, samples=1000)
    torch.manual_seed(0)
    out, _ = augment(wavs)
    changed = (out != wavs).any(-1)
    assert 5 < int(changed.sum()) < 35
    assert torch.equal(out[~changed], wavs[~changed])


# -------------------------------------------------------------- filters
@pytest.mark.parametrize("taps, low, high", [(11, 1e-3, 400.0), (51, 500.0, 1500.0),
                                             (99, 3000.0, 8000 - 1e-3)])
def test_notch_fir_matches_scipy_firwin(taps, low, high):
    ours = notch_fir(torch.tensor([taps]), torch.tensor([low]), torch.tensor([high]), RATE)
    reference = signal.firwin(taps, [low, high], window="hamming", fs=RATE)
    assert np.allclose(ours[0].numpy(), reference, atol=1e-8)


def test_random_notch_filters_are_symmetric_with_requested_peak_gain():
    torch.manual_seed(0)
    filters = RawBoost(num_bands=3).random_notch_filters(4, -6.0, -6.0)
    assert filters.shape[-1] % 2 == 1
    assert torch.allclose(filters, filters.flip(-1), atol=1e-12)
    for row in filters.numpy():
        _, response = signal.freqz(row, 1, worN=8192, fs=RATE)
        assert np.abs(response).max() == pytest.approx(10 ** (-6 / 20), rel=1e-3)


# ------------------------------------------------------ algo characters
def test_lnl_linear_term_is_a_notch_filter():
    """One band fixed at 2 kHz +- 200 Hz: a 2 kHz tone is removed, 500 Hz passes."""
    augment = RawBoost(algo=1, num_nonlinear=1, num_bands=1, min_freq=2000, max_freq=2000,
                       min_bandwidth=400, max_bandwidth=400, min_coeff=201, max_coeff=201)
    tones = torch.stack([_tone(2000), _tone(500)])
    out = augment.augment(tones)
    middle = slice(1000, 7000)  # away from the edges of the filter
    ratio = out[:, middle].pow(2).mean(-1) / tones[:, middle].pow(2).mean(-1)
    assert 10 * math.log10(ratio[0]) < -30
    assert ratio[1] == pytest.approx(1.0, abs=0.05)


def test_lnl_is_linear_with_one_term_and_nonlinear_with_more():
    wavs = _wavs(scale=0.05)
    for terms, linear in [(1, True), (5, False)]:
        augment = RawBoost(algo=1, num_nonlinear=terms, min_gain=0, max_gain=0,
                           min_bias=0, max_bias=0)
        torch.manual_seed(5)
        single = augment.augment(wavs)
        torch.manual_seed(5)
        double = augment.augment(2 * wavs)
        assert torch.allclose(double, 2 * single, atol=1e-6) == linear
        assert single.abs().max() < 1  # no peak normalisation involved
        assert single.mean(-1).abs().max() < 1e-6  # mean removed


def test_isd_changes_a_fraction_of_samples():
    percent, gain = 10.0, 2.0
    augment = RawBoost(algo=2, isd_max_percent=percent, isd_gain=gain)
    wavs = _wavs(batch=8, samples=10000, scale=0.01)  # peak stays < 1: no normalisation
    torch.manual_seed(0)
    out = augment.augment(wavs)
    changed = out != wavs
    fraction = changed.float().mean(-1)
    assert (fraction <= percent / 100).all()
    assert fraction.max() > 0.02 and fraction.std() > 0  # random per utterance
    difference = (out - wavs).abs()
    assert (difference <= gain * wavs.abs() + 1e-7).all()


def test_isd_only_touches_valid_samples():
    augment = RawBoost(algo=2, isd_max_percent=50.0)
    wavs = _wavs(batch=4, samples=2000, scale=0.01)
    torch.manual_seed(0)
    out = augment.augment(wavs, torch.full((4,), 0.5))
    assert torch.count_nonzero(out[:, 1000:]) == 0
    changed = (out[:, :1000] != wavs[:, :1000]).float().mean(-1)
    assert (changed <= 0.5).all() and changed.max() > 0.1


@pytest.mark.parametrize("snr_min, snr_max", [(10.0, 40.0), (20.0, 20.0)])
def test_ssi_snr_in_configured_range(snr_min, snr_max):
    augment = RawBoost(algo=3, snr_min=snr_min, snr_max=snr_max)
    wavs = _wavs(batch=16, samples=4000)
    torch.manual_seed(0)
    snr = _snr_db(wavs, augment.augment(wavs))
    assert (snr >= snr_min - 1e-3).all() and (snr <= snr_max + 1e-3).all()
    if snr_max > snr_min:
        assert snr.std() > 1  # random per utterance


def test_ssi_snr_counts_valid_samples_only():
    augment = RawBoost(algo=3, snr_min=15.0, snr_max=15.0)
    wavs = _wavs(batch=2, samples=4000)
    wavs[1, 1000:] = 0.0
    torch.manual_seed(0)
    out = augment.augment(wavs, torch.tensor([1.0, 0.25]))
    assert torch.allclose(_snr_db(wavs, out), torch.full((2,), 15.0), atol=1e-3)
    noise = out[1, :1000] - wavs[1, :1000]
    assert torch.count_nonzero(noise) == 1000  # noise over every valid sample


def test_parallel_algo_differs_from_series():
    wavs = _wavs()
    outs = {}
    for algo in (5, 8):
        torch.manual_seed(0)
        outs[algo] = RawBoost(algo=algo).augment(wavs)
    assert not torch.allclose(outs[5], outs[8])
    assert outs[8].abs().max() <= 1.0 + 1e-6


def test_half_precision_input():
    wavs = _wavs().half()
    torch.manual_seed(0)
    out, _ = RawBoost(algo=4).train()(wavs)
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
