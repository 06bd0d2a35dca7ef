"""Command-line tests of the data_prep scripts (``python data_prep/<x>_prepare.py``)
on tiny synthetic corpora: help, a run with its summary, the error exit."""

import csv
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.asvspoof_prepare import prepare_asvspoof  # noqa: E402
from data_prep.common import build_parser, run_cli  # noqa: E402
from data_prep.diarization_prepare import prepare_diarization  # noqa: E402
from data_prep.voxceleb_prepare import prepare_voxceleb  # noqa: E402
from speechbrain_pruning.synthetic import (  # noqa: E402
    make_asvspoof5_mini,
    make_meeting_corpus,
    make_voxceleb_mini,
)

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {
    "voxceleb_prepare": prepare_voxceleb,
    "asvspoof_prepare": prepare_asvspoof,
    "diarization_prepare": prepare_diarization,
}


def _run(script, *args, module=False):
    target = ["-m", f"data_prep.{script}"] if module else [f"data_prep/{script}.py"]
    return subprocess.run([sys.executable, *target, *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _flag(name):
    return "--" + name.replace("_", "-")


# --------------------------------------------------------------------- help
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_lists_every_option(script):
    result = _run(script, "--help")
    assert result.returncode == 0, result.stderr
    for name, param in inspect.signature(SCRIPTS[script]).parameters.items():
        assert _flag(name) in result.stdout
        if isinstance(param.default, bool):
            assert f"--no-{name.replace('_', '-')}" in result.stdout
    assert "--data-folder" in result.stdout and "--save-folder" in result.stdout
    assert "--skip-prep" in result.stdout and "--no-progress" in result.stdout


def test_help_as_a_module():
    result = _run("asvspoof_prepare", "--help", module=True)
    assert result.returncode == 0, result.stderr
    assert "Corpus root" in result.stdout and "--read-durations" in result.stdout


def test_parser_types_from_signature_and_docstring():
    vox = build_parser(prepare_voxceleb).parse_args(
        ["--data-folder", "a", "b", "--save-folder", "s", "--trial-lists", "x.txt", "y.txt",
         "--min-dur", "0.5", "--num-workers", "3", "--no-random-chunk", "--seg-dur", "2"])
    assert vox.data_folder == ["a", "b"] and vox.trial_lists == ["x.txt", "y.txt"]
    assert (vox.min_dur, vox.num_workers, vox.random_chunk, vox.seg_dur) == (0.5, 3, False, 2.0)
    assert vox.splits == ("train", "test") and vox.progress is True
    empty = build_parser(prepare_voxceleb).parse_args(
        ["--data-folder", "a", "--save-folder", "s", "--trial-lists"])
    assert empty.trial_lists == []
    diar = build_parser(prepare_diarization).parse_args(
        ["--data-folder", "a", "--save-folder", "s", "--chime6-array", "U02", "3"])
    assert diar.chime6_array == ["U02", "3"] and diar.chunk_seconds == 8.0
    with pytest.raises(SystemExit):
        build_parser(prepare_asvspoof).parse_args(["--data-folder", "a"])  # no --save-folder


# ---------------------------------------------------------------------- runs
def test_voxceleb_run_and_summary(tmp_path):
    root, save = tmp_path / "vox", tmp_path / "save"
    info = make_voxceleb_mini(root, num_speakers=2, num_test_speakers=3, videos_per_speaker=1,
                              utts_per_video=2, min_seconds=1.0, max_seconds=1.0,
                              num_trials=6, progress=False)
    bad = sorted((root / "wav" / info["train_speakers"][0]).glob("*/*.wav"))[0]
    bad.write_bytes(b"RIFF garbage")
    result = _run("voxceleb_prepare", "--data-folder", root, "--save-folder", save,
                  "--skip-bad-files", "--no-progress")
    assert result.returncode == 0, result.stderr
    trial_rows = len(_rows(save / "veri_test2.csv"))
    assert len(_rows(save / "train.csv")) == 3
    out = result.stdout
    assert f"prepare_voxceleb: wrote 2 CSV files in {save}" in out
    assert "  train.csv: 3 rows" in out and f"  veri_test2.csv: {trial_rows} rows" in out
    assert f"1 file skipped: unreadable header (skip_bad_files)\n  {bad}\n" in out
    assert "6 files skipped: speaker of a trial list (exclude_trial_speakers)" in out
    assert "(+1 more)" in out and "Traceback" not in result.stderr

    again = _run("voxceleb_prepare", "--data-folder", root, "--save-folder", save,
                 "--skip-bad-files", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "already prepared, nothing rewritten: 2 CSV files" in again.stdout
    assert "  train.csv: 3 rows" in again.stdout


def test_asvspoof_run_and_summary(tmp_path):
    root, save = tmp_path / "asv5", tmp_path / "save"
    make_asvspoof5_mini(root, num_speakers=1, utts_per_speaker=2, min_seconds=1.0,
                        max_seconds=1.0, progress=False)
    result = _run("asvspoof_prepare", "--data-folder", root, "--save-folder", save,
                  "--splits", "train", "eval")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in save.glob("*.csv")) == ["eval.csv", "train.csv"]
    assert result.stdout.splitlines() == [
        f"prepare_asvspoof: wrote 2 CSV files in {save}",
        "  train.csv: 2 rows",
        "  eval.csv: 2 rows",
        "nothing skipped",
    ]
    assert "Reading train audio headers" in result.stderr  # the progress bar


def test_diarization_run_and_summary(tmp_path, capsys):
    """In-process (``run_cli``, what ``__main__`` calls): the script starts slowly
    (it imports torch); its subprocess exit status is checked by the error test."""
    root, save = tmp_path / "meetings", tmp_path / "save"
    make_meeting_corpus(root, splits={"train": 1, "dev": 1}, duration=2.0, max_speakers=2,
                        progress=False)
    extra = root / "train" / "audio" / "no_reference.wav"
    extra.write_bytes((root / "train" / "audio" / "train_000.wav").read_bytes())
    status = run_cli(prepare_diarization, [
        "--data-folder", str(root), "--save-folder", str(save), "--splits", "train", "dev",
        "--chunk-seconds", "1", "--chunk-shift", "1", "--no-progress"])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"prepare_diarization: wrote 4 CSV files in {save}"
    for split in ("train", "dev"):
        assert f"  {split}_recordings.csv: 1 row" in lines
        assert f"  {split}_chunks.csv: {len(_rows(save / f'{split}_chunks.csv'))} rows" in lines
    assert lines[-2:] == ["1 audio file skipped: no reference (RTTM)", f"  {extra}"]


def test_skip_prep_prints_nothing_done(tmp_path, capsys):
    assert run_cli(prepare_asvspoof, ["--data-folder", str(tmp_path / "absent"),
                                      "--save-folder", str(tmp_path / "save"),
                                      "--skip-prep"]) == 0
    assert "nothing done (--skip-prep)" in capsys.readouterr().out
    assert not (tmp_path / "save").exists()


# -------------------------------------------------------------------- errors
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_missing_data_folder_exits_1(script, tmp_path):
    missing = tmp_path / "no_such_corpus"
    result = _run(script, "--data-folder", missing, "--save-folder", tmp_path / "save")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and str(missing) in lines[-1]
    assert "does not exist" in lines[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "save").exists()
