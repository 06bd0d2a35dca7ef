"""Powerset encoding of multi-speaker activity for end-to-end diarization.

Powerset training (Plaquet & Bredin, "Powerset multi-class cross entropy loss
for neural speaker diarization", Interspeech 2023) turns the multi-label
problem "which of the ``K`` local speakers are active in this frame" into a
single-label problem over the ``C`` subsets of at most ``max_per_frame``
speakers, trained with a permutation-invariant cross entropy.

Classes are ordered by subset size, then lexicographically; for ``K = 4`` and
``max_per_frame = 2`` the ``C = 11`` classes are::

    {}, {0}, {1}, {2}, {3}, {0,1}, {0,2}, {0,3}, {1,2}, {1,3}, {2,3}

Authors
 * speechbrain_pruning contributors
"""

import itertools

import torch
from torch import nn

from ..nn import length_mask, valid_frame_counts

__all__ = ["Powerset"]


class Powerset(nn.Module):
    """Conversions and permutation-invariant loss for the powerset encoding.

    Arguments
    ---------
    max_speakers : int
        Number ``K`` of local speakers (multi-label columns).
    max_per_frame : int
        Largest number of simultaneously active speakers that a class encodes.

    Example
    -------
    >>> ps = Powerset(max_speakers=3, max_per_frame=2)
    >>> ps.num_classes
    7
    >>> ps.classes
    [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2)]
    >>> ps.mapping[4]  # class {0, 1}
    tensor([1., 1., 0.])
    >>> labels = torch.tensor([[[0, 0, 0], [1, 0, 1], [1, 1, 1]]])  # [B=1, T=3, K]
    >>> ps.to_powerset(labels)  # 3 active -> the first 2 columns are kept
    tensor([[0, 5, 4]])
    """

    def __init__(self, max_speakers=4, max_per_frame=2):
        super().__init__()
        self.max_speakers = int(max_speakers)
        self.max_per_frame = int(max_per_frame)
        if self.max_speakers < 1 or not 0 <= self.max_per_frame <= self.max_speakers:
            raise ValueError(
                f"Need max_speakers >= 1 and 0 <= max_per_frame <= max_speakers, got "
                f"{self.max_speakers}, {self.max_per_frame}"
            )
        self.classes = [
            subset
            for size in range(self.max_per_frame + 1)
            for subset in itertools.combinations(range(self.max_speakers), size)
        ]
        mapping = torch.zeros(len(self.classes), self.max_speakers)
        # binary code sum_k 2^k y_k -> class index (-1 = not representable)
        code_to_class = torch.full((2 ** self.max_speakers,), -1, dtype=torch.long)
        for index, subset in enumerate(self.classes):
            mapping[index, list(subset)] = 1.0
            code_to_class[sum(2 ** k for k in subset)] = index
        self.register_buffer("mapping", mapping, persistent=False)
        self.register_buffer("code_to_class", code_to_class, persistent=False)
        self.register_buffer(
            "powers", 2 ** torch.arange(self.max_speakers, dtype=torch.long), persistent=False
        )
        self.register_buffer(
            "permutations",
            torch.tensor(list(itertools.permutations(range(self.max_speakers))), dtype=torch.long),
            persistent=False,
        )

    @property
    def num_classes(self):
        """Number ``C`` of powerset classes."""
        return len(self.classes)

    def to_multilabel(self, scores, soft=False):
        """Convert powerset scores to multi-label speaker activities.

        Arguments
        ---------
        scores : torch.Tensor
            Powerset log-probabilities or probabilities, shape ``[B, T, C]``.
            A tensor with no positive entry is taken as log-probabilities.
        soft : bool
            ``False``: one-hot of the arg-max class times ``mapping`` (0/1
            output); ``True``: class probabilities times ``mapping`` (the
            marginal probability that each speaker is active).

        Returns
        -------
        torch.Tensor
            Speaker activities, shape ``[B, T, K]`` (float).

        Example
        -------
        >>> ps = Powerset(3, 2)
        >>> log_probs = torch.log_softmax(torch.tensor([[[0., 0, 0, 0, 5, 0, 0]]]), -1)
        >>> ps.to_multilabel(log_probs)
        tensor([[[1., 1., 0.]]])
        >>> ps.to_multilabel(log_probs, soft=True).round(decimals=3)
        tensor([[[0.9740, 0.9740, 0.0190]]])
        """
        mapping = self.mapping.to(scores.dtype)
        if soft:
            probs = scores.exp() if bool((scores <= 0).all()) else scores
            return probs @ mapping
        return mapping[scores.argmax(dim=-1)]

    def _codes(self, active):
        """Binary codes ``sum_k 2^k y_k`` of boolean activities ``[..., K]``."""
        keep = active & (active.long().cumsum(dim=-1) <= self.max_per_frame)
        return (keep.long() * self.powers).sum(dim=-1)

    def to_powerset(self, multilabel, threshold=0.5):
        """Convert multi-label speaker activities to powerset class indices.

        Frames with more than ``max_per_frame`` active speakers keep only the
        first ``max_per_frame`` active speakers in column order (the others
        are dropped, as they cannot be represented).

        Arguments
        ---------
        multilabel : torch.Tensor
            Speaker activities, shape ``[B, T, K]`` (0/1, bool or float).
        threshold : float
            A speaker is active where ``multilabel > threshold``.

        Returns
        -------
        torch.Tensor
            Class indices, shape ``[B, T]`` (long).

        Example
        -------
        >>> Powerset(4, 2).to_powerset(torch.tensor([[[0, 0, 1, 1], [0, 1, 0, 0]]]))
        tensor([[10,  2]])
        """
        if multilabel.shape[-1] != self.max_speakers:
            raise ValueError(
                f"Expected {self.max_speakers} speaker columns, got {multilabel.shape[-1]}"
            )
        codes = self._codes(multilabel.float() > threshold)
        return self.code_to_class[codes]

    def permutation_invariant_loss(
        self, log_probs, multilabel, lengths=None, return_permutation=False, threshold=0.5
    ):
        """Permutation-invariant powerset cross entropy.

        For every item, the ``K!`` permutations of the target speaker columns
        are all evaluated (vectorised); the one giving the lowest mean NLL of
        the powerset targets over the valid frames is kept.  The loss is the
        mean of these per-item minima.  Padded frames are ignored.  The cost
        grows as ``K!`` (24 permutations for ``K = 4``).

        Arguments
        ---------
        log_probs : torch.Tensor
            Powerset log-probabilities, shape ``[B, T, C]``.
        multilabel : torch.Tensor
            Reference speaker activities, shape ``[B, T, K]``.
        lengths : torch.Tensor, optional
            SpeechBrain relative lengths in (0, 1], shape ``[B]``; utterance
            ``b`` has ``round(lengths[b] * T)`` valid frames (clamped to
            ``[1, T]``).  ``None`` = no padding.
        return_permutation : bool
            Also return the best permutation of each item.
        threshold : float
            A reference speaker is active where ``multilabel > threshold``.

        Returns
        -------
        torch.Tensor
            Scalar loss.
        torch.Tensor
            Only with ``return_permutation``: best permutations, shape
            ``[B, K]`` (long); the aligned reference of item ``b`` is
            ``multilabel[b][:, perm[b]]`` (predicted speaker ``k`` matches
            reference speaker ``perm[b, k]``).

        Example
        -------
        >>> ps = Powerset(2, 2)  # classes {}, {0}, {1}, {0,1}
        >>> log_probs = torch.log(torch.tensor([[[.7, .1, .1, .1], [.1, .7, .1, .1]]]))
        >>> labels = torch.tensor([[[0., 0.], [0., 1.]]])  # speaker 1 = predicted speaker 0
        >>> loss, perm = ps.permutation_invariant_loss(log_probs, labels, return_permutation=True)
        >>> round(loss.item(), 4), perm
        (0.3567, tensor([[1, 0]]))
        """
        batch, frames, num_classes = log_probs.shape
        if num_classes != self.num_classes:
            raise ValueError(f"Expected {self.num_classes} classes, got {num_classes}")
        if multilabel.shape != (batch, frames, self.max_speakers):
            raise ValueError(
                f"Expected targets [{batch}, {frames}, {self.max_speakers}], "
                f"got {tuple(multilabel.shape)}"
            )
        active = multilabel.to(log_probs.device).float() > threshold  # [B, T, K]
        perms = self.permutations.to(log_probs.device)  # [P, K]
        permuted = active[:, :, perms]  # [B, T, P, K]
        targets = self.code_to_class.to(log_probs.device)[self._codes(permuted)]  # [B, T, P]
        nll = -log_probs.gather(-1, targets)  # [B, T, P]

        if lengths is None:
            weights = torch.full((batch, frames), 1.0 / frames, device=log_probs.device)
        else:
            counts = valid_frame_counts(torch.as_tensor(lengths, device=log_probs.device), frames)
            valid = length_mask(counts, frames)
            weights = valid.to(log_probs.dtype) / counts.unsqueeze(1).to(log_probs.dtype)
            nll = nll.masked_fill(~valid.unsqueeze(-1), 0.0)  # drop NaN/inf of padding
        per_perm = (nll * weights.to(log_probs.dtype).unsqueeze(-1)).sum(dim=1)  # [B, P]
        best_loss, best = per_perm.min(dim=1)
        loss = best_loss.mean()
        if return_permutation:
            return loss, perms[best]
        return loss

    def extra_repr(self):
        """Summary shown by ``print(module)``."""
        return (
            f"max_speakers={self.max_speakers}, max_per_frame={self.max_per_frame}, "
            f"num_classes={self.num_classes}"
        )

