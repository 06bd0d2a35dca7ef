"""Shared fixtures: tiny randomly initialised WavLM checkpoints, never downloaded."""

import pytest
import torch

torch.set_num_threads(2)

TINY_HF = dict(
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    conv_dim=(16, 16, 16, 16, 16, 16, 16),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
    num_buckets=32,
    max_bucket_distance=64,
)


def make_hf_wavlm(folder, stable=False, seed=0, **overrides):
    """Save a random ``transformers.WavLMModel`` to ``folder``; returns the model.

    ``stable=True`` builds the WavLM Large layout (pre-LN, layer-norm CNN with
    conv bias), else the Base/Base+ layout. Weights are perturbed away from
    their initial values (LayerNorm gains, gate constants) so every parameter
    matters in equivalence tests.
    """
    import transformers

    torch.manual_seed(seed)
    kwargs = dict(TINY_HF)
    kwargs.update(
        do_stable_layer_norm=stable,
        feat_extract_norm="layer" if stable else "group",
        conv_bias=stable,
    )
    kwargs.update(overrides)
    model = transformers.WavLMModel(transformers.WavLMConfig(**kwargs)).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    model.save_pretrained(str(folder))
    return model


@pytest.fixture(params=["post_ln", "pre_ln"])
def hf_checkpoint(request, tmp_path):
    """``(folder, transformers model)`` for both WavLM variants."""
    folder = tmp_path / request.param
    model = make_hf_wavlm(folder, stable=request.param == "pre_ln")
    return folder, model


# ------------------------------------------------ back-end inputs (hidden states)
HIDDEN_LAYERS, HIDDEN_DIM = 4, 16


def random_hidden(batch=2, frames=30, seed=0, layers=HIDDEN_LAYERS, dim=HIDDEN_DIM):
    """Random stacked hidden states ``[layers, batch, frames, dim]``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(layers, batch, frames, dim, generator=generator)


def padded_hidden_batch(valid, frames, fill, seed=1):
    """Utterance 0 with ``valid`` frames padded to ``frames`` (padding: ``"zeros"``,
    ``"garbage"`` or ``"nan"``); utterance 1 full. Returns ``(alone, batch, lengths)``."""
    alone = random_hidden(batch=1, frames=valid, seed=seed)
    generator = torch.Generator().manual_seed(seed + 1)
    shape = (HIDDEN_LAYERS, 2, frames, HIDDEN_DIM)
    if fill == "zeros":
        batch = torch.zeros(shape)
    elif fill == "garbage":
        batch = 1e3 * torch.randn(shape, generator=generator)
    else:  # "nan"
        batch = torch.full(shape, float("nan"))
    batch[:, 0, :valid] = alone[:, 0]
    batch[:, 1] = torch.randn(HIDDEN_LAYERS, frames, HIDDEN_DIM, generator=generator)
    return alone, batch, torch.tensor([valid / frames, 1.0])
