#!/usr/bin/env python3
"""CPU demo of the anti-spoofing recipe, offline, in a few minutes.

1. writes a synthetic bona fide / spoof corpus in the ASVspoof5 layout
   (protocols, ``flac_T/``, ``flac_D/``, ``flac_E_eval/``; six attack families,
   codecs on dev/eval) and a randomly initialised small WavLM (nothing is
   downloaded);
2. runs ``train.py`` with ``hparams/tiny_cpu.yaml``: protocol preparation,
   WavLM + MHFA training with in-situ pruning, dev/eval scoring with per-attack
   and per-codec tables, physical pruning, export;
3. reloads the export through ``PrunedSpoofDetector`` and prints the figures.

Usage::

    python recipes/ASVspoof5/CM/demo.py [--output demo_output_cm] [--epochs 12]
"""

import argparse
import importlib.util
import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# the recipe of this folder, loaded by path (every recipe's script is named train.py)
_spec = importlib.util.spec_from_file_location("asvspoof5_train", HERE / "train.py")
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)

from speechbrain_pruning.synthetic import write_tiny_wavlm
from speechbrain_pruning.inference import PrunedSpoofDetector
from speechbrain_pruning.synthetic.spoof import make_asvspoof5_mini


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="demo_output_cm")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args, extra = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.output).resolve()
    print(f"[1/3] synthetic ASVspoof5-layout corpus and a random WavLM in {out}")
    make_asvspoof5_mini(out / "asvspoof5_mini")
    source = write_tiny_wavlm(out / "wavlm_tiny_random")
    print("[2/3] training WavLM + MHFA with in-situ pruning (recipes/ASVspoof5/CM)")
    results = train.main([
        str(HERE / "hparams" / "tiny_cpu.yaml"), f"--data_folder={out / 'asvspoof5_mini'}",
        f"--wavlm_source={source}", f"--output_folder={out / 'experiment'}",
        f"--number_of_epochs={args.epochs}", *extra,
    ])
    print("[3/3] reloading the exported detector")
    exported = out / "experiment" / "exported"
    model = PrunedSpoofDetector.from_hparams(source=exported, savedir=exported)
    first = sorted((out / "asvspoof5_mini" / "flac_E_eval").glob("*.flac"))[0]
    print("\n================ demo summary ================")
    for split, res in results["gated"].items():
        print(f"{split}: EER {res['eer']:.2f} %, minDCF {res['min_dcf']:.3f}, "
              f"actDCF {res['act_dcf']:.3f}, Cllr {res['cllr']:.3f} (before physical pruning)")
    for split, res in results["exported"].items():
        print(f"{split}: EER {res['eer']:.2f} %, minDCF {res['min_dcf']:.3f} "
              f"(after pruning, through PrunedSpoofDetector)")
    print(f"WavLM params {results['reference_params'] / 1e6:.2f} M -> {results['params'] / 1e6:.2f} M "
          f"(sparsity {results['sparsity']:.3f}), {results['macs'] / 1e9:.3f} GMACs/s")
    print(f"{first.name}: score {model.score_file(first):.3f} -> {model.classify_file(first)}")
    print(f"per-attack / per-codec tables: {out / 'experiment' / 'scores_gated'}/results_eval.md")
    (out / "demo_summary.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    return results


if __name__ == "__main__":
    main()
