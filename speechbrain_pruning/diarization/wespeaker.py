"""pyannote's WeSpeaker ResNet34 speaker embedder, without pyannote.audio.

DiariZen's pipeline embeds speakers with ``pyannote/wespeaker-voxceleb-resnet34-LM``
(a WeSpeaker ResNet34 with statistics pooling, 256-d embeddings) whose weights
are a pyannote/Lightning checkpoint, ``pytorch_model.bin``. This module
re-implements that model in plain PyTorch with the same submodule names (the
checkpoint's state dict loads with ``strict=True``) and the same Kaldi fbank
front-end, and reads the checkpoint without importing pyannote.audio.

Checkpoint format (pyannote.audio 3.x, ``Model.on_save_checkpoint`` plus
Lightning; also what pyannote's ``wespeaker/convert.py`` writes)::

    {
      "state_dict": {"resnet.conv1.weight": ..., "resnet.bn1.*": ...,
                     "resnet.layer{1..4}.{i}.{conv1,bn1,conv2,bn2}.*",
                     "resnet.layer{2,3,4}.0.shortcut.{0,1}.*",
                     "resnet.seg_1.weight" [256, 5120], "resnet.seg_1.bias" [256]},
      "pyannote.audio": {"versions": {"torch": ..., "pyannote.audio": ...},
                         "architecture": {"module": "pyannote.audio.models.embedding.wespeaker",
                                          "class": "WeSpeakerResNet34"},
                         "specifications": <pyannote.audio.core.task.Specifications>},
      "pytorch-lightning_version": ...,
      "hyper_parameters": {"sample_rate": 16000, "num_channels": 1, "num_mel_bins": 80,
                           "frame_length": 25, "frame_shift": 10, "dither": 0.0,
                           "window_type": "hamming", "use_energy": False},  # optional
    }

No fbank state is stored (pyannote's ``_fbank`` is a ``functools.partial``,
not a module). ``hyper_parameters`` is only present when Lightning's trainer
saved the file (``convert.py`` does not write it); missing entries take
pyannote's defaults above. ``specifications`` is a pyannote dataclass holding
two pyannote enums, and ``versions["torch"]`` is a ``TorchVersion``, so a
plain ``torch.load(weights_only=True)`` refuses the file and a full unpickle
needs pyannote installed. :func:`load_wespeaker` reads it with
``weights_only=True`` plus inert placeholder classes registered for
``pyannote.*`` globals only; no code from the file runs and
any other global is refused.

Example
-------
>>> model = WeSpeakerResNet34().eval()
>>> wavs = torch.randn(2, 16000) * 0.1
>>> model(wavs, torch.tensor([1.0, 0.6])).shape
torch.Size([2, 256])
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "pytorch_model.bin")
>>> from speechbrain_pruning.synthetic.models import write_random_wespeaker_checkpoint
>>> write_random_wespeaker_checkpoint(path, seed=0)
>>> embedder = WeSpeakerEmbedder.from_checkpoint(path)
>>> embedder.encode_batch(wavs, torch.tensor([1.0, 0.6])).shape
torch.Size([2, 1, 256])
"""

import pickle
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi

__all__ = ["WeSpeakerResNet34", "WeSpeakerEmbedder", "load_wespeaker",
           "read_wespeaker_checkpoint", "is_wespeaker_checkpoint",
           "DEFAULT_HPARAMS"]

#: pyannote's ``BaseWeSpeakerResNet`` defaults (the fbank front-end settings).
DEFAULT_HPARAMS = {"sample_rate": 16000, "num_channels": 1, "num_mel_bins": 80,
                   "frame_length": 25, "frame_shift": 10, "dither": 0.0,
                   "window_type": "hamming", "use_energy": False}

_ARCH_MODULE = "pyannote.audio.models.embedding.wespeaker"
_ARCH_CLASS = "WeSpeakerResNet34"


# --------------------------------------------------------------------- model
class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (WeSpeaker names).

    ``[B, in_planes, F, T] -> [B, planes, ceil(F / stride), ceil(T / stride)]``.
    """

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class TSTP(nn.Module):
    """Temporal statistics pooling: ``[B, C, F, T] -> [B, 2 C F]`` (mean, std).

    ``weights [B, T]`` (optional) gives pyannote's weighted mean and unbiased
    weighted standard deviation; without weights the plain unbiased std.
    """

    def forward(self, x, weights=None):
        x = x.flatten(1, 2)  # [B, C F, T], channel-major like einops "(dimension channel)"
        if weights is None:
            return torch.cat([x.mean(-1), x.std(-1, correction=1)], dim=-1)
        w = weights.to(x.dtype).unsqueeze(1)  # [B, 1, T]
        v1 = w.sum(-1) + 1e-8
        mean = (x * w).sum(-1) / v1
        v2 = w.square().sum(-1)
        var = ((x - mean.unsqueeze(-1)).square() * w).sum(-1) / (v1 - v2 / v1 + 1e-8)
        return torch.cat([mean, var.sqrt()], dim=-1)


class ResNet(nn.Module):
    """WeSpeaker ResNet (BasicBlock) with TSTP and one embedding layer.

    ``[B, T, feat_dim]`` fbank ``-> [B, embed_dim]``; parameter names match
    WeSpeaker/pyannote (``conv1``, ``bn1``, ``layer1..4``, ``seg_1``).
    """

    def __init__(self, num_blocks=(3, 4, 6, 3), m_channels=32, feat_dim=80, embed_dim=256):
        super().__init__()
        self.feat_dim, self.embed_dim = feat_dim, embed_dim
        self.conv1 = nn.Conv2d(1, m_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(m_channels)
        in_planes, layers = m_channels, []
        for i, n in enumerate(num_blocks):
            planes = m_channels * 2 ** i
            blocks = []
            for stride in [1 if i == 0 else 2] + [1] * (n - 1):
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = TSTP()
        self.stats_dim = int(feat_dim / 8) * m_channels * 8
        self.seg_1 = nn.Linear(self.stats_dim * 2, embed_dim)

    def forward(self, feats, weights=None):
        out = F.relu(self.bn1(self.conv1(feats.transpose(1, 2).unsqueeze(1))))  # [B,1,F,T]
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if weights is not None and weights.shape[-1] != out.shape[-1]:
            weights = F.interpolate(weights[:, None].float(), size=out.shape[-1],
                                    mode="nearest")[:, 0]
        return self.seg_1(self.pool(out, weights))


class WeSpeakerResNet34(nn.Module):
    """pyannote's ``WeSpeakerResNet34``: Kaldi fbank + ResNet34 + TSTP, 256-d.

    Per utterance: ``fbank(wav * 2**15)`` (``torchaudio.compliance.kaldi``,
    pyannote's settings), minus its mean over time, through the ResNet.
    Submodule names match pyannote's (``resnet.*``), so a pyannote state dict
    loads strictly.

    Arguments
    ---------
    sample_rate, num_mel_bins, frame_length, frame_shift, dither, window_type,
    use_energy : fbank settings (pyannote's ``hyper_parameters``).
    num_channels : int
        Kept for the checkpoint's hyper-parameters; only mono is supported.
    """

    def __init__(self, sample_rate=16000, num_channels=1, num_mel_bins=80, frame_length=25,
                 frame_shift=10, dither=0.0, window_type="hamming", use_energy=False):
        super().__init__()
        self.hparams = dict(sample_rate=sample_rate, num_channels=num_channels,
                            num_mel_bins=num_mel_bins, frame_length=frame_length,
                            frame_shift=frame_shift, dither=dither, window_type=window_type,
                            use_energy=use_energy)
        self.sample_rate = int(sample_rate)
        self.resnet = ResNet((3, 4, 6, 3), feat_dim=num_mel_bins, embed_dim=256)
        self.window_samples = int(sample_rate * frame_length * 0.001)
        self.hop_samples = int(sample_rate * frame_shift * 0.001)
        # >= 9 fbank frames -> >= 2 pooled frames (a finite unbiased std)
        self.min_samples = self.window_samples + 8 * self.hop_samples

    @property
    def dimension(self):
        """Embedding size (256)."""
        return self.resnet.embed_dim

    def num_frames(self, num_samples):
        """Frames entering the pooling for ``num_samples`` samples (after padding)."""
        n = max(int(num_samples), self.min_samples)
        t = 1 + (n - self.window_samples) // self.hop_samples
        for _ in range(3):  # three stride-2 stages
            t = (t - 1) // 2 + 1
        return t

    def compute_fbank(self, wav):
        """``[S] -> [T, num_mel_bins]`` mean-normalised Kaldi fbank of one utterance."""
        h = self.hparams
        feats = kaldi.fbank((wav * (1 << 15))[None], num_mel_bins=h["num_mel_bins"],
                            frame_length=h["frame_length"], frame_shift=h["frame_shift"],
                            dither=h["dither"], sample_frequency=h["sample_rate"],
                            window_type=h["window_type"], use_energy=h["use_energy"])
        return feats - feats.mean(dim=0, keepdim=True)

    def forward(self, wavs, wav_lens=None, weights=None):
        """Speaker embeddings.

        Arguments
        ---------
        wavs : torch.Tensor
            ``[B, S]`` (or ``[B, 1, S]``) waveforms in [-1, 1] at ``sample_rate``.
        wav_lens : torch.Tensor, optional
            ``[B]`` relative lengths: item ``b`` uses its first
            ``round(wav_lens[b] * S)`` samples only, exactly as if embedded
            alone. Valid parts shorter than ``min_samples`` are zero-padded to it.
        weights : torch.Tensor, optional
            ``[B, T]`` frame weights of the pooling (pyannote's ``weights``;
            nearest-interpolated to the pooled frames); needs equal lengths.

        Returns
        -------
        torch.Tensor
            ``[B, 256]`` embeddings (not normalised).
        """
        if wavs.dim() == 3:
            if wavs.shape[1] != 1:
                raise ValueError(f"expected mono [B, 1, S] audio, got shape {tuple(wavs.shape)}")
            wavs = wavs[:, 0]
        if wavs.dim() != 2:
            raise ValueError(f"expected [B, S] audio, got shape {tuple(wavs.shape)}")
        B, S = wavs.shape
        if wav_lens is None:
            lengths = [S] * B
        else:
            lengths = (wav_lens.detach().float().cpu() * S).round().long().clamp(1, S).tolist()
        if weights is not None and len(set(lengths)) > 1:
            raise ValueError("weights need utterances of equal length (no wav_lens padding)")
        out = wavs.new_zeros(B, self.dimension, dtype=torch.float32)
        for length in sorted(set(lengths)):  # equal lengths batch exactly
            idx = [b for b in range(B) if lengths[b] == length]
            part = wavs[idx, :length].float()
            if length < self.min_samples:
                part = F.pad(part, (0, self.min_samples - length))
            feats = torch.stack([self.compute_fbank(w) for w in part])
            w = None if weights is None else weights[idx].to(feats.device)
            out[idx] = self.resnet(feats, w).float()
        return out


# ------------------------------------------------------------- checkpoint I/O
class _Placeholder:
    """Inert stand-in for a pyannote object in a checkpoint (keeps its data)."""

    _pickled_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __repr__(self):
        return f"<placeholder {self._pickled_name} {self.args or self.__dict__}>"


_KNOWN_GLOBALS = ("torch.torch_version.TorchVersion",
                  "pyannote.audio.core.task.Specifications",
                  "pyannote.audio.core.task.Problem",
                  "pyannote.audio.core.task.Resolution",
                  "pyannote.audio.core.model.Introspection")


_TORCH_VERSION = "torch.torch_version.TorchVersion"  # torch.__version__, a str subclass


def _placeholder_for(name):
    if name == _TORCH_VERSION:
        from torch.torch_version import TorchVersion

        return TorchVersion
    return (type(name.rpartition(".")[2], (_Placeholder,), {"_pickled_name": name}), name)


def _replaceable(name):
    return name.startswith("pyannote.") or name == _TORCH_VERSION


def read_wespeaker_checkpoint(path):
    """The checkpoint dict of a pyannote WeSpeaker ``pytorch_model.bin``.

    Loaded with ``torch.load(weights_only=True)`` on CPU; pyannote objects
    (``Specifications``, enums, any other ``pyannote.*`` class) become inert
    placeholders (no code from the file runs); ``torch.__version__`` (a
    ``TorchVersion``) is allowed. Raises ``ValueError`` naming ``path`` for a
    file that is not a torch checkpoint, has no ``state_dict``, or pickles any
    other global (the file is then refused, never loaded unsafely).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    names = list(_KNOWN_GLOBALS)
    for attempt in range(2):
        try:
            with torch.serialization.safe_globals([_placeholder_for(n) for n in names]):
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
            break
        except pickle.UnpicklingError as err:
            if attempt:
                raise ValueError(f"{path}: cannot read as a pyannote checkpoint: {err}") from None
            try:
                found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            except Exception:
                raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from None
            refused = sorted(n for n in found if not _replaceable(n))
            if refused:
                raise ValueError(f"{path}: refusing to load; the checkpoint pickles globals "
                                 f"other than pyannote ones: {refused}") from None
            names = sorted(set(names) | set(found))
        except (RuntimeError, EOFError, OSError) as err:
            raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: not a pyannote checkpoint (no 'state_dict'; found {keys})")
    return ckpt


def is_wespeaker_checkpoint(path):
    """True when ``path`` is a pyannote checkpoint of a WeSpeaker ResNet34."""
    try:
        ckpt = read_wespeaker_checkpoint(path)
    except (ValueError, FileNotFoundError):
        return False
    arch = (ckpt.get("pyannote.audio") or {}).get("architecture") or {}
    if arch.get("class") not in (None, _ARCH_CLASS):
        return False
    return any(k.startswith("resnet.") for k in ckpt["state_dict"])


def load_wespeaker(path, device="cpu"):
    """A :class:`WeSpeakerResNet34` (eval mode) from a pyannote ``pytorch_model.bin``.

    Builds the model from the checkpoint's ``hyper_parameters`` (pyannote's
    defaults for missing ones) and loads ``state_dict`` strictly (a common
    ``model.`` / ``module.`` wrapper prefix is removed first).
    """
    ckpt = read_wespeaker_checkpoint(path)
    arch = (ckpt.get("pyannote.audio") or {}).get("architecture") or {}
    if arch.get("class") not in (None, _ARCH_CLASS):
        raise ValueError(f"{path}: a pyannote {arch.get('module')}.{arch.get('class')} "
                         f"checkpoint; only {_ARCH_CLASS} is supported")
    hparams = dict(DEFAULT_HPARAMS)
    unknown = []
    for key, value in dict(ckpt.get("hyper_parameters") or {}).items():
        if key in hparams:
            hparams[key] = value
        elif key not in ("task", "hparams_name"):
            unknown.append(key)
    if unknown:
        raise ValueError(f"{path}: unknown hyper_parameters {sorted(unknown)}")
    if int(hparams["num_channels"]) != 1:
        raise ValueError(f"{path}: num_channels={hparams['num_channels']}; only mono is supported")
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path}: 'state_dict' is not a dict of tensors")
    for prefix in ("model.", "module."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    model = WeSpeakerResNet34(**hparams)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: state_dict does not fit {_ARCH_CLASS}: {err}") from None
    return model.to(device).eval()


class WeSpeakerEmbedder:
    """Crop embedder of the diarization pipeline around :class:`WeSpeakerResNet34`.

    ``encode_batch(wavs [B, S], wav_lens [B]) -> [B, 1, 256]`` like
    SpeechBrain's ``EncoderClassifier``, so
    :func:`~speechbrain_pruning.diarization.embedders.wrap_embedder` turns it
    into a :class:`~speechbrain_pruning.diarization.embedders.CropEmbedder`.
    """

    def __init__(self, model, device="cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.sample_rate = model.sample_rate
        self.embedding_dim = model.dimension

    @classmethod
    def from_checkpoint(cls, path, device="cpu"):
        """The embedder of a pyannote WeSpeaker checkpoint file (:func:`load_wespeaker`)."""
        return cls(load_wespeaker(path, device), device)

    @torch.inference_mode()
    def encode_batch(self, wavs, wav_lens=None):
        """``[B, 1, 256]`` embeddings of ``wavs [B, S]`` (relative ``wav_lens [B]``)."""
        if wavs.dim() == 1:
            wavs = wavs[None]
        if wav_lens is not None:
            wav_lens = wav_lens.to(self.device)
        return self.model(wavs.to(self.device).float(), wav_lens).unsqueeze(1)
