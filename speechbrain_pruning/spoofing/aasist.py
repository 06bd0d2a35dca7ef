"""SSL-AASIST: the AASIST graph back-end on self-supervised features.

AASIST (Jung et al., ICASSP 2022) classifies bona fide / spoofed speech with
spectro-temporal graph attention; SSL-AASIST (Tak et al., "Automatic speaker
verification spoofing and deepfake detection using wav2vec 2.0 and data
augmentation", Odyssey 2022) feeds it with the features of a self-supervised
encoder instead of a sinc-conv front-end. :class:`SSLAASIST` implements it on
the stacked hidden states ``hidden [L+1, B, T, D]`` of WavLM:

1. learned softmax-weighted sum of the ``L+1`` hidden states (weights start
   at zero = uniform) -> ``Linear(D, P)`` -> ``[B, T, P]``;
2. the features become a one-channel 2-D map ``[B, 1, P, T]`` (frequency-like
   axis ``F = P`` first, time last, as in SSL-AASIST) -> max-pool
   ``input_pool`` (3x3) -> BatchNorm2d -> SELU;
3. a residual 2-D encoder: blocks of (BN -> SELU ->) conv3x3 -> BN -> SELU ->
   conv3x3, plus a 1x1-conv shortcut when the channels change, each followed
   by an optional max-pool ``block_pool``; then BN -> SELU;
4. a 1x1-conv attention map over the channels gives the *spectral* nodes
   (attention-weighted sum over time, plus a learned positional embedding)
   and the *temporal* nodes (attention-weighted sum over frequency);
5. a graph attention layer (GAT) and a top-k graph pooling on each node set;
6. two branches of two heterogeneous stacking graph attention layers
   (HS-GAL) with their own master node, graph pooling in between; element-wise
   max of the two branches;
7. readout ``[max|T|, mean T, max|S|, mean S, master]`` -> dropout ->
   ``Linear(5 * gat_dims[1], num_classes)``.

The output are logits ``[B, num_classes]``: class 0 = spoof, class 1 = bona
fide (see :func:`speechbrain_pruning.spoofing.head.bonafide_score`).

Differences from the published code (written from the papers; no code copied)
-----------------------------------------------------------------------------
* The residual blocks use 3x3 convolutions ("same" padding) and a 1x1
  shortcut; the first block has no pre-activation.
* ``block_pool`` defaults to ``(1, 1)`` (no pooling): AASIST's raw-waveform
  encoder pools time by 3 after each block, which SSL-AASIST removed -- on
  50 Hz SSL frames four such pools would leave a single temporal node for a
  4 s utterance. ``block_pool=(1, 3)`` restores it (time pooling, see below).
* Graph attention normalises the attention of node ``i`` over its
  neighbours ``j`` (row softmax) -- a proper convex combination.
* Max-pools over time use ``ceil`` semantics (a last, partial window is kept),
  so even a one-frame utterance keeps one frame: utterance of ``n`` frames ->
  ``ceil(n / k)`` frames after a pool of size ``k`` over time. Frequency
  pooling floors as usual (128 -> 42).

Padding
-------
Batch items have different lengths; this back-end handles them exactly, in
one batched pass, by tracking the number of valid frames of every utterance
through the network:

* padded frames of ``hidden`` are zeroed first (NaN/inf there is harmless);
* before every convolution the padded frames are zero -- exactly the zero
  "same" padding the utterance run alone sees at its end;
* before every max-pool they are ``-inf`` (ignored), and the number of valid
  frames becomes ``ceil(n / k)``;
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


def _max_pool_time(x, counts, kernel):
    """Max-pool ``x [B, C, F, T]`` by ``kernel = (kf, kt)`` ignoring padded frames.

    Frequency is floored (``F // kf``), time uses ceil semantics
    (``ceil(T / kt)``, a partial last window is kept).

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
        Pooled map ``[B, C, F // kf, ceil(T / kt)]`` (zero on padded frames)
        and the new counts ``ceil(counts / kt)``.
    """
    kf, kt = int(kernel[0]), int(kernel[1])
    if kf == 1 and kt == 1:
        return x, counts
    num_frames = x.shape[-1]
    if counts is not None:
        valid = _counts_mask(counts, num_frames)[:, None, None, :]
        x = x.masked_fill(~valid, float("-inf"))
    extra = (-num_frames) % kt
    if extra:
        x = F.pad(x, (0, extra), value=float("-inf"))
    x = F.max_pool2d(x, (kf, kt))
    if counts is not None:
        counts = torch.div(counts + kt - 1, kt, rounding_mode="floor")
        x = _zero_padded(x, _counts_mask(counts, x.shape[-1])[:, None, None, :])
    return x, counts


# --------------------------------------------------------------- encoder
class _ResidualBlock2d(nn.Module):
    """(BN -> SELU ->) conv -> BN -> SELU -> conv (+ shortcut) -> max-pool.

    Input and output ``[B, C, F, T]``; padded frames are zero on output.
    """

    def __init__(self, in_channels, out_channels, first=False, kernel_size=(3, 3),
                 pool=(1, 1)):
        super().__init__()
        if any(k % 2 == 0 for k in kernel_size):
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        padding = tuple(k // 2 for k in kernel_size)
        self.first = bool(first)
        self.pre_norm = None if self.first else nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=padding)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, kernel_size=1)
            if in_channels != out_channels else None
        )
        self.pool = tuple(pool)

    def forward(self, x, counts):
        mask = _counts_mask(counts, x.shape[-1])
        mask = None if mask is None else mask[:, None, None, :]  # [B, 1, 1, T]
        out = x
        if self.pre_norm is not None:
            out = _zero_padded(F.selu(_masked_batch_norm(self.pre_norm, x, mask)), mask)
        out = self.conv1(out)
        out = _zero_padded(F.selu(_masked_batch_norm(self.norm, out, mask)), mask)
        out = self.conv2(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        out = _zero_padded(out + identity, mask)
        return _max_pool_time(out, counts, self.pool)


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


class _GraphAttention(nn.Module):
    """Graph attention layer on a fully connected graph of nodes ``[B, N, D]``.

    ``a_ij = softmax_j(w^T tanh(W_a (x_i * x_j)) / temperature)`` over valid
    nodes ``j``; output ``SELU(BN(W_1 sum_j a_ij x_j + W_2 x_i))`` ``[B, N, D']``.
    """

    def __init__(self, in_dim, out_dim, temperature=1.0, dropout=0.2):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = nn.Parameter(torch.empty(out_dim, 1))
        nn.init.xavier_normal_(self.att_weight)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.dropout = nn.Dropout(dropout)
        self.temperature = float(temperature)

    def forward(self, x, mask=None):
        x = self.dropout(x)
        pairs = x.unsqueeze(2) * x.unsqueeze(1)  # [B, N, N, D]
        scores = (torch.tanh(self.att_proj(pairs)) @ self.att_weight).squeeze(-1)
        key_mask = None if mask is None else mask.unsqueeze(1)  # [B, 1, N]
        attention = _attention_weights(scores / self.temperature, key_mask, dim=-1)
        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        node_mask = None if mask is None else mask.unsqueeze(1)
        out = _masked_batch_norm(self.norm, out.transpose(1, 2), node_mask).transpose(1, 2)
        return _zero_padded(F.selu(out), None if mask is None else mask.unsqueeze(-1))


class _HeteroGraphAttention(nn.Module):
    """Heterogeneous stacking graph attention layer (HS-GAL) with a master node.

    Temporal nodes ``x1 [B, N1, D]`` and spectral nodes ``x2 [B, N2, D]`` are
    projected by type-specific linear maps and joined into one graph whose
    pair attention uses one weight vector per pair type (T-T, S-S, T-S). The
    master node ``[B, 1, D]`` attends to all nodes. Returns the updated
    ``(x1 [B, N1, D'], x2 [B, N2, D'], master [B, 1, D'])``.
    """

    def __init__(self, in_dim, out_dim, temperature=1.0, dropout=0.2):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_proj_master = nn.Linear(in_dim, out_dim)
        # columns: type1-type1, type1-type2 (both directions), type2-type2
        self.att_weight = nn.Parameter(torch.empty(out_dim, 3))
        self.att_weight_master = nn.Parameter(torch.empty(out_dim, 1))
        nn.init.xavier_normal_(self.att_weight)
        nn.init.xavier_normal_(self.att_weight_master)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_att_master = nn.Linear(in_dim, out_dim)
        self.proj_without_att_master = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.dropout = nn.Dropout(dropout)
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
        x = self.dropout(x)

        # node-to-node attention with a weight vector per pair type
        node_type = torch.cat([
            torch.zeros(num1, dtype=torch.long, device=x.device),
            torch.ones(num2, dtype=torch.long, device=x.device),
        ])
        pair_type = node_type.unsqueeze(0) + node_type.unsqueeze(1)  # [N, N] in {0, 1, 2}
        pairs = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))  # [B, N, N, D']
        scores = (pairs @ self.att_weight).gather(
            -1, pair_type.expand(batch, -1, -1).unsqueeze(-1)
        ).squeeze(-1)  # [B, N, N]
        key_mask = None if mask is None else mask.unsqueeze(1)
        attention = _attention_weights(scores / self.temperature, key_mask, dim=-1)

        # master node attends to every valid node
        master_scores = torch.tanh(self.att_proj_master(x * master)) @ self.att_weight_master
        master_attention = _attention_weights(
            master_scores.transpose(1, 2) / self.temperature, key_mask, dim=-1
        )  # [B, 1, N]
        master = (self.proj_with_att_master(master_attention @ x)
                  + self.proj_without_att_master(master))

        out = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        out = _masked_batch_norm(self.norm, out.transpose(1, 2), key_mask).transpose(1, 2)
        out = _zero_padded(F.selu(out), None if mask is None else mask.unsqueeze(-1))
        return out[:, :num1], out[:, num1:], master


class _GraphPool(nn.Module):
    """Keep the ``max(1, floor(ratio * n))`` valid nodes of highest learned score.

    Kept nodes are scaled by their score ``sigmoid(w^T x + b)`` and sorted by
    decreasing score. Returns ``(nodes [B, K, D], mask [B, K] or None)`` with
    ``K`` the largest count of the batch.
    """

    def __init__(self, ratio, dim, dropout=0.3):
        super().__init__()
        self.ratio = float(ratio)
        self.score = nn.Linear(dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        batch, num_nodes, dim = x.shape
        scores = torch.sigmoid(self.score(self.dropout(x))).squeeze(-1)  # [B, N]
        counts = _node_counts(mask, num_nodes, batch, x.device)
        keep = torch.floor(counts.double() * self.ratio).long().clamp(min=1)
        top = int(keep.max())
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
    return _zero_padded(x.abs(), None if mask is None else mask.unsqueeze(-1)).amax(1)


# ----------------------------------------------------------------- model
class SSLAASIST(nn.Module):
    """AASIST spoofing countermeasure on the stacked hidden states of an SSL encoder.

    Arguments
    ---------
    num_layers : int
        Number of stacked hidden states ``L + 1`` (13 for WavLM Base/Base+,
        25 for Large).
    feat_dim : int
        Hidden size ``D`` of the encoder (768 / 1024).
    proj_dim : int
        Size ``P`` of the linear projection, the frequency axis of the 2-D map.
    channels : sequence of (int, int)
        ``(in, out)`` channels of each residual block; the first ``in`` must be 1.
    kernel_size : tuple of int
        Convolution kernel of the residual blocks (odd sizes, "same" padding).
    input_pool : tuple of int
        ``(frequency, time)`` max-pool applied to the map before the encoder.
    block_pool : tuple of int
        ``(frequency, time)`` max-pool after each residual block
        (``(1, 1)`` = none, as SSL-AASIST; AASIST used ``(1, 3)``).
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

    Parameter counts with the defaults: 363,575 for ``SSLAASIST(13, 768)``
    (WavLM Base/Base+), 396,355 for ``SSLAASIST(25, 1024)`` (WavLM Large)
    (363,587 for ``(25, 768)``, 396,343 for ``(13, 1024)``).

    Example
    -------
    >>> backend = SSLAASIST(num_layers=4, feat_dim=16, proj_dim=12,
    ...                     channels=((1, 4), (4, 6)), attention_dim=8,
    ...                     gat_dims=(8, 6)).eval()
    >>> hidden = torch.randn(4, 3, 40, 16)  # [L+1, B, T, D]
    >>> backend(hidden, torch.tensor([1.0, 0.8, 0.5])).shape  # logits
    torch.Size([3, 2])
    >>> sum(p.numel() for p in SSLAASIST(25, 1024).parameters())  # WavLM Large
    396355
    """

    def __init__(
        self,
        num_layers,
        feat_dim,
        proj_dim=128,
        channels=((1, 32), (32, 32), (32, 64), (64, 64)),
        kernel_size=(3, 3),
        input_pool=(3, 3),
        block_pool=(1, 1),
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
        self.num_layers = int(num_layers)
        self.feat_dim = int(feat_dim)
        self.proj_dim = int(proj_dim)
        self.input_pool = tuple(int(k) for k in input_pool)
        self.num_classes = int(num_classes)
        self.feature_grad_mult = float(feature_grad_mult)
        pool_ratios = [float(r) for r in pool_ratios]
        temperatures = [float(t) for t in temperatures]
        gat_in, gat_out = int(gat_dims[0]), int(gat_dims[1])
        width = channels[-1][1]

        self.layer_weights = nn.Parameter(torch.zeros(self.num_layers))
        self.proj = nn.Linear(self.feat_dim, self.proj_dim)
        self.input_norm = nn.BatchNorm2d(1)
        self.encoder = nn.ModuleList(
            _ResidualBlock2d(c_in, c_out, first=i == 0, kernel_size=tuple(kernel_size),
                             pool=tuple(block_pool))
            for i, (c_in, c_out) in enumerate(channels)
        )
        self.encoder_norm = nn.BatchNorm2d(width)
        self.att_conv1 = nn.Conv2d(width, int(attention_dim), kernel_size=1)
        self.att_norm = nn.BatchNorm2d(int(attention_dim))
        self.att_conv2 = nn.Conv2d(int(attention_dim), width, kernel_size=1)

        num_spectral = self.proj_dim // self.input_pool[0]
        for _ in channels:
            num_spectral //= int(block_pool[0])
        if num_spectral < 1:
            raise ValueError("proj_dim too small for the frequency pooling")
        self.num_spectral_nodes = num_spectral
        self.pos_spectral = nn.Parameter(torch.randn(1, num_spectral, width))

        self.gat_spectral = _GraphAttention(width, gat_in, temperatures[0], graph_dropout)
        self.gat_temporal = _GraphAttention(width, gat_in, temperatures[1], graph_dropout)
        self.pool_spectral = _GraphPool(pool_ratios[0], gat_in, pool_dropout)
        self.pool_temporal = _GraphPool(pool_ratios[1], gat_in, pool_dropout)

        self.masters = nn.ParameterList(
            nn.Parameter(torch.randn(1, 1, gat_in)) for _ in range(2)
        )
        self.hsgal1 = nn.ModuleList(
            _HeteroGraphAttention(gat_in, gat_out, temperatures[2], graph_dropout)
            for _ in range(2)
        )
        self.hsgal2 = nn.ModuleList(
            _HeteroGraphAttention(gat_out, gat_out, temperatures[3], graph_dropout)
            for _ in range(2)
        )
        self.branch_pool_spectral = nn.ModuleList(
            _GraphPool(pool_ratios[2], gat_out, pool_dropout) for _ in range(2)
        )
        self.branch_pool_temporal = nn.ModuleList(
            _GraphPool(pool_ratios[3], gat_out, pool_dropout) for _ in range(2)
        )
        self.branch_dropout = nn.Dropout(branch_dropout)
        self.dropout = nn.Dropout(dropout)
        self.out_layer = nn.Linear(5 * gat_out, self.num_classes)

    def normalized_layer_weights(self):
        """Softmax-normalised layer weights, shape ``[L+1]``."""
        return torch.softmax(self.layer_weights, dim=-1)

    def _feature_map(self, hidden, counts):
        """Weighted layer sum -> projection -> pooled 2-D map ``[B, 1, F', T']``."""
        if counts is not None:
            valid = _counts_mask(counts, hidden.shape[2])
            hidden = hidden.masked_fill(~valid[None, :, :, None], 0.0)
        x = self.proj(weighted_layer_sum(hidden, self.layer_weights))  # [B, T, P]
        if counts is not None:
            x = _zero_padded(x, valid.unsqueeze(-1))
        x = x.transpose(1, 2).unsqueeze(1)  # [B, 1, P, T]
        x, counts = _max_pool_time(x, counts, self.input_pool)
        mask = _map_mask(counts, x.shape[-1])
        x = _zero_padded(F.selu(_masked_batch_norm(self.input_norm, x, mask)), mask)
        return x, counts

    def _nodes(self, x, counts):
        """Spectral ``[B, F', C]`` and temporal ``[B, T', C]`` nodes (+ temporal mask)."""
        mask = _map_mask(counts, x.shape[-1])  # [B, 1, 1, T'] or None
        w = self.att_conv1(x)
        w = _zero_padded(F.selu(w), mask)
        w = self.att_conv2(_masked_batch_norm(self.att_norm, w, mask))  # [B, C, F', T']
        # spectral nodes: attention over (valid) time
        spectral = (x * _attention_weights(w, mask, dim=-1)).sum(-1)  # [B, C, F']
        spectral = spectral.transpose(1, 2) + self.pos_spectral
        # temporal nodes: attention over frequency
        temporal = (x * torch.softmax(w, dim=-2)).sum(-2).transpose(1, 2)  # [B, T', C]
        node_mask = _counts_mask(counts, temporal.shape[1])
        return spectral, _zero_padded(temporal, _unsqueeze(node_mask)), node_mask

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
        for block in self.encoder:
            x, counts = block(x, counts)
        mask = _map_mask(counts, x.shape[-1])
        x = _zero_padded(F.selu(_masked_batch_norm(self.encoder_norm, x, mask)), mask)

        spectral, temporal, temporal_mask = self._nodes(x, counts)
        spectral, spectral_mask = self.pool_spectral(self.gat_spectral(spectral))
        temporal, temporal_mask = self.pool_temporal(
            self.gat_temporal(temporal, temporal_mask), temporal_mask
        )

        branches = []
        for i in range(2):
            master = self.masters[i].expand(x.shape[0], -1, -1)
            t, s, master = self.hsgal1[i](temporal, temporal_mask, spectral, spectral_mask,
                                          master)
            s, s_mask = self.branch_pool_spectral[i](s, spectral_mask)
            t, t_mask = self.branch_pool_temporal[i](t, temporal_mask)
            t_aug, s_aug, master_aug = self.hsgal2[i](t, t_mask, s, s_mask, master)
            branches.append((
                self.branch_dropout(t + t_aug),
                self.branch_dropout(s + s_aug),
                self.branch_dropout(master + master_aug),
            ))
        # both branches keep the same number of nodes per utterance
        t = torch.maximum(branches[0][0], branches[1][0])
        s = torch.maximum(branches[0][1], branches[1][1])
        master = torch.maximum(branches[0][2], branches[1][2])
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
        return self.out_layer(self.dropout(self.embed(hidden, lengths)))


def _map_mask(counts, num_frames):
    """``[B, 1, 1, T]`` mask of a 2-D map, or None."""
    mask = _counts_mask(counts, num_frames)
    return None if mask is None else mask[:, None, None, :]


def _unsqueeze(mask):
    """``mask [B, N] -> [B, N, 1]`` (None stays None)."""
    return None if mask is None else mask.unsqueeze(-1)

