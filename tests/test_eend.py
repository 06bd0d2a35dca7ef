"""Tests for the powerset encoding and the EEND diarization head."""

import copy
import itertools

import pytest
import torch

from speechbrain_pruning.diarization import EENDHead
from speechbrain_pruning.pruning import build_module as build_backend
from speechbrain_pruning.diarization.powerset import Powerset

LAYERS, DIM = 3, 16
SMALL = dict(num_layers=LAYERS, feat_dim=DIM, hidden=8, conformer_layers=2, heads=2,
             ffn_dim=16, kernel_size=5, dropout=0.1)


def _head(**overrides):
    torch.manual_seed(0)
    return EENDHead(**{**SMALL, **overrides}).eval()


def _hidden(batch=2, frames=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(LAYERS, batch, frames, DIM, generator=generator)


def _valid_labels(batch, frames, speakers, max_per_frame, seed=0):
    """Random multi-label targets with at most ``max_per_frame`` active speakers."""
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(batch, frames, speakers, generator=generator) < 0.4).float()
    keep = labels.cumsum(dim=-1) <= max_per_frame
    return labels * keep


def _random_log_probs(batch, frames, classes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(batch, frames, classes, generator=generator) * 2, -1)


# ----------------------------------------------------------------- powerset
def test_powerset_classes_and_order():
    ps = Powerset(4, 2)
    assert ps.num_classes == 11
    assert ps.classes == [(), (0,), (1,), (2,), (3,), (0, 1), (0, 2), (0, 3), (1, 2),
                          (1, 3), (2, 3)]
    assert ps.mapping.shape == (11, 4)
    assert ps.mapping.sum(dim=1).tolist() == [0] + [1] * 4 + [2] * 6
    assert Powerset(3, 3).num_classes == 8
    assert Powerset(3, 3).classes[-1] == (0, 1, 2)


def test_invalid_powerset_raises():
    with pytest.raises(ValueError):
        Powerset(2, 3)


@pytest.mark.parametrize("speakers,max_per_frame", [(4, 2), (3, 3), (3, 1)])
def test_round_trip(speakers, max_per_frame):
    ps = Powerset(speakers, max_per_frame)
    labels = _valid_labels(3, 50, speakers, max_per_frame)
    classes = ps.to_powerset(labels)
    assert classes.shape == (3, 50) and classes.dtype == torch.long
    assert torch.equal(ps.mapping[classes], labels)
    one_hot = torch.nn.functional.one_hot(classes, ps.num_classes).float()
    assert torch.equal(ps.to_multilabel(torch.log(one_hot.clamp(min=1e-9))), labels)
    assert torch.equal(ps.to_multilabel(one_hot), labels)
    assert torch.allclose(ps.to_multilabel(one_hot, soft=True), labels)


def test_too_many_speakers_keep_first_columns():
    ps = Powerset(4, 2)
    labels = torch.tensor([[[0, 1, 1, 1], [1, 1, 1, 1]]])
    assert ps.mapping[ps.to_powerset(labels)].tolist() == [[[0, 1, 1, 0], [1, 1, 0, 0]]]


def test_soft_multilabel_is_marginal():
    ps = Powerset(4, 2)
    log_probs = _random_log_probs(2, 7, ps.num_classes)
    soft = ps.to_multilabel(log_probs, soft=True)
    assert torch.allclose(soft, ps.to_multilabel(log_probs.exp(), soft=True))
    expected = torch.stack(
        [sum(log_probs[..., c].exp() for c, s in enumerate(ps.classes) if k in s)
         for k in range(4)], dim=-1)
    assert torch.allclose(soft, expected, atol=1e-6)


def _brute_force_pit(ps, log_probs, labels, counts):
    losses, perms = [], []
    for b in range(log_probs.shape[0]):
        n = int(counts[b])
        best = None
        for perm in itertools.permutations(range(ps.max_speakers)):
            targets = ps.to_powerset(labels[b:b + 1, :n][..., list(perm)])[0]
            nll = -log_probs[b, torch.arange(n), targets].mean()
            if best is None or nll < best[0]:
                best = (nll, perm)
        losses.append(best[0])
        perms.append(best[1])
    return torch.stack(losses).mean(), torch.tensor(perms)


@pytest.mark.parametrize("speakers,max_per_frame", [(4, 2), (3, 3)])
def test_pit_matches_brute_force(speakers, max_per_frame):
    ps = Powerset(speakers, max_per_frame)
    batch, frames = 3, 40
    log_probs = _random_log_probs(batch, frames, ps.num_classes, seed=1)
    labels = _valid_labels(batch, frames, speakers, max_per_frame, seed=2)
    lengths = torch.tensor([1.0, 0.5, 0.8])
    counts = torch.round(lengths * frames).long()
    loss, perm = ps.permutation_invariant_loss(log_probs, labels, lengths,
                                               return_permutation=True)
    expected, expected_perm = _brute_force_pit(ps, log_probs, labels, counts)
    assert torch.allclose(loss, expected, atol=1e-6)
    assert torch.equal(perm, expected_perm)
    # without lengths every frame counts
    full, _ = _brute_force_pit(ps, log_probs, labels, torch.full((batch,), frames))
    assert torch.allclose(ps.permutation_invariant_loss(log_probs, labels), full, atol=1e-6)


def test_pit_invariant_to_target_permutation():
    ps = Powerset(4, 2)
    log_probs = _random_log_probs(4, 30, ps.num_classes, seed=3)
    labels = _valid_labels(4, 30, 4, 2, seed=4)
    lengths = torch.tensor([1.0, 0.7, 0.3, 0.9])
    reference = ps.permutation_invariant_loss(log_probs, labels, lengths)
    for perm in ([1, 0, 2, 3], [3, 2, 1, 0], [2, 3, 0, 1]):
        shuffled = ps.permutation_invariant_loss(log_probs, labels[..., perm], lengths)
        assert torch.allclose(shuffled, reference, atol=1e-6)


def test_pit_perfect_prediction_recovers_permutation():
    ps = Powerset(4, 2)
    labels = _valid_labels(2, 25, 4, 2, seed=5)
    perm = [2, 0, 3, 1]
    classes = ps.to_powerset(labels[..., perm])
    log_probs = torch.log_softmax(
        torch.nn.functional.one_hot(classes, ps.num_classes).float() * 20, -1)
    loss, best = ps.permutation_invariant_loss(log_probs, labels, return_permutation=True)
    assert loss < 1e-6
    aligned = torch.stack([labels[b][:, best[b]] for b in range(2)])
    assert torch.equal(aligned, labels[..., perm])


def test_pit_ignores_padded_frames():
    ps = Powerset(4, 2)
    log_probs = _random_log_probs(2, 30, ps.num_classes, seed=6)
    labels = _valid_labels(2, 30, 4, 2, seed=7)
    lengths = torch.tensor([1.0, 0.5])
    reference = ps.permutation_invariant_loss(log_probs, labels, lengths)
    garbage_lp, garbage_labels = log_probs.clone(), labels.clone()
    garbage_lp[1, 15:] = float("nan")
    garbage_labels[1, 15:] = 1.0
    loss = ps.permutation_invariant_loss(garbage_lp, garbage_labels, lengths)
    assert torch.allclose(loss, reference)
    alone = ps.permutation_invariant_loss(log_probs[1:, :15], labels[1:, :15])
    first = ps.permutation_invariant_loss(log_probs[:1], labels[:1])
    assert torch.allclose(reference, (alone + first) / 2, atol=1e-6)


def test_pit_gradient_and_shape_checks():
    ps = Powerset(4, 2)
    logits = torch.randn(2, 10, 11, requires_grad=True)
    labels = _valid_labels(2, 10, 4, 2)
    ps.permutation_invariant_loss(torch.log_softmax(logits, -1), labels).backward()
    assert logits.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        ps.permutation_invariant_loss(torch.randn(2, 10, 7), labels)
    with pytest.raises(ValueError):
        ps.permutation_invariant_loss(torch.randn(2, 10, 11), labels[..., :3])


# ----------------------------------------------------------------- EEND head
@pytest.mark.parametrize("weighted_sum", ["linear", "softmax"])
def test_output_shape_and_normalised(weighted_sum):
    head = _head(weighted_sum=weighted_sum)
    log_probs = head(_hidden(batch=3, frames=17), torch.tensor([1.0, 0.6, 0.3]))
    assert log_probs.shape == (3, 17, 11)
    assert torch.isfinite(log_probs).all()
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 17), atol=1e-5)
    assert head.powerset.num_classes == 11
    assert _head(max_speakers=3, max_per_frame=3)(_hidden()).shape == (2, 20, 8)


def test_wrong_input_raises():
    with pytest.raises(ValueError, match="hidden states"):
        _head()(torch.randn(LAYERS + 1, 2, 10, DIM))
    with pytest.raises(ValueError, match="weighted_sum"):
        EENDHead(LAYERS, DIM, weighted_sum="mean")


def test_padding_does_not_leak_in_eval():
    head = _head()
    hidden = _hidden(batch=2, frames=20)
    lengths = torch.tensor([1.0, 0.6])  # item 1: 12 valid frames
    reference = head(hidden, lengths)
    alone = head(hidden[:, 1:, :12])
    assert torch.allclose(reference[1, :12], alone[0], atol=1e-5)
    garbage = hidden.clone()
    garbage[:, 1, 12:] = 1e4 * torch.randn_like(garbage[:, 1, 12:])
    garbage[0, 1, 15] = float("nan")
    out = head(garbage, lengths)
    assert torch.allclose(out[1, :12], reference[1, :12], atol=1e-5)
    assert torch.equal(out[0], reference[0])
    # every item shorter than T (torchaudio's Conformer.forward would fail here)
    short = head(hidden, torch.tensor([0.6, 0.6]))
    assert torch.allclose(short[1, :12], alone[0], atol=1e-5)


def test_plain_torchaudio_conformer_leaks_padding():
    """Documents why the depthwise-conv hook exists."""
    head = _head(mask_conv_padding=False)
    hidden = _hidden(batch=1, frames=20)
    alone = head(hidden[:, :, :12])
    padded = hidden.clone()
    padded[:, :, 12:] = 100 * torch.randn_like(padded[:, :, 12:])
    leaked = head(padded, torch.tensor([0.6]))
    assert not torch.allclose(leaked[0, :12], alone[0], atol=1e-4)


def test_training_mode_and_gradient_reaches_hidden():
    head = _head().train()
    hidden = _hidden(batch=2, frames=20).requires_grad_(True)
    lengths = torch.tensor([1.0, 0.5])
    log_probs = head(hidden, lengths)
    labels = _valid_labels(2, 20, 4, 2)
    loss = head.powerset.permutation_invariant_loss(log_probs, labels, lengths)
    loss.backward()
    assert torch.isfinite(loss)
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0
    assert hidden.grad[:, 1, 10:].abs().max() == 0  # padding gets no gradient
    assert head.layer_weights.weight.grad.abs().sum() > 0
    assert head._valid is None


def test_state_dict_copy_and_build_backend():
    head = _head()
    clone = copy.deepcopy(head)
    hidden = _hidden()
    lengths = torch.tensor([1.0, 0.5])
    assert torch.allclose(clone(hidden, lengths), head(hidden, lengths))
    built = build_backend("speechbrain_pruning.diarization.EENDHead", SMALL).eval()
    built.load_state_dict(head.state_dict())
    assert torch.allclose(built(hidden, lengths), head(hidden, lengths))


def test_diarizen_parameter_count():
    head = EENDHead(13, 768, hidden=256, conformer_layers=4, heads=4, ffn_dim=1024,
                    kernel_size=31, max_speakers=4, max_per_frame=2)
    count = sum(p.numel() for p in head.parameters())
    assert count == 6291992
    assert sum(p.numel() for p in head.conformer.parameters()) == 6091776
