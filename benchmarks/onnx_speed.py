#!/usr/bin/env python3
"""Deployment speed of the pruned WavLM: PyTorch fp32 / bf16 vs ONNX Runtime fp32 / int8.

WavLM Base+ sizes with random weights (unpruned, and pruned to DiariZen's s80
layout, see ``wavlm_speed.py``), batch 1, 10 s of audio, 2 threads, one run
with the variants interleaved (median of ``--repeats``). ONNX files are
written like ``speechbrain_pruning.onnx_export`` writes them (TorchScript
exporter, dynamic axes, padding mask input); int8 is ONNX Runtime's dynamic
quantisation (``onnxruntime.quantization.quantize_dynamic``, int8 weights): of
every op, and of the matrix products only (what ``export_onnx(int8=True)`` writes).
Accuracy: cosine similarity of the utterance embedding (mean of the last
hidden layer) and max |diff| of all hidden states against PyTorch fp32.

Usage::

    python benchmarks/onnx_speed.py [--threads 2 --seconds 10 --repeats 5]

Writes ``benchmarks/results/onnx_speed_cpu.json`` and prints a table.
"""

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import wavlm_speed  # noqa: E402

from speechbrain_pruning import PrunableWavLM  # noqa: E402
from speechbrain_pruning.onnx_export import quantize_onnx_int8  # noqa: E402


class _WavLM(torch.nn.Module):
    def __init__(self, wavlm):
        super().__init__()
        self.wavlm = wavlm

    def forward(self, wavs, wav_lens):
        return self.wavlm(wavs, wav_lens)


def to_onnx(wavlm, path):
    example = (0.1 * torch.randn(2, 32000), torch.tensor([1.0, 0.7]))  # padded: keeps the mask
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_WavLM(wavlm).eval(), example, str(path), dynamo=False, opset_version=17,
                          input_names=["wavs", "wav_lens"], output_names=["hidden_states"],
                          dynamic_axes={"wavs": {0: "batch", 1: "samples"},
                                        "wav_lens": {0: "batch"},
                                        "hidden_states": {1: "batch", 2: "frames"}})
    return path


def main(argv=None):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default="benchmarks/results/onnx_speed_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    wavs = 0.1 * torch.randn(1, int(args.seconds * 16000), generator=torch.Generator().manual_seed(0))
    lens = torch.ones(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wavlm_speed.base_plus_hf(tmp / "base_plus")
        unpruned = PrunableWavLM.from_pretrained(tmp / "base_plus").eval()
        pruned, _ = wavlm_speed.prune_like_s80(tmp / "base_plus")
        pruned.eval()
        bf16 = wavlm_speed.prune_like_s80(tmp / "base_plus")[0].eval().to(torch.bfloat16)
        to_onnx(pruned, tmp / "s80.onnx")
        quantize_dynamic(str(tmp / "s80.onnx"), str(tmp / "s80_int8.onnx"),
                         weight_type=QuantType.QInt8)
        quantize_onnx_int8(tmp / "s80.onnx", tmp / "s80_int8_matmul.onnx")  # the export's int8
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {name: ort.InferenceSession(str(tmp / f"{name}.onnx"), options,
                                               providers=["CPUExecutionProvider"])
                    for name in ("s80", "s80_int8", "s80_int8_matmul")}
        feeds = {"wavs": wavs.numpy(), "wav_lens": lens.numpy()}
        variants = {
            "unpruned fp32 PyTorch": lambda: unpruned(wavs, lens).numpy(),
            "s80 fp32 PyTorch": lambda: pruned(wavs, lens).numpy(),
            "s80 bf16 PyTorch": lambda: bf16(wavs.bfloat16(), lens).float().numpy(),
            "s80 fp32 ONNX Runtime": lambda: sessions["s80"].run(None, feeds)[0],
            "s80 int8 ONNX Runtime (all ops)": lambda: sessions["s80_int8"].run(None, feeds)[0],
            "s80 int8 ONNX Runtime (MatMul)": lambda: sessions["s80_int8_matmul"].run(None,
                                                                                  feeds)[0],
        }
        times = {name: [] for name in variants}
        outputs = {}
        with torch.inference_mode():
            for name, fn in variants.items():  # warm-up
                outputs[name] = fn()
            for _ in range(args.repeats):  # interleaved
                for name, fn in variants.items():
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
    reference = outputs["s80 fp32 PyTorch"]
    base = statistics.median(times["unpruned fp32 PyTorch"])
    rows = {}
    for name in variants:
        median = statistics.median(times[name])
        row = {"median_ms": 1000 * median, "speedup_vs_unpruned_fp32": base / median}
        if name.startswith("s80") and name != "s80 fp32 PyTorch":
            a, b = outputs[name][-1].mean(1)[0], reference[-1].mean(1)[0]
            row["embedding_cosine_vs_fp32"] = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
            row["max_abs_diff_vs_fp32"] = float(np.abs(outputs[name] - reference).max())
        rows[name] = row
        extra = "".join(f", {k} {v:.4f}" for k, v in row.items() if k not in ("median_ms",))
        print(f"{name:32s} {row['median_ms']:8.1f} ms{extra}")
    result = {"command": " ".join(["python benchmarks/onnx_speed.py"]
                                  + (sys.argv[1:] if argv is None else list(argv))),
              "threads": args.threads, "seconds": args.seconds, "repeats": args.repeats,
              "torch": torch.__version__, "onnxruntime": ort.__version__, "rows": rows}
    return wavlm_speed.write_result(args.output, result)


if __name__ == "__main__":
    main()
