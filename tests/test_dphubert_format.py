"""DPHuBERT-family checkpoints (read and write) with torchaudio's WavLM as the oracle."""

import pytest
import torch

from speechbrain_pruning import PrunableWavLM
from speechbrain_pruning.wavlm.config import WavLMConfig
from speechbrain_pruning.wavlm.dphubert import (
    read_dphubert,
    read_torchaudio_wavlm,
    to_dphubert_state_dict,
    write_dphubert,
)

torchaudio_models = pytest.importorskip("torchaudio.models")

TOL = 1e-4
HEADS, DIM = 4, 64
HD = DIM // HEADS
PRE = "encoder.transformer.layers."


def ta_kwargs(stable=False):
    """torchaudio ``wavlm_model`` keyword arguments of a tiny WavLM."""
    return dict(
        extractor_mode="layer_norm" if stable else "group_norm",
        extractor_conv_layer_config=[(32, 10, 5), (24, 3, 2), (32, 2, 2)],
        extractor_conv_bias=stable,
        encoder_embed_dim=DIM,
        encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=8,
        encoder_pos_conv_groups=4,
        encoder_num_layers=3,
        encoder_num_heads=HEADS,
        encoder_num_buckets=32,
        encoder_max_distance=64,
        encoder_attention_dropout=0.0,
        encoder_ff_interm_features=96,
        encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0,
        encoder_layer_norm_first=stable,
        encoder_layer_drop=0.0,
        aux_num_out=None,
    )


def make_torchaudio(stable=False, seed=0):
    """A torchaudio WavLM with every parameter perturbed (LayerNorms, gates, biases)."""
    torch.manual_seed(seed)
    model = torchaudio_models.wavlm_model(**ta_kwargs(stable)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("original0"):  # weight-norm gain: keep it positive
                param.mul_(1.0 + 0.2 * torch.rand_like(param))
            else:
                param.add_(0.1 * torch.randn_like(param))
    return model


def ta_hidden(model, wavs):
    """All hidden states ``[L+1, B, T, D]`` of a torchaudio WavLM."""
    with torch.no_grad():
        feats, _ = model.feature_extractor(wavs, None)
        x, mask = model.encoder._preprocess(feats, None)
        first = model.encoder.transformer._preprocess(x)
        layers = model.encoder.transformer.get_intermediate_outputs(x, attention_mask=mask)
    return torch.stack([first] + layers)


def rows(heads):
    return torch.cat([torch.arange(h * HD, (h + 1) * HD) for h in heads])


def dphubert_from_torchaudio(model, kwargs, heads=None, ffn=None, conv=None, weight_g=False):
    """DPHuBERT checkpoint of ``model`` with structures sliced away, and the oracle.

    Arguments: ``heads[i]`` kept head indices of layer ``i`` (``[]`` removes the
    attention, None keeps all), ``ffn[i]`` kept FFN units (``[]`` removes the
    FFN), ``conv[i]`` kept channels of conv layer ``i`` (not the last).
    Returns ``(checkpoint dict, torchaudio model with the removed weights zeroed)``.
    """
    layers = kwargs["encoder_num_layers"]
    heads = heads or [None] * layers
    ffn = ffn or [None] * layers
    conv = conv or {}
    src = {k: v.clone() for k, v in model.state_dict().items()}
    oracle = {k: v.clone() for k, v in src.items()}
    state = {}
    for key, value in src.items():
        if key.endswith("attention.attention.in_proj_weight") or key.endswith("in_proj_bias"):
            base, kind = key.split("attention.attention.in_proj_")
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, 0)):
                state[f"{base}attention.{name}.{kind}"] = part.clone()
        elif weight_g and key.endswith("parametrizations.weight.original0"):
            state[key.replace("parametrizations.weight.original0", "weight_g")] = value
        elif weight_g and key.endswith("parametrizations.weight.original1"):
            state[key.replace("parametrizations.weight.original1", "weight_v")] = value
        else:
            state[key.replace("attention.attention.out_proj", "attention.out_proj")] = value
    conv_cfg = [list(c) for c in kwargs["extractor_conv_layer_config"]]
    for i, keep in conv.items():
        keep = torch.as_tensor(keep)
        drop = torch.ones(conv_cfg[i][0], dtype=torch.bool)
        drop[keep] = False
        prefix = f"feature_extractor.conv_layers.{i}."
        for name in ("conv.weight", "conv.bias", "layer_norm.weight", "layer_norm.bias"):
            if prefix + name in state:
                state[prefix + name] = state[prefix + name][keep]
        nxt = f"feature_extractor.conv_layers.{i + 1}.conv.weight"
        state[nxt] = state[nxt][:, keep]
        oracle[nxt][:, drop] = 0.0
        conv_cfg[i][0] = len(keep)
    use_att, remaining, use_ffn, ffn_dims = [], [], [], []
    for i in range(layers):
        att, ta_out = f"{PRE}{i}.attention.", f"{PRE}{i}.attention.attention.out_proj."
        keep = heads[i]
        if keep == []:
            for key in [k for k in state if k.startswith(att)]:
                del state[key]
            oracle[ta_out + "weight"].zero_()
            oracle[ta_out + "bias"].zero_()
            if i == 0:  # their layer 0 holds the relative position embedding of all layers
                oracle[f"{PRE}0.attention.rel_attn_embed.weight"].zero_()
        elif keep is not None:
            index = rows(keep)
            for name in ("q_proj", "k_proj", "v_proj"):
                state[att + name + ".weight"] = state[att + name + ".weight"][index]
                state[att + name + ".bias"] = state[att + name + ".bias"][index]
            state[att + "out_proj.weight"] = state[att + "out_proj.weight"][:, index]
            gone = sorted(set(range(HEADS)) - set(keep))
            oracle[ta_out + "weight"][:, rows(gone)] = 0.0
        use_att.append(keep != [])
        remaining.append(list(range(HEADS)) if keep is None else list(keep))
        ff = f"{PRE}{i}.feed_forward."
        width = kwargs["encoder_ff_interm_features"]
        units = ffn[i]
        if units == []:
            for key in [k for k in state if k.startswith(ff)]:
                del state[key]
            oracle[ff + "output_dense.weight"].zero_()
            oracle[ff + "output_dense.bias"].zero_()
        elif units is not None:
            units = torch.as_tensor(units)
            state[ff + "intermediate_dense.weight"] = state[ff + "intermediate_dense.weight"][units]
            state[ff + "intermediate_dense.bias"] = state[ff + "intermediate_dense.bias"][units]
            state[ff + "output_dense.weight"] = state[ff + "output_dense.weight"][:, units]
            drop = torch.ones(width, dtype=torch.bool)
            drop[units] = False
            oracle[ff + "output_dense.weight"][:, drop] = 0.0
            width = len(units)
        use_ffn.append(units != [])
        ffn_dims.append(width if units != [] else 0)
    state["feature_extractor.dummy_weight"] = torch.ones(conv_cfg[-1][0])
    config = {k: v for k, v in kwargs.items() if k != "encoder_num_heads"}
    config.update(
        extractor_conv_layer_config=[tuple(c) for c in conv_cfg],
        encoder_use_attention=use_att,
        encoder_use_feed_forward=use_ffn,
        encoder_total_num_heads=[HEADS] * layers,
        encoder_remaining_heads=remaining,
        encoder_ff_interm_features=ffn_dims,
        normalize_waveform=False,
        extractor_prune_conv_channels=False,
        encoder_prune_attention_heads=False,
        encoder_prune_attention_layer=False,
        encoder_prune_feed_forward_intermediate=False,
        encoder_prune_feed_forward_layer=False,
    )
    oracle_model = torchaudio_models.wavlm_model(**kwargs).eval()
    oracle_model.load_state_dict(oracle)
    return {"state_dict": state, "config": config}, oracle_model


def load(ckpt, tmp_path, name="ckpt.pth", **kwargs):
    path = tmp_path / name
    torch.save(ckpt, path)
    return PrunableWavLM.from_pretrained(path, **kwargs).eval()


def assert_close(ours, theirs, tol=TOL):
    assert ours.shape == theirs.shape
    err = (ours - theirs).abs().amax(dim=(1, 2, 3))  # per hidden state
    assert float(err.max()) < tol, f"max error per layer: {err.tolist()}"


WAVS = torch.randn(2, 2400, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("stable", [False, True], ids=["post_ln", "pre_ln"])
@pytest.mark.parametrize("weight_g", [False, True], ids=["parametrizations", "weight_g"])
def test_unpruned_dphubert_matches_torchaudio(tmp_path, stable, weight_g):
    model = make_torchaudio(stable)
    ckpt, oracle = dphubert_from_torchaudio(model, ta_kwargs(stable), weight_g=weight_g)
    ours = load(ckpt, tmp_path)
    assert ours.prune_units == ()
    with torch.no_grad():
        assert_close(ours(WAVS), ta_hidden(oracle, WAVS))
    # a training wrapper's prefix is stripped, keys outside it are ignored
    wrapped = {"student_model." + k: v for k, v in ckpt["state_dict"].items()}
    wrapped["distill_linear_projs.0.weight"] = torch.zeros(2, 2)
    config, state, _ = read_dphubert({"state_dict": wrapped, "config": ckpt["config"]})
    assert set(state) == set(read_dphubert(ckpt)[1])


PRUNINGS = {
    # heads sliced in layers 0 and 2, attention of layer 1 removed, FFN units
    # sliced in layers 0 and 1, FFN of layer 2 removed, conv channels sliced
    "mixed": dict(
        heads=[[0, 2, 3], [], [1]],
        ffn=[list(range(0, 96, 3)), list(range(40)), []],
        conv={0: [1, 4, 5, 9, 20, 31], 1: list(range(0, 24, 2))},
    ),
    # no attention in layer 0: DPHuBERT code then has no relative position bias anywhere
    "no_layer0_attention": dict(heads=[[], [0, 3], None], ffn=[[], None, list(range(7))]),
}


@pytest.mark.parametrize("case", sorted(PRUNINGS))
def test_pruned_dphubert_matches_masked_torchaudio(tmp_path, case):
    model = make_torchaudio(False, seed=1)
    ckpt, oracle = dphubert_from_torchaudio(model, ta_kwargs(False), **PRUNINGS[case])
    ours = load(ckpt, tmp_path)
    spec = PRUNINGS[case]
    assert ours.config.layer_heads == [
        list(range(HEADS)) if h is None else h for h in spec["heads"]
    ]
    assert [layer.attention is None for layer in ours.encoder.layers] == [
        h == [] for h in spec["heads"]
    ]
    assert [layer.feed_forward is None for layer in ours.encoder.layers] == [
        f == [] for f in spec["ffn"]
    ]
    with torch.no_grad():
        assert_close(ours(WAVS), ta_hidden(oracle, WAVS))


def test_pruned_pre_ln_matches_masked_torchaudio(tmp_path):
    model = make_torchaudio(True, seed=2)
    ckpt, oracle = dphubert_from_torchaudio(
        model, ta_kwargs(True), heads=[[1, 2], [], [0, 1, 3]], ffn=[[], list(range(50)), None]
    )
    ours = load(ckpt, tmp_path)
    assert ours.encoder.layers[1].layer_norm is None  # unused pre-LN norm dropped
    with torch.no_grad():
        assert_close(ours(WAVS), ta_hidden(oracle, WAVS))


@pytest.mark.parametrize("stable", [False, True], ids=["post_ln", "pre_ln"])
def test_torchaudio_state_dict_reader(tmp_path, stable):
    model = make_torchaudio(stable, seed=4)
    kwargs = ta_kwargs(stable)
    config, state, units = read_torchaudio_wavlm(model.state_dict(), kwargs)
    assert units == ()
    ta = model.state_dict()
    q, k, v = ta[f"{PRE}1.attention.attention.in_proj_weight"].chunk(3, 0)
    assert torch.equal(state["encoder.layers.1.attention.k_proj.weight"], k)
    assert torch.equal(state["encoder.layers.1.attention.out_proj.bias"],
                       ta[f"{PRE}1.attention.attention.out_proj.bias"])
    ours = PrunableWavLM(config).eval()
    ours.load_state_dict(state, strict=False)
    missing = set(ours.state_dict()) - set(state)
    assert missing <= {"feature_extractor.output_scale"}
    with torch.no_grad():
        expected = ta_hidden(model, WAVS)
        assert_close(ours(WAVS), expected, tol=1e-5)
        # a {"state_dict", "config"} file holding torchaudio's layout is read the same way
        loaded = load({"state_dict": model.state_dict(), "config": kwargs}, tmp_path)
        assert torch.equal(loaded(WAVS), ours(WAVS))


def test_unknown_key_and_wrong_shape_are_named(tmp_path):
    model = make_torchaudio(False)
    ckpt, _ = dphubert_from_torchaudio(model, ta_kwargs(False), heads=[None, [0, 1], None])
    bad = {"state_dict": dict(ckpt["state_dict"]), "config": ckpt["config"]}
    bad["state_dict"][f"{PRE}0.attention.extra_proj.weight"] = torch.zeros(3, 5)
    with pytest.raises(ValueError, match=r"layers\.0\.attention\.extra_proj\.weight.*\(3, 5\)"):
        read_dphubert(bad)
    bad = {"state_dict": dict(ckpt["state_dict"]), "config": ckpt["config"]}
    bad["state_dict"]["encoder.bogus.weight"] = torch.zeros(2)
    with pytest.raises(ValueError, match=r"encoder\.bogus\.weight"):
        load(bad, tmp_path, "bogus.pth")
    # layer 1 keeps 2 heads (32 rows); give it 3 heads' worth of rows
    bad = {"state_dict": dict(ckpt["state_dict"]), "config": ckpt["config"]}
    bad["state_dict"][f"{PRE}1.attention.q_proj.weight"] = torch.zeros(48, DIM)
    with pytest.raises(ValueError, match=r"q_proj\.weight.*\(48, 64\).*\(32, 64\)"):
        load(bad, tmp_path, "shape.pth")
    bad = {"state_dict": dict(ckpt["state_dict"]), "config": ckpt["config"]}
    bad["state_dict"][f"{PRE}2.attention.gru_rel_pos_const"] = torch.ones(1, 3, 1, 1)
    with pytest.raises(ValueError, match=r"gru_rel_pos_const.*\(1, 3, 1, 1\).*\(1, 4, 1, 1\)"):
        read_dphubert(bad)
    # a key of a sublayer the config says was removed
    cfg = dict(ckpt["config"], encoder_use_feed_forward=[True, True, False])
    with pytest.raises(ValueError, match=r"layers\.2\.feed_forward\.\w+\.\w+"):
        load({"state_dict": ckpt["state_dict"], "config": cfg}, tmp_path, "removed.pth")


def test_hard_concrete_log_alphas_land_in_our_gates(tmp_path):
    model = make_torchaudio(False)
    ckpt, _ = dphubert_from_torchaudio(model, ta_kwargs(False))
    state = ckpt["state_dict"]
    gen = torch.Generator().manual_seed(5)
    alphas = {}
    for i, (channels, _, _) in enumerate(ckpt["config"]["extractor_conv_layer_config"]):
        alphas[f"feature_extractor.conv_layers.{i}.hard_concrete.log_alpha"] = (
            f"feature_extractor.conv_layers.{i}.gate.log_alpha", channels)
    for i in range(3):
        alphas[f"{PRE}{i}.attention.hard_concrete_for_heads.log_alpha"] = (
            f"encoder.layers.{i}.attention.head_gate.log_alpha", HEADS)
        alphas[f"{PRE}{i}.attention.hard_concrete_for_layer.log_alpha"] = (
            f"encoder.layers.{i}.attention.layer_gate.log_alpha", 1)
        alphas[f"{PRE}{i}.feed_forward.hard_concrete_for_intermediate.log_alpha"] = (
            f"encoder.layers.{i}.feed_forward.unit_gate.log_alpha", 96)
        alphas[f"{PRE}{i}.feed_forward.hard_concrete_for_layer.log_alpha"] = (
            f"encoder.layers.{i}.feed_forward.layer_gate.log_alpha", 1)
    for theirs, (_, n) in alphas.items():
        state[theirs] = torch.randn(n, generator=gen)
    ckpt["config"].update({k: True for k in ckpt["config"] if "_prune_" in k})
    ours = load(ckpt, tmp_path)
    assert ours.prune_units == ("conv", "head", "attlayer", "interm", "ffnlayer")
    own = ours.state_dict()
    for theirs, (mine, _) in alphas.items():
        assert torch.equal(own[mine], state[theirs]), mine
    # gates are written back under their names
    out = tmp_path / "gated.pth"
    write_dphubert(ours, out)
    saved = torch.load(out, weights_only=True)
    assert saved["config"]["encoder_prune_attention_heads"] is True
    for theirs in alphas:
        assert torch.equal(saved["state_dict"][theirs], state[theirs]), theirs
    # asking for fewer gates loads the weights and leaves the other log_alphas out
    partial = PrunableWavLM.from_pretrained(tmp_path / "ckpt.pth", prune_units="head")
    assert partial.prune_units == ("head",)


def tiny_config(stable=False, **overrides):
    kwargs = dict(
        conv_layers=[[32, 10, 5], [24, 3, 2], [32, 2, 2]], hidden_size=DIM, num_layers=3,
        num_heads=HEADS, intermediate_size=96, pos_conv_kernel=8, pos_conv_groups=4,
        num_buckets=32, max_distance=64, extractor_mode="layer_norm" if stable else "group_norm",
        conv_bias=stable, layer_norm_first=stable, normalize_waveform=stable,
    )
    kwargs.update(overrides)
    return WavLMConfig(**kwargs)


def randomise(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("log_alpha"):
                param.copy_(3.0 * torch.randn_like(param))
            elif name.endswith("original0"):
                param.mul_(1.0 + 0.2 * torch.rand_like(param))
            else:
                param.add_(0.1 * torch.randn_like(param))
    return model


@pytest.mark.parametrize("stable", [False, True], ids=["post_ln", "pre_ln"])
def test_write_read_round_trip_of_our_pruned_model(tmp_path, stable):
    model = randomise(PrunableWavLM(tiny_config(stable), prune_units=(
        "conv", "head", "attlayer", "interm", "ffnlayer"))).eval()
    with torch.no_grad():
        model.encoder.layers[1].attention.layer_gate.log_alpha.fill_(-10.0)
        model.encoder.layers[2].feed_forward.layer_gate.log_alpha.fill_(-10.0)
        for i, pattern in ((0, [1, 0, 1, 1]), (2, [0, 1, 0, 1])):  # heads kept
            model.encoder.layers[i].attention.layer_gate.log_alpha.fill_(10.0)
            model.encoder.layers[i].attention.head_gate.log_alpha.copy_(
                20.0 * torch.tensor(pattern) - 10.0)
        for i in (0, 1):
            model.encoder.layers[i].feed_forward.layer_gate.log_alpha.fill_(10.0)
            model.encoder.layers[i].feed_forward.unit_gate.log_alpha[: 30 + 20 * i] = 10.0
            model.encoder.layers[i].feed_forward.unit_gate.log_alpha[30 + 20 * i:] = -10.0
        for block in model.feature_extractor.conv_layers:
            block.gate.log_alpha[::3] = -10.0
            block.gate.log_alpha[1::3] = 10.0
    summary = model.prune()
    assert not bool((model.feature_extractor.output_scale == 1).all())  # dummy_weight matters
    assert model.encoder.layers[1].attention is None
    assert any(0 < len(layer["kept_heads"]) < HEADS for layer in summary["layers"])
    assert any(0 < layer["ffn_dim"] < 96 for layer in summary["layers"])
    assert summary["conv_channels"] != [32, 24, 32]
    path = tmp_path / "pruned.pth"
    model.save_pretrained(path, format="dphubert")
    ckpt = torch.load(path, weights_only=True)  # plain containers and tensors only
    assert ckpt["config"]["encoder_use_attention"] == [True, False, True]
    assert ckpt["config"]["encoder_use_feed_forward"] == [True, True, False]
    assert ckpt["config"]["encoder_total_num_heads"] == [HEADS] * 3
    assert tuple(ckpt["state_dict"][f"{PRE}0.attention.gru_rel_pos_const"].shape) == (1, HEADS, 1, 1)
    assert "feature_extractor.dummy_weight" in ckpt["state_dict"]
    loaded = PrunableWavLM.from_pretrained(path).eval()
    assert loaded.config.layer_heads == model.config.layer_heads
    assert loaded.config.layer_ffn_dims == model.config.layer_ffn_dims
    assert loaded.config.conv_layers == model.config.conv_layers
    assert loaded.num_params() == model.num_params()
    lens = torch.tensor([1.0, 0.7])
    with torch.no_grad():
        assert torch.equal(loaded(WAVS), model(WAVS))
        assert torch.equal(loaded(WAVS, lens), model(WAVS, lens))


@pytest.mark.parametrize("stable", [False, True], ids=["post_ln", "pre_ln"])
def test_removed_layer0_attention_keeps_the_position_bias(tmp_path, stable):
    """Their relative position embedding lives in layer 0: a zero placeholder keeps it."""
    cfg = tiny_config(stable, layer_heads=[[], [0, 3], [1, 2]], layer_ffn_dims=[96, 0, 40])
    model = randomise(PrunableWavLM(cfg), seed=3).eval()
    path = tmp_path / "no_att0.pth"
    write_dphubert(model, path)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["config"]["encoder_use_attention"] == [True, True, True]
    assert ckpt["config"]["encoder_remaining_heads"][0] == [0]
    loaded = PrunableWavLM.from_pretrained(path).eval()
    assert loaded.encoder.layers[0].attention is None
    assert loaded.num_params() == model.num_params()
    with torch.no_grad():
        assert torch.equal(loaded(WAVS), model(WAVS))


@pytest.mark.parametrize("stable", [False, True], ids=["post_ln", "pre_ln"])
def test_written_unpruned_file_loads_into_torchaudio(stable):
    """The written layout, packed back into torchaudio's, gives torchaudio our outputs."""
    cfg = tiny_config(stable, normalize_waveform=False)
    model = randomise(PrunableWavLM(cfg), seed=6).eval()
    state = to_dphubert_state_dict(model)
    assert torch.equal(state.pop("feature_extractor.dummy_weight"), torch.ones(32))
    packed = {}
    for key, value in state.items():
        if ".attention.q_proj." in key:
            kind = key.rsplit(".", 1)[1]
            parts = [state[key.replace("q_proj", n)] for n in ("q_proj", "k_proj", "v_proj")]
            packed[key.replace("attention.q_proj." + kind, "attention.attention.in_proj_" + kind)] = (
                torch.cat(parts))
        elif ".attention.k_proj." in key or ".attention.v_proj." in key:
            continue
        else:
            packed[key.replace("attention.out_proj", "attention.attention.out_proj")] = value
    ta = torchaudio_models.wavlm_model(**ta_kwargs(stable)).eval()
    ta.load_state_dict(packed)  # strict; weight_g/weight_v through torch's compat hook
    with torch.no_grad():
        assert_close(model(WAVS), ta_hidden(ta, WAVS))
