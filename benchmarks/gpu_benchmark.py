#!/usr/bin/env python3
"""Training throughput, peak memory and inference speed at WavLM Base+ / Large sizes.

Random weights (nothing is downloaded), one run, ratios within the run:

* **training**: WavLM + MHFA (32 heads, 128-d, 256-d embedding) + a linear
  speaker classifier, ``--batch`` crops of ``--crop`` seconds, bf16 autocast,
  AdamW; *gated* (all five pruning units + the Lagrangian term) against *plain*
  fine-tuning: steps per second, utterances per second, peak GPU memory;
* **inference**: the unpruned encoder against the same encoder pruned to
  DiariZen's s80 layout (Base+; Large: the same keep ratios per component),
  batch 1 and 16, ``--seconds`` of audio, fp32 and bf16; DiariZen reports 4.0x
  on GPU for Base+ s80.

Usage::

    python benchmarks/gpu_benchmark.py --device cuda:0 --output gpu_benchmark.json
    python benchmarks/gpu_benchmark.py --tiny --device cpu   # a check of the script itself
"""

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import wavlm_speed  # noqa: E402
from wavlm_speed import S80_CONV, S80_FFN_TOTAL, S80_HEADS  # noqa: E402

from speechbrain_pruning import PrunableWavLM, WavLMConfig  # noqa: E402
from speechbrain_pruning.pruning import SparsityController  # noqa: E402
from speechbrain_pruning.speaker import MHFA  # noqa: E402
from speechbrain_pruning.wavlm import wavlm_base_plus, wavlm_large  # noqa: E402

UNITS = ("conv", "head", "attlayer", "interm", "ffnlayer")
# keep ratios of DiariZen's Base+ s80 layout, per component
S80_KEEP = {"conv": sum(S80_CONV) / (7 * 512), "head": sum(S80_HEADS) / 144,
            "interm": S80_FFN_TOTAL / (12 * 3072)}


def configs(tiny):
    if tiny:
        small = dict(conv_layers=[[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,
                     hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                     pos_conv_kernel=16, pos_conv_groups=4)
        return {"tiny (Base+ layout)": WavLMConfig(**small)}
    return {"Base+": wavlm_base_plus(), "Large": wavlm_large()}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device, dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def training_rate(config, gated, device, batch, crop, steps, warmup, dtype):
    """``(steps/s, utterances/s, peak GPU memory GiB)`` of WavLM + MHFA training steps."""
    torch.manual_seed(0)
    wavlm = PrunableWavLM(config, prune_units=UNITS if gated else ()).to(device).train()
    backend = MHFA(num_layers=config.num_layers + 1, feat_dim=config.hidden_size,
                   num_heads=32, compression_dim=128, embed_dim=256).to(device)
    classifier = torch.nn.Linear(256, 1000).to(device)
    controller = SparsityController(0.7, 1000).to(device)
    params = list(wavlm.parameters()) + list(backend.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.AdamW(params + controller.lagrangian_parameters(), lr=1e-5)
    wavs = torch.randn(batch, int(crop * 16000), device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(warmup + steps):
        sync(device)
        start = time.perf_counter()
        with autocast(device, dtype):
            logits = classifier(backend(wavlm(wavs)))
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        if gated:
            loss = loss + controller(wavlm.expected_sparsity().float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return 1 / seconds, batch / seconds, peak


def prune_to_s80(config, device):
    """The encoder with DiariZen's s80 keep ratios (random kept units), pruned."""
    model = PrunableWavLM(config, prune_units=("conv", "head", "interm")).eval()
    generator = torch.Generator().manual_seed(0)

    def keep(gate, fraction):
        values = torch.full((gate.n,), -20.0)
        count = max(1, round(gate.n * fraction))
        values[torch.randperm(gate.n, generator=generator)[:count]] = 20.0
        gate.log_alpha.data.copy_(values)

    for block in model.feature_extractor.conv_layers:
        keep(block.gate, S80_KEEP["conv"])
    for layer in model.encoder.layers:
        keep(layer.attention.head_gate, S80_KEEP["head"])
        keep(layer.feed_forward.unit_gate, S80_KEEP["interm"])
    model.prune()
    return model.to(device)


def inference_ms(model, device, batch, seconds, dtype, repeats, warmup):
    wavs = torch.randn(batch, int(seconds * 16000), device=device)
    times = []
    with torch.inference_mode(), autocast(device, dtype):
        for i in range(warmup + repeats):
            sync(device)
            start = time.perf_counter()
            model(wavs)
            sync(device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="small sizes (check the script)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--crop", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--output", default="benchmarks/results/gpu_benchmark.json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "command": "python benchmarks/gpu_benchmark.py "
              + " ".join(sys.argv[1:] if argv is None else argv), "training": {}, "inference": {}}
    for name, config in configs(args.tiny).items():
        for gated in (False, True):
            key = f"{name} {'gated (5 units)' if gated else 'plain fine-tuning'}"
            steps_s, utts_s, peak = training_rate(config, gated, device, args.batch, args.crop,
                                                  args.steps, 3, torch.bfloat16)
            result["training"][key] = {"steps_per_s": steps_s, "utterances_per_s": utts_s,
                                       "peak_gib": peak}
            print(f"train {key:38s} {steps_s:7.2f} steps/s {utts_s:8.1f} utt/s "
                  f"peak {peak if peak is None else round(peak, 2)} GiB", flush=True)
        dense = PrunableWavLM(config).eval().to(device)
        pruned = prune_to_s80(config, device)
        sparsity = 1 - pruned.num_params() / dense.num_params()
        for batch in (1, 16):
            for dtype in (torch.float32, torch.bfloat16):
                times = [inference_ms(m, device, batch, args.seconds, dtype, args.repeats, 3)
                         for m in (dense, pruned)]
                key = f"{name} batch {batch} {str(dtype).split('.')[-1]}"
                result["inference"][key] = {"unpruned_ms": times[0], "s80_ms": times[1],
                                            "speedup": times[0] / times[1],
                                            "s80_sparsity": sparsity}
                print(f"infer {key:30s} unpruned {times[0]:8.1f} ms  s80 {times[1]:8.1f} ms  "
                      f"{times[0] / times[1]:.2f}x (sparsity {sparsity:.3f})", flush=True)
        del dense, pruned
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return wavlm_speed.write_result(args.output, result)


if __name__ == "__main__":
    main()
