"""Tests for speechbrain_pruning.synthetic.spoof (synthetic ASVspoof5-style corpus)."""

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_pruning.synthetic import sample_speaker
from speechbrain_pruning.synthetic.spoof import (
    ATTACK_TAGS,
    ATTACKS,
    AUDIO_DIRS,
    CODECS,
    PROTOCOL_COLUMNS,
    PROTOCOL_FILES,
    SPLIT_ATTACKS,
    SPLIT_PREFIXES,
    SPLITS,
    apply_codec,
    make_asvspoof5_mini,
    synthesize_spoof,
)

SAMPLE_RATE = 16000
PEAK = 10 ** (-3 / 20)
PEAK_TOLERANCE = 2e-3  # 16-bit rounding of the peak sample
CORPUS = dict(seed=0, progress=False)  # the default corpus
UTTS = {"train": 12, "dev": 8, "eval": 8}
NUM_SPEAKERS = 6
TINY = dict(num_speakers=2, utts_per_speaker={"train": 4, "dev": 4, "eval": 6},
            min_seconds=0.3, max_seconds=0.5, progress=False)

# learnability check: per-band spectral statistics + softmax regression
N_FFT = 512
HOP = 160
NUM_BANDS = 16
NUM_BINS = 256
NUM_CEPSTRA = 30
LOUD_DB = 30.0
L2 = 0.03
LEARNING_RATE = 0.2
NUM_STEPS = 1500
MIN_ACCURACY = 0.85


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("asvspoof5_mini")
    return root, make_asvspoof5_mini(root, **CORPUS)


def _rows(root, split):
    text = (Path(root) / PROTOCOL_FILES[split]).read_text(encoding="utf-8")
    return [line.split() for line in text.splitlines()]


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(Path(root).rglob("*")) if p.is_file()}


# ----------------------------------------------------------------- layout
def test_layout_and_counts(corpus):
    root, info = corpus
    expected = {PROTOCOL_FILES[s] for s in SPLITS}
    for split in SPLITS:
        num = NUM_SPEAKERS * UTTS[split]
        expected |= {f"{AUDIO_DIRS[split]}/{SPLIT_PREFIXES[split]}_{i:010d}.flac"
                     for i in range(num)}
        assert info["num_utterances"][split] == num
        assert info["counts"][split]["key"] == {"bonafide": num // 2, "spoof": num // 2}
        assert len(info["speakers"][split]) == NUM_SPEAKERS
        assert info["protocols"][split] == str(root / PROTOCOL_FILES[split])
        assert info["audio_dirs"][split] == str(root / AUDIO_DIRS[split])
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files == expected
    assert info["counts"]["train"]["attack"] == {"A01": 9, "A02": 9, "A03": 9, "A04": 9,
                                                 "bonafide": 36}
    assert info["counts"]["eval"]["attack"] == dict(
        {a: 4 for a in ATTACKS}, bonafide=24)
    assert info["counts"]["train"]["codec"] == {"-": 72}
    assert info["counts"]["dev"]["codec"] == {"-": 24, "C01": 8, "C02": 8, "C03": 8}
    assert info["sample_rate"] == SAMPLE_RATE
    assert 2.0 * 168 <= info["total_seconds"] <= 4.0 * 168


def test_protocol_format(corpus):
    root, info = corpus
    assert PROTOCOL_COLUMNS[1] == "FLAC_FILE_NAME" and len(PROTOCOL_COLUMNS) == 10
    speakers_per_split = {}
    genders = {}
    for split in SPLITS:
        prefix = SPLIT_PREFIXES[split]
        rows = _rows(root, split)
        assert [r[1] for r in rows] == [f"{prefix}_{i:010d}" for i in range(len(rows))]
        attacks = Counter()
        coded = Counter()
        for row in rows:
            assert len(row) == 10, row
            spk, name, gender, codec, codec_q, codec_seed, tag, label, key, tmp = row
            assert re.fullmatch(rf"{prefix}_\d{{4}}", spk), row
            assert (root / AUDIO_DIRS[split] / f"{name}.flac").is_file()
            assert gender in ("F", "M")
            assert genders.setdefault(spk, gender) == gender  # one gender per speaker
            assert info["genders"][spk] == gender
            assert tmp == "-"
            assert key in ("bonafide", "spoof")
            if key == "bonafide":
                assert tag == label == "bonafide", row
            else:
                assert label in SPLIT_ATTACKS[split], row
                assert tag == ATTACK_TAGS[label] and re.fullmatch(r"AC[1-3]", tag), row
                attacks[label] += 1
            if codec == "-":
                assert codec_q == codec_seed == "-", row
            else:
                assert split != "train", row
                assert codec in CODECS and codec_q in ("1", "2", "3"), row
                assert re.fullmatch(r"\d+", codec_seed), row
                coded[key] += 1
            speakers_per_split.setdefault(split, set()).add(spk)
        assert set(attacks) == set(SPLIT_ATTACKS[split])
        # codecs hit bona fide and spoofed utterances alike: no label leak
        assert coded["bonafide"] == coded["spoof"] == (0 if split == "train" else len(rows) // 4)
    assert set(SPLIT_ATTACKS["eval"]) - set(SPLIT_ATTACKS["train"]) == {"A05", "A06"}
    assert SPLIT_ATTACKS["dev"] == SPLIT_ATTACKS["train"]
    train, dev, evl = (speakers_per_split[s] for s in SPLITS)
    assert not (train & dev or train & evl or dev & evl)
    assert sorted(train) == info["speakers"]["train"]
    # speaker numbers are distinct across splits, not only their prefixes
    numbers = [spk[2:] for s in SPLITS for spk in speakers_per_split[s]]
    assert len(set(numbers)) == len(numbers)
    assert set(Counter(genders.values())) == {"F", "M"}


def test_audio_format(corpus):
    root, _ = corpus
    for split in SPLITS:
        for row in _rows(root, split)[:10]:
            path = root / AUDIO_DIRS[split] / f"{row[1]}.flac"
            meta = sf.info(str(path))
            assert (meta.samplerate, meta.channels, meta.format, meta.subtype) == (
                SAMPLE_RATE, 1, "FLAC", "PCM_16")
            wav, rate = sf.read(str(path), dtype="float32")
            assert rate == SAMPLE_RATE and wav.ndim == 1
            assert 2.0 * SAMPLE_RATE - 1 <= len(wav) <= 4.0 * SAMPLE_RATE + 1
            assert np.all(np.isfinite(wav)) and np.abs(wav).max() <= 1.0
            assert abs(np.abs(wav).max() - PEAK) < PEAK_TOLERANCE, path


def test_deterministic(tmp_path):
    make_asvspoof5_mini(tmp_path / "a", **TINY)
    make_asvspoof5_mini(tmp_path / "b", **TINY)
    make_asvspoof5_mini(tmp_path / "c", seed=1, **TINY)
    first, second, other = (_files(tmp_path / d) for d in "abc")
    assert len(first) == 3 + 2 * (4 + 4 + 6)
    assert first == second
    assert first.keys() == other.keys() and first != other


def test_int_utts_and_argument_checks(tmp_path):
    info = make_asvspoof5_mini(tmp_path / "int", num_speakers=1, utts_per_speaker=2,
                               min_seconds=0.2, max_seconds=0.2, progress=False)
    assert info["num_utterances"] == {"train": 2, "dev": 2, "eval": 2}
    with pytest.raises(ValueError, match="lacks"):
        make_asvspoof5_mini(tmp_path / "x", utts_per_speaker={"train": 2}, progress=False)
    with pytest.raises(ValueError, match="min_seconds"):
        make_asvspoof5_mini(tmp_path / "x", min_seconds=2.0, max_seconds=1.0)
    with pytest.raises(ValueError, match="spoof_fraction"):
        make_asvspoof5_mini(tmp_path / "x", spoof_fraction=1.5)


# ---------------------------------------------------- attacks and codecs
@pytest.mark.parametrize("attack", ATTACKS)
def test_synthesize_spoof(attack):
    spk = sample_speaker(np.random.default_rng(3), gender="male")
    wav = synthesize_spoof(spk, 0.6, attack, np.random.default_rng(4))
    again = synthesize_spoof(spk, 0.6, attack, np.random.default_rng(4))
    assert wav.shape == (int(0.6 * SAMPLE_RATE),) and wav.dtype == np.float32
    assert np.all(np.isfinite(wav)) and abs(np.abs(wav).max() - PEAK) < 1e-4
    np.testing.assert_array_equal(wav, again)


def test_synthesize_spoof_unknown_attack():
    spk = sample_speaker(np.random.default_rng(0))
    with pytest.raises(ValueError, match="Unknown attack"):
        synthesize_spoof(spk, 0.5, "A99", np.random.default_rng(0))


def _band_energy(wav, low, high):
    spec = np.abs(np.fft.rfft(wav)) ** 2
    freqs = np.fft.rfftfreq(len(wav), 1.0 / SAMPLE_RATE)
    return spec[(freqs >= low) & (freqs < high)].sum() / spec.sum()


@pytest.mark.parametrize("codec", CODECS)
def test_apply_codec(codec):
    rng = np.random.default_rng(0)
    wav = 0.5 * rng.standard_normal(SAMPLE_RATE).clip(-1.9, 1.9) / 1.9
    out = apply_codec(wav, codec, quality=3, seed=7)
    assert out.shape == wav.shape and out.dtype == np.float32
    assert abs(np.abs(out).max() - PEAK) < 1e-4
    np.testing.assert_array_equal(out, apply_codec(wav, codec, quality=3, seed=7))
    assert not np.array_equal(out, apply_codec(wav, codec, quality=3, seed=8))
    if codec in ("C02", "C03"):  # band-limited to 4 kHz (up to the transmission noise)
        assert _band_energy(out, 4500, 8000) < 0.01 < _band_energy(wav, 4500, 8000)
    else:  # mu-law keeps the band, quantisation error is small
        assert np.corrcoef(wav, out)[0, 1] > 0.99


def test_apply_codec_none_and_errors():
    wav = np.linspace(-0.5, 0.5, 100)
    np.testing.assert_allclose(apply_codec(wav, "-"), wav * PEAK / 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="Unknown codec"):
        apply_codec(wav, "C09")
    with pytest.raises(ValueError, match="quality"):
        apply_codec(wav, "C01", quality=4)


# ------------------------------------------------------------ learnability
def _features(wav):
    """Per-band harmonic contrast, spectral flux and flatness (48 values)."""
    index = np.arange(N_FFT)[None, :] + HOP * np.arange(1 + (len(wav) - N_FFT) // HOP)[:, None]
    power = np.abs(np.fft.rfft(wav[index] * np.hanning(N_FFT), axis=1))[:, :NUM_BINS] ** 2
    log_power = np.log(power + 1e-10)
    energy = log_power.mean(axis=1)
    loud = energy > energy.max() - LOUD_DB * np.log(10.0) / 10.0
    cepstrum = np.fft.irfft(log_power, n=2 * NUM_BINS - 2, axis=1)
    cepstrum[:, NUM_CEPSTRA:-NUM_CEPSTRA] = 0.0
    envelope = np.fft.rfft(cepstrum, axis=1).real[:, :NUM_BINS]
    fine = (log_power - envelope)[loud].reshape(-1, NUM_BANDS, NUM_BINS // NUM_BANDS)
    flux = np.abs(np.diff(log_power[loud], axis=0)).reshape(-1, NUM_BANDS, NUM_BINS // NUM_BANDS)
    bands = power[loud].reshape(-1, NUM_BANDS, NUM_BINS // NUM_BANDS)
    flatness = np.log(bands + 1e-10).mean(axis=2) - np.log(bands.mean(axis=2) + 1e-10)
    return np.concatenate([fine.std(axis=2).mean(axis=0), flux.mean(axis=(0, 2)),
                           flatness.mean(axis=0)])


def _load(root, split, augment=False):
    """Features and attack labels; ``augment`` adds one codec copy per file."""
    feats, labels = [], []
    for index, row in enumerate(_rows(root, split)):
        wav, _ = sf.read(str(Path(root) / AUDIO_DIRS[split] / f"{row[1]}.flac"))
        feats.append(_features(wav))
        labels.append(row[7])
        if augment:
            feats.append(_features(apply_codec(wav, CODECS[index % len(CODECS)],
                                               quality=2, seed=index)))
            labels.append(row[7])
    return np.array(feats), np.array(labels)


def _softmax_regression(inputs, labels, classes):
    targets = (labels[:, None] == np.array(classes)[None, :]).astype(float)
    weights = np.zeros((inputs.shape[1], len(classes)))
    bias = np.zeros(len(classes))
    for _ in range(NUM_STEPS):
        logits = inputs @ weights + bias
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        grad = probs - targets
        weights -= LEARNING_RATE * (inputs.T @ grad / len(inputs) + L2 * weights)
        bias -= LEARNING_RATE * grad.mean(axis=0)
    return weights, bias


def test_learnable_bonafide_vs_spoof(corpus):
    """A linear softmax classifier over {bona fide, A01..A04}, trained on the
    training set (plus one codec-augmented copy, as codec augmentation is
    standard for ASVspoof5 where only dev/eval have codecs), separates bona
    fide from spoofed dev utterances (with and without codecs)."""
    root, _ = corpus
    train_x, train_y = _load(root, "train", augment=True)
    dev_x, dev_y = _load(root, "dev")
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    classes = sorted(set(train_y))
    weights, bias = _softmax_regression((train_x - mean) / std, train_y, classes)
    predicted = np.array(classes)[(((dev_x - mean) / std) @ weights + bias).argmax(axis=1)]
    accuracy = np.mean((predicted == "bonafide") == (dev_y == "bonafide"))
    assert accuracy > MIN_ACCURACY, accuracy
