"""Deterministic synthetic multi-speaker meetings for speaker diarization.

Diarization tests, demos and recipe smoke runs need recordings with several
speakers, turn-taking, pauses and overlapped speech, together with exact
reference annotations. This module builds them from the source-filter
speakers of :mod:`speechbrain_pruning.synthetic`:

* :func:`simulate_meeting` draws a few speakers (voice fixed for the whole
  meeting), lays out turns that alternate between them with pauses and
  occasional overlaps (never more than two speakers at once), synthesises
  every turn with :func:`~speechbrain_pruning.synthetic.synthesize_utterance`,
  trims its leading/trailing silence so that the reference turn covers the
  audible speech, mixes the turns with per-speaker levels, adds background
  noise and peak-normalises the result;
* :func:`make_meeting_corpus` writes meetings as 16-bit PCM WAV files with
  RTTM references and UEM evaluation maps, either in a generic
  ``<split>/{audio,rttm,uem}`` layout or in the layout of the AMI corpus
  with the "AMI diarization setup" (``only_words`` references, UEMs and
  meeting lists), byte-identically for the same arguments.

RTTM lines follow ``SPEAKER <uri> 1 <start> <duration> <NA> <NA> <speaker>
<NA> <NA>`` (as written by ``pyannote.core.Annotation.write_rttm``); the
fields are whitespace-separated, so neither recording ids nor speaker names
ever contain spaces (``exotic_names=True`` uses accented ids and non-ASCII
speaker names instead).

Authors
 * speechbrain_pruning contributors
"""

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import lfilter
from tqdm import tqdm

from pyannote.core import Annotation, Segment, Timeline

from ..diarization.rttm import write_rttm, write_uem
from .voices import GENDERS, sample_speaker, synthesize_utterance

logger = logging.getLogger(__name__)

LAYOUTS = ("generic", "ami")
AMI_SERIES = (("ES", 2002, 2016), ("IS", 1000, 1009), ("TS", 3003, 3012))
AMI_SESSIONS = "abcd"
AMI_SITES = ("EE", "EO", "IO", "IE", "TD", "TO")
AMI_SETUP = "AMI-diarization-setup"

# Streams of the seeded generators: one independent stream per purpose.
_MEETING_STREAM = 0
_NAMING_STREAM = 1


def _active_extent(wav, sample_rate, frame=0.01, peak_db=-30.0, floor_db=10.0,
                   floor_percentile=5.0, max_threshold_db=-15.0):
    """``(first, last)`` sample bounds of the audible part of ``wav``.

    A frame is audible if its energy exceeds both ``peak_db`` below the
    loudest frame and ``floor_db`` above the noise floor (a low percentile
    of the frame energies), the threshold never exceeding
    ``max_threshold_db`` below the loudest frame. Bounds are frame-aligned.
    """
    hop = max(1, int(round(frame * sample_rate)))
    num_frames = len(wav) // hop
    if num_frames == 0:
        return 0, len(wav)
    energy = np.mean(wav[:num_frames * hop].astype(np.float64).reshape(num_frames, hop) ** 2,
                     axis=1)
    threshold = max(energy.max() * 10.0 ** (peak_db / 10.0),
                    np.percentile(energy, floor_percentile) * 10.0 ** (floor_db / 10.0))
    threshold = min(threshold, energy.max() * 10.0 ** (max_threshold_db / 10.0))
    active = np.flatnonzero(energy > threshold)
    if len(active) == 0:
        return 0, len(wav)
    return int(active[0]) * hop, min(len(wav), (int(active[-1]) + 1) * hop)


def _fade(wav, num):
    """Applies raised-cosine fade-in/out of ``num`` samples (in place)."""
    num = min(num, len(wav) // 2)
    if num > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(num) + 0.5) / num)
        wav[:num] *= ramp
        wav[len(wav) - num:] *= ramp[::-1]
    return wav


def speech_statistics(turns, resolution=0.001):
    """Speech and overlap durations of a list of turns.

    Arguments
    ---------
    turns : list of tuple
        ``(start_s, end_s, speaker)`` turns.
    resolution : float
        Time step in seconds of the sweep (boundaries are rounded to it).

    Returns
    -------
    dict
        ``speech`` (seconds with at least one speaker), ``overlap``
        (seconds with at least two) and ``max_speakers`` (largest number of
        simultaneous speakers).

    Example
    -------
    >>> speech_statistics([(0.0, 2.0, "A"), (1.5, 3.0, "B"), (4.0, 5.0, "A")])
    {'speech': 4.0, 'overlap': 0.5, 'max_speakers': 2}
    """
    events = {}
    for start, end, _ in turns:
        start, end = int(round(start / resolution)), int(round(end / resolution))
        if end > start:
            events[start] = events.get(start, 0) + 1
            events[end] = events.get(end, 0) - 1
    speech = overlap = 0
    active = max_active = 0
    previous = None
    for time in sorted(events):
        if previous is not None:
            if active >= 1:
                speech += time - previous
            if active >= 2:
                overlap += time - previous
        active += events[time]
        max_active = max(max_active, active)
        previous = time
    return {"speech": round(speech * resolution, 6), "overlap": round(overlap * resolution, 6),
            "max_speakers": max_active}


def simulate_meeting(
    rng,
    num_speakers,
    duration,
    sample_rate=16000,
    min_turn=1.0,
    max_turn=4.0,
    pause_prob=0.3,
    max_pause=1.5,
    overlap_prob=0.2,
    max_overlap=1.5,
    max_gap=0.2,
    min_overlap_offset=0.3,
    min_last_turn=0.5,
    speaker_names=None,
    genders=None,
    speaker_gain_db_range=(-6.0, 0.0),
    turn_gain_db_range=(-1.5, 1.5),
    fade=0.005,
    noise_snr_db_range=(25.0, 40.0),
    noise_pole=0.9,
    peak_dbfs=-3.0,
    time_resolution=0.001,
):
    """Simulates one meeting recording and its reference turns.

    Turns are laid out in order of their start times. Each turn goes to a
    speaker other than the previous turn's (the first ``num_speakers`` turns
    visit every speaker once, in random order); it starts after a short gap
    (up to ``max_gap``), after a pause (probability ``pause_prob``, up to
    ``max_pause``) or overlapping the end of the previous turn (probability
    ``overlap_prob``, up to ``max_overlap``), but never while two other
    turns are still running, so at most two speakers talk at once.

    Arguments
    ---------
    rng : numpy.random.Generator
        Source of every random choice (speakers, layout, speech, noise).
    num_speakers : int
        Number of speakers (at least 2).
    duration : float
        Length of the recording in seconds.
    sample_rate : int
        Sampling rate in Hz.
    min_turn, max_turn : float
        Range of the synthesised turn lengths in seconds (before the leading
        and trailing silence of the utterance is trimmed).
    pause_prob : float
        Probability of a pause before a turn.
    max_pause : float
        Longest pause in seconds.
    overlap_prob : float
        Probability that a turn starts before the previous one ends.
    max_overlap : float
        Longest overlap in seconds.
    max_gap : float
        Longest gap between turns without a pause or overlap.
    min_overlap_offset : float
        A turn starts at least this long after the start of the turn it
        overlaps.
    min_last_turn : float
        A last turn shorter than this (cut by the end of the recording) is
        dropped.
    speaker_names : list of str, optional
        One name per speaker (default ``spk1``, ``spk2``, ...), no spaces.
    genders : list of str, optional
        One of ``"male"``/``"female"`` per speaker (default: random).
    speaker_gain_db_range : tuple of float
        Range of each speaker's level (fixed for the meeting) in dB.
    turn_gain_db_range : tuple of float
        Range of the level variation of each turn in dB.
    fade : float
        Seconds of raised-cosine fade at the edges of a trimmed turn.
    noise_snr_db_range : tuple of float
        Range of the speech-to-background-noise ratio in dB.
    noise_pole : float
        Pole of the one-pole low-pass colouring the background noise.
    peak_dbfs : float
        Peak level of the output in dB full scale.
    time_resolution : float
        Turn boundaries lie on this grid (seconds), so that they survive the
        3-decimal RTTM format exactly.

    Returns
    -------
    audio : numpy.ndarray
        Mono float32 waveform of ``round(duration * sample_rate)`` samples.
    turns : list of tuple
        ``(start_s, end_s, speaker_name)`` sorted by start time.

    Example
    -------
    >>> audio, turns = simulate_meeting(np.random.default_rng(0), 2, 6.0)
    >>> audio.shape, audio.dtype, sorted({spk for _, _, spk in turns})
    ((96000,), dtype('float32'), ['spk1', 'spk2'])
    >>> bool(abs(np.abs(audio).max() - 10 ** (-3 / 20)) < 1e-4)
    True
    """
    if num_speakers < 2:
        raise ValueError(f"num_speakers must be >= 2, got {num_speakers}")
    if not 0 < min_turn <= max_turn:
        raise ValueError(f"Need 0 < min_turn <= max_turn, got {min_turn}, {max_turn}")
    if speaker_names is None:
        speaker_names = [f"spk{i + 1}" for i in range(num_speakers)]
    if len(speaker_names) != num_speakers or len(set(speaker_names)) != num_speakers:
        raise ValueError("speaker_names needs one distinct name per speaker")
    if any(any(c.isspace() for c in name) for name in speaker_names):
        raise ValueError("Speaker names must not contain whitespace (RTTM fields)")
    if genders is None:
        genders = [GENDERS[int(g)] for g in rng.integers(len(GENDERS), size=num_speakers)]
    if len(genders) != num_speakers:
        raise ValueError("genders needs one entry per speaker")

    speakers = [sample_speaker(rng, gender) for gender in genders]
    speaker_gains = 10.0 ** (rng.uniform(*speaker_gain_db_range, size=num_speakers) / 20.0)
    step = int(round(time_resolution * sample_rate))  # samples per grid step
    num_samples = int(round(duration * sample_rate))
    total_steps = num_samples // step
    fade_samples = int(round(fade * sample_rate))

    speech = np.zeros(num_samples)
    turns = []  # (start_step, end_step, speaker index)
    order = list(rng.permutation(num_speakers))
    cursor = int(round(rng.uniform(0.0, max_gap) / time_resolution))
    while True:
        previous = turns[-1][2] if turns else None
        if order:
            speaker = int(order.pop(0))
            if speaker == previous:  # never twice in a row
                order.append(speaker)
                speaker = int(order.pop(0))
        else:
            others = [s for s in range(num_speakers) if s != previous]
            speaker = others[int(rng.integers(len(others)))]

        # where the turn may start: after all but the latest-ending turn
        ends = sorted((end, spk) for _, end, spk in turns)
        earliest = ends[-2][0] if len(ends) >= 2 else 0
        if ends and ends[-1][1] == speaker:
            earliest = max(earliest, ends[-1][0])
        draw = rng.random()
        if turns and draw < overlap_prob:
            overlap = int(round(rng.uniform(0.0, max_overlap) / time_resolution))
            start = max(turns[-1][1] - overlap,
                        turns[-1][0] + int(round(min_overlap_offset / time_resolution)))
        elif draw < overlap_prob + pause_prob:
            start = cursor + int(round(rng.uniform(0.0, max_pause) / time_resolution))
        else:
            start = cursor + int(round(rng.uniform(0.0, max_gap) / time_resolution))
        start = max(start, earliest, turns[-1][0] if turns else 0)

        seconds = rng.uniform(min_turn, max_turn)
        wav = synthesize_utterance(speakers[speaker], seconds, rng, sample_rate=sample_rate)
        first, last = _active_extent(wav, sample_rate)
        first, last = first // step * step, -(-last // step) * step
        available = (total_steps - start) * step
        if available < min_last_turn * sample_rate:
            break
        length = min(last - first, available)
        segment = _fade(wav[first:first + length].astype(np.float64), fade_samples)
        gain = speaker_gains[speaker] * 10.0 ** (rng.uniform(*turn_gain_db_range) / 20.0)
        offset = start * step
        speech[offset:offset + length] += gain * segment
        turns.append((start, start + length // step, speaker))
        cursor = max(cursor, start + length // step)
        if cursor >= total_steps:
            break

    noise = lfilter([1.0 - noise_pole], [1.0, -noise_pole], rng.standard_normal(num_samples))
    active = speech != 0.0
    speech_power = np.mean(speech[active] ** 2) if active.any() else 1e-6
    snr_db = rng.uniform(*noise_snr_db_range)
    noise *= np.sqrt(speech_power / (np.mean(noise**2) + 1e-20) / 10.0 ** (snr_db / 10.0))
    audio = speech + noise
    audio *= 10.0 ** (peak_dbfs / 20.0) / (np.abs(audio).max() + 1e-12)
    result = [(round(s * time_resolution, 6), round(e * time_resolution, 6), speaker_names[k])
              for s, e, k in turns]
    return audio.astype(np.float32), result


def _write_reference(rttm_path, uem_path, uri, turns, duration):
    """RTTM of ``turns`` (``(start_s, end_s, speaker)``) and a UEM covering the recording,
    written with :mod:`speechbrain_pruning.diarization.rttm` (pyannote.core types)."""
    annotation = Annotation(uri=uri)
    for index, (start, end, speaker) in enumerate(turns):
        annotation[Segment(start, end), index] = speaker
    for path in (rttm_path, uem_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_rttm(annotation, rttm_path)
    write_uem({uri: Timeline([Segment(0.0, duration)], uri=uri)}, uem_path)


def _ami_meeting_ids():
    """All AMI-style meeting ids (``ES2002a`` ... ``TS3012d``)."""
    return [f"{prefix}{number}{session}"
            for prefix, low, high in AMI_SERIES
            for number in range(low, high + 1)
            for session in AMI_SESSIONS]


def _write_text(path, text):
    """Writes UTF-8 text with ``\\n`` line endings, creating parents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def make_meeting_corpus(
    root,
    layout="generic",
    splits=None,
    min_speakers=2,
    max_speakers=4,
    duration=30.0,
    sample_rate=16000,
    seed=0,
    exotic_names=False,
    first_speaker_number=1,
    progress=True,
    **meeting_kwargs,
):
    """Writes a synthetic diarization corpus of meetings to ``root``.

    Layouts::

        generic:  root/<split>/audio/<rec>.wav
                  root/<split>/rttm/<rec>.rttm
                  root/<split>/uem/<rec>.uem
        ami:      root/amicorpus/<meeting>/audio/<meeting>.Mix-Headset.wav
                  root/AMI-diarization-setup/only_words/rttms/<split>/<meeting>.rttm
                  root/AMI-diarization-setup/uems/<split>/<meeting>.uem
                  root/AMI-diarization-setup/lists/<split>.meetings.txt

    Generic recordings are named ``<split>_<NNN>`` with speakers
    ``spk<NNN>``; AMI meetings get distinct ids like ``ES2002a`` and
    speakers like ``MEE006``/``FEE005`` (first letter: gender). Speaker
    names are unique across the corpus (new voices in every meeting). With
    ``exotic_names=True`` (generic layout only) the first recording of each
    split is named ``réunion_<split>_000`` and its first speaker
    ``Zoë<NNN>`` (non-ASCII, but no spaces: RTTM is whitespace-separated).

    Arguments
    ---------
    root : str or pathlib.Path
        Output folder (created if needed; existing files are overwritten).
    layout : str
        ``"generic"`` or ``"ami"``.
    splits : dict, optional
        Number of recordings per split, default
        ``{"train": 6, "dev": 2, "test": 2}``.
    min_speakers, max_speakers : int
        Range of the number of speakers per meeting (at least 2).
    duration : float
        Length of each recording in seconds.
    sample_rate : int
        Sampling rate in Hz.
    seed : int
        Seed of every random choice.
    exotic_names : bool
        Whether to use non-ASCII recording/speaker names (generic layout).
    first_speaker_number : int
        Number of the first speaker name.
    progress : bool
        Whether to show a progress bar.
    **meeting_kwargs
        Passed on to :func:`simulate_meeting` (e.g. ``overlap_prob``).

    Returns
    -------
    dict
        ``root``, ``layout``, ``sample_rate``, ``splits`` (split -> list of
        recording ids), ``audio``, ``rttm``, ``uem`` (recording id -> path),
        ``lists`` (split -> meeting list path, AMI layout only),
        ``speakers`` (recording id -> sorted speaker names),
        ``num_speakers`` (recording id -> count), ``turns`` (recording id ->
        list of turns), ``total_seconds``, ``speech_seconds`` and
        ``overlap_seconds``.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     info = make_meeting_corpus(tmp, layout="ami", splits={"dev": 1},
    ...                                duration=5.0, max_speakers=2, progress=False)
    ...     rel = Path(info["audio"][info["splits"]["dev"][0]]).relative_to(tmp).parts
    >>> rel[0], rel[2], rel[3].endswith(".Mix-Headset.wav"), info["num_speakers"]
    ('amicorpus', 'audio', True, {'TS3005a': 2})
    """
    if layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    if not 2 <= min_speakers <= max_speakers:
        raise ValueError(f"Need 2 <= min_speakers <= max_speakers, got "
                         f"{min_speakers}, {max_speakers}")
    if exotic_names and layout != "generic":
        raise ValueError("exotic_names is only supported with the generic layout")
    splits = {"train": 6, "dev": 2, "test": 2} if splits is None else dict(splits)
    root = Path(root)
    ami = layout == "ami"

    # ---------------------------------------------------------- naming
    naming = np.random.default_rng([seed, _NAMING_STREAM])
    jobs = []
    if ami:
        pool = _ami_meeting_ids()
        total = sum(splits.values())
        if total > len(pool):
            raise ValueError(f"At most {len(pool)} AMI-style meetings, asked for {total}")
        ami_ids = [pool[i] for i in naming.permutation(len(pool))[:total]]
    for split_index, (split, count) in enumerate(splits.items()):
        for index in range(count):
            if ami:
                rec = ami_ids[len(jobs)]
            elif exotic_names and index == 0:
                rec = f"réunion_{split}_{index:03d}"
            else:
                rec = f"{split}_{index:03d}"
            jobs.append((split_index, split, index, rec))
    if len({rec for *_, rec in jobs}) != len(jobs):
        raise ValueError("Split names give duplicate recording ids")

    info = {"root": str(root), "layout": layout, "sample_rate": sample_rate,
            "splits": {split: [] for split in splits}, "audio": {}, "rttm": {}, "uem": {},
            "lists": {}, "speakers": {}, "num_speakers": {}, "turns": {},
            "total_seconds": 0.0, "speech_seconds": 0.0, "overlap_seconds": 0.0}
    speaker_number = first_speaker_number
    for split_index, split, index, rec in tqdm(jobs, desc="Simulating meetings",
                                                disable=not progress):
        rng = np.random.default_rng([seed, _MEETING_STREAM, split_index, index])
        num = int(rng.integers(min_speakers, max_speakers + 1))
        genders = [GENDERS[int(g)] for g in rng.integers(len(GENDERS), size=num)]
        names = []
        for k, gender in enumerate(genders):
            if ami:
                site = AMI_SITES[int(rng.integers(len(AMI_SITES)))]
                names.append(f"{gender[0].upper()}{site}{speaker_number:03d}")
            elif exotic_names and index == 0 and k == 0:
                names.append(f"Zoë{speaker_number:03d}")
            else:
                names.append(f"spk{speaker_number:03d}")
            speaker_number += 1
        audio, turns = simulate_meeting(rng, num, duration, sample_rate=sample_rate,
                                        speaker_names=names, genders=genders,
                                        **meeting_kwargs)
        if ami:
            wav_path = root / "amicorpus" / rec / "audio" / f"{rec}.Mix-Headset.wav"
            rttm_path = root / AMI_SETUP / "only_words" / "rttms" / split / f"{rec}.rttm"
            uem_path = root / AMI_SETUP / "uems" / split / f"{rec}.uem"
        else:
            wav_path = root / split / "audio" / f"{rec}.wav"
            rttm_path = root / split / "rttm" / f"{rec}.rttm"
            uem_path = root / split / "uem" / f"{rec}.uem"
        wav_path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(wav_path), audio, sample_rate, subtype="PCM_16", format="WAV")
        seconds = len(audio) / sample_rate
        _write_reference(rttm_path, uem_path, rec, turns, seconds)

        stats = speech_statistics(turns)
        info["splits"][split].append(rec)
        info["audio"][rec], info["rttm"][rec], info["uem"][rec] = (
            str(wav_path), str(rttm_path), str(uem_path))
        info["speakers"][rec] = sorted({spk for _, _, spk in turns})
        info["num_speakers"][rec] = len(info["speakers"][rec])
        info["turns"][rec] = turns
        info["total_seconds"] += seconds
        info["speech_seconds"] += stats["speech"]
        info["overlap_seconds"] += stats["overlap"]

    if ami:
        for split, recs in info["splits"].items():
            path = root / AMI_SETUP / "lists" / f"{split}.meetings.txt"
            _write_text(path, "".join(f"{rec}\n" for rec in recs))
            info["lists"][split] = str(path)
    for key in ("total_seconds", "speech_seconds", "overlap_seconds"):
        info[key] = round(info[key], 6)
    logger.info("Wrote %d meetings (%.1f s, %.1f s overlap) to %s", len(jobs),
                info["total_seconds"], info["overlap_seconds"], root)
    return info
