"""Audio reading: one reader for files, crops, streams and batches of files.

Every path reads through :func:`read_audio` (soundfile): mono float32 at
16 kHz (the first channel of multi-channel files; other rates resampled with
torchaudio), NaN/Inf samples rejected, errors naming the file.
:class:`AudioSource` streams long recordings block by block (diarization);
:func:`read_segment` crops training examples; :func:`embed_files` runs a model
over many files in length-sorted batches.
"""

import os
import random

import numpy as np
import soundfile as sf
import torch
import torchaudio
from tqdm.auto import tqdm

from .nn import check_finite_audio, pcm_to_float
from .wavlm.config import SAMPLE_RATE

__all__ = ["SAMPLE_RATE", "read_audio", "load_audio_file", "read_segment", "AudioSource", "as_numpy",
           "embed_files"]


def read_audio(path, start=0, stop=None, sample_rate=SAMPLE_RATE, name=None):
    """Samples ``[start, stop)`` (file frames) of ``path`` as mono float32 ``[S]``.

    The first channel of multi-channel files is taken; other rates are
    resampled to ``sample_rate``. Errors (unreadable, empty, NaN/Inf samples)
    name the file (or ``name``).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sf.write(f"{tmp}/a.wav", np.ones((8000, 2)) * 0.5, 8000)
    ...     read_audio(f"{tmp}/a.wav", 0, 4000).shape
    torch.Size([8000])
    """
    name = str(path) if name is None else name
    try:
        frames = -1 if stop is None else int(stop) - int(start)
        data, rate = sf.read(str(path), start=int(start), frames=frames, dtype="float32",
                             always_2d=True)
    except Exception as err:
        raise RuntimeError(f"Cannot read audio file {name}: {err}") from err
    if data.shape[0] == 0:
        raise ValueError(f"Audio file {name} is empty")
    wav = torch.from_numpy(data[:, 0].copy())
    check_finite_audio(wav, source=name)
    if rate != sample_rate:
        wav = torchaudio.functional.resample(wav, rate, sample_rate)
    return wav


def load_audio_file(path, sample_rate=SAMPLE_RATE):
    """The whole of ``path`` as a mono float tensor ``[S]`` (see :func:`read_audio`)."""
    return read_audio(path, sample_rate=sample_rate)


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
    what = f"{wav} (manifest row {utt_id})"
    try:
        stop = sf.info(wav).frames if stop is None else int(stop)
    except Exception as err:
        raise RuntimeError(f"Cannot read {what}: {err}") from err
    start = int(start)
    if stop - start > num_samples and random_offset:
        start += random.randint(0, stop - start - num_samples)
    sig = read_audio(wav, start, min(stop, start + num_samples), name=what)
    if sig.shape[0] < num_samples:
        sig = sig.repeat(num_samples // sig.shape[0] + 1)[:num_samples]
    return sig



def as_numpy(x, dtype=np.float32):
    """numpy array of a tensor / array-like."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=dtype)


class AudioSource:
    """Random access to mono audio held in memory or read from a file (streamed).

    Blocks of a file are read with ``soundfile.SoundFile.seek`` / ``read``
    (multi-channel files are averaged to mono), so memory does not grow with
    the recording; integer PCM tensors are scaled as reading a file would.

    Arguments
    ---------
    audio : str, os.PathLike, numpy.ndarray or torch.Tensor
        A path (read lazily with soundfile) or a waveform ``[S]`` / ``[1, S]``.
    sample_rate : int
        Expected sample rate; a file at another rate raises ``ValueError``.

    Example
    -------
    >>> src = AudioSource(np.arange(5.0), 16000)
    >>> src.num_samples, src.read(3, 7).tolist()
    (5, [3.0, 4.0, 0.0, 0.0])
    """

    def __init__(self, audio, sample_rate=16000):
        self.sample_rate = sample_rate
        self.path = None
        self._file = None
        if isinstance(audio, (str, os.PathLike)):
            self.path = os.fspath(audio)
            info = sf.info(self.path)
            if info.samplerate != sample_rate:
                raise ValueError(
                    f"{self.path}: sample rate {info.samplerate} != {sample_rate}; resample first"
                )
            self.num_samples = int(info.frames)
            self._wav = None
        else:
            if isinstance(audio, torch.Tensor) and not audio.is_floating_point():
                audio = pcm_to_float(audio)  # integer PCM, scaled as a file read would be
            wav = as_numpy(audio)
            if wav.ndim == 2 and wav.shape[0] == 1:
                wav = wav[0]
            if wav.ndim != 1:
                raise ValueError(f"audio must be [S] or [1, S], got shape {wav.shape}")
            if not np.isfinite(wav).all():
                bad = np.flatnonzero(~np.isfinite(wav))
                raise ValueError(f"Audio contains {bad.size} NaN/Inf sample(s) "
                                 f"(first at sample {bad[0]})")
            self._wav = wav
            self.num_samples = int(wav.shape[0])

    def __enter__(self):
        if self.path is not None:
            self._file = sf.SoundFile(self.path)
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, start, stop):
        """Samples ``[start, stop)`` as float32 ``[stop - start]``, zero padded past the end."""
        out = np.zeros(stop - start, dtype=np.float32)
        end = min(stop, self.num_samples)
        if end <= start:
            return out
        if self._wav is not None:
            out[: end - start] = self._wav[start:end]
        else:
            handle = self._file if self._file is not None else sf.SoundFile(self.path)
            try:
                handle.seek(start)
                data = handle.read(end - start, dtype="float32", always_2d=True)
            finally:
                if handle is not self._file:
                    handle.close()
            out[: data.shape[0]] = data.mean(axis=1)
            if not np.isfinite(out).all():
                first = start + int(np.flatnonzero(~np.isfinite(out))[0])
                raise ValueError(f"{self.path}: NaN/Inf audio sample at sample {first} "
                                 f"({first / self.sample_rate:.2f} s)")
        return out




@torch.no_grad()
def embed_files(encode, files, batch_size=4, max_seconds=None, progress=True, desc="embedding"):
    """Run ``encode`` over audio files in length-sorted, padded batches.

    Arguments
    ---------
    encode : callable
        ``encode(wavs [B, S], wav_lens [B]) -> [B, ...]`` (embeddings, scores).
    files : dict
        id -> audio path.
    batch_size : int
        Files per batch (grouped by length to limit padding).
    max_seconds : float, optional
        Crop longer files to their first ``max_seconds``.

    Returns
    -------
    dict
        id -> ``encode``'s output row, flattened (CPU, float32).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for i, n in enumerate((800, 1600)):
    ...         sf.write(f"{tmp}/{i}.wav", np.ones(n) * 0.5, 16000)
    ...     out = embed_files(lambda w, l: l[:, None], {"a": f"{tmp}/0.wav",
    ...                       "b": f"{tmp}/1.wav"}, progress=False)
    >>> out["a"], out["b"]
    (tensor([0.5000]), tensor([1.]))
    """
    waves = {}
    for key, path in tqdm(files.items(), desc="reading audio", disable=not progress,
                          leave=False):
        wav = load_audio_file(path)
        waves[key] = wav[: int(max_seconds * SAMPLE_RATE)] if max_seconds else wav
    order = sorted(waves, key=lambda k: waves[k].shape[0])
    out = {}
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
        keys = order[start:start + batch_size]
        lengths = torch.tensor([waves[k].shape[0] for k in keys])
        longest = int(lengths.max())
        batch = torch.zeros(len(keys), longest)
        for row, key in enumerate(keys):
            batch[row, : lengths[row]] = waves[key]
        result = encode(batch, lengths / longest).reshape(len(keys), -1).float().cpu()
        for row, key in enumerate(keys):
            out[key] = result[row]
    return out
