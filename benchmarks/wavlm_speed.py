#!/usr/bin/env python3
"""Inference speed of PrunableWavLM: unpruned vs transformers, pruned vs unpruned.

Builds a randomly initialised WavLM Base+ (the real sizes; no download), saves
it in Hugging Face format, loads it into ``PrunableWavLM`` and times, on the
same input (batch 1, 10 s of audio by default):

1. ``transformers.WavLMModel`` (eager attention) with all hidden states;
2. this project's unpruned model (same weights);
3. the same model physically pruned to the architecture DiariZen ships at
   80 % sparsity (``wavlm_base_s80_md``: conv channels, heads per layer and
   5,279 FFN units), obtained through gates + ``prune()``.

Usage::

    python benchmarks/wavlm_speed.py --threads 2 --seconds 10 --repeats 5
    python benchmarks/wavlm_speed.py --device cuda --threads 16   # on a GPU

Prints a table and writes JSON with every figure (``--output``).
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from speechbrain_pruning import PrunableWavLM

# DiariZen's pruned Base+ at 80 % sparsity (recipes/diar_ssl_pruning wavlm_config.py).
S80_CONV = [90, 161, 173, 181, 351, 155, 137]
S80_HEADS = [2, 3, 3, 5, 2, 1, 4, 4, 0, 0, 2, 1]
S80_FFN_TOTAL = 5279


def base_plus_hf(folder):
    """Save a random transformers WavLM Base+ to ``folder``; returns the model."""
    import transformers

    config = transformers.WavLMConfig(
        conv_kernel=(10, 3, 3, 3, 3, 2, 2), mask_time_prob=0.0, layerdrop=0.0
    )
    model = transformers.WavLMModel(config).eval()
    model.save_pretrained(str(folder))
    return model


def set_gate(gate, keep, generator):
    """Open ``keep`` random units of a hard-concrete gate, close the rest."""
    values = torch.full((gate.n,), -20.0)
    values[torch.randperm(gate.n, generator=generator)[:keep]] = 20.0
    gate.log_alpha.data.copy_(values)


def prune_like_s80(folder):
    """Load ``folder`` with gates, set them to the s80 architecture, prune."""
    model = PrunableWavLM.from_pretrained(folder, prune_units="conv,head,interm").eval()
    gen = torch.Generator().manual_seed(0)
    for block, keep in zip(model.feature_extractor.conv_layers, S80_CONV):
        set_gate(block.gate, keep, gen)
    layers = model.encoder.layers
    ffn = [S80_FFN_TOTAL // len(layers) + (i < S80_FFN_TOTAL % len(layers)) for i in range(len(layers))]
    for layer, heads, units in zip(layers, S80_HEADS, ffn):
        set_gate(layer.attention.head_gate, heads, gen)
        set_gate(layer.feed_forward.unit_gate, units, gen)
    summary = model.prune()
    return model, summary


def write_result(path, result):
    """Write a benchmark's figures as JSON (folders created); returns ``result``."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def time_model(fn, wavs, repeats, warmup, device):
    """Median wall time of ``fn(wavs)`` in milliseconds."""
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn(wavs)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default="benchmarks/results/wavlm_speed_cpu.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    wavs = torch.randn(args.batch, int(args.seconds * 16000), device=device)

    with tempfile.TemporaryDirectory() as tmp:
        hf = base_plus_hf(Path(tmp) / "base_plus").to(device)
        ours = PrunableWavLM.from_pretrained(Path(tmp) / "base_plus").eval().to(device)
        pruned, summary = prune_like_s80(Path(tmp) / "base_plus")
        pruned = pruned.to(device)

    with torch.inference_mode():
        ref = torch.stack(hf(wavs, output_hidden_states=True).hidden_states)
        max_diff = float((ours(wavs) - ref).abs().max())

    rows = {}
    for name, fn, model in [
        ("transformers WavLMModel", lambda x: hf(x, output_hidden_states=True), None),
        ("PrunableWavLM unpruned", ours, ours),
        ("PrunableWavLM pruned (s80)", pruned, pruned),
    ]:
        median, times = time_model(fn, wavs, args.repeats, args.warmup, device)
        params = model.num_params() if model is not None else ours.num_params()
        macs = float(model.expected_macs()) if model is not None else float(ours.expected_macs())
        rows[name] = {"median_ms": median, "times_ms": times, "params": params, "gmacs_per_s": macs / 1e9}

    base = rows["PrunableWavLM unpruned"]
    result = {
        "command": " ".join(["python benchmarks/wavlm_speed.py"] + list(sys.argv[1:] if argv is None else argv)),
        "device": args.device,
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "batch": args.batch,
        "seconds": args.seconds,
        "torch": torch.__version__,
        "max_abs_diff_vs_transformers": max_diff,
        "rows": rows,
        "ours_vs_transformers_time_ratio": base["median_ms"] / rows["transformers WavLMModel"]["median_ms"],
        "pruned_speedup": base["median_ms"] / rows["PrunableWavLM pruned (s80)"]["median_ms"],
        "pruned_macs_ratio": base["gmacs_per_s"] / rows["PrunableWavLM pruned (s80)"]["gmacs_per_s"],
        "pruned_sparsity": summary["sparsity"],
    }
    print(f"{'model':30s} {'params (M)':>11s} {'GMACs/s':>8s} {'median ms':>10s}")
    for name, row in rows.items():
        print(f"{name:30s} {row['params'] / 1e6:11.2f} {row['gmacs_per_s']:8.2f} {row['median_ms']:10.1f}")
    print(f"ours / transformers time ratio: {result['ours_vs_transformers_time_ratio']:.3f} "
          f"(max |diff| {max_diff:.2e})")
    print(f"pruned speed-up: {result['pruned_speedup']:.2f}x measured, "
          f"{result['pruned_macs_ratio']:.2f}x fewer MACs, sparsity {summary['sparsity']:.3f}")
    return write_result(args.output, result)


if __name__ == "__main__":
    main()
