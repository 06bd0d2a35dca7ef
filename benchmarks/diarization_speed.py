#!/usr/bin/env python3
"""Diarization real-time factor and peak memory through ``PrunedDiarizer``, at the recipe's
defaults, with the speaker-embedding model in the loop.

Every configuration is a real exported diarizer folder (written once with
random weights at WavLM Base+ sizes): segmentation = WavLM Base+ (unpruned, or
pruned to DiariZen's s80 layout, see ``wavlm_speed.py``) + the recipe's EEND
head; speaker embedder = an exported ``PrunedSpeakerRecognition`` (the VoxCeleb
recipe's model: a WavLM of the same size + MHFA) copied into the folder; VBx
with a PLDA trained on the embedder's embeddings of a synthetic meeting. Each
(configuration, duration) runs in its own process, through
``PrunedDiarizer.from_hparams(folder).diarize_file``, so its peak resident
memory is measured alone. The audio is a synthetic 4-speaker meeting (the
recipes' simulator) cut to each duration.

Configurations (``--configs``):

* ``s80``: the s80 Base+ pipeline at the recipe's defaults (8 s windows,
  2 s step, one segmentation pass, frame-pooled MHFA embeddings, VBx,
  ``precision: auto``, i.e. bf16 on a CPU with native bf16, else fp32);
* ``s80-fp32`` / ``s80-bf16`` / ``s80-int8``: the same at a forced precision
  (int8: dynamic quantisation of the segmentation model's linear layers);
* ``unpruned``: the unpruned Base+ pipeline at the recipe's defaults;
* ``*-diarizen``: DiariZen's own inference settings (8 s windows, 0.8 s step).

Usage::

    python benchmarks/diarization_speed.py                     # 2 and 60 minutes, 2 threads
    python benchmarks/diarization_speed.py --minutes 2 --configs s80 s80-int8 unpruned

Writes ``benchmarks/results/diarization_speed_cpu.json`` and prints a table.
Rows at another precision than fp32 also give the DER of their output against
the fp32 output of the same model and file (collar 0): the effect of the
precision on the diarization. With random weights this is a worst case (the
powerset decisions of an untrained model are near ties).
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
from pyannote.core import Annotation, Segment

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONFIGS = {
    "s80": dict(model="s80", step=2.0, precision="auto"),
    "s80-fp32": dict(model="s80", step=2.0, precision="fp32"),
    "s80-bf16": dict(model="s80", step=2.0, precision="bf16"),
    "s80-int8": dict(model="s80", step=2.0, precision="int8"),
    "unpruned": dict(model="unpruned", step=2.0, precision="auto"),
    "unpruned-fp32": dict(model="unpruned", step=2.0, precision="fp32"),
    "s80-diarizen": dict(model="s80", step=0.8, precision="auto"),
    "s80-fp32-diarizen": dict(model="s80", step=0.8, precision="fp32"),
    "unpruned-diarizen": dict(model="unpruned", step=0.8, precision="auto"),
    "unpruned-fp32-diarizen": dict(model="unpruned", step=0.8, precision="fp32"),
}


def write_meeting(folder, minutes, seed=0):
    """One synthetic meeting per duration (WAV) and the reference RTTM of the longest."""
    from speechbrain_pruning.diarization.rttm import write_rttm
    from speechbrain_pruning.synthetic.meeting import simulate_meeting

    rng = np.random.default_rng(seed)
    audio, turns = simulate_meeting(rng, num_speakers=4, duration=60.0 * max(minutes))
    paths = {}
    for m in minutes:
        paths[m] = folder / f"meeting_{m:g}min.wav"
        sf.write(paths[m], audio[: int(m * 60 * 16000)], 16000)
    reference = Annotation(uri="meeting")
    for start, end, speaker in turns:
        reference[Segment(start, end)] = speaker
    write_rttm(reference, folder / "meeting.rttm")
    return paths


def export_diarizer(workdir, model, meeting_wav):
    """An exported diarizer folder (random weights) for ``model`` in unpruned | s80."""
    import wavlm_speed  # transformers: imported here, not in the measured processes

    from speechbrain_pruning import PrunableWavLM
    from speechbrain_pruning.diarization import EENDHead
    from speechbrain_pruning.diarization.embedders import load_embedder, train_plda_on_recordings
    from speechbrain_pruning.pruning.export import export_model
    from speechbrain_pruning.speaker import MHFA

    folder = workdir / f"diarizer_{model}"
    if (folder / "hyperparams.yaml").is_file():
        return folder

    def wavlm():
        if model == "s80":
            return wavlm_speed.prune_like_s80(workdir / "base_plus")[0]
        return PrunableWavLM.from_pretrained(workdir / "base_plus")

    torch.manual_seed(0)
    mhfa = dict(num_layers=13, feat_dim=768)
    export_model(workdir / f"speaker_{model}", wavlm(), {"backend": MHFA(**mhfa)},
                 {"backend": ("speechbrain_pruning.speaker.MHFA", mhfa)},
                 "PrunedSpeakerRecognition", hparams={"threshold": 0.5})
    csv = workdir / "recordings.csv"
    csv.write_text(f"ID,wav,rttm\nmeeting,{meeting_wav},{workdir / 'meeting.rttm'}\n")
    plda = train_plda_on_recordings(load_embedder(workdir / f"speaker_{model}"), csv,
                                    progress=False)
    plda.save(workdir / f"plda_{model}.safetensors")
    recipe = _recipe_inference()
    recipe.update(embedder="embedder", plda="plda.safetensors", clustering="vbx")
    eend_kwargs = dict(num_layers=13, feat_dim=768)
    export_model(folder, wavlm(), {"eend": EENDHead(**eend_kwargs)},
                 {"eend": ("speechbrain_pruning.diarization.EENDHead", eend_kwargs)},
                 "PrunedDiarizer", hparams=recipe,
                 extra_files={"embedder": workdir / f"speaker_{model}",
                              "plda.safetensors": workdir / f"plda_{model}.safetensors"})
    return folder


def _recipe_inference():
    """The ``inference`` block of the AMI Base+ recipe (the defaults benchmarked)."""
    import yaml

    text = (HERE.parent / "recipes/AMI/Diarization/hparams/wavlm_base_plus.yaml").read_text()
    block = text[text.index("\ninference:"):text.index("\ncheckpointer:")]
    return dict(yaml.safe_load(block)["inference"])


def single(args):
    """Diarize one file with one configuration; print JSON with time and peak memory."""
    from speechbrain_pruning.inference import PrunedDiarizer

    torch.set_num_threads(args.threads)
    config = CONFIGS[args.single[0]]
    path = Path(args.single[1])
    model = PrunedDiarizer.from_hparams(source=Path(args.workdir) / f"diarizer_{config['model']}")
    model.set_params(step=config["step"], inference_precision=config["precision"], progress=False)
    duration = sf.info(str(path)).duration
    start = time.perf_counter()
    output = model(str(path))
    elapsed = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    rttm = Path(args.workdir) / f"{args.single[0]}_{path.stem}.rttm"
    output.write_rttm(rttm)
    from speechbrain_pruning.diarization.interface import resolve_precision

    print(json.dumps({"config": args.single[0], **config,
                      "resolved_precision": resolve_precision(config["precision"]),
                      "audio_s": duration,
                      "seconds": elapsed, "rtf": elapsed / duration, "peak_rss_mb": peak_mb,
                      "params": model.mods.wavlm.num_params(),
                      "speakers": len(output.speaker_diarization.labels()),
                      "rttm": str(rttm)}))


def peak_rss_mb():
    """Peak resident memory of this process (``VmHWM``), in MB.

    Not ``getrusage``: its ``ru_maxrss`` survives ``fork`` + ``exec``, so a
    child of a large parent would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def der_between(reference_rttm, hypothesis_rttm):
    """DER % (collar 0) of one output against another."""
    from speechbrain_pruning.diarization.der import der_report
    from speechbrain_pruning.diarization.rttm import read_rttm

    ref, hyp = read_rttm(reference_rttm), read_rttm(hypothesis_rttm)
    return float(der_report(ref, hyp).iloc[-1]["der %"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[2, 60])
    parser.add_argument("--configs", nargs="+",
                        default=["s80-fp32", "s80", "s80-int8", "unpruned-fp32", "unpruned"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved repetitions on files of <= 10 minutes (min RTF kept)")
    parser.add_argument("--max-unpruned-minutes", type=float, default=2,
                        help="skip unpruned configurations on longer files (CPU time)")
    parser.add_argument("--single", nargs=2, metavar=("CONFIG", "WAV"))
    parser.add_argument("--workdir")
    parser.add_argument("--output", default="benchmarks/results/diarization_speed_cpu.json")
    args = parser.parse_args(argv)
    if args.single:
        return single(args)
    import wavlm_speed

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_meeting(tmp, args.minutes)
        wavlm_speed.base_plus_hf(tmp / "base_plus")
        shortest = paths[min(args.minutes)]
        for model in sorted({CONFIGS[c]["model"] for c in args.configs}):
            export_diarizer(tmp, model, shortest)
        for minutes in args.minutes:
            names = [n for n in args.configs if not (CONFIGS[n]["model"] == "unpruned"
                                                     and minutes > args.max_unpruned_minutes)]
            rounds = args.rounds if minutes <= 10 else 1
            runs = {name: [] for name in names}
            for _ in range(rounds):  # interleaved: machine noise hits every configuration
                for name in names:
                    cmd = [sys.executable, __file__, "--single", name, str(paths[minutes]),
                           "--workdir", str(tmp), "--threads", str(args.threads)]
                    out = subprocess.run(cmd, capture_output=True, text=True)
                    if out.returncode:
                        raise RuntimeError(out.stderr[-3000:])
                    runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            outputs = {}
            for name in names:
                row = min(runs[name], key=lambda r: r["rtf"])
                row.update(minutes=minutes, rtf_all=[r["rtf"] for r in runs[name]],
                           peak_rss_mb=max(r["peak_rss_mb"] for r in runs[name]))
                outputs[name] = row.pop("rttm")
                config = CONFIGS[name]
                fp32 = [n for n in names if CONFIGS[n]["model"] == config["model"]
                        and CONFIGS[n]["step"] == config["step"]
                        and CONFIGS[n]["precision"] == "fp32"]
                if row["resolved_precision"] != "fp32" and fp32:
                    row["der_vs_fp32 %"] = der_between(outputs[fp32[0]], outputs[name])
                rows.append(row)
                extra = f"  DER vs fp32 {row['der_vs_fp32 %']:.2f} %" if "der_vs_fp32 %" in row \
                    else ""
                print(f"{minutes:5g} min  {name:18s} RTF {row['rtf']:.3f} "
                      f"({', '.join(f'{r:.3f}' for r in row['rtf_all'])})  "
                      f"peak {row['peak_rss_mb']:.0f} MB{extra}", flush=True)
            for name in args.configs:
                if name not in names:
                    print(f"{minutes:5g} min  {name:18s} skipped (--max-unpruned-minutes)")
    result = {"command": " ".join(["python benchmarks/diarization_speed.py"]
                                  + (sys.argv[1:] if argv is None else list(argv))),
              "threads": args.threads, "inference": _recipe_inference(),
              "torch": torch.__version__, "rows": rows}
    return wavlm_speed.write_result(args.output, result)


if __name__ == "__main__":
    main()
