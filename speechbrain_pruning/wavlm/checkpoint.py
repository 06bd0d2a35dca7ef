"""Reading and writing WavLM checkpoints without network access.

Four sources are understood:

* a Hugging Face ``WavLMModel`` folder: ``config.json`` plus
  ``model.safetensors`` or ``pytorch_model.bin`` (optionally
  ``preprocessor_config.json`` for ``do_normalize``); task models such as
  ``WavLMForXVector`` work too (their ``wavlm.`` prefix is stripped);
* an original UniLM checkpoint file (``WavLM-Base+.pt``, ``WavLM-Large.pt``):
  a dict with ``cfg`` and ``model``;
* a DPHuBERT-family file (pyf98/DPHuBERT, wedefense, DiariZen; also
  torchaudio ``wavlm_model`` weights): a dict with ``state_dict`` and
  ``config`` (see :mod:`speechbrain_pruning.wavlm.dphubert`);
* a folder written by :func:`save_pretrained` (``config.json`` tagged with
  ``"format": "speechbrain_pruning.PrunableWavLM"`` + ``model.safetensors``).
"""

import json
import logging
import os
import re
from pathlib import Path


from .config import CONFIG_FORMAT, WavLMConfig
from .dphubert import is_dphubert_checkpoint, read_dphubert
from .torch_files import CorruptCheckpointError, _torch_load

__all__ = ["load_pretrained", "save_pretrained", "read_state_dict", "read_safetensors",
           "hf_to_native", "unilm_to_native", "CorruptCheckpointError"]

logger = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"

# Keys of task heads / pre-training modules that are not part of the encoder.
IGNORED_PREFIXES = (
    "masked_spec_embed", "mask_emb", "quantizer.", "project_q.", "project_hid.",
    "final_proj.", "label_embs_concat", "adapter.", "lm_head.", "projector.",
    "classifier.", "tdnn.", "feature_extractor_head.", "objective.", "layer_weights",
)
OPTIONAL_KEYS = ("feature_extractor.output_scale",)


def read_safetensors(path):
    """State dict of a ``.safetensors`` file; a corrupt file raises an error naming it."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:
        raise CorruptCheckpointError(
            f"Cannot read weights file {path} (truncated or corrupt?): {err}"
        ) from err


def read_state_dict(folder):
    """State dict from ``model.safetensors`` or ``pytorch_model.bin`` in ``folder``."""
    folder = Path(folder)
    if (folder / WEIGHTS_NAME).is_file():
        return read_safetensors(folder / WEIGHTS_NAME)
    if (folder / "pytorch_model.bin").is_file():
        state = _torch_load(folder / "pytorch_model.bin")
        return state.get("state_dict", state) if isinstance(state, dict) else state
    raise FileNotFoundError(
        f"{folder}: no {WEIGHTS_NAME} or pytorch_model.bin found "
        f"(files: {sorted(os.listdir(folder))})"
    )


def _pos_conv_key(key):
    """Old-style weight norm names to the parametrization names."""
    key = key.replace("pos_conv_embed.conv.weight_g", "pos_conv_embed.conv.parametrizations.weight.original0")
    return key.replace("pos_conv_embed.conv.weight_v", "pos_conv_embed.conv.parametrizations.weight.original1")


def hf_to_native(state):
    """Rename a Hugging Face ``WavLMModel`` state dict to this package's names."""
    out = {}
    for key, value in state.items():
        if key.startswith("wavlm."):
            key = key[len("wavlm."):]
        key = _pos_conv_key(key)
        key = key.replace(
            "encoder.layers.0.attention.rel_attn_embed.", "encoder.rel_attn_embed.rel_attn_embed."
        )
        out[key] = value
    return out


_UNILM_LAYER = [
    ("self_attn.grep_linear.", "attention.gru_rel_pos_linear."),
    ("self_attn.grep_a", "attention.gru_rel_pos_const"),
    ("self_attn.", "attention."),
    ("self_attn_layer_norm.", "layer_norm."),
    ("fc1.", "feed_forward.intermediate_dense."),
    ("fc2.", "feed_forward.output_dense."),
    ("final_layer_norm.", "final_layer_norm."),
]


def unilm_to_native(state):
    """Rename an original UniLM WavLM state dict to this package's names."""
    out = {}
    conv = re.compile(r"feature_extractor\.conv_layers\.(\d+)\.(\d+)\.(?:1\.)?(weight|bias)$")
    layer = re.compile(r"encoder\.layers\.(\d+)\.(.*)$")
    for key, value in state.items():
        new = None
        match = conv.match(key)
        if match:
            idx, part, kind = match.groups()
            if part == "0":
                new = f"feature_extractor.conv_layers.{idx}.conv.{kind}"
            elif part == "2":
                new = f"feature_extractor.conv_layers.{idx}.layer_norm.{kind}"
        elif key.startswith("layer_norm."):
            new = "feature_projection." + key
        elif key.startswith("post_extract_proj."):
            new = key.replace("post_extract_proj.", "feature_projection.projection.")
        elif key.startswith("encoder.pos_conv.0."):
            new = _pos_conv_key(key.replace("encoder.pos_conv.0.", "encoder.pos_conv_embed.conv."))
        elif key.startswith("encoder.layer_norm."):
            new = key
        elif key == "encoder.layers.0.self_attn.relative_attention_bias.weight":
            new = "encoder.rel_attn_embed.rel_attn_embed.weight"
        else:
            match = layer.match(key)
            if match:
                idx, rest = match.groups()
                for old, rep in _UNILM_LAYER:
                    if rest.startswith(old):
                        new = f"encoder.layers.{idx}." + rep + rest[len(old):]
                        break
        out[new if new is not None else key] = value
    return out


def check_and_load(model, state, source, strict_extra=True, exact=False):
    """Load ``state`` into ``model`` after checking every key and shape.

    Raises ``ValueError`` naming the first missing key, the first key whose
    shape differs (with both shapes), or the first unexpected encoder key
    (``exact=True``, used for this package's own folders: any unexpected key
    other than a gate). Gates (``log_alpha``) absent from ``state`` keep their
    initial values.
    """
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key.endswith("log_alpha") or key in OPTIONAL_KEYS:
            continue
        if key not in state:
            raise ValueError(
                f"{source}: key '{key}' (shape {tuple(tensor.shape)}) is missing from the "
                f"checkpoint; is the config right for these weights?"
            )
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ValueError(
                f"{source}: key '{key}' has shape {tuple(state[key].shape)} in the "
                f"checkpoint but the config expects {tuple(tensor.shape)}"
            )
    for key, value in state.items():
        if key not in expected:
            if exact and not key.endswith("log_alpha"):
                raise ValueError(
                    f"{source}: unexpected key '{key}' (shape {tuple(value.shape)}) in the "
                    f"checkpoint; it has no place in the model built from its config"
                )
            if key.startswith(IGNORED_PREFIXES) or not strict_extra:
                continue
            if key == "encoder.layer_norm.weight" or key == "encoder.layer_norm.bias":
                continue  # pre-LN final norm not applied to hidden states (transformers>=5)
            if key.startswith(("feature_extractor.", "feature_projection.", "encoder.")):
                raise ValueError(
                    f"{source}: checkpoint key '{key}' (shape {tuple(value.shape)}) has no "
                    f"place in the model built from its config"
                )
            continue
        if tuple(value.shape) != tuple(expected[key].shape):  # gates, optional buffers
            raise ValueError(
                f"{source}: key '{key}' has shape {tuple(value.shape)} in the checkpoint "
                f"but the config expects {tuple(expected[key].shape)}"
            )
    loadable = {k: v for k, v in state.items() if k in expected}
    model.load_state_dict(loadable, strict=False)


def _read_json(path):
    with open(path, encoding="utf-8") as fin:
        try:
            return json.load(fin)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from err


def load_pretrained(cls, path, prune_units=None, gate_init=None, overrides=None):
    """Implementation of :meth:`PrunableWavLM.from_pretrained`."""
    path = Path(path)
    overrides = overrides or {}
    if path.is_dir():
        cfg_path = path / CONFIG_NAME
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{path}: no {CONFIG_NAME}; not a WavLM model folder")
        data = _read_json(cfg_path)
        if data.get("format") == CONFIG_FORMAT:
            saved_units = data.pop("prune_units", [])
            saved_init = data.pop("gate_init", None)
            config = WavLMConfig.from_dict({**data, **overrides})
            units = saved_units if prune_units is None else prune_units
            model = cls(config, prune_units=units, gate_init=gate_init or saved_init)
            check_and_load(model, read_state_dict(path), str(path), exact=True)
            return model
        if data.get("model_type", "wavlm") != "wavlm":
            raise ValueError(f"{cfg_path}: model_type is {data.get('model_type')!r}, not 'wavlm'")
        do_normalize = False
        pre = path / "preprocessor_config.json"
        if pre.is_file():
            do_normalize = bool(_read_json(pre).get("do_normalize", False))
        config = WavLMConfig.from_hf_dict(data, do_normalize=do_normalize)
        state = hf_to_native(read_state_dict(path))
    elif path.is_file():
        ckpt = _torch_load(path)
        if is_dphubert_checkpoint(ckpt):
            config, state, file_units = read_dphubert(ckpt, source=str(path))
            if overrides:
                config = WavLMConfig.from_dict({**config.to_dict(), **overrides})
            units = file_units if prune_units is None else prune_units
            model = cls(config, prune_units=units, gate_init=gate_init)
            expected = model.state_dict()
            unused = [k for k in state if k.endswith("log_alpha") and k not in expected]
            if unused:
                logger.info("%s: not loading %d gates of units not requested", path, len(unused))
            state = {k: v for k, v in state.items() if k not in unused}
            check_and_load(model, state, str(path))
            return model
        if not (isinstance(ckpt, dict) and "cfg" in ckpt and "model" in ckpt):
            raise ValueError(
                f"{path}: neither an original UniLM WavLM checkpoint (a dict with 'cfg' "
                f"and 'model') nor a DPHuBERT-family one (a dict with 'state_dict' and "
                f"'config')"
            )
        cfg = ckpt["cfg"]
        cfg = cfg if isinstance(cfg, dict) else vars(cfg)
        config = WavLMConfig.from_unilm_cfg(cfg)
        state = unilm_to_native(ckpt["model"])
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")
    if overrides:
        config = WavLMConfig.from_dict({**config.to_dict(), **overrides})
    model = cls(config, prune_units=prune_units or (), gate_init=gate_init)
    check_and_load(model, state, str(path))
    return model


def save_pretrained(model, folder):
    """Write ``config.json`` + ``model.safetensors`` for ``model``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = model.config.to_dict()
    data["prune_units"] = list(model.prune_units)
    if model.prune_units:
        data["gate_init"] = dict(model.gate_init)
    with open(folder / CONFIG_NAME, "w", encoding="utf-8") as fout:
        json.dump(data, fout, indent=2)
        fout.write("\n")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
