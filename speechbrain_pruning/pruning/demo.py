"""A self-contained demo: distil-and-prune a WavLM, then measure what was gained.

Runs offline on CPU in about a minute:

1. writes a randomly initialised WavLM in Hugging Face format (a reduced
   Base+ layout by default: 4 layers of width 384) to the output folder;
2. loads it twice: a frozen teacher and a student with hard-concrete gates on
   conv channels, heads, attention layers, FFN units and FFN layers;
3. trains the student for ``--steps`` steps on random audio with a
   layer-wise distillation loss plus the Lagrangian sparsity term, warming the
   target up linearly (progress bar shows expected sparsity and target);
4. prunes it physically, checks that the pruned model reproduces the gated
   one, saves and reloads it, and prints what was kept per layer, the
   parameter and MAC counts and the measured speed-up.

Usage::

    python -m speechbrain_pruning.pruning.demo --steps 150 --target 0.6 --output demo_output
"""

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ..synthetic.models import write_random_hf_wavlm
from ..wavlm import PRUNE_UNITS, PrunableWavLM
from .distill import DistillLoss
from .sparsity import SparsityController, pruning_param_groups


def median_ms(model, wavs, repeats=5):
    """Median forward time of ``model(wavs)`` in milliseconds (after one warm-up run)."""
    times = []
    with torch.inference_mode():
        model(wavs)
        for _ in range(repeats):
            start = time.perf_counter()
            model(wavs)
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def distil_and_prune(student, teacher, steps, target, objective, lr, gate_lr, lambda_lr, seconds):
    """Joint distillation + sparsity optimisation; returns the step log."""
    layers = list(range(0, len(teacher.encoder.layers) + 1, 2))
    distill = DistillLoss(layers)
    controller = SparsityController(target, warmup_steps=int(0.8 * steps), objective=objective)
    optimizer = torch.optim.AdamW(pruning_param_groups(student, controller, lr, gate_lr, lambda_lr))
    generator = torch.Generator().manual_seed(0)
    log = []
    bar = tqdm(range(steps), desc="distil+prune", unit="step", mininterval=2.0)
    for _ in bar:
        wavs = torch.randn(2, int(seconds * 16000), generator=generator)
        with torch.no_grad():
            teacher_hidden = teacher(wavs)
        loss_distill, _ = distill(student(wavs), teacher_hidden)
        sparsity = student.expected_sparsity(objective).float()
        loss = loss_distill + controller(sparsity)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        controller.after_optimizer_step()
        stats = controller.stats(sparsity)
        controller.step()
        distill_value = float(loss_distill.detach())
        log.append(dict(stats, distill=distill_value))
        bar.set_postfix(sparsity=f"{stats['expected_sparsity']:.3f}",
                        target=f"{stats['target']:.3f}", distill=f"{distill_value:.3f}")
    return log


def print_summary(summary, config):
    print("\nKept per layer (heads of %d, FFN units of %d):" % (config.num_heads, config.intermediate_size))
    print("  conv channels:", summary["conv_channels"])
    for i, layer in enumerate(summary["layers"]):
        heads = layer["kept_heads"] if layer["attention"] else "attention removed"
        ffn = layer["ffn_dim"] if layer["feed_forward"] else "FFN removed"
        print(f"  layer {i:2d}: heads {heads}  FFN {ffn}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Distil-and-prune a random WavLM on CPU.")
    parser.add_argument("--output", default="demo_output")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--target", type=float, default=0.6)
    parser.add_argument("--objective", choices=("params", "macs"), default="params")
    parser.add_argument("--hidden-size", type=int, default=384)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--ffn", type=int, default=1536)
    parser.add_argument("--seconds", type=float, default=1.0, help="audio per training example")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--gate-lr", type=float, default=0.1)
    parser.add_argument("--lambda-lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--units", default="conv,head,interm",
                        help=f"comma-separated subset of {','.join(PRUNE_UNITS)}")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    out = Path(args.output)
    source = out / "wavlm_random_hf"
    write_random_hf_wavlm(source, args.hidden_size, args.layers, args.heads, args.ffn)
    teacher = PrunableWavLM.from_pretrained(source).eval().requires_grad_(False)
    student = PrunableWavLM.from_pretrained(source, prune_units=args.units)
    dense = copy.deepcopy(teacher)
    print(f"WavLM from {source}: {teacher.num_params() / 1e6:.2f} M params, "
          f"{teacher.config.reference_macs / 1e9:.2f} GMACs per second of audio")

    log = distil_and_prune(student.train(), teacher, args.steps, args.target, args.objective,
                           args.lr, args.gate_lr, args.lambda_lr, args.seconds)
    student.eval()
    probe = torch.randn(1, 10 * 16000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        gated = student(probe)
    summary = student.prune()
    with torch.no_grad():
        diff = float((student(probe) - gated).abs().max())
    student.save_pretrained(out / "wavlm_pruned")
    reloaded = PrunableWavLM.from_pretrained(out / "wavlm_pruned").eval()

    print_summary(summary, teacher.config)
    t_dense, t_pruned = median_ms(dense, probe), median_ms(reloaded, probe)
    macs_dense, macs_pruned = float(dense.expected_macs()), float(reloaded.expected_macs())
    print(f"\nExpected sparsity at the end: {log[-1]['expected_sparsity']:.3f} "
          f"(target {args.target}, {args.objective})")
    print(f"Params: {dense.num_params() / 1e6:.2f} M -> {reloaded.num_params() / 1e6:.2f} M "
          f"(sparsity {summary['sparsity']:.3f})")
    print(f"MACs/s: {macs_dense / 1e9:.2f} G -> {macs_pruned / 1e9:.2f} G "
          f"({macs_dense / macs_pruned:.2f}x fewer)")
    print(f"10 s of audio, {args.threads} CPU threads: {t_dense:.0f} ms -> {t_pruned:.0f} ms "
          f"({t_dense / t_pruned:.2f}x faster, measured)")
    print(f"Pruned vs gated model, max |difference| of hidden states: {diff:.2e}")
    print(f"Pruned model saved to {out / 'wavlm_pruned'} (config.json + model.safetensors)")
    report = dict(summary, final_expected_sparsity=log[-1]["expected_sparsity"],
                  dense_ms=t_dense, pruned_ms=t_pruned, max_abs_diff=diff, log=log)
    (out / "demo_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
