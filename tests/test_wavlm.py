"""PrunableWavLM against transformers' WavLM, checkpoint formats and bad input."""

import json

import pytest
import torch

from speechbrain_pruning import PrunableWavLM
from speechbrain_pruning.wavlm import wavlm_base_plus

from conftest import make_hf_wavlm

TOL = 1e-4


def hf_hidden(model, wavs):
    with torch.no_grad():
        return torch.stack(model(wavs, output_hidden_states=True).hidden_states)


def test_matches_transformers(hf_checkpoint):
    folder, hf = hf_checkpoint
    model = PrunableWavLM.from_pretrained(folder).eval()
    wavs = torch.randn(2, 8000)
    with torch.no_grad():
        ours = model(wavs)
    ref = hf_hidden(hf, wavs)
    assert ours.shape == ref.shape == (4, 2, 24, 32)
    assert (ours - ref).abs().max() < TOL


def test_padded_batch_matches_unpadded(hf_checkpoint):
    """Valid frames of a padded batch equal each utterance run alone."""
    folder, hf = hf_checkpoint
    model = PrunableWavLM.from_pretrained(folder).eval()
    lengths = [8000, 5120, 3333]
    wavs = torch.zeros(3, 8000)
    singles = []
    for i, n in enumerate(lengths):
        wav = torch.randn(n)
        wavs[i, :n] = wav
        singles.append(hf_hidden(hf, wav[None]))
    wavs[1, 5120:] = 7.0  # garbage in the padding must not leak
    with torch.no_grad():
        ours = model(wavs, torch.tensor(lengths) / 8000.0)
    for i, ref in enumerate(singles):
        frames = ref.shape[2]
        assert frames == model.frame_lengths(lengths[i])
        assert (ours[:, i, :frames] - ref[:, 0]).abs().max() < TOL


def _to_unilm(hf_state, stable):
    """HF state dict -> original UniLM names (inverse of transformers' converter)."""
    layer_map = {
        "attention.k_proj": "self_attn.k_proj", "attention.v_proj": "self_attn.v_proj",
        "attention.q_proj": "self_attn.q_proj", "attention.out_proj": "self_attn.out_proj",
        "attention.gru_rel_pos_linear": "self_attn.grep_linear",
        "attention.gru_rel_pos_const": "self_attn.grep_a",
        "attention.rel_attn_embed": "self_attn.relative_attention_bias",
        "feed_forward.intermediate_dense": "fc1", "feed_forward.output_dense": "fc2",
        "final_layer_norm": "final_layer_norm", "layer_norm": "self_attn_layer_norm",
    }
    out = {}
    for key, value in hf_state.items():
        if key == "masked_spec_embed":
            out["mask_emb"] = value
        elif key.startswith("feature_extractor.conv_layers."):
            _, _, idx, kind, param = key.split(".")
            if kind == "conv":
                out[f"feature_extractor.conv_layers.{idx}.0.{param}"] = value
            elif stable:
                out[f"feature_extractor.conv_layers.{idx}.2.1.{param}"] = value
            else:
                out[f"feature_extractor.conv_layers.{idx}.2.{param}"] = value
        elif key.startswith("feature_projection.layer_norm."):
            out[key.replace("feature_projection.", "")] = value
        elif key.startswith("feature_projection.projection."):
            out[key.replace("feature_projection.projection.", "post_extract_proj.")] = value
        elif key.startswith("encoder.pos_conv_embed.conv."):
            name = key.split(".")[-1]
            name = {"original0": "weight_g", "original1": "weight_v"}.get(name, name)
            out[f"encoder.pos_conv.0.{name}"] = value
        elif key.startswith("encoder.layers."):
            parts = key.split(".")
            idx, rest = parts[2], ".".join(parts[3:])
            for hf_name, orig in layer_map.items():
                if rest.startswith(hf_name + ".") or rest == hf_name:
                    out[f"encoder.layers.{idx}.{orig}{rest[len(hf_name):]}"] = value
                    break
            else:
                raise AssertionError(key)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("stable", [False, True])
def test_loads_unilm_checkpoint(tmp_path, stable):
    hf = make_hf_wavlm(tmp_path / "hf", stable=stable)
    c = hf.config
    cfg = {
        "extractor_mode": "layer_norm" if stable else "default",
        "encoder_layers": c.num_hidden_layers, "encoder_embed_dim": c.hidden_size,
        "encoder_ffn_embed_dim": c.intermediate_size,
        "encoder_attention_heads": c.num_attention_heads,
        "conv_feature_layers": "[(16,10,5)] + [(16,3,2)] * 4 + [(16,2,2)] * 2",
        "conv_bias": stable, "layer_norm_first": stable, "normalize": stable,
        "conv_pos": c.num_conv_pos_embeddings, "conv_pos_groups": c.num_conv_pos_embedding_groups,
        "relative_position_embedding": True, "num_buckets": c.num_buckets,
        "max_distance": c.max_bucket_distance, "gru_rel_pos": True,
    }
    path = tmp_path / "WavLM-Tiny.pt"
    torch.save({"cfg": cfg, "model": _to_unilm(hf.state_dict(), stable)}, path)
    model = PrunableWavLM.from_pretrained(path).eval()
    assert model.config.normalize_waveform == stable
    wavs = torch.randn(2, 6000)
    with torch.no_grad():
        ours = model(wavs)
    # UniLM Large expects layer-normalised waveforms; the HF model does not normalise.
    inputs = torch.nn.functional.layer_norm(wavs, wavs.shape[-1:]) if stable else wavs
    assert (ours - hf_hidden(hf, inputs)).abs().max() < TOL


def test_hf_bin_task_model_and_old_weight_norm_names(tmp_path):
    """pytorch_model.bin, a ``wavlm.`` prefix and weight_g/weight_v keys."""
    hf = make_hf_wavlm(tmp_path / "hf")
    state = {}
    for key, value in hf.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        state["wavlm." + key] = value
    state["classifier.weight"] = torch.zeros(3, 32)
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_text((tmp_path / "hf" / "config.json").read_text())
    torch.save(state, folder / "pytorch_model.bin")
    model = PrunableWavLM.from_pretrained(folder).eval()
    wavs = torch.randn(1, 4000)
    with torch.no_grad():
        assert (model(wavs) - hf_hidden(hf, wavs)).abs().max() < TOL


def _randomise_gates(model, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("log_alpha"):
                param.copy_(3.0 * torch.randn_like(param))


def test_prune_keeps_outputs_counts_and_round_trips(hf_checkpoint, tmp_path):
    folder, _ = hf_checkpoint
    units = ("conv", "head", "attlayer", "interm", "ffnlayer")
    model = PrunableWavLM.from_pretrained(folder, prune_units=units).eval()
    _randomise_gates(model)
    layers = model.encoder.layers
    with torch.no_grad():
        layers[1].attention.layer_gate.log_alpha.fill_(-10.0)  # attention sublayer closed
        layers[2].feed_forward.layer_gate.log_alpha.fill_(-10.0)  # FFN sublayer closed
        layers[0].attention.head_gate.log_alpha.fill_(-10.0)  # every head closed
    wavs, lens = torch.randn(2, 8000), torch.tensor([1.0, 0.62])
    with torch.no_grad():
        gated = model(wavs, lens)
    expected = model.expected_num_params()
    expected_macs = model.expected_macs()
    summary = model.prune()

    assert not [n for n, _ in model.named_parameters() if "log_alpha" in n]
    assert model.num_params() == int(expected.item()) == summary["params_after"]
    assert float(model.expected_macs()) == pytest.approx(float(expected_macs), rel=1e-12)
    assert model.num_params() < summary["params_before"]
    assert layers[0].attention is None and layers[1].attention is None
    assert layers[2].feed_forward is None
    assert summary["layers"][0]["heads"] == 0 and not summary["layers"][1]["attention"]
    with torch.no_grad():
        pruned = model(wavs, lens)
    assert (pruned - gated).abs().max() < TOL

    # every remaining parameter is used (DDP without find_unused_parameters)
    model.train()
    model(wavs, lens).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused
    model.eval()

    out = tmp_path / "pruned"
    model.save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    assert config["layer_heads"][0] == [] and config["layer_ffn_dims"][2] == 0
    assert config["conv_layers"][0][0] == summary["conv_channels"][0]
    reloaded = PrunableWavLM.from_pretrained(out).eval()
    assert reloaded.num_params() == model.num_params()
    with torch.no_grad():
        assert torch.equal(reloaded(wavs, lens), pruned)


def test_all_heads_or_units_closed_without_layer_gates(tmp_path):
    """No attlayer/ffnlayer gates: closing every head/unit still removes the sublayer exactly."""
    make_hf_wavlm(tmp_path / "hf")
    model = PrunableWavLM.from_pretrained(tmp_path / "hf", prune_units="head,interm").eval()
    _randomise_gates(model, seed=5)
    with torch.no_grad():
        model.encoder.layers[0].attention.head_gate.log_alpha.fill_(-10.0)
        model.encoder.layers[1].feed_forward.unit_gate.log_alpha.fill_(-10.0)
    wavs = torch.randn(2, 6000)
    with torch.no_grad():
        gated = model(wavs)
        expected = int(model.expected_num_params().item())
        model.prune()
        assert (model(wavs) - gated).abs().max() < TOL
    assert model.encoder.layers[0].attention is None
    assert model.encoder.layers[1].feed_forward is None
    assert model.num_params() == expected


def test_open_gates_count_exactly_and_are_differentiable(hf_checkpoint):
    folder, _ = hf_checkpoint
    model = PrunableWavLM.from_pretrained(folder, prune_units="conv,head,attlayer,interm,ffnlayer")
    dense = model.config.reference_num_params
    assert dense == PrunableWavLM.from_pretrained(folder).num_params()
    with torch.no_grad():
        for gate in model.gate_parameters():
            gate.fill_(30.0)
    for mode in (True, False):
        model.train(mode)
        assert model.expected_num_params().item() == model.num_params() == dense
        assert model.expected_macs().item() == model.config.reference_macs
    model.train()
    with torch.no_grad():
        for gate in model.gate_parameters():
            gate.fill_(0.0)
    sparsity = model.expected_sparsity("params") + model.expected_sparsity("macs")
    sparsity.backward()
    grads = [g.grad for g in model.gate_parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    assert 0.0 < model.expected_sparsity().item() < 1.0


def test_regating_a_pruned_model(tmp_path):
    """A pruned folder can be gated and pruned again (heads keep original indices)."""
    make_hf_wavlm(tmp_path / "hf")
    model = PrunableWavLM.from_pretrained(tmp_path / "hf", prune_units="head,interm").eval()
    _randomise_gates(model, seed=3)
    model.prune()
    model.save_pretrained(tmp_path / "p1")
    again = PrunableWavLM.from_pretrained(tmp_path / "p1", prune_units="head,conv").eval()
    assert again.config.reference_num_params == model.config.reference_num_params
    _randomise_gates(again, seed=4)
    wavs = torch.randn(1, 5000)
    with torch.no_grad():
        gated = again(wavs)
        kept_before = [list(layer.attention.kept_heads) if layer.attention is not None else []
                       for layer in again.encoder.layers]
        again.prune()
        assert (again(wavs) - gated).abs().max() < TOL
    for before, after in zip(kept_before, again.config.layer_heads):
        assert set(after) <= set(int(h) for h in before)


def test_base_plus_size():
    """WavLM Base+ has 94.4 M encoder parameters and 6.9 GMACs per second."""
    model = PrunableWavLM(wavlm_base_plus())
    assert model.num_params() == 94_381_168
    assert model.config.reference_macs == pytest.approx(6.9e9, rel=0.01)
    assert model.config.receptive_field == 400 and model.config.frame_shift == 320


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    make_hf_wavlm(tmp_path / "hf")
    cfg_file = tmp_path / "hf" / "config.json"
    config = json.loads(cfg_file.read_text())
    config["intermediate_size"] = 48
    cfg_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"encoder\.layers\.0\.feed_forward\.intermediate_dense\.weight.*\(64, 32\).*\(48, 32\)"):
        PrunableWavLM.from_pretrained(tmp_path / "hf")


def test_missing_and_extra_layers_are_reported(tmp_path):
    make_hf_wavlm(tmp_path / "hf")
    cfg_file = tmp_path / "hf" / "config.json"
    config = json.loads(cfg_file.read_text())
    config["num_hidden_layers"] = 2
    cfg_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"encoder\.layers\.2\..*no place"):
        PrunableWavLM.from_pretrained(tmp_path / "hf")
    config["num_hidden_layers"] = 4
    cfg_file.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"encoder\.layers\.3\..*missing"):
        PrunableWavLM.from_pretrained(tmp_path / "hf")


def test_bad_units_and_bad_audio(tmp_path):
    make_hf_wavlm(tmp_path / "hf")
    with pytest.raises(ValueError, match=r"valid names are \['conv', 'head', 'attlayer', 'interm', 'ffnlayer'\]"):
        PrunableWavLM.from_pretrained(tmp_path / "hf", prune_units=("heads",))
    model = PrunableWavLM.from_pretrained(tmp_path / "hf").eval()
    with pytest.raises(ValueError, match="at least 400 samples|400-sample"):
        model(torch.randn(1, 399))
    with pytest.raises(ValueError, match="Utterance 1 .* at least 400"):
        model(torch.randn(2, 4000), torch.tensor([1.0, 0.05]))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 4000, dtype=torch.int16))
    with pytest.raises(ValueError, match="mono"):
        model(torch.randn(1, 2, 4000))
    with pytest.raises(FileNotFoundError):
        PrunableWavLM.from_pretrained(tmp_path / "nothing_here")
    assert model(torch.randn(400)).shape == (4, 1, 1, 32)


def test_nan_audio_and_bad_relative_lengths_name_the_batch_item(tmp_path):
    make_hf_wavlm(tmp_path / "hf")
    model = PrunableWavLM.from_pretrained(tmp_path / "hf").eval()
    wavs = torch.randn(3, 4000)
    wavs[2, 17] = float("nan")
    with pytest.raises(ValueError, match=r"batch item 2 contains 1 NaN/Inf sample.*sample 17"):
        model(wavs)
    wavs[2, 17] = float("inf")
    with pytest.raises(ValueError, match="batch item 2"):
        model(wavs)
    wavs[2, 17] = 0.0
    for bad, index in (([1.0, 1.2, 1.0], 1), ([1.0, 1.0, 0.0], 2), ([-0.5, 1.0, 1.0], 0),
                       ([1.0, float("nan"), 1.0], 1)):
        with pytest.raises(ValueError, match=rf"\(0, 1\]; batch item {index}"):
            model(wavs, torch.tensor(bad))
    assert model(wavs, torch.tensor([1.0, 0.5, 0.25])).shape[1] == 3


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_truncated_weights_file_error_names_the_file(tmp_path, weights):
    make_hf_wavlm(tmp_path / "hf")
    folder = tmp_path / "hf"
    if weights == "pytorch_model.bin":
        from safetensors.torch import load_file

        torch.save(load_file(str(folder / "model.safetensors")), folder / weights)
        (folder / "model.safetensors").unlink()
    data = (folder / weights).read_bytes()
    (folder / weights).write_bytes(data[: len(data) // 3])
    with pytest.raises(RuntimeError, match=rf"{weights}.*truncated or corrupt"):
        PrunableWavLM.from_pretrained(folder)
    (folder / weights).write_bytes(b"")
    with pytest.raises(RuntimeError, match=weights):
        PrunableWavLM.from_pretrained(folder)


def test_own_folders_reject_unexpected_keys(tmp_path):
    """A save_pretrained folder is loaded exactly: an extra key is an error."""
    from safetensors.torch import load_file, save_file

    make_hf_wavlm(tmp_path / "hf")
    PrunableWavLM.from_pretrained(tmp_path / "hf").save_pretrained(tmp_path / "own")
    state = load_file(str(tmp_path / "own" / "model.safetensors"))
    state["classifier.weight"] = torch.zeros(2, 2)
    save_file(state, str(tmp_path / "own" / "model.safetensors"))
    with pytest.raises(ValueError, match=r"own: unexpected key 'classifier\.weight'"):
        PrunableWavLM.from_pretrained(tmp_path / "own")


@pytest.mark.parametrize("stable", [False, True])
@pytest.mark.parametrize("units", [("attlayer",), ("ffnlayer",), ("conv",),
                                   ("conv", "head", "attlayer", "interm", "ffnlayer")])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_prune_keeps_the_model_dtype(tmp_path, stable, units, dtype):
    """Half-precision gated models stay in that precision after prune() and run."""
    make_hf_wavlm(tmp_path / "hf", stable=stable)
    torch.manual_seed(0)
    model = PrunableWavLM.from_pretrained(tmp_path / "hf", prune_units=units).to(dtype).eval()
    with torch.no_grad():
        for gate in model.gate_parameters():
            gate.normal_(0.0, 3.0)  # some structures closed, some scaled
    model.prune()
    dtypes = {p.dtype for p in model.parameters()}
    dtypes |= {b.dtype for b in model.buffers() if b.is_floating_point()}
    assert dtypes == {dtype}
    assert model(torch.randn(2, 4000).to(dtype)).dtype == dtype
