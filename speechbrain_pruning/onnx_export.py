"""ONNX export of exported model folders, checked against PyTorch with ONNX Runtime.

:func:`export_onnx` writes ``<folder>/model.onnx``: the interface's
:meth:`~speechbrain_pruning.pretrained.PrunedInterface.graph` (the pruned WavLM
and the task back-end: speaker embeddings ``[B, E]`` or spoofing logits
``[B, C]``), and with ``wavlm_only=True`` ``<folder>/wavlm.onnx``: the pruned
WavLM's hidden states ``[L+1, B, T, D]``. Inputs are ``wavs [B, S]`` (float,
16 kHz) and ``wav_lens [B]`` (relative lengths, the padding mask of the
batch); batch and time axes are dynamic. The file is exported with the
TorchScript-based exporter (``dynamo=False``; ``torch.export`` does not trace
the model's data-dependent padding logic) in eval mode, then run with ONNX
Runtime on a *different* padded batch (other batch size and length) and
compared with PyTorch: a difference above ``atol`` is an error. The figures
go to ``<folder>/onnx_report.json``.

Usage::

    python -m speechbrain_pruning.onnx_export results/.../exported [--wavlm-only]

then ``model.use_onnx()`` on the loaded interface.
"""

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .pretrained import load_exported

__all__ = ["export_onnx"]


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


def _padded_batch(batch, seconds, lens, seed):
    gen = torch.Generator().manual_seed(seed)
    wavs = 0.1 * torch.randn(batch, int(seconds * 16000), generator=gen)
    lens = torch.tensor(lens, dtype=torch.float32)
    for i, rel in enumerate(lens):  # zero the padding, as a real padded batch has
        wavs[i, int(round(float(rel) * wavs.shape[1])):] = 0.0
    return wavs, lens


def export_onnx(folder, wavlm_only=False, output=None, opset=17, atol=1e-4):
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

    Returns
    -------
    dict
        ``path``, ``max_abs_diff``, ``check_shape``, ``output_shape``.
    """
    import onnxruntime as ort

    folder = Path(folder)
    model = load_exported(folder)
    graph = _Graph(model, wavlm_only).eval()
    path = Path(output) if output else folder / ("wavlm.onnx" if wavlm_only else "model.onnx")
    out_name = "hidden_states" if wavlm_only else "output"
    dynamic = {"wavs": {0: "batch", 1: "samples"}, "wav_lens": {0: "batch"}}
    dynamic[out_name] = {1: "batch", 2: "frames"} if wavlm_only else {0: "batch"}
    example = _padded_batch(2, 2.0, [1.0, 0.7], seed=0)
    with warnings.catch_warnings(), torch.no_grad():
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
    if wavlm_only:  # padded frames are undefined: compare the valid ones
        frames = model.mods.wavlm.frame_relative_lengths(lens, wavs.shape[1]) * ref.shape[2]
        valid = np.arange(ref.shape[2])[None] < np.round(frames.numpy())[:, None]
        diff = float(np.abs(got - ref)[:, valid].max())
    else:
        diff = float(np.abs(got - ref).max())
    report = {"path": str(path), "max_abs_diff": diff, "atol": atol, "opset": opset,
              "check_shape": list(wavs.shape), "output_shape": list(ref.shape)}
    reports = folder / "onnx_report.json"
    previous = json.loads(reports.read_text()) if reports.is_file() else {}
    previous[path.name] = report
    reports.write_text(json.dumps(previous, indent=2) + "\n")
    if diff > atol:
        raise RuntimeError(f"{path}: ONNX Runtime differs from PyTorch by {diff:.3g} > {atol}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description="Export an exported model folder to ONNX.")
    parser.add_argument("folder")
    parser.add_argument("--wavlm-only", action="store_true")
    parser.add_argument("--output")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args(argv)
    report = export_onnx(args.folder, args.wavlm_only, args.output, args.opset)
    print(f"{report['path']}: ONNX Runtime vs PyTorch max |diff| {report['max_abs_diff']:.2e} "
          f"on a padded batch {report['check_shape']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
