"""Multi-Head Factorized Attentive pooling (MHFA) back-end.

MHFA (Peng et al., "An attention-based backend allowing efficient fine-tuning
of transformer models for speaker verification", SLT 2022) turns the stacked
hidden states of a self-supervised encoder into a speaker embedding:

* keys   = ``sum_l softmax(w_k)_l * h_l`` -> ``Linear(D, C)``;
* values = ``sum_l softmax(w_v)_l * h_l`` -> ``Linear(D, C)``;
* ``H`` attention maps ``softmax_t(Linear(C, H)(keys))`` (padded frames
  masked out) each pool the compressed values -> ``[B, H, C]``;
* flatten -> ``Linear(H * C, E)`` -> embedding ``[B, E]``.

Padded frames never influence the output: their attention logits are set to
``-inf`` and their values to 0 before pooling (so even NaN/inf garbage there is
harmless).

Authors
 * speechbrain_pruning contributors
"""

import torch
from torch import nn

from ..nn import GradMultiply, prepare_hidden, valid_frame_mask, weighted_layer_sum

__all__ = ["MHFA", "GradMultiply"]


class MHFA(nn.Module):
    """Multi-Head Factorized Attentive pooling over all encoder layers.

    Arguments
    ---------
    num_layers : int
        Number of stacked hidden states ``L + 1`` (13 for WavLM Base/Base+,
        25 for Large).
    feat_dim : int
        Hidden size ``D`` of the encoder (768 / 1024).
    num_heads : int
        Number of attention heads ``H`` (pooling maps).
    compression_dim : int
        Size ``C`` of the compressed keys and values.
    embed_dim : int
        Size ``E`` of the output embedding.
    feature_grad_mult : float
        Factor applied to the gradient flowing back into the hidden states
        (1.0 = unchanged, 0.0 = frozen encoder).

    Example
    -------
    >>> backend = MHFA(num_layers=4, feat_dim=16, num_heads=2,
    ...                compression_dim=8, embed_dim=6)
    >>> hidden = torch.randn(4, 3, 20, 16)  # [L+1, B, T, D]
    >>> backend(hidden, torch.tensor([1.0, 0.8, 0.5])).shape
    torch.Size([3, 6])
    >>> sum(p.numel() for p in MHFA(13, 768).parameters())  # WavLM Base+
    1249850
    """

    def __init__(
        self,
        num_layers,
        feat_dim,
        num_heads=32,
        compression_dim=128,
        embed_dim=256,
        feature_grad_mult=1.0,
    ):
        super().__init__()
        self.num_layers = int(num_layers)
        self.feat_dim = int(feat_dim)
        self.num_heads = int(num_heads)
        self.compression_dim = int(compression_dim)
        self.embed_dim = int(embed_dim)
        self.feature_grad_mult = float(feature_grad_mult)

        self.weights_k = nn.Parameter(torch.ones(self.num_layers))
        self.weights_v = nn.Parameter(torch.ones(self.num_layers))
        self.cmp_linear_k = nn.Linear(self.feat_dim, self.compression_dim)
        self.cmp_linear_v = nn.Linear(self.feat_dim, self.compression_dim)
        self.att_head = nn.Linear(self.compression_dim, self.num_heads)
        self.pooling_fc = nn.Linear(self.num_heads * self.compression_dim, self.embed_dim)

    def layer_weights(self):
        """Softmax-normalised layer weights of keys and values.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            Key and value weights, each of shape ``[L+1]``, summing to 1.
        """
        return torch.softmax(self.weights_k, dim=-1), torch.softmax(self.weights_v, dim=-1)

    def forward(self, hidden, lengths=None):
        """Speaker embeddings ``[B, embed_dim]``.

        ``hidden [L+1, B, T, D]``: stacked hidden states; ``lengths [B]``: relative
        lengths in (0, 1] (None: no padding).
        """
        features = self.frame_features(hidden)
        mask = valid_frame_mask(lengths, features.shape[1], features.device)  # [B, T]
        return self.pool_frames(features, mask)

    def frame_features(self, hidden):
        """Per-frame attention logits and compressed values ``[B, T, H + C]``.

        Everything MHFA computes before pooling is frame-local, so these
        features can be computed once for a whole recording and pooled over
        any set of frames afterwards (the diarization pipeline embeds every
        (window, local speaker) this way).

        Example
        -------
        >>> backend = MHFA(num_layers=4, feat_dim=16, num_heads=2, compression_dim=8, embed_dim=6)
        >>> hidden = torch.randn(4, 1, 20, 16)
        >>> feats = backend.frame_features(hidden)
        >>> feats.shape
        torch.Size([1, 20, 10])
        >>> torch.allclose(backend.pool_frames(feats), backend(hidden), atol=1e-6)
        True
        """
        hidden = prepare_hidden(hidden, self.num_layers, self.feat_dim,
                                self.feature_grad_mult, "MHFA")
        keys = self.cmp_linear_k(weighted_layer_sum(hidden, self.weights_k))  # [B, T, C]
        values = self.cmp_linear_v(weighted_layer_sum(hidden, self.weights_v))  # [B, T, C]
        return torch.cat([self.att_head(keys), values], dim=-1)

    def pool_frames(self, features, weights=None):
        """Embeddings ``[N, E]`` of ``features [N, T, H + C]`` pooled with frame weights.

        ``weights [N, T]`` (bool or non-negative float; None = all frames)
        multiply each head's attention: ``softmax_t(logits + log w)``, so
        frames of weight 0 are excluded exactly (their values are zeroed too)
        and a 0/1 mask equals pooling over the selected frames only. A row of
        all-zero weights gives the embedding of zero pooled values.
        """
        logits, values = features.split([self.num_heads, self.compression_dim], dim=-1)
        if weights is not None:
            weights = weights.to(logits.dtype).unsqueeze(-1)  # [N, T, 1]
            valid = weights > 0
            logits = torch.where(valid, logits + torch.log(weights.clamp_min(1e-30)),
                                 torch.full_like(logits, float("-inf")))
            values = values.masked_fill(~valid, 0.0)
        attention = torch.nan_to_num(torch.softmax(logits, dim=1))  # over time; empty row -> 0
        pooled = torch.einsum("bth,btc->bhc", attention, values)  # [N, H, C]
        return self.pooling_fc(pooled.flatten(1))  # [N, E]
