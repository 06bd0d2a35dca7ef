"""Lagrangian control of the expected sparsity during pruning.

The expected sparsity ``s`` of a gated model (fraction of parameters or MACs
removed, a differentiable scalar in ``[0, 1]``) is pushed towards a target
``t`` by adding the Lagrangian term

    ``lambda1 * (s - t) + lambda2 * (s - t) ** 2``

to the task loss (CoFi, DPHuBERT, DiariZen, Hybrid Pruning arXiv 2508.16232).
The model parameters *minimise* this term while the multipliers ``lambda1``
and ``lambda2`` *maximise* it (gradient ascent), so the multipliers keep
growing until the sparsity constraint is met.

PyTorch optimisers reject negative learning rates ("Invalid learning rate"),
so the ascent is implemented inside :class:`SparsityController`: its forward
pass routes the multipliers through a gradient-reversal function, hence their
``.grad`` holds the *negated* gradient of the loss and an ordinary optimiser
step with a positive learning rate moves them uphill. Unlike a
``register_hook`` on the parameters, this survives ``copy.deepcopy``,
pickling and device moves.

The target is warmed up from ``min_sparsity`` to ``target`` over
``warmup_steps`` optimiser steps following one of :data:`SCHEDULES`.

Authors
 * speechbrain_pruning contributors
"""

import math

import torch

SCHEDULES = ("linear", "cosine", "exponential", "sigmoid")
OBJECTIVES = ("params", "macs")
PARAM_GROUP_NAMES = ("main", "log_alpha", "lambda")
GATE_PARAM_SUFFIX = "log_alpha"
SIGMOID_STEEPNESS = 10.0
SIGMOID_MIDPOINT = 0.5


def _linear_progress(p):
    """Linear warm-up shape: ``p``."""
    return p


def _cosine_progress(p):
    """Cosine warm-up shape: ``0.5 * (1 + cos(pi * (1 - p)))``."""
    return 0.5 * (1.0 + math.cos(math.pi * (1.0 - p)))


def _exponential_progress(p):
    """Exponential (quadratic) warm-up shape: ``p ** 2``."""
    return p**2


def _sigmoid_progress(p):
    """Sigmoid warm-up shape centred on the middle of the warm-up."""
    return 1.0 / (1.0 + math.exp(-SIGMOID_STEEPNESS * (p - SIGMOID_MIDPOINT)))


_PROGRESS_FUNCTIONS = {
    "linear": _linear_progress,
    "cosine": _cosine_progress,
    "exponential": _exponential_progress,
    "sigmoid": _sigmoid_progress,
}


def _check_choice(value, choices, what):
    """Raises ValueError if ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"Unknown {what} {value!r}; valid names are: {', '.join(choices)}"
        )


def _check_schedule_args(target, warmup_steps, schedule, min_sparsity):
    """Validates the arguments shared by :func:`target_at` and the controller."""
    _check_choice(schedule, SCHEDULES, "schedule")
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target must be in [0, 1), got {target}")
    if not 0.0 <= min_sparsity <= target:
        raise ValueError(
            "min_sparsity must be in [0, target], got "
            f"min_sparsity={min_sparsity}, target={target}"
        )
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")


def target_at(step, target, warmup_steps, schedule="linear", min_sparsity=0.0):
    """Returns the sparsity target at a given optimiser step.

    With ``p = min(step / warmup_steps, 1)`` the target rises from
    ``min_sparsity`` (``p = 0``) to ``target`` (``p >= 1``) following the
    chosen schedule, and stays at ``target`` afterwards.

    Arguments
    ---------
    step : int
        Number of optimiser steps already taken (>= 0).
    target : float
        Final sparsity target, in ``[0, 1)``.
    warmup_steps : int
        Length of the warm-up; 0 means ``target`` from step 0.
    schedule : str
        One of :data:`SCHEDULES`: "linear" (``p``), "cosine"
        (``0.5 * (1 + cos(pi * (1 - p)))``), "exponential" (``p ** 2``) or
        "sigmoid" (``1 / (1 + exp(-10 * (p - 0.5)))``, exactly 1 at p >= 1).
    min_sparsity : float
        Target at step 0, in ``[0, target]``.

    Returns
    -------
    float
        The sparsity target at ``step``.

    Example
    -------
    >>> target_at(50, target=0.6, warmup_steps=100)
    0.3
    >>> round(target_at(50, 0.6, 100, schedule="exponential"), 6)
    0.15
    >>> target_at(500, 0.6, 100, schedule="sigmoid")
    0.6
    """
    _check_schedule_args(target, warmup_steps, schedule, min_sparsity)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps == 0 or step >= warmup_steps:
        return float(target)
    progress = _PROGRESS_FUNCTIONS[schedule](step / warmup_steps)
    return float(min_sparsity + (target - min_sparsity) * progress)


class _GradReverse(torch.autograd.Function):
    """Identity in the forward pass, negated gradient in the backward pass."""

    @staticmethod
    def forward(ctx, x):
        """Returns a copy of ``x``."""
        return x.clone()

    @staticmethod
    def backward(ctx, grad_output):
        """Returns ``-grad_output``."""
        return -grad_output


def reverse_grad(x):
    """Identity whose gradient is negated (turns descent into ascent).

    Arguments
    ---------
    x : torch.Tensor
        Any tensor.

    Returns
    -------
    torch.Tensor
        Same values and shape as ``x``; ``d(out)/d(x) = -1``.

    Example
    -------
    >>> x = torch.tensor(2.0, requires_grad=True)
    >>> (3 * reverse_grad(x)).backward()
    >>> x.grad
    tensor(-3.)
    """
    return _GradReverse.apply(x)


class SparsityController(torch.nn.Module):
    """Lagrangian sparsity term with learnable multipliers and target warm-up.

    ``forward(s)`` returns ``lambda1 * (s - t) + lambda2 * (s - t) ** 2`` at
    the current target ``t``. Add it to the task loss. The gradient reaching
    ``lambda1``/``lambda2`` is negated (gradient reversal), so an optimiser
    with a *positive* learning rate performs gradient ascent on them: put them
    in their own param group (see :func:`pruning_param_groups`). Call
    :meth:`step` (and :meth:`after_optimizer_step`) once per optimiser step.

    The multipliers and the step count (buffer ``step_count``) are in
    ``state_dict()``, so SpeechBrain's Checkpointer saves and restores them;
    the schedule settings are constructor arguments.

    Arguments
    ---------
    target : float
        Final expected-sparsity target, in ``[0, 1)``.
    warmup_steps : int
        Number of optimiser steps to warm the target up (0: no warm-up).
    schedule : str
        Warm-up shape, one of :data:`SCHEDULES`.
    min_sparsity : float
        Target at step 0, in ``[0, target]``.
    objective : str
        What the expected sparsity measures, one of :data:`OBJECTIVES`
        ("params" or "macs"); informational, used in logs and ``repr``.
    clamp_lambda1 : bool
        If True, :meth:`after_optimizer_step` clamps ``lambda1`` to ``>= 0``.

    Example
    -------
    >>> controller = SparsityController(target=0.5, warmup_steps=10)
    >>> controller.current_target()
    0.0
    >>> s = torch.tensor(0.3, requires_grad=True)
    >>> term = controller(s)
    >>> term.backward()
    >>> controller.lambda1.grad  # -(s - t): ascent with a positive lr
    tensor(-0.3000)
    >>> controller.step()
    >>> controller.current_target()
    0.05
    """

    def __init__(
        self,
        target,
        warmup_steps,
        schedule="linear",
        min_sparsity=0.0,
        objective="params",
        clamp_lambda1=False,
    ):
        super().__init__()
        _check_schedule_args(target, warmup_steps, schedule, min_sparsity)
        _check_choice(objective, OBJECTIVES, "objective")
        self.target = float(target)
        self.warmup_steps = int(warmup_steps)
        self.schedule = schedule
        self.min_sparsity = float(min_sparsity)
        self.objective = objective
        self.clamp_lambda1 = bool(clamp_lambda1)
        self.lambda1 = torch.nn.Parameter(torch.zeros(()))
        self.lambda2 = torch.nn.Parameter(torch.zeros(()))
        self.register_buffer("step_count", torch.zeros((), dtype=torch.long))

    def current_target(self):
        """Returns the sparsity target at the current step.

        Returns
        -------
        float
            ``target_at(step_count, ...)`` with the controller's settings.

        Example
        -------
        >>> controller = SparsityController(0.4, warmup_steps=0)
        >>> controller.current_target()
        0.4
        """
        return target_at(
            int(self.step_count.item()),
            self.target,
            self.warmup_steps,
            self.schedule,
            self.min_sparsity,
        )

    def forward(self, expected_sparsity):
        """Computes the Lagrangian term at the current target.

        Arguments
        ---------
        expected_sparsity : torch.Tensor
            Scalar (one element) differentiable expected sparsity.

        Returns
        -------
        torch.Tensor
            Scalar ``lambda1 * (s - t) + lambda2 * (s - t) ** 2``. Gradients
            flow to ``expected_sparsity`` (descent) and, reversed, to the
            multipliers (ascent).

        Example
        -------
        >>> controller = SparsityController(0.5, warmup_steps=0)
        >>> with torch.no_grad():
        ...     _ = controller.lambda1.fill_(2.0)
        ...     _ = controller.lambda2.fill_(4.0)
        >>> controller(torch.tensor(0.75))
        tensor(0.7500, grad_fn=<AddBackward0>)
        """
        if expected_sparsity.numel() != 1:
            raise ValueError(
                "expected_sparsity must be a scalar tensor, got shape "
                f"{tuple(expected_sparsity.shape)}"
            )
        gap = expected_sparsity.reshape(()) - self.current_target()
        lambda1 = reverse_grad(self.lambda1)
        lambda2 = reverse_grad(self.lambda2)
        return lambda1 * gap + lambda2 * gap**2

    def step(self):
        """Advances the step count by one (call once per optimiser step).

        Example
        -------
        >>> controller = SparsityController(0.5, warmup_steps=4)
        >>> controller.step()
        >>> int(controller.step_count)
        1
        """
        self.step_count.add_(1)

    @torch.no_grad()
    def after_optimizer_step(self):
        """Applies the optional ``lambda1 >= 0`` clamp (no-op by default).

        Example
        -------
        >>> controller = SparsityController(0.5, 0, clamp_lambda1=True)
        >>> _ = controller.lambda1.data.fill_(-1.0)
        >>> controller.after_optimizer_step()
        >>> controller.lambda1.item()
        0.0
        """
        if self.clamp_lambda1:
            self.lambda1.clamp_(min=0.0)

    def lagrangian_parameters(self):
        """Returns the two Lagrange multipliers.

        Returns
        -------
        list of torch.nn.Parameter
            ``[lambda1, lambda2]``, scalar parameters.

        Example
        -------
        >>> controller = SparsityController(0.5, warmup_steps=0)
        >>> [tuple(p.shape) for p in controller.lagrangian_parameters()]
        [(), ()]
        """
        return [self.lambda1, self.lambda2]

    def stats(self, expected_sparsity):
        """Returns loggable values as python floats.

        Arguments
        ---------
        expected_sparsity : torch.Tensor or float
            The current expected sparsity.

        Returns
        -------
        dict
            Keys "target", "expected_sparsity", "lambda1", "lambda2", "step".

        Example
        -------
        >>> controller = SparsityController(0.5, warmup_steps=0)
        >>> controller.stats(torch.tensor(0.25))["expected_sparsity"]
        0.25
        """
        return {
            "target": self.current_target(),
            "expected_sparsity": float(expected_sparsity.detach()),
            "lambda1": self.lambda1.item(),
            "lambda2": self.lambda2.item(),
            "step": float(self.step_count.item()),
        }

    def extra_repr(self):
        """Summarises the settings for ``repr``."""
        return (
            f"target={self.target}, warmup_steps={self.warmup_steps}, "
            f"schedule={self.schedule!r}, min_sparsity={self.min_sparsity}, "
            f"objective={self.objective!r}, "
            f"clamp_lambda1={self.clamp_lambda1}"
        )


def pruning_param_groups(
    model, controller, lr, gate_lr, lambda_lr, weight_decay=0.0
):
    """Builds optimiser param groups for joint fine-tuning and pruning.

    Groups (empty ones are omitted), each with a "name" key:

    1. "main": trainable params of ``model`` whose name does not end with
       ``log_alpha`` (``lr``, ``weight_decay``);
    2. "log_alpha": trainable gate params ending with ``log_alpha``
       (``gate_lr``, no weight decay);
    3. "lambda": the controller's multipliers (``abs(lambda_lr)``, no weight
       decay). The learning rate is positive because the controller reverses
       the multipliers' gradients, which makes the step an ascent.

    The multipliers are never put in the first two groups, even if the
    controller is a submodule of ``model``.

    Arguments
    ---------
    model : torch.nn.Module
        The model being pruned (contains the ``log_alpha`` gates).
    controller : SparsityController
        Provides the Lagrange multipliers.
    lr : float
        Learning rate of the regular parameters.
    gate_lr : float
        Learning rate of the ``log_alpha`` gate parameters.
    lambda_lr : float
        Learning rate magnitude of the multipliers.
    weight_decay : float
        Weight decay of the regular parameters.

    Returns
    -------
    list of dict
        Param groups for a ``torch.optim.Optimizer``.

    Example
    -------
    >>> model = torch.nn.Linear(2, 2)
    >>> model.log_alpha = torch.nn.Parameter(torch.zeros(2))
    >>> controller = SparsityController(0.5, warmup_steps=0)
    >>> groups = pruning_param_groups(model, controller, 1e-4, 1e-2, 1e-2)
    >>> [(g["name"], len(g["params"])) for g in groups]
    [('main', 2), ('log_alpha', 1), ('lambda', 2)]
    >>> optimizer = torch.optim.AdamW(groups)
    """
    multipliers = controller.lagrangian_parameters()
    multiplier_ids = {id(p) for p in multipliers}
    main, gates = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in multiplier_ids:
            continue
        (gates if name.endswith(GATE_PARAM_SUFFIX) else main).append(param)
    groups = [
        {"name": "main", "params": main, "lr": lr, "weight_decay": weight_decay},
        {"name": "log_alpha", "params": gates, "lr": gate_lr, "weight_decay": 0.0},
        {
            "name": "lambda",
            "params": multipliers,
            "lr": abs(lambda_lr),
            "weight_decay": 0.0,
        },
    ]
    return [group for group in groups if group["params"]]
