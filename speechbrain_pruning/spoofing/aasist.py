"""SSL-AASIST: the AASIST graph back-end on self-supervised features.

AASIST (Jung et al., ICASSP 2022) classifies bona fide / spoofed speech with
spectro-temporal graph attention; SSL-AASIST (Tak et al., "Automatic speaker
verification spoofing and deepfake detection using wav2vec 2.0 and data
augmentation", Odyssey 2022) feeds it with the features of a self-supervised
encoder instead of a sinc-conv front-end. :class:`SSLAASIST` is the back-end
of that system's public code (``Model`` in ``model.py`` of
TakHemlata/SSL_Anti-spoofing, everything after ``ssl_model``), written anew
and run on the stacked hidden states ``hidden [L+1, B, T, D]`` of WavLM:

1. SSL features ``[B, T, D]``: the last hidden state (``layer_weighting=
   "last"``, as the reference) or a learned softmax-weighted sum of the
   ``L+1`` hidden states (``"weighted"``, the default; weights start at zero
   = uniform) -> ``LL = Linear(D, 128)``;
2. the features become a one-channel 2-D map ``[B, 1, 128, T]`` (frequency-
   like axis first, time last) -> 3x3 max-pool (floor) -> ``first_bn``
   (BatchNorm2d) -> SELU;
3. six residual blocks ``[1, 32] (first), [32, 32], [32, 64], [64, 64] x 3``:
   ``conv1`` (2x3, padding (1, 1)) -> ``bn2`` -> SELU -> ``conv2`` (2x3,
   padding (0, 1)), plus a 1x3 ``conv_downsample`` shortcut (padding (0, 1))
   when the channels change; no pooling in the blocks (the reference has
   AASIST's ``MaxPool2d((1, 3))`` commented out); then ``first_bn1`` -> SELU.
   The frequency axis keeps its 42 bins (128 // 3), time its ``T // 3``
   frames;
4. attention ``Conv2d(64, 128, 1) -> SELU -> BatchNorm2d -> Conv2d(128, 64, 1)``
   gives the *spectral* nodes (softmax over time, weighted sum, plus the
   learned positional embedding ``pos_S [1, 42, 64]``) and the *temporal*
   nodes (softmax over frequency, weighted sum);
5. a graph attention layer (GAT, temperature 2) and a top-k graph pooling
   (ratio 0.5, sigmoid scores) on each node set;
6. two parallel branches, each with its master node: HS-GAL (64 -> 32,
   temperature 100) -> graph pooling of both node sets -> HS-GAL (32 -> 32)
   whose outputs are added to its inputs; element-wise max of the two
   branches (after dropout 0.2);
7. readout ``[max|T|, mean T, max|S|, mean S, master]`` -> dropout 0.5 ->
   ``Linear(5 * 32, 2)``.

The output are logits ``[B, num_classes]``: class 0 = spoof, class 1 = bona
fide (the reference's label convention; see
:func:`speechbrain_pruning.spoofing.head.bonafide_score`).

Attention as in the reference: a GAT scores every ordered node pair with
``w^T tanh(W_a (x_i * x_j)) / temperature`` and normalises over the
neighbours ``j`` of node ``i`` (softmax over the last node axis); the output
is ``SELU(BN(W_1 sum_j a_ij x_j + W_2 x_i))``. An HS-GAL first projects the
temporal and the spectral nodes with type-specific linear maps, scores the
pairs of the joint graph with one weight vector per pair type (T-T, S-S, and
one shared by T-S and S-T), and updates the master node from its own
attention over all nodes (``x_i * master``).

With ``layer_weighting="last"`` the parameters are exactly those of the
reference back-end, under the same names: 447,242 for ``D = 1024`` (XLS-R /
WavLM Large), 414,474 for ``D = 768`` (WavLM Base / Base+), i.e.
``128 D + 316,170`` (``Linear(D, 128)`` plus 316,042 after it);
``"weighted"`` adds the ``L+1`` layer logits. The reference's state dict
without its ``ssl_model.*`` entries therefore loads with
``load_state_dict(strict=True)`` into ``SSLAASIST(L+1, 1024,
layer_weighting="last")``.

Remaining differences from the reference code
---------------------------------------------
* Layer weighting: the default ``"weighted"`` mixes all hidden states of the
  (pruned) WavLM; the reference uses the encoder's last layer
  (``layer_weighting="last"``).
* Padding: the reference runs on fixed-length crops and has no notion of
  padding; this module handles batches of different lengths exactly (see
  below). Without padding the computation is the reference's.
* The residual blocks of the reference compute ``SELU(bn1(x))`` and then
  discard it (``conv1`` reads the block input ``x``; the same holds in
  AASIST's code). ``bn1`` is kept here as a parameter of the block (so the
  parameter count and state dict match) but frozen (``requires_grad=False``:
  it never gets a gradient in the reference either, and DDP without
  ``find_unused_parameters`` rejects parameters without one) and not
  evaluated, so its running statistics keep their initial values (in the
  reference they move, without effect on any output). ``pre_activation=True``
  uses it (``conv1`` on ``SELU(bn1(x))``, the pre-activation block of the
  AASIST paper; ``bn1`` then trains).
* Utterances shorter than a pooling window (fewer than 3 frames at the
  input pool, which the reference cannot process) keep one frame, the max
  over their frames; longer ones pool with floor semantics as the reference
  (``n -> n // 3`` frames).
* The reference builds all four HS-GALs with ``temperatures[2]`` and both
  second-stage graph pools with ``pool_ratios[2]``; here the second HS-GAL of
  a branch uses ``temperatures[3]`` and the temporal pool ``pool_ratios[3]``.
  With the defaults (100, 100 and 0.5, 0.5) this is the same computation.
* Sizes are arguments (``proj_dim``, ``channels``, ``attention_dim``,
  ``gat_dims``, dropouts, ``num_classes``), ``block_pool=(1, 3)`` restores
  AASIST's time pooling after each block, and ``feature_grad_mult`` scales
  the gradient flowing back into the encoder. The defaults are the reference.

Padding
-------
Batch items have different lengths; this back-end handles them exactly, in
one batched pass, by tracking the number of valid frames of every utterance
through the network:

* padded frames of the features are zeroed first (NaN/inf there is harmless);
* before every convolution the padded frames are zero -- exactly the zero
  padding the utterance run alone sees at its end (the time kernels are 3
  wide with padding 1);
* before every max-pool they are ``-inf`` (ignored), and ``n`` valid frames
  become ``max(1, n // k)``;
* the attention over time, the graph attention, the top-k graph pooling
  (``k_b = max(1, floor(ratio * n_b))`` per utterance) and the readout means
  and maxima only see valid temporal nodes;
* in training mode every BatchNorm takes its batch statistics over valid
  positions only (running statistics are updated from them).

In eval mode the logits of a padded utterance therefore equal (to float
rounding) those of the utterance run alone, whatever the padding contains.

Authors
 * speechbrain_pruning contributors
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import length_mask, prepare_hidden, valid_frame_counts, weighted_layer_sum

__all__ = ["SSLAASIST"]

_LAYER_WEIGHTINGS = ("weighted", "last")


# --------------------------------------------------------------- masking
def _counts_mask(counts, size):
    """Boolean ``[B, size]`` mask (True = valid) of ``counts [B]``, or None."""
    return None if counts is None else length_mask(counts, size)


def _zero_padded(x, mask):
    """``x`` with the positions where ``mask`` is False set to 0 (mask None = all valid)."""
    if mask is None:
        return x
    return x.masked_fill(~mask, 0.0)


def _masked_batch_norm(norm, x, mask):
    """BatchNorm whose training statistics only use valid positions.

    Arguments
    ---------
    norm : nn.BatchNorm1d or nn.BatchNorm2d
        The normalisation layer (its parameters and running statistics).
    x : torch.Tensor
        Input ``[B, C, *]``.
    mask : torch.Tensor or None
        Boolean ``[B, 1, *]`` (broadcastable to ``x``), True = valid; None =
        all valid (plain ``norm(x)``).

    Returns
    -------
    torch.Tensor
        Normalised ``x`` (padded positions hold arbitrary finite values).
    """
    if mask is None or not norm.training:
        return norm(x)
    dims = [0] + list(range(2, x.dim()))
    weight = mask.to(x.dtype).expand(x.shape[0], 1, *x.shape[2:])
    count = weight.sum()
    mean = torch.where(mask, x, 0.0).sum(dims) / count  # [C]
    shape = [1, -1] + [1] * (x.dim() - 2)
    centred = torch.where(mask, x - mean.view(shape), 0.0)
    var = centred.pow(2).sum(dims) / count  # biased, as BatchNorm normalises with
    if norm.track_running_stats:
        with torch.no_grad():
            norm.num_batches_tracked.add_(1)
            if norm.momentum is None:
                momentum = 1.0 / float(norm.num_batches_tracked)
            else:
                momentum = norm.momentum
            unbiased = var * count / (count - 1).clamp(min=1)
            norm.running_mean.lerp_(mean.detach().to(norm.running_mean.dtype), momentum)
            norm.running_var.lerp_(unbiased.detach().to(norm.running_var.dtype), momentum)
    out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + norm.eps)
    if norm.affine:
        out = out * norm.weight.view(shape) + norm.bias.view(shape)
    return out


def _max_pool(x, counts, kernel):
    """Max-pool ``x [B, C, F, T]`` by ``kernel = (kf, kt)``, ignoring padded frames.

    Floor semantics on both axes, as ``F.max_pool2d``: ``F // kf`` bins and
    ``n // kt`` frames for an utterance of ``n`` frames -- except that an
    utterance shorter than ``kt`` keeps one frame (the max over its frames).

    Arguments
    ---------
    x : torch.Tensor
        Feature map ``[B, C, F, T]``, zero on padded frames.
    counts : torch.Tensor or None
        Valid frames per utterance ``[B]``; None = all valid.
    kernel : tuple of int
        Pool size (and stride) ``(kf, kt)``.

    Returns
    -------
    (torch.Tensor, torch.Tensor or None)
        Pooled map ``[B, C, F // kf, max(1, T // kt)]`` (zero on padded
        frames) and the new counts ``max(1, counts // kt)``.
    """
    kf, kt = int(kernel[0]), int(kernel[1])
    if kf == 1 and kt == 1:
        return x, counts
    num_frames = x.shape[-1]
    if counts is not None:
        valid = _counts_mask(counts, num_frames)[:, None, None, :]
        x = x.masked_fill(~valid, float("-inf"))
    if num_frames < kt:  # a single, partial window
        x = F.pad(x, (0, kt - num_frames), value=float("-inf"))
    x = F.max_pool2d(x, (kf, kt))
    if counts is not None:
        counts = torch.div(counts, kt, rounding_mode="floor").clamp(min=1)
        x = _zero_padded(x, _counts_mask(counts, x.shape[-1])[:, None, None, :])
    return x, counts


def _map_mask(counts, num_frames):
    """``[B, 1, 1, T]`` mask of a 2-D map, or None."""
    mask = _counts_mask(counts, num_frames)
    return None if mask is None else mask[:, None, None, :]


def _unsqueeze(mask):
    """``mask [B, N] -> [B, N, 1]`` (None stays None)."""
    return None if mask is None else mask.unsqueeze(-1)


# --------------------------------------------------------------- encoder
class _ResidualBlock(nn.Module):
    """The reference's residual block on ``[B, C, F, T]`` maps (padded frames zero on output).

    ``conv1`` (2x3, padding (1, 1): ``F -> F + 1``) -> ``bn2`` -> SELU ->
    ``conv2`` (2x3, padding (0, 1): ``F + 1 -> F``), plus the input or, when
    the channels change, its 1x3 ``conv_downsample``; then the optional
    max-pool ``pool``. ``conv1`` reads the block input, as in the reference;
    ``bn1`` (not in the first block) is only used with ``pre_activation``
    (``conv1`` on ``SELU(bn1(x))``) and frozen otherwise.
    """

    def __init__(self, in_channels, out_channels, first=False, pre_activation=False,
                 pool=(1, 1)):
        super().__init__()
        self.first = bool(first)
        self.pre_activation = bool(pre_activation) and not self.first
        if not self.first:
            self.bn1 = nn.BatchNorm2d(in_channels)
            self.bn1.requires_grad_(self.pre_activation)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=(2, 3), padding=(0, 1))
        self.downsample = in_channels != out_channels
        if self.downsample:
            self.conv_downsample = nn.Conv2d(in_channels, out_channels, kernel_size=(1, 3),
                                             padding=(0, 1))
        self.pool = tuple(int(k) for k in pool)

    def forward(self, x, counts):
        mask = _map_mask(counts, x.shape[-1])
        out = x
        if self.pre_activation:
            out = _zero_padded(F.selu(_masked_batch_norm(self.bn1, x, mask)), mask)
        out = self.conv1(out)
        out = _zero_padded(F.selu(_masked_batch_norm(self.bn2, out, mask)), mask)
        out = self.conv2(out)
        identity = self.conv_downsample(x) if self.downsample else x
        out = _zero_padded(out + identity, mask)
        return _max_pool(out, counts, self.pool)


# ---------------------------------------------------------------- graphs
def _node_counts(mask, num_nodes, batch, device):
    """Valid nodes per item ``[B]`` (all ``num_nodes`` when ``mask`` is None)."""
    if mask is None:
        return torch.full((batch,), num_nodes, dtype=torch.long, device=device)
    return mask.sum(1)


def _attention_weights(scores, mask, dim):
    """Softmax of ``scores`` along ``dim`` with invalid nodes (mask False) excluded."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim)


def _xavier_vector(size):
    """A ``[size, 1]`` attention weight vector, Xavier-normal initialised (as the reference)."""
    weight = nn.Parameter(torch.empty(size, 1))
    nn.init.xavier_normal_(weight)
    return weight


def _node_batch_norm(norm, x, mask):
    """BatchNorm1d over the features of the nodes ``x [B, N, D]`` (statistics over valid nodes)."""
    mask = None if mask is None else mask.unsqueeze(1)  # [B, 1, N]
    return _masked_batch_norm(norm, x.transpose(1, 2), mask).transpose(1, 2)


class _GraphAttentionLayer(nn.Module):
    """Graph attention layer on a fully connected graph of nodes ``[B, N, D]``.

    ``a_ij = softmax_j(w^T tanh(W_a (x_i * x_j)) / temperature)`` over valid
    nodes ``j``; output ``SELU(BN(W_1 sum_j a_ij x_j + W_2 x_i))`` ``[B, N, D']``.
    """

    def __init__(self, in_dim, out_dim, temperature=1.0, dropout=0.2):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _xavier_vector(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(dropout)
        self.temperature = float(temperature)

    def forward(self, x, mask=None):
        x = self.input_drop(x)
        pairs = x.unsqueeze(2) * x.unsqueeze(1)  # [B, N, N, D]: x_i * x_j
        scores = (torch.tanh(self.att_proj(pairs)) @ self.att_weight).squeeze(-1)
        key_mask = None if mask is None else mask.unsqueeze(1)  # [B, 1, N]
        attention = _attention_weights(scores / self.temperature, key_mask, dim=-1)
        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        out = F.selu(_node_batch_norm(self.bn, out, mask))
        return _zero_padded(out, _unsqueeze(mask))


class _HtrgGraphAttentionLayer(nn.Module):
    """Heterogeneous stacking graph attention layer (HS-GAL) with a master node.

    Temporal nodes ``x1 [B, N1, D]`` and spectral nodes ``x2 [B, N2, D]`` are
    projected by type-specific linear maps and joined into one graph whose
    pair attention uses one weight vector per pair type (``att_weight11``
    T-T, ``att_weight22`` S-S, ``att_weight12`` both T-S and S-T). The master
    node ``[B or 1, 1, D]`` attends to all nodes. Returns the updated
    ``(x1 [B, N1, D'], x2 [B, N2, D'], master [B, 1, D'])``.
    """

    def __init__(self, in_dim, out_dim, temperature=1.0, dropout=0.2):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _xavier_vector(out_dim)
        self.att_weight22 = _xavier_vector(out_dim)
        self.att_weight12 = _xavier_vector(out_dim)
        self.att_weightM = _xavier_vector(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.input_drop = nn.Dropout(dropout)
        self.temperature = float(temperature)

    def forward(self, x1, mask1, x2, mask2, master):
        batch, num1, num2 = x1.shape[0], x1.shape[1], x2.shape[1]
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)  # [B, N, D]
        if mask1 is None and mask2 is None:
            mask = None
        else:
            ones = x.new_ones((batch, 1), dtype=torch.bool)
            mask = torch.cat([
                ones.expand(batch, num1) if mask1 is None else mask1,
                ones.expand(batch, num2) if mask2 is None else mask2,
            ], dim=1)  # [B, N]
        x = self.input_drop(x)

        # node-to-node attention, one weight vector per pair type
        node_type = torch.cat([
            torch.zeros(num1, dtype=torch.long, device=x.device),
            torch.ones(num2, dtype=torch.long, device=x.device),
        ])
        pair_type = node_type.unsqueeze(0) + node_type.unsqueeze(1)  # [N, N]: 0 TT, 1 TS/ST, 2 SS
        weights = torch.cat([self.att_weight11, self.att_weight12, self.att_weight22], dim=1)
        pairs = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # [B, N, N, D']
        scores = (pairs @ weights).gather(
            -1, pair_type.expand(batch, -1, -1).unsqueeze(-1)
        ).squeeze(-1)  # [B, N, N]
        key_mask = None if mask is None else mask.unsqueeze(1)  # [B, 1, N]
        attention = _attention_weights(scores / self.temperature, key_mask, dim=-1)

        # the master node attends to every valid node
        master_scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # [B, N, 1]
        master_attention = _attention_weights(
            master_scores.transpose(1, 2) / self.temperature, key_mask, dim=-1
        )  # [B, 1, N]
        master = self.proj_with_attM(master_attention @ x) + self.proj_without_attM(master)

        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        out = _zero_padded(F.selu(_node_batch_norm(self.bn, out, mask)), _unsqueeze(mask))
        return out[:, :num1], out[:, num1:], master


class _GraphPool(nn.Module):
    """Keep the ``max(1, floor(ratio * n))`` valid nodes of highest score ``sigmoid(w^T x + b)``.

    Kept nodes are scaled by their score and sorted by decreasing score.
    Returns ``(nodes [B, K, D], mask [B, K] or None)`` with ``K`` the largest
    count of the batch.
    """

    def __init__(self, ratio, dim, dropout=0.3):
        super().__init__()
        self.ratio = float(ratio)
        self.proj = nn.Linear(dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        batch, num_nodes, dim = x.shape
        scores = torch.sigmoid(self.proj(self.drop(x))).squeeze(-1)  # [B, N]
        counts = _node_counts(mask, num_nodes, batch, x.device)
        keep = torch.floor(counts.double() * self.ratio).long().clamp(min=1)
        # traced (ONNX export): keep every node, ranked, and mask beyond ``keep`` -- the
        # same function (masked nodes never count), without freezing K to the example
        tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        top = num_nodes if tracing and mask is not None else int(keep.max())
        ranking = scores if mask is None else scores.masked_fill(~mask, float("-inf"))
        index = ranking.topk(top, dim=1).indices  # [B, K]
        nodes = (x * scores.unsqueeze(-1)).gather(1, index.unsqueeze(-1).expand(-1, -1, dim))
        if mask is None:
            return nodes, None
        new_mask = _counts_mask(keep, top)
        return _zero_padded(nodes, new_mask.unsqueeze(-1)), new_mask


def _masked_mean(x, mask):
    """Mean of ``x [B, N, D]`` over valid nodes -> ``[B, D]``."""
    if mask is None:
        return x.mean(1)
    weight = mask.unsqueeze(-1).to(x.dtype)
    return (x * weight).sum(1) / weight.sum(1)


def _masked_abs_max(x, mask):
    """Max of ``|x [B, N, D]|`` over valid nodes -> ``[B, D]``."""
    # |x| >= 0, so zeroed padded nodes never exceed the max of the valid ones
    return _zero_padded(x.abs(), _unsqueeze(mask)).amax(1)


# ----------------------------------------------------------------- model
class SSLAASIST(nn.Module):
    """SSL-AASIST spoofing countermeasure on the stacked hidden states of an SSL encoder.

    Submodules and parameters carry the names of the reference ``Model``
    (``LL``, ``first_bn``, ``encoder``, ``GAT_layer_S``, ``HtrgGAT_layer_ST11``,
    ``pool_hS1``, ...), so its state dict (without ``ssl_model.*``) loads.

    Arguments
    ---------
    num_layers : int
        Number of stacked hidden states ``L + 1`` (13 for WavLM Base/Base+,
        25 for Large).
    feat_dim : int
        Hidden size ``D`` of the encoder (768 / 1024).
    layer_weighting : str
        ``"weighted"``: learned softmax-weighted sum of the ``L+1`` hidden
        states (``L+1`` extra parameters); ``"last"``: the last hidden state
        only, as the reference.
    proj_dim : int
        Size ``P`` of the linear projection ``LL``, the frequency axis of the
        2-D map (128).
    channels : sequence of (int, int)
        ``(in, out)`` channels of each residual block; the first ``in`` must
        be 1 (the reference's six blocks).
    input_pool : tuple of int
        ``(frequency, time)`` max-pool applied to the map before the encoder.
    block_pool : tuple of int
        ``(frequency, time)`` max-pool after each residual block
        (``(1, 1)`` = none, as SSL-AASIST; AASIST used ``(1, 3)``).
    pre_activation : bool
        False (reference): ``conv1`` of a residual block reads the block
        input and ``bn1`` is frozen and unused; True: ``conv1`` reads
        ``SELU(bn1(x))``.
    attention_dim : int
        Hidden channels of the 1x1-conv attention producing the node sets.
    gat_dims : tuple of int
        Node sizes after the GAT layers and after the HS-GAL layers.
    pool_ratios : tuple of float
        Fraction of nodes kept by the graph pools: spectral and temporal after
        the GATs, spectral and temporal after the first HS-GAL of a branch.
    temperatures : tuple of float
        Attention temperatures: spectral GAT, temporal GAT, first and second
        HS-GAL of each branch.
    graph_dropout : float
        Dropout on the inputs of the GAT / HS-GAL layers.
    pool_dropout : float
        Dropout on the inputs of the graph-pool scores.
    branch_dropout : float
        Dropout on the outputs of each HS-GAL branch before their maximum.
    dropout : float
        Dropout before the output layer.
    num_classes : int
        Number of output logits (2: class 0 = spoof, class 1 = bona fide).
    feature_grad_mult : float
        Factor applied to the gradient flowing back into the hidden states
        (1.0 = unchanged, 0.0 = frozen encoder).

    Parameter counts with the defaults: 447,242 for ``feat_dim=1024`` and
    414,474 for ``768`` with ``layer_weighting="last"`` (the reference's,
    ``128 * feat_dim + 316,170``); ``"weighted"`` adds ``num_layers``.

    Example
    -------
    >>> backend = SSLAASIST(num_layers=4, feat_dim=16, proj_dim=12,
    ...                     channels=((1, 4), (4, 6)), attention_dim=8,
    ...                     gat_dims=(8, 6)).eval()
    >>> hidden = torch.randn(4, 3, 40, 16)  # [L+1, B, T, D]
    >>> backend(hidden, torch.tensor([1.0, 0.8, 0.5])).shape  # logits
    torch.Size([3, 2])
    >>> reference = SSLAASIST(25, 1024, layer_weighting="last")  # XLS-R / WavLM Large
    >>> sum(p.numel() for p in reference.parameters())
    447242
    >>> sum(p.numel() for p in SSLAASIST(13, 768, layer_weighting="last").parameters())
    414474
    """

    def __init__(
        self,
        num_layers,
        feat_dim,
        layer_weighting="weighted",
        proj_dim=128,
        channels=((1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)),
        input_pool=(3, 3),
        block_pool=(1, 1),
        pre_activation=False,
        attention_dim=128,
        gat_dims=(64, 32),
        pool_ratios=(0.5, 0.5, 0.5, 0.5),
        temperatures=(2.0, 2.0, 100.0, 100.0),
        graph_dropout=0.2,
        pool_dropout=0.3,
        branch_dropout=0.2,
        dropout=0.5,
        num_classes=2,
        feature_grad_mult=1.0,
    ):
        super().__init__()
        channels = [tuple(int(c) for c in pair) for pair in channels]
        if not channels or channels[0][0] != 1:
            raise ValueError(f"channels must start with (1, C), got {channels}")
        for (_, out_prev), (in_next, _) in zip(channels[:-1], channels[1:]):
            if out_prev != in_next:
                raise ValueError(f"channels do not chain: {channels}")
        if layer_weighting not in _LAYER_WEIGHTINGS:
            raise ValueError(
                f"layer_weighting must be one of {_LAYER_WEIGHTINGS}, got {layer_weighting!r}"
            )
        self.num_layers = int(num_layers)
        self.feat_dim = int(feat_dim)
        self.layer_weighting = layer_weighting
        self.proj_dim = int(proj_dim)
        self.input_pool = tuple(int(k) for k in input_pool)
        self.num_classes = int(num_classes)
        self.feature_grad_mult = float(feature_grad_mult)
        pool_ratios = [float(r) for r in pool_ratios]
        temperatures = [float(t) for t in temperatures]
        gat_in, gat_out = int(gat_dims[0]), int(gat_dims[1])
        width = channels[-1][1]

        self.register_parameter(
            "layer_weights",
            nn.Parameter(torch.zeros(self.num_layers)) if layer_weighting == "weighted" else None,
        )
        self.LL = nn.Linear(self.feat_dim, self.proj_dim)
        self.first_bn = nn.BatchNorm2d(1)
        # encoder.<i>.0.<layer>: the reference's nn.Sequential(nn.Sequential(block), ...)
        self.encoder = nn.ModuleList(
            nn.ModuleList([_ResidualBlock(c_in, c_out, first=i == 0,
                                          pre_activation=pre_activation, pool=block_pool)])
            for i, (c_in, c_out) in enumerate(channels)
        )
        self.first_bn1 = nn.BatchNorm2d(width)
        self.attention = nn.Sequential(
            nn.Conv2d(width, int(attention_dim), kernel_size=1),
            nn.SELU(),
            nn.BatchNorm2d(int(attention_dim)),
            nn.Conv2d(int(attention_dim), width, kernel_size=1),
        )

        num_spectral = self.proj_dim // self.input_pool[0]
        for _ in channels:
            num_spectral //= int(block_pool[0])
        if num_spectral < 1:
            raise ValueError("proj_dim too small for the frequency pooling")
        self.num_spectral_nodes = num_spectral
        self.pos_S = nn.Parameter(torch.randn(1, num_spectral, width))
        self.master1 = nn.Parameter(torch.randn(1, 1, gat_in))
        self.master2 = nn.Parameter(torch.randn(1, 1, gat_in))

        self.GAT_layer_S = _GraphAttentionLayer(width, gat_in, temperatures[0], graph_dropout)
        self.GAT_layer_T = _GraphAttentionLayer(width, gat_in, temperatures[1], graph_dropout)
        self.HtrgGAT_layer_ST11 = _HtrgGraphAttentionLayer(gat_in, gat_out, temperatures[2],
                                                           graph_dropout)
        self.HtrgGAT_layer_ST12 = _HtrgGraphAttentionLayer(gat_out, gat_out, temperatures[3],
                                                           graph_dropout)
        self.HtrgGAT_layer_ST21 = _HtrgGraphAttentionLayer(gat_in, gat_out, temperatures[2],
                                                           graph_dropout)
        self.HtrgGAT_layer_ST22 = _HtrgGraphAttentionLayer(gat_out, gat_out, temperatures[3],
                                                           graph_dropout)

        self.pool_S = _GraphPool(pool_ratios[0], gat_in, pool_dropout)
        self.pool_T = _GraphPool(pool_ratios[1], gat_in, pool_dropout)
        self.pool_hS1 = _GraphPool(pool_ratios[2], gat_out, pool_dropout)
        self.pool_hT1 = _GraphPool(pool_ratios[3], gat_out, pool_dropout)
        self.pool_hS2 = _GraphPool(pool_ratios[2], gat_out, pool_dropout)
        self.pool_hT2 = _GraphPool(pool_ratios[3], gat_out, pool_dropout)

        self.drop_way = nn.Dropout(branch_dropout)
        self.drop = nn.Dropout(dropout)
        self.out_layer = nn.Linear(5 * gat_out, self.num_classes)

    def normalized_layer_weights(self):
        """Weights of the ``L+1`` hidden states ``[L+1]`` (``"last"``: one-hot on the last)."""
        if self.layer_weights is None:
            weights = torch.zeros(self.num_layers, device=self.LL.weight.device)
            weights[-1] = 1.0
            return weights
        return torch.softmax(self.layer_weights, dim=-1)

    def _features(self, hidden, counts):
        """SSL features ``[B, T, D]`` (zero on padded frames): last or weighted hidden states."""
        valid = None if counts is None else _counts_mask(counts, hidden.shape[2])
        if self.layer_weights is None:
            return _zero_padded(hidden[-1], _unsqueeze(valid))
        if valid is not None:  # before the sum: NaN / inf in the padding stays out
            hidden = hidden.masked_fill(~valid[None, :, :, None], 0.0)
        return weighted_layer_sum(hidden, self.layer_weights)

    def _feature_map(self, hidden, counts):
        """Features -> ``LL`` -> pooled, normalised 2-D map ``[B, 1, F', T']``."""
        x = self.LL(self._features(hidden, counts))  # [B, T, P]
        x = _zero_padded(x, _unsqueeze(_counts_mask(counts, x.shape[1])))
        x = x.transpose(1, 2).unsqueeze(1)  # [B, 1, P, T]
        x, counts = _max_pool(x, counts, self.input_pool)
        mask = _map_mask(counts, x.shape[-1])
        x = _zero_padded(F.selu(_masked_batch_norm(self.first_bn, x, mask)), mask)
        return x, counts

    def _nodes(self, x, counts):
        """Spectral ``[B, F', C]`` and temporal ``[B, T', C]`` nodes (+ temporal mask)."""
        mask = _map_mask(counts, x.shape[-1])  # [B, 1, 1, T'] or None
        conv1, _, norm, conv2 = self.attention
        w = _zero_padded(F.selu(conv1(x)), mask)
        w = conv2(_masked_batch_norm(norm, w, mask))  # [B, C, F', T']
        # spectral nodes: attention over (valid) time
        spectral = (x * _attention_weights(w, mask, dim=-1)).sum(-1)  # [B, C, F']
        spectral = spectral.transpose(1, 2) + self.pos_S
        # temporal nodes: attention over frequency
        temporal = (x * torch.softmax(w, dim=-2)).sum(-2).transpose(1, 2)  # [B, T', C]
        node_mask = _counts_mask(counts, temporal.shape[1])
        return spectral, _zero_padded(temporal, _unsqueeze(node_mask)), node_mask

    def _branch(self, first, pool_s, pool_t, second, master, t, t_mask, s, s_mask):
        """One HS-GAL branch: ``(t, s, master)`` after the residual second layer."""
        t, s, master = first(t, t_mask, s, s_mask, master)
        s, s_mask = pool_s(s, s_mask)
        t, t_mask = pool_t(t, t_mask)
        t_aug, s_aug, master_aug = second(t, t_mask, s, s_mask, master)
        return (self.drop_way(t + t_aug), self.drop_way(s + s_aug),
                self.drop_way(master + master_aug), t_mask, s_mask)

    def embed(self, hidden, lengths=None):
        """Readout ``[max|T|, mean T, max|S|, mean S, master]``.

        ``hidden [L+1, B, T, D]``: stacked hidden states; ``lengths [B]``: relative
        lengths in (0, 1] (None: no padding).
        """
        hidden = prepare_hidden(hidden, self.num_layers, self.feat_dim,
                                self.feature_grad_mult, "SSLAASIST")
        counts = None
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=hidden.device)
            counts = valid_frame_counts(lengths, hidden.shape[2])

        x, counts = self._feature_map(hidden, counts)
        for (block,) in self.encoder:
            x, counts = block(x, counts)
        mask = _map_mask(counts, x.shape[-1])
        x = _zero_padded(F.selu(_masked_batch_norm(self.first_bn1, x, mask)), mask)

        spectral, temporal, temporal_mask = self._nodes(x, counts)
        spectral, spectral_mask = self.pool_S(self.GAT_layer_S(spectral))
        temporal, temporal_mask = self.pool_T(
            self.GAT_layer_T(temporal, temporal_mask), temporal_mask
        )

        nodes = (temporal, temporal_mask, spectral, spectral_mask)
        t1, s1, master1, t_mask, s_mask = self._branch(
            self.HtrgGAT_layer_ST11, self.pool_hS1, self.pool_hT1, self.HtrgGAT_layer_ST12,
            self.master1, *nodes)
        t2, s2, master2, _, _ = self._branch(
            self.HtrgGAT_layer_ST21, self.pool_hS2, self.pool_hT2, self.HtrgGAT_layer_ST22,
            self.master2, *nodes)
        # both branches keep the same number of nodes per utterance
        t, s = torch.maximum(t1, t2), torch.maximum(s1, s2)
        master = torch.maximum(master1, master2)
        return torch.cat([
            _masked_abs_max(t, t_mask), _masked_mean(t, t_mask),
            _masked_abs_max(s, s_mask), _masked_mean(s, s_mask),
            master.squeeze(1),
        ], dim=-1)

    def forward(self, hidden, lengths=None):
        """Logits ``[B, num_classes]`` (class 0 = spoof, 1 = bona fide).

        ``hidden [L+1, B, T, D]``: stacked hidden states; ``lengths [B]``: relative
        lengths in (0, 1] (None: no padding).
        """
        return self.out_layer(self.drop(self.embed(hidden, lengths)))
