"""The prunable WavLM lobe.

``PrunableWavLM`` reproduces ``transformers.WavLMModel`` hidden states
(post-LN Base/Base+ and pre-LN Large), adds hard-concrete gates on the units
named in ``prune_units`` and physically removes closed structures with
:meth:`PrunableWavLM.prune`.
"""

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..nn import check_finite_audio, check_relative_lengths
from .config import SAMPLE_RATE, WavLMConfig
from .modules import (
    EncoderLayer,
    FeatureExtractor,
    FeatureProjection,
    PositionalConvEmbedding,
    RelativePositionBias,
    length_mask,
)

__all__ = ["PrunableWavLM", "PRUNE_UNITS", "DEFAULT_GATE_INIT"]

logger = logging.getLogger(__name__)

PRUNE_UNITS = ("conv", "head", "attlayer", "interm", "ffnlayer")

#: Initial probability of a gate being closed, per unit (the published values:
#: FFN units start at 0.5, i.e. keep probability 0.83; the rest almost open).
DEFAULT_GATE_INIT = {"conv": 0.01, "head": 0.01, "attlayer": 0.01, "interm": 0.5, "ffnlayer": 0.01}



def check_prune_units(prune_units):
    """Normalise ``prune_units`` (str with commas or iterable) to a tuple."""
    if prune_units is None:
        return ()
    if isinstance(prune_units, str):
        prune_units = [u.strip() for u in prune_units.split(",") if u.strip()]
    units = tuple(prune_units)
    bad = [u for u in units if u not in PRUNE_UNITS]
    if bad:
        raise ValueError(
            f"Unknown pruning unit(s) {bad}; valid names are {list(PRUNE_UNITS)}"
        )
    return tuple(u for u in PRUNE_UNITS if u in units)


class PrunableWavLM(nn.Module):
    """WavLM encoder with optional hard-concrete gates.

    Arguments
    ---------
    config : WavLMConfig
        Architecture (possibly already pruned).
    prune_units : str or iterable of str
        Any subset of ``("conv", "head", "attlayer", "interm", "ffnlayer")``.
    gate_init : dict, optional
        Initial closing probability per unit (defaults: ``DEFAULT_GATE_INIT``).

    Example
    -------
    >>> from speechbrain_pruning.wavlm.config import WavLMConfig
    >>> cfg = WavLMConfig(conv_layers=[[16, 10, 5], [16, 3, 2], [16, 2, 2]],
    ...                   hidden_size=32, num_layers=2, num_heads=4,
    ...                   intermediate_size=64, pos_conv_kernel=8, pos_conv_groups=4)
    >>> model = PrunableWavLM(cfg, prune_units=("head", "interm")).eval()
    >>> hidden = model(torch.randn(2, 1600), torch.tensor([1.0, 0.7]))
    >>> hidden.shape  # [L+1, B, T, D]
    torch.Size([3, 2, 79, 32])
    >>> summary = model.prune()
    >>> any(n.endswith("log_alpha") for n, _ in model.named_parameters())
    False
    """

    def __init__(self, config, prune_units=(), gate_init=None):
        super().__init__()
        if not isinstance(config, WavLMConfig):
            raise TypeError(f"config must be a WavLMConfig, got {type(config).__name__}")
        config = self.config = copy.deepcopy(config)
        self.feature_extractor = FeatureExtractor(
            config.conv_layers, config.extractor_mode, config.conv_bias
        )
        self.feature_projection = FeatureProjection(
            config.conv_layers[-1][0], config.hidden_size, config.feat_proj_dropout,
            config.layer_norm_eps,
        )
        self.encoder = Encoder(config)
        self.prune_units = ()
        self.gate_init = dict(DEFAULT_GATE_INIT, **(gate_init or {}))
        if config.reference_num_params is None or config.reference_macs is None:
            self._set_reference()  # before any gate exists: the dense architecture
        self.add_gates(prune_units)

    # ------------------------------------------------------------------ gates
    def add_gates(self, prune_units):
        """Attach gates for ``prune_units`` (on top of any already present)."""
        units = check_prune_units(prune_units)
        init = self.gate_init
        if "conv" in units:
            self.feature_extractor.add_gates(init["conv"])
        for layer in self.encoder.layers:
            if layer.attention is not None and ("head" in units or "attlayer" in units):
                layer.attention.add_gates(
                    init["head"] if "head" in units else None,
                    init["attlayer"] if "attlayer" in units else None,
                )
            if layer.feed_forward is not None and ("interm" in units or "ffnlayer" in units):
                layer.feed_forward.add_gates(
                    init["interm"] if "interm" in units else None,
                    init["ffnlayer"] if "ffnlayer" in units else None,
                )
        self.prune_units = check_prune_units(set(self.prune_units) | set(units))

    def gate_parameters(self):
        """The ``log_alpha`` parameters."""
        return [p for n, p in self.named_parameters() if n.endswith("log_alpha")]

    def _set_reference(self):
        with torch.no_grad():
            was_training = self.training
            self.eval()
            self.config.reference_num_params = int(round(float(self.expected_num_params())))
            self.config.reference_macs = int(round(float(self.expected_macs())))
            self.train(was_training)

    # ---------------------------------------------------------------- forward
    def check_input(self, wavs, wav_lens):
        """Validate audio; returns ``(wavs [B, S] float, valid samples [B] or None)``."""
        if not torch.is_tensor(wavs):
            raise TypeError(f"wavs must be a torch.Tensor, got {type(wavs).__name__}")
        if not wavs.is_floating_point():
            raise TypeError(
                f"wavs must be a floating-point waveform, got dtype {wavs.dtype} "
                "(convert integer PCM with wavs.float() / 32768)"
            )
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        elif wavs.dim() == 3 and wavs.shape[1] == 1:
            wavs = wavs.squeeze(1)
        elif wavs.dim() != 2:
            raise ValueError(
                f"wavs must be [batch, samples] mono audio, got shape {tuple(wavs.shape)}; "
                "select one channel first (e.g. wavs[:, 0])"
            )
        num = wavs.shape[1]
        minimum = self.config.receptive_field
        lengths = None
        check_finite_audio(wavs)
        if wav_lens is not None:
            wav_lens = check_relative_lengths(wav_lens, wavs.shape[0]).to(wavs.device)
            lengths = torch.round(wav_lens * num).long().clamp(max=num)
            shortest = int(lengths.min())
            if shortest < minimum:
                idx = int(lengths.argmin())
                raise ValueError(
                    f"Utterance {idx} of the batch has {shortest} samples; WavLM needs at "
                    f"least {minimum} samples ({minimum / SAMPLE_RATE * 1000:.0f} ms)"
                )
            if bool((lengths == num).all()):
                lengths = None
        if num < minimum:
            raise ValueError(
                f"Audio of {num} samples is shorter than the {minimum}-sample receptive "
                f"field of the WavLM front-end ({minimum / SAMPLE_RATE * 1000:.0f} ms)"
            )
        return wavs, lengths

    def normalize(self, wavs, lengths):
        """Zero-mean unit-variance per utterance over its valid samples."""
        if lengths is None:
            return F.layer_norm(wavs, wavs.shape[-1:])
        valid = length_mask(lengths, wavs.shape[1]).to(wavs.dtype)
        count = valid.sum(1, keepdim=True)
        mean = (wavs * valid).sum(1, keepdim=True) / count
        var = (((wavs - mean) * valid) ** 2).sum(1, keepdim=True) / count
        return (wavs - mean) * torch.rsqrt(var + 1e-5) * valid

    def forward(self, wavs, wav_lens=None):
        """All hidden states.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, S]`` float waveforms at 16 kHz.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths in (0, 1] (SpeechBrain convention).

        Returns
        -------
        torch.Tensor
            ``[L+1, B, T, D]``, as ``transformers.WavLMModel(...,
            output_hidden_states=True).hidden_states``; frames past each
            utterance's end are padding.
        """
        wavs, lengths = self.check_input(wavs, wav_lens)
        if self.config.normalize_waveform:
            wavs = self.normalize(wavs, lengths)
        feats, frame_lengths, mask = self.feature_extractor(wavs, lengths)
        x = self.feature_projection(feats, mask)
        padding = None
        if frame_lengths is not None:
            padding = ~length_mask(frame_lengths, x.shape[1])
        return self.encoder(x, padding)

    def frame_lengths(self, num_samples):
        """Valid frames for ``num_samples`` valid samples (int or tensor)."""
        return self.config.num_frames(num_samples)

    def frame_relative_lengths(self, wav_lens, num_samples):
        """Relative lengths on the frame axis for sample-axis relative ``wav_lens``.

        Back-ends count ``round(length * T)`` valid frames (SpeechBrain's
        convention); passing them these lengths makes that count equal to the
        frames the conv front-end really computed from the valid samples, so a
        padded batch gives each utterance exactly its unpadded result.

        Example
        -------
        >>> from speechbrain_pruning.wavlm.config import WavLMConfig
        >>> model = PrunableWavLM(WavLMConfig(num_layers=1, hidden_size=32, num_heads=2,
        ...                                   intermediate_size=8, pos_conv_groups=2))
        >>> rel = model.frame_relative_lengths(torch.tensor([1.0, 0.6]), 16000)
        >>> torch.round(rel * model.frame_lengths(16000)).long().tolist()
        [49, 29]
        """
        if wav_lens is None:
            return None
        samples = torch.round(wav_lens * num_samples).long().clamp(max=num_samples)
        total = self.frame_lengths(num_samples)
        frames = self.frame_lengths(samples).clamp(min=1, max=total)
        return frames.to(wav_lens.dtype) / total

    # ------------------------------------------------------------- complexity
    def expected_num_params(self):
        """Expected encoder parameters (float64 tensor, differentiable in the gates).

        Training mode uses the gates' expected L0 norms; eval mode counts what
        :meth:`prune` would keep, so it equals ``num_params()`` after pruning.
        Gate parameters and buffers are not counted.
        """
        params, _, channels, _ = self.feature_extractor.expected(SAMPLE_RATE)
        params = params + self.feature_projection.expected_params(channels)
        return params + self.encoder.expected_params()

    def expected_macs(self, seconds=1.0):
        """Expected multiply-accumulates for ``seconds`` of audio (float64 tensor)."""
        samples = int(round(seconds * SAMPLE_RATE))
        _, macs, channels, frames = self.feature_extractor.expected(samples)
        macs = macs + self.feature_projection.expected_macs(channels, frames)
        return macs + self.encoder.expected_macs(frames)

    def num_params(self):
        """Actual number of encoder parameters (gates excluded)."""
        return sum(p.numel() for n, p in self.named_parameters() if not n.endswith("log_alpha"))

    def expected_sparsity(self, objective="params"):
        """``1 - expected / reference`` for ``"params"`` or ``"macs"`` (per second)."""
        if objective == "params":
            return 1.0 - self.expected_num_params() / self.config.reference_num_params
        if objective == "macs":
            return 1.0 - self.expected_macs() / self.config.reference_macs
        raise ValueError(f"objective must be 'params' or 'macs', got {objective!r}")

    # ---------------------------------------------------------------- pruning
    @torch.no_grad()
    def prune(self):
        """Remove closed structures in place and fold gate values into weights.

        Uses the deterministic (eval-mode) masks. Afterwards the model has no
        gates, ``num_params()`` equals the eval-mode ``expected_num_params()``
        from before, and eval outputs are unchanged.

        Returns
        -------
        dict
            Per-component summary: conv channels per layer, kept head indices
            and FFN width per layer, parameters and MACs before and after.
        """
        was_training = self.training
        self.eval()
        before_params = self.num_params()
        conv = self.feature_extractor.prune(self.feature_projection)
        layers = [layer.prune() for layer in self.encoder.layers]
        cfg = self.config
        cfg.conv_layers = [[c, k, s] for c, (_, k, s) in zip(conv, cfg.conv_layers)]
        cfg.layer_heads = [heads for heads, _ in layers]
        cfg.layer_ffn_dims = [ffn for _, ffn in layers]
        self.prune_units = ()
        self.train(was_training)
        after_params = self.num_params()
        return {
            "conv_channels": list(conv),
            "layers": [
                {"heads": len(heads), "kept_heads": heads, "attention": bool(heads),
                 "ffn_dim": ffn, "feed_forward": ffn > 0}
                for heads, ffn in layers
            ],
            "params_before": before_params,
            "params_after": after_params,
            "macs_after": int(round(float(self.expected_macs()))),
            "reference_params": cfg.reference_num_params,
            "reference_macs": cfg.reference_macs,
            "sparsity": 1.0 - after_params / cfg.reference_num_params,
        }

    # -------------------------------------------------------------- save/load
    def save_pretrained(self, folder, format="native"):
        """Save the model.

        Arguments
        ---------
        folder : str or Path
            ``format="native"``: a folder receiving ``config.json`` and
            ``model.safetensors`` (gates included if any).
            ``format="dphubert"``: the file to write (``torch.save({"state_dict",
            "config"})``, loadable by DPHuBERT / wedefense / DiariZen code and
            by :meth:`from_pretrained`); see
            :func:`speechbrain_pruning.wavlm.dphubert.write_dphubert`.
        format : str
            ``"native"`` or ``"dphubert"``.
        """
        if format == "dphubert":
            from .dphubert import write_dphubert

            write_dphubert(self, folder)
            return
        if format != "native":
            raise ValueError(f"format must be 'native' or 'dphubert', got {format!r}")
        from .checkpoint import save_pretrained

        save_pretrained(self, folder)

    @classmethod
    def from_pretrained(cls, path, prune_units=None, gate_init=None, **config_overrides):
        """Load a local checkpoint; never touches the network.

        Arguments
        ---------
        path : str or Path
            A Hugging Face ``WavLMModel`` folder, an original UniLM checkpoint
            file (``WavLM-Base+.pt``), a DPHuBERT-family file (``{"state_dict",
            "config"}``, pruned or with ``hard_concrete`` gates), or what
            :meth:`save_pretrained` wrote.
        prune_units : str or iterable, optional
            Gates to add. None keeps the gates stored in a saved folder or a
            DPHuBERT file (none for other formats).
        gate_init : dict, optional
            Initial gate closing probabilities per unit.
        **config_overrides
            Fields of :class:`WavLMConfig` to replace (e.g. dropouts); None keeps the
            checkpoint's value.
        """
        from .checkpoint import load_pretrained

        config_overrides = {k: v for k, v in config_overrides.items() if v is not None}
        return load_pretrained(cls, path, prune_units, gate_init, config_overrides)


class Encoder(nn.Module):
    """Positional conv, relative position bias and the Transformer layers."""

    def __init__(self, config):
        super().__init__()
        self.pos_conv_embed = PositionalConvEmbedding(
            config.hidden_size, config.pos_conv_kernel, config.pos_conv_groups
        )
        self.pre_ln = config.layer_norm_first
        has_norm = (not self.pre_ln) or config.final_layer_norm
        self.layer_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if has_norm else None
        )
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.rel_attn_embed = RelativePositionBias(
            config.num_buckets, config.max_distance, config.num_heads
        )
        self.layers = nn.ModuleList(EncoderLayer(config, i) for i in range(config.num_layers))

    def forward(self, x, padding=None):
        """``x [B, T, D]``, ``padding [B, T]`` (True = pad) -> ``[L+1, B, T, D]``."""
        if padding is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0.0)
        x = x + self.pos_conv_embed(x)
        if not self.pre_ln:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = self.rel_attn_embed(x.shape[1])
        hidden = [x]
        for layer in self.layers:
            x = layer(x, bias, padding)
            hidden.append(x)
        if self.pre_ln and self.layer_norm is not None:
            hidden[-1] = self.layer_norm(x)
        return torch.stack(hidden)

    def fixed_params(self):
        norm = self.layer_norm.weight.numel() * 2 if self.layer_norm is not None else 0
        rel = self.rel_attn_embed.rel_attn_embed.weight.numel()
        return self.pos_conv_embed.num_params() + norm + rel

    def expected_params(self):
        total = torch.zeros((), dtype=torch.float64, device=self.rel_attn_embed.rel_attn_embed.weight.device)
        total = total + self.fixed_params()
        for layer in self.layers:
            total = total + layer.expected(1)[0]
        return total

    def expected_macs(self, frames):
        total = torch.zeros((), dtype=torch.float64, device=self.rel_attn_embed.rel_attn_embed.weight.device)
        total = total + self.pos_conv_embed.macs(frames)
        for layer in self.layers:
            total = total + layer.expected(frames)[1]
        return total
