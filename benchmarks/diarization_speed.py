#!/usr/bin/env python3
"""Diarization real-time factor and peak memory: unpruned vs 80 %-pruned WavLM.

A synthetic meeting (4 speakers, the recipes' simulator) of the longest
duration is written once and cut to the shorter ones. Each (model, duration)
pair runs in its own process so that its peak resident memory is measured
alone. Models: WavLM Base+ sizes with random weights, unpruned and pruned to
DiariZen's s80 layout (see ``wavlm_speed.py``), the DiariZen-sized EEND head,
the recipe's inference pipeline (embeddings from WavLM hidden states).

Usage::

    python benchmarks/diarization_speed.py --minutes 1 10 60 --threads 2 --step 8
    # one measurement (used internally):
    python benchmarks/diarization_speed.py --single unpruned 10 ...

Writes ``benchmarks/results/diarization_speed_cpu.json`` and prints a table.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import wavlm_speed  # noqa: E402

from speechbrain_pruning import PrunableWavLM  # noqa: E402
from speechbrain_pruning.diarization import EENDHead  # noqa: E402
from speechbrain_pruning.inference import build_diarizer  # noqa: E402
from speechbrain_pruning.synthetic.meeting import simulate_meeting  # noqa: E402


def write_meetings(folder, minutes, seed=0):
    """One long synthetic meeting, cut to every requested duration (WAV files)."""
    rng = np.random.default_rng(seed)
    audio, _ = simulate_meeting(rng, num_speakers=4, duration=60.0 * max(minutes))
    paths = {}
    for m in minutes:
        paths[m] = folder / f"meeting_{m}min.wav"
        sf.write(paths[m], audio[: int(m * 60 * 16000)], 16000)
    return paths


def single(args):
    """Diarize one file with one model; print JSON with time and peak memory."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    folder = Path(args.workdir)
    if not (folder / "base_plus" / "config.json").is_file():
        wavlm_speed.base_plus_hf(folder / "base_plus")
    if args.single[0] == "pruned":
        wavlm, _ = wavlm_speed.prune_like_s80(folder / "base_plus")
    else:
        wavlm = PrunableWavLM.from_pretrained(folder / "base_plus")
    eend = EENDHead(num_layers=13, feat_dim=768)
    wavlm.eval(), eend.eval()
    params = dict(window=args.window, step=args.step, batch_size=args.batch_size,
                  embedding_batch_size=args.batch_size, embedding_layer=6)
    diarize = build_diarizer(wavlm, eend, None, params)
    path = Path(args.single[1])
    duration = sf.info(str(path)).duration
    start = time.perf_counter()
    with torch.inference_mode():
        annotation = diarize(str(path), num_speakers=4)
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"model": args.single[0], "audio_s": duration, "seconds": elapsed,
                      "rtf": elapsed / duration, "peak_rss_mb": peak_mb,
                      "params": wavlm.num_params(), "gmacs_per_s": float(wavlm.expected_macs()) / 1e9,
                      "segments": len(annotation)}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--step", type=float, default=8.0)
    parser.add_argument("--batch-size", type=int, default=4, help="windows / crops per batch")
    parser.add_argument("--max-unpruned-minutes", type=float, default=None,
                        help="skip the unpruned model on longer files (CPU time)")
    parser.add_argument("--single", nargs=2, metavar=("MODEL", "WAV"))
    parser.add_argument("--workdir")
    parser.add_argument("--output", default="benchmarks/results/diarization_speed_cpu.json")
    args = parser.parse_args(argv)
    if args.single:
        return single(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_meetings(tmp, args.minutes)
        wavlm_speed.base_plus_hf(tmp / "base_plus")
        for minutes in args.minutes:
            for model in ("unpruned", "pruned"):
                if model == "unpruned" and args.max_unpruned_minutes is not None \
                        and minutes > args.max_unpruned_minutes:
                    print(f"{minutes:5g} min  unpruned   skipped (--max-unpruned-minutes)")
                    continue
                cmd = [sys.executable, __file__, "--single", model, str(paths[minutes]),
                       "--workdir", str(tmp), "--threads", str(args.threads),
                       "--window", str(args.window), "--step", str(args.step),
                       "--batch-size", str(args.batch_size)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
                row["minutes"] = minutes
                rows.append(row)
                print(f"{minutes:5g} min  {model:9s}  RTF {row['rtf']:.3f}  "
                      f"peak {row['peak_rss_mb']:.0f} MB  ({row['seconds']:.0f} s)", flush=True)
    result = {"command": " ".join(["python benchmarks/diarization_speed.py"]
                                  + (sys.argv[1:] if argv is None else list(argv))),
              "threads": args.threads, "window": args.window, "step": args.step,
              "batch_size": args.batch_size,
              "torch": torch.__version__, "rows": rows}
    return wavlm_speed.write_result(args.output, result)


if __name__ == "__main__":
    main()
