"""End-to-end neural diarization (EEND) head with powerset outputs.

DiariZen-style local diarization back-end on the stacked hidden states of
WavLM:

* learned layer combination of ``hidden [L+1, B, T, D]`` -> ``[B, T, D]``
  (``"linear"``: unnormalised ``Linear(L+1, 1, bias=False)`` as in DiariZen;
  ``"softmax"``: softmax-normalised weights, initialised uniform);
* ``Linear(D, hidden)`` -> ``LayerNorm``;
* :class:`torchaudio.models.Conformer` blocks, padded keys masked in
  self-attention;
* ``Linear(hidden, C)`` -> ``log_softmax`` over the ``C`` powerset classes
  (see :class:`speechbrain_pruning.diarization.powerset.Powerset`).

Padding.  torchaudio's Conformer only masks padding in self-attention: its
depthwise convolution (kernel ``kernel_size``, "same" padding) reads the
neighbouring padded frames, so the last ``kernel_size // 2`` valid frames of a
padded item depend on whatever lies in the padding (checked in
``tests/test_eend.py``).  With ``mask_conv_padding=True`` (default) a forward
pre-hook on every depthwise convolution zeroes the padded frames of its input,
and the projected features of padded frames are zeroed before the first block.
In eval mode the outputs of valid frames then do not depend on padding at all
(a padded item gives the same valid outputs as the item alone).  In training
mode the BatchNorm of the convolution module still pools batch statistics over
padded frames, so padding has a (small) influence during training only.

The blocks of the :class:`~torchaudio.models.Conformer` are called one by one
with our own key-padding mask rather than through ``Conformer.forward``, whose
mask has ``max(lengths)`` columns and so breaks when every item of the batch
is shorter than the padded length ``T``.

Authors
 * speechbrain_pruning contributors
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.models import Conformer

from ..nn import length_mask, prepare_hidden, valid_frame_counts, weighted_layer_sum
from .powerset import Powerset

__all__ = ["EENDHead"]


class EENDHead(nn.Module):
    """Conformer powerset diarization head over all WavLM layers.

    Arguments
    ---------
    num_layers : int
        Number of stacked hidden states ``L + 1`` (13 for WavLM Base/Base+).
    feat_dim : int
        Hidden size ``D`` of the encoder (768 for WavLM Base+).
    hidden : int
        Model dimension of the Conformer.
    conformer_layers : int
        Number of Conformer blocks.
    heads : int
        Self-attention heads per block.
    ffn_dim : int
        Hidden size of the Conformer feed-forward modules.
    kernel_size : int
        Depthwise convolution kernel size (odd).
    dropout : float
        Dropout probability inside the Conformer.
    max_speakers : int
        Number ``K`` of local speakers.
    max_per_frame : int
        Maximum number of overlapping speakers encoded by a powerset class.
    weighted_sum : str
        ``"linear"`` (unnormalised ``Linear(L+1, 1, bias=False)`` with
        PyTorch's default init, as in DiariZen) or ``"softmax"``
        (softmax-normalised weights, initialised uniform).
    mask_conv_padding : bool
        Zero padded frames before every depthwise convolution (see module
        docstring); ``False`` = plain torchaudio behaviour.
    output_activation : str, optional
        Activation after the last Conformer block (DiariZen's
        ``output_activate_function``: ``"ReLU"``, ``"ReLU6"``, ``"Tanh"``,
        ``"LeakyReLU"``, ``"Sigmoid"``); None (default) = none.

    Example
    -------
    >>> head = EENDHead(num_layers=3, feat_dim=16, hidden=8, conformer_layers=1,
    ...                 heads=2, ffn_dim=16, kernel_size=3).eval()
    >>> hidden = torch.randn(3, 2, 20, 16)  # [L+1, B, T, D]
    >>> log_probs = head(hidden, torch.tensor([1.0, 0.6]))
    >>> log_probs.shape  # 11 classes for K=4 speakers, <= 2 at a time
    torch.Size([2, 20, 11])
    >>> head.powerset.to_multilabel(log_probs).shape
    torch.Size([2, 20, 4])

    With the DiariZen sizes (WavLM Base+: 13 layers of 768; hidden 256, 4
    blocks, ffn 1024, 4 heads, kernel 31) the head has 6.29 M parameters
    (6.09 M of them in the Conformer):

    >>> sum(p.numel() for p in EENDHead(13, 768).parameters())
    6291992
    """

    def __init__(
        self,
        num_layers,
        feat_dim,
        hidden=256,
        conformer_layers=4,
        heads=4,
        ffn_dim=1024,
        kernel_size=31,
        dropout=0.1,
        max_speakers=4,
        max_per_frame=2,
        weighted_sum="linear",
        mask_conv_padding=True,
        output_activation=None,
    ):
        super().__init__()
        self.num_layers = int(num_layers)
        self.feat_dim = int(feat_dim)
        self.hidden = int(hidden)
        self.weighted_sum = str(weighted_sum)
        self.mask_conv_padding = bool(mask_conv_padding)
        if self.weighted_sum == "linear":
            self.layer_weights = nn.Linear(self.num_layers, 1, bias=False)
        elif self.weighted_sum == "softmax":
            self.layer_weights = nn.Parameter(torch.zeros(self.num_layers))
        else:
            raise ValueError(f"weighted_sum must be 'linear' or 'softmax', got {weighted_sum!r}")

        self.powerset = Powerset(max_speakers=max_speakers, max_per_frame=max_per_frame)
        self.proj = nn.Linear(self.feat_dim, self.hidden)
        self.norm = nn.LayerNorm(self.hidden)
        self.conformer = Conformer(
            input_dim=self.hidden,
            num_heads=int(heads),
            ffn_dim=int(ffn_dim),
            num_layers=int(conformer_layers),
            depthwise_conv_kernel_size=int(kernel_size),
            dropout=float(dropout),
        )
        self.classifier = nn.Linear(self.hidden, self.powerset.num_classes)
        self.output_activation = None
        if output_activation:
            if output_activation not in ("ReLU", "ReLU6", "Tanh", "LeakyReLU", "Sigmoid"):
                raise ValueError(f"output_activation {output_activation!r} is not supported")
            self.output_activation = getattr(nn, output_activation)()

        self._valid = None  # [B, T] mask of the current forward, read by the hooks
        for layer in self.conformer.conformer_layers:
            depthwise = layer.conv_module.sequential[2]
            depthwise.register_forward_pre_hook(self._mask_conv_input)

    def _mask_conv_input(self, module, args):
        """Forward pre-hook: zero padded frames of a depthwise conv input ``[B, C, T]``."""
        if self._valid is None or not self.mask_conv_padding:
            return None
        (x,) = args
        return (x.masked_fill(~self._valid.unsqueeze(1), 0.0),)

    def combined_layers(self, hidden):
        """Learned combination of the stacked hidden states.

        Arguments
        ---------
        hidden : torch.Tensor
            Stacked hidden states, shape ``[L+1, B, T, D]``.

        Returns
        -------
        torch.Tensor
            Combined features, shape ``[B, T, D]``.
        """
        if self.weighted_sum == "linear":  # DiariZen's unnormalised Linear(L, 1)
            return torch.tensordot(self.layer_weights.weight[0].to(hidden.dtype), hidden,
                                   dims=([0], [0]))
        return weighted_layer_sum(hidden, self.layer_weights)

    def forward(self, hidden, lengths=None):
        """Powerset log-probabilities ``[B, T, C]`` (padded frames: finite, to ignore).

        ``hidden [L+1, B, T, D]``: stacked hidden states; ``lengths [B]``: relative
        lengths in (0, 1] (None: no padding).
        """
        hidden = prepare_hidden(hidden, self.num_layers, self.feat_dim, 1.0, "EENDHead")
        _, batch, frames, _ = hidden.shape
        if lengths is None:
            counts = torch.full((batch,), frames, dtype=torch.long, device=hidden.device)
        else:
            counts = valid_frame_counts(torch.as_tensor(lengths, device=hidden.device), frames)
        valid = length_mask(counts, frames)

        x = self.norm(self.proj(self.combined_layers(hidden)))  # [B, T, H]
        if self.mask_conv_padding:
            x = x.masked_fill(~valid.unsqueeze(-1), 0.0)  # also removes NaN/inf padding
        padding_mask = ~valid  # True = padded key
        self._valid = valid
        try:
            x = x.transpose(0, 1)  # [T, B, H], as the torchaudio layers expect
            tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            for layer in self.conformer.conformer_layers:
                x = _traceable_layer(layer, x, padding_mask) if tracing else layer(x, padding_mask)
            x = x.transpose(0, 1)
            if self.output_activation is not None:
                x = self.output_activation(x)
        finally:
            self._valid = None
        return torch.log_softmax(self.classifier(x), dim=-1)


def _attention(mha, x, key_padding_mask):
    """``nn.MultiheadAttention`` self-attention of ``x [T, B, D]`` written with shape-free
    reshapes: the tracer (ONNX export) would freeze the batch size inside
    ``F.multi_head_attention_forward``. Same function (eval mode, no dropout)."""
    frames, _, dim = x.shape
    heads = mha.num_heads
    q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)

    def split(t):  # [T, B, D] -> [B, h, T, d]
        return t.reshape(frames, -1, heads, dim // heads).permute(1, 2, 0, 3)

    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(-1, -2) / math.sqrt(dim // heads)
    if key_padding_mask is not None:
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v  # [B, h, T, d]
    out = out.permute(2, 0, 1, 3).reshape(frames, -1, dim)
    return mha.out_proj(out)


def _traceable_layer(layer, x, padding_mask):
    """torchaudio ``ConformerLayer.forward`` with :func:`_attention` (ONNX export path)."""
    residual = x
    x = layer.ffn1(x) * 0.5 + residual
    if layer.convolution_first:
        x = layer._apply_convolution(x)
    residual = x
    x = _attention(layer.self_attn, layer.self_attn_layer_norm(x), padding_mask)
    x = layer.self_attn_dropout(x) + residual
    if not layer.convolution_first:
        x = layer._apply_convolution(x)
    residual = x
    x = layer.ffn2(x) * 0.5 + residual
    return layer.final_layer_norm(x)
