"""Layer-wise distillation from a frozen teacher to a (pruned) student.

Hidden states of selected student layers are matched to selected teacher
layers with a weighted sum of L1, L2 and cosine terms (DPHuBERT, DiariZen).
Padded frames are excluded using SpeechBrain relative lengths.

Authors
 * speechbrain_pruning contributors
"""

import torch
import torch.nn.functional as F

from ..nn import valid_frame_mask

COS_TYPES = ("raw", "log_sig")


def cosine_term(student, teacher, cos_type="raw"):
    """Per-frame cosine distillation term.

    Arguments
    ---------
    student : torch.Tensor
        Student features, shape ``[..., D]``.
    teacher : torch.Tensor
        Teacher features, shape ``[..., D]``.
    cos_type : str
        "raw": ``-cos`` (DiariZen); "log_sig": ``-log(sigmoid(cos))``
        (DPHuBERT).

    Returns
    -------
    torch.Tensor
        The term for each frame, shape ``[...]``.

    Example
    -------
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> y = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    >>> cosine_term(x, y)
    tensor([-1.0000, -0.7071])
    """
    _check_cos_type(cos_type)
    cos = F.cosine_similarity(student, teacher, dim=-1)
    if cos_type == "raw":
        return -cos
    return -F.logsigmoid(cos)


def _check_cos_type(cos_type):
    """Raises ValueError for an unknown cosine term type."""
    if cos_type not in COS_TYPES:
        raise ValueError(
            f"Unknown cos_type {cos_type!r}; valid names are: "
            f"{', '.join(COS_TYPES)}"
        )


def _check_weights(**weights):
    """Raises ValueError for negative loss weights."""
    for name, value in weights.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


class DistillLoss(torch.nn.Module):
    """Layer-wise L1 + L2 + cosine distillation loss over valid frames.

    ``loss = l1_weight * mean|s - t| + l2_weight * mean (s - t)^2
    + cos_weight * cos_term``, where every mean runs over the distilled
    layers and all valid frames of the batch (padded frames are ignored;
    the L1/L2 means also run over the feature dimension). ``cos_term`` is
    ``-mean cos`` ("raw", so the loss can be negative) or
    ``-mean log(sigmoid(cos))`` ("log_sig"). Teacher hiddens are detached.

    Arguments
    ---------
    student_layers : list of int
        Indices into the first axis of the student hiddens.
    teacher_layers : list of int, optional
        Indices into the first axis of the teacher hiddens, paired with
        ``student_layers`` (default: ``student_layers``).
    l1_weight : float
        Weight of the L1 term.
    l2_weight : float
        Weight of the L2 (mean squared error) term.
    cos_weight : float
        Weight of the cosine term.
    cos_type : str
        One of :data:`COS_TYPES`.
    student_dim : int, optional
        Student feature size ``Ds`` (needed with ``projection``).
    teacher_dim : int, optional
        Teacher feature size ``Dt`` (needed with ``projection``).
    projection : bool
        If True, one ``Linear(student_dim, teacher_dim)`` per distilled layer
        maps the student features before comparison.

    Example
    -------
    >>> loss_fn = DistillLoss(student_layers=[0, 1], teacher_layers=[1, 2])
    >>> teacher = torch.ones(3, 2, 5, 4)
    >>> student = torch.full((2, 2, 5, 4), 0.5, requires_grad=True)
    >>> loss, details = loss_fn(student, teacher, torch.tensor([1.0, 0.6]))
    >>> loss
    tensor(-0.5000, grad_fn=<AddBackward0>)
    >>> details
    {'l1': 0.5, 'l2': 0.25, 'cos': -1.0}
    """

    def __init__(
        self,
        student_layers,
        teacher_layers=None,
        l1_weight=1.0,
        l2_weight=0.0,
        cos_weight=1.0,
        cos_type="raw",
        student_dim=None,
        teacher_dim=None,
        projection=False,
    ):
        super().__init__()
        _check_cos_type(cos_type)
        _check_weights(
            l1_weight=l1_weight, l2_weight=l2_weight, cos_weight=cos_weight
        )
        self.student_layers = list(student_layers)
        self.teacher_layers = list(
            self.student_layers if teacher_layers is None else teacher_layers
        )
        self._check_layers()
        self.l1_weight = l1_weight
        self.l2_weight = l2_weight
        self.cos_weight = cos_weight
        self.cos_type = cos_type
        self.student_dim = student_dim
        self.teacher_dim = teacher_dim
        self.projections = self._build_projections(projection)

    def _check_layers(self):
        """Checks that the layer lists are non-empty and paired."""
        if not self.student_layers:
            raise ValueError("student_layers must not be empty")
        if len(self.student_layers) != len(self.teacher_layers):
            raise ValueError(
                "student_layers and teacher_layers must have the same length, "
                f"got {len(self.student_layers)} and {len(self.teacher_layers)}"
            )

    def _build_projections(self, projection):
        """Creates the per-layer projections (None without projection)."""
        dims = (self.student_dim, self.teacher_dim)
        if not projection:
            if None not in dims and dims[0] != dims[1]:
                raise ValueError(
                    f"student_dim={dims[0]} != teacher_dim={dims[1]}: "
                    "use projection=True"
                )
            return None
        if None in dims:
            raise ValueError(
                "projection=True needs student_dim and teacher_dim, got "
                f"student_dim={dims[0]}, teacher_dim={dims[1]}"
            )
        return torch.nn.ModuleList(
            torch.nn.Linear(*dims) for _ in self.student_layers
        )

    def _select(self, student_hiddens, teacher_hiddens):
        """Picks the paired layers; projects the student, detaches the teacher.

        Returns student ``[L, B, T, Dt]`` and teacher ``[L, B, T, Dt]``.
        """
        student = student_hiddens[self.student_layers]
        teacher = teacher_hiddens[self.teacher_layers].detach()
        if self.projections is not None:
            student = torch.stack(
                [proj(layer) for proj, layer in zip(self.projections, student)]
            )
        return student, teacher

    def _check_shapes(self, student_hiddens, teacher_hiddens):
        """Raises ValueError for incompatible hidden-state shapes."""
        for name, hiddens in (
            ("student_hiddens", student_hiddens),
            ("teacher_hiddens", teacher_hiddens),
        ):
            if hiddens.dim() != 4:
                raise ValueError(
                    f"{name} must have shape [L, B, T, D], got "
                    f"{tuple(hiddens.shape)}"
                )
        if student_hiddens.shape[1:3] != teacher_hiddens.shape[1:3]:
            raise ValueError(
                "student and teacher must share batch and time sizes, got "
                f"{tuple(student_hiddens.shape)} and "
                f"{tuple(teacher_hiddens.shape)}"
            )
        self._check_dims(student_hiddens.shape[-1], teacher_hiddens.shape[-1])

    def _check_dims(self, student_dim, teacher_dim):
        """Raises ValueError if the feature sizes cannot be compared."""
        if self.projections is None:
            if student_dim != teacher_dim:
                raise ValueError(
                    f"Student dim {student_dim} != teacher dim {teacher_dim}; "
                    "use projection=True with student_dim and teacher_dim"
                )
            return
        expected = (self.student_dim, self.teacher_dim)
        if (student_dim, teacher_dim) != expected:
            raise ValueError(
                f"Got student dim {student_dim} and teacher dim {teacher_dim}, "
                f"projection expects {expected[0]} and {expected[1]}"
            )

    def forward(self, student_hiddens, teacher_hiddens, lengths=None):
        """Computes the distillation loss.

        Arguments
        ---------
        student_hiddens : torch.Tensor
            Student hidden states, shape ``[Ls, B, T, Ds]``.
        teacher_hiddens : torch.Tensor
            Teacher hidden states, shape ``[Lt, B, T, Dt]`` (treated as
            constants).
        lengths : torch.Tensor, optional
            Relative lengths in (0, 1], shape ``[B]``; None: no padding.

        Returns
        -------
        loss : torch.Tensor
            Scalar weighted loss.
        details : dict
            Unweighted components as floats: "l1", "l2", "cos".

        Example
        -------
        >>> loss_fn = DistillLoss([0], projection=True, student_dim=3,
        ...                       teacher_dim=4)
        >>> loss, details = loss_fn(torch.randn(1, 2, 5, 3),
        ...                         torch.randn(1, 2, 5, 4))
        >>> loss.shape, sorted(details)
        (torch.Size([]), ['cos', 'l1', 'l2'])
        """
        self._check_shapes(student_hiddens, teacher_hiddens)
        student, teacher = self._select(student_hiddens, teacher_hiddens)
        if lengths is not None:
            student, teacher = self._valid_frames(student, teacher, lengths)
        diff = student - teacher
        l1 = diff.abs().mean()
        l2 = diff.pow(2).mean()
        cos = cosine_term(student, teacher, self.cos_type).mean()
        loss = self.l1_weight * l1 + self.l2_weight * l2 + self.cos_weight * cos
        values = torch.stack([l1, l2, cos]).detach().float().tolist()
        return loss, dict(zip(("l1", "l2", "cos"), values))

    @staticmethod
    def _valid_frames(student, teacher, lengths):
        """Keeps the valid frames: ``[L, B, T, D]`` -> ``[L, N, D]``."""
        if lengths.shape != student.shape[1:2]:
            raise ValueError(
                f"lengths must have shape [B]=[{student.shape[1]}], got "
                f"{tuple(lengths.shape)}"
            )
        mask = valid_frame_mask(lengths.to(student.device), student.shape[2])
        return student[:, mask], teacher[:, mask]

    def extra_repr(self):
        """Summarises the settings for ``repr``."""
        return (
            f"student_layers={self.student_layers}, "
            f"teacher_layers={self.teacher_layers}, l1_weight={self.l1_weight}, "
            f"l2_weight={self.l2_weight}, cos_weight={self.cos_weight}, "
            f"cos_type={self.cos_type!r}"
        )


def load_teacher(source, **overrides):
    """The frozen teacher WavLM of distillation-guided pruning (None if no ``source``).

    ``source`` is anything :meth:`PrunableWavLM.from_pretrained` reads; the
    model is returned in eval mode with gradients off.
    """
    if not source:
        return None
    from ..wavlm import PrunableWavLM

    return PrunableWavLM.from_pretrained(source, **overrides).eval().requires_grad_(False)
