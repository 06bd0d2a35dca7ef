"""Randomly initialised checkpoints in their real formats, for demos and tests.

WavLM in Hugging Face format, a tiny exported speaker model, and pyannote's
WeSpeaker ResNet34 ``pytorch_model.bin`` (DiariZen's speaker model).

Nothing is downloaded: ``transformers.WavLMModel`` is built from a config with
random weights and saved with ``save_pretrained``.
"""

import enum
import pickle
import types
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

__all__ = ["TINY_WAVLM", "write_tiny_wavlm", "write_random_hf_wavlm", "write_tiny_speaker_model"]


def write_random_hf_wavlm(folder, hidden_size, num_layers, heads, ffn, seed=0):
    """A random ``transformers.WavLMModel`` saved to ``folder`` (Base+ front-end)."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.WavLMConfig(
        hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=heads,
        intermediate_size=ffn, conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embedding_groups=16, mask_time_prob=0.0, layerdrop=0.0,
    )
    transformers.WavLMModel(config).save_pretrained(str(folder))


#: The small WavLM of the recipes' CPU demos (tiny_cpu.yaml): Base+ layout, 4 layers of 128.
TINY_WAVLM = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=512, conv_dim=(128,) * 7,
                  conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
                  num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=8,
                  mask_time_prob=0.0, layerdrop=0.0)


def write_tiny_wavlm(folder, seed=0):
    """A random small WavLM (``TINY_WAVLM``) saved in Hugging Face format."""
    import transformers

    torch.manual_seed(seed)
    transformers.WavLMModel(transformers.WavLMConfig(**TINY_WAVLM)).save_pretrained(str(folder))
    return folder


def write_tiny_speaker_model(folder, seed=0):
    """A random small exported ``PrunedSpeakerRecognition`` (tiny WavLM + MHFA).

    The stand-in of the VoxCeleb recipe's exported model in demos and tests
    (e.g. the diarizer's speaker embedder). Returns ``folder``.

    Example
    -------
    >>> import tempfile
    >>> from speechbrain_pruning.pretrained import interface_class_of
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     interface_class_of(write_tiny_speaker_model(f"{tmp}/spk"))
    'speechbrain_pruning.inference.PrunedSpeakerRecognition'
    """
    import tempfile
    from pathlib import Path

    from ..pruning.export import export_model
    from ..speaker.mhfa import MHFA
    from ..wavlm import PrunableWavLM

    folder = Path(folder)
    kwargs = dict(num_layers=TINY_WAVLM["num_hidden_layers"] + 1,
                  feat_dim=TINY_WAVLM["hidden_size"], num_heads=4, compression_dim=32,
                  embed_dim=64)
    with tempfile.TemporaryDirectory() as tmp:
        write_tiny_wavlm(Path(tmp) / "wavlm", seed=seed)
        wavlm = PrunableWavLM.from_pretrained(Path(tmp) / "wavlm")
        torch.manual_seed(seed + 1)
        backend = MHFA(**kwargs)
        export_model(folder, wavlm, {"backend": backend},
                     {"backend": ("speechbrain_pruning.speaker.MHFA", kwargs)},
                     "PrunedSpeakerRecognition", hparams={"threshold": 0.5},
                     title="Random tiny speaker model (tests and demos)")
    return folder


# ------------------------------- pyannote WeSpeaker ResNet34 checkpoints (random weights)
class _Problem(enum.Enum):  # mirrors pyannote.audio.core.task.Problem
    BINARY_CLASSIFICATION = 0
    MONO_LABEL_CLASSIFICATION = 1
    MULTI_LABEL_CLASSIFICATION = 2
    REPRESENTATION = 3
    REGRESSION = 4


class _Resolution(enum.Enum):  # mirrors pyannote.audio.core.task.Resolution
    FRAME = 1
    CHUNK = 2


@dataclass
class _Specifications:  # mirrors pyannote.audio.core.task.Specifications
    problem: _Problem
    resolution: _Resolution
    duration: float
    min_duration: Optional[float] = None
    warm_up: Optional[Tuple[float, float]] = (0.0, 0.0)
    classes: Optional[list] = None
    powerset_max_classes: Optional[int] = None
    permutation_invariant: bool = False


_PICKLE_AS = {_Problem: "pyannote.audio.core.task\nProblem",
              _Resolution: "pyannote.audio.core.task\nResolution",
              _Specifications: "pyannote.audio.core.task\nSpecifications"}


class _PyannotePickler(pickle._Pickler):
    """Pure-Python pickler writing the mirror classes under pyannote's names."""

    def save_global(self, obj, name=None):
        if obj in _PICKLE_AS:
            self.write(pickle.GLOBAL + f"{_PICKLE_AS[obj]}\n".encode())
            self.memoize(obj)
        else:
            super().save_global(obj, name)


_pyannote_pickle = types.ModuleType("pyannote_pickle")
_pyannote_pickle.Pickler = _PyannotePickler


def write_random_wespeaker_checkpoint(path, seed=0, hyper_parameters=True, **hparams):
    """Write a random-weight checkpoint in pyannote's ``pytorch_model.bin`` format.

    Same dict layout, state-dict keys and pickled pyannote classes
    (``pyannote.audio.core.task.Specifications`` / ``Problem`` /
    ``Resolution``) as pyannote.audio 3.x; ``hyper_parameters=False`` omits
    Lightning's hyper-parameters (like pyannote's ``convert.py``).
    ``hparams`` override the fbank settings. The global RNG is untouched.
    """
    from ..diarization.wespeaker import (_ARCH_CLASS, _ARCH_MODULE, DEFAULT_HPARAMS,
                                         WeSpeakerResNet34)

    gen = torch.Generator().manual_seed(int(seed))
    full = dict(DEFAULT_HPARAMS, **hparams)
    model = WeSpeakerResNet34(**full)
    state = OrderedDict()
    for name, tensor in model.state_dict().items():
        shape = tensor.shape
        if name.endswith("num_batches_tracked"):
            value = torch.randint(1, 10000, (), generator=gen)
        elif name.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=gen)
        elif name.endswith("running_mean") or name.endswith("bias"):
            value = 0.1 * torch.randn(shape, generator=gen)
        elif tensor.dim() == 1:  # batch-norm scale, small enough for O(1) outputs
            value = 0.2 + 0.4 * torch.rand(shape, generator=gen)
        else:  # conv / linear weights, He-like scale
            fan_in = tensor[0].numel()
            value = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
        state[name] = value.to(tensor.dtype)
    ckpt = {
        "state_dict": state,
        "pyannote.audio": {
            "versions": {"torch": torch.__version__, "pyannote.audio": "3.1.0"},
            "architecture": {"module": _ARCH_MODULE, "class": _ARCH_CLASS},
            "specifications": _Specifications(problem=_Problem.REPRESENTATION,
                                              resolution=_Resolution.CHUNK, duration=5.0),
        },
        "pytorch-lightning_version": "2.1.3",
    }
    if hyper_parameters:
        ckpt["hyper_parameters"] = full
    torch.save(ckpt, str(path), pickle_module=_pyannote_pickle)
