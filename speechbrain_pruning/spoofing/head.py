"""Bona fide / spoof classification head on an utterance embedding.

:class:`SpoofHead` is the anti-spoofing head put on top of the MHFA
embedding in the Hybrid Pruning countermeasure recipe: BatchNorm1d -> ReLU ->
Linear to two logits (class 0 = spoof, class 1 = bona fide).
:func:`bonafide_score` turns such logits (or those of
:class:`~speechbrain_pruning.spoofing.aasist.SSLAASIST`) into the detection
score used by the recipe and by
:class:`speechbrain_pruning.inference.PrunedSpoofDetector`.

Authors
 * speechbrain_pruning contributors
"""

import torch  # noqa: F401 (the doctests use it)
from torch import nn

__all__ = ["SpoofHead", "bonafide_score"]


def bonafide_score(logits):
    """Bona fide detection score ``logits[..., 1] - logits[..., 0]``.

    With a softmax over the two classes this is the log posterior odds
    ``log p(bonafide | x) - log p(spoof | x)``, a log-likelihood-ratio-like
    score: higher = more likely bona fide, 0 = undecided.

    Arguments
    ---------
    logits : torch.Tensor
        Two-class logits ``[B, 2]`` (class 0 = spoof, 1 = bona fide); any
        leading shape ``[..., 2]`` is accepted.

    Returns
    -------
    torch.Tensor
        Scores ``[B]`` (the leading shape of ``logits``).

    Example
    -------
    >>> bonafide_score(torch.tensor([[0.0, 2.0], [1.5, -0.5]]))
    tensor([ 2., -2.])
    """
    if logits.shape[-1] != 2:
        raise ValueError(f"bonafide_score expects two-class logits [..., 2], got "
                         f"{tuple(logits.shape)}")
    return logits[..., 1] - logits[..., 0]


class SpoofHead(nn.Module):
    """BatchNorm1d -> ReLU -> Linear classification head (logits ``[B, C]``).

    Arguments
    ---------
    in_dim : int
        Size of the input embedding (e.g. the MHFA ``embed_dim``).
    num_classes : int
        Number of logits (2: class 0 = spoof, class 1 = bona fide).
    hidden : int, optional
        None (default): ``BN(in_dim) -> ReLU -> Linear(in_dim, num_classes)``.
        An integer ``H`` inserts a hidden layer:
        ``BN -> ReLU -> Linear(in_dim, H) -> BN -> ReLU -> Linear(H, num_classes)``.

    Example
    -------
    >>> head = SpoofHead(in_dim=8).eval()
    >>> logits = head(torch.randn(3, 8))
    >>> logits.shape, bonafide_score(logits).shape
    (torch.Size([3, 2]), torch.Size([3]))
    >>> sum(p.numel() for p in SpoofHead(256).parameters())  # MHFA embed_dim 256
    1026
    """

    def __init__(self, in_dim, num_classes=2, hidden=None):
        super().__init__()
        self.in_dim = int(in_dim)
        self.num_classes = int(num_classes)
        self.hidden = None if hidden is None else int(hidden)
        layers = [nn.BatchNorm1d(self.in_dim), nn.ReLU()]
        width = self.in_dim
        if self.hidden is not None:
            layers += [nn.Linear(width, self.hidden), nn.BatchNorm1d(self.hidden), nn.ReLU()]
            width = self.hidden
        layers.append(nn.Linear(width, self.num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        """Compute the logits.

        Arguments
        ---------
        x : torch.Tensor
            Embeddings ``[B, in_dim]``.

        Returns
        -------
        torch.Tensor
            Logits ``[B, num_classes]``.
        """
        if x.dim() != 2 or x.shape[-1] != self.in_dim:
            raise ValueError(f"SpoofHead expects embeddings [B, {self.in_dim}], "
                             f"got {tuple(x.shape)}")
        return self.layers(x)
