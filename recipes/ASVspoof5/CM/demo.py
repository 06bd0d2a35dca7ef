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

from pathlib import Path

from speechbrain_pruning.inference import PrunedSpoofDetector
from speechbrain_pruning.synthetic.demo import run_demo, write_summary
from speechbrain_pruning.synthetic.spoof import make_asvspoof5_mini

HERE = Path(__file__).resolve().parent


def main(argv=None):
    args, out, results = run_demo(argv, __doc__.split("\n\n")[0], HERE,
                                  lambda folder, args: make_asvspoof5_mini(folder),
                                  output="demo_output_cm", epochs=12)
    exported = out / "experiment" / "exported"
    model = PrunedSpoofDetector.from_hparams(source=exported, savedir=exported)
    first = sorted((out / "corpus" / "flac_E_eval").glob("*.flac"))[0]
    print("\n================ demo summary ================")
    for split, res in results["gated"].items():
        print(f"{split}: EER {res['eer']:.2f} %, minDCF {res['min_dcf']:.3f}, "
              f"actDCF {res['act_dcf']:.3f}, Cllr {res['cllr']:.3f} (before physical pruning)")
        if "calibrated" in res:
            cal = res["calibrated"]
            print(f"{split}: calibrated on dev: actDCF {cal['act_dcf']:.3f}, Cllr {cal['cllr']:.3f}"
                  f", min Cllr {cal['min_cllr']:.3f}")
    for split, res in results["exported"].items():
        print(f"{split}: EER {res['eer']:.2f} %, minDCF {res['min_dcf']:.3f} "
              f"(after pruning, through PrunedSpoofDetector)")
    print(f"WavLM params {results['reference_params'] / 1e6:.2f} M -> {results['params'] / 1e6:.2f} M "
          f"(sparsity {results['sparsity']:.3f}), {results['macs'] / 1e9:.3f} GMACs/s")
    print(f"{first.name}: LLR {model.score_file(first):.3f} (raw score "
          f"{model.raw_score_file(first):.3f}) -> {model.classify_file(first)}")
    effect = ((results.get("onnx") or {}).get("int8") or {}).get("effect")
    if effect:
        print(f"int8 ONNX vs fp32 on {effect['num_files']} eval files: mean |score change| "
              f"{effect['score_change_mean']:.4f}, decisions flipped "
              f"{effect.get('decision_flips', 0.0):.1%}")
    print(f"per-attack / per-codec tables: {out / 'experiment' / 'scores_gated'}/results_eval.md")
    write_summary(out, results)
    return results


if __name__ == "__main__":
    main()
