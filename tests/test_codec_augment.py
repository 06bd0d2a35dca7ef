"""Tests for the in-memory codec augmentation (CodecAugment) and AugmentChain."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from speechbrain_pruning.spoofing import codec as codec_module
from speechbrain_pruning.spoofing.codec import (
    CODECS,
    MP3_UNTRIMMED_DELAY,
    AugmentChain,
    CodecAugment,
    _align,
    codec_roundtrip,
)
from speechbrain_pruning.spoofing.rawboost import RawBoost

RATE = 16000
ALL_CODECS = ("mp3", "vorbis", "opus", "mulaw", "alaw")
# (codec, MP3 bitrate mode) at the lowest quality (compression level 1.0)
LOSSY = [("mp3", "CONSTANT"), ("mp3", "VARIABLE"), ("vorbis", None), ("opus", None)]


def _noise(samples=8000, seed=0, scale=0.1):
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(samples, generator=generator)


def _tone(freq, samples=8000, amplitude=0.3):
    t = torch.arange(samples, dtype=torch.float64) / RATE
    return (amplitude * torch.sin(2 * math.pi * freq * t)).float()


def _corr(a, b):
    return float(torch.corrcoef(torch.stack([a.double(), b.double()]))[0, 1])


def _peak_lag(out, ref, max_lag=2000):
    """Lag of the cross-correlation peak of ``out`` against ``ref`` (positive = delayed)."""
    out, ref = out.double().numpy(), ref.double().numpy()
    size = 2 * max(len(out), len(ref)) + 2 * max_lag
    # by FFT (np.correlate goes through multi-threaded BLAS, which stalls on a busy CPU)
    corr = np.fft.irfft(np.fft.rfft(out, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.arange(-max_lag, max_lag + 1)
    return int(lags[np.argmax(corr[lags])])


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    """One intra-op thread: the round trips are tiny, and on a busy shared CPU
    two OpenMP threads make the resampling stall (seconds) instead of helping."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def augment_all():
    return CodecAugment(codecs=ALL_CODECS, compression_level=(0.5, 1.0))


# ------------------------------------------------------------ length / alignment
@pytest.mark.parametrize("codec", ALL_CODECS)
def test_decoded_length_equals_input_length(codec):
    for samples in (1, 37, 801, 4001, 12345):
        wav = _noise(samples, seed=samples)
        for level in (0.0, 1.0):
            out = codec_roundtrip(wav, RATE, codec, level, "CONSTANT" if codec == "mp3" else None)
            assert out.shape == wav.shape, (codec, samples, level)
            assert torch.isfinite(out).all()


@pytest.mark.parametrize("codec,mode", LOSSY + [("mulaw", None), ("alaw", None)])
def test_output_aligned_with_input(codec, mode):
    # broadband signal: the cross-correlation peak is at lag 0 after alignment,
    # also for CBR MP3 at 8 kbps, decoded without the LAME tag (untrimmed path)
    wav = _noise(12001, seed=3)
    for level in (0.3, 1.0):
        out = codec_roundtrip(wav, RATE, codec, level, mode)
        assert out.shape == wav.shape
        assert _peak_lag(out, wav) == 0, (codec, mode, level)


def test_align_removes_known_mp3_delay_and_finds_other_delays():
    ref = np.random.default_rng(0).standard_normal(3000).astype(np.float32)
    # MP3 decoded without the LAME info tag: encoder + decoder delay, then frame padding
    untrimmed = np.concatenate([np.zeros(MP3_UNTRIMMED_DELAY), ref, np.zeros(500)])
    np.testing.assert_array_equal(_align(untrimmed, ref, "mp3"), ref)
    # any other surplus: the delay is found by cross-correlation
    delayed = np.concatenate([np.zeros(312), ref, np.zeros(41)]).astype(np.float32)
    np.testing.assert_array_equal(_align(delayed, ref, "opus"), ref)
    # too short: zero-padded at the end
    np.testing.assert_array_equal(_align(ref[:2990], ref, "vorbis")[2990:], np.zeros(10))


def test_calibration_measures_and_compensates_a_constant_lag(monkeypatch):
    real = codec_module._encode_decode

    def late(samples, rate, fmt, subtype, level=None, mode=None):  # same length, 7 samples late
        decoded = real(samples, rate, fmt, subtype, level, mode)
        return np.concatenate([np.zeros(7, dtype=decoded.dtype), decoded[:-7]])

    monkeypatch.setattr(codec_module, "_encode_decode", late)
    augment = CodecAugment(codecs=["vorbis"], compression_level=0.2)
    assert augment.delays == {"vorbis": 7}
    wav = _noise(8000, seed=5)
    out = augment.augment(wav[None])[0]
    assert _peak_lag(out, wav) == 0
    assert torch.count_nonzero(out[-7:]) == 0  # advanced, zero-filled
    assert CodecAugment(codecs=["vorbis"], calibrate=False).delays == {"vorbis": 0}


# ------------------------------------------------------------ the codecs change the signal
@pytest.mark.parametrize("codec", ["mulaw", "alaw"])
def test_telephone_band_removes_energy_above_4khz(codec):
    high, low = _tone(6000), _tone(1000)
    out_high = codec_roundtrip(high, RATE, codec)
    out_low = codec_roundtrip(low, RATE, codec)
    attenuation_db = 10 * math.log10(float(high.pow(2).sum() / out_high.pow(2).sum()))
    assert attenuation_db > 30.0
    assert _corr(out_low, low) > 0.9
    # and the 8-bit companding is not transparent on a broadband signal
    noise = _noise(8000)
    assert float((codec_roundtrip(noise, RATE, codec) - noise).norm() / noise.norm()) > 0.3


@pytest.mark.parametrize("codec,mode", LOSSY)
def test_low_quality_codecs_change_noise_but_keep_a_tone(codec, mode):
    noise, tone = _noise(16000, seed=1), _tone(440, 16000)
    out_noise = codec_roundtrip(noise, RATE, codec, 1.0, mode)
    relative_error = float((out_noise - noise).norm() / noise.norm())
    assert relative_error > 0.3, (codec, mode, relative_error)
    out_tone = codec_roundtrip(tone, RATE, codec, 1.0, mode)
    assert _corr(out_tone, tone) > 0.9  # at lag 0: aligned


def test_compression_level_controls_the_distortion():
    noise = _noise(16000, seed=2)
    errors = [float((codec_roundtrip(noise, RATE, "opus", level) - noise).norm())
              for level in (0.0, 0.9, 1.0)]
    assert errors[0] < errors[1] < errors[2]


def test_loud_input_is_not_clipped():
    tone = _tone(1000, 8000, amplitude=3.0)
    out = codec_roundtrip(tone, RATE, "mulaw")
    assert _corr(out, tone) > 0.99
    assert 2.5 < float(out.abs().max()) < 3.5


def test_other_sample_rates_are_resampled_for_opus():
    wav = _noise(4410, seed=4)
    out = codec_roundtrip(wav, 44100, "opus", 0.2)
    assert out.shape == wav.shape and _corr(out, wav) > 0.5


# ------------------------------------------------------------ module interface
def test_batch_lengths_padding_dtype_and_change(augment_all):
    batch, samples = 5, 6001
    wavs = torch.stack([_noise(samples, seed=s) for s in range(batch)])
    lengths = torch.tensor([1.0, 0.9, 0.51, 0.3, 0.0011])
    counts = torch.round(lengths * samples).long()
    for b in range(batch):
        wavs[b, counts[b]:] = 0.0
    torch.manual_seed(0)
    out, out_lengths = augment_all.train()(wavs, lengths)
    assert out_lengths is lengths
    assert out.shape == wavs.shape and out.dtype == wavs.dtype
    for b in range(batch):
        assert torch.count_nonzero(out[b, counts[b]:]) == 0
    assert all(not torch.allclose(out[b, :counts[b]], wavs[b, :counts[b]]) for b in range(3))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtype_preserved(dtype):
    augment = CodecAugment(codecs=["alaw"])
    wavs = _noise(3001)[None].to(dtype)
    out, _ = augment(wavs)
    assert out.dtype == dtype and out.shape == wavs.shape


def test_eval_mode_and_prob_zero_are_identity():
    wavs, lengths = torch.stack([_noise(4000), _noise(4000, seed=1)]), torch.tensor([1.0, 0.5])
    augment = CodecAugment(codecs=["mulaw", "vorbis"])
    out, out_lengths = augment.eval()(wavs, lengths)
    assert out is wavs and out_lengths is lengths
    out, out_lengths = CodecAugment(codecs=["mulaw"], prob=0.0).train()(wavs, lengths)
    assert out is wavs and out_lengths is lengths


def test_prob_augments_a_subset_and_is_reproducible():
    augment = CodecAugment(codecs=["alaw"], prob=0.5)
    wavs = torch.stack([_noise(2000, seed=s) for s in range(16)])
    torch.manual_seed(3)
    first, _ = augment(wavs)
    changed = (first != wavs).any(-1)
    assert 0 < int(changed.sum()) < 16
    torch.manual_seed(3)
    again, _ = augment(wavs)
    assert torch.equal(first, again)


def test_threads_give_the_serial_result():
    wavs = torch.stack([_noise(3000, seed=s) for s in range(4)])
    serial = CodecAugment(codecs=["opus", "mulaw"], num_workers=0)
    threaded = CodecAugment(codecs=["opus", "mulaw"], num_workers=3)
    torch.manual_seed(0)
    a = serial.augment(wavs)
    torch.manual_seed(0)
    b = threaded.augment(wavs)
    assert torch.equal(a, b)


def test_draws_codecs_levels_and_modes_in_their_ranges():
    augment = CodecAugment(codecs=["mp3", "opus"], compression_level={"mp3": (0.2, 0.4)},
                           bitrate_modes=["CONSTANT", "VARIABLE"])
    torch.manual_seed(0)
    settings = augment.draw(400)
    assert {codec for codec, _, _ in settings} == {"mp3", "opus"}
    for codec, level, mode in settings:
        if codec == "mp3":
            assert 0.2 <= level <= 0.4 and mode in ("CONSTANT", "VARIABLE")
        else:
            assert 0.5 <= level <= 1.0 and mode is None
    assert {mode for codec, _, mode in settings if codec == "mp3"} == {"CONSTANT", "VARIABLE"}


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Unknown codec"):
        CodecAugment(codecs=["aac"])
    with pytest.raises(ValueError, match="prob"):
        CodecAugment(codecs=["mulaw"], prob=1.5)
    with pytest.raises(ValueError, match="compression_level"):
        CodecAugment(codecs=["opus"], compression_level=(0.8, 0.2))
    with pytest.raises(ValueError, match="bitrate_modes"):
        CodecAugment(codecs=["mp3"], bitrate_modes=["FAST"])
    with pytest.raises(ValueError, match="expects waveforms"):
        CodecAugment(codecs=["mulaw"]).augment(torch.zeros(4000))


# ------------------------------------------------------------ availability check
def test_missing_codec_raises_a_clear_error(monkeypatch):
    real = codec_module._encode_decode

    def no_mp3(samples, rate, fmt, subtype, level=None, mode=None):
        if subtype == "MPEG_LAYER_III":
            raise sf.LibsndfileError(1, "Error opening <BytesIO>: ")
        return real(samples, rate, fmt, subtype, level, mode)

    monkeypatch.setattr(codec_module, "_encode_decode", no_mp3)
    with pytest.raises(RuntimeError) as err:
        CodecAugment(codecs=["vorbis", "mp3"])
    message = str(err.value)
    assert "'mp3'" in message and sf.__libsndfile_version__ in message
    assert "vorbis" in message and "opus" in message  # what works here
    CodecAugment(codecs=["vorbis", "opus"])  # the others still construct


def test_missing_subtype_raises_a_clear_error(monkeypatch):
    real = sf.available_subtypes
    monkeypatch.setattr(
        codec_module.sf, "available_subtypes",
        lambda fmt=None: {k: v for k, v in real(fmt).items() if k != "OPUS"},
    )
    with pytest.raises(RuntimeError, match=r"'opus' \(OGG/OPUS\).*subtype OGG/OPUS is missing"):
        CodecAugment(codecs=["opus"])


def test_all_codecs_available_in_this_libsndfile():
    assert set(codec_module.available_codecs()) == set(CODECS)


def test_exported_from_the_package():
    from speechbrain_pruning.spoofing import AugmentChain as Chain, CodecAugment as Codec

    assert Codec is CodecAugment and Chain is AugmentChain


# ------------------------------------------------------------ AugmentChain
class _Add(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, wavs, lengths=None):
        return wavs + self.value, lengths


class _ScaleNoLengths(nn.Module):
    def forward(self, waveforms):  # like SpeechBrain's AddReverb / DropFreq
        return 2.0 * waveforms


def test_chain_applies_in_order_with_per_step_probabilities():
    chain = AugmentChain([_Add(1.0), None, _ScaleNoLengths(), _Add(0.5)],
                         probs=[1.0, 0.3, 1.0, 0.0], mask_padding=False)
    assert len(chain.augmentations) == 3 and chain.probs == [1.0, 1.0, 0.0]
    wavs = torch.zeros(4, 10)
    out, lengths = chain(wavs)
    assert lengths is None
    assert torch.equal(out, torch.full((4, 10), 2.0))  # (0 + 1) * 2, last step never

    chain = AugmentChain([_Add(1.0)], probs=[0.5])
    torch.manual_seed(0)
    out, _ = chain(torch.zeros(64, 3))
    hit = out[:, 0] == 1.0
    assert torch.equal(out, hit[:, None].float().expand(-1, 3))
    assert 10 < int(hit.sum()) < 54


def test_chain_masks_padding_and_is_identity_in_eval_mode():
    chain = AugmentChain([_Add(1.0)])
    wavs, lengths = torch.zeros(2, 10), torch.tensor([1.0, 0.5])
    out, out_lengths = chain(wavs, lengths)
    assert torch.equal(out[1], torch.tensor([1.0] * 5 + [0.0] * 5))
    assert torch.equal(out_lengths, lengths)
    codec = CodecAugment(codecs=["mulaw"])
    chain = AugmentChain([codec, RawBoost(algo=2)])
    chain.eval()
    assert not codec.training  # eval() reaches the steps
    out, out_lengths = chain(wavs, lengths)
    assert out is wavs and out_lengths is lengths


def test_chain_with_codec_rawboost_and_speechbrain_modules():
    from speechbrain.augment.time_domain import DropFreq

    chain = AugmentChain([CodecAugment(codecs=["opus", "alaw"], prob=1.0),
                          RawBoost(algo=5, prob=1.0), DropFreq()], probs=[1.0, 1.0, 0.5])
    wavs = torch.stack([_noise(4000, seed=s) for s in range(3)])
    lengths = torch.tensor([1.0, 0.75, 0.5])
    wavs[1, 3000:] = 0.0
    wavs[2, 2000:] = 0.0
    torch.manual_seed(0)
    out, out_lengths = chain.train()(wavs, lengths)
    assert out.shape == wavs.shape and torch.isfinite(out).all()
    assert torch.equal(out_lengths, lengths)
    assert torch.count_nonzero(out[1, 3000:]) == 0 and torch.count_nonzero(out[2, 2000:]) == 0
    assert not torch.allclose(out[0], wavs[0])


def test_chain_rejects_bad_arguments_and_shape_changes_on_subsets():
    with pytest.raises(ValueError, match="probs has 1 entries"):
        AugmentChain([_Add(1.0), _Add(2.0)], probs=[1.0])
    with pytest.raises(ValueError, match=r"probs must be in \[0, 1\]"):
        AugmentChain([_Add(1.0)], probs=[2.0])

    class _Crop(nn.Module):
        def forward(self, wavs, lengths=None):
            return wavs[:, :5], lengths

    with pytest.raises(ValueError, match="changed the waveform shape"):
        torch.manual_seed(0)
        AugmentChain([_Crop()], probs=[0.5])(torch.zeros(32, 10), torch.ones(32))
    out, _ = AugmentChain([_Crop()])(torch.zeros(4, 10), torch.ones(4))
    assert out.shape == (4, 5)
