#!/usr/bin/env python3
"""The collection's main job on CPU, offline, in a few minutes.

1. writes a synthetic multi-speaker corpus in the VoxCeleb layout (with a
   ``veri_test2.txt`` trial list) and a randomly initialised small WavLM in
   Hugging Face format (nothing is downloaded);
2. runs this recipe's ``train.py`` with ``hparams/tiny_cpu.yaml``: data
   preparation, WavLM + MHFA training with in-situ pruning to 50 % sparsity,
   trial scoring, physical pruning, export;
3. reloads the exported folder through ``PrunedSpeakerRecognition`` and
   prints EER / minDCF before and after physical pruning, parameters, MACs
   and the measured speed-up of the pruned WavLM.

Usage::

    python recipes/VoxCeleb/SpeakerRec/demo.py [--output demo_output] [--epochs 20]
"""

from pathlib import Path

import torch

from speechbrain_pruning import PrunableWavLM
from speechbrain_pruning.inference import PrunedSpeakerRecognition
from speechbrain_pruning.pruning.demo import median_ms
from speechbrain_pruning.synthetic import make_voxceleb_mini
from speechbrain_pruning.synthetic.demo import run_demo, write_summary

HERE = Path(__file__).resolve().parent


def main(argv=None):
    args, out, results = run_demo(
        argv, __doc__.split("\n\n")[0], HERE,
        lambda folder, args: make_voxceleb_mini(folder, num_speakers=args.speakers,
                                                num_test_speakers=8, videos_per_speaker=2,
                                                utts_per_video=4, num_trials=400),
        output="demo_output", epochs=20,
        add_arguments=lambda parser: parser.add_argument(
            "--speakers", type=int, default=16, help="training speakers"),
        recipe_args=lambda args: [f"--out_n_neurons={args.speakers}"],
    )
    corpus, source = out / "corpus", out / "wavlm_tiny_random"
    exported = out / "experiment" / "exported"
    model = PrunedSpeakerRecognition.from_hparams(source=exported, savedir=exported)
    dense = PrunableWavLM.from_pretrained(source).eval()
    pruned = model.mods.wavlm.eval()
    probe = torch.randn(1, 10 * 16000, generator=torch.Generator().manual_seed(0))
    t_dense, t_pruned = median_ms(dense, probe), median_ms(pruned, probe)
    name = next(iter(results["gated"]))
    gated, final = results["gated"][name], results["exported"][name]
    print("\n================ demo summary ================")
    print(f"trial list {name}: EER {gated['eer']:.2f} % / minDCF {gated['min_dcf']:.3f} "
          f"before physical pruning (gated model)")
    print(f"trial list {name}: EER {final['eer']:.2f} % / minDCF {final['min_dcf']:.3f} "
          f"after pruning, through PrunedSpeakerRecognition")
    print(f"WavLM params: {dense.num_params() / 1e6:.2f} M -> {pruned.num_params() / 1e6:.2f} M "
          f"(sparsity {results['sparsity']:.3f})")
    print(f"WavLM MACs per second of audio: {dense.config.reference_macs / 1e9:.3f} G -> "
          f"{results['macs'] / 1e9:.3f} G")
    print(f"10 s of audio on {args.threads} CPU threads: {t_dense:.0f} ms -> {t_pruned:.0f} ms "
          f"({t_dense / t_pruned:.2f}x faster, measured)")
    score, same = model.verify_files(*_two_files(corpus))
    print(f"verify_files on two test utterances: score {score:.3f}, same speaker: {same}")
    onnx = results.get("onnx")
    if onnx:
        line = f"ONNX: model.onnx = PyTorch within {onnx['max_abs_diff']:.1e}"
        effect = (onnx.get("int8") or {}).get("effect")
        if effect:
            line += (f"; int8 embeddings vs fp32 over {effect['num_files']} files: cosine mean "
                     f"{effect['cosine_mean']:.4f}, min {effect['cosine_min']:.4f}")
        print(line)
    print(f"exported model: {exported} (README.md, pruning_report.png, hyperparams.yaml)")
    results.update(dense_ms=t_dense, pruned_ms=t_pruned)
    write_summary(out, results)
    return results


def _two_files(corpus):
    trials = (corpus / "veri_test2.txt").read_text(encoding="utf-8").split("\n")[0].split()
    return corpus / "wav" / trials[1], corpus / "wav" / trials[2]


if __name__ == "__main__":
    main()
