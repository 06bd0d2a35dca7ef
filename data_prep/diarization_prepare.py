"""Speaker diarization data preparation: recording and chunk CSV manifests.

Supported layouts (``layout=``), ``<root>`` being ``data_folder``:

* ``generic``::

      <root>/<split>/audio/<uri>.wav|.flac
      <root>/<split>/rttm/<uri>.rttm
      <root>/<split>/uem/<uri>.uem          optional

  The uri is the audio file stem. RTTM is whitespace separated, so a stem
  containing whitespace cannot be a uri: such files raise an error (rename
  them). A per-recording RTTM whose lines use another single uri is
  accepted for that recording; audio without an RTTM is skipped (logged and
  counted in ``unlabelled``), an RTTM without audio is an error.
* ``kaldi``: ``<root>/<split>/wav.scp`` (``<uri> <path>`` lines; piped
  commands are not supported), ``<root>/<split>/rttm`` (one RTTM with every
  recording; a recording without turns has no speech) and optionally
  ``<root>/<split>/uem``. Relative paths are relative to ``<root>``.
* ``ami``: ``<root>/amicorpus/<meeting>/audio/<meeting>.<ami_mic>.wav``
  (``ami_mic`` is ``Mix-Headset`` or ``Array1-01``) with the
  `AMI-diarization-setup <https://github.com/BUTSpeechFIT/AMI-diarization-setup>`_
  checked out as ``<root>/AMI-diarization-setup``: ``only_words/rttms/<split>/
  <meeting>.rttm``, ``uems/<split>/<meeting>.uem`` and
  ``lists/<split>.meetings.txt`` (when the list is missing, the RTTM folder
  is listed).
* ``dihard3``: the LDC layout, one folder per split: ``<root>/<split>/data/
  flac/<uri>.flac``, ``<root>/<split>/data/rttm/<uri>.rttm`` and
  ``<root>/<split>/data/uem/all.uem`` (or per-file ``<uri>.uem``). DIHARD III
  has ``dev`` and ``eval`` splits; ``test`` means ``eval``. With
  ``dihard_set="core"`` only the recordings of the core subset are kept,
  with their core UEM, read from ``<root>/<split>/docs/core.uem`` (assumed:
  a UEM listing the core recordings) or ``<root>/<split>/data/uem_scoring/
  core/all.uem`` (as shipped by the LDC); ``"full"`` keeps everything.
* ``chime6``: ``<root>/audio/<split>/<session>_<array>.CH<n>.wav`` and
  ``<root>/transcriptions/<split>/<session>.json`` (a list of utterances
  ``{"speaker", "start_time", "end_time", ...}`` with ``"H:MM:SS.ss"``
  times, turned into RTTM; CHiME-5 style per-device time dicts use the
  chosen array, else ``"original"``). ``chime6_array=("U06", 1)`` picks
  the array and channel; the uri is the session. ``test`` means ``eval``
  when there is no ``test`` folder.
* ``voxconverse``: ``<root>/audio/<split>/<uri>.wav`` and
  ``<root>/<split>/<uri>.rttm`` (the public repository layout); splits
  ``dev`` and ``test``.
* ``msdwild``: ``<root>/wav/<uri>.wav`` and ``<root>/rttms/<name>.rttm``
  with ``train`` -> ``few.train``, ``dev`` -> ``few.val`` and ``test`` ->
  ``many.val`` (the few-speaker validation set as dev, the many-speaker one
  as test).

A split the layout does not have raises an error naming the valid ones.

Outputs in ``save_folder`` for every split:

* ``rttm/<split>/<uri>.rttm`` and ``uem/<split>/<uri>.uem``: the reference
  and evaluation map of each recording, normalised with
  :func:`~speechbrain_pruning.diarization.rttm.write_rttm` /
  :func:`~speechbrain_pruning.diarization.rttm.write_uem`. The UEM is the
  corpus UEM if any (clipped to the audio), else the whole file.
* ``<split>_recordings.csv`` (``ID,duration,wav,rttm,uem``): ID = uri.
* ``<split>_chunks.csv`` (``ID,duration,wav,rec_id,start,stop,rttm``):
  ``chunk_seconds`` windows every ``chunk_shift`` seconds inside every UEM
  region, the last one aligned to the region end (a region shorter than a
  chunk gives one shorter chunk; regions shorter than 25 ms are dropped).
  ID ``<uri>_<start_ms>_<stop_ms>``.
* ``opt_diarization_prepare.json``: options, a fingerprint of the input
  files (sizes and modification times), the list of outputs and the
  summary; a later call with the same options and inputs, whose outputs
  all exist, returns at once.

All times and durations are in seconds (3 decimals for chunk bounds);
``wav`` paths are absolute and durations come from the audio headers.
Every reference is read and every header checked before anything is
written. Command line (options as in :func:`prepare_diarization`, with
dashes)::

    python data_prep/diarization_prepare.py --data-folder /data/ami \\
        --save-folder results/save --layout ami --chunk-seconds 8 --chunk-shift 6

Authors
 * speechbrain_pruning contributors
"""

import json
import logging
import os
import re
import sys
from pathlib import Path

import numpy as np  # noqa: F401 (the doctests use it)
import soundfile as sf  # noqa: F401 (the doctests use it)
from pyannote.core import Annotation, Segment, Timeline
from tqdm import tqdm

from speechbrain_pruning.diarization.rttm import read_rttm, read_uem, write_rttm, write_uem

from data_prep.common import BadAudioFileError, PreparedState, audio_info  # noqa: F401
from data_prep.common import fingerprint, note_skipped, run_cli, write_manifest

logger = logging.getLogger(__name__)

__all__ = ["prepare_diarization", "chunk_regions", "parse_chime_time", "read_chime6_json",
           "BadAudioFileError"]

OPT_FILE = "opt_diarization_prepare.json"
RECORDING_FIELDS = ("ID", "duration", "wav", "rttm", "uem")
CHUNK_FIELDS = ("ID", "duration", "wav", "rec_id", "start", "stop", "rttm")
LAYOUTS = ("generic", "kaldi", "ami", "dihard3", "chime6", "voxconverse", "msdwild")
SPLITS = ("train", "dev", "test")
MIN_CHUNK_MS = 25
PREP_VERSION = 2
AUDIO_SUFFIXES = (".wav", ".flac")
MSDWILD_LISTS = {"train": "few.train", "dev": "few.val", "test": "many.val"}
LAYOUT_SPLITS = {"dihard3": ("dev", "test"), "voxconverse": ("dev", "test")}


def parse_chime_time(text):
    """Seconds of a CHiME-5/6 time string ``"H:MM:SS.ss"``.

    Arguments
    ---------
    text : str
        Time as ``H:MM:SS.ss`` (``MM:SS.ss`` and plain seconds also work).

    Returns
    -------
    float
        Seconds.

    Raises
    ------
    ValueError
        If ``text`` is not such a time.

    Example
    -------
    >>> parse_chime_time("1:02:03.45")
    3723.45
    """
    parts = str(text).strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+(\.\d*)?", p) for p in parts):
        raise ValueError(f"expected a time 'H:MM:SS.ss', got {text!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return round(seconds, 6)


def chunk_regions(regions, chunk_seconds, chunk_shift):
    """Chunk bounds (integer milliseconds) inside evaluation regions.

    Windows of ``chunk_seconds`` start every ``chunk_shift`` seconds from
    each region start; the last window is aligned to the region end. A
    region shorter than a chunk gives one chunk covering it; regions
    shorter than 25 ms are dropped.

    Arguments
    ---------
    regions : iterable of tuple
        ``(start, end)`` in seconds.
    chunk_seconds : float
        Chunk length in seconds.
    chunk_shift : float
        Seconds between chunk starts.

    Returns
    -------
    list of tuple
        ``(start_ms, stop_ms)`` pairs.

    Example
    -------
    >>> chunk_regions([(0.0, 20.0), (30.0, 33.0)], 8.0, 6.0)
    [(0, 8000), (6000, 14000), (12000, 20000), (30000, 33000)]
    """
    size, shift = int(round(chunk_seconds * 1000)), int(round(chunk_shift * 1000))
    if size <= 0 or shift <= 0:
        raise ValueError(f"chunk_seconds and chunk_shift must be positive, got "
                         f"{chunk_seconds} and {chunk_shift}")
    chunks = []
    for start, end in regions:
        first, last = int(round(start * 1000)), int(round(end * 1000))
        if last - first < MIN_CHUNK_MS:
            continue
        if last - first <= size:
            chunks.append((first, last))
            continue
        offset = first
        while offset + size < last:
            chunks.append((offset, offset + size))
            offset += shift
        if not chunks or chunks[-1][1] != last:
            chunks.append((last - size, last))
    return chunks


# ------------------------------------------------------------------ layouts
class _Split:
    """What a layout found for one split: audio, references, inputs read."""

    def __init__(self):
        self.audio = {}        # uri -> audio path or None when missing
        self.expected = {}     # uri -> expected audio path (for errors)
        self.annotations = {}  # uri -> Annotation
        self.uems = {}         # uri -> Timeline (corpus UEM) when any
        self.inputs = []       # reference files read (fingerprint)
        self.unlabelled = []   # audio without reference

    def add(self, uri, audio, annotation, uem=None, expected=None):
        if re.search(r"\s", uri):
            raise ValueError(
                f"Recording {uri!r} ({audio or expected}): RTTM uris cannot contain "
                f"whitespace, so this recording cannot be matched to its RTTM; rename it")
        self.audio[uri] = Path(audio) if audio is not None and Path(audio).is_file() else None
        self.expected[uri] = str(audio if audio is not None else expected)
        annotation = annotation if annotation is not None else Annotation(uri=uri)
        annotation.uri = uri
        self.annotations[uri] = annotation
        if uem is not None:
            self.uems[uri] = uem


def _require(path, what):
    if not Path(path).exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return Path(path)


def _read_for_uri(path, uri, found, reader, what):
    """The entry of ``uri`` in a per-recording RTTM or UEM file.

    A file whose entries all use one other uri is accepted (with a warning);
    an empty RTTM means no speech (``None``), an empty UEM is an error.
    """
    entries = reader(path)
    found.inputs.append(path)
    if uri in entries:
        return entries[uri]
    if len(entries) == 1:
        (other, entry), = entries.items()
        logger.warning("%s: uri %s used for recording %s", path, other, uri)
        return entry
    if entries or what == "UEM region":
        raise ValueError(f"{path}: expected a {what} of recording {uri!r}, found uris "
                         f"{sorted(entries)[:5]}")
    return None


def _read_rttm_uri(path, uri, found):
    """The annotation of ``uri`` in a per-recording RTTM (``None``: no speech)."""
    return _read_for_uri(path, uri, found, read_rttm, "turn")


def _read_uem_uri(path, uri, found):
    """The evaluation regions of ``uri`` in a per-recording UEM."""
    return _read_for_uri(path, uri, found, read_uem, "UEM region")


def _files(folder, suffixes):
    """stem -> path of the files of ``folder`` with one of ``suffixes``."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes
            and p.is_file()}


def _generic(root, split, **_):
    base = _require(root / split, f"Split folder ({split}) of the generic layout:")
    audio = _files(base / "audio", AUDIO_SUFFIXES)
    rttms = _files(_require(base / "rttm", "RTTM folder"), (".rttm",))
    uems = _files(base / "uem", (".uem",))
    found = _Split()
    for stem, path in audio.items():
        if re.search(r"\s", stem):
            found.add(stem, path, None)  # raises the whitespace error
    for uri in sorted(set(rttms) | set(uems)):
        if uri not in rttms:
            raise FileNotFoundError(f"{uems[uri]} has no RTTM {base / 'rttm' / (uri + '.rttm')}")
        annotation = _read_rttm_uri(rttms[uri], uri, found)
        uem = _read_uem_uri(uems[uri], uri, found) if uri in uems else None
        found.add(uri, audio.get(uri), annotation, uem,
                  expected=base / "audio" / f"{uri}.wav")
    found.unlabelled = [str(p) for stem, p in audio.items() if stem not in rttms]
    return found


def _kaldi(root, split, **_):
    base = _require(root / split, f"Split folder ({split}) of the kaldi layout:")
    scp = _require(base / "wav.scp", "Kaldi wav.scp")
    paths = {}
    with open(scp, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.strip().split(maxsplit=1)
            if not fields:
                continue
            if len(fields) != 2 or fields[1].rstrip().endswith("|"):
                raise ValueError(f"{scp}, line {line_number}: expected '<uri> <audio path>' "
                                 f"(piped commands are not supported), got {line.rstrip()!r}")
            if fields[0] in paths:
                raise ValueError(f"{scp}, line {line_number}: recording {fields[0]} listed twice")
            path = Path(fields[1].strip())
            paths[fields[0]] = path if path.is_absolute() else root / path
    found = _Split()
    found.inputs.append(scp)
    rttm_path = _require(base / "rttm", "Kaldi RTTM file")
    annotations = read_rttm(rttm_path)
    found.inputs.append(rttm_path)
    uems = {}
    if (base / "uem").is_file():
        uems = read_uem(base / "uem")
        found.inputs.append(base / "uem")
    for uri in sorted(set(paths) | set(annotations) | set(uems)):
        found.add(uri, paths.get(uri), annotations.get(uri), uems.get(uri),
                  expected=f"(no wav.scp entry in {scp})")
    return found


def _ami(root, split, ami_mic="Mix-Headset", **_):
    setup = _require(root / "AMI-diarization-setup", "AMI diarization setup folder")
    rttm_dir = _require(setup / "only_words" / "rttms" / split, "AMI RTTM folder")
    uem_dir = setup / "uems" / split
    listing = setup / "lists" / f"{split}.meetings.txt"
    found = _Split()
    if listing.is_file():
        meetings = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
        found.inputs.append(listing)
    else:
        meetings = sorted(_files(rttm_dir, (".rttm",)))
    for meeting in meetings:
        rttm = _require(rttm_dir / f"{meeting}.rttm", f"RTTM of meeting {meeting}:")
        annotation = _read_rttm_uri(rttm, meeting, found)
        uem = None
        if (uem_dir / f"{meeting}.uem").is_file():
            uem = _read_uem_uri(uem_dir / f"{meeting}.uem", meeting, found)
        audio = root / "amicorpus" / meeting / "audio" / f"{meeting}.{ami_mic}.wav"
        found.add(meeting, audio, annotation, uem)
    return found


def _dihard_folder(root, split):
    base = root / split
    if split == "test" and not base.is_dir():
        base = root / "eval"
    return _require(base, f"DIHARD III split folder ({split}; test means eval):")


def _dihard3(root, split, dihard_set="core", **_):
    base = _dihard_folder(root, split)
    data = base / "data"
    rttms = _files(_require(data / "rttm", "DIHARD III RTTM folder"), (".rttm",))
    audio = _files(data / "flac", AUDIO_SUFFIXES)
    found = _Split()
    uems = {}
    if (data / "uem" / "all.uem").is_file():
        uems = read_uem(data / "uem" / "all.uem")
        found.inputs.append(data / "uem" / "all.uem")
    else:
        for uri, path in _files(data / "uem", (".uem",)).items():
            uems[uri] = _read_uem_uri(path, uri, found)
    uris = sorted(set(rttms) | set(uems))
    if dihard_set == "core":
        candidates = [base / "docs" / "core.uem", data / "uem_scoring" / "core" / "all.uem"]
        core_path = next((p for p in candidates if p.is_file()), None)
        if core_path is None:
            raise FileNotFoundError(
                f"dihard_set='core' needs the core UEM: none of "
                f"{', '.join(str(p) for p in candidates)} exists (or use dihard_set='full')")
        core = read_uem(core_path)
        found.inputs.append(core_path)
        uems.update(core)
        uris = sorted(core)
    for uri in uris:
        if uri not in rttms:
            raise FileNotFoundError(f"DIHARD III recording {uri} has no RTTM "
                                    f"{data / 'rttm' / (uri + '.rttm')}")
        found.add(uri, audio.get(uri), _read_rttm_uri(rttms[uri], uri, found), uems.get(uri),
                  expected=data / "flac" / f"{uri}.flac")
    return found


def _chime_time(value, array, path, index, key):
    if isinstance(value, dict):
        value = value.get(array, value.get("original"))
    try:
        return parse_chime_time(value)
    except ValueError as err:
        raise ValueError(f"{path}, utterance {index + 1}: bad {key}: {err}") from err


def read_chime6_json(path, uri, array="U06"):
    """Speaker turns of a CHiME-5/6 transcription JSON as an annotation.

    Arguments
    ---------
    path : str or pathlib.Path
        JSON file: a list of ``{"speaker", "start_time", "end_time", ...}``.
    uri : str
        Uri of the returned annotation.
    array : str
        Key used when times are per-device dicts (CHiME-5 style).

    Returns
    -------
    pyannote.core.Annotation

    Raises
    ------
    ValueError
        On a malformed entry, naming the file and the 1-based utterance.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "S02.json").write_text(json.dumps([{"speaker": "P05",
    ...         "start_time": "0:00:01.50", "end_time": "0:00:02.25", "words": "hi"}]))
    ...     list(read_chime6_json(Path(tmp, "S02.json"), "S02").itertracks(yield_label=True))
    [(<Segment(1.5, 2.25)>, 0, 'P05')]
    """
    with open(path, encoding="utf-8") as handle:
        try:
            items = json.load(handle)
        except ValueError as err:
            raise ValueError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of utterances")
    annotation = Annotation(uri=uri)
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not {"speaker", "start_time", "end_time"} <= set(item):
            raise ValueError(f"{path}, utterance {index + 1}: expected speaker, start_time "
                             f"and end_time, got {item!r:.200}")
        start = _chime_time(item["start_time"], array, path, index, "start_time")
        end = _chime_time(item["end_time"], array, path, index, "end_time")
        if end < start:
            raise ValueError(f"{path}, utterance {index + 1}: end {end} before start {start}")
        if end > start:
            annotation[Segment(start, end), index] = str(item["speaker"])
    return annotation


def _chime_folder(root, kind, split):
    folder = root / kind / split
    if split == "test" and not folder.is_dir():
        folder = root / kind / "eval"
    return folder


def _chime6(root, split, chime6_array=("U06", 1), **_):
    array, channel = chime6_array
    json_dir = _require(_chime_folder(root, "transcriptions", split),
                        f"CHiME-6 transcription folder ({split}):")
    audio_dir = _chime_folder(root, "audio", split)
    found = _Split()
    for session, path in _files(json_dir, (".json",)).items():
        annotation = read_chime6_json(path, session, array)
        found.inputs.append(path)
        found.add(session, audio_dir / f"{session}_{array}.CH{int(channel)}.wav", annotation)
    return found


def _voxconverse(root, split, **_):
    rttms = _files(_require(root / split, f"VoxConverse RTTM folder ({split}):"), (".rttm",))
    found = _Split()
    for uri, path in rttms.items():
        found.add(uri, root / "audio" / split / f"{uri}.wav", _read_rttm_uri(path, uri, found))
    return found


def _msdwild(root, split, **_):
    path = _require(root / "rttms" / f"{MSDWILD_LISTS[split]}.rttm",
                    f"MSDWild RTTM of split {split}:")
    found = _Split()
    found.inputs.append(path)
    for uri, annotation in sorted(read_rttm(path).items()):
        found.add(uri, root / "wav" / f"{uri}.wav", annotation)
    return found


_LAYOUT_READERS = {"generic": _generic, "kaldi": _kaldi, "ami": _ami, "dihard3": _dihard3,
                   "chime6": _chime6, "voxconverse": _voxconverse, "msdwild": _msdwild}


# --------------------------------------------------------------------- scan
def _check_options(layout, splits, chunk_seconds, chunk_shift, dihard_set, chime6_array):
    """Splits as a list without repeats; raises ``ValueError`` on an invalid option."""
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    if isinstance(splits, str):
        splits = (splits,)
    valid = LAYOUT_SPLITS.get(layout, SPLITS)
    unknown = [split for split in splits if split not in valid]
    if unknown or not splits:
        raise ValueError(f"Layout {layout!r} has no split(s) {unknown}; valid: "
                         f"{', '.join(valid)}" + (" (test means eval)" if layout == "dihard3"
                                                 else ""))
    if chunk_seconds <= 0 or chunk_shift <= 0:
        raise ValueError(f"chunk_seconds and chunk_shift must be positive, got "
                         f"{chunk_seconds} and {chunk_shift}")
    if dihard_set not in ("core", "full"):
        raise ValueError(f"dihard_set must be 'core' or 'full', got {dihard_set!r}")
    if len(tuple(chime6_array)) != 2:
        raise ValueError(f"chime6_array must be (array, channel), got {chime6_array!r}")
    return list(dict.fromkeys(splits))


def _scan(root, layout, splits, **layout_options):
    """What the layout reader finds for every split (``{split: _Split}``)."""
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} does not exist")
    reader = _LAYOUT_READERS[layout]
    return {split: reader(root, split, **layout_options) for split in splits}


# ----------------------------------------------------------------- validate
def _check_audio_exists(found, layout, root):
    """One error for all recordings without audio; every split needs recordings."""
    missing = [(split, uri, found[split].expected[uri]) for split in found
               for uri, path in found[split].audio.items() if path is None]
    if missing:
        examples = "; ".join(f"{split}/{uri}: {path}" for split, uri, path in missing[:5])
        raise FileNotFoundError(
            f"{len(missing)} recordings referenced by the {layout} references have no audio "
            f"(first: {examples})")
    for split in found:
        if not found[split].audio:
            raise FileNotFoundError(f"No recordings found for split {split} of the {layout} "
                                    f"layout in {root}")


def _read_durations(found, progress):
    """``({(split, uri): seconds}, {sample rate: recordings})`` from the headers."""
    durations, rates = {}, {}
    for split in found:
        for uri, path in tqdm(sorted(found[split].audio.items()), disable=not progress,
                              desc=f"Reading {split} audio headers"):
            frames, rate = audio_info(path)
            durations[split, uri] = frames / rate
            rates[rate] = rates.get(rate, 0) + 1
    return durations, rates


# -------------------------------------------------------------------- write
def _clip_uem(uem, uri, duration):
    """UEM regions clipped to ``[0, duration]`` (whole file when ``uem`` is None)."""
    whole = Segment(0.0, duration)
    if uem is None:
        return Timeline([whole], uri=uri)
    support = uem.support()
    if support and support.extent().end > duration + 0.01:
        logger.warning("UEM of %s ends at %.3f s after the audio end %.3f s; clipped", uri,
                       support.extent().end, duration)
    clipped = Timeline([s for s in support.crop(whole, mode="intersection") if s.duration > 0],
                       uri=uri)
    return clipped


def _chunk_rows(uri, wav, uem, rttm_path, chunk_seconds, chunk_shift):
    """Rows of ``<split>_chunks.csv`` for one recording."""
    return [(f"{uri}_{start}_{stop}", f"{(stop - start) / 1000:.3f}", wav, uri,
             f"{start / 1000:.3f}", f"{stop / 1000:.3f}", str(rttm_path))
            for start, stop in chunk_regions([(s.start, s.end) for s in uem],
                                             chunk_seconds, chunk_shift)]


def _write_split(save_folder, split, found, durations, chunk_seconds, chunk_shift, summary):
    """Writes the RTTM/UEM files and CSVs of a split; returns every path written."""
    rttm_dir, uem_dir = save_folder / "rttm" / split, save_folder / "uem" / split
    rttm_dir.mkdir(parents=True, exist_ok=True)
    uem_dir.mkdir(parents=True, exist_ok=True)
    recordings, chunks, speakers, written = [], [], {}, []
    for uri in sorted(found.audio):
        wav, duration = str(found.audio[uri]), durations[split, uri]
        annotation = found.annotations[uri]
        uem = _clip_uem(found.uems.get(uri), uri, duration)
        rttm_path, uem_path = rttm_dir / f"{uri}.rttm", uem_dir / f"{uri}.uem"
        write_rttm(annotation, rttm_path)
        write_uem({uri: uem}, uem_path)
        written += [str(rttm_path), str(uem_path)]
        speakers[uri] = len(annotation.labels())
        recordings.append((uri, repr(duration), wav, str(rttm_path), str(uem_path)))
        chunks += _chunk_rows(uri, wav, uem, rttm_path, chunk_seconds, chunk_shift)
    csvs = {"recordings": write_manifest(summary, save_folder / f"{split}_recordings.csv",
                                         RECORDING_FIELDS, recordings),
            "chunks": write_manifest(summary, save_folder / f"{split}_chunks.csv",
                                     CHUNK_FIELDS, chunks)}
    hours = sum(durations[split, uri] for uri in speakers) / 3600
    summary["csv"][split] = csvs
    summary["num_recordings"][split] = len(recordings)
    summary["num_chunks"][split] = len(chunks)
    summary["hours"][split] = hours
    summary["speakers_per_recording"][split] = speakers
    summary["total_hours"] += hours
    logger.info("%s: %d recordings (%.2f h), %d chunks", split, len(recordings), hours,
                len(chunks))
    return written + list(csvs.values())


def _new_summary(save_folder, root, layout, found, rates):
    """Summary before anything is written; audio without reference is noted."""
    summary = {
        "save_folder": str(save_folder),
        "data_folder": str(root),
        "layout": layout,
        "csv": {},
        "csv_rows": {},
        "num_recordings": {},
        "num_chunks": {},
        "hours": {},
        "total_hours": 0.0,
        "speakers_per_recording": {},
        "sample_rates": {str(rate): count for rate, count in sorted(rates.items())},
        "unlabelled": sorted(p for split in found for p in found[split].unlabelled),
        "skipped_inputs": [],
        "already_prepared": False,
    }
    if summary["unlabelled"]:
        logger.warning("Skipped %d audio files without RTTM (first: %s)",
                       len(summary["unlabelled"]), summary["unlabelled"][0])
    note_skipped(summary, "audio files", "no reference (RTTM)", summary["unlabelled"])
    return summary


def prepare_diarization(
    data_folder,
    save_folder,
    layout="generic",
    splits=("train", "dev", "test"),
    chunk_seconds=8.0,
    chunk_shift=6.0,
    ami_mic="Mix-Headset",
    chime6_array=("U06", 1),
    dihard_set="core",
    skip_prep=False,
    progress=True,
):
    """Writes recording and chunk CSV manifests for speaker diarization.

    See the module docstring for the layouts and the output files.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root.
    save_folder : str or pathlib.Path
        Where the CSVs, normalised RTTM/UEM files and options file go.
    layout : str
        One of ``generic``, ``kaldi``, ``ami``, ``dihard3``, ``chime6``,
        ``voxconverse``, ``msdwild``.
    splits : tuple of str
        Subset of ``("train", "dev", "test")`` the layout has.
    chunk_seconds : float
        Chunk length in seconds.
    chunk_shift : float
        Seconds between chunk starts.
    ami_mic : str
        AMI audio stream (``Mix-Headset`` or ``Array1-01``).
    chime6_array : tuple
        CHiME-6 ``(array, channel)``, e.g. ``("U06", 1)``.
    dihard_set : str
        ``core`` or ``full`` DIHARD III recordings.
    skip_prep : bool
        Returns at once without doing anything.
    progress : bool
        Whether to show progress bars.

    Returns
    -------
    dict
        ``csv`` (split -> ``{"recordings": path, "chunks": path}``),
        ``num_recordings``, ``num_chunks``, ``hours`` (split -> value),
        ``total_hours``, ``speakers_per_recording`` (split -> uri -> number
        of speakers), ``sample_rates`` (rate -> number of recordings),
        ``unlabelled`` (audio files without a reference, skipped),
        ``csv_rows`` (CSV path -> rows), ``skipped_inputs`` (what was left
        out and why: a list of ``{"what", "reason", "count",
        "examples"}``), ``layout``, ``data_folder``, ``save_folder`` and
        ``already_prepared`` (``True`` when nothing was rewritten); with
        ``skip_prep`` the stored summary (if any) with ``skipped=True``.

    Raises
    ------
    FileNotFoundError
        Missing folder or reference file, or recordings without audio (one
        error for all splits, before anything is written, with the count and
        the first examples).
    ValueError
        Invalid option, malformed RTTM/UEM/JSON (file and line), or a
        recording name containing whitespace.
    BadAudioFileError
        Unreadable audio header (the message names the file).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ("audio", "rttm"):
    ...         Path(tmp, "db", "train", name).mkdir(parents=True)
    ...     sf.write(f"{tmp}/db/train/audio/rec.wav", np.zeros(16000 * 10), 16000)
    ...     _ = Path(tmp, "db/train/rttm/rec.rttm").write_text(
    ...         "SPEAKER rec 1 1.0 2.0 <NA> <NA> A <NA> <NA>\\n")
    ...     info = prepare_diarization(f"{tmp}/db", f"{tmp}/save", splits=("train",),
    ...                                progress=False)
    ...     again = prepare_diarization(f"{tmp}/db", f"{tmp}/save", splits=("train",),
    ...                                 progress=False)
    >>> info["num_chunks"], info["speakers_per_recording"], again["already_prepared"]
    ({'train': 2}, {'train': {'rec': 1}}, True)
    """
    state = PreparedState(save_folder, OPT_FILE, "Diarization data")
    if skip_prep:
        return state.skip()
    splits = _check_options(layout, splits, chunk_seconds, chunk_shift, dihard_set,
                            chime6_array)
    root = Path(os.path.abspath(data_folder))
    found = _scan(root, layout, splits, ami_mic=ami_mic, chime6_array=tuple(chime6_array),
                  dihard_set=dihard_set)
    _check_audio_exists(found, layout, root)
    options = {
        "version": PREP_VERSION,
        "data_folder": str(root),
        "layout": layout,
        "splits": splits,
        "chunk_seconds": float(chunk_seconds),
        "chunk_shift": float(chunk_shift),
        "ami_mic": ami_mic if layout == "ami" else None,
        "chime6_array": list(chime6_array) if layout == "chime6" else None,
        "dihard_set": dihard_set if layout == "dihard3" else None,
    }
    inputs = fingerprint(path for split in found.values()
                         for path in split.inputs + list(split.audio.values()))
    summary = state.lookup(options, inputs)
    if summary is not None:
        return summary

    durations, rates = _read_durations(found, progress)
    state.clear()
    summary = _new_summary(state.save_folder, root, layout, found, rates)
    written = []
    for split in splits:
        written += _write_split(state.save_folder, split, found[split], durations,
                                chunk_seconds, chunk_shift, summary)
    state.store(options, inputs, summary, written)
    return summary


if __name__ == "__main__":
    sys.exit(run_cli(prepare_diarization))
