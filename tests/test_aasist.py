"""Tests for the SSL-AASIST back-end and the spoofing head / score."""

import copy

import pytest
import torch

from speechbrain_pruning.pruning import build_module as build_backend
from speechbrain_pruning.spoofing import SSLAASIST, SpoofHead, bonafide_score
from speechbrain_pruning.spoofing.aasist import _GraphPool, _masked_batch_norm

from conftest import HIDDEN_DIM, HIDDEN_LAYERS, padded_hidden_batch, random_hidden

LAYERS, DIM = HIDDEN_LAYERS, HIDDEN_DIM
SMALL = dict(
    num_layers=LAYERS,
    feat_dim=DIM,
    proj_dim=12,
    channels=((1, 4), (4, 4), (4, 6)),
    attention_dim=8,
    gat_dims=(8, 6),
)


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def _aasist(**overrides):
    torch.manual_seed(0)
    return SSLAASIST(**{**SMALL, **overrides}).eval()


# ------------------------------------------------------------------ shapes
def test_output_shape_and_embedding():
    backend = _aasist()
    hidden = random_hidden(batch=3, frames=25)
    assert backend(hidden).shape == (3, 2)
    assert backend(hidden, torch.tensor([1.0, 0.7, 0.4])).shape == (3, 2)
    assert backend.embed(hidden).shape == (3, 5 * 6)
    assert _aasist(num_classes=3)(hidden).shape == (3, 3)


def test_wrong_number_of_layers_raises():
    with pytest.raises(ValueError, match="hidden states"):
        _aasist()(random_hidden(layers=LAYERS + 1))


def test_bad_channels_raise():
    with pytest.raises(ValueError, match="start with"):
        SSLAASIST(LAYERS, DIM, channels=((2, 4),))
    with pytest.raises(ValueError, match="chain"):
        SSLAASIST(LAYERS, DIM, channels=((1, 4), (8, 8)))


@pytest.mark.parametrize(
    "num_layers, feat_dim, expected",
    [(13, 768, 363_575), (25, 768, 363_587), (13, 1024, 396_343), (25, 1024, 396_355)],
)
def test_reference_param_counts(num_layers, feat_dim, expected):
    backend = SSLAASIST(num_layers, feat_dim)
    assert _num_params(backend) == expected
    assert 300_000 <= _num_params(SSLAASIST(num_layers, 1024)) <= 450_000


def test_reference_layout():
    backend = SSLAASIST(25, 1024)
    assert backend.num_spectral_nodes == 42  # 128 // 3, as SSL-AASIST
    assert backend.pos_spectral.shape == (1, 42, 64)
    assert backend.out_layer.in_features == 5 * 32
    assert torch.allclose(backend.normalized_layer_weights(), torch.full((25,), 1 / 25))
    assert torch.equal(backend.layer_weights.data, torch.zeros(25))


def test_default_model_runs_on_wavlm_large_shapes():
    backend = SSLAASIST(25, 1024).eval()
    hidden = torch.randn(25, 2, 100, 1024)
    with torch.no_grad():
        out = backend(hidden, torch.tensor([1.0, 0.55]))
        alone = backend(hidden[:, 1:, :55])
    assert out.shape == (2, 2)
    assert torch.allclose(out[1], alone[0], atol=1e-5, rtol=1e-4)


def test_build_backend():
    backend = build_backend("speechbrain_pruning.spoofing.SSLAASIST", SMALL)
    assert isinstance(backend, SSLAASIST)


# ------------------------------------------------------ padding invariance
@pytest.mark.parametrize("block_pool", [(1, 1), (1, 3)])
@pytest.mark.parametrize("fill", ["zeros", "garbage", "nan"])
@pytest.mark.parametrize("valid", [37, 8, 2, 1])
def test_padded_frames_do_not_matter(fill, valid, block_pool):
    backend = _aasist(block_pool=block_pool)
    alone, batch, lengths = padded_hidden_batch(valid=valid, frames=60, fill=fill)
    with torch.no_grad():
        reference = backend(alone)
        padded = backend(batch, lengths)
        full = backend(batch[:, 1:2])
    assert torch.isfinite(padded).all()
    assert torch.allclose(padded[0], reference[0], atol=1e-5, rtol=1e-4)
    assert torch.allclose(padded[1], full[0], atol=1e-5, rtol=1e-4)


def test_lengths_follow_rounding_convention():
    backend = _aasist()
    hidden = random_hidden(batch=1, frames=20)
    with torch.no_grad():
        for length, valid in [(0.47, 9), (0.48, 10), (0.5, 10), (1.0, 20)]:
            out = backend(hidden, torch.tensor([length]))
            alone = backend(hidden[:, :, :valid])
            assert torch.allclose(out, alone, atol=1e-5, rtol=1e-4), (length, valid)


def test_padding_does_not_matter_in_training_mode():
    """Same dropout draws: garbage in the padding changes neither the logits
    nor the BatchNorm running statistics (statistics over valid positions)."""
    for seed in (1, 7):
        backend = _aasist().train()
        _, batch, lengths = padded_hidden_batch(valid=23, frames=40, fill="garbage", seed=seed)
        clean = batch.clone()
        clean[:, 0, 23:] = 0.0
        outs = []
        for hidden in (batch, clean):
            model = copy.deepcopy(backend)
            torch.manual_seed(123)
            outs.append((model(hidden, lengths), model.encoder_norm.running_var.clone()))
        (garbage_out, garbage_var), (clean_out, clean_var) = outs
        assert torch.allclose(garbage_out, clean_out, atol=1e-5, rtol=1e-4)
        assert torch.allclose(garbage_var, clean_var, atol=1e-6)
        assert not torch.allclose(clean_var, torch.ones_like(clean_var))  # updated


def test_training_step_and_deepcopy():
    backend = _aasist().train()
    _, batch, lengths = padded_hidden_batch(valid=20, frames=30, fill="zeros")
    out = backend(batch, lengths)
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    assert backend.layer_weights.grad is not None
    assert backend.masters[0].grad is not None and backend.pos_spectral.grad is not None
    twin = copy.deepcopy(backend).eval()
    backend.eval()
    with torch.no_grad():
        assert torch.equal(twin(batch, lengths), backend(batch, lengths))


# ---------------------------------------------------------------- gradients
def test_gradients_reach_hidden_states_and_are_scaled():
    lengths = torch.tensor([1.0, 0.6])
    grads = {}
    for mult in (1.0, 0.1):
        backend = _aasist(feature_grad_mult=mult)
        hidden = random_hidden(frames=20).requires_grad_(True)
        backend(hidden, lengths).pow(2).sum().backward()
        grads[mult] = hidden.grad
    full = grads[1.0]
    assert full.abs().sum() > 0
    assert torch.count_nonzero(full[:, 1, 12:]) == 0  # padded frames of utterance 1
    assert full[:, 1, :12].abs().sum() > 0
    assert torch.allclose(grads[0.1], 0.1 * full, atol=1e-8, rtol=1e-5)


# ---------------------------------------------------------------- internals
def test_masked_batch_norm_matches_batch_norm_on_valid_positions():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 7)
    counts = torch.tensor([7, 3, 5])
    mask = (torch.arange(7)[None] < counts[:, None])[:, None, None, :]
    norm = torch.nn.BatchNorm2d(4).train()
    reference = torch.nn.BatchNorm2d(4).train()
    out = _masked_batch_norm(norm, x, mask)
    valid = torch.cat([x[b, :, :, :n].reshape(4, -1) for b, n in enumerate(counts)], dim=1)
    expected = reference(valid.T.reshape(-1, 4, 1, 1)).reshape(-1, 4).T  # [C, N]
    got = torch.cat([out[b, :, :, :n].reshape(4, -1) for b, n in enumerate(counts)], dim=1)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(norm.running_mean, reference.running_mean, atol=1e-6)
    assert torch.allclose(norm.running_var, reference.running_var, atol=1e-6)
    full = torch.ones(3, 1, 1, 7, dtype=torch.bool)
    assert torch.allclose(_masked_batch_norm(torch.nn.BatchNorm2d(4).train(), x, full),
                          torch.nn.BatchNorm2d(4).train()(x), atol=1e-5)


def test_graph_pool_keeps_top_fraction_of_valid_nodes():
    torch.manual_seed(0)
    pool = _GraphPool(ratio=0.5, dim=3).eval()
    x = torch.randn(2, 10, 3)
    mask = torch.arange(10)[None] < torch.tensor([[10], [5]])
    nodes, new_mask = pool(x, mask)
    assert nodes.shape == (2, 5, 3)
    assert new_mask.sum(1).tolist() == [5, 2]
    assert torch.count_nonzero(nodes[1, 2:]) == 0
    scores = torch.sigmoid(pool.score(x)).squeeze(-1)
    best = scores[1, :5].topk(2).indices
    assert torch.allclose(nodes[1, :2], x[1, best] * scores[1, best, None])
    nodes, new_mask = pool(x[:, :1])
    assert nodes.shape == (2, 1, 3) and new_mask is None  # at least one node


def test_time_pooling_reduces_temporal_nodes():
    backend = _aasist(block_pool=(1, 3))
    assert backend(random_hidden(frames=200)).shape == (2, 2)
    assert backend.num_spectral_nodes == 4


# --------------------------------------------------------------- spoof head
def test_spoof_head_shapes_and_params():
    head = SpoofHead(8).eval()
    assert head(torch.randn(5, 8)).shape == (5, 2)
    assert _num_params(SpoofHead(256)) == 2 * 256 + 256 * 2 + 2
    assert isinstance(head.layers[0], torch.nn.BatchNorm1d)
    assert isinstance(head.layers[1], torch.nn.ReLU)
    deep = SpoofHead(8, num_classes=3, hidden=4).eval()
    assert deep(torch.randn(5, 8)).shape == (5, 3)
    assert _num_params(deep) == 16 + 8 * 4 + 4 + 8 + 4 * 3 + 3
    with pytest.raises(ValueError, match="embeddings"):
        head(torch.randn(5, 9))


def test_spoof_head_trains():
    torch.manual_seed(0)
    head = SpoofHead(4)
    x = torch.cat([torch.randn(16, 4) + 2, torch.randn(16, 4) - 2])
    labels = torch.cat([torch.ones(16), torch.zeros(16)]).long()
    optimiser = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(50):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(head(x), labels).backward()
        optimiser.step()
    scores = bonafide_score(head.eval()(x))
    assert (scores[:16] > 0).all() and (scores[16:] < 0).all()


def test_bonafide_score_is_log_posterior_odds():
    logits = torch.randn(6, 2)
    score = bonafide_score(logits)
    log_post = torch.log_softmax(logits, dim=-1)
    assert score.shape == (6,)
    assert torch.allclose(score, log_post[:, 1] - log_post[:, 0], atol=1e-6)
    assert bonafide_score(torch.randn(3, 1, 2)).shape == (3, 1)
    with pytest.raises(ValueError, match="two-class"):
        bonafide_score(torch.randn(4, 3))
