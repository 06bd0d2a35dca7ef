"""DPHuBERT-family checkpoints (pyf98/DPHuBERT, wedefense, DiariZen) and torchaudio WavLM.

The DPHuBERT family stores a (pruned) WavLM as ``torch.save({"state_dict":
..., "config": ...})`` where ``config`` holds the keyword arguments of its
``wavlm_model(**config)`` builder:

* ``extractor_conv_layer_config``: ``[(channels, kernel, stride), ...]`` (pruned
  channel counts), ``extractor_mode``, ``extractor_conv_bias``;
* per layer: ``encoder_use_attention``, ``encoder_use_feed_forward``,
  ``encoder_total_num_heads`` (the original head count),
  ``encoder_remaining_heads`` (original indices of the kept heads) and
  ``encoder_ff_interm_features`` (FFN width);
* ``encoder_*`` sizes and dropouts, ``normalize_waveform`` and the
  ``*_prune_*`` flags telling which hard-concrete gates exist.

Layout facts this module relies on (checked in ``wav2vec2/components.py``):
attention has separate ``q_proj/k_proj/v_proj/out_proj`` holding only the
remaining heads; ``gru_rel_pos_const`` (``[1, total_heads, 1, 1]``) and the
relative position embedding (``[num_buckets, total_heads]``, layer 0 only)
keep all heads, the remaining heads select their rows; if layer 0 has no
attention there is no relative position bias at all, in any layer; the soft
mask of the last conv layer is the parameter ``feature_extractor.dummy_weight``
(our ``output_scale``); the pre-LN encoder's final ``encoder.transformer.layer_norm``
is not applied to the intermediate outputs; unused LayerNorms of removed pre-LN
sublayers are stored but never used.

torchaudio's own ``torchaudio.models.wavlm_model`` (unpruned, packed
``attention.attention.in_proj_weight``) is read by :func:`read_torchaudio_wavlm`.

Example
-------
>>> import tempfile, os, torch
>>> from speechbrain_pruning.wavlm import PrunableWavLM
>>> from speechbrain_pruning.wavlm.config import WavLMConfig
>>> cfg = WavLMConfig(conv_layers=[[16, 10, 5], [16, 3, 2]], hidden_size=32,
...                   num_layers=2, num_heads=4, intermediate_size=48,
...                   pos_conv_kernel=8, pos_conv_groups=4,
...                   layer_heads=[[0, 2], [1, 2, 3]], layer_ffn_dims=[48, 0])
>>> model = PrunableWavLM(cfg).eval()
>>> path = os.path.join(tempfile.mkdtemp(), "pruned.pth")
>>> write_dphubert(model, path)
>>> config, state, gates = read_dphubert(path)
>>> config.layer_heads, config.layer_ffn_dims
([[0, 2], [1, 2, 3]], [48, 0])
>>> loaded = PrunableWavLM.from_pretrained(path).eval()
>>> wav = torch.randn(1, 1600)
>>> bool(torch.equal(loaded(wav), model(wav)))
True
"""

import logging
import re

import torch

from .config import WAVLM_CONV, WavLMConfig
from .torch_files import _torch_load

__all__ = [
    "is_dphubert_checkpoint",
    "read_dphubert",
    "read_torchaudio_wavlm",
    "dphubert_config",
    "to_dphubert_config",
    "to_dphubert_state_dict",
    "write_dphubert",
]

logger = logging.getLogger(__name__)

# Our prune unit -> (DPHuBERT flag, module attribute in their layout).
_UNIT_FLAGS = {
    "conv": "extractor_prune_conv_channels",
    "head": "encoder_prune_attention_heads",
    "attlayer": "encoder_prune_attention_layer",
    "interm": "encoder_prune_feed_forward_intermediate",
    "ffnlayer": "encoder_prune_feed_forward_layer",
}
# Config keys that only matter for training or task heads.
_IGNORED_CONFIG = {"encoder_layer_drop", "aux_num_out"}
_KNOWN_CONFIG = {
    "extractor_mode", "extractor_conv_layer_config", "extractor_conv_bias",
    "encoder_embed_dim", "encoder_projection_dropout", "encoder_pos_conv_kernel",
    "encoder_pos_conv_groups", "encoder_num_layers", "encoder_use_attention",
    "encoder_use_feed_forward", "encoder_total_num_heads", "encoder_remaining_heads",
    "encoder_num_heads", "encoder_num_buckets", "encoder_max_distance",
    "encoder_attention_dropout", "encoder_ff_interm_features", "encoder_ff_interm_dropout",
    "encoder_dropout", "encoder_layer_norm_first", "normalize_waveform",
} | _IGNORED_CONFIG | set(_UNIT_FLAGS.values())

_POS_CONV = "encoder.transformer.pos_conv_embed.conv."
_LAYER = re.compile(r"encoder\.transformer\.layers\.(\d+)\.(.*)$")
_CONV = re.compile(r"feature_extractor\.conv_layers\.(\d+)\.(.*)$")


def is_dphubert_checkpoint(obj):
    """True for a dict with a ``state_dict`` and a ``config`` dict (DPHuBERT family)."""
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("state_dict"), dict)
        and isinstance(obj.get("config"), dict)
    )


def _per_layer(cfg, key, num_layers, default):
    """A per-layer list from ``cfg[key]`` (a scalar is broadcast)."""
    value = cfg.get(key, default)
    if not isinstance(value, (list, tuple)):
        return [value] * num_layers
    if len(value) != num_layers:
        raise ValueError(
            f"DPHuBERT config: {key} has {len(value)} entries but encoder_num_layers is "
            f"{num_layers}"
        )
    return list(value)


def dphubert_config(cfg):
    """:class:`WavLMConfig` for a DPHuBERT / torchaudio ``wavlm_model`` config dict.

    Arguments
    ---------
    cfg : dict
        Keyword arguments of ``wavlm_model`` (DPHuBERT: per-layer lists;
        torchaudio: ``encoder_num_heads`` and ``encoder_ff_interm_features`` ints).

    Returns
    -------
    WavLMConfig
        With ``layer_heads[i]`` the remaining head indices (``[]`` where
        ``encoder_use_attention[i]`` is false) and ``layer_ffn_dims[i]`` the FFN
        width (0 where ``encoder_use_feed_forward[i]`` is false).

    Example
    -------
    >>> cfg = dphubert_config(dict(
    ...     extractor_mode="group_norm", extractor_conv_layer_config=[(8, 10, 5)],
    ...     extractor_conv_bias=False, encoder_embed_dim=16, encoder_num_layers=2,
    ...     encoder_pos_conv_kernel=4, encoder_pos_conv_groups=2,
    ...     encoder_use_attention=[True, False], encoder_use_feed_forward=[True, True],
    ...     encoder_total_num_heads=[4, 4], encoder_remaining_heads=[[1, 3], [0]],
    ...     encoder_ff_interm_features=[10, 20], encoder_num_buckets=8,
    ...     encoder_max_distance=16, encoder_layer_norm_first=False))
    >>> cfg.layer_heads, cfg.layer_ffn_dims, cfg.num_heads
    ([[1, 3], []], [10, 20], 4)
    """
    unknown = sorted(set(cfg) - _KNOWN_CONFIG)
    if unknown:
        logger.warning("DPHuBERT config: ignoring unknown keys %s", unknown)
    if "encoder_num_buckets" not in cfg:
        raise ValueError(
            "DPHuBERT config has no encoder_num_buckets: a wav2vec2/HuBERT model, not a WavLM"
        )
    layers = int(cfg["encoder_num_layers"])
    if "encoder_total_num_heads" in cfg:
        totals = _per_layer(cfg, "encoder_total_num_heads", layers, None)
    elif isinstance(cfg.get("encoder_num_heads"), int):
        totals = [cfg["encoder_num_heads"]] * layers
    else:
        raise ValueError("DPHuBERT config has neither encoder_total_num_heads nor encoder_num_heads")
    if len(set(totals)) != 1:
        raise ValueError(
            f"DPHuBERT config: encoder_total_num_heads must be the same in every layer, got {totals}"
        )
    total = int(totals[0])
    use_att = _per_layer(cfg, "encoder_use_attention", layers, True)
    use_ffn = _per_layer(cfg, "encoder_use_feed_forward", layers, True)
    remaining = cfg.get("encoder_remaining_heads")
    if remaining is None:
        remaining = [list(range(total))] * layers
    elif len(remaining) != layers:
        raise ValueError(
            f"DPHuBERT config: encoder_remaining_heads has {len(remaining)} entries but "
            f"encoder_num_layers is {layers}"
        )
    ffn = _per_layer(cfg, "encoder_ff_interm_features", layers, None)
    layer_heads, layer_ffn = [], []
    for i in range(layers):
        heads = [int(h) for h in remaining[i]] if use_att[i] else []
        if use_att[i] and not heads:
            raise ValueError(f"DPHuBERT config: layer {i} uses attention but keeps no head")
        if heads != sorted(set(heads)):
            raise ValueError(
                f"DPHuBERT config: encoder_remaining_heads[{i}] = {heads} is not sorted and "
                f"unique; such checkpoints are not supported"
            )
        layer_heads.append(heads)
        layer_ffn.append(int(ffn[i]) if use_ffn[i] else 0)
        if use_ffn[i] and layer_ffn[-1] < 1:
            raise ValueError(f"DPHuBERT config: layer {i} uses a feed-forward of width {ffn[i]}")
    conv = cfg.get("extractor_conv_layer_config") or WAVLM_CONV
    return WavLMConfig(
        conv_layers=[list(c) for c in conv],
        conv_bias=bool(cfg.get("extractor_conv_bias", False)),
        extractor_mode=cfg.get("extractor_mode", "group_norm"),
        hidden_size=int(cfg["encoder_embed_dim"]),
        num_layers=layers,
        num_heads=total,
        intermediate_size=max([int(f) for f in ffn] + [1]),
        layer_heads=layer_heads,
        layer_ffn_dims=layer_ffn,
        pos_conv_kernel=int(cfg.get("encoder_pos_conv_kernel", 128)),
        pos_conv_groups=int(cfg.get("encoder_pos_conv_groups", 16)),
        num_buckets=int(cfg["encoder_num_buckets"]),
        max_distance=int(cfg.get("encoder_max_distance", 800)),
        layer_norm_first=bool(cfg.get("encoder_layer_norm_first", False)),
        final_layer_norm=False,  # their extract_features skips the pre-LN final norm
        normalize_waveform=bool(cfg.get("normalize_waveform", False)),
        hidden_dropout=float(cfg.get("encoder_dropout", 0.1)),
        attention_dropout=float(cfg.get("encoder_attention_dropout", 0.1)),
        activation_dropout=float(cfg.get("encoder_ff_interm_dropout", 0.0)),
        feat_proj_dropout=float(cfg.get("encoder_projection_dropout", 0.0)),
    )


def _unknown(source, key, value):
    return ValueError(
        f"{source}: unknown key '{key}' (shape {tuple(value.shape)}) in the DPHuBERT "
        f"state dict; it has no place in a WavLM built from its config"
    )


def _strip_prefix(state):
    """Drop a common prefix such as ``student_model.`` or ``wavlm_model.``."""
    anchor = "feature_extractor.conv_layers.0.conv.weight"
    hits = [k for k in state if k.endswith(anchor)]
    if len(hits) != 1 or hits[0] == anchor:
        return state
    prefix = hits[0][: -len(anchor)]
    dropped = [k for k in state if not k.startswith(prefix)]
    if dropped:
        logger.info("DPHuBERT state dict: ignoring %d keys outside '%s'", len(dropped), prefix)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _dphubert_state(state, config, source):
    """Rename a DPHuBERT state dict to our layout (see module docstring)."""
    out, units = {}, set()
    heads_total = config.num_heads
    for key, value in state.items():
        new = None
        match_conv, match_layer = _CONV.match(key), _LAYER.match(key)
        if key == "feature_extractor.dummy_weight":
            new = "feature_extractor.output_scale"
        elif match_conv:
            idx, rest = match_conv.groups()
            if rest == "hard_concrete.log_alpha":
                new, _ = f"feature_extractor.conv_layers.{idx}.gate.log_alpha", units.add("conv")
            elif rest in ("conv.weight", "conv.bias", "layer_norm.weight", "layer_norm.bias"):
                new = key
        elif key.startswith("encoder.feature_projection.") and key.count(".") == 3:
            new = key[len("encoder."):]
        elif key.startswith(_POS_CONV):
            rest = key[len(_POS_CONV):]
            rest = {"weight_g": "parametrizations.weight.original0",
                    "weight_v": "parametrizations.weight.original1"}.get(rest, rest)
            new = "encoder.pos_conv_embed.conv." + rest
        elif key in ("encoder.transformer.layer_norm.weight", "encoder.transformer.layer_norm.bias"):
            new = "encoder.layer_norm." + key.rsplit(".", 1)[1]
        elif key.startswith("aux."):
            logger.info("%s: ignoring task head key %s", source, key)
            continue
        elif match_layer:
            idx, rest = match_layer.groups()
            i = int(idx)
            if i >= config.num_layers:
                raise _unknown(source, key, value)
            layer = f"encoder.layers.{idx}."
            heads = config.layer_heads[i]
            if rest == "attention.rel_attn_embed.weight" and i == 0 and heads:
                new = "encoder.rel_attn_embed.rel_attn_embed.weight"
            elif rest == "attention.gru_rel_pos_const":
                if value.dim() != 4 or value.shape[1] != heads_total:
                    raise ValueError(
                        f"{source}: key '{key}' has shape {tuple(value.shape)} in the checkpoint "
                        f"but the config expects {(1, heads_total, 1, 1)}"
                    )
                if heads:
                    value = value[:, heads].clone()
                new = layer + rest
            elif rest.startswith("attention.") and rest.endswith(".log_alpha"):
                sub = rest[len("attention."):]
                if sub == "hard_concrete_for_heads.log_alpha":
                    new, unit = layer + "attention.head_gate.log_alpha", "head"
                elif sub == "hard_concrete_for_layer.log_alpha":
                    new, unit = layer + "attention.layer_gate.log_alpha", "attlayer"
                else:
                    raise _unknown(source, key, value)
                units.add(unit)
            elif rest.startswith("feed_forward.") and rest.endswith(".log_alpha"):
                sub = rest[len("feed_forward."):]
                if sub == "hard_concrete_for_intermediate.log_alpha":
                    new, unit = layer + "feed_forward.unit_gate.log_alpha", "interm"
                elif sub == "hard_concrete_for_layer.log_alpha":
                    new, unit = layer + "feed_forward.layer_gate.log_alpha", "ffnlayer"
                else:
                    raise _unknown(source, key, value)
                units.add(unit)
            elif re.fullmatch(
                r"attention\.(q_proj|k_proj|v_proj|out_proj|gru_rel_pos_linear)\.(weight|bias)"
                r"|feed_forward\.(intermediate_dense|output_dense)\.(weight|bias)"
                r"|(layer_norm|final_layer_norm)\.(weight|bias)",
                rest,
            ):
                new = layer + rest
                if config.layer_norm_first and (
                    (rest.startswith("layer_norm.") and not heads)
                    or (rest.startswith("final_layer_norm.") and not config.layer_ffn_dims[i])
                ):
                    continue  # pre-LN norm of a removed sublayer: never used
        if new is None:
            raise _unknown(source, key, value)
        out[new] = value
    had_layer0_attention = bool(config.layer_heads[0])
    _drop_placeholder_attention(out, config)
    rel = "encoder.rel_attn_embed.rel_attn_embed.weight"
    if not had_layer0_attention:
        # No attention in layer 0 = no relative position bias in any layer (their code).
        dtype = out["feature_projection.projection.weight"].dtype \
            if "feature_projection.projection.weight" in out else torch.float32
        out[rel] = torch.zeros(config.num_buckets, config.num_heads, dtype=dtype)
    return out, units


def _drop_placeholder_attention(state, config):
    """Remove the all-zero layer-0 attention :func:`to_dphubert_state_dict` writes.

    It stands in for a removed layer-0 attention so that the relative position
    bias (stored in layer 0 only) survives; its output is exactly zero.
    """
    prefix = "encoder.layers.0.attention."
    names = [prefix + f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj")
             for w in ("weight", "bias")]
    if not config.layer_heads[0] or not all(n in state for n in names):
        return
    if any(bool(state[n].any()) for n in names) or not any(config.layer_heads[1:]):
        return
    for key in [k for k in state if k.startswith(prefix)]:
        del state[key]
    config.layer_heads[0] = []
    if config.layer_norm_first:
        state.pop("encoder.layers.0.layer_norm.weight", None)
        state.pop("encoder.layers.0.layer_norm.bias", None)


def read_dphubert(path_or_dict, source=None):
    """Read a DPHuBERT-family (or torchaudio) checkpoint.

    Arguments
    ---------
    path_or_dict : str, Path or dict
        A file written with ``torch.save({"state_dict": ..., "config": ...})``
        or that dict. A config with an integer ``encoder_num_heads`` and packed
        ``in_proj_weight`` keys is read as torchaudio's ``wavlm_model``.
    source : str, optional
        Name used in error messages (default: the path).

    Returns
    -------
    config : WavLMConfig
        The (pruned) architecture.
    state : dict
        State dict in this package's layout (``PrunableWavLM`` names), with
        hard-concrete ``log_alpha`` tensors renamed to our gates.
    prune_units : tuple
        Units with gates in the file (``"conv"``, ``"head"``, ...), for
        ``PrunableWavLM(config, prune_units=...)``.

    Raises
    ------
    ValueError
        An unknown key (named, with its shape) or an inconsistent config.

    Example
    -------
    See the module docstring.
    """
    if not isinstance(path_or_dict, dict):
        source = source or str(path_or_dict)
        path_or_dict = _torch_load(path_or_dict)
    source = source or "DPHuBERT checkpoint"
    if not is_dphubert_checkpoint(path_or_dict):
        raise ValueError(f"{source}: not a DPHuBERT checkpoint (a dict with 'state_dict' and 'config')")
    cfg, state = dict(path_or_dict["config"]), _strip_prefix(path_or_dict["state_dict"])
    if "encoder_total_num_heads" not in cfg and any(k.endswith("in_proj_weight") for k in state):
        return read_torchaudio_wavlm(state, cfg, source)
    config = dphubert_config(cfg)
    state, units = _dphubert_state(state, config, source)
    flagged = {u for u, flag in _UNIT_FLAGS.items() if cfg.get(flag)}
    if flagged - units:
        logger.warning("%s: config flags gates %s but the state dict has none", source,
                       sorted(flagged - units))
    return config, state, tuple(u for u in _UNIT_FLAGS if u in units)


def read_torchaudio_wavlm(state_dict, config, source="torchaudio WavLM"):
    """Read a ``torchaudio.models.wavlm_model(**config)`` state dict.

    Arguments
    ---------
    state_dict : dict
        ``model.state_dict()`` of torchaudio's ``Wav2Vec2Model`` (WavLM), with
        packed ``attention.attention.in_proj_weight`` ``[3 D, D]`` (q, k, v).
    config : dict
        The keyword arguments given to ``torchaudio.models.wavlm_model``.

    Returns
    -------
    (WavLMConfig, dict, tuple)
        As :func:`read_dphubert` (no gates: the tuple is empty).

    Example
    -------
    >>> from torchaudio.models import wavlm_model
    >>> kw = dict(extractor_mode="group_norm", extractor_conv_layer_config=[(8, 10, 5)],
    ...           extractor_conv_bias=False, encoder_embed_dim=16,
    ...           encoder_projection_dropout=0.0, encoder_pos_conv_kernel=4,
    ...           encoder_pos_conv_groups=2, encoder_num_layers=1, encoder_num_heads=2,
    ...           encoder_num_buckets=8, encoder_max_distance=16,
    ...           encoder_attention_dropout=0.0, encoder_ff_interm_features=24,
    ...           encoder_ff_interm_dropout=0.0, encoder_dropout=0.0,
    ...           encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=None)
    >>> config, state, _ = read_torchaudio_wavlm(wavlm_model(**kw).state_dict(), kw)
    >>> tuple(state["encoder.layers.0.attention.q_proj.weight"].shape)
    (16, 16)
    """
    converted = {}
    for key, value in state_dict.items():
        if key.endswith("attention.attention.in_proj_weight") or key.endswith(
            "attention.attention.in_proj_bias"
        ):
            base = key[: key.rindex("attention.in_proj_")]  # "...layers.N.attention."
            kind = key.rsplit("_", 1)[1]
            if value.shape[0] % 3:
                raise ValueError(
                    f"{source}: key '{key}' has shape {tuple(value.shape)}; the first "
                    f"dimension must hold q, k and v"
                )
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, 0)):
                converted[f"{base}{name}.{kind}"] = part
        elif ".attention.attention.out_proj." in key:
            converted[key.replace(".attention.attention.out_proj.", ".attention.out_proj.")] = value
        else:
            converted[key] = value
    config_obj = dphubert_config(config)
    state, units = _dphubert_state(converted, config_obj, source)
    return config_obj, state, tuple(u for u in _UNIT_FLAGS if u in units)


# ---------------------------------------------------------------------------- writing
def to_dphubert_config(model):
    """The DPHuBERT ``wavlm_model(**config)`` dict describing ``model``.

    A removed layer-0 attention is written as a one-head placeholder (see
    :func:`to_dphubert_state_dict`) when other layers keep attention.
    """
    cfg = model.config
    layers = model.encoder.layers
    placeholder = _needs_placeholder(model)
    use_att = [layer.attention is not None for layer in layers]
    heads = [list(h) for h in cfg.layer_heads]
    if placeholder:
        use_att[0], heads[0] = True, [0]
    units = set(model.prune_units)
    return {
        "extractor_mode": cfg.extractor_mode,
        "extractor_conv_layer_config": [tuple(c) for c in cfg.conv_layers],
        "extractor_conv_bias": bool(cfg.conv_bias),
        "encoder_embed_dim": cfg.hidden_size,
        "encoder_projection_dropout": cfg.feat_proj_dropout,
        "encoder_pos_conv_kernel": cfg.pos_conv_kernel,
        "encoder_pos_conv_groups": cfg.pos_conv_groups,
        "encoder_num_layers": cfg.num_layers,
        "encoder_use_attention": use_att,
        "encoder_use_feed_forward": [layer.feed_forward is not None for layer in layers],
        "encoder_total_num_heads": [cfg.num_heads] * cfg.num_layers,
        "encoder_remaining_heads": heads,
        "encoder_num_buckets": cfg.num_buckets,
        "encoder_max_distance": cfg.max_distance,
        "encoder_attention_dropout": cfg.attention_dropout,
        "encoder_ff_interm_features": list(cfg.layer_ffn_dims),
        "encoder_ff_interm_dropout": cfg.activation_dropout,
        "encoder_dropout": cfg.hidden_dropout,
        "encoder_layer_norm_first": bool(cfg.layer_norm_first),
        "encoder_layer_drop": 0.0,
        "aux_num_out": None,
        "normalize_waveform": bool(cfg.normalize_waveform),
        **{flag: unit in units for unit, flag in _UNIT_FLAGS.items()},
    }


def _needs_placeholder(model):
    layers = model.encoder.layers
    return layers[0].attention is None and any(layer.attention is not None for layer in layers)


def _identity_norm(prefix, dim, ref):
    return {prefix + "weight": torch.ones(dim, dtype=ref.dtype),
            prefix + "bias": torch.zeros(dim, dtype=ref.dtype)}


def to_dphubert_state_dict(model):
    """``model``'s weights in the DPHuBERT layout (CPU tensors).

    Our ``output_scale`` becomes ``feature_extractor.dummy_weight``; the
    positional conv is written with ``weight_g``/``weight_v`` names (loadable
    by both ``nn.utils.weight_norm`` and, via PyTorch's compatibility hook,
    ``parametrizations.weight_norm`` modules); ``gru_rel_pos_const`` is
    expanded to all heads (1.0 for removed ones); pre-LN LayerNorms the format
    stores but never uses are identity. A removed layer-0 attention is written
    as an all-zero one-head attention, whose output is exactly zero, because
    the relative position embedding lives in layer 0.
    """
    cfg = model.config
    d, heads_total = cfg.hidden_size, cfg.num_heads
    ref = model.feature_projection.projection.weight
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        if key == "feature_extractor.output_scale":
            out["feature_extractor.dummy_weight"] = value.clone()
            continue
        match = _CONV.match(key)
        if match:
            idx, rest = match.groups()
            rest = "hard_concrete.log_alpha" if rest == "gate.log_alpha" else rest
            out[f"feature_extractor.conv_layers.{idx}.{rest}"] = value
            continue
        if key.startswith("feature_projection."):
            out["encoder." + key] = value
        elif key.startswith("encoder.pos_conv_embed.conv."):
            rest = key[len("encoder.pos_conv_embed.conv."):]
            rest = {"parametrizations.weight.original0": "weight_g",
                    "parametrizations.weight.original1": "weight_v"}.get(rest, rest)
            out[_POS_CONV + rest] = value
        elif key.startswith("encoder.layer_norm."):
            out["encoder.transformer." + key[len("encoder."):]] = value
        elif key == "encoder.rel_attn_embed.rel_attn_embed.weight":
            out["encoder.transformer.layers.0.attention.rel_attn_embed.weight"] = value
        elif key.startswith("encoder.layers."):
            idx, rest = key[len("encoder.layers."):].split(".", 1)
            layer_key = f"encoder.transformer.layers.{idx}."
            rest = (rest.replace("head_gate.log_alpha", "hard_concrete_for_heads.log_alpha")
                    .replace("layer_gate.log_alpha", "hard_concrete_for_layer.log_alpha")
                    .replace("unit_gate.log_alpha", "hard_concrete_for_intermediate.log_alpha"))
            if rest == "attention.gru_rel_pos_const":
                full = torch.ones(1, heads_total, 1, 1, dtype=value.dtype)
                full[:, cfg.layer_heads[int(idx)]] = value
                value = full
            out[layer_key + rest] = value
        else:
            raise ValueError(f"to_dphubert_state_dict: no DPHuBERT name for our key '{key}'")
    if "encoder.transformer.layer_norm.weight" not in out:
        out.update(_identity_norm("encoder.transformer.layer_norm.", d, ref))
    if cfg.layer_norm_first:
        for i, layer in enumerate(model.encoder.layers):
            for name in ("layer_norm", "final_layer_norm"):
                key = f"encoder.transformer.layers.{i}.{name}."
                if key + "weight" not in out:
                    out.update(_identity_norm(key, d, ref))
    if _needs_placeholder(model):
        hd = cfg.head_dim
        prefix = "encoder.transformer.layers.0.attention."
        for name, shape in (("q_proj", (hd, d)), ("k_proj", (hd, d)), ("v_proj", (hd, d)),
                            ("out_proj", (d, hd)), ("gru_rel_pos_linear", (8, hd))):
            out[prefix + name + ".weight"] = torch.zeros(shape, dtype=ref.dtype)
            out[prefix + name + ".bias"] = torch.zeros(shape[0], dtype=ref.dtype)
        out[prefix + "gru_rel_pos_const"] = torch.ones(1, heads_total, 1, 1, dtype=ref.dtype)
        if "attlayer" in model.prune_units or "head" in model.prune_units:
            raise ValueError(
                "Cannot write gates of a model whose layer-0 attention was removed; "
                "call prune() first"
            )
    elif not any(layer.attention is not None for layer in model.encoder.layers):
        out.pop("encoder.transformer.layers.0.attention.rel_attn_embed.weight", None)
    return out


def write_dphubert(model, path):
    """Save ``model`` as ``torch.save({"state_dict", "config"})`` for DPHuBERT-family tools.

    Arguments
    ---------
    model : PrunableWavLM
        Pruned or not; gates, if any, are written as ``hard_concrete*.log_alpha``
        with the matching ``*_prune_*`` flags set.
    path : str or Path
        Output file (e.g. ``pruned_wavlm.pth``).

    The file loads with ``wavlm_model(**ckpt["config"]).load_state_dict(
    ckpt["state_dict"])`` in pyf98/DPHuBERT-style code and with
    :meth:`PrunableWavLM.from_pretrained`, which restores the same outputs
    exactly. ``reference_num_params`` and ``final_layer_norm=True`` have no
    place in the format and are lost.

    Example
    -------
    See the module docstring.
    """
    if model.config.layer_norm_first and model.config.final_layer_norm:
        logger.warning(
            "write_dphubert: final_layer_norm=True is not part of the DPHuBERT format; "
            "the final norm is stored in encoder.transformer.layer_norm but their "
            "extract_features does not apply it"
        )
    torch.save({"state_dict": to_dphubert_state_dict(model), "config": to_dphubert_config(model)},
               str(path))
