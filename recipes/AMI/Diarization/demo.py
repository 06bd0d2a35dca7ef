#!/usr/bin/env python3
"""CPU demo of the diarization recipe, offline, in a few minutes.

1. simulates meetings (2-4 synthetic speakers, pauses, overlaps) in the AMI
   corpus + AMI diarization-setup layout and writes a random small WavLM;
2. runs ``train.py`` with ``hparams/tiny_cpu.yaml`` (in-situ pruning by
   default; ``--teacher_source=<wavlm> --task_weight=0`` for distillation):
   preparation, training, diarization of the test meetings, DER, export;
3. diarizes one test meeting through ``PrunedDiarizer`` and writes its RTTM.

Usage::

    python recipes/AMI/Diarization/demo.py [--output demo_output_diar] [--epochs 15]
"""

import argparse
import importlib.util
import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# the recipe of this folder, loaded by path (every recipe's script is named train.py)
_spec = importlib.util.spec_from_file_location("diarization_train", HERE / "train.py")
train = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train)

from speechbrain_pruning.synthetic import write_tiny_wavlm
from speechbrain_pruning.inference import PrunedDiarizer
from speechbrain_pruning.synthetic.meeting import make_meeting_corpus


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="demo_output_diar")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args, extra = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.output).resolve()
    print(f"[1/3] simulated AMI-layout meetings and a random WavLM in {out}")
    corpus = make_meeting_corpus(out / "ami_mini", layout="ami",
                                 splits={"train": 8, "dev": 2, "test": 2}, duration=30.0)
    source = write_tiny_wavlm(out / "wavlm_tiny_random")
    print("[2/3] training WavLM + Conformer EEND with pruning (recipes/AMI/Diarization)")
    results = train.main([
        str(HERE / "hparams" / "tiny_cpu.yaml"), f"--data_folder={out / 'ami_mini'}",
        f"--wavlm_source={source}", f"--output_folder={out / 'experiment'}",
        f"--number_of_epochs={args.epochs}", *extra,
    ])
    print("[3/3] PrunedDiarizer on one test meeting")
    exported = out / "experiment" / "exported"
    model = PrunedDiarizer.from_hparams(source=exported, savedir=exported)
    meeting = Path(corpus["audio"][corpus["splits"]["test"][0]])
    annotation = model.diarize_file(meeting)
    model.write_rttm(annotation, out / f"{meeting.stem}.rttm")
    print("\n================ demo summary ================")
    for collar in (0.0, 0.25):
        gated, final = results["gated"][collar], results["exported"][collar]
        print(f"test DER (collar +-{collar:g} s): {gated['der %']:.2f} % before physical pruning, "
              f"{final['der %']:.2f} % after (missed {final['missed %']:.1f}, false alarm "
              f"{final['false alarm %']:.1f}, confusion {final['confusion %']:.1f})")
    print(f"WavLM params {results['reference_params'] / 1e6:.2f} M -> {results['params'] / 1e6:.2f} M "
          f"(sparsity {results['sparsity']:.3f}), {results['macs'] / 1e9:.3f} GMACs/s")
    print(f"{meeting.name}: {len(annotation.labels())} speakers, RTTM in {out / (meeting.stem + '.rttm')}")
    (out / "demo_summary.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    return results


if __name__ == "__main__":
    main()
