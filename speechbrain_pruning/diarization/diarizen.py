"""Import DiariZen segmentation models (BUTSpeechFIT/DiariZen) into this collection.

A DiariZen model folder (as released on the model hub, or an experiment of
its recipes) holds::

    config.toml          [model] path/args (wavlm_src, sizes of the Conformer,
                         max_speakers_per_chunk/_frame), [inference.args],
                         [clustering.args]
    pytorch_model.bin    plain state dict of the whole model
    plda/                VBx's PLDA for *its* speaker model (pyannote ResNet34)

The model is DiariZen's ``Model`` (``diarizen/models/eend/model_wavlm_conformer.py``):
a (pruned) WavLM in the DPHuBERT layout under ``wavlm_model.``, the stacked
``L+1`` hidden states combined by ``weight_sum = Linear(L+1, 1, bias=False)``,
``proj`` (Linear D -> H), ``lnorm`` (LayerNorm), ``conformer`` (its own
Conformer, below), ``classifier`` (Linear H -> powerset classes) and a
log-softmax. That is exactly :class:`~.eend.EENDHead` with
``weighted_sum="linear"`` on :class:`~speechbrain_pruning.PrunableWavLM`.

DiariZen's Conformer (``diarizen/models/module/conformer.py``) computes the
same function as :class:`torchaudio.models.Conformer`'s layers (macaron FFN
with 1/2 residual, pre-LN self-attention, convolution module
pointwise-GLU-depthwise-BatchNorm-Swish-pointwise, second FFN, block
LayerNorm); only names and the attention layout differ, so the mapping is
exact (``tests/test_diarizen_import.py`` checks it against an independent
transcription of DiariZen's blocks):

=====================================  ==============================================
DiariZen ``conformer.conformer_layer.i.``  torchaudio ``conformer.conformer_layers.i.``
=====================================  ==============================================
``ffn1.ln_norm / w_1 / w_2``           ``ffn1.sequential.0 / .1 / .4``
``mha.ln_norm``                        ``self_attn_layer_norm``
``mha.mha.linearQ/K/V`` (3 Linear)     ``self_attn.in_proj_weight/bias`` (stacked)
``mha.mha.linearO``                    ``self_attn.out_proj``
``conv.ln_norm``                       ``conv_module.layer_norm``
``conv.pointwise_conv1 / depthwise_conv / bn_norm / pointwise_conv2``
                                       ``conv_module.sequential.0 / .2 / .3 / .5``
``ffn2.*``, ``ln_norm``                ``ffn2.*``, ``final_layer_norm``
=====================================  ==============================================

Not supported (a clear error): ``use_posi = true`` (relative positional
encoding in the Conformer; off in every released DiariZen configuration) and
``PReLU`` as ``output_activate_function`` (the other activations are).

The WavLM architecture comes from ``wavlm_src``: one of DiariZen's
predefined names (:data:`DIARIZEN_WAVLM_CONFIGS`, transcribed from
``diarizen/models/module/wavlm_config.py``) or a ``{"config", "state_dict"}``
file (relative to the model folder, or absolute).

Difference at inference: DiariZen zero-pads the last (short) window of a
recording and runs it unmasked; our pipeline masks the padding
(:class:`~.eend.EENDHead`), so the last window of a file can differ slightly.

Example
-------
>>> # speechbrain-pruning-import-diarizen diarizen-wavlm-large-s80-md/ exported/ \\
>>> #     --embedder my_speaker_model/
>>> # from speechbrain_pruning.inference import PrunedDiarizer
>>> # PrunedDiarizer.from_hparams(source="exported")("meeting.wav").speaker_diarization
"""

import argparse
import logging
import shutil
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..wavlm import PrunableWavLM
from ..wavlm.dphubert import read_dphubert
from ..wavlm.torch_files import _torch_load
from .eend import EENDHead

__all__ = ["DIARIZEN_WAVLM_CONFIGS", "DiariZenModel", "read_diarizen", "diarizen_head_state",
           "recordings_csv", "convert_diarizen", "main"]

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.toml"
WEIGHTS_FILE = "pytorch_model.bin"


def _wavlm_config(large, conv_channels=None, use_attention=None, heads=None, ffn=None):
    """A DiariZen ``wavlm_model(**config)`` dict (Base+ or Large sizes, optionally pruned)."""
    layers, total_heads, dim = (24, 16, 1024) if large else (12, 12, 768)
    conv = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2
    if conv_channels is not None:
        conv = [(c, k, s) for c, (_, k, s) in zip(conv_channels, conv)]
    return {
        "extractor_mode": "layer_norm" if large else "group_norm",
        "extractor_conv_layer_config": conv,
        "extractor_conv_bias": False,
        "encoder_embed_dim": dim,
        "encoder_projection_dropout": 0.1,
        "encoder_pos_conv_kernel": 128,
        "encoder_pos_conv_groups": 16,
        "encoder_num_layers": layers,
        "encoder_use_attention": use_attention or [True] * layers,
        "encoder_use_feed_forward": [True] * layers,
        "encoder_total_num_heads": [total_heads] * layers,
        "encoder_remaining_heads": heads or [list(range(total_heads))] * layers,
        "encoder_num_buckets": 320,
        "encoder_max_distance": 800,
        "encoder_attention_dropout": 0.1,
        "encoder_ff_interm_features": ffn or [4 * dim] * layers,
        "encoder_ff_interm_dropout": 0.0,
        "encoder_dropout": 0.1,
        "encoder_layer_norm_first": large,
        "encoder_layer_drop": 0.1 if large else 0.05,
        "normalize_waveform": large,
        "aux_num_out": None,
        "extractor_prune_conv_channels": False,
        "encoder_prune_attention_heads": False,
        "encoder_prune_attention_layer": False,
        "encoder_prune_feed_forward_intermediate": False,
        "encoder_prune_feed_forward_layer": False,
    }


def _uses_attention(heads):
    return [bool(h) for h in heads]


_BASE_S80_HEADS = [[1, 6], [5, 7, 8], [0, 3, 9], [0, 1, 4, 8, 11], [6, 8], [0], [7, 8, 10, 11],
                   [0, 1, 4, 8], [], [], [4, 7], [5]]
_LARGE_S80_HEADS = [
    [1, 2, 4, 5, 6], [9, 10, 14], [0, 1, 2, 4, 5, 7], [1, 4, 7, 12, 13, 14], [0, 2, 3, 4, 13],
    [1, 7, 13, 14, 15], [11, 13, 15], [2, 3, 4, 8, 15], [2, 5, 6, 15], [], [0, 1],
    [1, 3, 5, 12], [], [4, 7, 11], [6, 9], [11], [], [], [14], [5, 15], [0, 2, 8, 11, 13, 15],
    [0, 1, 3, 4, 5, 6, 7, 10, 13], [0, 1, 3, 6, 7, 9, 10, 11, 12, 14], [1, 2, 3, 4, 7, 13, 14, 15],
]

#: DiariZen's predefined WavLM architectures (``wavlm_src`` names), as
#: ``wavlm_model(**config)`` dicts; the ``*_s80_md`` ones are its released
#: pruned models (multi-domain, 80 % sparsity).
DIARIZEN_WAVLM_CONFIGS = {
    "wavlm_base": _wavlm_config(large=False),
    "wavlm_large": _wavlm_config(large=True),
    "wavlm_base_s80_md": _wavlm_config(
        large=False, conv_channels=[90, 161, 173, 181, 351, 155, 137],
        use_attention=_uses_attention(_BASE_S80_HEADS), heads=_BASE_S80_HEADS,
        ffn=[666, 660, 649, 1080, 237, 299, 437, 573, 53, 80, 211, 334]),
    "wavlm_large_s80_md": _wavlm_config(
        large=True, conv_channels=[512, 153, 224, 255, 302, 368, 211],
        use_attention=_uses_attention(_LARGE_S80_HEADS), heads=_LARGE_S80_HEADS,
        ffn=[1092, 925, 759, 646, 745, 615, 684, 958, 286, 294, 406, 377, 463, 542, 298, 236,
             96, 104, 134, 211, 473, 1011, 1770, 1316]),
}

# DiariZen Model(...) defaults (model_wavlm_conformer.py)
MODEL_DEFAULTS = dict(wavlm_src="wavlm_base", wavlm_layer_num=13, wavlm_feat_dim=768,
                      attention_in=256, ffn_hidden=1024, num_head=4, num_layer=4, kernel_size=31,
                      dropout=0.1, use_posi=False, output_activate_function=False,
                      max_speakers_per_chunk=4, max_speakers_per_frame=2, chunk_size=5)
ACTIVATIONS = ("ReLU", "ReLU6", "Tanh", "LeakyReLU", "Sigmoid")


@dataclass
class DiariZenModel:
    """A DiariZen segmentation model read into this collection's modules.

    ``wavlm``: :class:`~speechbrain_pruning.PrunableWavLM` (no gates);
    ``eend``: :class:`~.eend.EENDHead`; ``eend_kwargs``: its constructor
    arguments; ``inference``: our pipeline settings translated from
    ``[inference.args]`` / ``[clustering.args]``; ``source``: where it came from.
    """

    wavlm: PrunableWavLM
    eend: EENDHead
    eend_kwargs: dict
    inference: dict = field(default_factory=dict)
    source: str = ""


def _read_toml(path):
    try:
        with open(path, "rb") as fin:
            return tomllib.load(fin)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from err


def _resolve_wavlm_config(src, folder, override=None):
    """The ``wavlm_model(**config)`` dict named by ``wavlm_src`` (or ``override``)."""
    if override is not None:
        if isinstance(override, dict):
            return override
        src = str(override)
    if str(src).lower() in DIARIZEN_WAVLM_CONFIGS:
        return DIARIZEN_WAVLM_CONFIGS[str(src).lower()]
    candidates = [Path(src)] if Path(src).is_absolute() else [Path(folder) / src, Path(src)]
    for path in candidates:
        if path.is_file():
            ckpt = _torch_load(path)
            if not (isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict)):
                raise ValueError(f"{path}: wavlm_src file has no 'config' dict "
                                 "(expected DiariZen's {'config', 'state_dict'} file)")
            return ckpt["config"]
    raise ValueError(
        f"wavlm_src {src!r} is neither a DiariZen config name "
        f"({', '.join(DIARIZEN_WAVLM_CONFIGS)}) nor a file (looked in {folder} and the "
        "working directory); pass the WavLM config explicitly (--wavlm-config)"
    )


def _take(state, key, source):
    if key not in state:
        raise ValueError(f"{source}: key '{key}' missing from the DiariZen state dict")
    return state.pop(key)


def diarizen_head_state(state, num_blocks, source="DiariZen state dict"):
    """Map DiariZen's back-end keys to :class:`~.eend.EENDHead` keys (see module docstring).

    Arguments
    ---------
    state : dict
        The back-end part of the state dict (``weight_sum.``, ``proj.``,
        ``lnorm.``, ``conformer.``, ``classifier.`` keys); consumed.
    num_blocks : int
        Number of Conformer blocks.

    Returns
    -------
    dict
        The state dict of an ``EENDHead(weighted_sum="linear")``.
    """
    out = {"layer_weights.weight": _take(state, "weight_sum.weight", source)}
    for ours, theirs in (("proj", "proj"), ("norm", "lnorm"), ("classifier", "classifier")):
        for name in ("weight", "bias"):
            out[f"{ours}.{name}"] = _take(state, f"{theirs}.{name}", source)
    ffn = {"ln_norm": "0", "w_1": "1", "w_2": "4"}
    conv = {"pointwise_conv1": "sequential.0", "depthwise_conv": "sequential.2",
            "bn_norm": "sequential.3", "pointwise_conv2": "sequential.5",
            "ln_norm": "layer_norm"}
    for i in range(num_blocks):
        theirs, ours = f"conformer.conformer_layer.{i}.", f"conformer.conformer_layers.{i}."
        for name in ("weight", "bias"):
            for part in ("ffn1", "ffn2"):
                for their_name, index in ffn.items():
                    out[f"{ours}{part}.sequential.{index}.{name}"] = _take(
                        state, f"{theirs}{part}.{their_name}.{name}", source)
            out[f"{ours}self_attn_layer_norm.{name}"] = _take(
                state, f"{theirs}mha.ln_norm.{name}", source)
            out[f"{ours}self_attn.in_proj_{name}"] = torch.cat(
                [_take(state, f"{theirs}mha.mha.linear{p}.{name}", source) for p in "QKV"])
            out[f"{ours}self_attn.out_proj.{name}"] = _take(
                state, f"{theirs}mha.mha.linearO.{name}", source)
            out[f"{ours}final_layer_norm.{name}"] = _take(state, f"{theirs}ln_norm.{name}", source)
        for their_name, our_name in conv.items():
            names = ("weight", "bias")
            if their_name == "bn_norm":
                names += ("running_mean", "running_var", "num_batches_tracked")
            for name in names:
                out[f"{ours}conv_module.{our_name}.{name}"] = _take(
                    state, f"{theirs}conv.{their_name}.{name}", source)
    return out


def _head_kwargs(args, num_hidden, feat_dim):
    if args["use_posi"]:
        raise ValueError("DiariZen model with use_posi = true (relative positional encoding in "
                         "the Conformer) is not supported")
    activation = args["output_activate_function"] or None
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"output_activate_function {activation!r} is not supported "
                         f"(supported: {', '.join(ACTIVATIONS)} or false)")
    if int(args["wavlm_layer_num"]) != num_hidden or int(args["wavlm_feat_dim"]) != feat_dim:
        raise ValueError(
            f"config.toml says wavlm_layer_num={args['wavlm_layer_num']}, "
            f"wavlm_feat_dim={args['wavlm_feat_dim']} but the WavLM has {num_hidden} hidden "
            f"states of size {feat_dim} (DiariZen issue #26: Large needs 25 and 1024)")
    return dict(num_layers=num_hidden, feat_dim=feat_dim, hidden=int(args["attention_in"]),
                conformer_layers=int(args["num_layer"]), heads=int(args["num_head"]),
                ffn_dim=int(args["ffn_hidden"]), kernel_size=int(args["kernel_size"]),
                dropout=float(args["dropout"]), max_speakers=int(args["max_speakers_per_chunk"]),
                max_per_frame=int(args["max_speakers_per_frame"]), weighted_sum="linear",
                output_activation=activation)


def _inference_settings(config):
    """Our pipeline settings from DiariZen's ``[inference.args]`` / ``[clustering.args]``."""
    inference = dict(config.get("inference", {}).get("args", {}))
    clustering = dict(config.get("clustering", {}).get("args", {}))
    out = {}
    if "seg_duration" in inference:
        out["window"] = float(inference["seg_duration"])
        if "segmentation_step" in inference:  # a fraction of the window
            out["step"] = round(float(inference["segmentation_step"]) * out["window"], 6)
    if "batch_size" in inference:
        out["batch_size"] = int(inference["batch_size"])
    if "apply_median_filtering" in inference:
        out["median_filter"] = 11 if inference["apply_median_filtering"] else 1
    method = clustering.get("method")
    if method == "AgglomerativeClustering":
        out["clustering"] = "ahc"
    elif method == "VBxClustering":
        out.update(clustering="vbx", vbx_fa=float(clustering.get("Fa", 0.07)),
                   vbx_fb=float(clustering.get("Fb", 0.8)))
    if "ahc_threshold" in clustering:
        out["clustering_threshold"] = float(clustering["ahc_threshold"])
    if "min_cluster_size" in clustering:
        out["min_cluster_size"] = int(clustering["min_cluster_size"])
    return out


def read_diarizen(source, wavlm_config=None, weights=None):
    """Read a DiariZen segmentation model.

    Arguments
    ---------
    source : str or Path
        A DiariZen model folder (``config.toml`` + ``pytorch_model.bin``) or
        its ``config.toml``.
    wavlm_config : dict or str, optional
        The WavLM architecture when ``wavlm_src`` cannot be resolved: a
        ``wavlm_model(**config)`` dict, a DiariZen config name or a
        ``{"config", "state_dict"}`` file.
    weights : str or Path, optional
        The state dict file (default ``<folder>/pytorch_model.bin``), e.g. one
        epoch checkpoint of a DiariZen experiment.

    Returns
    -------
    DiariZenModel
        Modules in eval mode; unknown or missing keys and wrong shapes are errors
        naming the key.
    """
    source = Path(source)
    folder = source.parent if source.is_file() else source
    config_path = source if source.is_file() else source / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: no DiariZen config.toml")
    config = _read_toml(config_path)
    model_cfg = config.get("model", {})
    path = model_cfg.get("path", "")
    if path and not path.endswith("model_wavlm_conformer.Model"):
        raise ValueError(f"{config_path}: [model] path {path!r} is not DiariZen's WavLM-Conformer "
                         "model (diarizen.models.eend.model_wavlm_conformer.Model)")
    args = {**MODEL_DEFAULTS, **model_cfg.get("args", {})}
    weights = Path(weights) if weights is not None else folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no DiariZen weights file")
    state = _torch_load(weights)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict) \
            and "config" not in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{weights}: expected a state dict, found {type(state).__name__}")
    state = dict(state)

    wavlm_cfg = _resolve_wavlm_config(args["wavlm_src"], folder, wavlm_config)
    for key, value in wavlm_cfg.items():
        if "prune" in key and value:
            raise ValueError(f"{weights}: WavLM config has {key}={value}; DiariZen models are "
                             "stored after pruning (no gates)")
    prefix = "wavlm_model."
    wavlm_state = {k[len(prefix):]: state.pop(k) for k in list(state) if k.startswith(prefix)}
    if not wavlm_state:
        raise ValueError(f"{weights}: no 'wavlm_model.' keys; not a DiariZen WavLM-Conformer "
                         "state dict")
    wcfg, wstate, _ = read_dphubert({"config": wavlm_cfg, "state_dict": wavlm_state},
                                    source=f"{weights} (wavlm_model.)")
    wavlm = PrunableWavLM(wcfg)
    from ..wavlm.checkpoint import check_and_load

    check_and_load(wavlm, wstate, f"{weights} (wavlm_model.)")

    kwargs = _head_kwargs(args, wcfg.num_layers + 1, wcfg.hidden_size)
    eend = EENDHead(**kwargs)
    head_state = diarizen_head_state(state, kwargs["conformer_layers"], str(weights))
    if state:
        raise ValueError(f"{weights}: unknown DiariZen keys "
                         f"{sorted((k, tuple(v.shape)) for k, v in state.items())}")
    expected = eend.state_dict()
    for key, value in head_state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"{weights}: DiariZen key for our '{key}' has shape "
                             f"{tuple(value.shape)}, the model built from config.toml expects "
                             f"{tuple(expected[key].shape)}")
    eend.load_state_dict(head_state, strict=True)
    inference = _inference_settings(config)
    inference.setdefault("window", float(args["chunk_size"]))
    return DiariZenModel(wavlm.eval(), eend.eval(), kwargs, inference, str(folder))


def recordings_csv(data, csv_path):
    """A recordings manifest (``ID,wav,rttm``) for PLDA training.

    ``data`` is such a CSV already (returned as is: the data preparation of
    this collection writes them) or a Kaldi / DiariZen data folder with
    ``wav.scp`` and ``rttm`` (DiariZen's ``data/<corpus>/<split>/`` layout),
    written to ``csv_path``.
    """
    import csv

    from .cli import read_wav_scp

    data = Path(data)
    if data.is_file():
        return data
    scp, rttm = data / "wav.scp", data / "rttm"
    if not (scp.is_file() and rttm.is_file()):
        raise FileNotFoundError(f"{data}: neither a recordings CSV nor a folder with wav.scp "
                                "and rttm")
    with open(csv_path, "w", newline="", encoding="utf-8") as fout:
        writer = csv.writer(fout)
        writer.writerow(["ID", "wav", "rttm"])
        for rec in read_wav_scp(scp):
            writer.writerow([rec.uri, str(rec.path.resolve()), str(rttm.resolve())])
    return Path(csv_path)


def convert_diarizen(source, out_folder, embedder=None, plda=None, wavlm_config=None,
                     weights=None, inference=None, plda_data=None, lda_dim=128, device="cpu"):
    """A DiariZen model folder -> an exported :class:`PrunedDiarizer` folder.

    Arguments
    ---------
    source : str or Path
        DiariZen model folder (see :func:`read_diarizen`).
    out_folder : str or Path
        The exported folder (``hyperparams.yaml``, ``wavlm/``, ``eend.ckpt``,
        model card, manifest).
    embedder : str or Path, optional
        The speaker-embedding model to ship: a folder (our exported
        ``PrunedSpeakerRecognition`` or a SpeechBrain ``EncoderClassifier``) or
        the ``pytorch_model.bin`` of ``pyannote/wespeaker-voxceleb-resnet34-LM``
        (DiariZen's own; :mod:`.wespeaker`). Without one the diarizer falls back
        to WavLM layer means.
    plda : str or Path, optional
        A PLDA trained on ``embedder``'s embeddings (VBx needs one): a
        ``plda.safetensors`` of :class:`~.plda.PLDA` or a folder with BUT VBx's
        ``xvec_transform.npz`` + ``plda.npz``. When ``embedder`` is pyannote's
        WeSpeaker ResNet34 checkpoint file (DiariZen's own speaker model) and
        the DiariZen folder has ``plda/``, that PLDA is used. Without a PLDA
        clustering is AHC.
    inference : dict, optional
        Settings overriding those translated from ``config.toml``.
    plda_data : str or Path, optional
        Train the PLDA here on ``embedder``'s embeddings of the single-speaker
        stretches of these recordings (:func:`recordings_csv`: a CSV or a
        ``wav.scp`` + ``rttm`` folder), instead of giving ``plda``.
    lda_dim : int
        LDA dimension of that PLDA (DiariZen: 128).
    device : str
        Device for the PLDA embeddings.

    Returns
    -------
    dict
        The export report (sizes, architecture).
    """
    from ..pruning.export import export_model

    model = read_diarizen(source, wavlm_config=wavlm_config, weights=weights)
    settings = {"window": 8.0, "step": 2.0, "batch_size": 4, "median_filter": 11,
                "clustering_threshold": 0.6, "vbx_fa": 0.07, "vbx_fb": 0.8,
                "inference_precision": "auto"}
    settings.update(model.inference)
    settings.update(inference or {})
    with tempfile.TemporaryDirectory(prefix="diarizen_import_") as tmp:
        extra = _speaker_files(Path(tmp), source, settings, embedder, plda, plda_data, lda_dim,
                               device)
        if embedder is None:
            settings.setdefault("embedding_layer", min(6, model.wavlm.config.num_layers))
            logger.warning("%s: no speaker-embedding model given (--embedder); the diarizer "
                           "will cluster WavLM layer means, a weak fallback", source)
        return export_model(
            out_folder, model.wavlm, {"eend": model.eend},
            {"eend": ("speechbrain_pruning.diarization.EENDHead", model.eend_kwargs)},
            "PrunedDiarizer", hparams=settings,
            metrics={"imported from": str(source)},
            title="DiariZen segmentation model imported into speechbrain-pruning",
            extra_files=extra,
        )


def _speaker_files(tmp, source, settings, embedder, plda, plda_data, lda_dim, device):
    """Files to ship for the speaker model and its PLDA (written under ``tmp``), and the
    matching ``settings`` (``embedder``, ``plda``, ``clustering``)."""
    source_plda = Path(source if Path(source).is_dir() else Path(source).parent) / "plda"
    if plda is None and plda_data is None and embedder is not None \
            and Path(embedder).is_file() and source_plda.is_dir():
        # DiariZen's plda/ belongs to its speaker model, pyannote's WeSpeaker ResNet34
        logger.info("%s: using DiariZen's PLDA with the WeSpeaker embedder %s", source_plda,
                    embedder)
        plda = source_plda
    if plda is not None and Path(plda).is_dir():  # BUT VBx npz files -> our format
        from .plda import PLDA

        PLDA.from_vbx_npz(plda).save(tmp / "plda.safetensors")
        plda = tmp / "plda.safetensors"
    if plda_data is not None:
        if embedder is None or plda is not None:
            raise ValueError("plda_data needs an embedder and replaces plda")
        from .embedders import load_embedder, train_plda_on_recordings

        manifest = recordings_csv(plda_data, tmp / "recordings.csv")
        trained = train_plda_on_recordings(load_embedder(embedder, device), manifest,
                                           lda_dim=lda_dim, window=settings["window"])
        plda = tmp / "plda.safetensors"
        trained.save(plda)
    extra = {}
    if embedder is not None:
        if Path(embedder).is_file():  # a WeSpeaker pytorch_model.bin: shipped as a folder
            (tmp / "embedder").mkdir()
            shutil.copy2(embedder, tmp / "embedder" / "pytorch_model.bin")
            embedder = tmp / "embedder"
        extra["embedder"] = embedder
        settings["embedder"] = "embedder"
    if plda is not None:
        extra["plda.safetensors"] = plda
        settings["plda"] = "plda.safetensors"
        settings.setdefault("clustering", "vbx")
    elif settings.get("clustering") == "vbx":
        logger.warning("%s: VBx needs a PLDA for the speaker model in use (--plda); using AHC",
                       source)
        settings["clustering"] = "ahc"
    settings.setdefault("clustering", "ahc")
    return extra


def _parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="speechbrain-pruning-import-diarizen",
        description="Turn a DiariZen model folder (config.toml + pytorch_model.bin) into an "
                    "exported PrunedDiarizer folder.")
    parser.add_argument("source", help="DiariZen model folder")
    parser.add_argument("output", help="exported folder to write")
    parser.add_argument("--embedder", help="speaker model to ship: a folder (our exported "
                        "speaker model or a SpeechBrain EncoderClassifier) or the "
                        "pytorch_model.bin of pyannote/wespeaker-voxceleb-resnet34-LM "
                        "(DiariZen's; then DiariZen's plda/ is used too)")
    parser.add_argument("--plda", help="PLDA for VBx trained on the embedder: plda.safetensors "
                        "or a folder with xvec_transform.npz + plda.npz")
    parser.add_argument("--plda-data", help="train the PLDA on the embedder's embeddings of "
                        "these recordings: a recordings CSV (ID,wav,rttm) or a folder with "
                        "wav.scp and rttm (DiariZen's data layout)")
    parser.add_argument("--lda-dim", type=int, default=128, help="LDA dimension of that PLDA")
    parser.add_argument("--device", default="cpu", help="device for the PLDA embeddings")
    parser.add_argument("--wavlm-config", help="WavLM architecture when wavlm_src cannot be "
                        "resolved: a DiariZen config name or a {config, state_dict} file")
    parser.add_argument("--weights", help="state dict file (default: <source>/pytorch_model.bin)")
    return parser.parse_args(argv)


def main(argv=None):
    """Command line entry point (``speechbrain-pruning-import-diarizen``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    try:
        report = convert_diarizen(args.source, args.output, embedder=args.embedder,
                                  plda=args.plda, wavlm_config=args.wavlm_config,
                                  weights=args.weights, plda_data=args.plda_data,
                                  lda_dim=args.lda_dim, device=args.device)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: WavLM {report['params_after']:,} params, "
          f"{report['macs_after'] / 1e9:.2f} GMACs/s, back-end {report['backend_params']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
