"""Deterministic synthetic speech of many distinct speakers (a source-filter model).

Tests, demos and recipe smoke runs need a speaker-verification corpus that is
small, downloadable from nowhere and still *learnable*: utterances of one
speaker must sound alike and differ from other speakers. This module builds
one with a source-filter speech model:

* every speaker has stable identity parameters drawn from the seed: base
  pitch (two groups, ``"male"`` 90-150 Hz and ``"female"`` 170-260 Hz), a
  vocal-tract length factor scaling the formants (F1-F5 around 500, 1500,
  2500, 3500 and 4500 Hz, times 0.8-1.25, the upper ones with an extra
  personal factor), a personal vowel inventory, formant bandwidths, glottal
  spectral tilt and harmonic ripple, a fixed peaking-equaliser colouring
  (timbre), speaking rate (3-6 syllables/s), jitter, shimmer, breathiness
  and a fricative colour;
* an utterance is a sequence of syllables: an optional unvoiced fricative
  onset (filtered noise burst) and a voiced nucleus (a sum of harmonics of
  a slowly varying f0 contour with per-utterance intonation, jitter and
  shimmer, passed through a cascade of five two-pole formant resonators
  whose targets move from syllable to syllable, and lip radiation), with
  attack/decay envelopes and pauses; background noise is added at a random
  SNR of 20-40 dB and the result is peak-normalised to -3 dBFS.

Speakers are easy to tell apart: a nearest-centroid classifier on the
long-term log-mel spectrum of 3 s utterances, enrolled on another video,
is right about 98 % of the time (tests/test_synthetic_corpus.py).

:mod:`.voxceleb`, :mod:`.spoof` and :mod:`.meeting` write corpora of such
speech in the real on-disk layouts of VoxCeleb, ASVspoof5 and the diarization
corpora.

Authors
 * speechbrain_pruning contributors
"""

import logging

import numpy as np
from scipy.signal import lfilter, sosfilt

logger = logging.getLogger(__name__)

GENDERS = ("male", "female")
NEUTRAL_FORMANTS = (500.0, 1500.0, 2500.0, 3500.0, 4500.0)

# Streams of the seeded generators: one independent stream per purpose.
_SPEAKER_STREAM = 0
_UTTERANCE_STREAM = 1
_TRIAL_STREAM = 2
_VIDEO_STREAM = 3


def sample_speaker(
    rng,
    gender="male",
    f0_range_male=(90.0, 150.0),
    f0_range_female=(170.0, 260.0),
    vtl_range_male=(0.8, 1.05),
    vtl_range_female=(1.0, 1.25),
    neutral_formants=NEUTRAL_FORMANTS,
    num_vowels=5,
    vowel_spread=(0.35, 0.3, 0.04, 0.03, 0.02),
    upper_formant_range=(0.88, 1.12),
    num_lower_formants=2,
    bandwidth_scale_range=(0.7, 1.5),
    tilt_range=(0.6, 1.5),
    ripple_depth_range=(0.1, 0.45),
    open_quotient_range=(0.3, 0.8),
    h1_gain_range=(0.6, 2.0),
    rate_range=(3.0, 6.0),
    jitter_range=(0.004, 0.02),
    shimmer_range=(0.02, 0.1),
    breathiness_range=(0.03, 0.3),
    fricative_prob_range=(0.25, 0.6),
    fricative_freq_range=(2500.0, 6500.0),
    num_timbre_bands=4,
    timbre_freq_range=(200.0, 6000.0),
    timbre_gain_db_range=(-12.0, 12.0),
    timbre_q_range=(1.0, 4.0),
):
    """Draws the stable identity parameters of one synthetic speaker.

    Arguments
    ---------
    rng : numpy.random.Generator
        Source of randomness (seed it per speaker for reproducibility).
    gender : str
        ``"male"`` or ``"female"``: selects the pitch and vocal-tract ranges.
    f0_range_male, f0_range_female : tuple of float
        Range of the base pitch in Hz.
    vtl_range_male, vtl_range_female : tuple of float
        Range of the formant scaling factor (inverse vocal-tract length).
    neutral_formants : tuple of float
        Formants of a neutral vowel in Hz before scaling (F1-F5).
    num_vowels : int
        Size of the speaker's personal vowel inventory.
    vowel_spread : tuple of float
        Relative spread of each formant around the neutral vowel between
        the speaker's vowels (large for F1/F2, small above).
    upper_formant_range : tuple of float
        Range of an extra speaker factor on the formants above
        ``num_lower_formants`` (stable timbre, independent of the vowel).
    num_lower_formants : int
        Number of vowel-dependent formants (F1, F2).
    bandwidth_scale_range : tuple of float
        Range of the factor applied to the formant bandwidths.
    tilt_range : tuple of float
        Range of the exponent ``p`` of the harmonic amplitudes ``k ** -p``.
    ripple_depth_range : tuple of float
        Range of the depth of the harmonic amplitude ripple (timbre).
    open_quotient_range : tuple of float
        Range of the glottal open quotient setting the ripple period.
    h1_gain_range : tuple of float
        Range of the gain of the first harmonic relative to the tilt.
    rate_range : tuple of float
        Range of the speaking rate in syllables per second.
    jitter_range, shimmer_range : tuple of float
        Ranges of the relative pitch and amplitude perturbation.
    breathiness_range : tuple of float
        Range of the aspiration noise level relative to the voiced source.
    fricative_prob_range : tuple of float
        Range of the probability that a syllable starts with a fricative.
    fricative_freq_range : tuple of float
        Range of the centre frequency of the speaker's fricatives in Hz.
    num_timbre_bands : int
        Number of fixed peaking-equaliser bands colouring the speaker's
        voice (cavities beyond the formant model, e.g. nasal, piriform).
    timbre_freq_range : tuple of float
        Range (log-uniform) of the band centre frequencies in Hz.
    timbre_gain_db_range : tuple of float
        Range of the band gains in dB.
    timbre_q_range : tuple of float
        Range of the band quality factors.

    Returns
    -------
    dict
        Identity parameters (floats and numpy arrays), including
        ``"gender"``, ``"f0"`` (Hz), ``"vtl"``, ``"vowels"``
        (``[num_vowels, 5]`` formants in Hz), the harmonic profile
        (``"tilt"``, ``"ripple_depth"``, ``"open_quotient"``,
        ``"ripple_phase"``, ``"h1_gain"``) and ``"rate"`` (syllables/s).

    Example
    -------
    >>> spk = sample_speaker(np.random.default_rng(0), gender="female")
    >>> bool(170 <= spk["f0"] <= 260), spk["vowels"].shape
    (True, (5, 5))
    """
    if gender not in GENDERS:
        raise ValueError(f"Unknown gender {gender!r}; valid: {', '.join(GENDERS)}")
    female = gender == "female"
    f0_range = f0_range_female if female else f0_range_male
    vtl_range = vtl_range_female if female else vtl_range_male
    vtl = rng.uniform(*vtl_range)
    spread = np.asarray(vowel_spread)
    offsets = rng.uniform(-1.0, 1.0, size=(num_vowels, len(neutral_formants))) * spread
    scale = np.full(len(neutral_formants), vtl)
    scale[num_lower_formants:] *= rng.uniform(*upper_formant_range)
    vowels = np.asarray(neutral_formants) * scale * (1.0 + offsets)
    vowels.sort(axis=1)  # keep the formants in increasing order
    return {
        "gender": gender,
        "f0": rng.uniform(*f0_range),
        "vtl": vtl,
        "vowels": vowels,
        "bandwidth_scale": rng.uniform(*bandwidth_scale_range),
        "tilt": rng.uniform(*tilt_range),
        "ripple_depth": rng.uniform(*ripple_depth_range),
        "open_quotient": rng.uniform(*open_quotient_range),
        "ripple_phase": rng.uniform(0.0, 2.0 * np.pi),
        "h1_gain": rng.uniform(*h1_gain_range),
        "rate": rng.uniform(*rate_range),
        "jitter": rng.uniform(*jitter_range),
        "shimmer": rng.uniform(*shimmer_range),
        "breathiness": rng.uniform(*breathiness_range),
        "fricative_prob": rng.uniform(*fricative_prob_range),
        "fricative_freq": rng.uniform(*fricative_freq_range) * np.sqrt(vtl),
        "timbre_bands": np.stack([
            np.exp(rng.uniform(*np.log(timbre_freq_range), size=num_timbre_bands)),
            rng.uniform(*timbre_gain_db_range, size=num_timbre_bands),
            rng.uniform(*timbre_q_range, size=num_timbre_bands),
        ], axis=1),
    }


def _raised_cosine(num):
    """A rising half-cosine ramp of ``num`` samples from 0 to 1."""
    if num <= 0:
        return np.zeros(0)
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(num) + 0.5) / num)


def _segment_envelope(length, attack, decay):
    """Unit envelope of ``length`` samples with raised-cosine attack/decay."""
    env = np.ones(length)
    attack = min(attack, length // 2)
    decay = min(decay, length - attack)
    env[:attack] = _raised_cosine(attack)
    if decay > 0:
        env[length - decay:] = _raised_cosine(decay)[::-1]
    return env


def _plan_syllables(
    speaker,
    rng,
    num_samples,
    sample_rate,
    rate_jitter=0.3,
    pause_prob=0.12,
    pause_range=(0.08, 0.3),
    edge_silence_range=(0.05, 0.25),
    fricative_range=(0.03, 0.09),
    min_nucleus=0.04,
):
    """Lays out syllables as ``(fricative_start, voiced_start, end, vowel)``."""
    syllables = []
    time = rng.uniform(*edge_silence_range)
    end_time = num_samples / sample_rate - rng.uniform(*edge_silence_range)
    num_vowels = len(speaker["vowels"])
    while True:
        duration = rng.uniform(1.0 - rate_jitter, 1.0 + rate_jitter) / speaker["rate"]
        has_fricative = rng.random() < speaker["fricative_prob"]
        fricative = rng.uniform(*fricative_range) if has_fricative else 0.0
        fricative = min(fricative, duration - min_nucleus)
        if time + duration > end_time:
            break
        syllables.append((time, time + max(fricative, 0.0), time + duration,
                          int(rng.integers(num_vowels))))
        time += duration
        if rng.random() < pause_prob:
            time += rng.uniform(*pause_range)
    if not syllables:  # very short utterance: one syllable filling the middle
        start = min(time, 0.25 * num_samples / sample_rate)
        syllables.append((start, start, max(end_time, start + min_nucleus),
                          int(rng.integers(num_vowels))))
    return [
        (round(f * sample_rate), round(v * sample_rate),
         min(round(e * sample_rate), num_samples), vowel)
        for f, v, e, vowel in syllables
    ]


def _smooth(values, width):
    """Moving average of a 1-D array over ``width`` points, edges padded."""
    if width <= 1:
        return values
    pad = width // 2
    padded = np.pad(values, (pad, width - 1 - pad), mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def _harmonic_source(f0, gains, sample_rate, fade_band=(0.85, 0.95)):
    """Sum of harmonics ``sum_k gains[k-1] * sin(k * phase)`` (no aliasing).

    Uses the Chebyshev recurrence ``sin(k x) = 2 cos(x) sin((k-1) x) -
    sin((k-2) x)`` so only one sine and one cosine are evaluated. A harmonic
    fades out linearly while its frequency crosses ``fade_band`` (fractions
    of the Nyquist frequency).
    """
    phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate
    two_cos = 2.0 * np.cos(phase)
    prev = np.zeros_like(phase)
    cur = np.sin(phase)
    out = gains[0] * cur
    nyquist = 0.5 * sample_rate
    for k in range(2, len(gains) + 1):
        prev, cur = cur, two_cos * cur - prev
        # fade out harmonics as they approach Nyquist when f0 rises
        weight = np.clip((fade_band[1] * nyquist - k * f0)
                         / ((fade_band[1] - fade_band[0]) * nyquist), 0.0, 1.0)
        out += gains[k - 1] * weight * cur
    return out


def _resonator_sos(freqs, bandwidths, sample_rate):
    """Second-order sections of cascades of unity-DC-gain 2-pole resonators.

    ``freqs`` has shape ``[..., S]`` (``S`` resonators per cascade) and
    ``bandwidths`` broadcasts to it; the result has shape ``[..., S, 6]``.
    """
    freqs = np.asarray(freqs, dtype=float)
    radius = np.exp(-np.pi * np.broadcast_to(bandwidths, freqs.shape) / sample_rate)
    a1 = -2.0 * radius * np.cos(2.0 * np.pi * freqs / sample_rate)
    a2 = radius**2
    sos = np.zeros(freqs.shape + (6,))
    sos[..., 0] = 1.0 + a1 + a2
    sos[..., 3] = 1.0
    sos[..., 4] = a1
    sos[..., 5] = a2
    return sos


def _peaking_sos(bands, sample_rate, max_freq_fraction=0.45):
    """Second-order sections of peaking equalisers (RBJ audio-EQ cookbook).

    ``bands`` has one ``(frequency Hz, gain dB, Q)`` row per section;
    frequencies are capped at ``max_freq_fraction * sample_rate``.
    """
    bands = np.asarray(bands, dtype=float).reshape(-1, 3)
    amp = 10.0 ** (bands[:, 1] / 40.0)
    w0 = 2.0 * np.pi * np.minimum(bands[:, 0], max_freq_fraction * sample_rate) / sample_rate
    alpha = np.sin(w0) / (2.0 * bands[:, 2])
    a0 = 1.0 + alpha / amp
    sos = np.stack([1.0 + alpha * amp, -2.0 * np.cos(w0), 1.0 - alpha * amp,
                    a0, -2.0 * np.cos(w0), 1.0 - alpha / amp], axis=1)
    return sos / a0[:, None]


def synthesize_utterance(
    speaker,
    seconds,
    rng,
    sample_rate=16000,
    control_period=0.005,
    accent_smoothing=0.05,
    coarticulation=0.5,
    glide_fraction=0.4,
    ring_tail=0.05,
    max_harmonic_freq=7600.0,
    pitch_shift_range=(0.93, 1.07),
    declination_range=(0.0, 0.12),
    intonation_depth_range=(0.02, 0.08),
    intonation_rate_range=(0.3, 1.2),
    accent_range=(-0.05, 0.12),
    syllable_formant_jitter=0.04,
    syllable_gain_range=(0.6, 1.0),
    attack_range=(0.01, 0.04),
    decay_range=(0.03, 0.08),
    bandwidths=(60.0, 90.0, 120.0, 180.0, 250.0),
    radiation=0.95,
    fricative_gain_range=(0.02, 0.08),
    fricative_bandwidth=1500.0,
    snr_db_range=(20.0, 40.0),
    noise_pole=0.6,
    peak_dbfs=-3.0,
):
    """Synthesises one utterance of ``speaker`` (see :func:`sample_speaker`).

    Arguments
    ---------
    speaker : dict
        Identity parameters from :func:`sample_speaker`.
    seconds : float
        Duration of the utterance.
    rng : numpy.random.Generator
        Source of randomness (seed it per utterance for reproducibility).
    sample_rate : int
        Sampling rate in Hz.
    control_period : float
        Period in seconds of the pitch/amplitude control points.
    accent_smoothing : float
        Smoothing window in seconds of the syllable pitch accents.
    coarticulation : float
        Weight of the previous syllable's formants at a nucleus onset.
    glide_fraction : float
        Fraction of a nucleus spent gliding towards its formant targets.
    ring_tail : float
        Seconds of vocal-tract ringing kept after each syllable.
    max_harmonic_freq : float
        Highest harmonic frequency synthesised (Hz), below Nyquist.
    pitch_shift_range : tuple of float
        Range of the per-utterance pitch factor.
    declination_range : tuple of float
        Range of the relative pitch fall over the utterance.
    intonation_depth_range, intonation_rate_range : tuple of float
        Depth (relative) and rate (Hz) of the slow intonation sinusoid.
    accent_range : tuple of float
        Range of the relative pitch accent of each syllable.
    syllable_formant_jitter : float
        Relative spread of a syllable's formants around its vowel.
    syllable_gain_range : tuple of float
        Range of a syllable's loudness.
    attack_range, decay_range : tuple of float
        Ranges in seconds of the voiced attack and decay ramps.
    bandwidths : tuple of float
        Formant bandwidths in Hz (scaled by the speaker's factor), one per
        formant of the speaker's vowels.
    radiation : float
        Coefficient of the lip-radiation first difference ``1 - r z^-1``.
    fricative_gain_range : tuple of float
        Range of a fricative's level relative to the voiced peak.
    fricative_bandwidth : float
        Bandwidth in Hz of the fricative resonance.
    snr_db_range : tuple of float
        Range of the background noise SNR in dB.
    noise_pole : float
        Pole of the one-pole low-pass colouring the background noise.
    peak_dbfs : float
        Peak level of the output in dB full scale.

    Returns
    -------
    numpy.ndarray
        Mono float32 waveform of ``round(seconds * sample_rate)`` samples,
        peak at ``peak_dbfs``.

    Example
    -------
    >>> spk = sample_speaker(np.random.default_rng(1))
    >>> wav = synthesize_utterance(spk, 0.5, np.random.default_rng(2))
    >>> wav.shape, wav.dtype, bool(abs(np.abs(wav).max() - 10 ** (-3 / 20)) < 1e-4)
    ((8000,), dtype('float32'), True)
    """
    num_samples = int(round(seconds * sample_rate))
    if num_samples <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    options = {k: v for k, v in locals().items() if k not in ("speaker", "seconds", "rng")}
    syllables = _plan_syllables(speaker, rng, num_samples, sample_rate)
    # source-filter synthesis, step by step (the random draws keep this order)
    f0, shimmer = _f0_contour(speaker, syllables, rng, num_samples, sample_rate, options)
    source = _glottal_source(speaker, f0, rng, num_samples, sample_rate, options)
    voiced_env, fric_env = _envelopes(syllables, rng, num_samples, sample_rate, options)
    voiced_out = _vocal_tract(speaker, syllables, source * shimmer * voiced_env, rng,
                              num_samples, sample_rate, options)
    signal = _add_fricatives_and_noise(speaker, voiced_out, fric_env, rng, num_samples,
                                       sample_rate, options)
    signal *= 10.0 ** (peak_dbfs / 20.0) / (np.abs(signal).max() + 1e-12)
    return signal.astype(np.float32)


def _f0_contour(speaker, syllables, rng, num_samples, sample_rate, o):
    """Per-sample f0 (Hz) and shimmer gain: declination, intonation, accents, jitter."""
    control_period, accent_smoothing = o["control_period"], o["accent_smoothing"]
    hop = max(1, int(round(control_period * sample_rate)))
    num_ctrl = num_samples // hop + 2
    ctrl_t = np.arange(num_ctrl) * hop / sample_rate
    rel = ctrl_t / max(ctrl_t[-1], 1e-9)
    declination = rng.uniform(*o["declination_range"])
    depth = rng.uniform(*o["intonation_depth_range"])
    inton_rate = rng.uniform(*o["intonation_rate_range"])
    inton_phase = rng.uniform(0.0, 2.0 * np.pi)
    accent = np.zeros(num_ctrl)
    for _, voiced, end, _ in syllables:
        accent[voiced // hop:end // hop + 1] = rng.uniform(*o["accent_range"])
    accent = _smooth(accent, max(1, int(round(accent_smoothing / control_period))))
    log_f0 = (
        np.log(speaker["f0"] * rng.uniform(*o["pitch_shift_range"]))
        + declination * (0.5 - rel)
        + depth * np.sin(2.0 * np.pi * inton_rate * ctrl_t + inton_phase)
        + accent
        + speaker["jitter"] * rng.standard_normal(num_ctrl)
    )
    sample_t = np.arange(num_samples) / sample_rate
    f0 = np.exp(np.interp(sample_t, ctrl_t, log_f0))
    shimmer = 1.0 + speaker["shimmer"] * np.interp(
        sample_t, ctrl_t, rng.standard_normal(num_ctrl))
    return f0, shimmer


def _glottal_source(speaker, f0, rng, num_samples, sample_rate, o):
    """Unit-power harmonic source with the speaker's tilt and ripple, plus breath noise."""
    max_harmonic_freq = o["max_harmonic_freq"]
    num_harmonics = max(1, int(min(max_harmonic_freq, 0.5 * sample_rate) / f0.min()))
    k = np.arange(1, num_harmonics + 1)
    gains = k ** -speaker["tilt"] * (
        1.0 + speaker["ripple_depth"]
        * np.cos(2.0 * np.pi * k * speaker["open_quotient"] + speaker["ripple_phase"]))
    gains[0] *= speaker["h1_gain"]
    source = _harmonic_source(f0, gains, sample_rate)
    source /= np.sqrt(np.mean(source**2)) + 1e-12
    source += speaker["breathiness"] * rng.standard_normal(num_samples)
    return source


def _envelopes(syllables, rng, num_samples, sample_rate, o):
    """Voiced and fricative amplitude envelopes ``[S]`` of the planned syllables."""
    voiced_env = np.zeros(num_samples)
    fric_env = np.zeros(num_samples)
    for fric_start, voiced, end, _ in syllables:
        gain = rng.uniform(*o["syllable_gain_range"])
        attack = int(rng.uniform(*o["attack_range"]) * sample_rate)
        decay = int(rng.uniform(*o["decay_range"]) * sample_rate)
        if end > voiced:
            voiced_env[voiced:end] = gain * _segment_envelope(end - voiced, attack, decay)
        if voiced > fric_start:
            length = voiced - fric_start
            fric_env[fric_start:voiced] = rng.uniform(*o["fricative_gain_range"]) * \
                _segment_envelope(length, length // 3, length // 3)
    return voiced_env, fric_env


def _vocal_tract(speaker, syllables, voiced_part, rng, num_samples, sample_rate, o):
    """Formant filtering of the voiced part, lip radiation and the speaker's timbre."""
    # Each nucleus is filtered twice, with its onset formants (a locus
    # between the previous syllable's targets and its own) and with its
    # targets, and the two outputs are cross-faded over the glide; the
    # responses of successive syllables (with a ringing tail) are overlap-
    # added, so formant changes never switch the coefficients of a running
    # filter (no clicks).
    bws = np.asarray(o["bandwidths"]) * speaker["bandwidth_scale"]
    if len(bws) != speaker["vowels"].shape[1]:
        raise ValueError(f"{len(bws)} bandwidths for {speaker['vowels'].shape[1]} formants")
    tail = int(o["ring_tail"] * sample_rate)
    voiced_out = np.zeros(num_samples)
    previous = None
    for _, voiced, end, vowel in syllables:
        target = speaker["vowels"][vowel] * (
            1.0 + o["syllable_formant_jitter"] * rng.uniform(-1.0, 1.0, size=len(bws)))
        onset = target if previous is None else (
            o["coarticulation"] * previous + (1.0 - o["coarticulation"]) * target)
        previous = target
        stop = min(end + tail, num_samples)
        if end <= voiced:
            continue
        segment = np.zeros(stop - voiced)
        segment[:end - voiced] = voiced_part[voiced:end]
        sos = _resonator_sos(np.stack([onset, target]), bws, sample_rate)
        glide = max(1, int(o["glide_fraction"] * (end - voiced)))
        weight = np.ones(len(segment))
        weight[:glide] = _raised_cosine(glide)
        voiced_out[voiced:stop] += (
            (1.0 - weight) * sosfilt(sos[0], segment) + weight * sosfilt(sos[1], segment))
    voiced_out = lfilter([1.0, -o["radiation"]], [1.0], voiced_out)
    if len(speaker["timbre_bands"]):
        voiced_out = sosfilt(_peaking_sos(speaker["timbre_bands"], sample_rate), voiced_out)
    return voiced_out


def _add_fricatives_and_noise(speaker, voiced_out, fric_env, rng, num_samples, sample_rate, o):
    """Fricative noise bursts, then background noise at a random SNR."""
    fric_sos = _resonator_sos([speaker["fricative_freq"]], [o["fricative_bandwidth"]],
                              sample_rate)
    fric_noise = sosfilt(fric_sos, np.diff(rng.standard_normal(num_samples + 1)))
    fric_noise /= np.sqrt(np.mean(fric_noise**2)) + 1e-12
    voiced_peak = np.abs(voiced_out).max() + 1e-12
    signal = voiced_out + voiced_peak * fric_env * fric_noise
    snr_db = rng.uniform(*o["snr_db_range"])
    noise = lfilter([1.0 - o["noise_pole"]], [1.0, -o["noise_pole"]],
                    rng.standard_normal(num_samples))
    noise *= np.sqrt(np.mean(signal**2) / (np.mean(noise**2) + 1e-20)
                     / 10.0 ** (snr_db / 10.0))
    return signal + noise
