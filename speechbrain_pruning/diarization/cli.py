"""Command line: audio files, folders, Kaldi ``wav.scp`` or list files -> one RTTM per recording.

Usage::

    speechbrain-pruning-diarize MODEL INPUT [INPUT ...] --output DIR [options]
    python -m speechbrain_pruning.diarization.cli MODEL INPUT [INPUT ...] --output DIR [options]

    speechbrain-pruning-diarize results/.../exported meetings/ --output rttm/ --num-speakers 4
    speechbrain-pruning-diarize exported data/dev/wav.scp --output rttm/ --shard 3/8 --json
    speechbrain-pruning-diarize exported files.lst --output rttm/ --clustering ahc \\
        --clustering-threshold 0.6 --device cuda

``MODEL`` is the folder written by the diarization recipe (``exported/``).
Each ``INPUT`` is one of:

* a folder, searched recursively for ``.wav``/``.flac`` files; a file is
  named by its path relative to that folder, without the suffix;
* an audio file, named by its stem;
* a Kaldi ``wav.scp`` (a file named ``wav.scp`` or ``*.scp``): one
  ``<recording-id> <path>`` per line, blank lines skipped; the recording id
  is the RTTM uri and the output name; relative paths are taken from the
  current folder (as Kaldi does); piped commands (``... |``) are refused;
* a list file (``*.lst``, ``*.list``, ``*.txt``): one audio path per line,
  blank lines and ``#`` comments skipped, relative paths taken from the list
  file's folder; files are named by their stem.

If two files (not ``wav.scp`` ids) would get the same name, every such name
becomes the path relative to their common folder, so nothing is overwritten.
An error in a ``wav.scp`` or list file names the file and the line.

Each recording gets ``DIR/<name>.rttm`` (and ``DIR/<name>.json`` with
``--json``), written to ``.part`` files first and renamed when complete, so
an interrupted run leaves no half-written output. A rerun skips the
recordings whose RTTM (and, with ``--json``, JSON) already exists; the
summary says how many; ``--overwrite`` redoes them.

``--shard K/N`` (``1 <= K <= N``) diarizes only every N-th recording,
starting at the K-th, of all the inputs sorted by output name, so N
processes (``--shard 1/N`` ... ``--shard N/N``) share a corpus without
overlap. A recording that fails (unreadable, NaN audio, ...) is reported and
the others go on.

Options: ``--num-speakers``/``--min-speakers``/``--max-speakers`` (speaker
count), ``--window``/``--step`` (sliding window, seconds), ``--batch-size``,
``--clustering {vbx,ahc}``, ``--clustering-threshold``, ``--onset`` (speech
activity threshold); inference settings not given keep the model's values.
``--device`` (default ``cpu``), ``--quiet`` (no progress bars or summary;
errors are still printed).

Exit status: 0 when every recording of the shard was diarized (or already
done), 1 when some failed, 2 for bad arguments or inputs or a model that
cannot be loaded.
"""

import argparse
import logging
import os
import re
import sys
from collections import namedtuple
from pathlib import Path

from tqdm import tqdm

AUDIO_EXTENSIONS = (".wav", ".flac")
SCP_SUFFIXES = (".scp",)
LIST_SUFFIXES = (".lst", ".list", ".txt")

logger = logging.getLogger(__name__)

Recording = namedtuple("Recording", ["path", "name", "uri"])
Recording.__doc__ = """One recording: audio ``path``, output ``name`` (no suffix), RTTM ``uri``."""


class InputError(ValueError):
    """A bad input: missing file, malformed ``wav.scp`` or list line, ..."""


def _uri(path):
    """RTTM uri of a file: its stem with whitespace replaced by ``_``."""
    return re.sub(r"\s", "_", Path(path).stem)


def _read_lines(path):
    """``(line number, stripped line)`` of a UTF-8 text file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return [(number, line.strip()) for number, line in enumerate(handle, 1)]
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err})") from err


def read_wav_scp(path):
    """Recordings of a Kaldi ``wav.scp``: ``<recording-id> <path>`` per line.

    The id is the uri and the output name; the path is the rest of the line
    (it may contain spaces) and, when relative, is taken from the current
    folder. Blank lines are skipped. Piped commands, missing files,
    duplicate ids and ids with a path separator are errors naming the file
    and the line.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(f"{tmp}/a.wav", "w").close()
    ...     with open(f"{tmp}/wav.scp", "w") as f:
    ...         _ = f.write(f"rec1 {tmp}/a.wav\\n")
    ...     [(r.name, r.uri) for r in read_wav_scp(f"{tmp}/wav.scp")]
    [('rec1', 'rec1')]
    """
    recordings, lines = [], {}
    for number, line in _read_lines(path):
        if not line:
            continue
        where = f"{path}:{number}"
        fields = line.split(maxsplit=1)
        if len(fields) != 2:
            raise InputError(f"{where}: expected '<recording-id> <path>', got {line!r}")
        rec_id, audio = fields[0], fields[1].strip()
        if audio.endswith("|"):
            raise InputError(f"{where}: piped command {audio!r} is not supported; "
                             "write the audio to files and list their paths instead")
        if "/" in rec_id or "\\" in rec_id or rec_id in (".", ".."):
            raise InputError(f"{where}: recording id {rec_id!r} cannot be used as a file name")
        if rec_id in lines:
            raise InputError(f"{where}: recording id {rec_id!r} already on line {lines[rec_id]}")
        if not Path(audio).is_file():
            raise InputError(f"{where}: no such audio file {audio!r}")
        lines[rec_id] = number
        recordings.append(Recording(Path(audio), rec_id, rec_id))
    return recordings


def read_list(path):
    """Audio paths of a list file: one per line, blank lines and ``#`` comments
    skipped, relative paths taken from the list file's folder.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     open(f"{tmp}/a b.wav", "w").close()
    ...     with open(f"{tmp}/files.lst", "w") as f:
    ...         _ = f.write("# my files\\n\\na b.wav\\n")
    ...     [p.name for p in read_list(f"{tmp}/files.lst")]
    ['a b.wav']
    """
    folder, paths = Path(path).parent, []
    for number, line in _read_lines(path):
        if not line or line.startswith("#"):
            continue
        audio = Path(line)
        if not audio.is_absolute():
            audio = folder / audio
        if not audio.is_file():
            raise InputError(f"{path}:{number}: no such audio file {line!r}")
        paths.append(audio)
    return paths


def find_recordings(inputs):
    """The :class:`Recording` s named by ``inputs`` (see the module docstring).

    The same audio file found twice (not through ``wav.scp``) is diarized
    once. Raises :class:`InputError` for a missing input, a bad line, no
    recording at all, or two recordings with the same output name.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for sub in ("a", "b"):
    ...         os.makedirs(f"{tmp}/{sub}")
    ...         open(f"{tmp}/{sub}/x.wav", "w").close()
    ...     [(r.name, r.uri) for r in find_recordings([tmp])]
    [('a/x', 'x'), ('b/x', 'x')]
    """
    files, named, seen = [], [], set()
    for item in map(Path, inputs):
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*")
                               if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
                files.append((path, path.relative_to(item).with_suffix("").as_posix()))
        elif item.is_file() and (item.name == "wav.scp" or item.suffix.lower() in SCP_SUFFIXES):
            named.extend((rec, f"{item} (id {rec.name})") for rec in read_wav_scp(item))
        elif item.is_file() and item.suffix.lower() in LIST_SUFFIXES:
            files.extend((path, path.stem) for path in read_list(item))
        elif item.is_file():
            files.append((item, item.stem))
        else:
            raise InputError(f"{item}: no such audio file, folder, wav.scp or list file")
    unique = []
    for path, name in files:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append((path, name))
    names = [name for _, name in unique]
    if len(set(names)) < len(names):
        common = Path(os.path.commonpath([str(p.resolve().parent) for p, _ in unique]))
        unique = [(p, p.resolve().relative_to(common).with_suffix("").as_posix())
                  for p, _ in unique]
    named.extend((Recording(path, name, _uri(path)), str(path)) for path, name in unique)
    if not named:
        raise InputError(f"No recordings found in {list(map(str, inputs))} "
                         f"(folders are searched for {'/'.join(AUDIO_EXTENSIONS)} files)")
    origin = {}
    for rec, where in named:
        if rec.name in origin:
            raise InputError(f"output name {rec.name!r} given twice: {origin[rec.name]} "
                             f"and {where}")
        origin[rec.name] = where
    return [rec for rec, _ in named]


def shard(recordings, index, count):
    """The ``index``-th (1-based) of ``count`` shards: recordings sorted by
    name, every ``count``-th starting at ``index - 1``.

    Example
    -------
    >>> recs = [Recording(None, n, n) for n in "edcba"]
    >>> [r.name for r in shard(recs, 2, 2)]
    ['b', 'd']
    """
    return sorted(recordings, key=lambda rec: rec.name)[index - 1::count]


def _shard_spec(text):
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected K/N such as 2/8, got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(
            f"{text!r}: K/N needs 1 <= K <= N (K counts from 1)")
    return index, count


def _positive(kind):
    def check(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    check.__name__ = kind.__name__
    return check


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


# command-line flag (argparse dest) -> PrunedDiarizer.set_params name
INFERENCE_FLAGS = ("window", "step", "batch_size", "clustering", "clustering_threshold", "onset")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="speechbrain-pruning-diarize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help="folder written by the diarization recipe (exported/)")
    parser.add_argument("inputs", nargs="+",
                        help="audio files, folders (searched recursively), Kaldi wav.scp "
                        "(*.scp) or list files (*.lst, *.list, *.txt: one path per line)")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for <name>.rttm")
    parser.add_argument("--shard", type=_shard_spec, metavar="K/N",
                        help="diarize only shard K of N (1-based) of the recordings "
                        "sorted by output name")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo recordings whose RTTM already exists (default: skip them)")
    parser.add_argument("--json", action="store_true",
                        help="also write <name>.json next to the RTTM")
    speakers = parser.add_argument_group("speaker count")
    speakers.add_argument("--num-speakers", type=_positive(int), metavar="N")
    speakers.add_argument("--min-speakers", type=_positive(int), metavar="N")
    speakers.add_argument("--max-speakers", type=_positive(int), metavar="N")
    inference = parser.add_argument_group(
        "inference settings (default: the model's own values)")
    inference.add_argument("--window", type=_positive(float), metavar="S", help="window length, seconds")
    inference.add_argument("--step", type=_positive(float), metavar="S", help="window step, seconds")
    inference.add_argument("--batch-size", type=_positive(int), metavar="N", help="windows per batch")
    inference.add_argument("--clustering", choices=("vbx", "ahc"),
                           help="speaker clustering across windows")
    inference.add_argument("--clustering-threshold", type=float, metavar="T",
                           help="clustering threshold")
    inference.add_argument("--onset", type=_probability, metavar="P",
                           help="speech activity threshold in [0, 1]")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or summary; errors are still printed")
    args = parser.parse_args(argv)
    if args.min_speakers and args.max_speakers and args.min_speakers > args.max_speakers:
        parser.error(f"--min-speakers {args.min_speakers} > --max-speakers {args.max_speakers}")
    return args


def load_model(folder, device):
    """The :class:`~speechbrain_pruning.inference.PrunedDiarizer` of ``folder`` on ``device``."""
    from ..inference import PrunedDiarizer

    return PrunedDiarizer.from_hparams(source=str(folder), run_opts={"device": device})


def _is_done(rec, out, with_json):
    """Whether ``rec``'s outputs already exist (the RTTM is written last)."""
    if not (out / f"{rec.name}.rttm").is_file():
        return False
    return not with_json or (out / f"{rec.name}.json").is_file()


def _diarize_one(model, rec, out, args):
    """Diarize ``rec`` and write its RTTM (and JSON) atomically."""
    output = model(str(rec.path), uri=rec.uri, num_speakers=args.num_speakers,
                   min_speakers=args.min_speakers, max_speakers=args.max_speakers,
                   progress=not args.quiet)
    target = out / f"{rec.name}.rttm"
    target.parent.mkdir(parents=True, exist_ok=True)
    parts = []
    try:
        if args.json:  # JSON first: an RTTM on disk means the recording is complete
            json_target = out / f"{rec.name}.json"
            parts.append(json_target.with_name(json_target.name + ".part"))
            output.write_json(json_target)  # atomic itself (.part then rename)
        partial = target.with_name(target.name + ".part")
        parts.append(partial)
        with open(partial, "w", encoding="utf-8") as fout:
            output.write_rttm(fout)
        partial.replace(target)
    finally:
        for part in parts:
            if part.exists():
                part.unlink()


def main(argv=None):
    """Run the command; returns the exit status (0 = every recording diarized)."""
    try:
        args = parse_args(argv)
    except SystemExit as exit_:  # argparse errors (2) and --help (0)
        return exit_.code
    try:
        recordings = find_recordings(args.inputs)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = len(recordings)
    if args.shard:
        recordings = shard(recordings, *args.shard)
    else:
        recordings = sorted(recordings, key=lambda rec: rec.name)
    out = Path(args.output)
    todo = [rec for rec in recordings if args.overwrite or not _is_done(rec, out, args.json)]
    skipped = len(recordings) - len(todo)
    failures, written = [], 0
    if todo:
        try:
            model = load_model(args.model, args.device)
        except Exception as err:
            print(f"error: cannot load the model {args.model}: {type(err).__name__}: {err}",
                  file=sys.stderr)
            return 2
        overrides = {name: getattr(args, name) for name in INFERENCE_FLAGS
                     if getattr(args, name) is not None}
        if overrides:
            try:
                model.set_params(**overrides)
            except (ValueError, TypeError) as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
    for rec in tqdm(todo, desc="diarizing", unit="file", disable=args.quiet):
        try:
            _diarize_one(model, rec, out, args)
            written += 1
        except Exception as err:  # go on with the other recordings, report at the end
            failures.append((rec.path, f"{type(err).__name__}: {err}"))
            print(f"error: {rec.path}: {type(err).__name__}: {err}", file=sys.stderr)
    if not args.quiet:
        where = (f"shard {args.shard[0]}/{args.shard[1]}: {len(recordings)} of {total} "
                 f"recording(s); " if args.shard else "")
        line = f"{where}{written} RTTM file(s) written to {out}"
        if args.json:
            line += " (with their JSON)"
        if skipped:
            line += f", {skipped} skipped (already there; --overwrite redoes them)"
        print(line)
    if failures:
        print(f"{len(failures)} of {len(todo)} file(s) failed:", file=sys.stderr)
        for path, message in failures:
            print(f"  {path}: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
