"""Tests for data_prep/asvspoof_prepare.py on tiny hand-written fake corpora."""

import csv
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.asvspoof_prepare import (  # noqa: E402
    FIELDS,
    OPT_FILE,
    BadAudioFileError,
    detect_layout,
    find_asv_scores,
    prepare_asvspoof,
)

SAMPLE_RATE = 16000
OLD_MTIME = 1_000_000_000  # 2001: any rewrite moves the mtime away from it

# ASVspoof5: SPEAKER_ID FLAC_FILE_NAME GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG
#            ATTACK_LABEL KEY TMP
ASV5_LINES = {
    "train": [
        "T_4850 T_0000000000 F - - - bonafide bonafide bonafide -",
        "T_4850 T_0000000001 F - - - AC3 A05 spoof -",
        "T_1138 T_0000000002 M - - - AC1 A01 spoof -",
    ],
    "dev": [
        "D_0062 D_0000000000 M - - - bonafide bonafide bonafide -",
        "D_0062 D_0000000001 M C03 2 17 AC2 A11 spoof -",
    ],
    "eval": [
        "E_0001 E_0000000000 F C08 1 3 bonafide bonafide bonafide -",
        "E_0002 E_0000000001 M C08 1 4 AC3 A20 spoof -",
        "E_0002 E_0000000002 M - - - AC1 A17 spoof -",
    ],
}
ASV5_PROTOCOLS = {"train": "ASVspoof5.train.tsv", "dev": "ASVspoof5.dev.track_1.tsv",
                  "eval": "ASVspoof5.eval.track_1.tsv"}
ASV5_DIRS = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}

LA_LINES = {
    "train": ["LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof",
              "LA_0080 LA_T_1000001 - A02 spoof"],
    "dev": ["LA_0069 LA_D_1047731 - - bonafide", "LA_0069 LA_D_1105538 - A03 spoof"],
    "eval": ["LA_0039 LA_E_2834763 - A11 spoof", "LA_0014 LA_E_8877452 - - bonafide",
             "LA_0014 LA_E_6828287 - A19 spoof"],
}
LA_PROTOCOLS = {"train": "ASVspoof2019.LA.cm.train.trn.txt",
                "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
                "eval": "ASVspoof2019.LA.cm.eval.trl.txt"}
LA_ASV_SCORES = {"dev": "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt",
                 "eval": "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"}
# Organisers' ASV score files: CM_KEY ASV_KEY SCORE
LA_ASV_LINES = {
    "dev": ["bonafide target 2.1", "bonafide nontarget -3.2", "bonafide target 1.7",
            "A03 spoof 0.4", "bonafide nontarget -0.9", "A05 spoof 1.2"],
    "eval": ["bonafide target 1.9", "bonafide nontarget -2.4", "A11 spoof 0.8",
             "bonafide target 0.6", "A19 spoof -1.1", "bonafide nontarget 0.2"],
}


def _flac(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = int(seconds * SAMPLE_RATE)
    sf.write(str(path), 0.01 * np.ones(samples, dtype=np.float32), SAMPLE_RATE,
             format="FLAC")


def _durations(lines):
    """A distinct short duration per file (seconds)."""
    names = [line.split()[1] for line in lines
             if len(line.split()) > 1 and not line.startswith("SPEAKER_ID")]
    return {name: 0.05 + 0.01 * i for i, name in enumerate(names)}


def make_asvspoof5(root, lines=ASV5_LINES, protocol_dir="ASVspoof5_protocols", audio=True):
    root = Path(root)
    durations = {}
    for split, split_lines in lines.items():
        folder = root / protocol_dir if protocol_dir else root
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ASV5_PROTOCOLS[split]).write_text("\n".join(split_lines) + "\n")
        for name, seconds in _durations(split_lines).items():
            durations[name] = seconds
            if audio:
                _flac(root / ASV5_DIRS[split] / f"{name}.flac", seconds)
    return durations


def make_la_asv_scores(root, splits=("dev", "eval")):
    """Writes the organisers' ASV score files of ``splits``; returns their paths."""
    folder = Path(root) / "LA" / "ASVspoof2019_LA_asv_scores"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in splits:
        paths[split] = folder / LA_ASV_SCORES[split]
        paths[split].write_text("\n".join(LA_ASV_LINES[split]) + "\n")
    return paths


def make_la(root, lines=LA_LINES, audio=True):
    la = Path(root) / "LA"
    durations = {}
    (la / "ASVspoof2019_LA_cm_protocols").mkdir(parents=True, exist_ok=True)
    for split, split_lines in lines.items():
        (la / "ASVspoof2019_LA_cm_protocols" / LA_PROTOCOLS[split]).write_text(
            "\n".join(split_lines) + "\n")
        for name, seconds in _durations(split_lines).items():
            durations[name] = seconds
            if audio:
                _flac(la / f"ASVspoof2019_LA_{split}" / "flac" / f"{name}.flac", seconds)
    return durations


def _prepare(root, save, **kwargs):
    return prepare_asvspoof(root, save, progress=False, **kwargs)


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return tuple(reader.fieldnames), list(reader)


def _age(path):
    os.utime(path, ns=(OLD_MTIME * 10**9, OLD_MTIME * 10**9))


# --------------------------------------------------------------- ASVspoof5
def test_asvspoof5_manifests(tmp_path):
    root = tmp_path / "asv5"
    durations = make_asvspoof5(root)
    save = tmp_path / "save"
    summary = _prepare(root, save, layout="asvspoof5")

    assert summary["layout"] == "asvspoof5"
    assert summary["csv"] == {s: str(save / f"{s}.csv") for s in ("train", "dev", "eval")}
    assert summary["save_folder"] == str(save)
    assert summary["already_prepared"] is False
    assert summary["counts"] == {"train": {"bonafide": 1, "spoof": 2},
                                 "dev": {"bonafide": 1, "spoof": 1},
                                 "eval": {"bonafide": 1, "spoof": 2}}
    assert summary["attacks"]["train"] == {"A01": 1, "A05": 1, "bonafide": 1}
    assert summary["attacks"]["eval"] == {"A17": 1, "A20": 1, "bonafide": 1}
    assert summary["codecs"]["train"] == {"-": 3}
    assert summary["codecs"]["eval"] == {"-": 1, "C08": 2}
    assert summary["num_files"] == {"train": 3, "dev": 2, "eval": 3}

    fields, rows = _read_csv(save / "train.csv")
    assert fields == FIELDS
    assert [row["ID"] for row in rows] == ["T_0000000000", "T_0000000001", "T_0000000002"]
    first, second, third = rows
    assert (first["label"], first["attack"], first["codec"], first["speaker"],
            first["gender"]) == ("bonafide", "bonafide", "-", "T_4850", "F")
    assert (second["label"], second["attack"]) == ("spoof", "A05")
    assert (third["speaker"], third["gender"], third["attack"]) == ("T_1138", "M", "A01")
    for split in ("train", "dev", "eval"):
        _, rows = _read_csv(save / f"{split}.csv")
        assert len({row["ID"] for row in rows}) == len(rows)
        for row in rows:
            wav = Path(row["wav"])
            assert wav.is_absolute() and wav.is_file()
            assert wav == root / ASV5_DIRS[split] / f"{row['ID']}.flac"
            assert float(row["duration"]) == pytest.approx(durations[row["ID"]], abs=1e-9)
    _, rows = _read_csv(save / "dev.csv")
    assert (rows[1]["codec"], rows[1]["attack"]) == ("C03", "A11")


def test_speechbrain_can_load_the_csvs(tmp_path):
    from speechbrain.dataio.dataio import load_data_csv

    make_asvspoof5(tmp_path / "asv5")
    summary = _prepare(tmp_path / "asv5", tmp_path / "save")
    data = load_data_csv(summary["csv"]["train"])
    assert len(data) == 3
    assert all(isinstance(row["duration"], float) for row in data.values())


@pytest.mark.parametrize("protocol_dir", [None, "protocols", "ASVspoof5_protocols", "meta"])
def test_asvspoof5_protocol_locations(tmp_path, protocol_dir):
    root = tmp_path / "asv5"
    make_asvspoof5(root, lines={"train": ASV5_LINES["train"]}, protocol_dir=protocol_dir)
    summary = _prepare(root, tmp_path / "save", splits=("train",))
    assert summary["layout"] == "asvspoof5" and summary["num_files"] == {"train": 3}


def test_asvspoof5_eval_in_flac_E(tmp_path):
    root = tmp_path / "asv5"
    make_asvspoof5(root, lines={"eval": ASV5_LINES["eval"]})
    (root / "flac_E_eval").rename(root / "flac_E")
    summary = _prepare(root, tmp_path / "save", splits=("eval",))
    _, rows = _read_csv(summary["csv"]["eval"])
    assert all(Path(row["wav"]).parent == root / "flac_E" for row in rows)


def test_header_line_tolerated(tmp_path):
    root = tmp_path / "asv5"
    header = ("SPEAKER_ID FLAC_FILE_NAME GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG "
              "ATTACK_LABEL KEY TMP")
    make_asvspoof5(root, lines={"train": [header] + ASV5_LINES["train"]})
    summary = _prepare(root, tmp_path / "save", splits=("train",))
    assert summary["counts"]["train"] == {"bonafide": 1, "spoof": 2}
    _, rows = _read_csv(summary["csv"]["train"])
    assert "SPEAKER_ID" not in {row["speaker"] for row in rows}


# ---------------------------------------------------------------- 2019 LA
@pytest.mark.parametrize("la_itself", [False, True])
def test_asvspoof2019_la(tmp_path, la_itself):
    root = tmp_path / "2019"
    durations = make_la(root)
    folder = root / "LA" if la_itself else root
    save = tmp_path / "save"
    summary = _prepare(folder, save, layout="asvspoof2019_la")

    assert summary["layout"] == "asvspoof2019_la"
    assert summary["counts"] == {"train": {"bonafide": 1, "spoof": 2},
                                 "dev": {"bonafide": 1, "spoof": 1},
                                 "eval": {"bonafide": 1, "spoof": 2}}
    assert summary["attacks"]["eval"] == {"A11": 1, "A19": 1, "bonafide": 1}
    assert summary["codecs"] == {s: {"-": n} for s, n in
                                 (("train", 3), ("dev", 2), ("eval", 3))}
    fields, rows = _read_csv(save / "train.csv")
    assert fields == FIELDS
    assert rows[0] == {
        "ID": "LA_T_1138215", "duration": rows[0]["duration"],
        "wav": str(root / "LA" / "ASVspoof2019_LA_train" / "flac" / "LA_T_1138215.flac"),
        "label": "bonafide", "attack": "bonafide", "codec": "-", "speaker": "LA_0079",
        "gender": "-",
    }
    assert (rows[1]["label"], rows[1]["attack"]) == ("spoof", "A01")
    for split in ("train", "dev", "eval"):
        _, rows = _read_csv(save / f"{split}.csv")
        for row in rows:
            assert Path(row["wav"]).is_file()
            assert float(row["duration"]) == pytest.approx(durations[row["ID"]], abs=1e-9)


def test_auto_detection(tmp_path):
    make_asvspoof5(tmp_path / "asv5")
    make_la(tmp_path / "2019")
    assert _prepare(tmp_path / "asv5", tmp_path / "s5")["layout"] == "asvspoof5"
    assert _prepare(tmp_path / "2019", tmp_path / "s19")["layout"] == "asvspoof2019_la"
    assert _prepare(tmp_path / "2019" / "LA", tmp_path / "s19la")["layout"] == "asvspoof2019_la"
    assert detect_layout(tmp_path / "2019", splits=("dev",))[0] == "asvspoof2019_la"


def test_auto_detection_failure_lists_what_was_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as err:
        _prepare(tmp_path / "empty", tmp_path / "save")
    message = str(err.value)
    assert "ASVspoof5.train.tsv" in message and "ASVspoof2019.LA.cm.train.trn.txt" in message
    assert "ASVspoof5.eval.track_1.tsv" in message
    assert not (tmp_path / "save").exists()


def test_explicit_layout_missing_protocol(tmp_path):
    make_la(tmp_path / "2019")
    with pytest.raises(FileNotFoundError, match="ASVspoof5.train.tsv"):
        _prepare(tmp_path / "2019", tmp_path / "save", layout="asvspoof5")


def test_missing_split_protocol(tmp_path):
    make_asvspoof5(tmp_path / "asv5", lines={"train": ASV5_LINES["train"]})
    with pytest.raises(FileNotFoundError, match="ASVspoof5.dev.track_1.tsv"):
        _prepare(tmp_path / "asv5", tmp_path / "save")
    assert _prepare(tmp_path / "asv5", tmp_path / "save", splits=("train",))["csv"]


def test_invalid_options(tmp_path):
    make_la(tmp_path / "2019")
    with pytest.raises(ValueError, match="layout"):
        _prepare(tmp_path / "2019", tmp_path / "save", layout="asvspoof2021")
    with pytest.raises(ValueError, match="test"):
        _prepare(tmp_path / "2019", tmp_path / "save", splits=("train", "test"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _prepare(tmp_path / "nowhere", tmp_path / "save")


# ---------------------------------------------------------- protocol errors
def test_malformed_line_names_file_and_line(tmp_path):
    lines = dict(ASV5_LINES, dev=[ASV5_LINES["dev"][0], "", "D_0062 D_0000000001 M C03 spoof -"])
    make_asvspoof5(tmp_path / "asv5", lines=lines, audio=False)
    with pytest.raises(ValueError) as err:
        _prepare(tmp_path / "asv5", tmp_path / "save")
    message = str(err.value)
    assert "ASVspoof5.dev.track_1.tsv" in message and "line 3" in message
    assert "D_0062 D_0000000001 M C03 spoof -" in message
    assert not (tmp_path / "save").exists()


def test_malformed_la_line(tmp_path):
    lines = dict(LA_LINES, train=LA_LINES["train"] + ["LA_0079 LA_T_9 A01 spoof"])
    make_la(tmp_path / "2019", lines=lines, audio=False)
    with pytest.raises(ValueError, match=r"cm\.train\.trn\.txt, line 4: .*LA_T_9"):
        _prepare(tmp_path / "2019", tmp_path / "save")


def test_bad_label(tmp_path):
    lines = dict(LA_LINES, dev=["LA_0069 LA_D_1 - - bonafide", "LA_0069 LA_D_2 - A03 fake",
                                "LA_0069 LA_D_3 - A04 Spoof"])
    make_la(tmp_path / "2019", lines=lines, audio=False)
    with pytest.raises(ValueError) as err:
        _prepare(tmp_path / "2019", tmp_path / "save")
    message = str(err.value)
    assert "ASVspoof2019.LA.cm.dev.trl.txt" in message and "line 2" in message
    assert "'fake'" in message and "'Spoof'" in message
    assert not (tmp_path / "save").exists()


def test_inconsistent_attack_and_duplicates(tmp_path):
    lines = {"train": ["LA_0079 LA_T_1 - A01 bonafide"]}
    make_la(tmp_path / "a", lines=lines, audio=False)
    with pytest.raises(ValueError, match="line 1.*bonafide file cannot have attack 'A01'"):
        _prepare(tmp_path / "a", tmp_path / "save", splits=("train",))
    lines = {"train": ["LA_0079 LA_T_1 - - bonafide", "LA_0079 LA_T_1 - A01 spoof"]}
    make_la(tmp_path / "b", lines=lines, audio=False)
    with pytest.raises(ValueError, match="line 2: file LA_T_1 already listed on line 1"):
        _prepare(tmp_path / "b", tmp_path / "save", splits=("train",))


def test_empty_protocol(tmp_path):
    make_la(tmp_path / "2019", lines={"train": []}, audio=False)
    with pytest.raises(ValueError, match="lists no files"):
        _prepare(tmp_path / "2019", tmp_path / "save", splits=("train",))


# ------------------------------------------------------------- audio errors
def test_missing_audio_single_error_before_writing(tmp_path):
    root = tmp_path / "asv5"
    make_asvspoof5(root)
    removed = sorted((root / "flac_T").glob("*.flac"))
    removed += sorted((root / "flac_E_eval").glob("*.flac"))
    for path in removed:
        path.unlink()
    save = tmp_path / "save"
    with pytest.raises(FileNotFoundError) as err:
        _prepare(root, save)
    message = str(err.value)
    assert message.startswith("6 audio files")
    assert str(removed[0]) in message and "T_0000000002.flac" in message
    assert "E_0000000001.flac" in message and "E_0000000002.flac" not in message  # first 5
    assert not save.exists() or not list(save.iterdir())


def test_missing_audio_after_a_good_run_keeps_old_outputs(tmp_path):
    root = tmp_path / "2019"
    make_la(root)
    save = tmp_path / "save"
    _prepare(root, save)
    for path in (save / "train.csv", save / "dev.csv", save / "eval.csv"):
        _age(path)
    (root / "LA" / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1105538.flac").unlink()
    with pytest.raises(FileNotFoundError, match="^1 audio files.*LA_D_1105538.flac"):
        _prepare(root, save)
    assert (save / "train.csv").stat().st_mtime_ns == OLD_MTIME * 10**9


def test_check_audio_false_skips_existence_check(tmp_path):
    root = tmp_path / "2019"
    make_la(root, audio=False)
    summary = _prepare(root, tmp_path / "save", check_audio=False, read_durations=False)
    _, rows = _read_csv(summary["csv"]["eval"])
    assert len(rows) == 3 and {row["duration"] for row in rows} == {"0.0"}
    assert rows[0]["wav"] == str(root / "LA" / "ASVspoof2019_LA_eval" / "flac"
                                 / "LA_E_2834763.flac")


def test_read_durations_false(tmp_path):
    make_asvspoof5(tmp_path / "asv5")
    summary = _prepare(tmp_path / "asv5", tmp_path / "save", read_durations=False)
    _, rows = _read_csv(summary["csv"]["train"])
    assert [float(row["duration"]) for row in rows] == [0.0, 0.0, 0.0]


def test_corrupt_header(tmp_path):
    root = tmp_path / "2019"
    make_la(root)
    bad = root / "LA" / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1047731.flac"
    bad.write_bytes(b"this is not a flac file at all")
    with pytest.raises(BadAudioFileError, match="LA_D_1047731.flac"):
        _prepare(root, tmp_path / "save")
    assert not (tmp_path / "save").exists()


# --------------------------------------------------------------- idempotence
def test_rerun_is_skipped_and_changed_options_reprepare(tmp_path):
    root = tmp_path / "asv5"
    make_asvspoof5(root)
    save = tmp_path / "save"
    first = _prepare(root, save)
    stored = json.loads((save / OPT_FILE).read_text(encoding="utf-8"))
    assert stored["options"]["layout"] == "asvspoof5" and stored["summary"] == first
    csvs = [save / f"{split}.csv" for split in ("train", "dev", "eval")]
    for path in csvs:
        _age(path)

    again = _prepare(root, save)
    assert again["already_prepared"] is True
    assert {k: v for k, v in again.items() if k != "already_prepared"} == {
        k: v for k, v in first.items() if k != "already_prepared"}
    assert all(path.stat().st_mtime_ns == OLD_MTIME * 10**9 for path in csvs)

    changed = _prepare(root, save, read_durations=False)
    assert changed["already_prepared"] is False
    assert all(path.stat().st_mtime_ns != OLD_MTIME * 10**9 for path in csvs)
    _age(csvs[0])
    assert _prepare(root, save, read_durations=False)["already_prepared"] is True
    assert csvs[0].stat().st_mtime_ns == OLD_MTIME * 10**9
    assert _prepare(root, save)["already_prepared"] is False

    # a changed protocol or a deleted output also re-prepares
    protocol = root / "ASVspoof5_protocols" / "ASVspoof5.train.tsv"
    protocol.write_text("\n".join(ASV5_LINES["train"][:2]) + "\n")
    shrunk = _prepare(root, save)
    assert not shrunk["already_prepared"] and shrunk["num_files"]["train"] == 2
    (save / "dev.csv").unlink()
    assert not _prepare(root, save)["already_prepared"]
    assert (save / "dev.csv").is_file()


def test_skip_prep(tmp_path):
    summary = prepare_asvspoof(tmp_path / "missing", tmp_path / "save", skip_prep=True)
    assert summary["skipped"] is True
    assert not (tmp_path / "save").exists()


# ------------------------------------------------------------ non-ASCII paths
def test_non_ascii_paths(tmp_path):
    root = tmp_path / "données_ASVspoof_語音"
    durations = make_la(root)
    save = tmp_path / "sauvegarde_ü"
    summary = _prepare(root, save)
    _, rows = _read_csv(summary["csv"]["train"])
    assert all("語音" in row["wav"] and Path(row["wav"]).is_file() for row in rows)
    assert float(rows[0]["duration"]) == pytest.approx(durations[rows[0]["ID"]])
    assert _prepare(root, save)["already_prepared"] is True


# ------------------------------------------------------- 2019 LA ASV scores
def test_asv_score_files_are_found(tmp_path):
    from speechbrain_pruning.spoofing.tdcf import read_asv_scores

    root = tmp_path / "2019"
    make_la(root)
    paths = make_la_asv_scores(root)
    summary = _prepare(root, tmp_path / "save")
    assert summary["asv_scores"] == {split: str(paths[split]) for split in ("dev", "eval")}
    for split, path in summary["asv_scores"].items():
        assert Path(path).is_absolute() and Path(path).is_file()
        sources, keys, scores = read_asv_scores(path)
        assert len(scores) == len(LA_ASV_LINES[split])
        assert set(keys.tolist()) == {"target", "nontarget", "spoof"}
    # the LA folder itself as root, and only the requested splits
    only_eval = _prepare(root / "LA", tmp_path / "save_la", splits=("train", "eval"))
    assert only_eval["asv_scores"] == {"eval": str(paths["eval"])}
    assert _prepare(root, tmp_path / "save_t", splits=("train",))["asv_scores"] == {}
    assert find_asv_scores(root / "LA", "asvspoof2019_la", ("dev",)) == {"dev": str(paths["dev"])}


def test_absent_asv_score_files_are_fine(tmp_path, caplog):
    root = tmp_path / "2019"
    make_la(root)
    save = tmp_path / "save"
    with caplog.at_level(logging.INFO, logger="data_prep.asvspoof_prepare"):
        summary = _prepare(root, save)
    assert summary["asv_scores"] == {"dev": None, "eval": None}
    assert "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt is absent" in caplog.text
    # files added later are found without re-preparing the manifests
    paths = make_la_asv_scores(root, splits=("eval",))
    again = _prepare(root, save)
    assert again["already_prepared"] is True
    assert again["asv_scores"] == {"dev": None, "eval": str(paths["eval"])}


def test_asvspoof5_has_no_asv_scores(tmp_path):
    make_asvspoof5(tmp_path / "asv5")
    assert _prepare(tmp_path / "asv5", tmp_path / "save")["asv_scores"] == {}
    assert find_asv_scores(tmp_path / "asv5", "asvspoof5") == {}
