"""ECAPA-TDNN back-end on a learned weighted sum of the encoder layers.

The ``L + 1`` hidden states are combined with softmax-normalised learnable
weights (uniform at initialisation), optionally layer-normalised, and fed to
SpeechBrain's :class:`speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN`.

Padding
-------
SpeechBrain's ECAPA-TDNN masks padded frames only in its squeeze-excitation
means and in the attentive statistics pooling. Its time convolutions (kernel
5, then kernel 3 with dilation 2, 3 and 4) use ``"same"`` padding with
``padding_mode="reflect"`` and see whatever lies in the padded frames, so the
last ~11 valid frames of a padded utterance (receptive field ±11) differ from
the utterance run alone, and garbage in the padded frames changes the
embedding. With ``exact_padding=True`` (default) this back-end makes every
such convolution read, right after the last valid frame, the reflection of
the valid frames -- exactly what ``F.pad(..., mode="reflect")`` gives the
utterance run alone -- and passes ECAPA relative lengths that select exactly
``round(length * T)`` frames in its masks. In eval mode the embedding of a
padded utterance then equals (to float rounding) that of the utterance alone,
whatever the padded frames contain. In train mode ECAPA's BatchNorm layers
still take their batch statistics over all frames, padded ones included
(a property of the upstream model that this wrapper does not change).
ECAPA run on an unpadded input needs more valid frames than its largest
reflect padding (4 frames with the default dilations); an utterance that short
inside a padded batch gets a clamped reflection instead of an error.

Authors
 * speechbrain_pruning contributors
"""

import torch
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.nnet.CNN import Conv1d as SBConv1d
from torch import nn

from ..nn import prepare_hidden, valid_frame_counts, weighted_layer_sum

__all__ = ["WeightedLayerECAPA"]


class _PaddingState:
    """Valid-frame counts of the batch being processed (None outside forward)."""

    def __init__(self):
        self.counts = None


class _ReflectFill:
    """Forward pre-hook of a SpeechBrain ``Conv1d`` (input ``[B, C, T]``).

    Replaces every frame ``t >= n_b`` of utterance ``b`` by frame
    ``2 (n_b - 1) - t`` (clamped to >= 0): the right reflect-padding the
    convolution would apply to the utterance run alone. Frames beyond the
    convolution's reach only feed padded outputs.
    """

    def __init__(self, state):
        self.state = state

    def __call__(self, module, args):
        counts = self.state.counts
        if counts is None:
            return None
        x = args[0]
        num_frames = x.shape[-1]
        frames = torch.arange(num_frames, device=x.device).unsqueeze(0)  # [1, T]
        last = (counts.to(x.device) - 1).unsqueeze(1)  # [B, 1]
        index = torch.where(frames <= last, frames, 2 * last - frames).clamp(min=0)
        index = index.unsqueeze(1).expand(-1, x.shape[1], -1)  # [B, C, T]
        return (x.gather(-1, index),) + tuple(args[1:])


def _reach(conv):
    """Frames a SpeechBrain ``Conv1d`` reads past its output frame (right side)."""
    if conv.padding != "same":
        return 0
    return conv.dilation * (conv.kernel_size - 1) // 2


class WeightedLayerECAPA(nn.Module):
    """Softmax-weighted sum of the encoder layers followed by ECAPA-TDNN.

    Arguments
    ---------
    num_layers : int
        Number of stacked hidden states ``L + 1``.
    feat_dim : int
        Hidden size ``D`` of the encoder.
    lin_neurons : int
        Size ``E`` of the output embedding.
    channels : sequence of int
        ECAPA-TDNN channels of the TDNN / SE-Res2Net / MFA layers.
    layer_norm : bool
        Apply a LayerNorm (over ``D``) to the weighted sum.
    exact_padding : bool
        Make ECAPA's convolutions ignore padded frames (see module docstring).
    feature_grad_mult : float
        Factor applied to the gradient flowing back into the hidden states.
    **ecapa_kwargs
        Further arguments of ``ECAPA_TDNN`` (``kernel_sizes``, ``dilations``,
        ``attention_channels``, ``res2net_scale``, ``se_channels``, ...).

    Example
    -------
    >>> backend = WeightedLayerECAPA(
    ...     num_layers=4, feat_dim=16, lin_neurons=6,
    ...     channels=(32, 32, 32, 32, 96), attention_channels=8, se_channels=8,
    ... )
    >>> hidden = torch.randn(4, 3, 40, 16)  # [L+1, B, T, D]
    >>> backend(hidden, torch.tensor([1.0, 0.8, 0.5])).shape
    torch.Size([3, 6])
    """

    def __init__(
        self,
        num_layers,
        feat_dim,
        lin_neurons=192,
        channels=(512, 512, 512, 512, 1536),
        layer_norm=True,
        exact_padding=True,
        feature_grad_mult=1.0,
        **ecapa_kwargs,
    ):
        super().__init__()
        self.num_layers = int(num_layers)
        self.feat_dim = int(feat_dim)
        self.lin_neurons = int(lin_neurons)
        self.exact_padding = bool(exact_padding)
        self.feature_grad_mult = float(feature_grad_mult)

        # zeros -> uniform softmax weights 1 / (L + 1)
        self.layer_weights = nn.Parameter(torch.zeros(self.num_layers))
        self.norm = nn.LayerNorm(self.feat_dim) if layer_norm else nn.Identity()
        self.ecapa = ECAPA_TDNN(
            input_size=self.feat_dim,
            lin_neurons=self.lin_neurons,
            channels=list(channels),
            **ecapa_kwargs,
        )

        self._padding_state = _PaddingState()
        self._extra_frames = 0
        if self.exact_padding:
            for module in self.ecapa.modules():
                if isinstance(module, SBConv1d) and _reach(module) > 0:
                    if module.padding_mode != "reflect":
                        raise NotImplementedError(
                            "exact_padding supports reflect-padded convolutions only, "
                            f"got padding_mode={module.padding_mode!r}"
                        )
                    module.register_forward_pre_hook(_ReflectFill(self._padding_state))
                    self._extra_frames = max(self._extra_frames, _reach(module))

    def normalized_layer_weights(self):
        """Softmax-normalised layer weights, shape ``[L+1]``."""
        return torch.softmax(self.layer_weights, dim=-1)

    def forward(self, hidden, lengths=None):
        """Speaker embeddings ``[B, lin_neurons]``.

        ``hidden [L+1, B, T, D]``: stacked hidden states; ``lengths [B]``: relative
        lengths in (0, 1] (None: no padding).
        """
        hidden = prepare_hidden(hidden, self.num_layers, self.feat_dim,
                                self.feature_grad_mult, "WeightedLayerECAPA")
        x = self.norm(weighted_layer_sum(hidden, self.layer_weights))  # [B, T, D]

        if lengths is None:
            return self.ecapa(x).squeeze(1)

        lengths = torch.as_tensor(lengths, device=x.device)
        counts = valid_frame_counts(lengths, x.shape[1])  # [B]
        if self.exact_padding and self._extra_frames > 0:
            # room for the reflection of the longest utterance's last frames
            x = nn.functional.pad(x, (0, 0, 0, self._extra_frames))
        num_frames = x.shape[1]
        # ECAPA keeps frames t < length * T: (n - 0.5) / T selects exactly n
        ecapa_lengths = (counts.float() - 0.5) / num_frames
        self._padding_state.counts = counts if self.exact_padding else None
        try:
            embedding = self.ecapa(x, lengths=ecapa_lengths)
        finally:
            self._padding_state.counts = None
        return embedding.squeeze(1)
