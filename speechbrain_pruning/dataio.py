"""Audio reading for the recipes' data pipelines."""

import random

import soundfile as sf
import torch
import torchaudio

from .nn import check_finite_audio

__all__ = ["read_segment", "valid_frame_counts"]

SAMPLE_RATE = 16000


def read_segment(wav, num_samples, random_offset, utt_id="?", start=0, stop=None):
    """Read ``num_samples`` of mono 16 kHz audio from ``wav[start:stop]``.

    A random window (training) or the first one; the first channel of
    multi-channel files; other rates resampled; files shorter than the
    window are repeated to its length. Read errors name the file and the
    manifest row.

    Example
    -------
    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sf.write(f"{tmp}/a.wav", np.ones((8000, 2)) * 0.5, 16000)
    ...     read_segment(f"{tmp}/a.wav", 12000, random_offset=False).shape
    torch.Size([12000])
    """
    try:
        stop = sf.info(wav).frames if stop is None else int(stop)
        start = int(start)
        frames = stop - start
        if frames > num_samples:
            start += random.randint(0, frames - num_samples) if random_offset else 0
            frames = num_samples
        data, rate = sf.read(wav, start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as err:
        raise RuntimeError(f"Cannot read {wav} (manifest row {utt_id}): {err}") from err
    sig = torch.from_numpy(data[:, 0].copy())
    check_finite_audio(sig, source=f"{wav} (manifest row {utt_id})")
    if rate != SAMPLE_RATE:
        sig = torchaudio.functional.resample(sig, rate, SAMPLE_RATE)
    if sig.numel() == 0:
        raise ValueError(f"Empty audio in {wav} (manifest row {utt_id})")
    if sig.shape[0] < num_samples:
        sig = sig.repeat(num_samples // sig.shape[0] + 1)[:num_samples]
    return sig


def valid_frame_counts(lengths, num_frames):
    """Number of valid frames per utterance (SpeechBrain convention).

    Utterance ``b`` has ``round(lengths[b] * num_frames)`` valid frames,
    clamped to ``[1, num_frames]``.

    Arguments
    ---------
    lengths : torch.Tensor
        Relative lengths in (0, 1], shape ``[B]``.
    num_frames : int
        Padded number of frames ``T``.

    Returns
    -------
    torch.Tensor
        Integer counts, shape ``[B]`` (long).

    Example
    -------
    >>> valid_frame_counts(torch.tensor([1.0, 0.5, 0.01]), 4)
    tensor([4, 2, 1])
    """
    counts = torch.round(lengths.float() * num_frames).long()
    return counts.clamp(min=1, max=num_frames)
