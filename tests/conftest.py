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
