"""ONNX export of exported model folders, checked against PyTorch with ONNX Runtime.

:func:`export_onnx` writes ``<folder>/model.onnx``: the interface's
:meth:`~speechbrain_pruning.pretrained.PrunedInterface.graph` (the pruned WavLM
and the task back-end: speaker embeddings ``[B, E]``, spoofing logits
``[B, C]`` or the diarizer's segmentation, powerset log-probabilities
``[B, T, C]``), and with ``wavlm_only=True`` ``<folder>/wavlm.onnx``: the pruned
WavLM's hidden states ``[L+1, B, T, D]``. Inputs are ``wavs [B, S]`` (float,
16 kHz) and ``wav_lens [B]`` (relative lengths, the padding mask of the
batch); batch and time axes are dynamic. The file is exported with the
TorchScript-based exporter (``dynamo=False``; ``torch.export`` does not trace
the model's data-dependent padding logic) in eval mode, then run with ONNX
Runtime on a *different* padded batch (other batch size and length) and
compared with PyTorch: a difference above ``atol`` is an error. The figures
go to ``<folder>/onnx_report.json``.

With ``int8=True`` the checked ``model.onnx`` is also quantised with ONNX
Runtime's dynamic quantisation (int8 weights of the matrix products,
activations quantised on the fly; convolutions stay fp32: ``model.int8.onnx``). Its effect is measured
on real audio (``eval_files``: the recipe passes files of its evaluation
split): cosine similarity of int8 to fp32 embeddings (speaker models) or the
change of the scores and of the decisions at the exported threshold
(countermeasures), through the interface's own ``encode_batch`` /
``score_batch``. The figures go to the report and to a section of the model
card (``README.md``); ``manifest.json`` is rewritten so the ONNX files travel
with the folder. On CPUs without fast integer convolutions int8 can be slower
than fp32 (``benchmarks/onnx_speed.py``).

Usage::

    python -m speechbrain_pruning.onnx_export results/.../exported [--wavlm-only]
    python -m speechbrain_pruning.onnx_export results/.../exported --int8 --eval-files a.wav b.flac

then ``model.use_onnx()`` (or ``model.use_onnx(int8=True)``) on the loaded interface.
"""

import argparse
import contextlib
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .pretrained import load_exported

__all__ = ["export_onnx", "quantize_onnx_int8", "measure_int8_effect", "update_model_card"]

INT8_NAME = "model.int8.onnx"
CARD_SECTION = "## ONNX deployment"


class _Graph(torch.nn.Module):
    """``(wavs, wav_lens) -> output`` of an interface (or its WavLM alone), for tracing."""

    def __init__(self, interface, wavlm_only):
        super().__init__()
        self.interface, self.wavlm_only = interface, wavlm_only
        self.modules_ = interface.mods  # registered, so .eval() reaches them

    def forward(self, wavs, wav_lens):
        if self.wavlm_only:
            return self.interface.mods.wavlm(wavs, wav_lens)
        return self.interface.graph(wavs, wav_lens)


def _traceable_length_to_mask(length, max_len=None, dtype=None, device=None):
    """SpeechBrain's ``length_to_mask`` without ``expand(len(length), ...)``, which
    the tracer would freeze to the example's batch size (broadcasting instead)."""
    if max_len is None:
        max_len = length.max().long().item()
    mask = torch.arange(max_len, device=length.device, dtype=length.dtype)[None] \
        < length.unsqueeze(1)
    return mask.to(dtype=dtype or length.dtype, device=device or length.device)


@contextlib.contextmanager
def _traceable_speechbrain():
    """Patch the SpeechBrain modules whose masks would bake the batch size into the graph
    (ECAPA-TDNN's SE blocks and attentive statistics pooling)."""
    from speechbrain.lobes.models import ECAPA_TDNN

    original = ECAPA_TDNN.length_to_mask
    ECAPA_TDNN.length_to_mask = _traceable_length_to_mask
    try:
        yield
    finally:
        ECAPA_TDNN.length_to_mask = original


def _is_frame_level(model):
    return bool(getattr(model, "FRAME_LEVEL_OUTPUT", False))


def _padded_batch(batch, seconds, lens, seed):
    gen = torch.Generator().manual_seed(seed)
    wavs = 0.1 * torch.randn(batch, int(seconds * 16000), generator=gen)
    lens = torch.tensor(lens, dtype=torch.float32)
    for i, rel in enumerate(lens):  # zero the padding, as a real padded batch has
        wavs[i, int(round(float(rel) * wavs.shape[1])):] = 0.0
    return wavs, lens


def export_onnx(folder, wavlm_only=False, output=None, opset=17, atol=1e-4, int8=False,
                eval_files=None, max_eval_files=64):
    """Export an exported folder to ONNX and check it; returns the report dict.

    Arguments
    ---------
    folder : str or Path
        A folder written by ``export_model`` (speaker or spoofing model; any
        folder with ``wavlm_only=True``).
    wavlm_only : bool
        Export the pruned WavLM alone (``wavlm.onnx``).
    output : str or Path, optional
        Target file (default ``<folder>/model.onnx`` or ``<folder>/wavlm.onnx``).
    opset : int
        ONNX opset.
    atol : float
        Largest accepted absolute difference to PyTorch on the check batch.
    int8 : bool
        Also write ``model.int8.onnx`` (:func:`quantize_onnx_int8`) and measure
        its effect on ``eval_files`` (:func:`measure_int8_effect`).
    eval_files : list of str, optional
        Audio files for the int8 measurement (the first ``max_eval_files``);
        without them the effect is not measured (and the card says so).
    max_eval_files : int
        Cap on the number of files measured.

    Returns
    -------
    dict
        ``path``, ``max_abs_diff``, ``check_shape``, ``output_shape`` (and
        ``int8``: the quantised file and its measured effect).
    """
    import onnxruntime as ort

    folder = Path(folder)
    model = load_exported(folder)
    graph = _Graph(model, wavlm_only).eval()
    path = Path(output) if output else folder / ("wavlm.onnx" if wavlm_only else "model.onnx")
    out_name = "hidden_states" if wavlm_only else "output"
    dynamic = {"wavs": {0: "batch", 1: "samples"}, "wav_lens": {0: "batch"}}
    if wavlm_only:
        dynamic[out_name] = {1: "batch", 2: "frames"}
    else:  # [B, E] / [B, C] (speaker, spoofing) or [B, T, C] (diarization)
        dynamic[out_name] = {0: "batch", 1: "frames"} if _is_frame_level(model) else {0: "batch"}
    example = _padded_batch(2, 2.0, [1.0, 0.7], seed=0)
    with warnings.catch_warnings(), torch.no_grad(), _traceable_speechbrain():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, example, str(path), input_names=["wavs", "wav_lens"],
                          output_names=[out_name], dynamic_axes=dynamic, opset_version=opset,
                          dynamo=False)
    wavs, lens = _padded_batch(3, 3.3, [1.0, 0.45, 0.8], seed=1)  # another shape, padded
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"wavs": wavs.numpy(), "wav_lens": lens.numpy()})[0]
    with torch.no_grad():
        ref = graph(wavs, lens).numpy()
    if got.shape != ref.shape:
        raise RuntimeError(f"{path}: ONNX output shape {got.shape} != PyTorch {ref.shape}")
    if wavlm_only or _is_frame_level(model):  # padded frames are undefined: valid ones only
        axis = 2 if wavlm_only else 1
        frames = model.mods.wavlm.frame_relative_lengths(lens, wavs.shape[1]) * ref.shape[axis]
        valid = np.arange(ref.shape[axis])[None] < np.round(frames.numpy())[:, None]
        diff = float(np.abs(got - ref)[:, valid].max() if wavlm_only
                     else np.abs(got - ref)[valid].max())
    else:
        diff = float(np.abs(got - ref).max())
    report = {"path": str(path), "max_abs_diff": diff, "atol": atol, "opset": opset,
              "check_shape": list(wavs.shape), "output_shape": list(ref.shape)}
    if diff > atol:
        _save_report(folder, path.name, report)
        raise RuntimeError(f"{path}: ONNX Runtime differs from PyTorch by {diff:.3g} > {atol}")
    if int8:
        if wavlm_only:
            raise ValueError("int8 export applies to the full model (not --wavlm-only)")
        int8_path = quantize_onnx_int8(path, path.parent / INT8_NAME)
        files = list(eval_files or [])[:max_eval_files]
        effect = measure_int8_effect(model, path, int8_path, files) if files else None
        report["int8"] = {"path": str(int8_path), "bytes": int8_path.stat().st_size,
                          "fp32_bytes": path.stat().st_size, "effect": effect}
    reports = _save_report(folder, path.name, report)
    update_model_card(folder, reports)
    from .pruning.export import write_manifest

    write_manifest(folder)
    return report


def _save_report(folder, name, report):
    reports = Path(folder) / "onnx_report.json"
    previous = json.loads(reports.read_text()) if reports.is_file() else {}
    previous[name] = report
    reports.write_text(json.dumps(previous, indent=2) + "\n")
    return previous


def quantize_onnx_int8(fp32_path, int8_path, op_types=("MatMul", "Gemm")):
    """Dynamic int8 quantisation of an ONNX file (ONNX Runtime, signed int8 weights).

    Only the matrix products are quantised by default: ONNX Runtime's integer
    convolutions (``ConvInteger``) are slower than its fp32 ones on CPUs, so
    quantising the CNN front-end makes the model slower
    (``benchmarks/onnx_speed.py``: s80 all-op int8 is 2.3x slower than fp32,
    MatMul-only int8 faster). ``op_types=None`` quantises every supported op.
    Returns the path of the quantised file.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = Path(int8_path)
    root = logging.getLogger()  # the quantizer logs every skipped tensor at INFO on the root
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(op_types) if op_types else None)
        finally:
            root.setLevel(level)
    return int8_path


def _outputs(model, files):
    """Per-file outputs through the interface's public API: embeddings or scores
    (diarizer: the powerset class of every frame of the file's first window)."""
    outs = []
    for path in files:
        wav = model.load_file(path)[None]
        if _is_frame_level(model):
            wav = wav[:, : int(model.hparams.window * model.hparams.sample_rate)]
            with torch.no_grad():
                outs.append(model.run_graph(wav, torch.ones(1)).argmax(-1).reshape(-1))
        elif hasattr(model, "encode_batch"):
            outs.append(model.encode_batch(wav).reshape(-1).float())
        else:
            outs.append(model.score_batch(wav).reshape(-1).float())
    return outs if _is_frame_level(model) else torch.stack(outs)


def measure_int8_effect(model, fp32_path, int8_path, files):
    """The int8 model against the fp32 one on audio ``files`` (one file per batch).

    Speaker models (``encode_batch``): cosine similarity of the embeddings
    (mean, min, 5th percentile). Diarizers: share of segmentation frames
    (first window of each file) whose powerset class is unchanged. Countermeasures (``score_batch``): absolute
    score change (mean, max) and the share of decisions that flip at the
    exported ``threshold``. ``model`` is left running PyTorch.

    Returns
    -------
    dict
        The figures and ``num_files``.
    """
    try:
        fp32 = _outputs(model.use_onnx(fp32_path), files)
        int8 = _outputs(model.use_onnx(int8_path), files)
    finally:
        model.use_onnx(False)
    result = {"num_files": len(files)}
    if _is_frame_level(model):
        result.update(frame_agreement=float(np.mean([
            float((a == b).float().mean()) for a, b in zip(fp32, int8)])))
    elif hasattr(model, "encode_batch"):
        cosine = torch.nn.functional.cosine_similarity(fp32, int8, dim=-1).numpy()
        result.update(cosine_mean=float(cosine.mean()), cosine_min=float(cosine.min()),
                      cosine_p5=float(np.percentile(cosine, 5)))
    else:
        change = (fp32 - int8).abs().reshape(-1).numpy()
        result.update(score_change_mean=float(change.mean()), score_change_max=float(change.max()))
        threshold = getattr(model.hparams, "threshold", None)
        if threshold is not None:
            flips = (fp32.reshape(-1) >= threshold) != (int8.reshape(-1) >= threshold)
            result.update(threshold=float(threshold), decision_flips=float(flips.float().mean()))
    return result


def update_model_card(folder, reports):
    """Write the ONNX section of ``<folder>/README.md`` (replaced if present)."""
    card = Path(folder) / "README.md"
    text = card.read_text() if card.is_file() else ""
    if CARD_SECTION in text:
        start = text.index(CARD_SECTION)
        end = text.find("\n## ", start + len(CARD_SECTION))
        text = text[:start] + (text[end + 1:] if end >= 0 else "")
    lines = [CARD_SECTION, "",
             "| file | checked against PyTorch (max abs diff, padded batch) |", "|---|---|"]
    for name, report in reports.items():
        lines.append(f"| `{name}` | {report['max_abs_diff']:.1e} on {report['check_shape']} |")
    for name, report in reports.items():
        int8 = report.get("int8")
        if not int8:
            continue
        lines += ["", f"int8 (`{Path(int8['path']).name}`, ONNX Runtime dynamic quantisation, "
                      f"{int8['bytes'] / 2**20:.1f} MiB vs {int8['fp32_bytes'] / 2**20:.1f} MiB):"]
        effect = int8.get("effect")
        if not effect:
            lines.append("effect not measured (no evaluation files given).")
        elif "frame_agreement" in effect:
            lines.append(f"segmentation frames whose powerset class equals fp32's over "
                         f"{effect['num_files']} files: {effect['frame_agreement']:.2%}.")
        elif "cosine_mean" in effect:
            lines.append(f"cosine similarity to fp32 embeddings over {effect['num_files']} files: "
                         f"mean {effect['cosine_mean']:.4f}, 5th percentile "
                         f"{effect['cosine_p5']:.4f}, min {effect['cosine_min']:.4f}.")
        else:
            line = (f"score change against fp32 over {effect['num_files']} files: mean "
                    f"{effect['score_change_mean']:.4g}, max {effect['score_change_max']:.4g}")
            if "decision_flips" in effect:
                line += (f"; decisions flipped at the threshold {effect['threshold']:.4g}: "
                         f"{effect['decision_flips']:.1%}")
            lines.append(line + ".")
    lines += ["", "Load with `model.use_onnx()` (or `model.use_onnx(int8=True)`).", ""]
    card.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export an exported model folder to ONNX.")
    parser.add_argument("folder")
    parser.add_argument("--wavlm-only", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--int8", action="store_true",
                        help="also write model.int8.onnx (dynamic quantisation)")
    parser.add_argument("--eval-files", nargs="*", default=None,
                        help="audio files on which the int8 effect is measured")
    args = parser.parse_args(argv)
    report = export_onnx(args.folder, args.wavlm_only, args.output, args.opset, int8=args.int8,
                         eval_files=args.eval_files)
    print(f"{report['path']}: ONNX Runtime vs PyTorch max |diff| {report['max_abs_diff']:.2e} "
          f"on a padded batch {report['check_shape']}")
    if report.get("int8"):
        print(f"{report['int8']['path']}: {report['int8']['effect'] or 'effect not measured'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
