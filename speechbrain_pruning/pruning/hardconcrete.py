"""Hard-concrete (L0) gates for structured pruning.

One distribution per gate group (Louizos et al., 2018, as used by CoFi, FLOP,
DPHuBERT and DiariZen). For ``n`` units with parameters ``log_alpha`` ∈ R^n:

* training sample:  ``u ~ U(eps, 1-eps)``,
  ``s = sigmoid((log(u / (1-u)) + log_alpha) / beta)``,
  stretched to ``[l, r]`` and clamped to ``[0, 1]``;
* expected number of non-zero units (the differentiable L0 norm):
  ``L0 = sum(sigmoid(log_alpha - beta * log(-l / r)))``;
* evaluation (deterministic): ``k = round(n - L0)`` units with the smallest
  ``sigmoid(0.8 * log_alpha / beta)`` are set to 0, the others keep that soft
  value, which :meth:`PrunableWavLM.prune` folds into the weights.

Parameters are initialised to ``log((1 - init_mean) / init_mean)`` plus a little
noise, so a gate starts with keep probability ≈ ``1 - init_mean``.
"""

import math

import torch
from torch import nn

__all__ = ["HardConcrete"]


class HardConcrete(nn.Module):
    """A group of ``n`` hard-concrete gates.

    Arguments
    ---------
    n : int
        Number of gates (units) in the group.
    init_mean : float
        Initial probability of a gate being *closed* (0.01 keeps almost all).
    init_std : float
        Standard deviation of the noise added to the initial ``log_alpha``.
    temperature : float
        ``beta`` of the concrete distribution.
    limit_l, limit_r : float
        Stretch interval ``[l, r]`` with ``l < 0 < 1 < r``.
    min_keep : int
        Number of units the deterministic mask always keeps (the largest
        scores), e.g. 1 for convolution channels so a layer never vanishes.
    eps : float
        Clamp for the uniform noise.

    Example
    -------
    >>> gate = HardConcrete(8, init_mean=0.01)
    >>> gate().shape  # training mode: a random sample
    torch.Size([8])
    >>> _ = gate.eval()
    >>> int((gate() > 0).sum())  # eval mode: deterministic, all kept at init
    8
    >>> round(gate.l0_norm().item(), 2)
    7.98
    """

    def __init__(
        self,
        n,
        init_mean=0.5,
        init_std=0.01,
        temperature=2.0 / 3.0,
        limit_l=-0.1,
        limit_r=1.1,
        min_keep=0,
        eps=1e-6,
    ):
        super().__init__()
        if n < 1:
            raise ValueError(f"HardConcrete needs at least one gate, got n={n}")
        if not 0.0 < init_mean < 1.0:
            raise ValueError(f"init_mean must lie in (0, 1), got {init_mean}")
        self.n = int(n)
        self.log_alpha = nn.Parameter(torch.empty(self.n))
        self.beta = float(temperature)
        self.limit_l = float(limit_l)
        self.limit_r = float(limit_r)
        self.min_keep = int(min_keep)
        self.eps = float(eps)
        self.bias = -self.beta * math.log(-self.limit_l / self.limit_r)
        self.init_mean = float(init_mean)
        self.init_std = float(init_std)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw ``log_alpha`` around ``log((1 - init_mean) / init_mean)``."""
        mean = math.log(1.0 - self.init_mean) - math.log(self.init_mean)
        with torch.no_grad():
            self.log_alpha.normal_(mean, self.init_std)

    def extra_repr(self):
        return (
            f"n={self.n}, temperature={self.beta:.4f}, "
            f"limit=({self.limit_l}, {self.limit_r}), min_keep={self.min_keep}"
        )

    def l0_norm(self):
        """Expected number of open gates (differentiable scalar)."""
        return torch.sigmoid(self.log_alpha + self.bias).sum()

    def keep_probabilities(self):
        """Probability of each gate being non-zero, shape ``[n]``."""
        return torch.sigmoid(self.log_alpha + self.bias)

    def deterministic_mask(self):
        """The evaluation mask: soft values with the weakest units set to 0.

        Returns
        -------
        torch.Tensor
            Shape ``[n]``, values in ``[0, 1)``, no gradient.
        """
        with torch.no_grad():
            num_zeros = int(round(self.n - float(self.l0_norm())))
            num_zeros = max(0, min(num_zeros, self.n - self.min_keep))
            soft = torch.sigmoid(self.log_alpha / self.beta * 0.8)
            if num_zeros > 0:
                _, idx = torch.topk(soft, k=num_zeros, largest=False)
                soft = soft.clone()
                soft[idx] = 0.0
            return soft

    def sample(self):
        """A stochastic, differentiable mask of shape ``[n]``."""
        u = torch.empty_like(self.log_alpha).uniform_(self.eps, 1.0 - self.eps)
        s = torch.sigmoid((torch.log(u / (1.0 - u)) + self.log_alpha) / self.beta)
        s = s * (self.limit_r - self.limit_l) + self.limit_l
        return s.clamp(0.0, 1.0)

    def forward(self):
        """Sample in training mode, deterministic mask in eval mode."""
        if self.training:
            return self.sample()
        return self.deterministic_mask()

    def expected_count(self):
        """Number of units counted for params/MACs.

        Training mode: the differentiable L0 norm. Eval mode: the exact number
        of units the deterministic mask keeps (what :meth:`prune` will keep).
        """
        if self.training:
            return self.l0_norm()
        return (self.deterministic_mask() > 0).sum().to(self.log_alpha.dtype)
