"""Tests for speechbrain_pruning.pruning.distill (layer-wise distillation loss)."""

import math

import pytest
import torch

from speechbrain_pruning.pruning.distill import DistillLoss, cosine_term, valid_frame_mask

ALL_TERMS = dict(l1_weight=1.0, l2_weight=1.0, cos_weight=1.0)


def _hiddens(layers=3, batch=2, frames=6, dim=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(layers, batch, frames, dim, generator=generator)


# -------------------------------------------------------------- known values
def test_identical_hiddens():
    hiddens = _hiddens()
    loss, details = DistillLoss([0, 1, 2], **ALL_TERMS)(hiddens, hiddens.clone())
    assert details["l1"] == 0.0
    assert details["l2"] == 0.0
    assert details["cos"] == pytest.approx(-1.0, abs=1e-6)
    assert loss.item() == pytest.approx(-1.0, abs=1e-6)


def test_identical_hiddens_log_sig():
    hiddens = _hiddens()
    _, details = DistillLoss([1], cos_type="log_sig")(hiddens, hiddens)
    # -log(sigmoid(1)) = log(1 + e^-1)
    assert details["cos"] == pytest.approx(math.log1p(math.exp(-1)), abs=1e-6)


def test_constant_tensors():
    teacher = torch.ones(2, 3, 5, 4)
    student = torch.full((2, 3, 5, 4), 0.5)
    loss, details = DistillLoss([0, 1], **ALL_TERMS)(student, teacher)
    assert details == {"l1": 0.5, "l2": 0.25, "cos": -1.0}
    assert loss.item() == pytest.approx(0.5 + 0.25 - 1.0)


def test_known_vectors():
    # one layer, one utterance, two frames: [1, 0] vs [1, 1] and [0, 2] vs [3, 0]
    student = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])
    teacher = torch.tensor([[[[1.0, 1.0], [3.0, 0.0]]]])
    weights = dict(l1_weight=2.0, l2_weight=0.5, cos_weight=3.0)
    loss, details = DistillLoss([0], **weights)(student, teacher)
    l1 = (0 + 1 + 3 + 2) / 4
    l2 = (0 + 1 + 9 + 4) / 4
    cos = -(1 / math.sqrt(2) + 0.0) / 2
    assert details["l1"] == pytest.approx(l1)
    assert details["l2"] == pytest.approx(l2)
    assert details["cos"] == pytest.approx(cos)
    assert loss.item() == pytest.approx(2.0 * l1 + 0.5 * l2 + 3.0 * cos)
    _, log_sig = DistillLoss([0], cos_type="log_sig")(student, teacher)
    expected = -(math.log(1 / (1 + math.exp(-1 / math.sqrt(2)))) + math.log(0.5))
    assert log_sig["cos"] == pytest.approx(expected / 2)


def test_layer_pairing_and_default_teacher_layers():
    student = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2) + 1
    teacher = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2) + 1
    # student layer k holds k + 1, teacher layer k holds k + 1
    _, paired = DistillLoss([0, 2], [3, 0], cos_weight=0.0)(student, teacher)
    assert paired["l1"] == pytest.approx((3 + 2) / 2)  # |1-4|, |3-1|
    _, same = DistillLoss([0, 2], cos_weight=0.0)(student, teacher)
    assert same["l1"] == 0.0


def test_negative_raw_loss_like_diarizen():
    hiddens = _hiddens()
    loss, _ = DistillLoss([0], l1_weight=0.0)(hiddens, hiddens)
    assert loss.item() < 0


# ------------------------------------------------------------------- padding
def test_valid_frame_mask_rounding():
    mask = valid_frame_mask(torch.tensor([1.0, 0.5, 0.3, 0.01]), 10)
    assert mask.sum(dim=1).tolist() == [10, 5, 3, 1]


def test_frames_are_pooled_over_batch():
    teacher = torch.zeros(1, 2, 4, 2)
    student = torch.zeros(1, 2, 4, 2)
    student[:, 0] = 1.0  # 4 valid frames with |diff| = 1
    student[:, 1, :2] = 4.0  # 2 valid frames with |diff| = 4
    student[:, 1, 2:] = 100.0  # padding
    _, details = DistillLoss([0], cos_weight=0.0)(
        student, teacher, torch.tensor([1.0, 0.5])
    )
    assert details["l1"] == pytest.approx((4 * 1 + 2 * 4) / 6)


@pytest.mark.parametrize("cos_type", ["raw", "log_sig"])
def test_padded_frames_are_ignored(cos_type):
    student, teacher = _hiddens(seed=1), _hiddens(seed=2)
    lengths = torch.tensor([1.0, 0.5])
    loss_fn = DistillLoss([0, 2], **ALL_TERMS, cos_type=cos_type)
    clean, clean_details = loss_fn(student, teacher, lengths)
    student[:, 1, 3:] = float("nan")
    teacher[:, 1, 3:] = 1e6
    dirty, dirty_details = loss_fn(student, teacher, lengths)
    assert dirty.item() == clean.item()
    assert dirty_details == clean_details


def test_padded_loss_matches_unpadded_tensors():
    student, teacher = _hiddens(batch=1, seed=3), _hiddens(batch=1, seed=4)
    loss_fn = DistillLoss([0, 1], **ALL_TERMS)
    valid = 4
    padded_student = torch.cat([student, torch.full_like(student, 7.0)], dim=2)
    padded_teacher = torch.cat([teacher, -teacher], dim=2)
    lengths = torch.tensor([student.shape[2] / padded_student.shape[2]])
    padded, _ = loss_fn(padded_student, padded_teacher, lengths)
    unpadded, _ = loss_fn(student, teacher)
    assert padded.item() == pytest.approx(unpadded.item(), abs=1e-6)
    cropped, _ = loss_fn(
        student[:, :, :valid],
        teacher[:, :, :valid],
    )
    short, _ = loss_fn(student, teacher, torch.tensor([valid / student.shape[2]]))
    assert short.item() == pytest.approx(cropped.item(), abs=1e-6)


def test_no_gradient_to_padded_frames():
    student = _hiddens(seed=5).requires_grad_()
    loss, _ = DistillLoss([0, 1], **ALL_TERMS)(
        student, _hiddens(seed=6), torch.tensor([0.5, 1.0])
    )
    loss.backward()
    assert torch.all(student.grad[:, 0, 3:] == 0)
    assert torch.all(student.grad[:2, 0, :3] != 0)
    assert torch.all(student.grad[2] == 0)  # layer 2 not distilled


# ----------------------------------------------------------------- gradients
def test_gradients_reach_student_and_projection_not_teacher():
    student = _hiddens(dim=3, seed=7).requires_grad_()
    teacher = _hiddens(dim=5, seed=8).requires_grad_()
    loss_fn = DistillLoss(
        [1, 2], [0, 2], **ALL_TERMS, student_dim=3, teacher_dim=5, projection=True
    )
    assert len(loss_fn.projections) == 2
    assert loss_fn.projections[0].weight.shape == (5, 3)
    loss, _ = loss_fn(student, teacher, torch.tensor([1.0, 0.5]))
    loss.backward()
    assert teacher.grad is None
    assert student.grad.abs().sum() > 0
    for projection in loss_fn.projections:
        assert projection.weight.grad.abs().sum() > 0
        assert projection.bias.grad.abs().sum() > 0


def test_teacher_output_is_constant_in_graph():
    teacher = _hiddens().requires_grad_()
    loss, _ = DistillLoss([0])(_hiddens(seed=9), teacher)
    assert not loss.requires_grad


def test_cosine_term_values():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
    assert cosine_term(x, y).tolist() == [-1.0, 0.0]
    expected = [-math.log(1 / (1 + math.exp(-1))), math.log(2)]
    assert cosine_term(x, y, "log_sig").tolist() == pytest.approx(expected)


# -------------------------------------------------------------------- errors
def test_layer_lists_must_match():
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        DistillLoss([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        DistillLoss([])


def test_unknown_cos_type():
    with pytest.raises(ValueError, match="'cosine'.*raw, log_sig"):
        DistillLoss([0], cos_type="cosine")


def test_projection_needs_dims():
    with pytest.raises(ValueError, match="student_dim=None, teacher_dim=5"):
        DistillLoss([0], projection=True, teacher_dim=5)


def test_dim_mismatch_without_projection():
    with pytest.raises(ValueError, match="Student dim 3 != teacher dim 5"):
        DistillLoss([0])(_hiddens(dim=3), _hiddens(dim=5))
    with pytest.raises(ValueError, match="student_dim=3 != teacher_dim=5"):
        DistillLoss([0], student_dim=3, teacher_dim=5)


def test_dim_mismatch_with_projection():
    loss_fn = DistillLoss([0], student_dim=3, teacher_dim=5, projection=True)
    with pytest.raises(ValueError, match="student dim 4 and teacher dim 5"):
        loss_fn(_hiddens(dim=4), _hiddens(dim=5))


def test_shape_errors():
    loss_fn = DistillLoss([0])
    with pytest.raises(ValueError, match="batch and time"):
        loss_fn(_hiddens(frames=6), _hiddens(frames=7))
    with pytest.raises(ValueError, match=r"\[L, B, T, D\]"):
        loss_fn(torch.zeros(2, 6, 4), _hiddens())
    with pytest.raises(ValueError, match="lengths must have shape"):
        loss_fn(_hiddens(), _hiddens(), torch.ones(3))


def test_negative_weight():
    with pytest.raises(ValueError, match="l2_weight must be >= 0, got -1"):
        DistillLoss([0], l2_weight=-1)
