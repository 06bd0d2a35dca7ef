#!/usr/bin/env bash
# Every GPU check of the project in one run (< 10 minutes on one H200):
#   1. the CUDA tests (equivalence, exact pruning, bf16/fp16 Brain steps with all five
#      units, the three tiny recipes end to end with --device=cuda:0, export and reload);
#   2. benchmarks/gpu_benchmark.py: Base+ / Large training throughput (3 s crops, batch 64,
#      bf16) gated vs plain, peak memory; s80 vs unpruned inference (batch 1 / 16,
#      fp32 / bf16, 10 s).
# Results go to ${OUT:-benchmarks/results}/ (gpu_tests.txt, gpu_benchmark.json).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" | tee -a "$out/gpu.txt"
timeout 300 python -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -30 | tee "$out/gpu_tests.txt"
timeout 300 python benchmarks/gpu_benchmark.py --device cuda:0 --output "$out/gpu_benchmark.json" \
    2>&1 | tee "$out/gpu_benchmark.txt"
