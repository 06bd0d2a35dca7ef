"""speechbrain-pruning-diarize on tiny silent files with a fake model: wav.scp and
list inputs, sharding, skip-existing, failures, flags and JSON output."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pyannote.core import Annotation, Segment

from speechbrain_pruning.diarization import cli
from speechbrain_pruning.diarization.rttm import read_rttm, write_rttm

KNOWN_PARAMS = {"window", "step", "batch_size", "clustering", "clustering_threshold", "onset"}


class FakeOutput:
    def __init__(self, annotation):
        self.speaker_diarization = annotation

    def write_rttm(self, file):
        write_rttm(self.speaker_diarization, file)

    def write_json(self, path):
        turns = [{"start": s.start, "end": s.end, "speaker": label}
                 for s, _, label in self.speaker_diarization.itertracks(yield_label=True)]
        Path(path).write_text(json.dumps({"uri": self.speaker_diarization.uri,
                                          "turns": turns}))


class FakeModel:
    """``PrunedDiarizer`` stand-in: reads the audio (so broken files fail) and
    returns one speaker over the whole file."""

    def __init__(self, folder, device):
        self.folder, self.device = folder, device
        self.params, self.set_params_calls, self.calls = {}, [], []

    def set_params(self, **overrides):
        unknown = set(overrides) - KNOWN_PARAMS
        if unknown:
            raise ValueError(f"unknown inference parameter(s) {sorted(unknown)}")
        self.set_params_calls.append(overrides)
        self.params.update(overrides)

    def __call__(self, path, uri=None, num_speakers=None, min_speakers=None,
                 max_speakers=None, progress=True):
        audio, rate = sf.read(path)
        self.calls.append({"path": str(path), "uri": uri, "num_speakers": num_speakers,
                           "min_speakers": min_speakers, "max_speakers": max_speakers,
                           "progress": progress})
        annotation = Annotation(uri=uri)
        annotation[Segment(0.0, len(audio) / rate)] = "spk0"
        return FakeOutput(annotation)


@pytest.fixture
def models(monkeypatch):
    """Every FakeModel ``cli.load_model`` created, in order."""
    created = []

    def load_model(folder, device):
        created.append(FakeModel(folder, device))
        return created[-1]

    monkeypatch.setattr(cli, "load_model", load_model)
    return created


def wav(path, seconds=0.5):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(16000 * seconds)), 16000)
    return path


def run(*args):
    return cli.main(["model_dir", *map(str, args)])


def diarized(models):
    return [call["uri"] for model in models for call in model.calls]


# ---- inputs -----------------------------------------------------------------------------

def test_wav_scp_ids_paths_and_outputs(tmp_path, monkeypatch, models):
    wav(tmp_path / "audio" / "a.wav", 1.0)
    wav(tmp_path / "audio" / "with space.wav")
    monkeypatch.chdir(tmp_path)  # Kaldi: relative paths from the current folder
    scp = tmp_path / "data" / "wav.scp"
    scp.parent.mkdir()
    scp.write_text(f"rec-1 {tmp_path}/audio/a.wav\n\n"
                   "rec-2   audio/with space.wav  \n")
    recs = cli.find_recordings([scp])
    assert [(r.name, r.uri) for r in recs] == [("rec-1", "rec-1"), ("rec-2", "rec-2")]
    assert recs[1].path == Path("audio/with space.wav")
    assert run(scp, "--output", tmp_path / "rttm", "--quiet") == 0
    assert sorted(p.name for p in (tmp_path / "rttm").iterdir()) == ["rec-1.rttm", "rec-2.rttm"]
    turns = read_rttm(tmp_path / "rttm" / "rec-1.rttm")
    assert list(turns) == ["rec-1"]
    assert turns["rec-1"].get_timeline().duration() == pytest.approx(1.0)


@pytest.mark.parametrize("bad_line, message", [
    ("rec-3 sox in.flac -t wav - |", "piped command"),
    ("rec-3", "expected '<recording-id> <path>'"),
    ("rec-3 missing.wav", "no such audio file"),
    ("rec-1 a.wav", "already on line 1"),
    ("dev/rec-3 a.wav", "cannot be used as a file name"),
])
def test_wav_scp_errors_name_file_and_line(tmp_path, monkeypatch, models, capsys,
                                            bad_line, message):
    wav(tmp_path / "a.wav")
    monkeypatch.chdir(tmp_path)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"rec-1 a.wav\n\n{bad_line}\n")
    with pytest.raises(cli.InputError, match=message) as err:
        cli.find_recordings([scp])
    assert f"{scp}:3:" in str(err.value)
    assert run(scp, "--output", tmp_path / "rttm") == 2
    assert f"{scp}:3:" in capsys.readouterr().err
    assert not models  # bad inputs: the model is not even loaded


def test_scp_suffix_and_name_clash(tmp_path, monkeypatch):
    wav(tmp_path / "x.wav")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dev.scp").write_text("x x.wav\n")
    assert [r.name for r in cli.find_recordings([tmp_path / "dev.scp"])] == ["x"]
    other = wav(tmp_path / "other" / "x.wav")
    with pytest.raises(cli.InputError, match="output name 'x' given twice"):
        cli.find_recordings([tmp_path / "dev.scp", other])


def test_list_file_relative_paths_and_comments(tmp_path, monkeypatch, models):
    wav(tmp_path / "lists" / "near.wav")
    wav(tmp_path / "lists" / "sub" / "deep file.flac")
    far = wav(tmp_path / "elsewhere" / "far.wav")
    listing = tmp_path / "lists" / "files.lst"
    listing.write_text("# corpus\n\nnear.wav\n  sub/deep file.flac  \n"
                       f"# absolute\n{far}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")  # relative to the list, not the cwd
    recs = cli.find_recordings([listing])
    assert [(r.path, r.name, r.uri) for r in recs] == [
        (tmp_path / "lists" / "near.wav", "near", "near"),
        (tmp_path / "lists" / "sub" / "deep file.flac", "deep file", "deep_file"),
        (far, "far", "far")]
    for suffix in (".list", ".txt"):
        other = listing.with_suffix(suffix)
        other.write_text(listing.read_text())
        assert cli.find_recordings([other]) == recs
    assert run(listing, "--output", tmp_path / "rttm", "--quiet") == 0
    assert sorted(p.name for p in (tmp_path / "rttm").iterdir()) == \
        ["deep file.rttm", "far.rttm", "near.rttm"]
    assert list(read_rttm(tmp_path / "rttm" / "deep file.rttm")) == ["deep_file"]


def test_list_file_missing_entry_names_line(tmp_path, capsys):
    wav(tmp_path / "a.wav")
    listing = tmp_path / "files.txt"
    listing.write_text("a.wav\n# comment\n\nb.wav\n")
    assert run(listing, "--output", tmp_path / "rttm") == 2
    err = capsys.readouterr().err
    assert f"{listing}:4: no such audio file 'b.wav'" in err


def test_list_files_with_same_stem_keep_both(tmp_path, monkeypatch, models):
    for sub in ("day1", "day2"):
        wav(tmp_path / sub / "meeting.wav")
    listing = tmp_path / "files.lst"
    listing.write_text("day1/meeting.wav\nday2/meeting.wav\nday1/meeting.wav\n")
    assert [r.name for r in cli.find_recordings([listing])] == ["day1/meeting", "day2/meeting"]


def test_missing_input_and_nothing_found(tmp_path, models, capsys):
    assert run(tmp_path / "nope", "--output", tmp_path / "rttm") == 2
    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty", "--output", tmp_path / "rttm") == 2
    assert "No recordings found" in capsys.readouterr().err
    assert not models


# ---- sharding ---------------------------------------------------------------------------

def test_shards_cover_every_recording_once(tmp_path, models):
    names = [f"rec{i:02d}" for i in range(11)]
    for name in names:
        wav(tmp_path / "in" / f"{name}.wav", 0.1)
    shards = []
    for k in range(1, 5):
        before = len(diarized(models))
        assert run(tmp_path / "in", "--output", tmp_path / "rttm", "--shard", f"{k}/4",
                   "--quiet") == 0
        shards.append(diarized(models)[before:])
    assert [len(s) for s in shards] == [3, 3, 3, 2]
    assert sorted(sum(shards, [])) == names  # together: every recording exactly once
    assert shards[1] == ["rec01", "rec05", "rec09"]  # K=2: every 4th from index 1
    assert sorted(p.stem for p in (tmp_path / "rttm").iterdir()) == names
    # the split only depends on the names, not on the order of the inputs
    recs = cli.find_recordings(sorted((tmp_path / "in").iterdir(), reverse=True))
    assert [r.name for r in cli.shard(recs, 2, 4)] == shards[1]


def test_shard_summary_and_empty_shard(tmp_path, models, capsys):
    wav(tmp_path / "in" / "only.wav")
    assert run(tmp_path / "in", "--output", tmp_path / "rttm", "--shard", "2/3") == 0
    assert "shard 2/3: 0 of 1 recording(s); 0 RTTM file(s) written" in capsys.readouterr().out
    assert not models  # nothing to do: no model loaded


@pytest.mark.parametrize("spec", ["0/4", "5/4", "1/0", "2", "a/b", "-1/4", "1/4/2"])
def test_bad_shard_is_an_argument_error(tmp_path, capsys, spec):
    wav(tmp_path / "a.wav")
    assert run(tmp_path / "a.wav", "--output", tmp_path / "rttm", "--shard", spec) == 2
    assert "--shard" in capsys.readouterr().err


# ---- reruns, failures -------------------------------------------------------------------

def test_rerun_skips_existing_and_overwrite_redoes(tmp_path, models, capsys):
    for name in ("a", "b", "c"):
        wav(tmp_path / "in" / f"{name}.wav")
    args = (tmp_path / "in", "--output", tmp_path / "rttm")
    assert run(*args) == 0
    assert diarized(models) == ["a", "b", "c"]
    assert "3 RTTM file(s) written" in capsys.readouterr().out
    assert not list((tmp_path / "rttm").glob("*.part"))
    assert run(*args) == 0
    assert diarized(models) == ["a", "b", "c"]  # nothing diarized again
    out = capsys.readouterr().out
    assert "0 RTTM file(s) written" in out and "3 skipped" in out
    # a run interrupted while writing b leaves only b.rttm.part: b is redone
    (tmp_path / "rttm" / "b.rttm").rename(tmp_path / "rttm" / "b.rttm.part")
    assert run(*args) == 0
    assert diarized(models)[3:] == ["b"]
    assert "1 RTTM file(s) written" in capsys.readouterr().out
    assert not (tmp_path / "rttm" / "b.rttm.part").exists()
    assert run(*args, "--overwrite") == 0
    assert diarized(models)[4:] == ["a", "b", "c"]
    out = capsys.readouterr().out
    assert "3 RTTM file(s) written" in out and "skipped" not in out


def test_skip_message(tmp_path, models, capsys):
    wav(tmp_path / "in" / "a.wav")
    run(tmp_path / "in", "--output", tmp_path / "rttm")
    capsys.readouterr()
    assert run(tmp_path / "in", "--output", tmp_path / "rttm") == 0
    assert capsys.readouterr().out.strip() == (
        f"0 RTTM file(s) written to {tmp_path / 'rttm'}, "
        "1 skipped (already there; --overwrite redoes them)")
    assert len(models) == 1  # all done: the model is not loaded again


def test_failing_file_exit_1_others_written(tmp_path, models, capsys):
    wav(tmp_path / "in" / "a.wav")
    (tmp_path / "in" / "broken.wav").write_bytes(b"RIFF not really a wav")
    wav(tmp_path / "in" / "c.wav")
    assert run(tmp_path / "in", "--output", tmp_path / "rttm") == 1
    captured = capsys.readouterr()
    assert "1 of 3 file(s) failed" in captured.err and "broken.wav" in captured.err
    assert "2 RTTM file(s) written" in captured.out
    assert sorted(p.name for p in (tmp_path / "rttm").iterdir()) == ["a.rttm", "c.rttm"]
    # a rerun retries only the failed file
    assert run(tmp_path / "in", "--output", tmp_path / "rttm") == 1
    assert "1 of 1 file(s) failed" in capsys.readouterr().err
    assert diarized(models) == ["a", "c"]


def test_model_that_cannot_load_exits_2(tmp_path, monkeypatch, capsys):
    def broken(folder, device):
        raise FileNotFoundError(f"{folder}/hyperparams.yaml")

    monkeypatch.setattr(cli, "load_model", broken)
    wav(tmp_path / "a.wav")
    assert run(tmp_path / "a.wav", "--output", tmp_path / "rttm") == 2
    assert "cannot load the model model_dir" in capsys.readouterr().err


# ---- flags ------------------------------------------------------------------------------

def test_flags_reach_the_model(tmp_path, models, capsys):
    wav(tmp_path / "a.wav")
    assert run(tmp_path / "a.wav", "--output", tmp_path / "rttm", "--window", "5",
               "--step", "0.5", "--batch-size", "8", "--clustering", "ahc",
               "--clustering-threshold", "0.7", "--onset", "0.6", "--min-speakers", "2",
               "--max-speakers", "4", "--device", "cuda:1", "--quiet") == 0
    model = models[0]
    assert (model.folder, model.device) == ("model_dir", "cuda:1")
    assert model.set_params_calls == [{"window": 5.0, "step": 0.5, "batch_size": 8,
                                       "clustering": "ahc", "clustering_threshold": 0.7,
                                       "onset": 0.6}]
    assert model.calls == [{"path": str(tmp_path / "a.wav"), "uri": "a", "num_speakers": None,
                            "min_speakers": 2, "max_speakers": 4, "progress": False}]
    assert capsys.readouterr().out == ""  # --quiet


def test_no_inference_flags_keep_model_defaults(tmp_path, models):
    wav(tmp_path / "a.wav")
    assert run(tmp_path / "a.wav", "--output", tmp_path / "rttm", "--num-speakers", "3") == 0
    assert models[0].set_params_calls == [] and models[0].device == "cpu"
    assert models[0].calls[0]["num_speakers"] == 3 and models[0].calls[0]["progress"] is True


def test_set_params_error_exits_2(tmp_path, monkeypatch, models, capsys):
    def reject(self, **overrides):
        raise ValueError("onset must be below offset")

    monkeypatch.setattr(FakeModel, "set_params", reject)
    wav(tmp_path / "a.wav")
    assert run(tmp_path / "a.wav", "--output", tmp_path / "rttm", "--onset", "0.9") == 2
    assert "onset must be below offset" in capsys.readouterr().err
    assert not (tmp_path / "rttm").exists()


@pytest.mark.parametrize("flags", [
    ["--clustering", "kmeans"], ["--onset", "1.5"], ["--window", "0"], ["--batch-size", "x"],
    ["--min-speakers", "3", "--max-speakers", "2"], ["--num-speakers", "0"],
])
def test_bad_flag_values_exit_2(tmp_path, models, flags):
    wav(tmp_path / "a.wav")
    assert run(tmp_path / "a.wav", "--output", tmp_path / "rttm", *flags) == 2
    assert not models


def test_json_written_next_to_rttm(tmp_path, models):
    wav(tmp_path / "in" / "sub" / "a.wav", 0.25)
    assert run(tmp_path / "in", "--output", tmp_path / "rttm", "--json", "--quiet") == 0
    assert sorted(p.relative_to(tmp_path / "rttm").as_posix()
                  for p in (tmp_path / "rttm").rglob("*") if p.is_file()) == \
        ["sub/a.json", "sub/a.rttm"]
    data = json.loads((tmp_path / "rttm" / "sub" / "a.json").read_text())
    assert data == {"uri": "a", "turns": [{"start": 0.0, "end": 0.25, "speaker": "spk0"}]}
    # an RTTM without its JSON (an earlier run without --json) is redone with --json
    assert run(tmp_path / "in", "--output", tmp_path / "rttm2", "--quiet") == 0
    assert not (tmp_path / "rttm2" / "sub" / "a.json").exists()
    assert run(tmp_path / "in", "--output", tmp_path / "rttm2", "--json", "--quiet") == 0
    assert (tmp_path / "rttm2" / "sub" / "a.json").is_file()
    assert len(diarized(models)) == 3
    assert run(tmp_path / "in", "--output", tmp_path / "rttm2", "--json", "--quiet") == 0
    assert len(diarized(models)) == 3
