"""VoxCeleb1/VoxCeleb2 data preparation: SpeechBrain CSV manifests.

Expected layout of each data folder (VoxCeleb1 dev+test, VoxCeleb2 dev after
conversion, or :func:`speechbrain_pruning.synthetic.make_voxceleb_mini`)::

    <root>/wav/<speaker_id>/<video_id>/<utterance>.wav
    <root>/veri_test2.txt                trial lists (or absolute paths)

VoxCeleb2 ships AAC audio as ``<root>/aac/<speaker_id>/<video_id>/*.m4a``;
files without a ``wav/`` counterpart are converted with ``ffmpeg`` to 16 kHz
mono WAV when ``convert_m4a=True``. A folder that directly holds
``<speaker_id>/<video_id>/*.wav`` (the ``wav`` folder itself) works too.

Outputs in ``save_folder``:

* ``train.csv`` (``ID,duration,wav,start,stop,spk_id``): with
  ``random_chunk=True`` one row per file (``start=0``, ``stop`` = number of
  samples, ID ``<spk>--<video>--<utt>``) so the training pipeline crops a
  random segment; with ``random_chunk=False`` one row per non-overlapping
  ``seg_dur`` chunk (ID ``<spk>--<video>--<utt>_<start>_<stop>``, a file
  shorter than ``seg_dur`` gives one chunk covering it).
* ``dev.csv`` (same columns) when ``"dev"`` is among the splits: a
  ``dev_ratio`` share of every training speaker's files, held out of
  ``train.csv`` (a closed-set validation set, as in SpeechBrain's recipe).
* ``<list>.csv`` (``ID,duration,wav,spk_id``) for every trial list: the
  unique utterances it needs, with the trial-list path
  (``id10270/5r0dWxy17C8/00001.wav``) as ID, and a copy of the trial list.
* ``opt_voxceleb_prepare.json``: the options, data folders, a fingerprint
  (audio file counts, size and modification time of the trial lists), the
  list of outputs and the returned summary; a later call with the same
  options and fingerprint, whose outputs all exist, returns at once.

Every header is read and every trial list checked before anything is
written. Command line (options as in :func:`prepare_voxceleb`, with
dashes)::

    python data_prep/voxceleb_prepare.py --data-folder /data/vox1 \\
        --save-folder results/save --trial-lists veri_test2.txt --no-progress

``start``/``stop`` are in samples and ``duration`` in seconds, both read
from the file headers (``soundfile.info``), never by decoding the audio.
``wav`` paths are absolute (no ``$data_root`` placeholder), so the CSVs can
be used as they are.

Authors
 * speechbrain_pruning contributors
"""

import concurrent.futures
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf  # noqa: F401 (the doctests use it)
from tqdm import tqdm

from data_prep.common import BadAudioFileError, PreparedState, audio_info  # noqa: F401
from data_prep.common import fingerprint, flat_paths, note_skipped, run_cli, write_manifest

logger = logging.getLogger(__name__)

OPT_FILE = "opt_voxceleb_prepare.json"
TRAIN_FIELDS = ("ID", "duration", "wav", "start", "stop", "spk_id")
TRIAL_FIELDS = ("ID", "duration", "wav", "spk_id")
SPLITS = ("train", "dev", "test")
TRIAL_LABELS = ("0", "1")
WAVLM_MIN_SAMPLES = 400
PREP_VERSION = 2
LAYOUT_HELP = (
    "expected <root>/wav/<speaker_id>/<video_id>/<utterance>.wav (VoxCeleb1, "
    "converted VoxCeleb2) or <root>/aac/<speaker_id>/<video_id>/<utterance>.m4a "
    "(VoxCeleb2, needs convert_m4a=True)"
)
CONVERT_HELP = "ffmpeg -i in.m4a -ac 1 -ar 16000 out.wav"


def chunk_bounds(num_frames, seg_frames):
    """Non-overlapping ``seg_frames`` chunks of a file, as sample bounds.

    The remainder at the end is dropped; a file shorter than one chunk
    gives a single chunk covering it.

    Arguments
    ---------
    num_frames : int
        Length of the file in samples.
    seg_frames : int
        Chunk length in samples.

    Returns
    -------
    list of tuple
        ``(start, stop)`` pairs.

    Example
    -------
    >>> chunk_bounds(100, 30)
    [(0, 30), (30, 60), (60, 90)]
    >>> chunk_bounds(20, 30)
    [(0, 20)]
    """
    if seg_frames <= 0:
        raise ValueError(f"seg_frames must be positive, got {seg_frames}")
    count = num_frames // seg_frames
    if count == 0:
        return [(0, num_frames)]
    return [(i * seg_frames, (i + 1) * seg_frames) for i in range(count)]


def parse_trial_list(path):
    """Reads a VoxCeleb trial list (``label enrol test`` per line).

    Blank lines are ignored. Paths are relative to the ``wav`` folder, the
    speaker is their first component.

    Arguments
    ---------
    path : str or pathlib.Path
        Trial list file.

    Returns
    -------
    list of tuple
        ``(label, enrol, test)`` with ``label`` an int (1 = same speaker).

    Raises
    ------
    ValueError
        On a malformed line, naming the file and the 1-based line number.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "t.txt").write_text("1 a/v/1.wav a/v/2.wav\\n0 a/v/1.wav b/w/1.wav\\n")
    ...     parse_trial_list(Path(tmp, "t.txt"))
    [(1, 'a/v/1.wav', 'a/v/2.wav'), (0, 'a/v/1.wav', 'b/w/1.wav')]
    """
    trials = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if (len(fields) != 3 or fields[0] not in TRIAL_LABELS
                    or "/" not in fields[1] or "/" not in fields[2]):
                raise ValueError(
                    f"{path}, line {line_number}: expected 'label enrol test' with "
                    f"label 0 or 1 and paths <speaker>/<video>/<utterance>.wav, "
                    f"got {line.rstrip()!r}"
                )
            trials.append((int(fields[0]), fields[1], fields[2]))
    if not trials:
        raise ValueError(f"{path}: the trial list is empty")
    return trials


def _speaker_of(rel_path):
    """Speaker id (first component) of a ``spk/video/utt.wav`` path."""
    return rel_path.split("/", 1)[0]


def _layout(root):
    """``(wav_dir, aac_dir or None)`` of a data folder."""
    if root.name == "aac":
        return root.parent / "wav", root
    has_wav, has_aac = (root / "wav").is_dir(), (root / "aac").is_dir()
    wav_dir = root / "wav" if has_wav or has_aac else root
    aac_dir = root / "aac" if has_aac else (root if wav_dir == root else None)
    return wav_dir, aac_dir


def _scan(roots):
    """Lists the wav files (relative path -> path) and m4a files to convert."""
    wavs, m4a_pairs, counts = {}, [], []
    for root in roots:
        wav_dir, aac_dir = _layout(root)
        found = sorted(wav_dir.glob("*/*/*.wav")) if wav_dir.is_dir() else []
        m4as = sorted(aac_dir.glob("*/*/*.m4a")) if aac_dir is not None else []
        for path in found:
            rel = path.relative_to(wav_dir).as_posix()
            if rel in wavs:
                raise ValueError(f"Utterance {rel} found twice: {wavs[rel]} and {path}")
            wavs[rel] = path
        for path in m4as:
            target = wav_dir / path.relative_to(aac_dir).with_suffix(".wav")
            if not target.exists():
                m4a_pairs.append((path, target))
        counts.append({"wav": len(found), "m4a": len(m4as)})
    return wavs, m4a_pairs, counts


def _convert_one(ffmpeg, source, target, sample_rate):
    """Converts one m4a file to mono PCM WAV (atomically)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-i", str(source), "-ac", "1", "-ar", str(sample_rate),
         "-c:a", "pcm_s16le", "-f", "wav", str(partial)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed to convert {source}: {result.stderr.strip()}")
    os.replace(partial, target)


def convert_m4a_files(pairs, sample_rate=16000, num_workers=None, progress=True):
    """Converts ``(m4a, wav)`` pairs with ffmpeg to mono WAV at ``sample_rate``.

    Arguments
    ---------
    pairs : list of tuple
        ``(source .m4a path, target .wav path)``.
    sample_rate : int
        Output sampling rate in Hz.
    num_workers : int, optional
        Parallel ffmpeg processes (default: number of CPU cores).
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    int
        Number of converted files.

    Raises
    ------
    RuntimeError
        If ffmpeg is not on PATH (the message gives the conversion command)
        or a conversion fails.

    Example
    -------
    >>> convert_m4a_files([])
    0
    """
    if not pairs:
        return 0
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError(
            f"convert_m4a=True needs ffmpeg on PATH to convert {len(pairs)} .m4a files, "
            f"but ffmpeg was not found; install it (e.g. apt-get install ffmpeg) or "
            f"convert every file yourself: {CONVERT_HELP}"
        )
    workers = num_workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(_convert_one, ffmpeg, src, dst, sample_rate) for src, dst in pairs]
        for job in tqdm(concurrent.futures.as_completed(jobs), total=len(jobs),
                        desc="Converting m4a to wav", disable=not progress):
            job.result()
    return len(pairs)


def _find_trial_list(name, roots):
    """Resolves a trial list name against the data folders (or as a path)."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else [root / path for root in roots] + [path]
    for candidate in candidates:
        if candidate.is_file():
            return Path(os.path.abspath(candidate))
    raise FileNotFoundError(
        f"Trial list {name} not found; looked in: {', '.join(str(c) for c in candidates)}"
    )


# --------------------------------------------------------------------- scan
def _check_options(splits, seg_dur, dev_ratio):
    """Raises ``ValueError`` on an invalid split, ``seg_dur`` or ``dev_ratio``."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"Unknown splits {sorted(unknown)}; valid: {', '.join(SPLITS)}")
    if seg_dur <= 0:
        raise ValueError(f"seg_dur must be positive, got {seg_dur}")
    if not 0.0 <= dev_ratio < 1.0:
        raise ValueError(f"dev_ratio must be in [0, 1), got {dev_ratio}")


def _data_roots(data_folder):
    """Absolute data folders (one or a list); each must exist."""
    if isinstance(data_folder, (str, os.PathLike)):
        data_folder = [data_folder]
    roots = [Path(os.path.abspath(folder)) for folder in data_folder]
    if not roots:
        raise ValueError("No data folder given")
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"Data folder {root} does not exist ({LAYOUT_HELP})")
    return roots


def _find_trial_lists(names, roots):
    """``{stem: absolute path}`` of the trial lists; stems must be unique."""
    trial_paths = {}
    for name in names:
        path = _find_trial_list(name, roots)
        if path.stem in trial_paths or path.stem in SPLITS:
            raise ValueError(f"Trial list name {path.stem!r} is used twice or clashes with "
                             f"a split")
        trial_paths[path.stem] = path
    return trial_paths


def _scan_after_conversion(roots, scan, convert_m4a, sample_rate, num_workers, progress):
    """Converts the m4a files lacking a wav (or raises); ``(wavs, counts, converted)``."""
    wavs, m4a_pairs, counts = scan
    num_converted = 0
    if m4a_pairs:
        if not convert_m4a:
            raise RuntimeError(
                f"Found {len(m4a_pairs)} .m4a files without a .wav counterpart (first: "
                f"{m4a_pairs[0][0]} -> {m4a_pairs[0][1]}). Convert them to 16 kHz mono "
                f"WAV with ffmpeg ({CONVERT_HELP}) or pass convert_m4a=True with "
                f"ffmpeg on PATH"
            )
        num_converted = convert_m4a_files(m4a_pairs, sample_rate=sample_rate,
                                          num_workers=num_workers, progress=progress)
        logger.info("Converted %d m4a files to wav", num_converted)
        wavs, _, counts = _scan(roots)
    if not wavs:
        raise FileNotFoundError(
            f"No audio found in {', '.join(str(root) for root in roots)}: {LAYOUT_HELP}"
        )
    return wavs, counts, num_converted


def _trial_speakers(trials):
    """Speakers of every utterance of the parsed trial lists."""
    return {_speaker_of(utt) for listed in trials.values()
            for _, enrol, test in listed for utt in (enrol, test)}


# ----------------------------------------------------------------- validate
def _min_frames(min_dur, rate):
    """Fewest samples of a usable file at ``rate``."""
    return WAVLM_MIN_SAMPLES if min_dur is None else int(np.ceil(min_dur * rate))


def _read_infos(items, skip_bad_files, min_dur, desc, progress, hint):
    """Reads headers of ``(key, path)`` items; drops bad and too short files.

    An unreadable file raises :class:`BadAudioFileError` (message ending
    with ``hint``) unless ``skip_bad_files``.

    Returns ``(infos, bad, too_short)`` where ``infos`` maps key ->
    ``(frames, sample_rate)``.
    """
    infos, bad, too_short = {}, [], []
    for key, path in tqdm(items, desc=desc, disable=not progress):
        try:
            frames, rate = audio_info(path)
        except BadAudioFileError as err:
            if not skip_bad_files:
                raise BadAudioFileError(f"{err}. {hint}") from err
            logger.warning("Skipping unreadable file %s", path)
            bad.append(str(path))
            continue
        if frames < _min_frames(min_dur, rate):
            too_short.append(str(path))
            continue
        infos[key] = (frames, rate)
    return infos, bad, too_short


def _training_infos(wavs, excluded, skip_bad_files, min_dur, sample_rate, progress, summary):
    """Headers of the training files; excluded, unreadable and short ones are noted."""
    kept = [rel for rel in wavs if _speaker_of(rel) not in excluded]
    dropped = [wavs[rel] for rel in wavs if _speaker_of(rel) in excluded]
    logger.info("Excluded %d trial-list speakers (%d files) from training",
                len(summary["excluded_speakers"]), len(dropped))
    infos, bad, too_short = _read_infos(
        [(rel, wavs[rel]) for rel in kept], skip_bad_files, min_dur,
        "Reading training file headers", progress,
        "Re-download or remove the file, or pass skip_bad_files=True")
    summary.update(num_excluded_files=len(dropped), bad_files=bad, num_bad_files=len(bad),
                   num_too_short=len(too_short))
    note_skipped(summary, "files", "speaker of a trial list (exclude_trial_speakers)", dropped)
    note_skipped(summary, "files", "unreadable header (skip_bad_files)", bad)
    note_skipped(summary, "files", "shorter than the minimum duration (min_dur)", too_short)
    if not infos:
        raise FileNotFoundError(
            f"No usable training audio in {', '.join(summary['data_folders'])} after "
            f"excluding {len(excluded)} trial speakers and {len(bad) + len(too_short)} "
            f"bad or short files ({LAYOUT_HELP})"
        )
    rate_counts = {}
    for _, rate in infos.values():
        rate_counts[rate] = rate_counts.get(rate, 0) + 1
    if set(rate_counts) - {sample_rate}:
        logger.warning("Sampling rates found (rate: files): %s; expected %d Hz",
                       rate_counts, sample_rate)
    return infos


def _trial_rows(stem, path, listed, wavs, infos, min_dur, progress):
    """Rows of ``<stem>.csv``: every utterance of a trial list, checked and measured."""
    needed = list(dict.fromkeys(utt for _, enrol, test in listed for utt in (enrol, test)))
    missing = [utt for utt in needed if utt not in wavs]
    if missing:
        raise ValueError(
            f"{len(missing)} utterances of trial list {path} are not in the data folders "
            f"(first: {missing[0]}; {LAYOUT_HELP})"
        )
    todo = [(utt, wavs[utt]) for utt in needed if utt not in infos]
    list_infos, _, too_short = _read_infos(
        todo, False, min_dur, f"Reading {stem} file headers", progress,
        f"Trial list {path} needs it: re-download the file")
    if too_short:
        raise ValueError(f"Trial list {path} needs files shorter than the minimum "
                         f"duration: {', '.join(too_short[:5])}")
    list_infos.update({utt: infos[utt] for utt in needed if utt in infos})
    return [(utt, repr(list_infos[utt][0] / list_infos[utt][1]), str(wavs[utt]),
             _speaker_of(utt)) for utt in needed]


# -------------------------------------------------------------------- write
def _split_dev(files_by_speaker, dev_ratio, seed):
    """Deterministically holds out ``dev_ratio`` of each speaker's files."""
    train, dev = [], []
    rng = np.random.default_rng(seed)
    for speaker in sorted(files_by_speaker):
        files = sorted(files_by_speaker[speaker])
        order = rng.permutation(len(files))
        num_dev = int(dev_ratio * len(files)) if len(files) > 1 else 0
        dev += [files[i] for i in sorted(order[:num_dev])]
        train += [files[i] for i in sorted(order[num_dev:])]
    return sorted(train), sorted(dev)


def _train_rows(rel_paths, wavs, infos, random_chunk, seg_dur):
    """Rows of ``train.csv``/``dev.csv`` for the given utterances."""
    rows = []
    for rel in rel_paths:
        frames, rate = infos[rel]
        spk, video, utt = Path(rel).parts
        base = f"{spk}--{video}--{Path(utt).stem}"
        path = str(wavs[rel])
        if random_chunk:
            rows.append((base, repr(frames / rate), path, 0, frames, spk))
            continue
        for start, stop in chunk_bounds(frames, int(round(seg_dur * rate))):
            rows.append((f"{base}_{start}_{stop}", repr((stop - start) / rate),
                         path, start, stop, spk))
    return rows


def _write_training(save_folder, splits, wavs, infos, random_chunk, seg_dur, dev_ratio,
                    seed, summary):
    """Writes ``train.csv`` and ``dev.csv`` (those in ``splits``)."""
    by_speaker = {}
    for rel in infos:
        by_speaker.setdefault(_speaker_of(rel), []).append(rel)
    train_files, dev_files = (
        _split_dev(by_speaker, dev_ratio, seed) if "dev" in splits else (sorted(infos), []))
    summary["speakers"] = sorted(by_speaker)
    for split, files in (("train", train_files), ("dev", dev_files)):
        if split not in splits:
            continue
        rows = _train_rows(files, wavs, infos, random_chunk, seg_dur)
        path = write_manifest(summary, save_folder / f"{split}.csv", TRAIN_FIELDS, rows)
        summary["csv"][split] = path
        summary[f"num_{split}_files"] = len(files)
        summary[f"num_{split}_rows"] = len(rows)
        logger.info("%s: %d rows from %d files of %d speakers", path, len(rows),
                    len(files), len({_speaker_of(rel) for rel in files}))


def _write_trial_list(save_folder, stem, path, listed, rows, summary):
    """Writes ``<stem>.csv`` and a copy of the trial list."""
    summary["csv"][stem] = write_manifest(summary, save_folder / f"{stem}.csv",
                                          TRIAL_FIELDS, rows)
    copy = save_folder / path.name
    if copy != path:
        shutil.copyfile(path, copy)
    summary["trial_lists"][stem] = str(copy)
    summary["num_trials"][stem] = len(listed)
    logger.info("%s: %d trials over %d utterances", summary["csv"][stem], len(listed),
                len(rows))


def _new_summary(save_folder, roots, excluded, wavs, num_converted):
    """Summary before anything is read or written."""
    return {
        "save_folder": str(save_folder),
        "data_folders": [str(root) for root in roots],
        "csv": {},
        "csv_rows": {},
        "trial_lists": {},
        "num_trials": {},
        "speakers": [],
        "excluded_speakers": sorted(excluded & {_speaker_of(rel) for rel in wavs}),
        "num_excluded_files": 0,
        "num_train_files": 0,
        "num_train_rows": 0,
        "num_dev_files": 0,
        "num_dev_rows": 0,
        "bad_files": [],
        "num_bad_files": 0,
        "num_too_short": 0,
        "num_converted": num_converted,
        "skipped_inputs": [],
        "already_prepared": False,
    }


def prepare_voxceleb(
    data_folder,
    save_folder,
    trial_lists=("veri_test2.txt",),
    splits=("train", "test"),
    seg_dur=3.0,
    min_dur=None,
    random_chunk=True,
    exclude_trial_speakers=True,
    skip_prep=False,
    convert_m4a=False,
    skip_bad_files=False,
    dev_ratio=0.1,
    seed=1234,
    sample_rate=16000,
    num_workers=None,
    progress=True,
):
    """Writes SpeechBrain CSV manifests for VoxCeleb speaker verification.

    See the module docstring for the layout and the output files.

    Arguments
    ---------
    data_folder : str, pathlib.Path or list
        One corpus root or a list of roots (e.g. VoxCeleb1 and VoxCeleb2).
    save_folder : str or pathlib.Path
        Where the CSVs, trial-list copies and options file go.
    trial_lists : tuple of str
        Trial list files, looked up in the data folders (in order), else
        taken as paths (absolute, or relative to the working directory).
    splits : tuple of str
        Subset of ``("train", "dev", "test")``; ``"test"`` writes the trial
        list CSVs.
    seg_dur : float
        Chunk length in seconds when ``random_chunk=False``.
    min_dur : float, optional
        Files shorter than this (seconds) are skipped and counted; default
        the WavLM minimum of 400 samples (0.025 s at 16 kHz).
    random_chunk : bool
        One row per file (the recipe crops randomly) instead of chunks.
    exclude_trial_speakers : bool
        Removes every speaker of any trial list from the training data.
    skip_prep : bool
        Returns at once without doing anything.
    convert_m4a : bool
        Converts ``.m4a`` files lacking a ``.wav`` counterpart with ffmpeg.
    skip_bad_files : bool
        Skips (and counts) unreadable training files instead of raising.
    dev_ratio : float
        Share of each speaker's files held out for ``dev.csv``.
    seed : int
        Seed of the dev split.
    sample_rate : int
        Expected sampling rate (conversion target; others are warned about).
    num_workers : int, optional
        Parallel ffmpeg conversions (default: number of CPU cores).
    progress : bool
        Whether to show progress bars.

    Returns
    -------
    dict
        ``csv`` (split or list name -> CSV path), ``trial_lists`` (name ->
        copied trial list), ``num_train_files``, ``num_train_rows``,
        ``num_dev_files``, ``num_dev_rows``, ``speakers`` (training
        speakers), ``excluded_speakers``, ``num_excluded_files``,
        ``bad_files``, ``num_bad_files``, ``num_too_short``,
        ``num_trials``, ``num_converted``, ``csv_rows`` (CSV path ->
        rows), ``skipped_inputs`` (what was left out and why: a list of
        ``{"what", "reason", "count", "examples"}``), ``data_folders``,
        ``save_folder`` and ``already_prepared`` (``True`` when the
        outputs were up to date and nothing was rewritten); with
        ``skip_prep`` the stored summary (if any) with ``skipped=True``.

    Raises
    ------
    FileNotFoundError
        Missing data folder or trial list, or no audio in the data folders.
    BadAudioFileError
        Unreadable audio file (unless ``skip_bad_files``; never for files
        used by a trial list).
    ValueError
        Malformed trial list (file and line number), invalid option, or a
        trial utterance missing from the data.
    RuntimeError
        ``.m4a`` files that need a conversion that cannot be done.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_pruning.synthetic import make_voxceleb_mini
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = make_voxceleb_mini(f"{tmp}/vox", num_speakers=2, num_test_speakers=3,
    ...                            videos_per_speaker=1, utts_per_video=2,
    ...                            min_seconds=0.3, max_seconds=0.5, num_trials=4,
    ...                            progress=False)
    ...     info = prepare_voxceleb(f"{tmp}/vox", f"{tmp}/save", progress=False)
    ...     again = prepare_voxceleb(f"{tmp}/vox", f"{tmp}/save", progress=False)
    >>> info["num_train_files"], len(info["excluded_speakers"]), again["already_prepared"]
    (4, 3, True)
    """
    state = PreparedState(save_folder, OPT_FILE, "VoxCeleb")
    if skip_prep:
        return state.skip()
    _check_options(splits, seg_dur, dev_ratio)
    roots = _data_roots(data_folder)
    trial_paths = _find_trial_lists(trial_lists, roots)
    scan = _scan(roots)
    options = {
        "version": PREP_VERSION,
        "data_folders": [str(root) for root in roots],
        "trial_lists": {stem: str(path) for stem, path in trial_paths.items()},
        "splits": sorted(set(splits)),
        "seg_dur": float(seg_dur),
        "min_dur": None if min_dur is None else float(min_dur),
        "random_chunk": bool(random_chunk),
        "exclude_trial_speakers": bool(exclude_trial_speakers),
        "skip_bad_files": bool(skip_bad_files),
        "dev_ratio": float(dev_ratio) if "dev" in splits else None,
        "seed": int(seed) if "dev" in splits else None,
        "sample_rate": int(sample_rate),
    }
    summary = state.lookup(options, fingerprint(trial_paths.values(), audio_files=scan[2]))
    if summary is not None:
        return summary

    wavs, counts, num_converted = _scan_after_conversion(
        roots, scan, convert_m4a, sample_rate, num_workers, progress)
    trials = {stem: parse_trial_list(path) for stem, path in trial_paths.items()}
    excluded = _trial_speakers(trials) if exclude_trial_speakers else set()
    summary = _new_summary(state.save_folder, roots, excluded, wavs, num_converted)
    training = "train" in splits or "dev" in splits
    infos = (_training_infos(wavs, excluded, skip_bad_files, min_dur, sample_rate, progress,
                             summary) if training else {})
    trial_rows = {stem: _trial_rows(stem, trial_paths[stem], trials[stem], wavs, infos,
                                    min_dur, progress)
                  for stem in trials if "test" in splits}

    state.clear()
    if training:
        _write_training(state.save_folder, splits, wavs, infos, random_chunk, seg_dur,
                        dev_ratio, seed, summary)
    for stem, rows in trial_rows.items():
        _write_trial_list(state.save_folder, stem, trial_paths[stem], trials[stem], rows,
                          summary)
    state.store(options, fingerprint(trial_paths.values(), audio_files=counts), summary,
                flat_paths(summary["csv"]) + flat_paths(summary["trial_lists"]))
    return summary


if __name__ == "__main__":
    sys.exit(run_cli(prepare_voxceleb))
