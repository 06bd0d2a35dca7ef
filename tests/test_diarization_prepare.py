"""Tests for data_prep/diarization_prepare.py on tiny hand-made corpora."""

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.diarization_prepare import (  # noqa: E402
    CHUNK_FIELDS,
    OPT_FILE,
    RECORDING_FIELDS,
    BadAudioFileError,
    chunk_regions,
    parse_chime_time,
    prepare_diarization,
    read_chime6_json,
)
from speechbrain_pruning.diarization import read_rttm, read_uem  # noqa: E402

RATE = 8000
OLD_MTIME = 1_000_000_000
CHUNK = dict(chunk_seconds=4.0, chunk_shift=3.0)


def _wav(path, seconds, rate=RATE):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(str(path))).standard_normal(int(seconds * rate)) * 0.1
    sf.write(str(path), noise, rate, format="FLAC" if path.suffix == ".flac" else "WAV")


def _text(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _turn(uri, start, duration, speaker):
    return f"SPEAKER {uri} 1 {start} {duration} <NA> <NA> {speaker} <NA> <NA>\n"


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return tuple(reader.fieldnames), list(reader)


def _prepare(root, save, **kwargs):
    return prepare_diarization(root, save, progress=False, **{**CHUNK, **kwargs})


def _check(summary, split, expected_chunks):
    """Checks the CSVs of a split; ``expected_chunks`` maps uri -> chunk IDs."""
    fields, recs = _read_csv(summary["csv"][split]["recordings"])
    assert fields == RECORDING_FIELDS
    assert sorted(row["ID"] for row in recs) == sorted(expected_chunks)
    fields, chunks = _read_csv(summary["csv"][split]["chunks"])
    assert fields == CHUNK_FIELDS
    got = {}
    for row in chunks:
        got.setdefault(row["rec_id"], []).append(row["ID"])
    assert got == {uri: ids for uri, ids in expected_chunks.items() if ids}
    by_uri = {row["ID"]: row for row in recs}
    for row in chunks:
        rec = by_uri[row["rec_id"]]
        start, stop = float(row["start"]), float(row["stop"])
        assert row["ID"] == f"{row['rec_id']}_{round(start * 1000)}_{round(stop * 1000)}"
        assert float(row["duration"]) == pytest.approx(stop - start)
        assert row["wav"] == rec["wav"] and row["rttm"] == rec["rttm"]
        uem = read_uem(rec["uem"])[rec["ID"]]
        assert any(s.start - 1e-9 <= start and stop <= s.end + 1e-9 for s in uem)
    for rec in recs:
        assert Path(rec["wav"]).is_absolute()
        info = sf.info(rec["wav"])
        assert float(rec["duration"]) == pytest.approx(info.frames / info.samplerate)
        assert Path(rec["rttm"]).parent == Path(summary["save_folder"]) / "rttm" / split
        assert Path(rec["uem"]).parent == Path(summary["save_folder"]) / "uem" / split
    assert summary["num_recordings"][split] == len(recs)
    assert summary["num_chunks"][split] == len(chunks)
    return recs, chunks


# ------------------------------------------------------------------ helpers
def test_chunk_regions():
    assert chunk_regions([(0, 10)], 4, 3) == [(0, 4000), (3000, 7000), (6000, 10000)]
    assert chunk_regions([(1, 9.5)], 4, 3) == [(1000, 5000), (4000, 8000), (5500, 9500)]
    assert chunk_regions([(0, 7)], 4, 3) == [(0, 4000), (3000, 7000)]
    assert chunk_regions([(0, 2.5), (3, 3.01)], 4, 3) == [(0, 2500)]
    with pytest.raises(ValueError):
        chunk_regions([(0, 1)], 0, 1)


def test_chime_time_parsing(tmp_path):
    assert parse_chime_time("0:00:12.34") == pytest.approx(12.34)
    assert parse_chime_time("1:01:01.5") == pytest.approx(3661.5)
    assert parse_chime_time("2:03.25") == pytest.approx(123.25)
    for bad in ("12:xx", "", "1:2:3:4", "-0:00:01.00"):
        with pytest.raises(ValueError):
            parse_chime_time(bad)
    path = tmp_path / "S01.json"
    path.write_text(json.dumps([
        {"speaker": "P01", "start_time": "0:00:01.25", "end_time": "0:00:03.50", "words": "a"},
        {"speaker": "P02", "start_time": {"original": "0:00:02.00", "U06": "0:00:02.10"},
         "end_time": {"original": "0:00:04.00", "U06": "0:00:04.10"}, "words": "b"},
        {"speaker": "P03", "start_time": "0:00:05.00", "end_time": "0:00:05.00"},
    ]))
    ann = read_chime6_json(path, "S01", array="U06")
    turns = sorted((s.start, s.end, lab) for s, _, lab in ann.itertracks(yield_label=True))
    assert turns == [(1.25, 3.5, "P01"), (2.1, 4.1, "P02")]
    ann = read_chime6_json(path, "S01", array="U01")
    assert sorted(ann.label_timeline("P02"))[0].start == 2.0
    path.write_text(json.dumps([{"speaker": "P01", "start_time": "0:00:01.00",
                                 "end_time": "bad"}]))
    with pytest.raises(ValueError, match="utterance 1: bad end_time"):
        read_chime6_json(path, "S01")


# ------------------------------------------------------------------ layouts
def _generic_corpus(root):
    for split, uris in (("train", ("recA", "recB")), ("dev", ("recC",)), ("test", ("recD",))):
        for uri in uris:
            _wav(root / split / "audio" / f"{uri}.wav", 10)
            _text(root / split / "rttm" / f"{uri}.rttm",
                  _turn(uri, 0.5, 3.0, "alice") + _turn(uri, 2.0, 4.0, "bob"))
    _text(root / "train" / "uem" / "recB.uem", "recB 1 1.0 9.5\n")
    _wav(root / "train" / "audio" / "extra.flac", 2)  # no RTTM: skipped


def test_generic_layout(tmp_path):
    root = tmp_path / "db"
    _generic_corpus(root)
    summary = _prepare(root, tmp_path / "save")
    recs, _ = _check(summary, "train", {
        "recA": ["recA_0_4000", "recA_3000_7000", "recA_6000_10000"],
        "recB": ["recB_1000_5000", "recB_4000_8000", "recB_5500_9500"]})
    _check(summary, "dev", {"recC": ["recC_0_4000", "recC_3000_7000", "recC_6000_10000"]})
    _check(summary, "test", {"recD": ["recD_0_4000", "recD_3000_7000", "recD_6000_10000"]})
    rec_b = next(row for row in recs if row["ID"] == "recB")
    assert Path(rec_b["uem"]).read_text() == "recB 1 1.000 9.500\n"
    rec_a = next(row for row in recs if row["ID"] == "recA")
    assert Path(rec_a["uem"]).read_text() == "recA 1 0.000 10.000\n"
    assert sorted(read_rttm(rec_a["rttm"])["recA"].labels()) == ["alice", "bob"]
    assert summary["speakers_per_recording"]["train"] == {"recA": 2, "recB": 2}
    assert summary["total_hours"] == pytest.approx(40 / 3600)
    assert summary["unlabelled"] == [str(root / "train" / "audio" / "extra.flac")]


def test_generic_whitespace_stem(tmp_path):
    root = tmp_path / "db"
    _wav(root / "train" / "audio" / "my rec.wav", 2)
    _text(root / "train" / "rttm" / "ok.rttm", _turn("ok", 0, 1, "A"))
    _wav(root / "train" / "audio" / "ok.wav", 2)
    with pytest.raises(ValueError, match="whitespace"):
        _prepare(root, tmp_path / "save", splits=("train",))


def test_kaldi_layout(tmp_path):
    root = tmp_path / "db"
    _wav(root / "wavs" / "r1.wav", 6)
    _wav(tmp_path / "elsewhere" / "r 2.wav", 5)  # absolute path with a space
    _text(root / "train" / "wav.scp",
          f"r1 wavs/r1.wav\nr2 {tmp_path / 'elsewhere' / 'r 2.wav'}\n")
    _text(root / "train" / "rttm", _turn("r1", 0, 2, "A") + _turn("r2", 1, 2, "B")
          + _turn("r2", 1.5, 2, "C"))
    _text(root / "train" / "uem", "r2 1 0.5 5.0\n")
    summary = _prepare(root, tmp_path / "save", layout="kaldi", splits=("train",))
    _check(summary, "train", {"r1": ["r1_0_4000", "r1_2000_6000"],
                              "r2": ["r2_500_4500", "r2_1000_5000"]})
    assert summary["speakers_per_recording"]["train"] == {"r1": 1, "r2": 2}
    _text(root / "train" / "wav.scp", "r1 sox a.wav -t wav - |\n")
    with pytest.raises(ValueError, match="line 1"):
        _prepare(root, tmp_path / "save2", layout="kaldi", splits=("train",))


def _ami_corpus(root):
    setup = root / "AMI-diarization-setup"
    for split, meetings in (("train", ("ES2002a", "ES2002b")), ("dev", ("IS1008a",)),
                            ("test", ("EN2002a",))):
        _text(setup / "lists" / f"{split}.meetings.txt", "\n".join(meetings) + "\n")
        for meeting in meetings:
            _wav(root / "amicorpus" / meeting / "audio" / f"{meeting}.Mix-Headset.wav", 8)
            _text(setup / "only_words" / "rttms" / split / f"{meeting}.rttm",
                  _turn(meeting, 1.0, 2.0, "MEE006") + _turn(meeting, 2.5, 3.0, "FEE005"))
            _text(setup / "uems" / split / f"{meeting}.uem", f"{meeting} 1 0.500 7.500\n")


def test_ami_layout(tmp_path):
    root = tmp_path / "ami"
    _ami_corpus(root)
    summary = _prepare(root, tmp_path / "save", layout="ami")
    ids = ["{m}_500_4500", "{m}_3500_7500"]
    _check(summary, "train", {m: [i.format(m=m) for i in ids] for m in ("ES2002a", "ES2002b")})
    _check(summary, "dev", {"IS1008a": [i.format(m="IS1008a") for i in ids]})
    _check(summary, "test", {"EN2002a": [i.format(m="EN2002a") for i in ids]})
    with pytest.raises(FileNotFoundError, match="4 recordings") as info:
        _prepare(root, tmp_path / "save_array", layout="ami", ami_mic="Array1-01")
    assert "Array1-01.wav" in str(info.value)
    assert not (tmp_path / "save_array").exists()


def _dihard_corpus(root):
    for folder, uris in (("dev", ("DH_DEV_0001", "DH_DEV_0002")), ("eval", ("DH_EVAL_0001",))):
        data = root / folder / "data"
        for uri in uris:
            _wav(data / "flac" / f"{uri}.flac", 6)
            _text(data / "rttm" / f"{uri}.rttm", _turn(uri, 0.2, 1.5, "speaker1"))
        _text(data / "uem" / "all.uem", "".join(f"{u} 1 0.000 6.000\n" for u in uris))
    _text(root / "dev" / "docs" / "core.uem", "DH_DEV_0002 1 0.000 5.000\n")
    _text(root / "eval" / "data" / "uem_scoring" / "core" / "all.uem",
          "DH_EVAL_0001 1 1.000 6.000\n")


def test_dihard3_layout(tmp_path):
    root = tmp_path / "dihard"
    _dihard_corpus(root)
    core = _prepare(root, tmp_path / "core", layout="dihard3", splits=("dev", "test"))
    _check(core, "dev", {"DH_DEV_0002": ["DH_DEV_0002_0_4000", "DH_DEV_0002_1000_5000"]})
    _check(core, "test", {"DH_EVAL_0001": ["DH_EVAL_0001_1000_5000", "DH_EVAL_0001_2000_6000"]})
    full = _prepare(root, tmp_path / "full", layout="dihard3", splits=("dev", "test"),
                    dihard_set="full")
    _check(full, "dev", {u: [f"{u}_0_4000", f"{u}_2000_6000"]
                         for u in ("DH_DEV_0001", "DH_DEV_0002")})
    with pytest.raises(ValueError, match="no split"):
        _prepare(root, tmp_path / "x", layout="dihard3")


def test_chime6_layout(tmp_path):
    root = tmp_path / "chime6"
    for split, sessions in (("train", ("S03", "S04")), ("dev", ("S02",)), ("eval", ("S01",))):
        for session in sessions:
            _wav(root / "audio" / split / f"{session}_U06.CH1.wav", 7)
            _wav(root / "audio" / split / f"{session}_U01.CH1.wav", 7)
            _text(root / "transcriptions" / split / f"{session}.json", json.dumps([
                {"speaker": "P09", "start_time": "0:00:00.50", "end_time": "0:00:02.75",
                 "words": "hello", "session": session},
                {"speaker": "P10", "start_time": "0:00:02.00", "end_time": "0:00:06.10",
                 "words": "hi", "session": session}]))
    summary = _prepare(root, tmp_path / "save", layout="chime6")
    ids = ["{s}_0_4000", "{s}_3000_7000"]
    recs, _ = _check(summary, "train", {s: [i.format(s=s) for i in ids] for s in ("S03", "S04")})
    assert all(row["wav"].endswith("_U06.CH1.wav") for row in recs)
    assert Path(recs[0]["rttm"]).read_text() == (
        _turn("S03", "0.500", "2.250", "P09") + _turn("S03", "2.000", "4.100", "P10"))
    _check(summary, "test", {"S01": ["S01_0_4000", "S01_3000_7000"]})
    with pytest.raises(FileNotFoundError, match="U02.CH1.wav"):
        _prepare(root, tmp_path / "save2", layout="chime6", chime6_array=("U02", 1))


def test_voxconverse_and_msdwild_layouts(tmp_path):
    root = tmp_path / "vox"
    for split, uris in (("dev", ("abjxc", "afjiv")), ("test", ("aepyx",))):
        for uri in uris:
            _wav(root / "audio" / split / f"{uri}.wav", 5)
            _text(root / split / f"{uri}.rttm", _turn(uri, 0, 3, "spk00"))
    summary = _prepare(root, tmp_path / "save_vox", layout="voxconverse", splits=("dev", "test"))
    _check(summary, "dev", {u: [f"{u}_0_4000", f"{u}_1000_5000"] for u in ("abjxc", "afjiv")})
    _check(summary, "test", {"aepyx": ["aepyx_0_4000", "aepyx_1000_5000"]})
    with pytest.raises(ValueError, match="valid: dev, test"):
        _prepare(root, tmp_path / "x", layout="voxconverse", splits=("train",))

    root = tmp_path / "msdwild"
    lists = {"few.train": ("00001", "00002"), "few.val": ("00003",), "many.val": ("00004",)}
    for name, uris in lists.items():
        _text(root / "rttms" / f"{name}.rttm", "".join(_turn(u, 0.5, 1, "0") for u in uris))
        for uri in uris:
            _wav(root / "wav" / f"{uri}.wav", 3)
    summary = _prepare(root, tmp_path / "save_msd", layout="msdwild")
    _check(summary, "train", {"00001": ["00001_0_3000"], "00002": ["00002_0_3000"]})
    _check(summary, "dev", {"00003": ["00003_0_3000"]})
    _check(summary, "test", {"00004": ["00004_0_3000"]})


# ------------------------------------------------------------------- errors
def test_missing_audio_single_error(tmp_path):
    root = tmp_path / "db"
    _generic_corpus(root)
    (root / "train" / "audio" / "recA.wav").unlink()
    (root / "test" / "audio" / "recD.wav").unlink()
    save = tmp_path / "save"
    with pytest.raises(FileNotFoundError, match="2 recordings") as info:
        _prepare(root, save)
    assert "recA.wav" in str(info.value) and "test/recD" in str(info.value)
    assert not save.exists()


def test_malformed_reference_and_bad_audio(tmp_path):
    root = tmp_path / "db"
    _generic_corpus(root)
    bad = root / "dev" / "rttm" / "recC.rttm"
    bad.write_text(_turn("recC", 0, 1, "A") + "SPEAKER recC 1 zero 1 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(ValueError, match=f"{bad}, line 2"):
        _prepare(root, tmp_path / "save")
    bad.write_text(_turn("recC", 0, 1, "A"))
    bad_uem = root / "train" / "uem" / "recB.uem"
    bad_uem.write_text("recB 1 5.0 1.0\n")
    with pytest.raises(ValueError, match=f"{bad_uem}, line 1"):
        _prepare(root, tmp_path / "save")
    bad_uem.write_text("recB 1 1.0 9.5\n")
    (root / "test" / "audio" / "recD.wav").write_bytes(b"RIFF not a wav")
    with pytest.raises(BadAudioFileError, match="recD.wav"):
        _prepare(root, tmp_path / "save")


# -------------------------------------------------------------- idempotence
def _age_all(folder):
    for path in Path(folder).rglob("*"):
        os.utime(path, ns=(OLD_MTIME * 10**9, OLD_MTIME * 10**9))


def _mtimes(folder):
    return {p: p.stat().st_mtime_ns for p in Path(folder).rglob("*") if p.is_file()}


def test_idempotence(tmp_path):
    root, save = tmp_path / "db", tmp_path / "save"
    _generic_corpus(root)
    first = _prepare(root, save)
    assert not first["already_prepared"] and (save / OPT_FILE).is_file()
    _age_all(save)
    before = _mtimes(save)
    again = _prepare(root, save)
    assert again["already_prepared"] and _mtimes(save) == before
    assert {k: v for k, v in again.items() if k != "already_prepared"} == \
        {k: v for k, v in first.items() if k != "already_prepared"}

    changed = _prepare(root, save, chunk_seconds=5.0)  # other options: redone
    assert not changed["already_prepared"]
    _prepare(root, save)
    _age_all(save)
    _text(root / "train" / "rttm" / "recA.rttm", _turn("recA", 0.5, 3.0, "alice"))
    redone = _prepare(root, save)  # changed input: redone
    assert not redone["already_prepared"]
    assert redone["speakers_per_recording"]["train"]["recA"] == 1
    _age_all(save)
    (save / "uem" / "train" / "recA.uem").unlink()  # missing output: redone
    assert not _prepare(root, save)["already_prepared"]
    assert (save / "uem" / "train" / "recA.uem").is_file()
    skipped = prepare_diarization(root, save, skip_prep=True)
    assert skipped["skipped"] and skipped["csv"] == redone["csv"]
