"""Randomly initialised WavLM checkpoints in Hugging Face format, for demos and tests.

Nothing is downloaded: ``transformers.WavLMModel`` is built from a config with
random weights and saved with ``save_pretrained``.
"""

import torch

__all__ = ["TINY_WAVLM", "write_tiny_wavlm", "write_random_hf_wavlm"]


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
