"""Deterministic synthetic anti-spoofing corpus in the ASVspoof5 layout.

Tests, demos and recipe smoke runs of the anti-spoofing task need a corpus
that is small, downloadable from nowhere and still *learnable*: spoofed
utterances must carry artefacts a detector can pick up. This module builds
one on top of the synthetic speakers of :mod:`speechbrain_pruning.synthetic`:

* bona fide utterances are plain :func:`~speechbrain_pruning.synthetic.
  synthesize_utterance` outputs;
* a spoofed utterance is a freshly synthesised utterance of the same speaker
  passed through one attack family, each with its own learnable artefacts
  (numpy/scipy signal processing only, see :func:`synthesize_spoof`):

  ====  ==============================================================
  A01   mel-vocoder-style resynthesis: STFT magnitude kept through a
        32-band mel compression (harmonics smeared above about 1 kHz),
        phase from two Griffin-Lim iterations started from random phases
  A02   telephone-like band-limiting (high-pass at 250-350 Hz, low-pass
        at 3.5-5 kHz) and a linear-interpolation resampling round trip
        through twice the cutoff (imaging above the cutoff)
  A03   LPC-10-style source-filter resynthesis (order 10, 22.5 ms
        frames) with a buzzy pulse-train excitation in voiced frames
        (autocorrelation pitch tracker) and noise in unvoiced ones
  A04   spectral envelope smoothing (cepstral liftering) over a mostly
        noise excitation with flattened harmonics
  A05   over-smoothed f0 (no jitter, shimmer or accents, almost flat
        intonation) and a phase-vocoder pitch shift of 6-15 %
        (phasiness); evaluation only
  A06   combination: over-smoothed f0, A04 liftering and A01
        Griffin-Lim resynthesis; evaluation only
  ====  ==============================================================

* in the development and evaluation sets about half of the utterances, bona
  fide and spoofed alike (so the codec does not leak the label), go through
  a simulated codec (:func:`apply_codec`): ``C01`` 8-bit mu-law, ``C02``
  4 kHz low-pass and 10-bit quantisation, ``C03`` down-sampling to 8 kHz and
  back, each followed by transmission noise whose level depends on the codec
  quality ``CODEC_Q`` (1 worst, 3 best) and whose randomness comes from
  ``CODEC_SEED``;
* every file is peak-normalised to -3 dBFS.

The artefacts survive the codecs well enough to be learnt: a softmax
regression on 48 per-band spectral statistics (harmonic contrast, flux,
flatness), trained on the training set plus one codec-augmented copy of it,
tells bona fide from spoofed development utterances about 90-100 % of the
time (tests/test_synthetic_spoof.py); most remaining errors are A02
utterances whose band-limiting the 4 kHz codecs ``C02``/``C03`` mask.

:func:`make_asvspoof5_mini` writes such a corpus as 16-bit mono FLAC files in
the real ASVspoof5 layout with the real protocol format, byte-identically
for the same arguments.

Authors
 * speechbrain_pruning contributors
"""

import logging
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.linalg import solve_toeplitz
from scipy.signal import butter, lfilter, resample_poly, sosfilt
from tqdm import tqdm

from .voices import sample_speaker, synthesize_utterance

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "eval")
SPLIT_PREFIXES = {"train": "T", "dev": "D", "eval": "E"}
PROTOCOL_FILES = {
    "train": "ASVspoof5.train.tsv",
    "dev": "ASVspoof5.dev.track_1.tsv",
    "eval": "ASVspoof5.eval.track_1.tsv",
}
AUDIO_DIRS = {"train": "flac_T", "dev": "flac_D", "eval": "flac_E_eval"}
PROTOCOL_COLUMNS = (
    "SPEAKER_ID", "FLAC_FILE_NAME", "GENDER", "CODEC", "CODEC_Q", "CODEC_SEED",
    "ATTACK_TAG", "ATTACK_LABEL", "KEY", "TMP",
)
BONAFIDE = "bonafide"
SPOOF = "spoof"
NO_VALUE = "-"
ATTACKS = ("A01", "A02", "A03", "A04", "A05", "A06")
ATTACK_TAGS = {"A01": "AC1", "A02": "AC2", "A03": "AC3",
               "A04": "AC1", "A05": "AC2", "A06": "AC3"}
SPLIT_ATTACKS = {
    "train": ATTACKS[:4],
    "dev": ATTACKS[:4],
    "eval": ATTACKS,
}
CODECS = ("C01", "C02", "C03")
CODEC_QUALITIES = (1, 2, 3)
GENDER_CODES = {"female": "F", "male": "M"}

# Streams of the seeded generators: one independent stream per purpose.
_SPEAKER_STREAM = 10
_UTTERANCE_STREAM = 11
_LAYOUT_STREAM = 12
_ID_STREAM = 13


# ---------------------------------------------------------------- helpers
def _peak_normalise(wav, peak_dbfs=-3.0, floor=1e-12):
    """Scales ``wav`` so that its absolute peak is at ``peak_dbfs``."""
    return wav * (10.0 ** (peak_dbfs / 20.0) / (np.abs(wav).max() + floor))


def _window(n_fft):
    """Periodic Hann window of ``n_fft`` points."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)


def _stft(wav, n_fft=512, hop=128):
    """Centred STFT ``[frames, n_fft // 2 + 1]`` with a periodic Hann window."""
    if n_fft % hop:
        raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop ({hop})")
    pad = n_fft // 2
    padded = np.pad(wav, pad, mode="reflect" if len(wav) > pad else "constant")
    num_frames = 1 + (len(padded) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(num_frames)[:, None]
    return np.fft.rfft(padded[index] * _window(n_fft), axis=1)


def _istft(spec, length, n_fft=512, hop=128, floor=1e-8):
    """Weighted overlap-add inverse of :func:`_stft`, ``length`` samples."""
    window = _window(n_fft)
    frames = np.fft.irfft(spec, n=n_fft, axis=1) * window
    num_frames = len(frames)
    total = n_fft + hop * (num_frames - 1)
    out = np.zeros(total + n_fft)
    norm = np.zeros(total + n_fft)
    ratio = n_fft // hop
    for offset in range(ratio):  # frames offset, offset + ratio, ... never overlap
        block = frames[offset::ratio]
        start = offset * hop
        out[start:start + block.size] += block.ravel()
        norm[start:start + block.size] += np.tile(window**2, len(block))
    pad = n_fft // 2
    out = out[pad:pad + length] / np.maximum(norm[pad:pad + length], floor)
    return np.pad(out, (0, length - len(out)))


def _interp_resample(wav, factor):
    """Linear-interpolation resampling by ``factor`` (no anti-alias filter)."""
    num = max(2, int(round(len(wav) * factor)))
    return np.interp(np.arange(num) / factor, np.arange(len(wav)), wav)


# ---------------------------------------------------------------- attacks
def _mel_matrix(num_mels, n_fft, sample_rate, fmin=0.0, mel_break=700.0, mel_scale=2595.0):
    """Triangular mel filterbank ``[num_mels, n_fft // 2 + 1]`` (HTK scale)."""
    def to_mel(freq):
        return mel_scale * np.log10(1.0 + freq / mel_break)
    edges = mel_break * (10.0 ** (np.linspace(to_mel(fmin), to_mel(0.5 * sample_rate),
                                              num_mels + 2) / mel_scale) - 1.0)
    freqs = np.linspace(0.0, 0.5 * sample_rate, n_fft // 2 + 1)
    rising = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    falling = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    return np.maximum(0.0, np.minimum(rising, falling))


def _griffin_lim(wav, rng, sample_rate=16000, n_iter=2, n_fft=512, hop=128, num_mels=32,
                 floor=1e-10):
    """A01: mel-vocoder-style resynthesis: the STFT magnitude is kept through
    a ``num_mels`` mel compression (harmonics smeared at high frequencies)
    and the phase is rebuilt with a few Griffin-Lim iterations from random
    phases."""
    mel = _mel_matrix(num_mels, n_fft, sample_rate)
    mag = np.maximum(np.abs(_stft(wav, n_fft, hop)) @ mel.T @ np.linalg.pinv(mel).T, 0.0)
    phase = np.exp(2j * np.pi * rng.uniform(size=mag.shape))
    for _ in range(n_iter):
        spec = _stft(_istft(mag * phase, len(wav), n_fft, hop), n_fft, hop)
        phase = spec / np.maximum(np.abs(spec), floor)
    return _istft(mag * phase, len(wav), n_fft, hop)


def _band_limit(wav, rng, sample_rate=16000, cutoff_range=(3500.0, 5000.0),
                highpass_range=(250.0, 350.0), filter_order=8, highpass_order=4):
    """A02: telephone-like band-limiting (high-pass at 250-350 Hz, low-pass
    at a random cutoff of 3.5-5 kHz), then a crude round trip through twice
    the cutoff rate by linear interpolation, whose up-sampling images the
    band above the cutoff (no anti-imaging filter)."""
    cutoff = rng.uniform(*cutoff_range)
    low = butter(filter_order, cutoff, btype="low", fs=sample_rate, output="sos")
    high = butter(highpass_order, rng.uniform(*highpass_range), btype="high",
                  fs=sample_rate, output="sos")
    factor = min(1.0, 2.0 * cutoff / sample_rate)
    down = _interp_resample(sosfilt(high, sosfilt(low, wav)), factor)
    up = _interp_resample(down, 1.0 / factor)
    return np.pad(up, (0, max(0, len(wav) - len(up))))[:len(wav)]


def _lpc_resynthesis(wav, rng, sample_rate=16000, order=10, frame_seconds=0.0225,
                     hop_seconds=0.0225, f0_range=(60.0, 400.0), voicing_threshold=0.3,
                     silence_db=-45.0, lag_window=1e-3, floor=1e-10):
    """A03: frame-wise LPC analysis and resynthesis with a pulse train in
    voiced frames (pitch from the autocorrelation peak) and white noise in
    unvoiced ones; the filter state is carried over between frames."""
    frame = int(round(frame_seconds * sample_rate))
    hop = int(round(hop_seconds * sample_rate))
    window = np.hanning(frame)
    win_energy = np.sum(window**2)
    padded = np.pad(wav, (frame // 2, frame))
    min_lag = int(sample_rate / f0_range[1])
    max_lag = min(int(sample_rate / f0_range[0]), frame - 1)
    peak_power = np.max(wav**2) + floor
    out = np.zeros(len(wav))
    state = np.zeros(order)
    next_pulse = 0.0
    for start in range(0, len(wav), hop):
        seg = padded[start:start + frame] * window
        spec = np.fft.rfft(seg, n=2 * frame)
        acf = np.fft.irfft(np.abs(spec) ** 2)[:frame]
        power = acf[0] / win_energy
        stop = min(start + hop, len(wav))
        if power < peak_power * 10.0 ** (silence_db / 10.0):
            exc = rng.standard_normal(stop - start)
            coeffs, gain = np.zeros(order), np.sqrt(power)
        else:
            r = acf[:order + 1].copy()
            r[0] *= 1.0 + lag_window
            coeffs = solve_toeplitz(r[:order], r[1:order + 1])
            gain = np.sqrt(max(r[0] - coeffs @ r[1:order + 1], floor) / win_energy)
            lags = acf[min_lag:max_lag + 1] / (acf[0] + floor)
            best = int(np.argmax(lags))
            if lags[best] > voicing_threshold:
                period = float(min_lag + best)
                exc = np.zeros(stop - start)
                next_pulse = max(next_pulse, float(start))
                while next_pulse < stop:
                    exc[int(next_pulse) - start] = np.sqrt(period)
                    next_pulse += period
            else:
                exc = rng.standard_normal(stop - start)
        out[start:stop], state = lfilter([gain], np.concatenate([[1.0], -coeffs]),
                                         exc, zi=state)
    return out


def _lifter_envelope(wav, rng, n_fft=512, hop=128, num_cepstra=18, noise_mix=0.7,
                     fine_power=0.3, floor=1e-8):
    """A04: replaces the spectral fine structure by a flattened copy mixed
    with noise under a cepstrally smoothed (liftered) envelope."""
    spec = _stft(wav, n_fft, hop)
    mag = np.abs(spec)
    cepstrum = np.fft.irfft(np.log(mag + floor), n=n_fft, axis=1)
    lifter = np.zeros(n_fft)
    lifter[:num_cepstra] = 1.0
    lifter[n_fft - num_cepstra + 1:] = 1.0
    envelope = np.exp(np.fft.rfft(cepstrum * lifter, axis=1).real)
    noise = _stft(rng.standard_normal(len(wav)), n_fft, hop)
    noise /= np.sqrt(np.sum(_window(n_fft) ** 2))
    fine = (mag / envelope) ** fine_power * np.exp(1j * np.angle(spec))
    return _istft(envelope * ((1.0 - noise_mix) * fine + noise_mix * noise), len(wav),
                  n_fft, hop)


def _phase_vocoder_shift(wav, rng, shift_range=(0.06, 0.15), n_fft=512, hop=128):
    """A05: pitch shift by a phase-vocoder time stretch followed by a
    linear-interpolation resampling back to the original length."""
    factor = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(*shift_range)
    spec = _stft(wav, n_fft, hop)
    steps = np.arange(0.0, len(spec) - 1, factor)
    first = steps.astype(int)
    frac = (steps - first)[:, None]
    mag = (1.0 - frac) * np.abs(spec[first]) + frac * np.abs(spec[first + 1])
    omega = 2.0 * np.pi * hop * np.arange(spec.shape[1]) / n_fft
    delta = np.angle(spec[first + 1]) - np.angle(spec[first]) - omega
    delta = delta - 2.0 * np.pi * np.round(delta / (2.0 * np.pi)) + omega
    phase = np.angle(spec[0]) + np.concatenate(
        [np.zeros((1, spec.shape[1])), np.cumsum(delta[:-1], axis=0)])
    stretched = _istft(mag * np.exp(1j * phase), hop * len(steps), n_fft, hop)
    shifted = _interp_resample(stretched, len(wav) / max(len(stretched), 1))
    return np.pad(shifted, (0, max(0, len(wav) - len(shifted))))[:len(wav)]


def _smooth_prosody_speaker(speaker):
    """Copy of ``speaker`` without jitter and shimmer (over-smoothed f0)."""
    smooth = dict(speaker)
    smooth["jitter"] = 0.0
    smooth["shimmer"] = 0.0
    return smooth


def synthesize_spoof(
    speaker,
    seconds,
    attack,
    rng,
    sample_rate=16000,
    smooth_intonation_depth=(0.0, 0.01),
    smooth_accent_range=(0.0, 0.0),
    combination_iterations=2,
    peak_dbfs=-3.0,
):
    """Synthesises one spoofed utterance of ``speaker`` with ``attack``.

    A bona fide-like utterance is synthesised afresh with
    :func:`~speechbrain_pruning.synthetic.synthesize_utterance` (with an
    over-smoothed f0 for ``A05``/``A06``) and transformed by the attack
    family (see the module docstring); the result is peak-normalised.

    Arguments
    ---------
    speaker : dict
        Identity parameters from
        :func:`~speechbrain_pruning.synthetic.sample_speaker`.
    seconds : float
        Duration of the utterance.
    attack : str
        One of :data:`ATTACKS` (``"A01"`` .. ``"A06"``).
    rng : numpy.random.Generator
        Source of randomness (seed it per utterance for reproducibility).
    sample_rate : int
        Sampling rate in Hz.
    smooth_intonation_depth : tuple of float
        Range of the intonation depth of the over-smoothed f0 (A05, A06).
    smooth_accent_range : tuple of float
        Range of the syllable pitch accents of the over-smoothed f0.
    combination_iterations : int
        Griffin-Lim iterations of the combined attack A06.
    peak_dbfs : float
        Peak level of the output in dB full scale.

    Returns
    -------
    numpy.ndarray
        Mono float32 waveform of ``round(seconds * sample_rate)`` samples.

    Example
    -------
    >>> spk = sample_speaker(np.random.default_rng(0))
    >>> wav = synthesize_spoof(spk, 0.5, "A03", np.random.default_rng(1))
    >>> wav.shape, wav.dtype, bool(abs(np.abs(wav).max() - 10 ** (-3 / 20)) < 1e-4)
    ((8000,), dtype('float32'), True)
    """
    if attack not in ATTACKS:
        raise ValueError(f"Unknown attack {attack!r}; valid: {', '.join(ATTACKS)}")
    if attack in ("A05", "A06"):
        wav = synthesize_utterance(
            _smooth_prosody_speaker(speaker), seconds, rng, sample_rate=sample_rate,
            intonation_depth_range=smooth_intonation_depth,
            accent_range=smooth_accent_range,
        ).astype(np.float64)
    else:
        wav = synthesize_utterance(speaker, seconds, rng,
                                   sample_rate=sample_rate).astype(np.float64)
    if attack == "A01":
        wav = _griffin_lim(wav, rng, sample_rate=sample_rate)
    elif attack == "A02":
        wav = _band_limit(wav, rng, sample_rate=sample_rate)
    elif attack == "A03":
        wav = _lpc_resynthesis(wav, rng, sample_rate=sample_rate)
    elif attack == "A04":
        wav = _lifter_envelope(wav, rng)
    elif attack == "A05":
        wav = _phase_vocoder_shift(wav, rng)
    else:
        wav = _griffin_lim(_lifter_envelope(wav, rng), rng, sample_rate=sample_rate,
                           n_iter=combination_iterations)
    return _peak_normalise(wav, peak_dbfs).astype(np.float32)


# ----------------------------------------------------------------- codecs
def apply_codec(
    wav,
    codec,
    quality=3,
    seed=0,
    sample_rate=16000,
    mu=255.0,
    mulaw_bits=8,
    lowpass_hz=4000.0,
    lowpass_order=8,
    quantise_bits=10,
    narrowband_rate=8000,
    noise_snr_db=(30.0, 40.0, 50.0),
    peak_dbfs=-3.0,
):
    """Simulates a transmission codec on a waveform in ``[-1, 1]``.

    ``C01`` is a mu-law companding round trip at ``mulaw_bits`` bits,
    ``C02`` a low-pass at ``lowpass_hz`` followed by uniform quantisation to
    ``quantise_bits`` bits, ``C03`` a round trip through ``narrowband_rate``
    (polyphase resampling). White transmission noise at
    ``noise_snr_db[quality - 1]`` is then added (drawn from ``seed``) and the
    result is peak-normalised.

    Arguments
    ---------
    wav : numpy.ndarray
        Mono waveform.
    codec : str
        One of :data:`CODECS`, or ``"-"`` for no codec (returned unchanged
        apart from the peak normalisation).
    quality : int
        Codec quality ``CODEC_Q`` (1 = worst, 3 = best).
    seed : int
        ``CODEC_SEED``: seed of the transmission noise.
    sample_rate : int
        Sampling rate in Hz.
    mu : float
        Mu-law compression parameter.
    mulaw_bits : int
        Bits of the mu-law code words.
    lowpass_hz : float
        Cutoff of the ``C02`` low-pass in Hz.
    lowpass_order : int
        Order of the ``C02`` Butterworth low-pass.
    quantise_bits : int
        Bits of the ``C02`` uniform quantiser.
    narrowband_rate : int
        Intermediate sampling rate of ``C03`` in Hz.
    noise_snr_db : tuple of float
        Transmission noise SNR in dB for each quality level.
    peak_dbfs : float
        Peak level of the output in dB full scale.

    Returns
    -------
    numpy.ndarray
        Float32 waveform of the same length.

    Example
    -------
    >>> wav = np.sin(2 * np.pi * 440 * np.arange(1600) / 16000) * 0.7
    >>> out = apply_codec(wav, "C03", quality=2, seed=5)
    >>> out.shape, bool(np.corrcoef(wav, out)[0, 1] > 0.99)
    ((1600,), True)
    """
    wav = np.asarray(wav, dtype=np.float64)
    if codec == NO_VALUE:
        return _peak_normalise(wav, peak_dbfs).astype(np.float32)
    if codec not in CODECS:
        raise ValueError(f"Unknown codec {codec!r}; valid: {', '.join(CODECS)}")
    if quality not in CODEC_QUALITIES:
        raise ValueError(f"quality must be one of {CODEC_QUALITIES}, got {quality}")
    wav = np.clip(wav, -1.0, 1.0)
    if codec == "C01":
        levels = 2 ** (mulaw_bits - 1) - 1
        code = np.sign(wav) * np.log1p(mu * np.abs(wav)) / np.log1p(mu)
        code = np.round(code * levels) / levels
        out = np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu
    elif codec == "C02":
        sos = butter(lowpass_order, lowpass_hz, btype="low", fs=sample_rate, output="sos")
        levels = 2 ** (quantise_bits - 1)
        out = np.round(np.clip(sosfilt(sos, wav), -1.0, 1.0) * levels) / levels
    else:
        divisor = np.gcd(int(sample_rate), int(narrowband_rate))
        up, down = int(narrowband_rate) // divisor, int(sample_rate) // divisor
        out = resample_poly(resample_poly(wav, up, down), down, up)
        out = np.pad(out, (0, max(0, len(wav) - len(out))))[:len(wav)]
    noise = np.random.default_rng(seed).standard_normal(len(out))
    noise *= np.sqrt(np.mean(out**2) / 10.0 ** (noise_snr_db[quality - 1] / 10.0))
    return _peak_normalise(out + noise, peak_dbfs).astype(np.float32)


# ----------------------------------------------------------------- corpus
def _speaker_ids(rng, counts, id_range=(1000, 10000)):
    """Distinct numeric speaker ids, one list per entry of ``counts``."""
    numbers = rng.choice(np.arange(*id_range), size=sum(counts), replace=False)
    ids, start = [], 0
    for count in counts:
        ids.append(sorted(int(n) for n in numbers[start:start + count]))
        start += count
    return ids


def _plan_split(split, split_index, speaker_ids, num_utts, spoof_fraction, codec_fraction,
                seed, codec_seed_range=(0, 100000)):
    """Protocol rows (without audio) of one split, in file order."""
    rng = np.random.default_rng([seed, _LAYOUT_STREAM, split_index])
    num_spoof = int(round(num_utts * spoof_fraction))
    rows = []
    for spk_index, spk_id in enumerate(speaker_ids):
        keys = [SPOOF] * num_spoof + [BONAFIDE] * (num_utts - num_spoof)
        rng.shuffle(keys)
        for utt_index, key in enumerate(keys):
            rows.append({"speaker_index": spk_index, "utt_index": utt_index,
                         "speaker": spk_id, "key": key})
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]

    attacks = SPLIT_ATTACKS[split]
    spoofs = [row for row in rows if row["key"] == SPOOF]
    for position, row_index in enumerate(rng.permutation(len(spoofs))):
        spoofs[row_index]["attack"] = attacks[position % len(attacks)]
    for row in rows:
        row.update(codec=NO_VALUE, codec_q=NO_VALUE, codec_seed=NO_VALUE)
    if split != "train":
        for key in (BONAFIDE, SPOOF):
            group = [row for row in rows if row["key"] == key]
            num_coded = int(round(len(group) * codec_fraction))
            for position, row_index in enumerate(rng.permutation(len(group))[:num_coded]):
                group[row_index].update(
                    codec=CODECS[position % len(CODECS)],
                    codec_q=str(int(rng.choice(CODEC_QUALITIES))),
                    codec_seed=str(int(rng.integers(*codec_seed_range))),
                )
    for file_index, row in enumerate(rows):
        row["file"] = f"{SPLIT_PREFIXES[split]}_{file_index:010d}"
    return rows


def _protocol_line(row, gender):
    """One whitespace-separated ASVspoof5 protocol line (10 columns)."""
    spoof = row["key"] == SPOOF
    fields = [
        row["speaker"], row["file"], gender, row["codec"], row["codec_q"], row["codec_seed"],
        ATTACK_TAGS[row["attack"]] if spoof else BONAFIDE,
        row["attack"] if spoof else BONAFIDE,
        row["key"], NO_VALUE,
    ]
    return " ".join(fields)


def make_asvspoof5_mini(
    root,
    num_speakers=6,
    utts_per_speaker={"train": 12, "dev": 8, "eval": 8},  # noqa: B006 (never mutated)
    spoof_fraction=0.5,
    min_seconds=2.0,
    max_seconds=4.0,
    sample_rate=16000,
    seed=0,
    progress=True,
    codec_fraction=0.5,
    peak_dbfs=-3.0,
):
    """Writes a small synthetic ASVspoof5-style corpus to ``root``.

    Layout (as in the real ASVspoof5 release)::

        root/ASVspoof5.train.tsv              training protocol
        root/ASVspoof5.dev.track_1.tsv        development protocol
        root/ASVspoof5.eval.track_1.tsv       evaluation protocol
        root/flac_T/T_0000000000.flac         training audio
        root/flac_D/D_0000000000.flac         development audio
        root/flac_E_eval/E_0000000000.flac    evaluation audio

    Protocol lines are whitespace separated without a header (despite the
    ``.tsv`` name), in the columns of :data:`PROTOCOL_COLUMNS`, e.g.
    ``T_4850 T_0000000000 F - - - AC3 A03 spoof -`` or
    ``D_1138 D_0000000009 M C02 3 4711 bonafide bonafide bonafide -``.
    Each split has ``num_speakers`` speakers of its own (ids
    ``<T|D|E>_NNNN``, genders alternating), each with
    ``utts_per_speaker[split]`` utterances of which
    ``round(spoof_fraction * n)`` are spoofed. Spoofing attacks are balanced
    within a split: ``A01``-``A04`` in train and dev, ``A01``-``A06`` in
    eval (``A05``, ``A06`` unseen). Train has no codecs; in dev and eval a
    ``codec_fraction`` of the bona fide and of the spoofed utterances goes
    through ``C01``-``C03`` (balanced) with a random quality 1-3 and seed.
    Files are numbered in a shuffled order. Everything derives from
    ``seed`` through seeded :class:`numpy.random.Generator` streams, so the
    same arguments produce byte-identical files.

    Arguments
    ---------
    root : str or pathlib.Path
        Output folder (created if needed; existing files are overwritten).
    num_speakers : int
        Number of speakers per split (disjoint across splits).
    utts_per_speaker : dict or int
        Utterances per speaker for ``"train"``, ``"dev"`` and ``"eval"``
        (an int applies to all three).
    spoof_fraction : float
        Fraction of spoofed utterances of every speaker.
    min_seconds, max_seconds : float
        Range of the utterance durations.
    sample_rate : int
        Sampling rate in Hz.
    seed : int
        Seed of every random choice.
    progress : bool
        Whether to show a progress bar.
    codec_fraction : float
        Fraction of dev/eval utterances (per key) that go through a codec.
    peak_dbfs : float
        Peak level of every file in dB full scale.

    Returns
    -------
    dict
        ``root``, ``sample_rate``, ``protocols`` and ``audio_dirs`` (split
        -> path), ``speakers`` (split -> ids), ``genders`` (speaker id ->
        ``"F"``/``"M"``), ``num_utterances`` (split -> count),
        ``total_seconds`` and ``counts``: split -> ``{"key": {...},
        "attack": {...}, "codec": {...}}`` counting the values of the
        ``KEY``, ``ATTACK_LABEL`` and ``CODEC`` columns.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     info = make_asvspoof5_mini(tmp, num_speakers=1, utts_per_speaker=4,
    ...                                min_seconds=0.2, max_seconds=0.3,
    ...                                progress=False)
    ...     line = Path(info["protocols"]["dev"]).read_text().splitlines()[0]
    >>> info["num_utterances"], info["counts"]["train"]["key"]
    ({'train': 4, 'dev': 4, 'eval': 4}, {'bonafide': 2, 'spoof': 2})
    >>> len(line.split()), line.split()[1]
    (10, 'D_0000000000')
    """
    if isinstance(utts_per_speaker, int):
        utts_per_speaker = {split: utts_per_speaker for split in SPLITS}
    utts_per_speaker = dict(utts_per_speaker)
    missing = [split for split in SPLITS if split not in utts_per_speaker]
    if missing:
        raise ValueError(f"utts_per_speaker lacks {', '.join(missing)}")
    if num_speakers < 1:
        raise ValueError(f"num_speakers must be >= 1, got {num_speakers}")
    if any(utts_per_speaker[split] < 1 for split in SPLITS):
        raise ValueError(f"Need at least one utterance per speaker, got {utts_per_speaker}")
    if not 0.0 <= spoof_fraction <= 1.0 or not 0.0 <= codec_fraction <= 1.0:
        raise ValueError("spoof_fraction and codec_fraction must lie in [0, 1]")
    if not 0 < min_seconds <= max_seconds:
        raise ValueError(f"Need 0 < min_seconds <= max_seconds, got {min_seconds}, {max_seconds}")
    root = Path(root)
    id_numbers = _speaker_ids(np.random.default_rng([seed, _ID_STREAM]),
                              [num_speakers] * len(SPLITS))

    jobs, speakers, genders, lines = [], {}, {}, {}
    for split_index, split in enumerate(SPLITS):
        prefix = SPLIT_PREFIXES[split]
        ids = [f"{prefix}_{number:04d}" for number in id_numbers[split_index]]
        speakers[split] = ids
        params = []
        for spk_index, spk_id in enumerate(ids):
            gender = ("female", "male")[spk_index % 2]
            genders[spk_id] = GENDER_CODES[gender]
            params.append(sample_speaker(
                np.random.default_rng([seed, _SPEAKER_STREAM, split_index, spk_index]),
                gender))
        rows = _plan_split(split, split_index, ids, utts_per_speaker[split],
                           spoof_fraction, codec_fraction, seed)
        lines[split] = [_protocol_line(row, genders[row["speaker"]]) for row in rows]
        jobs += [(split_index, split, params[row["speaker_index"]], row) for row in rows]

    total_seconds = 0.0
    for split in SPLITS:
        (root / AUDIO_DIRS[split]).mkdir(parents=True, exist_ok=True)
    for split_index, split, speaker, row in tqdm(jobs, desc="Synthesising ASVspoof5 mini",
                                                 disable=not progress):
        rng = np.random.default_rng(
            [seed, _UTTERANCE_STREAM, split_index, row["speaker_index"], row["utt_index"]])
        seconds = rng.uniform(min_seconds, max_seconds)
        if row["key"] == SPOOF:
            wav = synthesize_spoof(speaker, seconds, row["attack"], rng,
                                   sample_rate=sample_rate, peak_dbfs=peak_dbfs)
        else:
            wav = synthesize_utterance(speaker, seconds, rng, sample_rate=sample_rate,
                                       peak_dbfs=peak_dbfs)
        if row["codec"] != NO_VALUE:
            wav = apply_codec(wav, row["codec"], quality=int(row["codec_q"]),
                              seed=int(row["codec_seed"]), sample_rate=sample_rate,
                              peak_dbfs=peak_dbfs)
        path = root / AUDIO_DIRS[split] / f"{row['file']}.flac"
        sf.write(str(path), wav, sample_rate, subtype="PCM_16", format="FLAC")
        total_seconds += len(wav) / sample_rate

    protocols, counts = {}, {}
    for split in SPLITS:
        path = root / PROTOCOL_FILES[split]
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(line + "\n" for line in lines[split])
        protocols[split] = str(path)
        fields = [line.split() for line in lines[split]]
        counts[split] = {
            name: {value: sum(f[column] == value for f in fields)
                   for value in sorted({f[column] for f in fields})}
            for name, column in (("key", 8), ("attack", 7), ("codec", 3))
        }
    logger.info("Wrote %d synthetic ASVspoof5-style utterances (%.1f s) to %s",
                len(jobs), total_seconds, root)
    return {
        "root": str(root),
        "sample_rate": sample_rate,
        "protocols": protocols,
        "audio_dirs": {split: str(root / AUDIO_DIRS[split]) for split in SPLITS},
        "speakers": speakers,
        "genders": genders,
        "num_utterances": {split: len(lines[split]) for split in SPLITS},
        "total_seconds": total_seconds,
        "counts": counts,
    }


LA_SPLITS = {"train": ("train.trn", "T"), "dev": ("dev.trl", "D"), "eval": ("eval.trl", "E")}


def make_asvspoof2019_la_mini(root, asv_trials=(60, 60, 40), asv_seed=1, **kwargs):
    """A small synthetic corpus in the ASVspoof 2019 LA layout, ASV scores included.

    The utterances are those of :func:`make_asvspoof5_mini` (same keyword
    arguments; no codecs, as LA has none), rearranged as the real release::

        root/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
        root/LA/ASVspoof2019_LA_{train,dev,eval}/flac/LA_<T|D|E>_NNNNNNN.flac
        root/LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt

    CM protocol lines are ``SPEAKER FILE - ATTACK KEY`` (``LA_0079
    LA_T_1271820 - A01 spoof``; ``-`` for bona fide). The organisers' ASV score
    files (``CM_KEY ASV_KEY SCORE``) are drawn for ``asv_trials = (target,
    nontarget, spoof)`` trials per split: target ~ N(4, 1), non-target
    ~ N(-4, 1), spoof ~ N(1.5, 1.5) (a spoof-vulnerable ASV), spoof trials
    spread over the split's attacks.

    Returns
    -------
    dict
        ``root`` (the folder holding ``LA``), ``protocols`` and ``asv_scores``
        (split -> path).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     info = make_asvspoof2019_la_mini(tmp, num_speakers=1, utts_per_speaker=4,
    ...                                      min_seconds=0.2, max_seconds=0.3, progress=False)
    ...     line = Path(info["protocols"]["dev"]).read_text().splitlines()[0].split()
    >>> line[0].startswith("LA_"), line[2], line[4] in ("bonafide", "spoof")
    (True, '-', True)
    """
    import shutil
    import tempfile

    from ..spoofing.tdcf import write_asv_scores

    root = Path(root)
    la = root / "LA"
    kwargs = dict(kwargs, codec_fraction=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        info = make_asvspoof5_mini(tmp, **kwargs)
        protocols, asv_files = {}, {}
        for split, (suffix, letter) in LA_SPLITS.items():
            audio = la / f"ASVspoof2019_LA_{split}" / "flac"
            audio.mkdir(parents=True, exist_ok=True)
            lines, attacks = [], []
            for row in Path(info["protocols"][split]).read_text().splitlines():
                fields = row.split()
                speaker, file_id, attack, key = fields[0], fields[1], fields[7], fields[8]
                new_id = f"LA_{letter}_{int(file_id.split('_')[1]):07d}"
                shutil.copy(Path(info["audio_dirs"][split]) / f"{file_id}.flac",
                            audio / f"{new_id}.flac")
                speaker = f"LA_{int(speaker.split('_')[1]):04d}"
                lines.append(f"{speaker} {new_id} - {'-' if key == 'bonafide' else attack} {key}")
                if key == "spoof":
                    attacks.append(attack)
            path = la / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{suffix}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")
            protocols[split] = str(path)
            if split == "train":
                continue
            rng = np.random.default_rng([asv_seed, len(asv_files)])
            target, nontarget, spoof = asv_trials
            attacks = sorted(set(attacks)) or ["A01"]
            sources = (["bonafide"] * (target + nontarget)
                       + [attacks[i % len(attacks)] for i in range(spoof)])
            keys = ["target"] * target + ["nontarget"] * nontarget + ["spoof"] * spoof
            scores = np.concatenate([rng.normal(4.0, 1.0, target), rng.normal(-4.0, 1.0, nontarget),
                                     rng.normal(1.5, 1.5, spoof)])
            asv = la / "ASVspoof2019_LA_asv_scores" / f"ASVspoof2019.LA.asv.{split}.gi.trl.scores.txt"
            asv.parent.mkdir(parents=True, exist_ok=True)
            write_asv_scores(asv, sources, keys, scores)
            asv_files[split] = str(asv)
    return {"root": str(root), "protocols": protocols, "asv_scores": asv_files}
