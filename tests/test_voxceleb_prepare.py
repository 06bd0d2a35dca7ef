"""Tests for data_prep/voxceleb_prepare.py on tiny synthetic corpora."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.voxceleb_prepare import (  # noqa: E402
    OPT_FILE,
    TRAIN_FIELDS,
    TRIAL_FIELDS,
    BadAudioFileError,
    prepare_voxceleb,
)
from speechbrain_pruning.synthetic import make_voxceleb_mini  # noqa: E402

SAMPLE_RATE = 16000
TINY = dict(
    num_speakers=3,
    num_test_speakers=3,
    videos_per_speaker=2,
    utts_per_video=2,
    min_seconds=0.5,
    max_seconds=1.0,
    num_trials=10,
    progress=False,
)
OLD_MTIME = 1_000_000_000  # 2001: any rewrite moves the mtime away from it


def _corpus(tmp_path, name="vox", **overrides):
    root = tmp_path / name
    return root, make_voxceleb_mini(root, **{**TINY, **overrides})


def _prepare(root, save, **kwargs):
    return prepare_voxceleb(root, save, progress=False, **kwargs)


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def _age(path):
    os.utime(path, ns=(OLD_MTIME * 10**9, OLD_MTIME * 10**9))


def _train_wavs(root, info):
    return sorted(p for spk in info["train_speakers"] for p in (root / "wav" / spk).glob("*/*.wav"))


# ----------------------------------------------------------------- manifests
def test_manifests(tmp_path):
    root, info = _corpus(tmp_path)
    save = tmp_path / "save"
    summary = _prepare(root, save)

    fields, rows = _read_csv(save / "train.csv")
    assert tuple(fields) == TRAIN_FIELDS
    assert len(rows) == summary["num_train_files"] == summary["num_train_rows"] == 12
    assert len({row["ID"] for row in rows}) == len(rows)
    assert summary["speakers"] == info["train_speakers"]
    assert summary["excluded_speakers"] == info["test_speakers"]
    assert summary["num_excluded_files"] == info["num_test_utterances"]
    assert {row["spk_id"] for row in rows} == set(info["train_speakers"])
    for row in rows:
        meta = sf.info(row["wav"])
        assert Path(row["wav"]).is_absolute()
        assert float(row["duration"]) == pytest.approx(meta.frames / meta.samplerate, abs=1e-9)
        assert (int(row["start"]), int(row["stop"])) == (0, meta.frames)
        spk, video, utt = Path(row["wav"]).parts[-3:]
        assert row["ID"] == f"{spk}--{video}--{Path(utt).stem}" and row["spk_id"] == spk

    fields, rows = _read_csv(save / "veri_test2.csv")
    assert tuple(fields) == TRIAL_FIELDS
    trial_lines = (root / "veri_test2.txt").read_text().splitlines()
    needed = {utt for line in trial_lines for utt in line.split()[1:]}
    assert {row["ID"] for row in rows} == needed and len(rows) == len(needed)
    for row in rows:
        assert Path(row["wav"]) == root / "wav" / row["ID"]
        assert float(row["duration"]) == pytest.approx(sf.info(row["wav"]).duration, abs=1e-9)
        assert row["spk_id"] == row["ID"].split("/")[0]
    assert (save / "veri_test2.txt").read_bytes() == (root / "veri_test2.txt").read_bytes()
    assert summary["num_trials"] == {"veri_test2": TINY["num_trials"]}
    assert summary["csv"] == {"train": str(save / "train.csv"),
                              "veri_test2": str(save / "veri_test2.csv")}
    assert (save / OPT_FILE).is_file() and summary["already_prepared"] is False


def test_speechbrain_can_load_the_csvs(tmp_path):
    from speechbrain.dataio.dataio import load_data_csv

    root, _ = _corpus(tmp_path)
    summary = _prepare(root, tmp_path / "save")
    data = load_data_csv(summary["csv"]["train"])
    assert len(data) == summary["num_train_rows"]
    assert all(isinstance(row["duration"], float) for row in data.values())
    assert len(load_data_csv(summary["csv"]["veri_test2"])) > 0


def test_trial_speakers_kept_when_not_excluded(tmp_path):
    root, info = _corpus(tmp_path)
    summary = _prepare(root, tmp_path / "save", exclude_trial_speakers=False,
                       trial_lists=("veri_test2.txt", "list_test_hard2.txt"))
    assert summary["excluded_speakers"] == [] and summary["num_train_files"] == 24
    assert sorted(summary["speakers"]) == sorted(info["train_speakers"] + info["test_speakers"])
    assert set(summary["csv"]) == {"train", "veri_test2", "list_test_hard2"}


# --------------------------------------------------------------- idempotence
def test_rerun_is_skipped_and_changed_options_reprepare(tmp_path):
    root, _ = _corpus(tmp_path)
    save = tmp_path / "save"
    first = _prepare(root, save)
    train_csv = save / "train.csv"
    _age(train_csv)

    again = _prepare(root, save)
    assert again["already_prepared"] is True
    assert train_csv.stat().st_mtime_ns == OLD_MTIME * 10**9  # not rewritten
    assert {k: v for k, v in again.items() if k != "already_prepared"} == {
        k: v for k, v in first.items() if k != "already_prepared"}

    chunked = _prepare(root, save, random_chunk=False, seg_dur=0.3)
    assert chunked["already_prepared"] is False
    assert train_csv.stat().st_mtime_ns != OLD_MTIME * 10**9
    assert chunked["num_train_rows"] > chunked["num_train_files"]
    _age(train_csv)
    assert _prepare(root, save, random_chunk=False, seg_dur=0.3)["already_prepared"]
    assert _prepare(root, save, random_chunk=False, seg_dur=0.4)["already_prepared"] is False

    # a new file (changed fingerprint) or a deleted output also re-prepares
    shutil.copy(next((root / "wav").glob("id10001/*/00001.wav")),
                next((root / "wav").glob("id10001/*")) / "00099.wav")
    grown = _prepare(root, save, random_chunk=False, seg_dur=0.4)
    assert not grown["already_prepared"]
    assert grown["num_train_files"] == first["num_train_files"] + 1
    (save / "veri_test2.csv").unlink()
    assert not _prepare(root, save, random_chunk=False, seg_dur=0.4)["already_prepared"]
    assert (save / "veri_test2.csv").is_file()


def test_skip_prep(tmp_path):
    summary = prepare_voxceleb(tmp_path / "missing", tmp_path / "save", skip_prep=True)
    assert summary["skipped"] is True
    assert not (tmp_path / "save").exists()


# ---------------------------------------------------------------- chunk mode
def test_chunk_mode(tmp_path):
    root, info = _corpus(tmp_path)
    seg_dur = 0.2
    summary = _prepare(root, tmp_path / "save", random_chunk=False, seg_dur=seg_dur)
    seg = int(seg_dur * SAMPLE_RATE)
    frames = [sf.info(str(p)).frames for p in _train_wavs(root, info)]
    expected = sum(max(1, n // seg) for n in frames)
    _, rows = _read_csv(tmp_path / "save" / "train.csv")
    assert len(rows) == summary["num_train_rows"] == expected
    for row in rows:
        start, stop = int(row["start"]), int(row["stop"])
        assert stop - start == seg
        assert row["ID"].endswith(f"_{start}_{stop}")
        assert float(row["duration"]) == pytest.approx(seg_dur)
    assert len({row["ID"] for row in rows}) == len(rows)


def test_chunk_shorter_than_segment_keeps_the_whole_file(tmp_path):
    root, info = _corpus(tmp_path)
    summary = _prepare(root, tmp_path / "save", random_chunk=False, seg_dur=5.0)
    _, rows = _read_csv(tmp_path / "save" / "train.csv")
    assert summary["num_train_rows"] == len(rows) == summary["num_train_files"]
    assert all(int(row["stop"]) == sf.info(row["wav"]).frames for row in rows)


def test_dev_split(tmp_path):
    root, _ = _corpus(tmp_path)
    summary = _prepare(root, tmp_path / "save", splits=("train", "dev"), dev_ratio=0.25)
    _, train = _read_csv(summary["csv"]["dev"].replace("dev.csv", "train.csv"))
    _, dev = _read_csv(summary["csv"]["dev"])
    assert len(dev) == summary["num_dev_files"] == 3  # one of four files per speaker
    assert len(train) + len(dev) == 12
    assert not {r["wav"] for r in train} & {r["wav"] for r in dev}
    assert {r["spk_id"] for r in dev} == {r["spk_id"] for r in train}
    assert "veri_test2" not in summary["csv"]


# ----------------------------------------------------------- error handling
def test_corrupt_wav(tmp_path):
    root, info = _corpus(tmp_path)
    bad = _train_wavs(root, info)[1]
    bad.write_bytes(b"RIFF\x00\x01garbage, not a wave file" * 3)
    with pytest.raises(BadAudioFileError, match=str(bad)):
        _prepare(root, tmp_path / "save")
    summary = _prepare(root, tmp_path / "save", skip_bad_files=True)
    assert summary["num_bad_files"] == 1 and summary["bad_files"] == [str(bad)]
    _, rows = _read_csv(tmp_path / "save" / "train.csv")
    assert len(rows) == 11 and str(bad) not in {row["wav"] for row in rows}


def test_corrupt_trial_wav_always_raises(tmp_path):
    root, _ = _corpus(tmp_path)
    needed = (root / "veri_test2.txt").read_text().split()[1]
    (root / "wav" / needed).write_bytes(b"garbage")
    with pytest.raises(BadAudioFileError, match="Trial list"):
        _prepare(root, tmp_path / "save", skip_bad_files=True)


def test_too_short_file_is_skipped(tmp_path):
    root, info = _corpus(tmp_path)
    short = root / "wav" / info["train_speakers"][0] / "shortVideo1" / "00001.wav"
    short.parent.mkdir()
    sf.write(str(short), np.zeros(100, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    summary = _prepare(root, tmp_path / "save")
    assert summary["num_too_short"] == 1 and summary["num_train_files"] == 12
    summary = _prepare(root, tmp_path / "save2", min_dur=0.001)
    assert summary["num_too_short"] == 0 and summary["num_train_files"] == 13


def test_bad_trial_line(tmp_path):
    root, _ = _corpus(tmp_path)
    trials = root / "veri_test2.txt"
    lines = trials.read_text().splitlines()
    lines.insert(3, "1 only_two_fields.wav")
    trials.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"veri_test2\.txt, line 4"):
        _prepare(root, tmp_path / "save")


def test_missing_trial_list_and_utterance(tmp_path):
    root, _ = _corpus(tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        _prepare(root, tmp_path / "save", trial_lists=("nope.txt",))
    custom = tmp_path / "custom.txt"
    custom.write_text("1 id10270/xxxxxxxxxxx/00001.wav id10270/xxxxxxxxxxx/00002.wav\n")
    with pytest.raises(ValueError, match="not in the data folders"):
        _prepare(root, tmp_path / "save", trial_lists=(str(custom),))


def test_empty_folder(tmp_path):
    (tmp_path / "empty" / "wav").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"empty.*wav/<speaker_id>/<video_id>"):
        _prepare(tmp_path / "empty", tmp_path / "save", trial_lists=())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _prepare(tmp_path / "absent", tmp_path / "save", trial_lists=())


# ---------------------------------------------------------------------- m4a
def _m4a_only(tmp_path):
    root = tmp_path / "vox2"
    for spk, video in (("id00012", "21Uxsk56VDQ"), ("id00015", "0fijmz4vTVU")):
        folder = root / "aac" / spk / video
        folder.mkdir(parents=True)
        (folder / "00001.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A fake aac")
    return root


def test_m4a_without_ffmpeg(tmp_path, monkeypatch):
    root = _m4a_only(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="ffmpeg -i in.m4a -ac 1 -ar 16000 out.wav"):
        _prepare(root, tmp_path / "save", trial_lists=())
    with pytest.raises(RuntimeError, match="ffmpeg was not found"):
        _prepare(root, tmp_path / "save", trial_lists=(), convert_m4a=True)


def test_m4a_conversion(tmp_path, monkeypatch):
    """The conversion plumbing, with a fake ffmpeg writing 1 s of silence."""
    root = _m4a_only(tmp_path)
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        assert command[command.index("-ar") + 1] == str(SAMPLE_RATE)
        sf.write(command[-1], np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE,
                 subtype="PCM_16", format="WAV")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/ffmpeg")
    monkeypatch.setattr(subprocess, "run", fake_run)
    summary = _prepare(root, tmp_path / "save", trial_lists=(), convert_m4a=True)
    assert len(calls) == 2 and summary["num_converted"] == 2
    assert (root / "wav" / "id00012" / "21Uxsk56VDQ" / "00001.wav").is_file()
    assert summary["num_train_files"] == 2 and summary["speakers"] == ["id00012", "id00015"]
    assert not list(root.rglob("*.part"))
    again = _prepare(root, tmp_path / "save", trial_lists=(), convert_m4a=True)
    assert again["already_prepared"] and len(calls) == 2


# ------------------------------------------------------- paths and folders
def test_non_ascii_paths(tmp_path):
    root, info = _corpus(tmp_path, name="données")
    source = _train_wavs(root, info)[0]
    target = root / "wav" / "idé10999" / "vidéo_名前_ü" / "00001.wav"
    target.parent.mkdir(parents=True)
    shutil.move(str(source), target)
    save = tmp_path / "sauvegarde_ß"
    summary = _prepare(root, save)
    assert "idé10999" in summary["speakers"]
    _, rows = _read_csv(save / "train.csv")
    row = next(r for r in rows if r["spk_id"] == "idé10999")
    assert row["ID"] == "idé10999--vidéo_名前_ü--00001" and row["wav"] == str(target)
    assert float(row["duration"]) == pytest.approx(sf.info(str(target)).duration)
    assert _prepare(root, save)["already_prepared"]


def test_several_data_folders(tmp_path):
    vox1, info1 = _corpus(tmp_path, name="vox1")
    vox2, info2 = _corpus(tmp_path, name="vox2", seed=5, first_train_id=20001,
                          first_test_id=20270)
    summary = _prepare([vox1, vox2], tmp_path / "save")
    expected = info1["train_speakers"] + info2["train_speakers"] + info2["test_speakers"]
    assert summary["speakers"] == sorted(expected)
    assert summary["excluded_speakers"] == info1["test_speakers"]
    assert summary["num_train_files"] == 12 + 24
    with pytest.raises(ValueError, match="found twice"):
        _prepare([vox1, vox1 / "wav"], tmp_path / "save2")
