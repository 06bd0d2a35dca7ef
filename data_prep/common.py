"""Helpers shared by the corpus preparation scripts.

* audio headers (:func:`audio_header`, :func:`audio_info`) and atomic CSV writes
  (:func:`write_csv`, :func:`write_manifest`);
* the stored-options file that makes a re-run with the same options and
  inputs instant (:class:`PreparedState`, :func:`fingerprint`);
* what was skipped and why (:func:`note_skipped`);
* the command line shared by every ``<corpus>_prepare.py`` script
  (:func:`build_parser`, :func:`run_cli`, :func:`format_summary`), built
  from the signature and the docstring of the prepare function.

Authors
 * speechbrain_pruning contributors
"""

import argparse
import csv
import hashlib
import inspect
import json
import logging
import os
import re
import sys
from pathlib import Path

import soundfile as sf

__all__ = [
    "BadAudioFileError",
    "PreparedState",
    "audio_header",
    "audio_info",
    "build_parser",
    "fingerprint",
    "flat_paths",
    "format_summary",
    "load_options",
    "note_skipped",
    "outputs_exist",
    "parse_docstring_arguments",
    "run_cli",
    "write_csv",
    "write_manifest",
]

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 5
EXPECTED_ERRORS = (OSError, ValueError, RuntimeError)  # BadAudioFileError is a RuntimeError


class BadAudioFileError(RuntimeError):
    """An audio file whose header cannot be read (corrupt or truncated)."""


def audio_header(path):
    """``soundfile.info`` of ``path``; a corrupt header raises :class:`BadAudioFileError`.

    Example
    -------
    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sf.write(f"{tmp}/a.wav", np.zeros(800), 16000)
    ...     int(audio_header(f"{tmp}/a.wav").frames)
    800
    """
    try:
        return sf.info(str(path))
    except (RuntimeError, OSError, ValueError, EOFError) as err:
        raise BadAudioFileError(f"Cannot read the audio header of {path}: {err}") from err


def audio_info(path):
    """Number of frames and sampling rate of an audio file, from its header.

    Arguments
    ---------
    path : str or pathlib.Path
        Audio file readable by libsndfile.

    Returns
    -------
    tuple of int
        ``(num_frames, sample_rate)``.

    Raises
    ------
    BadAudioFileError
        If the header cannot be read or has no valid sampling rate; the
        message names the file.

    Example
    -------
    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sf.write(f"{tmp}/a.wav", np.zeros(800), 16000)
    ...     audio_info(f"{tmp}/a.wav")
    (800, 16000)
    """
    info = audio_header(path)
    if info.samplerate <= 0:
        raise BadAudioFileError(f"Invalid sampling rate {info.samplerate} in the header of {path}")
    return int(info.frames), int(info.samplerate)


def write_csv(path, fields, rows):
    """Writes rows (sequences in ``fields`` order) atomically; IDs (first column) unique.

    Arguments
    ---------
    path : str or pathlib.Path
        CSV file to (re)write.
    fields : sequence of str
        Header line.
    rows : sequence of sequence
        One row per entry, in ``fields`` order.

    Returns
    -------
    int
        Number of rows written.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_csv(f"{tmp}/a.csv", ("ID", "x"), [("a", 1), ("b", 2)])
    ...     Path(tmp, "a.csv").read_text().split()
    2
    ['ID,x', 'a,1', 'b,2']
    """
    path = Path(path)
    seen = set()
    for row in rows:
        if row[0] in seen:
            raise ValueError(f"Duplicate ID {row[0]!r} in {path}")
        seen.add(row[0])
    partial = path.with_name(path.name + ".part")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows(rows)
    os.replace(partial, path)
    return len(rows)


def _write_json(path, data):
    """Writes ``data`` as JSON atomically."""
    partial = path.with_name(path.name + ".part")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False)
    os.replace(partial, path)


def load_options(opt_path):
    """Stored options file as a dict, or ``None`` (missing or unreadable)."""
    try:
        with open(opt_path, encoding="utf-8") as handle:
            stored = json.load(handle)
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) else None


def outputs_exist(paths):
    """Whether ``paths`` is not empty and every one of them is an existing file."""
    paths = list(paths)
    return bool(paths) and all(Path(p).is_file() for p in paths)


def flat_paths(mapping):
    """The string leaves of nested dicts (e.g. ``summary["csv"]``), in order.

    Example
    -------
    >>> flat_paths({"train": {"recordings": "a.csv", "chunks": "b.csv"}, "dev": "c.csv"})
    ['a.csv', 'b.csv', 'c.csv']
    """
    if isinstance(mapping, dict):
        return [leaf for value in mapping.values() for leaf in flat_paths(value)]
    return [mapping] if isinstance(mapping, str) else []


def fingerprint(paths, **extra):
    """Digest of the size and modification time of input files or folders.

    A path that does not exist counts as missing (no error), so a file that
    appears later changes the fingerprint. ``extra`` (JSON data, e.g. file
    counts) is mixed in.

    Arguments
    ---------
    paths : iterable of str or pathlib.Path
        Files and folders read by the preparation (order does not matter).
    **extra
        JSON-serialisable values that also describe the inputs.

    Returns
    -------
    str
        Hexadecimal SHA-256 digest.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     before = fingerprint([f"{tmp}/a.txt"], count=1)
    ...     _ = Path(tmp, "a.txt").write_text("x")
    ...     after = fingerprint([f"{tmp}/a.txt"], count=1)
    ...     same = fingerprint([Path(tmp, "a.txt")], count=1)
    >>> before != after, after == same, after == fingerprint([f"{tmp}/a.txt"], count=2)
    (True, True, False)
    """
    digest = hashlib.sha256()
    for path in sorted({os.path.abspath(p) for p in paths}):
        try:
            stat = os.stat(path)
            state = f"{stat.st_size}\0{stat.st_mtime_ns}"
        except OSError:
            state = "missing"
        digest.update(f"{path}\0{state}\n".encode("utf-8", "surrogateescape"))
    digest.update(json.dumps(extra, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def write_manifest(summary, path, fields, rows):
    """Writes a CSV (:func:`write_csv`) and counts its rows in ``summary["csv_rows"]``.

    Returns
    -------
    str
        The path written, for ``summary["csv"]``.

    Example
    -------
    >>> import tempfile
    >>> summary = {}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_manifest(summary, Path(tmp, "a.csv"), ("ID",), [("x",), ("y",)])
    ...     summary["csv_rows"][path]
    2
    """
    path = str(path)
    summary.setdefault("csv_rows", {})[path] = write_csv(path, fields, rows)
    return path


class PreparedState:
    """The options file of a save folder: what makes a re-run instant.

    The file (``opt_<script>.json``) holds the options, a fingerprint of the
    inputs (:func:`fingerprint`), the list of output files and the summary
    returned by the preparation. :meth:`lookup` returns the stored summary
    when the options and fingerprint are the same and every output still
    exists; :meth:`clear` is called before anything is written (an
    interrupted run must not look prepared) and :meth:`store` at the end.

    Arguments
    ---------
    save_folder : str or pathlib.Path
        Where the preparation writes its outputs.
    opt_file : str
        Name of the options file in ``save_folder``.
    what : str
        Name of the corpus, for the log messages.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     state = PreparedState(tmp, "opt_demo.json", "Demo")
    ...     print(state.lookup({"a": (1, 2)}, "f0"))
    ...     state.clear()
    ...     rows = write_csv(f"{tmp}/train.csv", ("ID",), [("x",)])
    ...     state.store({"a": (1, 2)}, "f0", {"csv": {"train": f"{tmp}/train.csv"}},
    ...                 [f"{tmp}/train.csv"])
    ...     print(state.lookup({"a": [1, 2]}, "f0")["already_prepared"])
    ...     print(state.lookup({"a": [1, 3]}, "f0"), state.lookup({"a": [1, 2]}, "f1"))
    ...     print(state.skip()["skipped"])
    None
    True
    None None
    True
    """

    def __init__(self, save_folder, opt_file, what):
        self.save_folder = Path(os.path.abspath(save_folder))
        self.path = self.save_folder / opt_file
        self.what = what

    def skip(self):
        """Summary for ``skip_prep=True``: the stored one if any, with ``skipped=True``."""
        logger.info("Skipping %s preparation (skip_prep=True)", self.what)
        stored = load_options(self.path) or {}
        summary = dict(stored.get("summary") or {"save_folder": str(self.save_folder)})
        summary["skipped"] = True
        return summary

    def lookup(self, options, fingerprint):
        """The stored summary (``already_prepared=True``) if up to date, else ``None``."""
        stored = load_options(self.path)
        if (stored is None or stored.get("options") != _as_json(options)
                or stored.get("fingerprint") != fingerprint
                or not outputs_exist(stored.get("outputs", []))):
            return None
        logger.info("%s already prepared in %s, skipping", self.what, self.save_folder)
        summary = dict(stored.get("summary", {}))
        summary["already_prepared"] = True
        return summary

    def clear(self):
        """Creates the save folder and removes the options file before writing."""
        self.save_folder.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)

    def store(self, options, fingerprint, summary, outputs):
        """Writes the options file (atomically) once every output is written."""
        stored = {"options": _as_json(options), "fingerprint": fingerprint,
                  "outputs": [str(path) for path in outputs], "summary": summary}
        _write_json(self.path, stored)


def _as_json(data):
    """``data`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(data))


def note_skipped(summary, what, reason, items):
    """Records in ``summary["skipped_inputs"]`` that ``items`` were not used.

    Each entry is ``{"what", "reason", "count", "examples"}`` with at most
    five examples; nothing is recorded for an empty ``items``.

    Example
    -------
    >>> summary = {}
    >>> note_skipped(summary, "files", "unreadable header", ["a.wav", "b.wav"])
    >>> note_skipped(summary, "files", "too short", [])
    >>> summary["skipped_inputs"]
    [{'what': 'files', 'reason': 'unreadable header', 'count': 2, 'examples': ['a.wav', 'b.wav']}]
    """
    entries = summary.setdefault("skipped_inputs", [])
    items = [str(item) for item in items]
    if items:
        entries.append({"what": what, "reason": reason, "count": len(items),
                        "examples": items[:MAX_EXAMPLES]})


# ------------------------------------------------------------- command line
SECTION_RE = re.compile(r"^\s*-{3,}\s*$")
ARGUMENT_RE = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*:\s*(.*)$")


def parse_docstring_arguments(doc):
    """``{name: (type, description)}`` of the ``Arguments`` section of a docstring.

    Numpy style: a section title (``Arguments`` or ``Parameters``)
    underlined with dashes, then ``name : type`` lines each followed by an
    indented description. ``a, b : float`` documents both names.

    Example
    -------
    >>> doc = '''Does things.
    ...
    ...     Arguments
    ...     ---------
    ...     data_folder : str
    ...         Where the ``data`` is.
    ...     min_dur, max_dur : float, optional
    ...         Bounds
    ...         in seconds.
    ...
    ...     Returns
    ...     -------
    ...     dict
    ... '''
    >>> args = parse_docstring_arguments(doc)
    >>> args["data_folder"], args["max_dur"]
    (('str', 'Where the data is.'), ('float, optional', 'Bounds in seconds.'))
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    found, current, inside = {}, None, False
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if SECTION_RE.match(following) and line.strip():
            inside, current = line.strip() in ("Arguments", "Parameters"), None
            continue
        if not inside or SECTION_RE.match(line) or not line.strip():
            continue
        match = ARGUMENT_RE.match(line) if not line[0].isspace() else None
        if match:
            current = [n.strip().lstrip("*") for n in match.group(1).split(",")]
            for name in current:
                found[name] = (match.group(2).strip(), [])
        elif current:
            for name in current:
                found[name][1].append(line.strip())
    return {name: (kind, _plain(" ".join(text))) for name, (kind, text) in found.items()}


def _plain(text):
    """Docstring text without reST markup, safe for argparse help."""
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: m.group(1).split(".")[-1], text)
    return text.replace("``", "").replace("%", "%%")


def _scalar_type(value, doc_type):
    """Type of a value from its default, else from the documented type."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        return type(value)
    for name, kind in (("int", int), ("float", float)):
        if doc_type.startswith(name):
            return kind
    return str


def _show_default(value):
    """A default as typed on the command line (lists space-separated)."""
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value) or "none"
    return str(value)


def _add_argument(parser, param, doc_type, help_text):
    """Adds ``--<name>`` for one parameter of the prepare function."""
    flag = "--" + param.name.replace("_", "-")
    default = None if param.default is inspect.Parameter.empty else param.default
    kwargs = {"dest": param.name, "help": help_text}
    if param.default is inspect.Parameter.empty:
        kwargs["required"] = True
    if isinstance(default, bool):
        kwargs["action"] = argparse.BooleanOptionalAction
    elif isinstance(default, (tuple, list)) or (
            default is None and re.search(r"\b(list|tuple)\b", doc_type)):
        kinds = {type(v) for v in default or ()}
        if len(kinds) > 1:  # mixed, e.g. ("U06", 1): as many values, each converted
            kwargs.update(nargs=len(default), metavar=tuple(type(v).__name__.upper()
                                                            for v in default))
        else:
            kwargs.update(nargs="*" if default is not None else "+",
                          type=kinds.pop() if kinds else str)
    else:
        kwargs["type"] = _scalar_type(default, doc_type)
    if isinstance(default, bool):
        kwargs["help"] += f" (default: {'on' if default else 'off'})"
    elif default is not None:
        kwargs["help"] += f" (default: {_show_default(default)})"
    parser.add_argument(flag, default=default, **kwargs)


def build_parser(func, prog=None):
    """Command-line parser with one ``--option`` per parameter of ``func``.

    Names use dashes (``save_folder`` -> ``--save-folder``); parameters
    without default are required. Types come from the defaults: a bool
    gives ``--flag/--no-flag``, an int, float or str default that type, a
    tuple or list a list of values (``nargs``), a ``None`` default the
    documented type (``int``/``float``, else str). Help texts are the
    descriptions of the ``Arguments`` section of the docstring.

    Arguments
    ---------
    func : callable
        Function with a numpy-style docstring.
    prog : str, optional
        Program name shown in the usage line.

    Returns
    -------
    argparse.ArgumentParser

    Example
    -------
    >>> def prepare(data_folder, save_folder, splits=("train", "dev"), rate=16000,
    ...             min_dur=None, skip_prep=False):
    ...     '''Prepares things.
    ...
    ...     Arguments
    ...     ---------
    ...     data_folder : str
    ...         Corpus root.
    ...     save_folder : str
    ...         Output folder.
    ...     splits : tuple of str
    ...         Splits to write.
    ...     rate : int
    ...         Sampling rate.
    ...     min_dur : float, optional
    ...         Minimum duration.
    ...     skip_prep : bool
    ...         Does nothing.
    ...     '''
    >>> args = build_parser(prepare).parse_args(
    ...     ["--data-folder", "db", "--save-folder", "out", "--splits", "dev",
    ...      "--min-dur", "0.5", "--skip-prep"])
    >>> args.data_folder, args.splits, args.rate, args.min_dur, args.skip_prep
    ('db', ['dev'], 16000, 0.5, True)
    """
    doc = inspect.getdoc(func) or ""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc.split("\n\n")[0],
        epilog=f"Layouts and outputs: see the docstring of {Path(inspect.getfile(func)).name} "
               f"and data_prep/README.md.")
    described = parse_docstring_arguments(doc)
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        doc_type, text = described.get(param.name, ("", ""))
        _add_argument(parser, param, doc_type, text or param.name.replace("_", " "))
    return parser


def _converted(func, args):
    """Keyword arguments for ``func``; mixed-type sequences converted like their default."""
    kwargs = vars(args)
    for name, param in inspect.signature(func).parameters.items():
        default, value = param.default, kwargs.get(name)
        if isinstance(default, (tuple, list)) and len({type(v) for v in default}) > 1:
            kwargs[name] = tuple(type(d)(v) for d, v in zip(default, value))
    return kwargs


def _count(number, noun):
    """``"1 file"``, ``"3 files"``: ``noun`` is the plural."""
    return f"{number} {noun if number != 1 else noun[:-1]}"


def format_summary(summary, title):
    """Lines describing a preparation: the CSVs written (with row counts) and what was skipped.

    Example
    -------
    >>> summary = {"save_folder": "/save", "csv": {"train": "/save/train.csv"},
    ...            "csv_rows": {"/save/train.csv": 12}, "already_prepared": False}
    >>> note_skipped(summary, "files", "unreadable header", ["/db/a.wav"])
    >>> print("\\n".join(format_summary(summary, "prepare_demo")))
    prepare_demo: wrote 1 CSV file in /save
      train.csv: 12 rows
    1 file skipped: unreadable header
      /db/a.wav
    """
    save_folder = summary.get("save_folder", "")
    if summary.get("skipped") is True:
        return [f"{title}: nothing done (--skip-prep) in {save_folder}"]
    csvs = flat_paths(summary.get("csv", {}))
    rows = summary.get("csv_rows", {})
    done = "already prepared, nothing rewritten:" if summary.get("already_prepared") \
        else "wrote"
    lines = [f"{title}: {done} {_count(len(csvs), 'CSV files')} in {save_folder}"]
    for path in csvs:
        name = os.path.relpath(path, save_folder) if save_folder else path
        lines.append(f"  {name}: {_count(rows[path], 'rows') if path in rows else '? rows'}")
    skipped = summary.get("skipped_inputs", [])
    for entry in skipped:
        lines.append(f"{_count(entry['count'], entry['what'])} skipped: {entry['reason']}")
        lines += [f"  {example}" for example in entry["examples"]]
        if entry["count"] > len(entry["examples"]):
            lines.append(f"  (+{entry['count'] - len(entry['examples'])} more)")
    if not skipped:
        lines.append("nothing skipped")
    return lines


def run_cli(func, argv=None):
    """Runs ``func`` with options from the command line; prints a summary.

    Arguments
    ---------
    func : callable
        A prepare function returning a summary dict.
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 1 on a preparation error (printed as
        one ``error: ...`` line on stderr, without traceback).

    Example
    -------
    >>> from data_prep.voxceleb_prepare import prepare_voxceleb
    >>> run_cli(prepare_voxceleb, ["--data-folder", "/nonexistent", "--save-folder",
    ...                            "/nonexistent/save"])
    1
    """
    args = build_parser(func).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        summary = func(**_converted(func, args))
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except EXPECTED_ERRORS as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    print("\n".join(format_summary(summary, func.__name__)))
    return 0
