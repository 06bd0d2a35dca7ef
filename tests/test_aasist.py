"""Tests for the SSL-AASIST back-end and the spoofing head / score."""

import copy

import pytest
import torch
import torch.nn.functional as F

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


# ------------------------------------------- the reference (TakHemlata/SSL_Anti-spoofing)
# Parameters of the reference ``Model`` after its SSL front-end, by name and shape, read
# off the layer definitions of its model.py: LL, first_bn, six residual blocks
# (filts [1, 32] first, [32, 32], [32, 64], then [64, 64] three times), first_bn1, the
# 1x1-conv attention, pos_S, two master nodes, two GATs (64 -> 64), four HS-GALs
# (64 -> 32, 32 -> 32, twice), six graph pools and the output layer.
def _linear_shapes(name, n_in, n_out):
    return {f"{name}.weight": (n_out, n_in), f"{name}.bias": (n_out,)}


def _conv_shapes(name, n_in, n_out, kernel):
    return {f"{name}.weight": (n_out, n_in, *kernel), f"{name}.bias": (n_out,)}


def _norm_shapes(name, channels):
    return {f"{name}.weight": (channels,), f"{name}.bias": (channels,)}


def reference_param_shapes(ssl_dim):
    shapes = {**_linear_shapes("LL", ssl_dim, 128), **_norm_shapes("first_bn", 1),
              **_norm_shapes("first_bn1", 64)}
    blocks = [(1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)]
    for i, (c_in, c_out) in enumerate(blocks):
        name = f"encoder.{i}.0"
        if i > 0:
            shapes.update(_norm_shapes(f"{name}.bn1", c_in))
        shapes.update(_conv_shapes(f"{name}.conv1", c_in, c_out, (2, 3)))
        shapes.update(_norm_shapes(f"{name}.bn2", c_out))
        shapes.update(_conv_shapes(f"{name}.conv2", c_out, c_out, (2, 3)))
        if c_in != c_out:
            shapes.update(_conv_shapes(f"{name}.conv_downsample", c_in, c_out, (1, 3)))
    shapes.update(_conv_shapes("attention.0", 64, 128, (1, 1)))
    shapes.update(_norm_shapes("attention.2", 128))
    shapes.update(_conv_shapes("attention.3", 128, 64, (1, 1)))
    shapes.update({"pos_S": (1, 42, 64), "master1": (1, 1, 64), "master2": (1, 1, 64)})
    for name in ("GAT_layer_S", "GAT_layer_T"):
        for layer in ("att_proj", "proj_with_att", "proj_without_att"):
            shapes.update(_linear_shapes(f"{name}.{layer}", 64, 64))
        shapes[f"{name}.att_weight"] = (64, 1)
        shapes.update(_norm_shapes(f"{name}.bn", 64))
    for name, n_in in (("ST11", 64), ("ST12", 32), ("ST21", 64), ("ST22", 32)):
        name = f"HtrgGAT_layer_{name}"
        shapes.update(_linear_shapes(f"{name}.proj_type1", n_in, n_in))
        shapes.update(_linear_shapes(f"{name}.proj_type2", n_in, n_in))
        for layer in ("att_proj", "att_projM", "proj_with_att", "proj_without_att",
                      "proj_with_attM", "proj_without_attM"):
            shapes.update(_linear_shapes(f"{name}.{layer}", n_in, 32))
        for weight in ("11", "22", "12", "M"):
            shapes[f"{name}.att_weight{weight}"] = (32, 1)
        shapes.update(_norm_shapes(f"{name}.bn", 32))
    for name, dim in (("pool_S", 64), ("pool_T", 64), ("pool_hS1", 32), ("pool_hT1", 32),
                      ("pool_hS2", 32), ("pool_hT2", 32)):
        shapes.update(_linear_shapes(f"{name}.proj", dim, 1))
    shapes.update(_linear_shapes("out_layer", 5 * 32, 2))
    return shapes


def _count(shapes):
    total = 0
    for shape in shapes.values():
        size = 1
        for n in shape:
            size *= n
        total += size
    return total


@pytest.mark.parametrize("ssl_dim, expected", [(1024, 447_242), (768, 414_474)])
def test_parameters_are_the_references(ssl_dim, expected):
    reference = reference_param_shapes(ssl_dim)
    assert _count(reference) == expected == 128 * ssl_dim + 316_170
    for num_layers in (13, 25):
        backend = SSLAASIST(num_layers, ssl_dim, layer_weighting="last")
        assert _num_params(backend) == expected
        assert {n: tuple(p.shape) for n, p in backend.named_parameters()} == reference
        # the default learns a weight per hidden state on top
        assert _num_params(SSLAASIST(num_layers, ssl_dim)) == expected + num_layers


def test_reference_layout():
    backend = SSLAASIST(25, 1024)
    assert backend.num_spectral_nodes == 42  # 128 // 3, as SSL-AASIST
    assert backend.pos_S.shape == (1, 42, 64)
    assert backend.out_layer.in_features == 5 * 32
    assert len(backend.encoder) == 6
    assert torch.allclose(backend.normalized_layer_weights(), torch.full((25,), 1 / 25))
    assert torch.equal(backend.layer_weights.data, torch.zeros(25))
    last = SSLAASIST(25, 1024, layer_weighting="last")
    assert last.layer_weights is None
    assert torch.equal(last.normalized_layer_weights(), torch.eye(25)[-1])
    # the reference's unused bn1 (all blocks but the first) is frozen
    frozen = {n for n, p in last.named_parameters() if not p.requires_grad}
    assert frozen == {f"encoder.{i}.0.bn1.{w}" for i in range(1, 6) for w in ("weight", "bias")}
    assert all(p.requires_grad for p in SSLAASIST(25, 1024, pre_activation=True).parameters())


def test_bad_layer_weighting_raises():
    with pytest.raises(ValueError, match="layer_weighting"):
        SSLAASIST(LAYERS, DIM, layer_weighting="first")


# An independent transcription of the reference forward (eval mode, one fixed-length
# batch, no padding), written functionally from the reference's model.py and reading
# the weights by the reference's parameter names.
def _r_linear(sd, name, x):
    return F.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])


def _r_norm(sd, name, x):
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"],
                        sd[f"{name}.weight"], sd[f"{name}.bias"], training=False, eps=1e-5)


def _r_conv(sd, name, x, padding):
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=padding)


def _r_pairwise(x):
    n = x.size(1)
    rows = x.unsqueeze(2).expand(-1, -1, n, -1)  # [b, i, j] = x_i
    return rows * rows.transpose(1, 2)  # x_i * x_j


def _r_node_norm(sd, name, x):
    return _r_norm(sd, name, x.reshape(-1, x.size(-1))).reshape(x.shape)


def _r_gat(sd, name, x, temp):
    att = torch.tanh(_r_linear(sd, f"{name}.att_proj", _r_pairwise(x)))
    att = torch.softmax(torch.matmul(att, sd[f"{name}.att_weight"]) / temp, dim=-2)
    out = (_r_linear(sd, f"{name}.proj_with_att", torch.matmul(att.squeeze(-1), x))
           + _r_linear(sd, f"{name}.proj_without_att", x))
    return F.selu(_r_node_norm(sd, f"{name}.bn", out))


def _r_htrg(sd, name, x1, x2, master, temp):
    n1 = x1.size(1)
    x = torch.cat([_r_linear(sd, f"{name}.proj_type1", x1),
                   _r_linear(sd, f"{name}.proj_type2", x2)], dim=1)
    hid = torch.tanh(_r_linear(sd, f"{name}.att_proj", _r_pairwise(x)))
    board = torch.zeros_like(hid[..., :1])
    board[:, :n1, :n1] = hid[:, :n1, :n1] @ sd[f"{name}.att_weight11"]
    board[:, n1:, n1:] = hid[:, n1:, n1:] @ sd[f"{name}.att_weight22"]
    board[:, :n1, n1:] = hid[:, :n1, n1:] @ sd[f"{name}.att_weight12"]
    board[:, n1:, :n1] = hid[:, n1:, :n1] @ sd[f"{name}.att_weight12"]
    att = torch.softmax(board / temp, dim=-2)
    m_att = torch.tanh(_r_linear(sd, f"{name}.att_projM", x * master)) @ sd[f"{name}.att_weightM"]
    m_att = torch.softmax(m_att / temp, dim=-2)  # [B, N, 1]
    master = (_r_linear(sd, f"{name}.proj_with_attM", m_att.transpose(1, 2) @ x)
              + _r_linear(sd, f"{name}.proj_without_attM", master))
    out = (_r_linear(sd, f"{name}.proj_with_att", att.squeeze(-1) @ x)
           + _r_linear(sd, f"{name}.proj_without_att", x))
    out = F.selu(_r_node_norm(sd, f"{name}.bn", out))
    return out[:, :n1], out[:, n1:], master


def _r_pool(sd, name, h, ratio):
    scores = torch.sigmoid(_r_linear(sd, f"{name}.proj", h))  # [B, N, 1]
    keep = max(int(h.size(1) * ratio), 1)
    index = torch.topk(scores, keep, dim=1).indices.expand(-1, -1, h.size(2))
    return torch.gather(h * scores, 1, index)


def reference_logits(sd, feats, gat_temp=2.0, hsgal_temp=100.0):
    """The reference back-end on SSL features ``[B, T, D]`` (temperatures of the GATs and
    of all four HS-GALs: 2 and 100 in the reference)."""
    x = _r_linear(sd, "LL", feats).transpose(1, 2).unsqueeze(1)
    x = F.selu(_r_norm(sd, "first_bn", F.max_pool2d(x, (3, 3))))
    for i, (c_in, c_out) in enumerate([(1, 32), (32, 32), (32, 64)] + [(64, 64)] * 3):
        name = f"encoder.{i}.0"
        out = _r_conv(sd, f"{name}.conv1", x, (1, 1))  # on x: bn1's output is discarded
        out = _r_conv(sd, f"{name}.conv2", F.selu(_r_norm(sd, f"{name}.bn2", out)), (0, 1))
        if c_in != c_out:
            x = _r_conv(sd, f"{name}.conv_downsample", x, (0, 1))
        x = out + x
    x = F.selu(_r_norm(sd, "first_bn1", x))
    w = F.selu(_r_conv(sd, "attention.0", x, 0))
    w = _r_conv(sd, "attention.3", _r_norm(sd, "attention.2", w), 0)
    e_s = torch.sum(x * torch.softmax(w, dim=-1), dim=-1).transpose(1, 2) + sd["pos_S"]
    out_s = _r_pool(sd, "pool_S", _r_gat(sd, "GAT_layer_S", e_s, gat_temp), 0.5)
    e_t = torch.sum(x * torch.softmax(w, dim=-2), dim=-2).transpose(1, 2)
    out_t = _r_pool(sd, "pool_T", _r_gat(sd, "GAT_layer_T", e_t, gat_temp), 0.5)
    branches = []
    for k in ("1", "2"):
        t, s, master = _r_htrg(sd, f"HtrgGAT_layer_ST{k}1", out_t, out_s, sd[f"master{k}"],
                               hsgal_temp)
        s = _r_pool(sd, f"pool_hS{k}", s, 0.5)
        t = _r_pool(sd, f"pool_hT{k}", t, 0.5)
        t_aug, s_aug, m_aug = _r_htrg(sd, f"HtrgGAT_layer_ST{k}2", t, s, master, hsgal_temp)
        branches.append((t + t_aug, s + s_aug, master + m_aug))
    t, s, master = (torch.max(a, b) for a, b in zip(*branches))
    hidden = torch.cat([t.abs().max(dim=1).values, t.mean(dim=1),
                        s.abs().max(dim=1).values, s.mean(dim=1), master.squeeze(1)], dim=1)
    return _r_linear(sd, "out_layer", hidden)


def _reference_backend(ssl_dim, layers=3, seed=0, **kwargs):
    """Reference-configured back-end with random BatchNorm statistics (so they matter)."""
    torch.manual_seed(seed)
    backend = SSLAASIST(layers, ssl_dim, layer_weighting="last", **kwargs)
    with torch.no_grad():
        for module in backend.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.normal_(0.0, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.3)
    return backend.eval()


@pytest.mark.parametrize("ssl_dim", [1024, 768])
def test_equals_the_reference_forward(ssl_dim):
    backend = _reference_backend(ssl_dim)
    sd = backend.state_dict()
    torch.manual_seed(1)
    hidden = torch.randn(3, 2, 100, ssl_dim)  # [L+1, B, T, D]; T = 100 -> 33 frames (floor)
    with torch.no_grad():
        ours = backend(hidden)
        expected = reference_logits(sd, hidden[-1])
        ours64 = backend.double()(hidden.double())
        expected64 = reference_logits(backend.state_dict(), hidden[-1].double())
    assert ours.shape == expected.shape == (2, 2)
    assert torch.allclose(ours, expected, atol=1e-5, rtol=0)
    assert torch.allclose(ours64, expected64, atol=1e-10, rtol=0)
    # the other hidden states play no part
    hidden[:-1] = float("nan")
    with torch.no_grad():
        assert torch.allclose(backend.float()(hidden), expected, atol=1e-5, rtol=0)


def test_equals_the_reference_forward_at_sharper_attention():
    """Temperature 100 makes the HS-GAL attention almost uniform: at 1 the test sees it."""
    backend = _reference_backend(768, seed=5, temperatures=(1.0, 1.0, 1.0, 1.0))
    torch.manual_seed(4)
    feats = torch.randn(2, 80, 768)
    with torch.no_grad():
        ours = backend(feats.expand(3, -1, -1, -1))
        expected = reference_logits(backend.state_dict(), feats, gat_temp=1.0, hsgal_temp=1.0)
    assert torch.allclose(ours, expected, atol=1e-5, rtol=0)


def test_padded_batch_equals_the_reference_per_utterance():
    backend = _reference_backend(1024, seed=3)
    torch.manual_seed(2)
    hidden = torch.randn(3, 3, 90, 1024)
    counts = (90, 50, 7)
    for b, n in enumerate(counts):
        hidden[:, b, n:] = float("nan")  # padding
    lengths = torch.tensor([n / 90 for n in counts])
    with torch.no_grad():
        ours = backend(hidden, lengths)
        for b, n in enumerate(counts):
            expected = reference_logits(backend.state_dict(), hidden[-1, b:b + 1, :n])
            assert torch.allclose(ours[b], expected[0], atol=1e-5, rtol=0), n


def test_unused_bn1_unless_pre_activation():
    hidden = random_hidden(batch=2, frames=30)
    for pre_activation in (False, True):
        backend = _aasist(pre_activation=pre_activation)
        with torch.no_grad():
            before = backend(hidden)
            backend.encoder[1][0].bn1.bias.add_(1.0)
            after = backend(hidden)
        assert torch.equal(before, after) is not pre_activation
    backend = _aasist(pre_activation=True).train()
    backend(hidden).sum().backward()
    assert backend.encoder[1][0].bn1.weight.grad is not None


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
@pytest.mark.parametrize("options", [
    dict(block_pool=(1, 1)),
    dict(block_pool=(1, 3)),
    dict(layer_weighting="last", pre_activation=True),
])
@pytest.mark.parametrize("fill", ["zeros", "garbage", "nan"])
@pytest.mark.parametrize("valid", [37, 8, 2, 1])
def test_padded_frames_do_not_matter(fill, valid, options):
    backend = _aasist(**options)
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
    for seed, options in ((1, {}), (7, dict(pre_activation=True, layer_weighting="last"))):
        backend = _aasist(**options).train()
        _, batch, lengths = padded_hidden_batch(valid=23, frames=40, fill="garbage", seed=seed)
        clean = batch.clone()
        clean[:, 0, 23:] = 0.0
        outs = []
        for hidden in (batch, clean):
            model = copy.deepcopy(backend)
            torch.manual_seed(123)
            outs.append((model(hidden, lengths), model.first_bn1.running_var.clone()))
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
    assert backend.master1.grad is not None and backend.pos_S.grad is not None
    assert backend.master2.grad is not None
    assert backend.encoder[1][0].bn1.weight.grad is None  # frozen, as never used
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
    scores = torch.sigmoid(pool.proj(x)).squeeze(-1)
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
