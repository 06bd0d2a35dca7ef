"""Building blocks of the prunable WavLM encoder.

Each block owns its optional hard-concrete gates, knows how to count its
(expected) parameters and multiply-accumulates, and how to remove closed
structures in place (``prune``). All counts are float64 tensors so integer
parameter counts of large models stay exact.

Shapes: ``B`` batch, ``S`` samples, ``C`` conv channels, ``T`` frames,
``D`` hidden size, ``H`` heads kept, ``F`` FFN width.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import length_mask
from ..pruning.hardconcrete import HardConcrete

__all__ = [
    "ConvBlock",
    "FeatureExtractor",
    "FeatureProjection",
    "PositionalConvEmbedding",
    "RelativePositionBias",
    "SelfAttention",
    "FeedForward",
    "EncoderLayer",
]

COUNT_DTYPE = torch.float64


def _count(value, ref=None):
    """A float64 scalar tensor (on ``ref``'s device when given)."""
    device = ref.device if ref is not None else None
    if torch.is_tensor(value):
        return value.to(dtype=COUNT_DTYPE, device=device)
    return torch.tensor(float(value), dtype=COUNT_DTYPE, device=device)


def gate_count(gate, full, ref=None):
    """Expected number of kept units of a gate group (``full`` if no gate, on ``ref``'s device)."""
    if gate is None:
        return _count(full, ref)
    return _count(gate.expected_count())


def masked_group_norm(x, lengths, norm):
    """Per-channel GroupNorm (``groups == channels``) over valid frames only.

    Arguments
    ---------
    x : torch.Tensor
        ``[B, C, T]``.
    lengths : torch.Tensor or None
        Valid frames per item ``[B]``; None = all valid (plain GroupNorm).
    norm : nn.GroupNorm
        Provides the affine parameters and eps.
    """
    if lengths is None or bool((lengths >= x.shape[-1]).all()):
        return norm(x)
    valid = length_mask(lengths, x.shape[-1]).unsqueeze(1).to(x.dtype)
    count = valid.sum(-1, keepdim=True)
    mean = (x * valid).sum(-1, keepdim=True) / count
    var = (((x - mean) * valid) ** 2).sum(-1, keepdim=True) / count
    y = (x - mean) * torch.rsqrt(var + norm.eps)
    return y * norm.weight[None, :, None] + norm.bias[None, :, None]


def gated_layer_norm(x, norm, mask=None):
    """LayerNorm over the last axis, counting only channels whose gate is open.

    With ``mask`` (``[C]``, gate values), statistics use the channels with
    ``mask > 0`` and closed channels output 0. This is exactly a LayerNorm over
    the channels that survive :meth:`prune`, so pruning leaves outputs intact.
    """
    if mask is None:
        return norm(x)
    keep = (mask > 0).to(x.dtype)
    if bool(keep.all()):
        return norm(x)
    count = keep.sum()
    mean = (x * keep).sum(-1, keepdim=True) / count
    var = (((x - mean) * keep) ** 2).sum(-1, keepdim=True) / count
    y = (x - mean) * torch.rsqrt(var + norm.eps)
    return (y * norm.weight + norm.bias) * keep


def _any_open(mask):
    """1.0 if any unit of ``mask`` is open, else 0.0 (no gradient).

    With every head (or FFN unit) closed a sublayer would still add its output
    bias; it is switched off instead, so the sublayer vanishes exactly as
    :meth:`prune` removes it and as the parameter count assumes.
    """
    return (mask.detach() > 0).any().to(mask.dtype)


def _select_linear(linear, out_index=None, in_index=None, in_scale=None):
    """A new ``nn.Linear`` keeping some rows/columns (columns scaled)."""
    weight, bias = linear.weight.data, linear.bias.data if linear.bias is not None else None
    if out_index is not None:
        weight = weight[out_index]
        bias = bias[out_index] if bias is not None else None
    if in_index is not None:
        weight = weight[:, in_index]
        if in_scale is not None:
            weight = weight * in_scale[None, :].to(weight.dtype)  # keep the model's dtype
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    new = new.to(device=weight.device, dtype=weight.dtype)
    new.weight.data.copy_(weight)
    if bias is not None:
        new.bias.data.copy_(bias)
    return new


class ConvBlock(nn.Module):
    """``Conv1d -> [GroupNorm | LayerNorm] -> GELU -> [channel gate]``.

    Arguments
    ---------
    in_channels, out_channels, kernel, stride : int
        Convolution sizes.
    bias : bool
        Convolution bias.
    norm : str or None
        ``"group"`` (per-channel GroupNorm), ``"layer"`` or None.

    Example
    -------
    >>> block = ConvBlock(1, 4, 10, 5, bias=False, norm="group")
    >>> y, n, _ = block(torch.randn(2, 1, 100), torch.tensor([100, 60]))
    >>> y.shape, n.tolist()
    (torch.Size([2, 4, 19]), [19, 11])
    """

    def __init__(self, in_channels, out_channels, kernel, stride, bias, norm):
        super().__init__()
        self.kernel, self.stride = int(kernel), int(stride)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=bias)
        self.norm_type = norm
        if norm == "group":
            self.layer_norm = nn.GroupNorm(out_channels, out_channels, affine=True)
        elif norm == "layer":
            self.layer_norm = nn.LayerNorm(out_channels)
        else:
            self.layer_norm = None
        self.gate = None

    @property
    def out_channels(self):
        return self.conv.out_channels

    def add_gate(self, init_mean):
        """Gate the output channels (at least one channel always survives)."""
        self.gate = HardConcrete(self.out_channels, init_mean=init_mean, min_keep=1)

    def out_lengths(self, lengths):
        """Valid output frames for ``lengths`` valid input frames."""
        return torch.div(lengths - self.kernel, self.stride, rounding_mode="floor") + 1

    def forward(self, x, lengths=None):
        """``x [B, C_in, S]`` -> ``([B, C_out, S'], lengths [B] or None, mask [C_out] or None)``."""
        x = self.conv(x)
        lengths = self.out_lengths(lengths) if lengths is not None else None
        mask = self.gate() if self.gate is not None else None
        if self.norm_type == "group":
            x = masked_group_norm(x, lengths, self.layer_norm)
        elif self.norm_type == "layer":
            x = gated_layer_norm(x.transpose(1, 2), self.layer_norm, mask).transpose(1, 2)
        x = F.gelu(x)
        if mask is not None:
            x = x * mask[None, :, None]
        return x, lengths, mask

    def expected_params(self, in_count):
        out = gate_count(self.gate, self.out_channels, self.conv.weight)
        params = in_count * out * self.kernel
        if self.conv.bias is not None:
            params = params + out
        if self.layer_norm is not None:
            params = params + 2 * out
        return params, out

    def expected_macs(self, in_count, frames):
        out = gate_count(self.gate, self.out_channels, self.conv.weight)
        return frames * self.kernel * in_count * out, out

    def prune_outputs(self):
        """Drop closed output channels; returns ``(kept_index, kept_values)``."""
        mask = self.gate.deterministic_mask()
        index = torch.nonzero(mask > 0).squeeze(1)
        conv = self.conv
        new = nn.Conv1d(
            conv.in_channels, len(index), self.kernel, stride=self.stride,
            bias=conv.bias is not None,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        new.weight.data.copy_(conv.weight.data[index])
        if conv.bias is not None:
            new.bias.data.copy_(conv.bias.data[index])
        self.conv = new
        if self.layer_norm is not None:
            old = self.layer_norm
            if self.norm_type == "group":
                norm = nn.GroupNorm(len(index), len(index), eps=old.eps, affine=True)
            else:
                norm = nn.LayerNorm(len(index), eps=old.eps)
            norm = norm.to(device=old.weight.device, dtype=old.weight.dtype)
            norm.weight.data.copy_(old.weight.data[index])
            norm.bias.data.copy_(old.bias.data[index])
            self.layer_norm = norm
        self.gate = None
        return index, mask[index]

    def prune_inputs(self, index, scale):
        """Keep input channels ``index``, folding ``scale`` into the weights."""
        conv = self.conv
        new = nn.Conv1d(
            len(index), conv.out_channels, self.kernel, stride=self.stride,
            bias=conv.bias is not None,
        ).to(device=conv.weight.device, dtype=conv.weight.dtype)
        new.weight.data.copy_(conv.weight.data[:, index] * scale[None, :, None].to(conv.weight.dtype))
        if conv.bias is not None:
            new.bias.data.copy_(conv.bias.data)
        self.conv = new


class FeatureExtractor(nn.Module):
    """The convolutional front-end: waveform ``[B, S]`` to features ``[B, T, C]``.

    ``output_scale`` (a buffer, ones until pruning) holds the folded gate values
    of the last layer's surviving channels.

    Example
    -------
    >>> fe = FeatureExtractor([[8, 10, 5], [8, 3, 2]], "group_norm", bias=False)
    >>> feats, lengths, mask = fe(torch.randn(2, 400), torch.tensor([400, 300]))
    >>> feats.shape, lengths.tolist()
    (torch.Size([2, 39, 8]), [39, 29])
    """

    def __init__(self, conv_layers, mode, bias):
        super().__init__()
        blocks, in_channels = [], 1
        for i, (channels, kernel, stride) in enumerate(conv_layers):
            if mode == "layer_norm":
                norm = "layer"
            else:
                norm = "group" if i == 0 else None
            blocks.append(ConvBlock(in_channels, channels, kernel, stride, bias, norm))
            in_channels = channels
        self.conv_layers = nn.ModuleList(blocks)
        self.register_buffer("output_scale", torch.ones(in_channels))

    def add_gates(self, init_mean):
        for block in self.conv_layers:
            block.add_gate(init_mean)

    def forward(self, wavs, lengths=None):
        """Returns ``(features [B, T, C], frame lengths [B] or None, last mask)``."""
        x, mask = wavs.unsqueeze(1), None
        for block in self.conv_layers:
            x, lengths, mask = block(x, lengths)
        x = x * self.output_scale[None, :, None]
        return x.transpose(1, 2), lengths, mask

    def expected(self, num_samples):
        """Expected ``(params, macs, last_channels)`` for ``num_samples``."""
        ref = self.output_scale
        params, macs, count, frames = _count(0, ref), _count(0, ref), _count(1, ref), num_samples
        for block in self.conv_layers:
            frames = (frames - block.kernel) // block.stride + 1
            p, _ = block.expected_params(count)
            m, count = block.expected_macs(count, frames)
            params, macs = params + p, macs + m
        return params, macs, count, frames

    def prune(self, projection):
        """Remove closed channels; fold gate values into the next layer."""
        kept = []
        for i, block in enumerate(self.conv_layers):
            if block.gate is None:
                kept.append(block.out_channels)
                continue
            index, scale = block.prune_outputs()
            if i + 1 < len(self.conv_layers):
                self.conv_layers[i + 1].prune_inputs(index, scale)
            else:
                scale = scale.to(self.output_scale.dtype)
                self.output_scale = (self.output_scale[index] * scale).contiguous()
                projection.prune_inputs(index)
            kept.append(len(index))
        return kept


class FeatureProjection(nn.Module):
    """``LayerNorm(C) -> Linear(C, D) -> Dropout``; the LayerNorm is gate-aware."""

    def __init__(self, in_channels, hidden_size, dropout, eps=1e-5):
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_channels, eps=eps)
        self.projection = nn.Linear(in_channels, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None):
        """``x [B, T, C] -> [B, T, D]``; ``mask`` = last conv gate values."""
        return self.dropout(self.projection(gated_layer_norm(x, self.layer_norm, mask)))

    def expected_params(self, channels):
        hidden = self.projection.out_features
        return 2 * channels + channels * hidden + hidden

    def expected_macs(self, channels, frames):
        return frames * channels * self.projection.out_features

    def prune_inputs(self, index):
        old = self.layer_norm
        norm = nn.LayerNorm(len(index), eps=old.eps).to(old.weight.device, old.weight.dtype)
        norm.weight.data.copy_(old.weight.data[index])
        norm.bias.data.copy_(old.bias.data[index])
        self.layer_norm = norm
        self.projection = _select_linear(self.projection, in_index=index)


class PositionalConvEmbedding(nn.Module):
    """Weight-normalised grouped conv over time, "same" padding, then GELU."""

    def __init__(self, hidden_size, kernel, groups):
        super().__init__()
        conv = nn.Conv1d(hidden_size, hidden_size, kernel, padding=kernel // 2, groups=groups)
        self.conv = nn.utils.parametrizations.weight_norm(conv, name="weight", dim=2)
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x):
        """``x [B, T, D] -> [B, T, D]``."""
        y = self.conv(x.transpose(1, 2))
        if self.remove:
            y = y[:, :, : -self.remove]
        return F.gelu(y).transpose(1, 2)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def macs(self, frames):
        conv = self.conv
        return frames * conv.kernel_size[0] * conv.in_channels * conv.out_channels / conv.groups


class RelativePositionBias(nn.Module):
    """WavLM's bucketed relative position bias, shared by all layers.

    Example
    -------
    >>> rel = RelativePositionBias(num_buckets=320, max_distance=800, num_heads=4)
    >>> rel(6).shape
    torch.Size([4, 6, 6])
    """

    def __init__(self, num_buckets, max_distance, num_heads):
        super().__init__()
        self.num_buckets, self.max_distance = int(num_buckets), int(max_distance)
        self.rel_attn_embed = nn.Embedding(self.num_buckets, num_heads)

    def buckets(self, length, device):
        positions = torch.arange(length, device=device)
        relative = positions[None, :] - positions[:, None]
        half = self.num_buckets // 2
        buckets = (relative > 0).long() * half
        relative = relative.abs()
        max_exact = half // 2
        is_small = relative < max_exact
        large = torch.log(relative.float() / max_exact) / math.log(self.max_distance / max_exact)
        large = (max_exact + large * (half - max_exact)).long()
        large = torch.clamp(large, max=half - 1)
        return buckets + torch.where(is_small, relative, large)

    def forward(self, length):
        """Bias ``[H_orig, T, T]`` for a sequence of ``length`` frames."""
        buckets = self.buckets(length, self.rel_attn_embed.weight.device)
        return self.rel_attn_embed(buckets).permute(2, 0, 1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with WavLM's gated relative position bias.

    Arguments
    ---------
    hidden_size : int
        ``D``.
    num_heads : int
        Original number of heads (fixes the head dimension ``D / num_heads``).
    kept_heads : list of int
        Original indices of the heads this layer has.
    dropout : float
        Attention-probability dropout.

    Example
    -------
    >>> att = SelfAttention(16, 4, kept_heads=[0, 2], dropout=0.0)
    >>> att(torch.randn(2, 5, 16), torch.randn(4, 5, 5)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, hidden_size, num_heads, kept_heads, dropout):
        super().__init__()
        self.hidden_size, self.num_heads_orig = hidden_size, num_heads
        self.head_dim = hidden_size // num_heads
        inner = len(kept_heads) * self.head_dim
        self.q_proj = nn.Linear(hidden_size, inner)
        self.k_proj = nn.Linear(hidden_size, inner)
        self.v_proj = nn.Linear(hidden_size, inner)
        self.out_proj = nn.Linear(inner, hidden_size)
        self.gru_rel_pos_const = nn.Parameter(torch.ones(1, len(kept_heads), 1, 1))
        self.gru_rel_pos_linear = nn.Linear(self.head_dim, 8)
        self.register_buffer("kept_heads", torch.tensor(kept_heads, dtype=torch.long), persistent=False)
        self.dropout = dropout
        self.head_gate = None
        self.layer_gate = None

    @property
    def num_heads(self):
        return len(self.kept_heads)

    def add_gates(self, head_init=None, layer_init=None):
        if head_init is not None:
            self.head_gate = HardConcrete(self.num_heads, init_mean=head_init)
        if layer_init is not None:
            self.layer_gate = HardConcrete(1, init_mean=layer_init)

    def forward(self, x, position_bias, key_padding_mask=None):
        """``x [B, T, D]``, ``position_bias [H_orig, T, T]``,
        ``key_padding_mask [B, T]`` (True = padding) -> ``[B, T, D]``."""
        batch, frames, _ = x.shape
        heads, dim = self.num_heads, self.head_dim

        def split(t):
            return t.view(batch, frames, heads, dim).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        chunks = x.view(batch, frames, self.num_heads_orig, dim)
        bias = position_bias
        if heads != self.num_heads_orig:
            chunks = chunks.index_select(2, self.kept_heads)
            bias = bias.index_select(0, self.kept_heads)
        gates = self.gru_rel_pos_linear(chunks.transpose(1, 2))
        gate_a, gate_b = torch.sigmoid(gates.view(batch, heads, frames, 2, 4).sum(-1)).chunk(2, dim=-1)
        gate = gate_a * (gate_b * self.gru_rel_pos_const - 1.0) + 2.0
        bias = gate * bias.unsqueeze(0)
        if key_padding_mask is not None:
            bias = bias.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0
        )
        head_mask = self.head_gate() if self.head_gate is not None else None
        if head_mask is not None:
            context = context * head_mask[None, :, None, None]
        out = self.out_proj(context.transpose(1, 2).reshape(batch, frames, heads * dim))
        if head_mask is not None:
            out = out * _any_open(head_mask)
        if self.layer_gate is not None:
            out = out * self.layer_gate()
        return out

    def expected_heads_and_presence(self):
        ref = self.out_proj.weight
        heads = gate_count(self.head_gate, self.num_heads, ref)
        presence = torch.clamp(heads, max=1.0) * gate_count(self.layer_gate, 1, ref)
        return heads, presence

    def expected_params(self):
        heads, presence = self.expected_heads_and_presence()
        d, hd = self.hidden_size, self.head_dim
        params = 3 * (d + 1) * heads * hd + (heads * hd + 1) * d + heads + hd * 8 + 8
        return params * presence

    def expected_macs(self, frames):
        heads, presence = self.expected_heads_and_presence()
        d, hd = self.hidden_size, self.head_dim
        return (4 * frames * heads * d * hd + 2 * frames * frames * heads * hd) * presence

    def prune(self):
        """Remove closed heads, fold gates into ``out_proj``.

        Returns the kept original head indices (empty: remove the sublayer).
        """
        heads, dim = self.num_heads, self.head_dim
        head_mask = self.head_gate.deterministic_mask() if self.head_gate is not None else None
        layer_mask = self.layer_gate.deterministic_mask() if self.layer_gate is not None else None
        keep = torch.ones(heads, dtype=torch.bool, device=self.out_proj.weight.device)
        scale = torch.ones(heads, device=keep.device)
        if head_mask is not None:
            keep, scale = head_mask > 0, head_mask
        if layer_mask is not None and float(layer_mask[0]) == 0.0:
            keep = torch.zeros_like(keep)
        index = torch.nonzero(keep).squeeze(1)
        kept = self.kept_heads[index]
        if len(index) == 0:
            return []
        rows = (index[:, None] * dim + torch.arange(dim, device=index.device)).reshape(-1)
        col_scale = scale[index].repeat_interleave(dim)
        self.q_proj = _select_linear(self.q_proj, out_index=rows)
        self.k_proj = _select_linear(self.k_proj, out_index=rows)
        self.v_proj = _select_linear(self.v_proj, out_index=rows)
        self.out_proj = _select_linear(self.out_proj, in_index=rows, in_scale=col_scale)
        if layer_mask is not None:
            self.out_proj.weight.data *= layer_mask[0]
            self.out_proj.bias.data *= layer_mask[0]
        self.gru_rel_pos_const = nn.Parameter(self.gru_rel_pos_const.data[:, index].clone())
        self.kept_heads = kept.clone()
        self.head_gate = self.layer_gate = None
        return kept.tolist()


class FeedForward(nn.Module):
    """``Linear(D, F) -> GELU -> [unit gate] -> Dropout -> Linear(F, D) -> Dropout -> [layer gate]``."""

    def __init__(self, hidden_size, ffn_dim, activation_dropout, hidden_dropout):
        super().__init__()
        self.intermediate_dense = nn.Linear(hidden_size, ffn_dim)
        self.intermediate_dropout = nn.Dropout(activation_dropout)
        self.output_dense = nn.Linear(ffn_dim, hidden_size)
        self.output_dropout = nn.Dropout(hidden_dropout)
        self.unit_gate = None
        self.layer_gate = None

    @property
    def ffn_dim(self):
        return self.intermediate_dense.out_features

    def add_gates(self, unit_init=None, layer_init=None):
        if unit_init is not None:
            self.unit_gate = HardConcrete(self.ffn_dim, init_mean=unit_init)
        if layer_init is not None:
            self.layer_gate = HardConcrete(1, init_mean=layer_init)

    def forward(self, x):
        """``x [B, T, D] -> [B, T, D]``."""
        h = F.gelu(self.intermediate_dense(x))
        unit_mask = self.unit_gate() if self.unit_gate is not None else None
        if unit_mask is not None:
            h = h * unit_mask
        out = self.output_dropout(self.output_dense(self.intermediate_dropout(h)))
        if unit_mask is not None:
            out = out * _any_open(unit_mask)
        if self.layer_gate is not None:
            out = out * self.layer_gate()
        return out

    def expected_units_and_presence(self):
        ref = self.output_dense.weight
        units = gate_count(self.unit_gate, self.ffn_dim, ref)
        presence = torch.clamp(units, max=1.0) * gate_count(self.layer_gate, 1, ref)
        return units, presence

    def expected_params(self):
        units, presence = self.expected_units_and_presence()
        d = self.output_dense.out_features
        return ((d + 1) * units + (units + 1) * d) * presence

    def expected_macs(self, frames):
        units, presence = self.expected_units_and_presence()
        return 2 * frames * self.output_dense.out_features * units * presence

    def prune(self):
        """Remove closed units, fold gates into ``output_dense``; returns the width."""
        unit_mask = self.unit_gate.deterministic_mask() if self.unit_gate is not None else None
        layer_mask = self.layer_gate.deterministic_mask() if self.layer_gate is not None else None
        self.unit_gate = self.layer_gate = None
        if layer_mask is not None and float(layer_mask[0]) == 0.0:
            return 0
        if unit_mask is not None:
            index = torch.nonzero(unit_mask > 0).squeeze(1)
            if len(index) == 0:
                return 0
            self.intermediate_dense = _select_linear(self.intermediate_dense, out_index=index)
            self.output_dense = _select_linear(
                self.output_dense, in_index=index, in_scale=unit_mask[index]
            )
        if layer_mask is not None:
            self.output_dense.weight.data *= layer_mask[0]
            self.output_dense.bias.data *= layer_mask[0]
        return self.ffn_dim


class EncoderLayer(nn.Module):
    """One Transformer layer, post-LN (Base) or pre-LN (Large).

    A missing sublayer (``attention`` or ``feed_forward`` is None) is skipped;
    its LayerNorm still applies in the post-LN variant, as in the gated model
    whose closed sublayer outputs zero; in the pre-LN variant the LayerNorm in
    front of it goes too, so no parameter is left unused (DDP-safe).
    """

    def __init__(self, config, index):
        super().__init__()
        d = config.hidden_size
        heads = config.layer_heads[index]
        ffn_dim = config.layer_ffn_dims[index]
        self.attention = (
            SelfAttention(d, config.num_heads, heads, config.attention_dropout) if heads else None
        )
        self.feed_forward = (
            FeedForward(d, ffn_dim, config.activation_dropout, config.hidden_dropout)
            if ffn_dim > 0
            else None
        )
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.pre_ln = config.layer_norm_first
        # Pre-LN: a norm exists only in front of a sublayer that exists (no unused
        # parameters for DDP); post-LN: both norms always apply.
        keep_att_norm = self.attention is not None or not self.pre_ln
        keep_ffn_norm = self.feed_forward is not None or not self.pre_ln
        eps = config.layer_norm_eps
        self.layer_norm = nn.LayerNorm(d, eps=eps) if keep_att_norm else None
        self.final_layer_norm = nn.LayerNorm(d, eps=eps) if keep_ffn_norm else None
        self.hidden_size = d

    def forward(self, x, position_bias, key_padding_mask=None):
        """``x [B, T, D] -> [B, T, D]``."""
        if self.pre_ln:
            if self.attention is not None:
                x = x + self.dropout(
                    self.attention(self.layer_norm(x), position_bias, key_padding_mask)
                )
            if self.feed_forward is not None:
                x = x + self.feed_forward(self.final_layer_norm(x))
            return x
        if self.attention is not None:
            x = x + self.dropout(self.attention(x, position_bias, key_padding_mask))
        x = self.layer_norm(x)
        if self.feed_forward is not None:
            x = x + self.feed_forward(x)
        return self.final_layer_norm(x)

    def expected(self, frames):
        """Expected ``(params, macs)`` of this layer."""
        ref = next(self.parameters(), None)
        norm = 2 * self.hidden_size
        params = _count(0 if self.pre_ln else 2 * norm, ref)
        macs = _count(0, ref)
        if self.attention is not None:
            params = params + self.attention.expected_params()
            macs = macs + self.attention.expected_macs(frames)
            if self.pre_ln:
                params = params + norm * self.attention.expected_heads_and_presence()[1]
        if self.feed_forward is not None:
            params = params + self.feed_forward.expected_params()
            macs = macs + self.feed_forward.expected_macs(frames)
            if self.pre_ln:
                params = params + norm * self.feed_forward.expected_units_and_presence()[1]
        return params, macs

    def prune(self):
        """Prune both sublayers; returns ``(kept head indices, FFN width)``."""
        heads = []
        if self.attention is not None:
            heads = self.attention.prune()
            if not heads:
                self.attention = None
                if self.pre_ln:
                    self.layer_norm = None
        ffn_dim = 0
        if self.feed_forward is not None:
            ffn_dim = self.feed_forward.prune()
            if ffn_dim == 0:
                self.feed_forward = None
                if self.pre_ln:
                    self.final_layer_norm = None
        return heads, ffn_dim
