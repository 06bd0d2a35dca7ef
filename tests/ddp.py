"""Run a recipe under ``torchrun --nproc_per_node=2`` (gloo, CPU) and check the run."""

import os
import re
import subprocess
import sys
from pathlib import Path

LOAD_WARNINGS = ("could not use the parameters", "Unexpected key", "Missing key")


def run_two_process_recipe(train_py, args, out, timeout=600):
    """Run ``train_py args`` on 2 CPU processes; returns the combined log text.

    Asserts: exit status 0, no parameter-load warning anywhere in the output or
    in ``out/log.txt``, and the two ranks used different random seeds.
    """
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(train_py), *args, "--distributed_backend=gloo", "--device=cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log_file = Path(out) / "log.txt"
    text = proc.stdout + proc.stderr + (log_file.read_text() if log_file.is_file() else "")
    for warning in LOAD_WARNINGS:
        assert warning not in text, f"parameter-load warning in the run: {warning}"
    seeds = re.findall(r"DDP random seeds per rank: \[(\d+), (\d+)\]", text)
    assert seeds, "rank 0 logs the seed of every rank"
    assert int(seeds[0][1]) == int(seeds[0][0]) + 1  # each rank its own gate noise
    return text
