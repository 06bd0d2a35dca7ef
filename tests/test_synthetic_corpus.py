"""Tests for speechbrain_pruning.synthetic (synthetic VoxCeleb-style corpus)."""

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torchaudio

from speechbrain_pruning.synthetic import sample_speaker, synthesize_utterance
from speechbrain_pruning.synthetic.voxceleb import TRIAL_LISTS, VIDEO_ID_ALPHABET, make_voxceleb_mini

SAMPLE_RATE = 16000
CORPUS = dict(
    num_speakers=5,
    num_test_speakers=4,
    videos_per_speaker=2,
    utts_per_video=3,
    min_seconds=2.5,
    max_seconds=3.5,
    num_trials=40,
    seed=2,
    progress=False,
)
TINY = dict(
    num_speakers=2,
    num_test_speakers=3,
    videos_per_speaker=1,
    utts_per_video=2,
    min_seconds=0.3,
    max_seconds=0.6,
    num_trials=8,
    progress=False,
)
N_FFT = 512
HOP = 160
N_MELS = 40
MIN_ACCURACY = 0.9
PEAK = 10 ** (-3 / 20)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("voxmini")
    return root, make_voxceleb_mini(root, **CORPUS)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


def _utt_paths(root):
    return sorted((Path(root) / "wav").glob("*/*/*.wav"))


def _read_trials(path):
    return [line.split() for line in Path(path).read_text(encoding="utf-8").splitlines()]


# -------------------------------------------------------------------- layout
def test_layout_and_counts(corpus):
    root, info = corpus
    utts = _utt_paths(root)
    per_speaker = CORPUS["videos_per_speaker"] * CORPUS["utts_per_video"]
    num_speakers = CORPUS["num_speakers"] + CORPUS["num_test_speakers"]
    assert len(utts) == info["num_utterances"] == num_speakers * per_speaker
    assert info["num_test_utterances"] == CORPUS["num_test_speakers"] * per_speaker
    assert info["train_speakers"] == [f"id{10001 + i}" for i in range(CORPUS["num_speakers"])]
    assert info["test_speakers"][0] == "id10270"
    assert not set(info["train_speakers"]) & set(info["test_speakers"])
    speakers = sorted(p.name for p in (root / "wav").iterdir())
    assert speakers == sorted(info["train_speakers"] + info["test_speakers"])
    for speaker in speakers:
        assert re.fullmatch(r"id\d{5}", speaker)
        videos = sorted((root / "wav" / speaker).iterdir())
        assert len(videos) == CORPUS["videos_per_speaker"]
        for video in videos:
            assert len(video.name) == 11 and set(video.name) <= set(VIDEO_ID_ALPHABET)
            names = sorted(p.name for p in video.iterdir())
            assert names == [f"{i + 1:05d}.wav" for i in range(CORPUS["utts_per_video"])]
    assert set(info["genders"].values()) == {"male", "female"}
    assert sorted(info["trial_lists"]) == sorted(TRIAL_LISTS)


def test_audio_format_and_durations(corpus):
    root, info = corpus
    total = 0.0
    for path in _utt_paths(root):
        meta = sf.info(str(path))
        assert (meta.samplerate, meta.channels, meta.format, meta.subtype) == (
            SAMPLE_RATE, 1, "WAV", "PCM_16")
        assert CORPUS["min_seconds"] - 1e-3 <= meta.duration <= CORPUS["max_seconds"] + 1e-3
        wav, rate = sf.read(str(path), dtype="float32")
        assert wav.ndim == 1 and wav.dtype == np.float32 and rate == SAMPLE_RATE
        assert np.all(np.abs(wav) <= 1.0)
        assert abs(np.abs(wav).max() - PEAK) < 1e-3  # -3 dBFS peak
        assert np.isfinite(wav).all() and wav.std() > 0.01
        total += meta.duration
    assert total == pytest.approx(info["total_seconds"], rel=1e-6)


# -------------------------------------------------------------------- trials
def test_trial_lists(corpus):
    root, info = corpus
    test_speakers = set(info["test_speakers"])
    for name in TRIAL_LISTS:
        trials = _read_trials(root / name)
        assert len(trials) == info["num_trials"][name] == CORPUS["num_trials"]
        assert len({(e, t) for _, e, t in trials}) == len(trials)  # no duplicates
        labels = [int(label) for label, _, _ in trials]
        assert sum(labels) == len(labels) // 2
        for label, enrol, test in trials:
            assert len((label, enrol, test)) == 3 and label in ("0", "1")
            assert (root / "wav" / enrol).is_file() and (root / "wav" / test).is_file()
            assert enrol != test
            enrol_spk, test_spk = enrol.split("/")[0], test.split("/")[0]
            assert {enrol_spk, test_spk} <= test_speakers
            assert (enrol_spk == test_spk) == (label == "1")
            if name == "list_test_hard2.txt":
                assert info["genders"][enrol_spk] == info["genders"][test_spk]
    assert _read_trials(root / "veri_test2.txt") != _read_trials(root / "list_test_all2.txt")


# --------------------------------------------------------------- determinism
def test_determinism(tmp_path):
    make_voxceleb_mini(tmp_path / "a", seed=7, **TINY)
    make_voxceleb_mini(tmp_path / "b", seed=7, **TINY)
    make_voxceleb_mini(tmp_path / "c", seed=8, **TINY)
    first, second, other = (_files(tmp_path / n) for n in "abc")
    assert first == second
    assert len(first) == 2 * 2 + 3 * 2 + len(TRIAL_LISTS)
    assert first.keys() != other.keys()  # different video ids
    assert sorted(first.values()) != sorted(other.values())


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_test_speakers"):
        make_voxceleb_mini(tmp_path, **{**TINY, "num_test_speakers": 2})
    with pytest.raises(ValueError, match="2 utterances"):
        make_voxceleb_mini(tmp_path, **{**TINY, "utts_per_video": 1})
    with pytest.raises(ValueError, match="min_seconds"):
        make_voxceleb_mini(tmp_path, **{**TINY, "min_seconds": 1.0, "max_seconds": 0.5})
    with pytest.raises(ValueError, match="gender"):
        sample_speaker(np.random.default_rng(0), gender="robot")
    with pytest.raises(ValueError, match="positive"):
        synthesize_utterance(sample_speaker(np.random.default_rng(0)), 0.0,
                             np.random.default_rng(0))


# -------------------------------------------------------------- learnability
def _long_term_log_mel(wav, fbank):
    """Log of the mean mel power over frames (long-term average spectrum)."""
    frames = np.lib.stride_tricks.sliding_window_view(wav, N_FFT)[::HOP] * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return np.log(power.mean(axis=0) @ fbank + 1e-10)


def _cosine(a, b):
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


def test_speaker_identity_is_learnable(corpus):
    """Nearest-centroid on mean log-mel features, enrolled on another video."""
    root, _ = corpus
    fbank = torchaudio.functional.melscale_fbanks(
        N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, N_MELS, SAMPLE_RATE).numpy()
    paths = _utt_paths(root)
    feats = np.stack([_long_term_log_mel(sf.read(str(p))[0], fbank) for p in paths])
    speakers = np.array([p.parts[-3] for p in paths])
    videos = np.array([p.parts[-2] for p in paths])
    names = sorted(set(speakers))
    first_video = {s: sorted(set(videos[speakers == s]))[0] for s in names}
    enrol = np.array([videos[i] == first_video[s] for i, s in enumerate(speakers)])
    feats = feats - feats[enrol].mean(axis=0)
    centroids = np.stack([feats[enrol & (speakers == s)].mean(axis=0) for s in names])
    predicted = np.array(names)[_cosine(feats[~enrol], centroids).argmax(axis=1)]
    accuracy = (predicted == speakers[~enrol]).mean()
    assert accuracy > MIN_ACCURACY, accuracy

    similarity = _cosine(feats, feats)
    same = speakers[:, None] == speakers[None, :]
    off_diagonal = ~np.eye(len(paths), dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.3
