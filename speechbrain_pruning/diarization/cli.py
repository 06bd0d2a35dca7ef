"""Command line: audio files and folders -> one RTTM per file.

Usage::

    speechbrain-pruning-diarize results/.../exported meetings/ --output rttm/ [--num-speakers 4]
    python -m speechbrain_pruning.diarization.cli <model folder> <audio files or folders> --output rttm/

Each file gets ``<output>/<name>.rttm``, where ``<name>`` is the file's path
relative to the folder given on the command line (its stem for a file given
directly), so two files with the same stem in different folders never
overwrite each other. A file that fails (unreadable, NaN audio, ...) is
reported and the others go on; the exit status is 0 only when every file
succeeded (1 otherwise, 2 when the model cannot be loaded).
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from tqdm import tqdm

AUDIO_EXTENSIONS = (".wav", ".flac")

logger = logging.getLogger(__name__)


def audio_files(inputs):
    """``(file, output name)`` for the audio files named in ``inputs``.

    Folders are searched recursively; a file found in folder ``F`` is named
    by its path relative to ``F`` without the suffix, a file given directly
    by its stem. If two files would still get the same name, every name
    becomes the path relative to the files' common folder.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for sub in ("a", "b"):
    ...         os.makedirs(f"{tmp}/{sub}")
    ...         open(f"{tmp}/{sub}/x.wav", "w").close()
    ...     [name for _, name in audio_files([tmp])]
    ['a/x', 'b/x']
    """
    found, seen = [], set()
    for item in map(Path, inputs):
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS):
                found.append((path, path.relative_to(item).with_suffix("").as_posix()))
        elif item.is_file():
            found.append((item, item.stem))
        else:
            raise FileNotFoundError(f"{item}: no such audio file or folder")
    unique = []
    for path, name in found:  # the same file named twice is diarized once
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append((path, name))
    if not unique:
        raise ValueError(f"No {'/'.join(AUDIO_EXTENSIONS)} files found in {list(inputs)}")
    names = [name for _, name in unique]
    if len(set(names)) < len(names):
        common = Path(os.path.commonpath([str(p.resolve().parent) for p, _ in unique]))
        unique = [(p, p.resolve().relative_to(common).with_suffix("").as_posix())
                  for p, _ in unique]
    return unique


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="speechbrain-pruning-diarize",
        description="Diarize audio files with an exported model; one RTTM per file.",
    )
    parser.add_argument("model", help="folder written by the diarization recipe (exported/)")
    parser.add_argument("inputs", nargs="+", help="audio files or folders (searched recursively)")
    parser.add_argument("--output", required=True, help="folder for <name>.rttm")
    parser.add_argument("--num-speakers", type=int)
    parser.add_argument("--min-speakers", type=int)
    parser.add_argument("--max-speakers", type=int)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or summary; errors are still printed")
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command; returns the exit status (0 = every file diarized)."""
    args = parse_args(argv)
    from ..inference import PrunedDiarizer

    try:
        files = audio_files(args.inputs)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        model = PrunedDiarizer.from_hparams(source=args.model, run_opts={"device": args.device})
    except Exception as err:
        print(f"error: cannot load the model {args.model}: {err}", file=sys.stderr)
        return 2
    model.hparams.progress = not args.quiet
    out = Path(args.output)
    failures = []
    written = 0
    for path, name in tqdm(files, desc="diarizing", unit="file", disable=args.quiet):
        target = out / f"{name}.rttm"
        try:
            annotation = model.diarize_file(path, num_speakers=args.num_speakers,
                                            min_speakers=args.min_speakers,
                                            max_speakers=args.max_speakers,
                                            uri=path.stem.replace(" ", "_"))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            with open(partial, "w", encoding="utf-8") as fout:
                model.write_rttm(annotation, fout)
            partial.replace(target)  # never a half-written RTTM
            written += 1
        except Exception as err:  # go on with the other files, report at the end
            failures.append((path, f"{type(err).__name__}: {err}"))
            print(f"error: {path}: {type(err).__name__}: {err}", file=sys.stderr)
    if not args.quiet:
        print(f"{written} RTTM file(s) written to {out}")
    if failures:
        print(f"{len(failures)} of {len(files)} file(s) failed:", file=sys.stderr)
        for path, message in failures:
            print(f"  {path}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
