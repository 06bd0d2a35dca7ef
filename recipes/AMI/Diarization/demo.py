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

from pathlib import Path

from speechbrain_pruning.inference import PrunedDiarizer
from speechbrain_pruning.synthetic.demo import run_demo, write_summary
from speechbrain_pruning.synthetic.meeting import make_meeting_corpus
from speechbrain_pruning.synthetic.models import write_tiny_speaker_model

HERE = Path(__file__).resolve().parent


def main(argv=None):
    corpus = {}

    def make_corpus(folder, args):
        corpus.update(make_meeting_corpus(folder, layout="ami", duration=30.0,
                                          splits={"train": 8, "dev": 2, "test": 2}))

    def speaker_model(args):  # stands in for the VoxCeleb recipe's exported model
        folder = Path(args.output).resolve() / "speaker_model_tiny_random"
        return [f"--embedding_source={write_tiny_speaker_model(folder)}"]

    args, out, results = run_demo(argv, __doc__.split("\n\n")[0], HERE, make_corpus,
                                  output="demo_output_diar", epochs=15, recipe_args=speaker_model)
    exported = out / "experiment" / "exported"
    model = PrunedDiarizer.from_hparams(source=exported, savedir=exported)
    meeting = Path(corpus["audio"][corpus["splits"]["test"][0]])
    output = model(meeting)
    annotation = output.speaker_diarization
    output.write_rttm(out / f"{meeting.stem}.rttm")
    output.write_json(out / f"{meeting.stem}.json")
    print("\n================ demo summary ================")
    for collar in (0.0, 0.25):
        gated, final = results["gated"][collar], results["exported"][collar]
        print(f"test DER (collar +-{collar:g} s): {gated['der %']:.2f} % before physical pruning, "
              f"{final['der %']:.2f} % after (missed {final['missed %']:.1f}, false alarm "
              f"{final['false alarm %']:.1f}, confusion {final['confusion %']:.1f}), "
              f"JER {final['jer %']:.2f} %")
        for key, what in (("exported_tuned", "after dev tuning"),
                          ("exported_bf16", "exported, bf16 inference")):
            if key in results:
                print(f"    {what}: DER {results[key][collar]['der %']:.2f} %, "
                      f"JER {results[key][collar]['jer %']:.2f} %")
    if "tuning" in results:
        t = results["tuning"]
        print(f"dev tuning: DER {t['default_der']:.2f} % -> {t['tuned_der']:.2f} % with {t['tuned']}")
    print(f"WavLM params {results['reference_params'] / 1e6:.2f} M -> {results['params'] / 1e6:.2f} M "
          f"(sparsity {results['sparsity']:.3f}), {results['macs'] / 1e9:.3f} GMACs/s")
    print(f"{meeting.name}: {len(annotation.labels())} speakers, RTTM in {out / (meeting.stem + '.rttm')}")
    write_summary(out, results)
    return results


if __name__ == "__main__":
    main()
