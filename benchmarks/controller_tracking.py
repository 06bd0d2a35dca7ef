#!/usr/bin/env python3
"""Does the Lagrangian controller reach its target at the shipped configs' rates?

A gate-level simulation of in-situ pruning, cheap enough to run the shipped
warm-up lengths step for step: the gates of WavLM Base+ (7 x 512 conv
channels, 12 x 12 heads, 12 attention sublayers, 12 x 3072 FFN units, 12 FFN
sublayers; hard-concrete, the library's initialisation), each unit weighted by
the parameters it carries; a task loss that resists pruning (every unit has an
importance, and the loss is the importance lost under *sampled* masks, so the
gate gradients are as noisy as in training); the library's
``SparsityController`` and the PruningBrain's ``reg`` optimizer (AdamW, gates
at ``gate_lr``, multipliers at ``lambda_lr`` by gradient ascent), with or
without the ``lambda1 >= 0`` clamp.

No WavLM forward pass is run, so the figures say how the *controller* tracks
its schedule at the shipped learning rates and warm-up lengths, not how a
task trains.

Usage::

    python benchmarks/controller_tracking.py            # every shipped configuration
    python benchmarks/controller_tracking.py --quick    # the two used in the tests
"""

import argparse
import json
import math
import time

import torch

from speechbrain_pruning.pruning.hardconcrete import HardConcrete
from speechbrain_pruning.pruning.sparsity import SparsityController

# name: (target, warm-up steps, gate_lr, lambda_lr), from the recipe yaml files
SHIPPED = {
    "VoxCeleb MHFA/ECAPA Base+": (0.7, 20000, 0.05, 0.05),
    "VoxCeleb MHFA Large": (0.7, 270000, 0.05, 0.05),
    "ASVspoof5 CM (Base, Base+, Large)": (0.1, 57000, 0.05, 0.05),
    "Diarization Base+/Large (AMI, DIHARD3, CHiME-6)": (0.8, 13500, 0.02, 0.05),
}
QUICK = ("VoxCeleb MHFA/ECAPA Base+", "Diarization Base+/Large (AMI, DIHARD3, CHiME-6)")


def base_plus_gates(shrink=8):
    """``[(n, init_mean, params per unit)]`` for WavLM Base+'s gate groups.

    Conv channels and FFN units are ``shrink`` times fewer, each carrying
    ``shrink`` times the parameters: the same parameter shares, and under
    Adam (per-parameter step sizes) the same dynamics per gate, at a fraction
    of the cost.
    """
    d, ffn, heads, head_dim = 768, 3072, 12, 64
    conv = [(512 // shrink, 0.01, shrink * 512 * 3)] * 7  # ~ in_channels x kernel per channel
    layers = []
    for _ in range(12):
        layers.append((heads, 0.01, 4 * d * head_dim))  # q, k, v, out rows of one head
        layers.append((ffn // shrink, 0.17, shrink * (2 * d + 1)))  # FFN units: keep 0.83
    sublayers = [(12, 0.01, 4 * d)]  # attention / FFN layer gates: biases and norms
    return conv + layers + sublayers * 2


class GateToy(torch.nn.Module):
    """All gates as one vectorised hard-concrete group, with parameter weights and
    importances per unit (each group's initialisation as in the library)."""

    def __init__(self, groups, seed=0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.gate = HardConcrete(sum(n for n, _, _ in groups))
        with torch.no_grad():
            init = torch.cat([torch.full((n,), math.log((1 - m) / m)) for n, m, _ in groups])
            self.gate.log_alpha.copy_(init + 0.01 * torch.randn(init.shape, generator=generator))
        self.weights = torch.cat([torch.full((n,), float(w)) for n, _, w in groups])
        self.total = float(self.weights.sum())
        # importances: log-normal across units, as real units differ a lot
        self.importance = torch.exp(torch.randn(self.weights.shape, generator=generator))

    def expected_sparsity(self):
        return 1.0 - (self.gate.keep_probabilities() * self.weights).sum() / self.total

    def task_loss(self, scale):
        """Importance lost under sampled masks (noisy, like a task gradient)."""
        return scale * ((1.0 - self.gate()) * self.importance * self.weights).sum() / self.total


def simulate(target, warmup, gate_lr, lambda_lr, clamp, extra=None, task_scale=1.0, seed=0,
             record_every=100):
    """Run warm-up + ``extra`` steps; returns the sparsity trajectory and summary figures."""
    torch.manual_seed(seed)
    toy = GateToy(base_plus_gates(), seed).train()
    controller = SparsityController(target, warmup, schedule="linear", clamp_lambda1=clamp)
    optimizer = torch.optim.AdamW(
        [{"params": [toy.gate.log_alpha], "lr": gate_lr},
         {"params": controller.lagrangian_parameters(), "lr": abs(lambda_lr)}],
        weight_decay=0.0,
    )
    extra = max(2000, warmup // 10) if extra is None else extra
    history, lag = [], 0.0
    for step in range(warmup + extra):
        expected = toy.expected_sparsity()
        loss = toy.task_loss(task_scale) + controller(expected.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        controller.after_optimizer_step()
        value, goal = float(expected.detach()), controller.current_target()
        controller.step()
        if step >= warmup // 10:  # tracking error after the first 10 % of the warm-up
            lag = max(lag, abs(value - goal))
        if step % record_every == 0:
            history.append((step, goal, value))
    with torch.no_grad():
        final = float(toy.expected_sparsity())
        after = [v for s, _, v in history if s >= warmup]
    return {
        "final": final, "error": final - target,
        "max_error_after_warmup": max(abs(v - target) for v in after) if after else math.nan,
        "max_tracking_error": lag, "history": history,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the two configs of the tests")
    parser.add_argument("--json", help="write the figures (without trajectories) here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for name, (target, warmup, gate_lr, lambda_lr) in SHIPPED.items():
        if args.quick and name not in QUICK:
            continue
        for clamp in (True, False):
            start = time.perf_counter()
            result = simulate(target, warmup, gate_lr, lambda_lr, clamp)
            result.pop("history")
            rows[f"{name} | clamp={clamp}"] = result
            print(f"{name:48s} clamp={clamp!s:5s} target {target:.2f}: final "
                  f"{result['final']:.4f} (error {100 * result['error']:+.2f} pt), max |error| "
                  f"after warm-up {100 * result['max_error_after_warmup']:.2f} pt, max lag "
                  f"during warm-up {100 * result['max_tracking_error']:.2f} pt "
                  f"[{time.perf_counter() - start:.0f} s]", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fout:
            json.dump(rows, fout, indent=2)


if __name__ == "__main__":
    main()
