"""ASVspoof5 / ASVspoof 2019 LA data preparation: SpeechBrain CSV manifests.

Two corpus layouts are understood (``layout="auto"`` picks the one whose
protocol files exist for every requested split):

``asvspoof5``::

    <root>/ASVspoof5.train.tsv            protocols, directly in <root>, in
    <root>/ASVspoof5.dev.track_1.tsv      <root>/protocols/,
    <root>/ASVspoof5.eval.track_1.tsv     <root>/ASVspoof5_protocols/ or in
                                          any folder one level below <root>
    <root>/flac_T/<name>.flac             train audio
    <root>/flac_D/<name>.flac             dev audio
    <root>/flac_E_eval/<name>.flac        eval audio (``flac_E/`` works too)

  The protocols are whitespace separated despite the ``.tsv`` extension,
  10 columns without a header (a header line starting with ``SPEAKER_ID``
  is tolerated): ``SPEAKER_ID FLAC_FILE_NAME GENDER CODEC CODEC_Q
  CODEC_SEED ATTACK_TAG ATTACK_LABEL KEY TMP``. The audio folders are looked
  for in ``<root>``, next to the protocol file and one level above it.

``asvspoof2019_la``::

    <root>/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt
    <root>/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.dev.trl.txt
    <root>/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.eval.trl.txt
    <root>/LA/ASVspoof2019_LA_{train,dev,eval}/flac/<FILE>.flac
    <root>/LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.dev.gi.trl.scores.txt
    <root>/LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.eval.gi.trl.scores.txt

  ``<root>`` may also be the ``LA`` folder itself. Protocol lines are
  ``SPEAKER FILE - ATTACK KEY`` (``LA_0079 LA_T_1271820 - A01 spoof``,
  attack ``-`` for bona fide speech). The organisers' ASV score files
  (``CM_KEY ASV_KEY SCORE`` lines, the input of the t-DCF, see
  :mod:`speechbrain_pruning.spoofing.tdcf`) are optional: the paths of those
  found for the requested dev / eval splits are returned (``asv_scores``),
  the files themselves are neither read nor checked here.

Outputs in ``save_folder``:

* ``<split>.csv`` for each split (``ID,duration,wav,label,attack,codec,
  speaker,gender``): ``ID`` is the file name without extension,
  ``duration`` in seconds from the file header (``soundfile.info``, the
  audio is never decoded), ``wav`` the absolute path, ``label``
  ``bonafide`` or ``spoof``, ``attack`` the attack id (``A05``) or
  ``bonafide``, ``codec`` the codec id or ``-``, ``speaker`` the speaker id
  and ``gender`` ``M``/``F`` or ``-``.
* ``opt_asvspoof_prepare.json``: the options, a fingerprint (size and
  modification time of the protocols and audio folders), the list of
  outputs and the returned summary; a later call with the same options and
  fingerprint, whose outputs all exist, returns at once.

Every protocol is parsed, every listed file checked and every header read
before anything is written, so a broken corpus fails here with one clear
error instead of later in training. Command line (options as in
:func:`prepare_asvspoof`, with dashes)::

    python data_prep/asvspoof_prepare.py --data-folder /data/ASVspoof5 \\
        --save-folder results/save --splits train dev

Authors
 * speechbrain_pruning contributors
"""

import logging
import os
import sys
from pathlib import Path

import soundfile as sf  # noqa: F401 (the doctests use it)
from tqdm import tqdm

from data_prep.common import BadAudioFileError, PreparedState, audio_info  # noqa: F401
from data_prep.common import fingerprint, flat_paths, run_cli, write_manifest

logger = logging.getLogger(__name__)

OPT_FILE = "opt_asvspoof_prepare.json"
FIELDS = ("ID", "duration", "wav", "label", "attack", "codec", "speaker", "gender")
SPLITS = ("train", "dev", "eval")
LABELS = ("bonafide", "spoof")
LAYOUTS = ("asvspoof5", "asvspoof2019_la")
PREP_VERSION = 2
MAX_EXAMPLES = 5

ASV5_PROTOCOLS = {
    "train": "ASVspoof5.train.tsv",
    "dev": "ASVspoof5.dev.track_1.tsv",
    "eval": "ASVspoof5.eval.track_1.tsv",
}
ASV5_AUDIO_DIRS = {
    "train": ("flac_T",),
    "dev": ("flac_D",),
    "eval": ("flac_E_eval", "flac_E"),
}
ASV5_PROTOCOL_SUBDIRS = ("protocols", "ASVspoof5_protocols")
ASV5_COLUMNS = ("SPEAKER_ID", "FLAC_FILE_NAME", "GENDER", "CODEC", "CODEC_Q",
                "CODEC_SEED", "ATTACK_TAG", "ATTACK_LABEL", "KEY", "TMP")

LA_PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"
LA_PROTOCOLS = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
}
LA_COLUMNS = ("SPEAKER", "FILE", "-", "ATTACK", "KEY")
LA_ASV_SCORE_DIR = "ASVspoof2019_LA_asv_scores"
LA_ASV_SCORES = {
    "dev": "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt",
    "eval": "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt",
}
HEADER_START = "SPEAKER_ID"


def audio_duration(path):
    """``(duration in seconds, sample rate)`` of an audio file, from its header
    (:func:`~data_prep.common.audio_info`: raises :class:`BadAudioFileError`).

    Example
    -------
    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sf.write(f"{tmp}/a.flac", np.zeros(800), 16000)
    ...     audio_duration(f"{tmp}/a.flac")
    (0.05, 16000)
    """
    frames, rate = audio_info(path)
    return frames / rate, rate


def _protocol_lines(path):
    """Yields ``(line_number, line, fields)`` of the non-blank lines of a protocol.

    A first non-blank line starting with ``SPEAKER_ID`` (a header) is skipped.
    """
    first = True
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if first and fields[0].upper() == HEADER_START:
                first = False
                continue
            first = False
            yield line_number, line.rstrip("\r\n"), fields


def _check_labels(path, rows, bad_labels):
    """Raises one error naming every label other than bonafide/spoof."""
    if not bad_labels:
        if not rows:
            raise ValueError(f"{path}: the protocol lists no files")
        return
    line_number, line = next(iter(bad_labels.values()))
    raise ValueError(
        f"{path}, line {line_number}: KEY must be bonafide or spoof, got {line!r}; "
        f"labels other than bonafide/spoof in this file: {sorted(bad_labels)}"
    )


def _row(path, line_number, line, file_id, speaker, label, attack, codec, gender, seen):
    """Protocol entry as a dict; checks the ID is unique and the attack consistent."""
    if file_id in seen:
        raise ValueError(
            f"{path}, line {line_number}: file {file_id} already listed on line "
            f"{seen[file_id]}: {line!r}"
        )
    seen[file_id] = line_number
    if label == "bonafide":
        if attack not in ("-", "bonafide"):
            raise ValueError(
                f"{path}, line {line_number}: a bonafide file cannot have attack "
                f"{attack!r}: {line!r}"
            )
        attack = "bonafide"
    elif attack == "bonafide":
        raise ValueError(
            f"{path}, line {line_number}: a spoof file cannot have attack 'bonafide': {line!r}"
        )
    return {"ID": file_id, "speaker": speaker, "label": label, "attack": attack,
            "codec": codec, "gender": gender}


def _parse_protocol(path, columns, pick):
    """Protocol rows; ``pick(fields)`` gives ``(speaker, file, key, attack, codec, gender)``."""
    rows, seen, bad_labels = [], {}, {}
    for line_number, line, fields in _protocol_lines(path):
        if len(fields) != len(columns):
            raise ValueError(
                f"{path}, line {line_number}: expected {len(columns)} columns "
                f"({' '.join(columns)}), got {len(fields)}: {line!r}"
            )
        speaker, name, key, attack, codec, gender = pick(fields)
        if key not in LABELS:
            bad_labels.setdefault(key, (line_number, line))
            continue
        rows.append(_row(path, line_number, line, Path(name).stem, speaker, key, attack,
                         codec, gender, seen))
    _check_labels(path, rows, bad_labels)
    return rows


def parse_asvspoof5_protocol(path):
    """Reads an ASVspoof5 protocol (10 whitespace-separated columns per line).

    Arguments
    ---------
    path : str or pathlib.Path
        Protocol file (``ASVspoof5.train.tsv`` and the like).

    Returns
    -------
    list of dict
        One dict per file with keys ``ID``, ``speaker``, ``label``,
        ``attack`` (``bonafide`` for bona fide files), ``codec`` and
        ``gender``, in protocol order.

    Raises
    ------
    ValueError
        On a malformed line (wrong column count, inconsistent attack,
        duplicate file), naming the file, the 1-based line number and the
        line; on labels other than bonafide/spoof, naming them; on an empty
        protocol.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "p.tsv").write_text(
    ...         "T_1 T_0001 F - - - bonafide bonafide bonafide -\\n"
    ...         "T_2 T_0002 M C03 2 7 AC3 A05 spoof -\\n")
    ...     rows = parse_asvspoof5_protocol(Path(tmp, "p.tsv"))
    >>> [(r["ID"], r["label"], r["attack"], r["codec"], r["gender"]) for r in rows]
    [('T_0001', 'bonafide', 'bonafide', '-', 'F'), ('T_0002', 'spoof', 'A05', 'C03', 'M')]
    """
    return _parse_protocol(path, ASV5_COLUMNS, lambda f: (f[0], f[1], f[8], f[7], f[3], f[2]))


def parse_asvspoof2019_protocol(path):
    """Reads an ASVspoof 2019 LA CM protocol (``SPEAKER FILE - ATTACK KEY``).

    Arguments
    ---------
    path : str or pathlib.Path
        Protocol file (``ASVspoof2019.LA.cm.train.trn.txt`` and the like).

    Returns
    -------
    list of dict
        Same keys as :func:`parse_asvspoof5_protocol`; ``codec`` and
        ``gender`` are ``-``.

    Raises
    ------
    ValueError
        As :func:`parse_asvspoof5_protocol`.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "p.txt").write_text(
    ...         "LA_0079 LA_T_1138215 - - bonafide\\nLA_0079 LA_T_1271820 - A01 spoof\\n")
    ...     rows = parse_asvspoof2019_protocol(Path(tmp, "p.txt"))
    >>> for row in rows:
    ...     print(row["ID"], row["speaker"], row["label"], row["attack"], row["codec"])
    LA_T_1138215 LA_0079 bonafide bonafide -
    LA_T_1271820 LA_0079 spoof A01 -
    """
    return _parse_protocol(path, LA_COLUMNS, lambda f: (f[0], f[1], f[4], f[3], "-", "-"))


def _subdirs(folder):
    """Sorted immediate subfolders of ``folder``."""
    try:
        return sorted(entry for entry in folder.iterdir() if entry.is_dir())
    except OSError:
        return []


def _unique(paths):
    """Paths without repeats, order kept."""
    return list(dict.fromkeys(paths))


def _asv5_candidates(root, split):
    """Where the ASVspoof5 protocol of ``split`` is looked for, in order."""
    name = ASV5_PROTOCOLS[split]
    folders = [root] + [root / sub for sub in ASV5_PROTOCOL_SUBDIRS] + _subdirs(root)
    return _unique(folder / name for folder in folders)


def _la_root(root):
    """The ``LA`` folder: ``root/LA`` or ``root`` itself."""
    if (root / "LA").is_dir():
        return root / "LA"
    return root


def _la_candidates(root, split):
    """Where the 2019 LA protocol of ``split`` is looked for, in order."""
    name = LA_PROTOCOLS[split]
    return _unique([root / "LA" / LA_PROTOCOL_DIR / name, root / LA_PROTOCOL_DIR / name])


CANDIDATES = {"asvspoof5": _asv5_candidates, "asvspoof2019_la": _la_candidates}


def _find_protocols(root, layout, splits):
    """``({split: protocol path}, {split: [looked-for paths]})`` of a layout."""
    found, looked = {}, {}
    for split in splits:
        looked[split] = CANDIDATES[layout](root, split)
        for candidate in looked[split]:
            if candidate.is_file():
                found[split] = Path(os.path.abspath(candidate))
                break
    return found, looked


def _looked_for(looked):
    """Human-readable list of the paths looked for, per split."""
    return "; ".join(f"{split}: {', '.join(str(p) for p in paths)}"
                     for split, paths in looked.items())


def detect_layout(data_folder, layout="auto", splits=SPLITS):
    """Finds the protocol files of ``splits`` and the layout they belong to.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root (see the module docstring).
    layout : str
        ``"auto"``, ``"asvspoof5"`` or ``"asvspoof2019_la"``.
    splits : tuple of str
        Subset of ``("train", "dev", "eval")``.

    Returns
    -------
    tuple
        ``(layout, {split: absolute protocol path})``.

    Raises
    ------
    FileNotFoundError
        If a protocol is missing (``layout="auto"``: if no layout has all of
        them); the message lists every path looked for.
    ValueError
        If ``layout="auto"`` finds both layouts complete, or on an unknown
        layout.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "ASVspoof5.train.tsv").write_text("")
    ...     layout, protocols = detect_layout(tmp, splits=("train",))
    >>> layout, sorted(protocols)
    ('asvspoof5', ['train'])
    """
    root = Path(os.path.abspath(data_folder))
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} does not exist")
    if layout not in LAYOUTS + ("auto",):
        raise ValueError(f"Unknown layout {layout!r}; valid: auto, {', '.join(LAYOUTS)}")
    candidates = LAYOUTS if layout == "auto" else (layout,)
    results = {name: _find_protocols(root, name, splits) for name in candidates}
    complete = [name for name in candidates if len(results[name][0]) == len(splits)]
    if len(complete) == 1:
        return complete[0], results[complete[0]][0]
    if len(complete) > 1:
        raise ValueError(
            f"{root} holds the protocols of several layouts ({', '.join(complete)}); "
            f"pass layout= explicitly"
        )
    details = []
    for name in candidates:
        found, looked = results[name]
        missing = {split: paths for split, paths in looked.items() if split not in found}
        details.append(f"{name}: found {sorted(found) or 'none'}, missing "
                       f"{_looked_for(missing)}")
    raise FileNotFoundError(
        f"No complete set of protocol files for splits {list(splits)} in {root} "
        f"(layout={layout}); looked for " + " | ".join(details)
    )


def find_asv_scores(data_folder, layout, splits=SPLITS):
    """Paths of the organisers' ASV score files (2019 LA dev / eval) that exist.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root (the parent of ``LA/`` or ``LA/`` itself).
    layout : str
        ``"asvspoof2019_la"``; ``"asvspoof5"`` has no such files (``{}``).
    splits : tuple of str
        Requested splits; only ``dev`` and ``eval`` have ASV scores.

    Returns
    -------
    dict
        ``{split: absolute path or None}`` for ``dev`` / ``eval`` in
        ``splits`` (None, with an info log, where the file is absent).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = Path(tmp, "LA", LA_ASV_SCORE_DIR)
    ...     folder.mkdir(parents=True)
    ...     _ = (folder / LA_ASV_SCORES["eval"]).write_text("bonafide target 1.0\\n")
    ...     found = find_asv_scores(tmp, "asvspoof2019_la")
    >>> found["dev"], Path(found["eval"]).name
    (None, 'ASVspoof2019.LA.asv.eval.gi.trl.scores.txt')
    """
    if layout != "asvspoof2019_la":
        return {}
    folder = _la_root(Path(os.path.abspath(data_folder))) / LA_ASV_SCORE_DIR
    found = {}
    for split in (split for split in splits if split in LA_ASV_SCORES):
        path = folder / LA_ASV_SCORES[split]
        found[split] = str(path) if path.is_file() else None
        if found[split] is None:
            logger.info("No ASV scores for the %s t-DCF: %s is absent", split, path)
    return found


def _audio_dirs(root, layout, split, protocol):
    """Folders where the audio of ``split`` may be, in order of preference."""
    if layout == "asvspoof2019_la":
        return [_la_root(root) / f"ASVspoof2019_LA_{split}" / "flac"]
    bases = _unique([root, protocol.parent, protocol.parent.parent])
    return _unique(base / name for name in ASV5_AUDIO_DIRS[split] for base in bases)


def _listing(folder, cache):
    """Names of the files in ``folder`` (one ``scandir``, cached)."""
    if folder not in cache:
        try:
            with os.scandir(folder) as entries:
                cache[folder] = {entry.name for entry in entries}
        except OSError:
            cache[folder] = set()
    return cache[folder]


def _locate_audio(rows, dirs, check_audio, cache):
    """Sets ``row["wav"]``; returns the paths of the files not found."""
    existing = [folder for folder in dirs if folder.is_dir()]
    if not check_audio:
        default = existing[0] if existing else dirs[0]
        for row in rows:
            row["wav"] = str(default / f"{row['ID']}.flac")
        return []
    missing = []
    for row in rows:
        name = f"{row['ID']}.flac"
        folder = next((f for f in existing if name in _listing(f, cache)), None)
        if folder is None:
            missing.append(str((existing[0] if existing else dirs[0]) / name))
            folder = dirs[0]
        row["wav"] = str(folder / name)
    return missing


def _counts(rows, key):
    """Occurrences of each value of ``row[key]``, sorted by value."""
    counts = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + 1
    return dict(sorted(counts.items()))


# ------------------------------------------------------------------- scan
def _check_splits(splits):
    """Splits as a tuple without repeats; raises on an unknown one."""
    if isinstance(splits, str):
        splits = (splits,)
    splits = tuple(dict.fromkeys(splits))
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"Invalid splits {list(splits)}; choose among {', '.join(SPLITS)}")
    return splits


def _parse_protocols(layout, protocols):
    """``{split: protocol rows}`` of every protocol."""
    parse = parse_asvspoof5_protocol if layout == "asvspoof5" else parse_asvspoof2019_protocol
    rows = {}
    for split, path in protocols.items():
        rows[split] = parse(path)
        logger.info("%s: %d files listed", path, len(rows[split]))
    return rows


# --------------------------------------------------------------- validate
def _check_audio_files(rows, audio_dirs, check_audio, save_folder):
    """Sets the ``wav`` of every row; one error for all missing files."""
    missing, cache = [], {}
    for split, split_rows in rows.items():
        missing += _locate_audio(split_rows, audio_dirs[split], check_audio, cache)
    if missing:
        looked = "; ".join(f"{split}: {', '.join(str(d) for d in dirs)}"
                           for split, dirs in audio_dirs.items())
        raise FileNotFoundError(
            f"{len(missing)} audio files listed in the protocols are missing "
            f"(first {min(len(missing), MAX_EXAMPLES)}: "
            f"{', '.join(missing[:MAX_EXAMPLES])}); audio folders looked in: {looked}. "
            f"Nothing was written to {save_folder}"
        )


def _read_durations(rows, read_durations, progress):
    """Sets the ``duration`` of every row from its header (``0.0`` if not read)."""
    rates = {}
    for split, split_rows in rows.items():
        for row in tqdm(split_rows, desc=f"Reading {split} audio headers",
                        disable=not progress or not read_durations):
            if not read_durations:
                row["duration"] = repr(0.0)
                continue
            duration, rate = audio_duration(row["wav"])
            row["duration"] = repr(duration)
            rates[rate] = rates.get(rate, 0) + 1
    if len(rates) > 1:
        logger.warning("Several sampling rates found (rate: files): %s", rates)


# ------------------------------------------------------------------ write
def _new_summary(layout, root, save_folder, protocols, asv_scores):
    """Summary before anything is written."""
    return {
        "layout": layout,
        "data_folder": str(root),
        "save_folder": str(save_folder),
        "protocols": {split: str(path) for split, path in protocols.items()},
        "asv_scores": asv_scores,
        "csv": {},
        "csv_rows": {},
        "num_files": {},
        "counts": {},
        "attacks": {},
        "codecs": {},
        "skipped_inputs": [],
        "already_prepared": False,
    }


def _write_split(save_folder, split, rows, summary):
    """Writes ``<split>.csv`` and counts labels, attacks and codecs."""
    path = write_manifest(summary, save_folder / f"{split}.csv", FIELDS,
                          [[row[f] for f in FIELDS] for row in rows])
    labels = _counts(rows, "label")
    summary["csv"][split] = path
    summary["num_files"][split] = len(rows)
    summary["counts"][split] = {label: labels.get(label, 0) for label in LABELS}
    summary["attacks"][split] = _counts(rows, "attack")
    summary["codecs"][split] = _counts(rows, "codec")
    logger.info("%s: %d files (%d bonafide, %d spoof, %d attacks)", path, len(rows),
                summary["counts"][split]["bonafide"], summary["counts"][split]["spoof"],
                len(set(summary["attacks"][split]) - {"bonafide"}))


def prepare_asvspoof(
    data_folder,
    save_folder,
    layout="auto",
    splits=SPLITS,
    skip_prep=False,
    check_audio=True,
    read_durations=True,
    progress=True,
):
    """Writes SpeechBrain CSV manifests for ASVspoof5 or ASVspoof 2019 LA.

    See the module docstring for the layouts and the output files.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root (for 2019 LA the parent of ``LA/`` or ``LA/`` itself).
    save_folder : str or pathlib.Path
        Where the CSVs and the options file go.
    layout : str
        ``"asvspoof5"``, ``"asvspoof2019_la"`` or ``"auto"`` (the layout
        whose protocol files exist for every requested split).
    splits : tuple of str
        Subset of ``("train", "dev", "eval")``.
    skip_prep : bool
        Returns at once without doing anything.
    check_audio : bool
        Checks that every listed audio file exists before writing anything.
        ``False`` is only meant for fast re-listing of a corpus known to be
        complete: missing files then surface later (with
        ``read_durations=True`` still here, at the first missing header).
    read_durations : bool
        Reads every duration from the file header. ``False`` writes ``0.0``
        as duration (for huge sets where reading every header is too slow);
        duration-based sorting and filtering are then meaningless.
    progress : bool
        Whether to show progress bars.

    Returns
    -------
    dict
        ``layout``, ``csv`` (split -> CSV path), ``protocols`` (split ->
        protocol path), ``counts`` (split -> ``{"bonafide": n, "spoof":
        m}``), ``attacks`` and ``codecs`` (split -> value -> number of
        files), ``num_files`` (split -> rows), ``csv_rows`` (CSV path ->
        rows), ``asv_scores`` (2019 LA: ``dev`` / ``eval`` among the
        splits -> path of the organisers' ASV score file, or None if absent;
        ``{}`` for ASVspoof5; looked up afresh on every call, see
        :func:`find_asv_scores`), ``skipped_inputs`` (always empty: a
        missing or unreadable file is an error), ``data_folder``,
        ``save_folder`` and
        ``already_prepared`` (``True`` when the outputs were up to date and
        nothing was rewritten); with ``skip_prep`` the stored summary (if
        any) with ``skipped=True``.

    Raises
    ------
    FileNotFoundError
        Missing data folder or protocol (the message lists what was looked
        for), or audio files listed in a protocol but missing on disk (count
        and first examples; nothing is written).
    ValueError
        Malformed protocol line (file, line number and line), labels other
        than bonafide/spoof, or an invalid option.
    BadAudioFileError
        Unreadable audio header (names the file; nothing is written).

    Example
    -------
    >>> import tempfile
    >>> import numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     la = Path(tmp, "LA")
    ...     for split, line in (("train", "LA_0079 LA_T_1 - - bonafide"),
    ...                         ("dev", "LA_0080 LA_D_1 - A01 spoof")):
    ...         (la / f"ASVspoof2019_LA_{split}" / "flac").mkdir(parents=True)
    ...         name = line.split()[1]
    ...         sf.write(la / f"ASVspoof2019_LA_{split}" / "flac" / f"{name}.flac",
    ...                  np.zeros(1600), 16000)
    ...         (la / LA_PROTOCOL_DIR).mkdir(exist_ok=True)
    ...         _ = (la / LA_PROTOCOL_DIR / LA_PROTOCOLS[split]).write_text(line + "\\n")
    ...     info = prepare_asvspoof(tmp, f"{tmp}/save", splits=("train", "dev"),
    ...                             progress=False)
    ...     again = prepare_asvspoof(tmp, f"{tmp}/save", splits=("train", "dev"),
    ...                              progress=False)
    >>> info["layout"], again["already_prepared"]
    ('asvspoof2019_la', True)
    >>> info["counts"]
    {'train': {'bonafide': 1, 'spoof': 0}, 'dev': {'bonafide': 0, 'spoof': 1}}
    """
    state = PreparedState(save_folder, OPT_FILE, "ASVspoof")
    if skip_prep:
        return state.skip()
    splits = _check_splits(splits)
    root = Path(os.path.abspath(data_folder))
    layout, protocols = detect_layout(root, layout, splits)
    audio_dirs = {split: _audio_dirs(root, layout, split, protocols[split]) for split in splits}
    options = {
        "version": PREP_VERSION,
        "data_folder": str(root),
        "layout": layout,
        "splits": list(splits),
        "check_audio": bool(check_audio),
        "read_durations": bool(read_durations),
    }
    # taken before reading anything: a change made while reading re-prepares
    inputs = fingerprint(list(protocols.values())
                         + [folder for dirs in audio_dirs.values() for folder in dirs])
    asv_scores = find_asv_scores(root, layout, splits)
    summary = state.lookup(options, inputs)
    if summary is not None:
        summary["asv_scores"] = asv_scores  # optional files: not part of the fingerprint
        return summary

    rows = _parse_protocols(layout, protocols)
    _check_audio_files(rows, audio_dirs, check_audio, state.save_folder)
    _read_durations(rows, read_durations, progress)

    state.clear()
    summary = _new_summary(layout, root, state.save_folder, protocols, asv_scores)
    for split in splits:
        _write_split(state.save_folder, split, rows[split], summary)
    state.store(options, inputs, summary, flat_paths(summary["csv"]))
    return summary


if __name__ == "__main__":
    sys.exit(run_cli(prepare_asvspoof))
