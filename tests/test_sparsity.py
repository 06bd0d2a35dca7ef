"""Tests for speechbrain_pruning.pruning.sparsity (target schedules, Lagrangian)."""

import copy
import math

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_pruning.pruning.sparsity import (
    SCHEDULES,
    SparsityController,
    pruning_param_groups,
    reverse_grad,
    target_at,
)

TARGET = 0.6
MIN_SPARSITY = 0.1
RANGE = TARGET - MIN_SPARSITY
WARMUP = 200


def _at(step, schedule, warmup=WARMUP):
    return target_at(step, TARGET, warmup, schedule, MIN_SPARSITY)


def _gated_model(logits):
    model = torch.nn.Module()
    model.log_alpha = torch.nn.Parameter(logits)
    return model


# ----------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    "schedule, start",
    [
        ("linear", MIN_SPARSITY),
        ("cosine", MIN_SPARSITY),
        ("exponential", MIN_SPARSITY),
        ("sigmoid", MIN_SPARSITY + RANGE / (1 + math.exp(5))),
    ],
)
def test_schedule_start(schedule, start):
    assert _at(0, schedule) == pytest.approx(start, abs=1e-12)


def test_sigmoid_start_is_small_fraction_of_range():
    offset = _at(0, "sigmoid") - MIN_SPARSITY
    assert offset / RANGE == pytest.approx(0.0066929, abs=1e-6)


@pytest.mark.parametrize(
    "schedule, fraction",
    [("linear", 0.5), ("cosine", 0.5), ("exponential", 0.25), ("sigmoid", 0.5)],
)
def test_schedule_midpoint(schedule, fraction):
    expected = MIN_SPARSITY + RANGE * fraction
    assert _at(WARMUP // 2, schedule) == pytest.approx(expected, abs=1e-12)


def test_schedule_quarter_values():
    quarter = WARMUP // 4
    assert _at(quarter, "linear") == pytest.approx(MIN_SPARSITY + RANGE / 4)
    cosine = 0.5 * (1 + math.cos(math.pi * 0.75))
    assert _at(quarter, "cosine") == pytest.approx(MIN_SPARSITY + RANGE * cosine)
    assert _at(quarter, "exponential") == pytest.approx(
        MIN_SPARSITY + RANGE / 16
    )
    sigmoid = 1 / (1 + math.exp(2.5))
    assert _at(quarter, "sigmoid") == pytest.approx(MIN_SPARSITY + RANGE * sigmoid)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_exact_target_at_and_after_warmup(schedule):
    for step in (WARMUP, WARMUP + 1, 10 * WARMUP):
        assert _at(step, schedule) == TARGET


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_monotone(schedule):
    values = [_at(step, schedule) for step in range(WARMUP + 20)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[0] >= MIN_SPARSITY and values[-1] == TARGET


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_no_warmup_means_target_from_step_zero(schedule):
    assert _at(0, schedule, warmup=0) == TARGET


def test_unknown_schedule_lists_valid_names():
    with pytest.raises(ValueError, match="linear, cosine, exponential, sigmoid"):
        target_at(0, TARGET, WARMUP, schedule="step")
    with pytest.raises(ValueError, match="'step'"):
        SparsityController(TARGET, WARMUP, schedule="step")


@pytest.mark.parametrize("target", [-0.1, 1.0, 1.5])
def test_target_out_of_range(target):
    with pytest.raises(ValueError, match=f"target must be in \\[0, 1\\), got {target}"):
        target_at(0, target, WARMUP)
    with pytest.raises(ValueError, match=str(target)):
        SparsityController(target, WARMUP)


def test_min_sparsity_above_target():
    with pytest.raises(ValueError, match="min_sparsity=0.7, target=0.6"):
        target_at(0, 0.6, WARMUP, min_sparsity=0.7)


def test_negative_step_and_warmup():
    with pytest.raises(ValueError, match="step"):
        target_at(-1, TARGET, WARMUP)
    with pytest.raises(ValueError, match="warmup_steps"):
        target_at(0, TARGET, -5)


def test_unknown_objective_lists_valid_names():
    with pytest.raises(ValueError, match="'flops'.*params, macs"):
        SparsityController(TARGET, WARMUP, objective="flops")


# ----------------------------------------------------------------- controller
def test_controller_follows_schedule():
    controller = SparsityController(
        TARGET, WARMUP, schedule="cosine", min_sparsity=MIN_SPARSITY
    )
    for step in range(WARMUP + 3):
        assert controller.current_target() == _at(step, "cosine")
        controller.step()
    assert int(controller.step_count) == WARMUP + 3
    assert controller.step_count.dtype == torch.long


def test_lagrangian_value_and_gradients():
    controller = SparsityController(0.5, warmup_steps=0)
    with torch.no_grad():
        controller.lambda1.fill_(2.0)
        controller.lambda2.fill_(4.0)
    s = torch.tensor(0.75, requires_grad=True)
    term = controller(s)
    # 2 * 0.25 + 4 * 0.0625
    assert term.item() == pytest.approx(0.75)
    term.backward()
    assert s.grad.item() == pytest.approx(2.0 + 2 * 4.0 * 0.25)
    # reversed gradients: -(s - t) and -(s - t) ** 2
    assert controller.lambda1.grad.item() == pytest.approx(-0.25)
    assert controller.lambda2.grad.item() == pytest.approx(-0.0625)


def test_forward_rejects_non_scalar():
    controller = SparsityController(0.5, warmup_steps=0)
    with pytest.raises(ValueError, match="scalar"):
        controller(torch.zeros(3))


def test_reverse_grad_is_identity_forward():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = reverse_grad(x)
    assert torch.equal(y, x.detach())
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([-1.0, -1.0]))


def _ascent_steps(controller, sparsity, steps, lambda_lr):
    model = _gated_model(torch.zeros(3))
    groups = pruning_param_groups(model, controller, 1e-3, 1e-3, lambda_lr)
    optimizer = torch.optim.Adam(groups)
    for _ in range(steps):
        optimizer.zero_grad()
        controller(torch.tensor(sparsity)).backward()
        optimizer.step()
        controller.step()
        controller.after_optimizer_step()


def test_gradient_ascent_above_target():
    controller = SparsityController(0.5, warmup_steps=0)
    _ascent_steps(controller, sparsity=0.8, steps=3, lambda_lr=0.01)
    # d/dl1 = s - t = 0.3 > 0 and d/dl2 = 0.09 > 0: ascent increases both;
    # Adam moves each by ~lr per step with a constant gradient.
    assert controller.lambda1.item() == pytest.approx(0.03, rel=1e-3)
    assert controller.lambda2.item() == pytest.approx(0.03, rel=1e-3)


def test_gradient_ascent_below_target():
    controller = SparsityController(0.5, warmup_steps=0)
    _ascent_steps(controller, sparsity=0.2, steps=3, lambda_lr=0.01)
    assert controller.lambda1.item() < 0
    assert controller.lambda2.item() > 0


def test_gradient_ascent_increases_lagrangian():
    controller = SparsityController(0.5, warmup_steps=0)
    s = torch.tensor(0.9)
    before = controller(s).item()
    _ascent_steps(controller, sparsity=0.9, steps=5, lambda_lr=0.1)
    assert controller(s).item() > before


def test_gradient_ascent_survives_deepcopy():
    controller = copy.deepcopy(SparsityController(0.5, warmup_steps=0))
    _ascent_steps(controller, sparsity=0.8, steps=2, lambda_lr=0.01)
    assert controller.lambda1.item() > 0


def test_clamp_lambda1():
    clamped = SparsityController(0.5, warmup_steps=0, clamp_lambda1=True)
    free = SparsityController(0.5, warmup_steps=0)
    _ascent_steps(clamped, sparsity=0.2, steps=3, lambda_lr=0.01)
    _ascent_steps(free, sparsity=0.2, steps=3, lambda_lr=0.01)
    assert clamped.lambda1.item() == 0.0
    assert free.lambda1.item() < 0


def test_toy_optimisation_reaches_target():
    torch.manual_seed(0)
    model = _gated_model(torch.randn(100) + 2.0)
    controller = SparsityController(0.6, warmup_steps=WARMUP, schedule="linear")
    groups = pruning_param_groups(model, controller, 1e-3, 0.1, 0.05)
    optimizer = torch.optim.Adam(groups)
    task_weight = 0.1  # the task prefers a dense model
    errors = []
    for _ in range(2 * WARMUP):
        sparsity = 1 - torch.sigmoid(model.log_alpha).mean()
        loss = task_weight * sparsity + controller(sparsity)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        controller.step()
        controller.after_optimizer_step()
        errors.append(abs(sparsity.item() - controller.current_target()))
    final = 1 - torch.sigmoid(model.log_alpha).mean()
    assert controller.current_target() == 0.6
    assert abs(final.item() - 0.6) < 0.01
    assert max(errors[WARMUP + WARMUP // 2 :]) < 0.01
    # equilibrium: lambda1 balances the task gradient d(task)/ds
    assert controller.lambda1.item() == pytest.approx(-task_weight, abs=0.01)


def test_stats_and_repr():
    controller = SparsityController(0.5, 10, objective="macs")
    controller.step()
    stats = controller.stats(torch.tensor(0.125))
    assert stats == {
        "target": 0.05,
        "expected_sparsity": 0.125,
        "lambda1": 0.0,
        "lambda2": 0.0,
        "step": 1.0,
    }
    assert all(isinstance(v, float) for v in stats.values())
    assert "objective='macs'" in repr(controller)


# --------------------------------------------------------------- param groups
def test_param_groups_split():
    model = torch.nn.Module()
    model.linear = torch.nn.Linear(2, 3)
    model.gate = _gated_model(torch.zeros(4))
    model.frozen = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
    model.controller = SparsityController(0.5, 0)
    groups = pruning_param_groups(
        model, model.controller, lr=1e-4, gate_lr=1e-2, lambda_lr=-5e-3,
        weight_decay=0.01,
    )
    by_name = {g["name"]: g for g in groups}
    assert [g["name"] for g in groups] == ["main", "log_alpha", "lambda"]
    assert by_name["main"]["params"] == list(model.linear.parameters())
    assert by_name["main"]["lr"] == 1e-4
    assert by_name["main"]["weight_decay"] == 0.01
    assert by_name["log_alpha"]["params"] == [model.gate.log_alpha]
    assert by_name["log_alpha"]["lr"] == 1e-2
    assert by_name["log_alpha"]["weight_decay"] == 0.0
    assert by_name["lambda"]["params"] == model.controller.lagrangian_parameters()
    assert by_name["lambda"]["lr"] == 5e-3
    torch.optim.AdamW(groups)  # accepted by a real optimiser


def test_param_groups_omit_empty():
    groups = pruning_param_groups(
        torch.nn.Linear(2, 2), SparsityController(0.5, 0), 1e-4, 1e-2, 1e-2
    )
    assert [g["name"] for g in groups] == ["main", "lambda"]


# --------------------------------------------------------------- persistence
def _trained_controller():
    controller = SparsityController(TARGET, WARMUP, min_sparsity=MIN_SPARSITY)
    with torch.no_grad():
        controller.lambda1.fill_(0.75)
        controller.lambda2.fill_(-1.25)
    for _ in range(37):
        controller.step()
    return controller


def _assert_same_state(restored, original):
    assert int(restored.step_count) == 37
    assert restored.current_target() == original.current_target()
    assert restored.lambda1.item() == 0.75
    assert restored.lambda2.item() == -1.25


def test_state_dict_round_trip():
    original = _trained_controller()
    state = original.state_dict()
    assert set(state) == {"lambda1", "lambda2", "step_count"}
    restored = SparsityController(TARGET, WARMUP, min_sparsity=MIN_SPARSITY)
    restored.load_state_dict(state)
    _assert_same_state(restored, original)


def test_checkpointer_round_trip(tmp_path):
    original = _trained_controller()
    Checkpointer(tmp_path, {"controller": original}).save_checkpoint()
    restored = SparsityController(TARGET, WARMUP, min_sparsity=MIN_SPARSITY)
    checkpointer = Checkpointer(tmp_path, {"controller": restored})
    assert checkpointer.recover_if_possible() is not None
    _assert_same_state(restored, original)
    # ascent still works after recovery
    _ascent_steps(restored, sparsity=0.95, steps=1, lambda_lr=0.01)
    assert restored.lambda1.item() > 0.75
