"""Prune physically and write a self-contained, offline-loadable inference folder.

The folder holds:

* ``hyperparams.yaml``: the inference recipe read by the interfaces of
  :mod:`speechbrain_pruning.inference` (``model_folder`` is filled in at load);
* ``wavlm/``: the pruned encoder (``config.json`` + ``model.safetensors``);
* ``<name>.ckpt``: state dicts of the other modules (back-end, ...);
* ``pruning_report.json`` and ``pruning_report.png``: what each layer kept,
  parameters and MACs per component before and after;
* ``README.md``: a model card (sizes, sparsity per component, metrics, usage).
"""

import json
import shutil
import logging
import pydoc
from pathlib import Path

import torch
import yaml

from ..nn import unwrap_module
from ..wavlm.config import SAMPLE_RATE

__all__ = ["export_model", "build_module", "component_params", "plot_pruning_report",
           "load_state_dict_strict"]

logger = logging.getLogger(__name__)

COMPONENTS = ("conv", "projection", "positional", "attention", "ffn", "norms")


def _component(name):
    if name.startswith("feature_extractor."):
        return "conv"
    if name.startswith("feature_projection."):
        return "projection"
    if name.startswith(("encoder.pos_conv_embed.", "encoder.rel_attn_embed.")):
        return "positional"
    if ".attention." in name:
        return "attention"
    if ".feed_forward." in name:
        return "ffn"
    return "norms"


def build_module(class_path, kwargs):
    """Instantiate a module from its dotted class path and keyword arguments.

    Recipes build their back-ends this way so that the same ``(class_path,
    kwargs)`` pair is written into the exported folder that rebuilds them.

    Example
    -------
    >>> mhfa = build_module("speechbrain_pruning.speaker.MHFA",
    ...                     {"num_layers": 3, "feat_dim": 8, "num_heads": 2,
    ...                      "compression_dim": 4, "embed_dim": 5})
    >>> type(mhfa).__name__
    'MHFA'
    """
    cls = pydoc.locate(class_path)
    if cls is None:
        raise ValueError(f"Cannot import module class {class_path!r}")
    return cls(**dict(kwargs))


def component_params(wavlm):
    """Parameters per component (gates excluded) of a ``PrunableWavLM``.

    Example
    -------
    >>> from speechbrain_pruning import PrunableWavLM
    >>> from speechbrain_pruning.wavlm import wavlm_base_plus
    >>> counts = component_params(PrunableWavLM(wavlm_base_plus(num_layers=1)))
    >>> counts["ffn"], counts["total"]
    (4722432, 16408724)
    """
    counts = dict.fromkeys(COMPONENTS, 0)
    for name, param in wavlm.named_parameters():
        if not name.endswith("log_alpha"):
            counts[_component(name)] += param.numel()
    counts["total"] = sum(counts[c] for c in COMPONENTS)
    return counts


def plot_pruning_report(report, path):
    """Bar charts of kept conv channels, heads and FFN units per layer (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report["layers"]
    original = report.get("original", {})
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = [
        ("conv channels per CNN layer", report["conv_channels"], original.get("conv_channels")),
        ("attention heads per layer", [layer["heads"] for layer in layers],
         original.get("heads")),
        ("FFN units per layer", [layer["ffn_dim"] for layer in layers], original.get("ffn_dim")),
    ]
    for ax, (title, kept, full) in zip(axes, panels):
        index = list(range(len(kept)))
        if full:
            ax.bar(index, full, color="#dddddd", label="before")
        ax.bar(index, kept, color="#1f77b4", label="kept")
        ax.set_title(title)
        ax.set_xlabel("layer")
        ax.set_xticks(index)
        if full:
            ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(
        f"{report['params_after'] / 1e6:.2f} M params "
        f"(sparsity {report['sparsity']:.1%}), {report['macs_after'] / 1e9:.2f} GMACs/s"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _architecture(wavlm):
    cfg = wavlm.config
    return {
        "conv_channels": [c for c, _, _ in cfg.conv_layers],
        "heads": [len(h) for h in cfg.layer_heads],
        "ffn_dim": list(cfg.layer_ffn_dims),
    }


def _model_card(title, report, metrics, interface, usage):
    before, after = report.get("params_by_component_before"), report["params_by_component_after"]
    lines = [
        f"# {title}", "",
        "Pruned WavLM exported by speechbrain-pruning. Load it offline:", "",
        "```python", usage, "```", "",
        "## Size", "",
        f"* Encoder parameters: {report['params_after']:,} "
        f"(reference {report['reference_params']:,}; sparsity {report['sparsity']:.1%})",
        f"* Encoder MACs per second of audio: {report['macs_after'] / 1e9:.3f} G "
        f"(reference {report['reference_macs'] / 1e9:.3f} G)",
        f"* Back-end parameters: {report['backend_params']:,}", "",
        "| component | params before | params after | kept |", "|---|---|---|---|",
    ]
    for comp in COMPONENTS + ("total",):
        if before and before[comp]:
            lines.append(f"| {comp} | {before[comp]:,} | {after[comp]:,} | "
                         f"{after[comp] / before[comp]:.1%} |")
        else:
            lines.append(f"| {comp} | - | {after[comp]:,} | - |")
    lines += ["", "![pruning report](pruning_report.png)", ""]
    if metrics:
        lines += ["## Results", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |"
                  for k, v in metrics.items()]
        lines.append("")
    lines += [f"Interface: `speechbrain_pruning.inference.{interface}`.", ""]
    return "\n".join(lines)


def export_model(folder, wavlm, modules, module_specs, interface, hparams=None,
                 metrics=None, title="Pruned WavLM model", extra_files=None):
    """Prune ``wavlm`` (if gated) and write an inference folder.

    Arguments
    ---------
    folder : str or Path
        Output folder (created).
    wavlm : PrunableWavLM
        The trained encoder; gates are removed by :meth:`prune` (eval masks).
        A DDP / DataParallel wrapper is taken off first.
    modules : dict
        Other modules to ship, name -> ``nn.Module`` (saved as ``<name>.ckpt``,
        unwrapped from DDP / DataParallel, loaded back with strict key checks).
    module_specs : dict
        name -> ``(dotted class path, kwargs)`` to rebuild each module.
    interface : str
        Class name in :mod:`speechbrain_pruning.inference` the folder is for.
    hparams : dict, optional
        Extra inference hyperparameters (e.g. a decision threshold).
    metrics : dict, optional
        Figures shown in the model card and the report.
    extra_files : dict, optional
        Name inside the folder -> a file or folder copied there (e.g. the
        diarizer's speaker-embedding model and PLDA), so the folder is
        self-contained; ``hparams`` refer to them by these relative names.

    Returns
    -------
    dict
        The pruning report.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (extra_files or {}).items():
        target, source = folder / name, Path(source)
        if not source.exists():
            raise FileNotFoundError(f"{source}: file to ship in the export as {name} not found")
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        if source.is_dir():
            shutil.copytree(source, target, symlinks=False)
        else:
            shutil.copy2(source, target)
    # DDP / DataParallel wrappers would prefix every key with "module."
    wavlm = unwrap_module(wavlm)
    modules = {name: unwrap_module(module) for name, module in modules.items()}
    wavlm.eval()
    before_arch = _architecture(wavlm)
    before = component_params(wavlm) if wavlm.prune_units else None
    summary = wavlm.prune() if wavlm.prune_units else _unpruned_summary(wavlm)
    wavlm.save_pretrained(folder / "wavlm")
    for name, module in modules.items():
        torch.save(module.state_dict(), folder / f"{name}.ckpt")  # unwrapped above
    report = dict(summary)
    report["original"] = before_arch
    report["params_by_component_before"] = before
    report["params_by_component_after"] = component_params(wavlm)
    report["backend_params"] = sum(
        p.numel() for m in modules.values() for p in m.parameters()
    )
    report["metrics"] = dict(metrics or {})
    (folder / "pruning_report.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_pruning_report(report, folder / "pruning_report.png")
    (folder / "hyperparams.yaml").write_text(
        _inference_yaml(module_specs, interface, hparams or {})
    )
    usage = (
        f"from speechbrain_pruning.inference import {interface}\n"
        f"model = {interface}.from_hparams(source=\"{folder.name}\", savedir=\"{folder.name}\")"
    )
    (folder / "README.md").write_text(_model_card(title, report, metrics, interface, usage))
    write_manifest(folder)
    logger.info("Exported %s (%d params) to %s", interface, report["params_after"], folder)
    return report


def write_manifest(folder):
    """``<folder>/manifest.json``: every file of an exported folder (relative paths).

    :meth:`speechbrain_pruning.pretrained.PrunedInterface.from_hparams` fetches
    exactly these files (SpeechBrain's fetching: local folder or model hub)
    into its ``savedir``. Returns the list.
    """
    from ..pretrained import MANIFEST

    folder = Path(folder)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if p.is_file() and p.name != MANIFEST and not p.name.endswith(".part"))
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1) + "\n")
    return files


def _unpruned_summary(wavlm):
    cfg = wavlm.config
    params = wavlm.num_params()
    return {
        "conv_channels": [c for c, _, _ in cfg.conv_layers],
        "layers": [
            {"heads": len(h), "kept_heads": list(h), "attention": bool(h),
             "ffn_dim": f, "feed_forward": f > 0}
            for h, f in zip(cfg.layer_heads, cfg.layer_ffn_dims)
        ],
        "params_before": params, "params_after": params,
        "macs_after": int(round(float(wavlm.expected_macs()))),
        "reference_params": cfg.reference_num_params, "reference_macs": cfg.reference_macs,
        "sparsity": 1.0 - params / cfg.reference_num_params,
    }


def _inference_yaml(module_specs, interface, hparams):
    header = (
        f"# Inference hyperparameters for speechbrain_pruning.inference.{interface}.\n"
        "# Generated by speechbrain_pruning.pruning.export; `model_folder` is set at load time.\n"
    )
    lines = [header, "model_folder: !PLACEHOLDER", f"sample_rate: {SAMPLE_RATE}",
             f"interface_class: speechbrain_pruning.inference.{interface}"]
    lines += yaml.safe_dump(hparams, sort_keys=False).strip().splitlines() if hparams else []
    lines += ["", "wavlm: !apply:speechbrain_pruning.PrunableWavLM.from_pretrained",
              "    path: !ref <model_folder>/wavlm"]
    for name, (path, kwargs) in module_specs.items():
        if not kwargs:
            lines.append(f"\n{name}: !new:{path} []")
            continue
        lines.append(f"\n{name}: !new:{path}")
        for line in yaml.safe_dump(dict(kwargs), sort_keys=False).strip().splitlines():
            lines.append("    " + line)
    lines += ["", "modules:", "    wavlm: !ref <wavlm>"]
    lines += [f"    {name}: !ref <{name}>" for name in module_specs]
    lines += ["", "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer",
              "    collect_in: !ref <model_folder>", "    loadables:"]
    lines += [f"        {name}: !ref <{name}>" for name in module_specs]
    lines += ["    paths:"]
    lines += [f"        {name}: !ref <model_folder>/{name}.ckpt" for name in module_specs]
    lines += ["    custom_hooks:  # strict: a missing or unexpected key is an error"]
    lines += [f"        {name}: !name:speechbrain_pruning.pruning.export.load_state_dict_strict"
              for name in module_specs]
    return "\n".join(lines) + "\n"


def load_state_dict_strict(module, path):
    """Load ``path`` into ``module``; any missing or unexpected key is an error.

    The loading hook of exported folders (SpeechBrain's default hook only
    warns, so a wrong file would silently leave random weights). Errors name
    the file and the keys; keys saved from a DDP-wrapped module (``module.``
    prefix) are pointed out.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     torch.save({"module.weight": torch.zeros(1, 2)}, f"{tmp}/x.ckpt")
    ...     try:
    ...         load_state_dict_strict(torch.nn.Linear(2, 1, bias=False), f"{tmp}/x.ckpt")
    ...     except ValueError as err:
    ...         print(str(err).split("x.ckpt ")[1])
    does not fit Linear: missing keys ['weight']; unexpected keys ['module.weight'] (saved from a DDP/DataParallel-wrapped module)
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(f"Cannot read weights file {path} (truncated or corrupt?): {err}") \
            from err
    if not isinstance(state, dict):
        raise TypeError(f"{path}: expected a state dict, found {type(state).__name__}")
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        hint = " (saved from a DDP/DataParallel-wrapped module)" \
            if any(k.startswith("module.") for k in unexpected) else ""
        raise ValueError(
            f"{path} does not fit {type(module).__name__}: missing keys {missing}; "
            f"unexpected keys {unexpected}{hint}"
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{path}: key '{key}' has shape {tuple(value.shape)} in the file but "
                f"{type(module).__name__} expects {tuple(expected[key].shape)}"
            )
    module.load_state_dict(state, strict=True)
