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
    A file at another rate than ``sample_rate`` is resampled block by block:
    each block is read with a margin of :attr:`RESAMPLE_MARGIN` input samples
    on both sides, starting on a sample where the input and output grids
    coincide, and resampled with ``torchaudio.functional.resample``; the
    result equals resampling the whole file (to float rounding, tested), at
    the cost of resampling the overlaps of consecutive reads again.

    Arguments
    ---------
    audio : str, os.PathLike, numpy.ndarray, torch.Tensor or dict
        A path (read lazily with soundfile), a waveform ``[S]`` / ``[1, S]``
        at ``sample_rate``, or ``{"waveform": [C, S] or [S], "sample_rate":
        int}`` (pyannote's in-memory input; channels averaged, resampled).
    sample_rate : int
        Rate of the samples returned by :meth:`read`.

    Example
    -------
    >>> src = AudioSource(np.arange(5.0), 16000)
    >>> src.num_samples, src.read(3, 7).tolist()
    (5, [3.0, 4.0, 0.0, 0.0])
    >>> AudioSource({"waveform": torch.ones(2, 8000), "sample_rate": 8000}).num_samples
    16000
    """

    RESAMPLE_MARGIN = 128

    def __init__(self, audio, sample_rate=16000):
        self.sample_rate = sample_rate
        self.path = None
        self._file = None
        self._ratio = None
        if isinstance(audio, dict):
            audio = _waveform_dict(audio, sample_rate)
        if isinstance(audio, (str, os.PathLike)):
            self.path = os.fspath(audio)
            try:
                info = sf.info(self.path)
            except Exception as err:
                raise RuntimeError(f"Cannot read audio file {self.path}: {err}") from err
            self.file_rate = int(info.samplerate)
            self.file_frames = int(info.frames)
            if self.file_rate != sample_rate:
                g = np.gcd(self.file_rate, sample_rate)
                self._ratio = (sample_rate // g, self.file_rate // g)  # (up, down)
                up, down = self._ratio
                self.num_samples = -(-self.file_frames * up // down)
            else:
                self.num_samples = self.file_frames
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
        elif self._ratio is None:
            data = self._read_file(start, end)
            out[: data.shape[0]] = data
        else:
            out[: end - start] = self._read_resampled(start, end)
        return out

    def _read_file(self, start, stop):
        """File frames ``[start, stop)`` (clipped to the file), mono float32."""
        start, stop = max(0, start), min(stop, self.file_frames)
        if stop <= start:
            return np.zeros(0, dtype=np.float32)
        handle = self._file if self._file is not None else sf.SoundFile(self.path)
        try:
            handle.seek(start)
            data = handle.read(stop - start, dtype="float32", always_2d=True).mean(axis=1)
        finally:
            if handle is not self._file:
                handle.close()
        if not np.isfinite(data).all():
            first = start + int(np.flatnonzero(~np.isfinite(data))[0])
            raise ValueError(f"{self.path}: NaN/Inf audio sample at sample {first} "
                             f"({first / (self.file_rate if self._ratio else self.sample_rate):.2f} s)")
        return data

    def _read_resampled(self, start, stop):
        """Output samples ``[start, stop)`` resampled from an aligned, padded input block."""
        up, down = self._ratio
        margin = -(-self.RESAMPLE_MARGIN // down)  # in grid units (down input samples)
        first_unit = start // up - margin
        last_unit = -(-stop // up) + margin
        in_start, in_stop = first_unit * down, last_unit * down
        block = np.zeros(in_stop - in_start, dtype=np.float32)
        data = self._read_file(in_start, in_stop)
        offset = max(0, -in_start)
        block[offset: offset + data.shape[0]] = data
        res = torchaudio.functional.resample(torch.from_numpy(block), self.file_rate,
                                             self.sample_rate).numpy()
        first = start - first_unit * up
        return res[first: first + stop - start]


def _waveform_dict(audio, sample_rate):
    """``{"waveform", "sample_rate"}`` -> mono float ``[S]`` tensor at ``sample_rate``."""
    try:
        wav, rate = audio["waveform"], int(audio["sample_rate"])
    except KeyError as err:
        raise ValueError(f"audio dict needs 'waveform' and 'sample_rate' keys, has {sorted(audio)}") \
            from err
    wav = torch.as_tensor(wav)
    if not wav.is_floating_point():
        wav = pcm_to_float(wav)
    if wav.dim() == 2:
        wav = wav.float().mean(dim=0)
    if wav.dim() != 1:
        raise ValueError(f"waveform must be [C, S] or [S], got shape {tuple(wav.shape)}")
    check_finite_audio(wav, source="waveform")
    if rate != sample_rate:
        wav = torchaudio.functional.resample(wav.float(), rate, sample_rate)
    return wav


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
