"""Small shared pieces every part of the library uses; only torch is imported.

* the valid-frame rule of padded batches (:func:`valid_frame_counts`,
  :func:`valid_frame_mask`, :func:`length_mask`), the one place it is written;
* the softmax-weighted sum over encoder layers and the input check / gradient
  scaling of back-ends (:func:`weighted_layer_sum`, :func:`prepare_hidden`,
  :class:`GradMultiply`);
* DDP unwrapping, audio and length checks, integer-PCM scaling.
"""

import torch

__all__ = ["valid_frame_counts", "valid_frame_mask", "length_mask", "weighted_layer_sum",
           "prepare_hidden", "GradMultiply", "unwrap_module", "pcm_to_float",
           "check_finite_audio", "check_relative_lengths"]


def valid_frame_counts(lengths, num_frames):
    """Number of valid frames per utterance (SpeechBrain convention).

    Utterance ``b`` has ``round(lengths[b] * num_frames)`` valid frames,
    clamped to ``[1, num_frames]``. Give WavLM frame-axis lengths
    (:meth:`PrunableWavLM.frame_relative_lengths`) to get its exact counts.

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
    counts = torch.round(torch.as_tensor(lengths).float() * num_frames).long()
    return counts.clamp(min=1, max=num_frames)


def length_mask(counts, max_len):
    """Boolean ``[B, max_len]`` mask, True on the first ``counts[b]`` positions.

    Example
    -------
    >>> length_mask(torch.tensor([2, 0]), 3)
    tensor([[ True,  True, False],
            [False, False, False]])
    """
    return torch.arange(max_len, device=counts.device)[None, :] < counts[:, None]


def valid_frame_mask(lengths, num_frames, device=None):
    """Boolean ``[B, T]`` mask of valid frames (:func:`valid_frame_counts`); None for None.

    Example
    -------
    >>> valid_frame_mask(torch.tensor([1.0, 0.5]), 4)
    tensor([[ True,  True,  True,  True],
            [ True,  True, False, False]])
    """
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=device)
    return length_mask(valid_frame_counts(lengths, num_frames), num_frames)


def weighted_layer_sum(hidden, logits):
    """``sum_l softmax(logits)_l * hidden[l]``: ``[L, B, T, D]`` -> ``[B, T, D]``.

    Example
    -------
    >>> hidden = torch.stack([torch.zeros(1, 2, 3), torch.ones(1, 2, 3)])
    >>> weighted_layer_sum(hidden, torch.zeros(2))[0, 0]
    tensor([0.5000, 0.5000, 0.5000])
    """
    weights = torch.softmax(logits, dim=-1).to(hidden.dtype)
    return torch.tensordot(weights, hidden, dims=([0], [0]))  # no [L, B, T, D] temporary


class GradMultiply(torch.autograd.Function):
    """Identity in the forward pass, gradient multiplied by ``scale`` backwards.

    Used to slow down (``scale < 1``) the fine-tuning of the encoder feeding
    a back-end, as in fairseq / the MHFA recipes.

    Example
    -------
    >>> x = torch.ones(3, requires_grad=True)
    >>> GradMultiply.apply(x, 0.1).sum().backward()
    >>> x.grad
    tensor([0.1000, 0.1000, 0.1000])
    """

    @staticmethod
    def forward(ctx, x, scale):
        """Return ``x`` unchanged (as a view), remembering ``scale``."""
        ctx.scale = float(scale)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        """Scale the incoming gradient; ``scale`` itself gets no gradient."""
        return grad * ctx.scale, None


def prepare_hidden(hidden, num_layers, feat_dim, feature_grad_mult, name):
    """Check ``hidden [L+1, B, T, D]`` against a back-end's sizes; scale its gradient.

    Raises ``ValueError`` naming the back-end, the expected and the actual
    shape; applies :class:`GradMultiply` when ``feature_grad_mult != 1``.

    Example
    -------
    >>> prepare_hidden(torch.zeros(3, 1, 5, 8), 4, 8, 1.0, "MHFA")
    Traceback (most recent call last):
    ...
    ValueError: MHFA expects hidden states [4, B, T, 8], got (3, 1, 5, 8)
    """
    if hidden.dim() != 4 or hidden.shape[0] != num_layers or hidden.shape[-1] != feat_dim:
        raise ValueError(
            f"{name} expects hidden states [{num_layers}, B, T, {feat_dim}], "
            f"got {tuple(hidden.shape)}"
        )
    if feature_grad_mult != 1.0:
        hidden = GradMultiply.apply(hidden, feature_grad_mult)
    return hidden



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
