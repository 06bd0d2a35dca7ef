"""Randomly initialised WavLM checkpoints in Hugging Face format, for demos and tests.

Nothing is downloaded: ``transformers.WavLMModel`` is built from a config with
random weights and saved with ``save_pretrained``.
"""

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
