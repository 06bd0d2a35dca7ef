"""A synthetic speaker-verification corpus in the real VoxCeleb layout.

:func:`make_voxceleb_mini` writes speech of :mod:`.voices` as 16-bit PCM WAV
files in the VoxCeleb layout (``wav/<speaker>/<video>/<NNNNN>.wav``) together
with VoxCeleb1-O/E/H style trial lists, byte-identically for the same
arguments.
"""

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .voices import (GENDERS, _SPEAKER_STREAM, _TRIAL_STREAM, _UTTERANCE_STREAM, _VIDEO_STREAM,
                     sample_speaker, synthesize_utterance)

logger = logging.getLogger(__name__)

VIDEO_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
TRIAL_LISTS = ("veri_test2.txt", "list_test_all2.txt", "list_test_hard2.txt")


def _video_ids(rng, count, length=11):
    """``count`` distinct YouTube-like ids of ``length`` characters."""
    ids = []
    alphabet = np.array(list(VIDEO_ID_ALPHABET))
    while len(ids) < count:
        candidate = "".join(rng.choice(alphabet, size=length))
        if candidate not in ids:
            ids.append(candidate)
    return ids


def _draw_trials(
    utts_by_speaker,
    groups,
    num_trials,
    rng,
    same_group_nontargets=False,
    target_fraction=0.5,
    max_attempts=100,
):
    """``(label, enrol, test)`` trials without duplicate ordered pairs."""
    speakers = sorted(utts_by_speaker)
    target_speakers = [s for s in speakers if len(utts_by_speaker[s]) >= 2]
    by_group = {}
    for spk in speakers:
        by_group.setdefault(groups[spk], []).append(spk)
    pair_groups = [members for _, members in sorted(by_group.items()) if len(members) >= 2]
    if same_group_nontargets and not pair_groups:
        raise ValueError("Same-group nontarget trials need two test speakers of one group")
    num_targets = int(round(num_trials * target_fraction))
    labels = np.array([1] * num_targets + [0] * (num_trials - num_targets))
    rng.shuffle(labels)
    trials, seen = [], set()
    for label in labels:
        for _ in range(max_attempts):
            if label == 1:
                spk = target_speakers[rng.integers(len(target_speakers))]
                enrol, test = rng.choice(utts_by_speaker[spk], size=2, replace=False)
            else:
                pool = (pair_groups[rng.integers(len(pair_groups))]
                        if same_group_nontargets else speakers)
                first, second = rng.choice(len(pool), size=2, replace=False)
                enrol = utts_by_speaker[pool[first]][rng.integers(len(utts_by_speaker[pool[first]]))]
                test = utts_by_speaker[pool[second]][rng.integers(len(utts_by_speaker[pool[second]]))]
            if (enrol, test) not in seen:
                seen.add((enrol, test))
                trials.append((int(label), str(enrol), str(test)))
                break
    if len(trials) < num_trials:
        logger.warning("Only %d distinct trials instead of %d (corpus too small)",
                       len(trials), num_trials)
    return trials


def make_voxceleb_mini(
    root,
    num_speakers=8,
    num_test_speakers=4,
    videos_per_speaker=2,
    utts_per_video=4,
    min_seconds=2.0,
    max_seconds=4.0,
    sample_rate=16000,
    seed=0,
    num_trials=200,
    first_train_id=10001,
    first_test_id=10270,
    target_fraction=0.5,
    progress=True,
):
    """Writes a small synthetic VoxCeleb-style corpus to ``root``.

    Layout (as in VoxCeleb1 and converted VoxCeleb2)::

        root/wav/id10001/<video_id>/00001.wav    training speakers
        root/wav/id10270/<video_id>/00001.wav    test speakers
        root/veri_test2.txt                      VoxCeleb1-O style trials
        root/list_test_all2.txt                  VoxCeleb1-E style trials
        root/list_test_hard2.txt                 VoxCeleb1-H style trials

    Trial lines are ``label enrol test`` (``1`` = same speaker, paths
    relative to ``wav/``). All three lists use only the test speakers, so
    the training speakers never appear in a trial: ``-O`` and ``-E`` draw
    nontargets from any pair of test speakers (independent random streams),
    ``-H`` only from pairs of the same gender group. Speakers alternate
    between the ``"male"`` and ``"female"`` groups. Utterances are numbered
    from ``00001`` within each video, video ids are 11-character
    YouTube-like strings. Everything derives from ``seed`` through one
    seeded :class:`numpy.random.Generator` per speaker and per utterance,
    so the same arguments produce byte-identical files.

    Arguments
    ---------
    root : str or pathlib.Path
        Output folder (created if needed; existing files are overwritten).
    num_speakers : int
        Number of training speakers (ids from ``first_train_id``).
    num_test_speakers : int
        Number of test speakers (ids from ``first_test_id``), at least 3 so
        that the hard list has same-group nontargets.
    videos_per_speaker : int
        Number of video folders per speaker.
    utts_per_video : int
        Number of utterances per video.
    min_seconds, max_seconds : float
        Range of the utterance durations.
    sample_rate : int
        Sampling rate in Hz.
    seed : int
        Seed of every random choice.
    num_trials : int
        Number of trials per list (fewer if the corpus has too few pairs).
    first_train_id, first_test_id : int
        Numeric part of the first training/test speaker id (test ids are
        moved past the training ids if they would overlap).
    target_fraction : float
        Fraction of target trials.
    progress : bool
        Whether to show a progress bar.

    Returns
    -------
    dict
        ``root``, ``wav_dir``, ``train_speakers``, ``test_speakers``,
        ``genders`` (speaker -> group), ``num_utterances``,
        ``num_train_utterances``, ``num_test_utterances``,
        ``total_seconds``, ``sample_rate``, ``trial_lists`` (file name ->
        path) and ``num_trials`` (file name -> count).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     info = make_voxceleb_mini(tmp, num_speakers=2, num_test_speakers=3,
    ...                               videos_per_speaker=1, utts_per_video=2,
    ...                               min_seconds=0.3, max_seconds=0.5,
    ...                               num_trials=6, progress=False)
    ...     lines = Path(info["trial_lists"]["veri_test2.txt"]).read_text().splitlines()
    >>> info["train_speakers"], info["num_utterances"], len(lines)
    (['id10001', 'id10002'], 10, 6)
    """
    if num_speakers < 0:
        raise ValueError(f"num_speakers must be >= 0, got {num_speakers}")
    if num_test_speakers < 3:
        raise ValueError(f"num_test_speakers must be >= 3, got {num_test_speakers}")
    if videos_per_speaker < 1 or utts_per_video < 1 or videos_per_speaker * utts_per_video < 2:
        raise ValueError("Each speaker needs at least 2 utterances "
                         "(videos_per_speaker * utts_per_video >= 2)")
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"Need 0 < min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    root = Path(root)
    wav_dir = root / "wav"
    first_test_id = max(first_test_id, first_train_id + num_speakers)
    speakers = [(f"id{first_train_id + i}", False) for i in range(num_speakers)]
    speakers += [(f"id{first_test_id + j}", True) for j in range(num_test_speakers)]

    jobs, genders, test_utts = [], {}, {}
    for index, (spk_id, is_test) in enumerate(speakers):
        position = index - num_speakers if is_test else index
        genders[spk_id] = GENDERS[position % len(GENDERS)]
        videos = _video_ids(np.random.default_rng([seed, _VIDEO_STREAM, index]),
                            videos_per_speaker)
        for v, video in enumerate(videos):
            for u in range(utts_per_video):
                jobs.append((index, spk_id, v, video, u))
                if is_test:
                    test_utts.setdefault(spk_id, []).append(f"{spk_id}/{video}/{u + 1:05d}.wav")

    total_seconds = 0.0
    cache = {}
    for index, spk_id, v, video, u in tqdm(jobs, desc="Synthesising speech",
                                           disable=not progress):
        if index not in cache:
            cache = {index: sample_speaker(
                np.random.default_rng([seed, _SPEAKER_STREAM, index]), genders[spk_id])}
        rng = np.random.default_rng([seed, _UTTERANCE_STREAM, index, v, u])
        seconds = rng.uniform(min_seconds, max_seconds)
        wav = synthesize_utterance(cache[index], seconds, rng, sample_rate=sample_rate)
        path = wav_dir / spk_id / video / f"{u + 1:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), wav, sample_rate, subtype="PCM_16", format="WAV")
        total_seconds += len(wav) / sample_rate

    trial_paths, trial_counts = {}, {}
    for list_index, name in enumerate(TRIAL_LISTS):
        trials = _draw_trials(
            test_utts, genders, num_trials,
            np.random.default_rng([seed, _TRIAL_STREAM, list_index]),
            same_group_nontargets=name == "list_test_hard2.txt",
            target_fraction=target_fraction,
        )
        path = root / name
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(f"{label} {enrol} {test}\n" for label, enrol, test in trials)
        trial_paths[name] = str(path)
        trial_counts[name] = len(trials)

    train_speakers = [s for s, is_test in speakers if not is_test]
    test_speakers = [s for s, is_test in speakers if is_test]
    num_test = num_test_speakers * videos_per_speaker * utts_per_video
    logger.info("Wrote %d synthetic utterances (%.1f s) of %d speakers to %s",
                len(jobs), total_seconds, len(speakers), wav_dir)
    return {
        "root": str(root),
        "wav_dir": str(wav_dir),
        "train_speakers": train_speakers,
        "test_speakers": test_speakers,
        "genders": genders,
        "num_utterances": len(jobs),
        "num_train_utterances": len(jobs) - num_test,
        "num_test_utterances": num_test,
        "total_seconds": total_seconds,
        "sample_rate": sample_rate,
        "trial_lists": trial_paths,
        "num_trials": trial_counts,
    }
