"""Tests of the synthetic meeting simulator and diarization corpus writer."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_pruning.synthetic.meeting import (
    make_meeting_corpus,
    simulate_meeting,
    speech_statistics,
)

SPLITS = {"train": 3, "dev": 1, "test": 1}
DURATION = 20.0


def _parse_rttm(path):
    turns = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        assert len(fields) == 10 and fields[0] == "SPEAKER" and fields[2] == "1"
        assert fields[5:7] == ["<NA>", "<NA>"] and fields[8:] == ["<NA>", "<NA>"]
        start, dur = float(fields[3]), float(fields[4])
        turns.append((fields[1], start, start + dur, fields[7]))
    return turns


def _digest(root):
    root = Path(root)
    sha = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(root)).encode("utf-8"))
        sha.update(path.read_bytes())
    return sha.hexdigest()


@pytest.fixture(scope="module")
def generic(tmp_path_factory):
    root = tmp_path_factory.mktemp("generic")
    info = make_meeting_corpus(root, splits=SPLITS, duration=DURATION, seed=3,
                               progress=False)
    return root, info


@pytest.fixture(scope="module")
def ami(tmp_path_factory):
    root = tmp_path_factory.mktemp("ami")
    info = make_meeting_corpus(root, layout="ami", splits=SPLITS, duration=DURATION,
                               seed=3, progress=False)
    return root, info


def _check_corpus(info):
    overlap = 0.0
    for split, recs in info["splits"].items():
        assert len(recs) == SPLITS[split]
        for rec in recs:
            wav, sr = sf.read(info["audio"][rec])
            assert sr == 16000 and wav.ndim == 1 and len(wav) == int(DURATION * sr)
            assert 0.5 < np.abs(wav).max() < 0.8  # about -3 dBFS
            turns = _parse_rttm(info["rttm"][rec])
            assert {t[0] for t in turns} == {rec}
            expected = sorted(info["turns"][rec])
            assert len(turns) == len(expected)
            for (_, start, end, spk), (e_start, e_end, e_spk) in zip(turns, expected):
                assert spk == e_spk
                assert abs(start - e_start) < 1e-6 and abs(end - e_end) < 1.5e-3
            speakers = {t[3] for t in turns}
            assert 2 <= len(speakers) <= 4 and sorted(speakers) == info["speakers"][rec]
            stats = speech_statistics(expected)
            assert stats["max_speakers"] <= 2
            overlap += stats["overlap"]
            assert all(0.0 <= s < e <= DURATION for s, e, _ in expected)
            uem = Path(info["uem"][rec]).read_text(encoding="utf-8")
            assert uem == f"{rec} 1 0.000 {DURATION:.3f}\n"
    assert overlap > 0.0 and info["overlap_seconds"] == pytest.approx(overlap)
    all_speakers = [s for spks in info["speakers"].values() for s in spks]
    assert len(all_speakers) == len(set(all_speakers))  # new voices per meeting


def test_generic_layout(generic):
    root, info = generic
    _check_corpus(info)
    for split, recs in SPLITS.items():
        for i in range(recs):
            rec = f"{split}_{i:03d}"
            for sub, ext in (("audio", "wav"), ("rttm", "rttm"), ("uem", "uem")):
                assert (root / split / sub / f"{rec}.{ext}").is_file()


def test_ami_layout(ami):
    root, info = ami
    _check_corpus(info)
    setup = root / "AMI-diarization-setup"
    for split, count in SPLITS.items():
        meetings = (setup / "lists" / f"{split}.meetings.txt").read_text().splitlines()
        assert meetings == info["splits"][split] and len(meetings) == count
        for meeting in meetings:
            assert meeting[:2] in ("ES", "IS", "TS") and meeting[-1] in "abcd"
            assert meeting[2:6].isdigit() and len(meeting) == 7
            assert (root / "amicorpus" / meeting / "audio"
                    / f"{meeting}.Mix-Headset.wav").is_file()
            assert (setup / "only_words" / "rttms" / split / f"{meeting}.rttm").is_file()
            assert (setup / "uems" / split / f"{meeting}.uem").is_file()
            for spk in info["speakers"][meeting]:
                assert spk[0] in "MF" and spk[1:3].isalpha() and spk[3:].isdigit()


def test_rttm_loads_with_pyannote(ami):
    util = pytest.importorskip("pyannote.database.util")
    _, info = ami
    rec = info["splits"]["train"][0]
    annotation = util.load_rttm(info["rttm"][rec])[rec]
    got = sorted((round(s.start, 3), round(s.end, 3), label)
                 for s, _, label in annotation.itertracks(yield_label=True))
    assert got == [(round(s, 3), round(e, 3), spk) for s, e, spk in sorted(info["turns"][rec])]
    uem = util.load_uem(info["uem"][rec])[rec]
    assert uem.extent().start == 0.0 and uem.extent().end == DURATION


def test_deterministic(tmp_path, generic):
    root, info = generic
    again = make_meeting_corpus(tmp_path, splits=SPLITS, duration=DURATION, seed=3,
                                progress=False)
    assert _digest(tmp_path) == _digest(root)
    assert again["turns"] == info["turns"]
    other = make_meeting_corpus(tmp_path / "other", splits={"dev": 1}, duration=5.0,
                                seed=4, progress=False)
    first = make_meeting_corpus(tmp_path / "first", splits={"dev": 1}, duration=5.0,
                                seed=3, progress=False)
    assert other["turns"] != first["turns"]


def test_simulate_meeting_properties():
    audio, turns = simulate_meeting(np.random.default_rng(7), 3, 30.0, overlap_prob=0.6)
    audio2, turns2 = simulate_meeting(np.random.default_rng(7), 3, 30.0, overlap_prob=0.6)
    assert np.array_equal(audio, audio2) and turns == turns2
    assert audio.dtype == np.float32 and audio.shape == (480000,)
    stats = speech_statistics(turns)
    assert stats["max_speakers"] == 2 and stats["overlap"] > 1.0
    assert {spk for *_, spk in turns} == {"spk1", "spk2", "spk3"}
    assert all(a[2] != b[2] for a, b in zip(turns, turns[1:]))  # alternation
    assert all(a[0] <= b[0] for a, b in zip(turns, turns[1:]))
    # audio is active inside turns and much quieter in the pauses
    sr = 16000
    mask = np.zeros(len(audio), bool)
    for s, e, _ in turns:
        mask[int(s * sr):int(e * sr)] = True
    if (~mask).sum() > sr // 10:
        assert np.mean(audio[mask] ** 2) > 30 * np.mean(audio[~mask] ** 2)


def test_exotic_names_round_trip(tmp_path):
    root = tmp_path / "with space"
    info = make_meeting_corpus(root, splits={"dev": 2}, duration=6.0, max_speakers=2,
                               exotic_names=True, progress=False)
    rec = info["splits"]["dev"][0]
    assert rec == "réunion_dev_000"
    assert any("Zoë" in spk for spk in info["speakers"][rec])
    assert (root / "dev" / "audio" / f"{rec}.wav").is_file()
    turns = _parse_rttm(root / "dev" / "rttm" / f"{rec}.rttm")
    assert {t[0] for t in turns} == {rec}
    assert sorted({t[3] for t in turns}) == info["speakers"][rec]
    util = pytest.importorskip("pyannote.database.util")
    labels = util.load_rttm(info["rttm"][rec])[rec].labels()
    assert sorted(labels) == info["speakers"][rec]
    with pytest.raises(ValueError):
        make_meeting_corpus(tmp_path / "x", layout="ami", exotic_names=True, progress=False)
