"""Small shared pieces used across the library: module unwrapping, audio checks.

Only torch is imported here, so every part of the package can use these.
"""

import torch

__all__ = ["unwrap_module", "pcm_to_float", "check_finite_audio", "check_relative_lengths"]

# Integer PCM -> float, exactly as libsndfile (soundfile) reads such files:
# signed samples are divided by 2 ** (bits - 1); unsigned 8-bit is offset first.
_PCM_SCALE = {torch.int8: 2.0 ** 7, torch.int16: 2.0 ** 15, torch.int32: 2.0 ** 31}


def unwrap_module(module):
    """The module inside (nested) ``DistributedDataParallel`` / ``DataParallel`` wrappers.

    Example
    -------
    >>> net = torch.nn.Linear(2, 2)
    >>> unwrap_module(torch.nn.DataParallel(net)) is net
    True
    >>> unwrap_module(net) is net
    True
    """
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    while isinstance(module, wrappers):
        module = module.module
    return module


def pcm_to_float(wavs):
    """Integer PCM -> float32 in [-1, 1), scaled as reading the file would be.

    ``int16`` samples are divided by 32768, ``int32`` by 2**31, ``int8`` by
    128; ``uint8`` (WAV's 8-bit PCM) is centred on 128 first. Floating-point
    input is returned as float32 unchanged in value.

    Example
    -------
    >>> pcm_to_float(torch.tensor([-32768, 0, 16384], dtype=torch.int16))
    tensor([-1.0000,  0.0000,  0.5000])
    >>> pcm_to_float(torch.tensor([0, 128, 192], dtype=torch.uint8))
    tensor([-1.0000,  0.0000,  0.5000])
    """
    if not torch.is_tensor(wavs):
        raise TypeError(f"expected a torch.Tensor waveform, got {type(wavs).__name__}")
    if wavs.is_floating_point():
        return wavs.float()
    if wavs.dtype == torch.uint8:
        return (wavs.float() - 128.0) / 128.0
    if wavs.dtype in _PCM_SCALE:
        return wavs.float() / _PCM_SCALE[wavs.dtype]
    raise TypeError(
        f"unsupported waveform dtype {wavs.dtype}: give float audio in [-1, 1] or "
        "integer PCM (int8, uint8, int16, int32)"
    )


def check_finite_audio(wavs, source=None):
    """Raise ``ValueError`` if ``wavs`` holds NaN or Inf samples.

    Arguments
    ---------
    wavs : torch.Tensor
        ``[S]`` or ``[B, S]`` (or any shape whose first axis is the batch).
    source : str or list of str, optional
        What the audio is (a file path, or one name per batch item), used in
        the error; default: the batch index.

    Example
    -------
    >>> check_finite_audio(torch.zeros(2, 4))
    >>> check_finite_audio(torch.tensor([[0.0, float("nan")]]))
    Traceback (most recent call last):
    ...
    ValueError: Audio of batch item 0 contains 1 NaN/Inf sample(s) (first at sample 1)
    """
    finite = torch.isfinite(wavs)
    if bool(finite.all()):
        return
    bad = ~finite.reshape(wavs.shape[0], -1) if wavs.dim() > 1 else ~finite.reshape(1, -1)
    index = int(bad.any(1).nonzero()[0, 0])
    first = int(bad[index].nonzero()[0, 0])
    if source is None:
        what = f"batch item {index}" if wavs.dim() > 1 else "the waveform"
    elif isinstance(source, (list, tuple)):
        what = str(source[index])
    else:
        what = str(source)
    raise ValueError(
        f"Audio of {what} contains {int(bad[index].sum())} NaN/Inf sample(s) "
        f"(first at sample {first})"
    )


def check_relative_lengths(wav_lens, batch_size):
    """Validate SpeechBrain relative lengths: shape ``[B]``, every value in (0, 1].

    Returns them as a float tensor. Errors name the offending batch item.

    Example
    -------
    >>> check_relative_lengths(torch.tensor([1.0, 0.5]), 2)
    tensor([1.0000, 0.5000])
    >>> check_relative_lengths(torch.tensor([1.0, 1.5]), 2)
    Traceback (most recent call last):
    ...
    ValueError: wav_lens must be relative lengths in (0, 1]; batch item 1 has 1.5
    """
    wav_lens = torch.as_tensor(wav_lens, dtype=torch.float32)
    if wav_lens.shape != (batch_size,):
        raise ValueError(f"wav_lens must have shape [{batch_size}], got {tuple(wav_lens.shape)}")
    bad = ~((wav_lens > 0) & (wav_lens <= 1))  # NaN counts as bad
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"wav_lens must be relative lengths in (0, 1]; batch item {index} has "
            f"{float(wav_lens[index]):g}"
        )
    return wav_lens
