"""Tests for speechbrain_pruning.speaker (MHFA, weighted-layer ECAPA, margin)."""

import copy
import math

import pytest
import torch
from speechbrain.nnet.losses import AdditiveAngularMargin, LogSoftmaxWrapper

from speechbrain_pruning.speaker import MHFA, MarginScheduler, WeightedLayerECAPA

from conftest import HIDDEN_DIM, HIDDEN_LAYERS, padded_hidden_batch, random_hidden

LAYERS, DIM = HIDDEN_LAYERS, HIDDEN_DIM
SMALL_MHFA = dict(num_layers=LAYERS, feat_dim=DIM, num_heads=3, compression_dim=8, embed_dim=6)
SMALL_ECAPA = dict(
    num_layers=LAYERS,
    feat_dim=DIM,
    lin_neurons=6,
    channels=(32, 32, 32, 32, 96),
    attention_channels=8,
    se_channels=8,
)


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def _mhfa(**overrides):
    torch.manual_seed(0)
    return MHFA(**{**SMALL_MHFA, **overrides}).eval()


def _ecapa(**overrides):
    torch.manual_seed(0)
    return WeightedLayerECAPA(**{**SMALL_ECAPA, **overrides}).eval()


BACKENDS = {"mhfa": _mhfa, "ecapa": _ecapa}


# ------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_output_shape(name):
    backend = BACKENDS[name]()
    hidden = random_hidden(batch=3, frames=25)
    assert backend(hidden).shape == (3, 6)
    assert backend(hidden, torch.tensor([1.0, 0.7, 0.4])).shape == (3, 6)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_wrong_number_of_layers_raises(name):
    with pytest.raises(ValueError, match="hidden states"):
        BACKENDS[name]()(random_hidden(layers=LAYERS + 1))


# ------------------------------------------------------------- MHFA details
@pytest.mark.parametrize(
    "num_layers, feat_dim, expected",
    [(13, 768, 1_249_850), (25, 1024, 1_315_410)],  # WavLM Base(+) / Large
)
def test_mhfa_reference_param_counts(num_layers, feat_dim, expected):
    assert _num_params(MHFA(num_layers, feat_dim)) == expected


def test_mhfa_layer_weights_start_uniform_and_separate():
    backend = _mhfa()
    weights_k, weights_v = backend.layer_weights()
    uniform = torch.full((LAYERS,), 1.0 / LAYERS)
    assert torch.allclose(weights_k, uniform)
    assert torch.allclose(weights_v, uniform)
    assert backend.weights_k is not backend.weights_v
    assert torch.equal(backend.weights_k.data, torch.ones(LAYERS))


def test_mhfa_matches_explicit_computation():
    backend = _mhfa()
    with torch.no_grad():
        backend.weights_k.copy_(torch.randn(LAYERS))
        backend.weights_v.copy_(torch.randn(LAYERS))
    hidden = random_hidden(batch=1, frames=12)
    keys = sum(w * h for w, h in zip(torch.softmax(backend.weights_k, 0), hidden))
    values = sum(w * h for w, h in zip(torch.softmax(backend.weights_v, 0), hidden))
    keys, values = backend.cmp_linear_k(keys), backend.cmp_linear_v(values)  # [1, T, C]
    attention = torch.softmax(backend.att_head(keys), dim=1)  # [1, T, H]
    pooled = torch.stack(
        [(attention[0, :, h, None] * values[0]).sum(0) for h in range(attention.shape[-1])]
    )  # [H, C]
    expected = backend.pooling_fc(pooled.flatten().unsqueeze(0))
    assert torch.allclose(backend(hidden), expected, atol=1e-6)


# ------------------------------------------------------ padding invariance
@pytest.mark.parametrize("fill", ["zeros", "garbage", "nan"])
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_padded_frames_do_not_matter(name, fill):
    backend = BACKENDS[name]()  # eval mode: ECAPA's BatchNorm uses running stats
    alone, batch, lengths = padded_hidden_batch(valid=37, frames=60, fill=fill)
    with torch.no_grad():
        reference = backend(alone)
        padded = backend(batch, lengths)
        # the other utterance of the batch is unaffected too
        full = backend(batch[:, 1:2])
    assert torch.isfinite(padded).all()
    assert torch.allclose(padded[0], reference[0], atol=1e-5, rtol=1e-4)
    assert torch.allclose(padded[1], full[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_lengths_follow_rounding_convention(name):
    """round(length * T) valid frames (ECAPA alone would keep t < length * T)."""
    backend = BACKENDS[name]()
    hidden = random_hidden(batch=1, frames=20)
    with torch.no_grad():
        for length, valid in [(0.47, 9), (0.48, 10), (0.5, 10), (1.0, 20)]:
            out = backend(hidden, torch.tensor([length]))
            alone = backend(hidden[:, :, :valid])
            assert torch.allclose(out, alone, atol=1e-5, rtol=1e-4), (length, valid)


def test_upstream_ecapa_convolutions_see_padding():
    """Documents why ``exact_padding`` exists: SpeechBrain's ECAPA-TDNN masks
    padding only in its SE means and attentive pooling; its dilated
    convolutions read the padded frames (receptive field +-11 frames)."""
    backend = _ecapa(exact_padding=False)
    alone, batch, lengths = padded_hidden_batch(valid=37, frames=60, fill="garbage")
    with torch.no_grad():
        difference = (backend(batch, lengths)[0] - backend(alone)[0]).abs().max()
    assert difference > 1e-3


def test_ecapa_exact_padding_trains_and_survives_deepcopy():
    backend = _ecapa().train()
    alone, batch, lengths = padded_hidden_batch(valid=20, frames=30, fill="zeros")
    out = backend(batch, lengths)
    out.sum().backward()
    assert backend.layer_weights.grad is not None
    twin = copy.deepcopy(backend).eval()
    backend.eval()
    with torch.no_grad():
        assert torch.allclose(twin(batch, lengths), backend(batch, lengths))
        assert torch.allclose(twin(batch, lengths)[0], twin(alone)[0], atol=1e-5, rtol=1e-4)


def test_ecapa_layer_weights_start_uniform():
    backend = _ecapa()
    assert torch.allclose(backend.normalized_layer_weights(), torch.full((LAYERS,), 0.25))


def test_ecapa_without_layer_norm():
    backend = _ecapa(layer_norm=False)
    assert isinstance(backend.norm, torch.nn.Identity)
    assert backend(random_hidden()).shape == (2, 6)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_gradients_reach_hidden_states_and_are_scaled(name):
    lengths = torch.tensor([1.0, 0.6])
    grads = {}
    for mult in (1.0, 0.1):
        backend = BACKENDS[name](feature_grad_mult=mult)
        hidden = random_hidden(frames=20).requires_grad_(True)
        backend(hidden, lengths).pow(2).sum().backward()
        grads[mult] = hidden.grad
    full = grads[1.0]
    assert full.abs().sum() > 0
    # padded frames of utterance 1 (12 valid of 20) get no gradient
    assert torch.count_nonzero(full[:, 1, 12:]) == 0
    assert full[:, 1, :12].abs().sum() > 0
    assert torch.allclose(grads[0.1], 0.1 * full, atol=1e-8, rtol=1e-5)


def test_feature_grad_mult_leaves_forward_unchanged():
    hidden = random_hidden()
    with torch.no_grad():
        assert torch.equal(_mhfa(feature_grad_mult=0.1)(hidden), _mhfa()(hidden))


# ------------------------------------------------------------------- margin
def _aam_inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    cosines = torch.rand(8, 5, generator=generator) * 2 - 1
    targets = torch.nn.functional.one_hot(torch.arange(8) % 5, 5).float()
    return cosines, targets


def test_margin_schedule_values():
    loss = AdditiveAngularMargin(margin=0.0, scale=30.0)
    scheduler = MarginScheduler(loss, start_margin=0.0, end_margin=0.2, start_epoch=1, end_epoch=5)
    expected = {0: 0.0, 1: 0.0, 2: 0.05, 3: 0.1, 4: 0.15, 5: 0.2, 9: 0.2}
    for epoch, margin in expected.items():
        assert scheduler(epoch) == pytest.approx(margin)
        assert loss.margin == pytest.approx(margin)
    assert scheduler.margin_at(2.5) == pytest.approx(0.075)


@pytest.mark.parametrize("easy_margin", [False, True])
def test_scheduled_loss_equals_fresh_loss(easy_margin):
    loss = AdditiveAngularMargin(margin=0.0, scale=30.0, easy_margin=easy_margin)
    scheduler = MarginScheduler(loss, 0.0, 0.2, start_epoch=1, end_epoch=5)
    cosines, targets = _aam_inputs()
    before = loss(cosines, targets)
    assert scheduler(5) == 0.2
    fresh = AdditiveAngularMargin(margin=0.2, scale=30.0, easy_margin=easy_margin)
    for name in ("margin", "cos_m", "sin_m", "th", "mm"):
        assert getattr(loss, name) == getattr(fresh, name), name
    assert torch.equal(loss(cosines, targets), fresh(cosines, targets))
    assert not torch.equal(before, fresh(cosines, targets))


def test_scheduler_through_logsoftmax_wrapper():
    loss = LogSoftmaxWrapper(AdditiveAngularMargin(margin=0.0, scale=30.0))
    fresh = LogSoftmaxWrapper(AdditiveAngularMargin(margin=0.2, scale=30.0))
    MarginScheduler(loss, 0.0, 0.2, start_epoch=1, end_epoch=5)(7)
    cosines, _ = _aam_inputs()
    labels = (torch.arange(8) % 5).unsqueeze(1)
    assert loss.loss_fn.cos_m == math.cos(0.2)
    assert torch.equal(loss(cosines.unsqueeze(1), labels), fresh(cosines.unsqueeze(1), labels))


def test_scheduler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="end_epoch"):
        MarginScheduler(AdditiveAngularMargin(), start_epoch=5, end_epoch=1)
    with pytest.raises(TypeError, match="margin"):
        MarginScheduler(torch.nn.Identity())
