"""Command line: a folder (or list) of audio files -> one RTTM per file.

Usage::

    speechbrain-pruning-diarize results/.../exported meetings/ --output rttm/ [--num-speakers 4]
    python -m speechbrain_pruning.diarization.cli <model folder> <audio files or folders> --output rttm/
"""

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

AUDIO_EXTENSIONS = (".wav", ".flac")

logger = logging.getLogger(__name__)


def audio_files(inputs):
    """Audio files named in ``inputs`` (files, or folders searched recursively)."""
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such audio file or folder")
    if not files:
        raise ValueError(f"No {'/'.join(AUDIO_EXTENSIONS)} files found in {list(inputs)}")
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description="Diarize audio files with an exported model.")
    parser.add_argument("model", help="folder written by the diarization recipe (exported/)")
    parser.add_argument("inputs", nargs="+", help="audio files or folders")
    parser.add_argument("--output", required=True, help="folder for <file stem>.rttm")
    parser.add_argument("--num-speakers", type=int)
    parser.add_argument("--min-speakers", type=int)
    parser.add_argument("--max-speakers", type=int)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from ..inference import PrunedDiarizer

    files = audio_files(args.inputs)
    model = PrunedDiarizer.from_hparams(source=args.model, run_opts={"device": args.device})
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in tqdm(files, desc="diarizing", unit="file"):
        annotation = model.diarize_file(path, num_speakers=args.num_speakers,
                                        min_speakers=args.min_speakers,
                                        max_speakers=args.max_speakers,
                                        uri=path.stem.replace(" ", "_"))
        target = out / f"{path.stem}.rttm"
        with open(target, "w", encoding="utf-8") as fout:
            model.write_rttm(annotation, fout)
        written.append(target)
    print(f"{len(written)} RTTM files written to {out}")
    return written


if __name__ == "__main__":
    main()
