"""RawBoost waveform augmentation (Tak et al., ICASSP 2022), in torch.

RawBoost ("RawBoost: a raw data boosting and augmentation method applied to
automatic speaker verification anti-spoofing") distorts the raw waveform with
three kinds of random, data-independent nuisance:

1. **LnL** -- linear and non-linear convolutive noise: the sum of the
   first ``num_nonlinear`` powers ``x, x^2, ..., x^N`` of the signal, each
   filtered by its own random multi-band FIR notch filter (``num_bands``
   band-stop Hamming-window FIRs in cascade, random centre frequency,
   bandwidth and odd number of taps; gain ``U(min_gain, max_gain)`` dB for
   the linear term, lowered by ``U(min_bias, max_bias)`` dB for the
   non-linear ones), mean removed, peak-normalised if it exceeds 1;
2. **ISD** -- impulsive signal-dependent noise: a random fraction
   ``U(0, isd_max_percent)`` % of the samples get ``x + isd_gain * x * r``
   with ``r`` the product of two ``U(-1, 1)`` draws, peak-normalised if it
   exceeds 1;
3. **SSI** -- stationary signal-independent additive noise: white Gaussian
   noise coloured by a random multi-band notch filter, added at a random
   SNR ``U(snr_min, snr_max)`` dB.

``algo`` selects the combination: 1, 2, 3 alone; 4 = 1+2+3 in series; 5 =
1+2; 6 = 1+3; 7 = 2+3; 8 = 1 and 2 in parallel (both applied to the input,
summed, peak-normalised if it exceeds 1); 0 = no augmentation.

Implementation notes
--------------------
* Everything is torch (no numpy RNG): all random draws use torch's global
  generator, so ``torch.manual_seed`` makes the augmentation reproducible.
  Filters are designed in float64 on the CPU (windowed-sinc band-stop FIRs,
  equal to ``scipy.signal.firwin(taps, [f1, f2], window="hamming")``) and
  applied on the waveform's device by FFT convolution (exact linear
  convolution, centred: zero-phase "same" output).
* Each utterance gets its own random filters / fractions / SNR; utterances of
  a batch are processed together, each restricted to its valid samples
  (SpeechBrain relative lengths): the padding is read as zeros, ignored by
  means, maxima and norms, and left at zero.

Authors
 * speechbrain_pruning contributors
"""

import torch
from torch import nn

from ..augment import augment_random_subset
from ..nn import length_mask, valid_frame_counts

__all__ = ["RawBoost", "notch_fir"]


def notch_fir(num_taps, low, high, sample_rate=16000):
    """Band-stop Hamming-window FIR filters (``scipy.signal.firwin`` equivalent).

    Passes ``[0, low]`` and ``[high, sample_rate / 2]``, unit gain at DC.

    Arguments
    ---------
    num_taps : torch.Tensor
        Odd numbers of taps ``[R]`` (long).
    low, high : torch.Tensor
        Stop-band edges in Hz ``[R]``, ``0 < low < high < sample_rate / 2``.
    sample_rate : float
        Sampling rate in Hz.

    Returns
    -------
    torch.Tensor
        Filters ``[R, max(num_taps)]`` (float64), left-aligned: row ``r`` holds
        its ``num_taps[r]`` taps then zeros.

    Example
    -------
    >>> h = notch_fir(torch.tensor([5, 3]), torch.tensor([1000.0, 2000.0]),
    ...               torch.tensor([3000.0, 4000.0]))
    >>> h.shape, torch.allclose(h.sum(-1), torch.ones(2, dtype=torch.float64))  # DC gain 1
    (torch.Size([2, 5]), True)
    """
    num_taps = torch.as_tensor(num_taps, dtype=torch.long)
    if bool((num_taps % 2 == 0).any()):
        raise ValueError("band-stop FIR filters need an odd number of taps")
    nyquist = sample_rate / 2.0
    f1 = torch.as_tensor(low, dtype=torch.float64).unsqueeze(1) / nyquist  # [R, 1]
    f2 = torch.as_tensor(high, dtype=torch.float64).unsqueeze(1) / nyquist
    taps = num_taps.to(torch.float64).unsqueeze(1)
    n = torch.arange(int(num_taps.max()), dtype=torch.float64,
                     device=num_taps.device).unsqueeze(0)  # [1, K]
    m = n - (taps - 1) / 2
    ideal = f1 * torch.sinc(f1 * m) + torch.sinc(m) - f2 * torch.sinc(f2 * m)
    window = 0.54 - 0.46 * torch.cos(2 * torch.pi * n / (taps - 1).clamp(min=1))
    window = torch.where(taps == 1, torch.ones_like(window), window)
    h = torch.where(n < taps, ideal * window, torch.zeros_like(ideal))
    return h / h.sum(-1, keepdim=True)


def _fir_same(x, h):
    """Centred ("same") linear convolution of ``x [R, S]`` with ``h [R, K]`` (K odd)."""
    num_samples, taps = x.shape[-1], h.shape[-1]
    size = num_samples + taps - 1
    spectrum = torch.fft.rfft(x, n=size) * torch.fft.rfft(h.to(x.dtype), n=size)
    full = torch.fft.irfft(spectrum, n=size)
    start = (taps - 1) // 2
    return full[..., start:start + num_samples]


def _uniform(low, high, size):
    """``size`` float64 CPU draws of ``U(low, high)`` (``low > high`` allowed).

    Filter design runs on the CPU in float64 on purpose (a few hundred numbers);
    the filters are moved to the waveform's device before they are applied.
    """
    return low + (high - low) * torch.rand(size, dtype=torch.float64, device="cpu")


class RawBoost(nn.Module):
    """RawBoost data augmentation of raw waveforms (training mode only).

    Arguments
    ---------
    algo : int
        0 = none, 1 = LnL, 2 = ISD, 3 = SSI, 4 = 1+2+3, 5 = 1+2, 6 = 1+3,
        7 = 2+3 (in series), 8 = 1 and 2 in parallel.
    sample_rate : int
        Sampling rate in Hz.
    prob : float
        Probability of augmenting each utterance.
    num_bands : int
        Number of notch filters in cascade in each random filter.
    min_freq, max_freq : float
        Range of the notch centre frequencies (Hz).
    min_bandwidth, max_bandwidth : float
        Range of the notch bandwidths (Hz).
    min_coeff, max_coeff : int
        Range of the number of taps of each notch (made odd).
    min_gain, max_gain : float
        Range of the gain (dB) of the linear LnL term and of the SSI filter.
    min_bias, max_bias : float
        Gain reduction (dB) of the non-linear LnL terms: their gain is drawn in
        ``[min_gain - min_bias, max_gain - max_bias]``.
    num_nonlinear : int
        Number of LnL terms (powers ``1 .. num_nonlinear`` of the signal).
    isd_max_percent : float
        ISD perturbs ``U(0, isd_max_percent)`` % of the samples.
    isd_gain : float
        ISD perturbation gain (``g_sd``).
    snr_min, snr_max : float
        SSI signal-to-noise ratio range (dB).
    edge_margin : float
        Notch edges are kept in ``[edge_margin, sample_rate / 2 - edge_margin]`` Hz.
    response_points : int
        FFT size used to find the peak magnitude response of a filter.
    eps : float
        Floor of norms and peaks (silent inputs stay finite).

    Example
    -------
    >>> augment = RawBoost(algo=5).train()
    >>> wavs = 0.1 * torch.randn(2, 16000)
    >>> out, lengths = augment(wavs, torch.tensor([1.0, 0.5]))
    >>> out.shape, bool((out[1, 8000:] == 0).all()), bool((out != wavs).any())
    (torch.Size([2, 16000]), True, True)
    >>> torch.equal(augment.eval()(wavs)[0], wavs)  # identity in eval mode
    True
    """

    ALGORITHMS = {
        0: (),
        1: ("lnl",),
        2: ("isd",),
        3: ("ssi",),
        4: ("lnl", "isd", "ssi"),
        5: ("lnl", "isd"),
        6: ("lnl", "ssi"),
        7: ("isd", "ssi"),
        8: ("parallel",),
    }

    def __init__(
        self,
        algo=5,
        sample_rate=16000,
        prob=1.0,
        num_bands=5,
        min_freq=20.0,
        max_freq=8000.0,
        min_bandwidth=100.0,
        max_bandwidth=1000.0,
        min_coeff=10,
        max_coeff=100,
        min_gain=0.0,
        max_gain=0.0,
        min_bias=5.0,
        max_bias=20.0,
        num_nonlinear=5,
        isd_max_percent=10.0,
        isd_gain=2.0,
        snr_min=10.0,
        snr_max=40.0,
        edge_margin=1e-3,
        response_points=4096,
        eps=1e-8,
    ):
        super().__init__()
        if int(algo) not in self.ALGORITHMS:
            raise ValueError(f"RawBoost algo must be one of {sorted(self.ALGORITHMS)}, got {algo}")
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.algo = int(algo)
        self.sample_rate = float(sample_rate)
        self.prob = float(prob)
        self.num_bands = int(num_bands)
        self.min_freq, self.max_freq = float(min_freq), float(max_freq)
        self.min_bandwidth, self.max_bandwidth = float(min_bandwidth), float(max_bandwidth)
        self.min_coeff, self.max_coeff = int(min_coeff), int(max_coeff)
        self.min_gain, self.max_gain = float(min_gain), float(max_gain)
        self.min_bias, self.max_bias = float(min_bias), float(max_bias)
        self.num_nonlinear = int(num_nonlinear)
        self.isd_max_percent = float(isd_max_percent)
        self.isd_gain = float(isd_gain)
        self.snr_min, self.snr_max = float(snr_min), float(snr_max)
        self.edge_margin = float(edge_margin)
        self.response_points = int(response_points)
        self.eps = float(eps)

    def extra_repr(self):
        return f"algo={self.algo}, prob={self.prob}, sample_rate={self.sample_rate:g}"

    # ------------------------------------------------------------ filters
    def random_notch_filters(self, num_filters, gain_low, gain_high):
        """Random multi-band notch filters with a random overall gain.

        Each filter is a cascade of ``num_bands`` band-stop FIRs (random
        centre, bandwidth, odd taps), scaled to a peak magnitude response of
        ``10 ** (G / 20)`` with ``G ~ U(gain_low, gain_high)`` dB.

        Arguments
        ---------
        num_filters : int
            Number ``R`` of filters.
        gain_low, gain_high : float
            Gain range in dB.

        Returns
        -------
        torch.Tensor
            Symmetric filters ``[R, K]`` (float64, CPU), ``K`` odd, centred.
        """
        shape = (num_filters, self.num_bands)
        centre = _uniform(self.min_freq, self.max_freq, shape)
        width = _uniform(self.min_bandwidth, self.max_bandwidth, shape)
        taps = torch.floor(_uniform(self.min_coeff, self.max_coeff, shape)).long().clamp(min=1)
        taps = taps + (1 - taps % 2)  # odd
        nyquist = self.sample_rate / 2
        low = (centre - width / 2).clamp(min=self.edge_margin, max=nyquist - 2 * self.edge_margin)
        high = torch.maximum(
            (centre + width / 2).clamp(max=nyquist - self.edge_margin), low + self.edge_margin
        )
        bands = notch_fir(taps.flatten(), low.flatten(), high.flatten(), self.sample_rate)
        lengths = taps.sum(1) - self.num_bands + 1  # [R], odd
        size = int(lengths.max())
        spectra = torch.fft.rfft(bands.view(num_filters, self.num_bands, -1), n=size)
        cascade = torch.fft.irfft(spectra.prod(dim=1), n=size)  # [R, size], left-aligned
        # centre every filter in a common odd length
        shift = ((size - lengths) // 2).unsqueeze(1)
        index = torch.arange(size, device=shift.device).unsqueeze(0) - shift
        valid = (index >= 0) & (index < lengths.unsqueeze(1))
        cascade = torch.where(valid, cascade.gather(1, index.clamp(0, size - 1)), 0.0)
        points = max(self.response_points, size)
        peak = torch.fft.rfft(cascade, n=points).abs().amax(-1, keepdim=True)
        gain = 10.0 ** (_uniform(gain_low, gain_high, (num_filters, 1)) / 20.0)
        return gain * cascade / peak.clamp(min=self.eps)

    # -------------------------------------------------------- components
    def _normalize(self, x, always):
        """Divide each row by its peak (``always``) or by ``max(peak, 1)``."""
        peak = x.abs().amax(-1, keepdim=True)
        if always:
            return x / peak.clamp(min=self.eps)
        return x / peak.clamp(min=1.0)

    def lnl_convolutive_noise(self, x, valid):
        """Linear and non-linear convolutive noise (algo 1).

        Arguments
        ---------
        x : torch.Tensor
            Waveforms ``[B, S]``, zero on padded samples.
        valid : torch.Tensor
            Boolean mask of valid samples ``[B, S]``.

        Returns
        -------
        torch.Tensor
            ``[B, S]``, zero on padded samples.
        """
        batch, num_samples = x.shape
        terms = torch.stack([x ** (i + 1) for i in range(self.num_nonlinear)], dim=1)
        gains_low = [self.min_gain] + [self.min_gain - self.min_bias] * (self.num_nonlinear - 1)
        gains_high = [self.max_gain] + [self.max_gain - self.max_bias] * (self.num_nonlinear - 1)
        filters = []
        for low, high in zip(gains_low, gains_high):
            filters.append(self.random_notch_filters(batch, low, high))
        size = max(f.shape[-1] for f in filters)
        filters = torch.stack(
            [nn.functional.pad(f, ((size - f.shape[-1]) // 2,) * 2) for f in filters], dim=1
        )  # [B, N_f, K]
        y = _fir_same(terms.reshape(-1, num_samples), filters.reshape(-1, size).to(x.device))
        y = y.view(batch, -1, num_samples).sum(1) * valid
        counts = valid.sum(-1, keepdim=True).clamp(min=1)
        y = (y - y.sum(-1, keepdim=True) / counts) * valid
        return self._normalize(y, always=False)

    def isd_impulsive_noise(self, x, valid):
        """Impulsive signal-dependent noise (algo 2) on ``x [B, S]`` -> ``[B, S]``."""
        batch, num_samples = x.shape
        percent = _uniform(0.0, self.isd_max_percent, (batch,)).to(x.device)
        counts = valid.sum(-1)
        num_changed = torch.floor(counts.double() * percent / 100.0).long()
        # a uniformly random subset of num_changed valid samples per utterance
        keys = torch.rand(batch, num_samples, device=x.device).masked_fill(~valid, 2.0)
        order = keys.argsort(dim=-1)
        rank = torch.empty_like(order).scatter_(
            -1, order, torch.arange(num_samples, device=x.device).expand(batch, -1)
        )
        changed = rank < num_changed.unsqueeze(1)
        factor = (2 * torch.rand(batch, num_samples, device=x.device) - 1) * (
            2 * torch.rand(batch, num_samples, device=x.device) - 1
        )
        y = x + changed * (self.isd_gain * x * factor.to(x.dtype))
        return self._normalize(y, always=False)

    def ssi_coloured_noise(self, x, valid):
        """Stationary signal-independent coloured noise (algo 3) on ``x [B, S]``."""
        batch, _ = x.shape
        noise = torch.randn(x.shape, device=x.device, dtype=x.dtype) * valid
        filters = self.random_notch_filters(batch, self.min_gain, self.max_gain)
        noise = _fir_same(noise, filters.to(x.device)) * valid
        snr = _uniform(self.snr_min, self.snr_max, (batch, 1)).to(x.device, x.dtype)
        signal_norm = x.norm(dim=-1, keepdim=True)
        noise_norm = noise.norm(dim=-1, keepdim=True).clamp(min=self.eps)
        return x + noise * (signal_norm / noise_norm) / 10.0 ** (snr / 20.0)

    def augment(self, wavs, lengths=None):
        """Apply the configured algorithm to every utterance (any mode).

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms ``[B, S]``.
        lengths : torch.Tensor, optional
            Relative lengths in (0, 1] ``[B]``; valid samples =
            ``round(length * S)``. None = no padding.

        Returns
        -------
        torch.Tensor
            Augmented waveforms ``[B, S]``; padded samples are zero.
        """
        if wavs.dim() != 2:
            raise ValueError(f"RawBoost expects waveforms [B, S], got {tuple(wavs.shape)}")
        dtype = wavs.dtype
        x = wavs.float() if dtype in (torch.float16, torch.bfloat16) else wavs
        num_samples = x.shape[-1]
        if lengths is None:
            counts = torch.full((x.shape[0],), num_samples, device=x.device)
        else:
            counts = valid_frame_counts(torch.as_tensor(lengths, device=x.device), num_samples)
        valid = length_mask(counts, num_samples)
        x = x * valid
        steps = {
            "lnl": self.lnl_convolutive_noise,
            "isd": self.isd_impulsive_noise,
            "ssi": self.ssi_coloured_noise,
        }
        for step in self.ALGORITHMS[self.algo]:
            if step == "parallel":
                both = self.lnl_convolutive_noise(x, valid) + self.isd_impulsive_noise(x, valid)
                x = self._normalize(both, always=False)
            else:
                x = steps[step](x, valid)
        return (x * valid).to(dtype)

    def forward(self, wavs, lengths=None):
        """Augment a batch in training mode (identity in eval mode).

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms ``[B, S]``.
        lengths : torch.Tensor, optional
            Relative lengths ``[B]`` (returned unchanged).

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            Waveforms ``[B, S]`` (each augmented with probability ``prob``)
            and ``lengths``, like SpeechBrain's ``Augmenter``.
        """
        if not self.training or self.algo == 0 or self.prob == 0.0:
            return wavs, lengths
        return augment_random_subset(self.augment, wavs, lengths, self.prob), lengths
