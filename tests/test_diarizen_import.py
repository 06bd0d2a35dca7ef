"""DiariZen segmentation models: exact import into PrunableWavLM + EENDHead, and the converter.

The oracle is an independent transcription of DiariZen's forward pass
(``model_wavlm_conformer.Model`` + ``module/conformer.py``) with DiariZen's key
names, on torchaudio's WavLM (the same oracle as ``test_dphubert_format``).
"""

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from speechbrain_pruning import PrunableWavLM
from speechbrain_pruning.diarization.diarizen import (DIARIZEN_WAVLM_CONFIGS, convert_diarizen,
                                                      main, read_diarizen)
from speechbrain_pruning.wavlm.dphubert import dphubert_config, to_dphubert_state_dict

from test_dphubert_format import dphubert_from_torchaudio, make_torchaudio, ta_hidden, ta_kwargs

TOL = 1e-4


# ----------------------------------------------------------- DiariZen's blocks, written out
class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class FFN(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.ln_norm, self.w_1, self.w_2 = nn.LayerNorm(d), nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        return x + 0.5 * self.w_2(Swish()(self.w_1(self.ln_norm(x))))


class SelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.linearQ, self.linearK = nn.Linear(d, d), nn.Linear(d, d)
        self.linearV, self.linearO = nn.Linear(d, d), nn.Linear(d, d)
        self.h, self.d_k = heads, d // heads

    def forward(self, x):  # [B, T, D]
        b, t, _ = x.shape
        q, k, v = (lin(x).view(b, t, self.h, self.d_k).transpose(1, 2)
                   for lin in (self.linearQ, self.linearK, self.linearV))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d_k), dim=-1)
        return self.linearO((att @ v).transpose(1, 2).reshape(b, t, -1))


class MHA(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_norm, self.mha = nn.LayerNorm(d), SelfAttention(d, heads)

    def forward(self, x):
        return x + self.mha(self.ln_norm(x))


class ConvModule(nn.Module):
    def __init__(self, d, kernel):
        super().__init__()
        self.ln_norm = nn.LayerNorm(d)
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1)
        self.depthwise_conv = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.bn_norm = nn.BatchNorm1d(d)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1)

    def forward(self, x):
        y = nn.functional.glu(self.pointwise_conv1(self.ln_norm(x).transpose(1, 2)), dim=1)
        y = self.pointwise_conv2(Swish()(self.bn_norm(self.depthwise_conv(y))))
        return x + y.transpose(1, 2)


class Block(nn.Module):
    def __init__(self, d, ffn, heads, kernel):
        super().__init__()
        self.ffn1, self.mha, self.conv = FFN(d, ffn), MHA(d, heads), ConvModule(d, kernel)
        self.ffn2, self.ln_norm = FFN(d, ffn), nn.LayerNorm(d)

    def forward(self, x):
        return self.ln_norm(self.ffn2(self.conv(self.mha(self.ffn1(x)))))


class Conformer(nn.Module):
    def __init__(self, d, ffn, heads, kernel, layers):
        super().__init__()
        self.conformer_layer = nn.ModuleList(Block(d, ffn, heads, kernel) for _ in range(layers))


class DiariZenBackEnd(nn.Module):
    """Everything of DiariZen's Model after ``wavlm_model`` (its attribute names)."""

    def __init__(self, num_hidden, feat_dim, d=32, ffn=48, heads=4, kernel=5, layers=2,
                 classes=11, activation=None):
        super().__init__()
        self.weight_sum = nn.Linear(num_hidden, 1, bias=False)
        self.proj, self.lnorm = nn.Linear(feat_dim, d), nn.LayerNorm(d)
        self.conformer = Conformer(d, ffn, heads, kernel, layers)
        self.classifier = nn.Linear(d, classes)
        self.activation = activation

    def forward(self, hidden):  # [L+1, B, T, D] as DiariZen's stack(dim=-1) @ weight_sum
        x = self.weight_sum(hidden.permute(1, 2, 3, 0)).squeeze(-1)
        x = self.lnorm(self.proj(x))
        for block in self.conformer.conformer_layer:
            x = block(x)
        if self.activation is not None:
            x = self.activation(x)
        return torch.log_softmax(self.classifier(x), dim=-1)


def perturb(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=gen)
                tensor.copy_(tensor + 0.2 * noise if "running_var" not in name
                             else 0.5 + torch.rand(tensor.shape, generator=gen))
            elif name.endswith("num_batches_tracked"):
                tensor.fill_(7)
    return module.eval()


MODEL_ARGS = """
[model]
path = "diarizen.models.eend.model_wavlm_conformer.Model"
[model.args]
wavlm_src = "{src}"
wavlm_layer_num = {layers}
wavlm_feat_dim = {dim}
attention_in = {d}
ffn_hidden = {ffn}
num_head = {heads}
num_layer = {num_blocks}
kernel_size = {kernel}
dropout = 0.1
chunk_size = 8
use_posi = false
output_activate_function = {activation}
selected_channel = 0
max_speakers_per_chunk = 4
max_speakers_per_frame = {per_frame}
"""
INFERENCE = """
[inference.args]
seg_duration = 8
segmentation_step = 0.1
batch_size = 8
apply_median_filtering = true

[clustering.args]
method = "VBxClustering"
min_speakers = 1
max_speakers = 20
ahc_criterion = "distance"
ahc_threshold = 0.6
Fa = 0.07
Fb = 0.8
lda_dim = 128
max_iters = 20
"""


def back_end_sizes(back_end):
    block = back_end.conformer.conformer_layer[0]
    return dict(d=back_end.proj.out_features, ffn=block.ffn1.w_1.out_features,
                heads=block.mha.mha.h, kernel=block.conv.depthwise_conv.kernel_size[0],
                num_blocks=len(back_end.conformer.conformer_layer))


def write_diarizen_folder(folder, wavlm_state, wavlm_cfg, back_end, src="wavlm.bin",
                          activation="false", extra_toml=INFERENCE, per_frame=2):
    """A DiariZen model folder: config.toml + pytorch_model.bin of the whole model."""
    folder.mkdir(parents=True, exist_ok=True)
    if src == "wavlm.bin":  # wavlm_src as a {config, state_dict} file beside the model
        torch.save({"config": wavlm_cfg, "state_dict": wavlm_state}, folder / "wavlm.bin")
    state = {"wavlm_model." + k: v for k, v in wavlm_state.items()}
    state.update(back_end.state_dict())
    torch.save(state, folder / "pytorch_model.bin")
    layers = wavlm_cfg["encoder_num_layers"] + 1
    (folder / "config.toml").write_text(
        MODEL_ARGS.format(src=src, layers=layers, dim=wavlm_cfg["encoder_embed_dim"],
                          activation=activation, per_frame=per_frame,
                          **back_end_sizes(back_end)) + extra_toml)
    return folder


PRUNED = dict(heads=[[0, 2, 3], [], [1]], ffn=[list(range(0, 96, 3)), list(range(40)), []],
              conv={0: [1, 4, 5, 9, 20, 31]})
WAVS = torch.randn(2, 8000, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("activation", [None, "ReLU"])
def test_pruned_diarizen_model_matches_its_forward(tmp_path, activation):
    ta = make_torchaudio(seed=1)
    ckpt, oracle_wavlm = dphubert_from_torchaudio(ta, ta_kwargs(), **PRUNED)
    back_end = perturb(DiariZenBackEnd(4, 64, activation=getattr(nn, activation)()
                                       if activation else None), seed=2)
    folder = write_diarizen_folder(tmp_path / "dz", ckpt["state_dict"], ckpt["config"], back_end,
                                   activation=f'"{activation}"' if activation else "false")
    model = read_diarizen(folder)
    with torch.no_grad():
        expected = back_end(ta_hidden(oracle_wavlm, WAVS))
        ours = model.eend(model.wavlm(WAVS), None)
    assert ours.shape == expected.shape == (2, 399, 11)
    assert float((ours - expected).abs().max()) < TOL
    # the pruned architecture came through
    assert [len(h) for h in model.wavlm.config.layer_heads] == [3, 0, 1]
    assert model.wavlm.config.layer_ffn_dims == [32, 40, 0]
    # pipeline settings translated from [inference.args] / [clustering.args]
    assert model.inference == {"window": 8.0, "step": 0.8, "batch_size": 8, "median_filter": 11,
                               "clustering": "vbx", "vbx_fa": 0.07, "vbx_fb": 0.8,
                               "clustering_threshold": 0.6}


def tiny_folder(tmp_path, name="dz"):
    ta = make_torchaudio(seed=3)
    ckpt, oracle_wavlm = dphubert_from_torchaudio(ta, ta_kwargs(), **PRUNED)
    back_end = perturb(DiariZenBackEnd(4, 64), seed=4)
    folder = write_diarizen_folder(tmp_path / name, ckpt["state_dict"], ckpt["config"], back_end)
    return folder, ckpt, back_end, oracle_wavlm


def test_converter_writes_a_diarizer_folder_that_runs(tmp_path):
    from speechbrain_pruning.inference import PrunedDiarizer

    folder, _, back_end, oracle_wavlm = tiny_folder(tmp_path)
    assert main([str(folder), str(tmp_path / "exported")]) == 0
    exported = tmp_path / "exported"
    for name in ("hyperparams.yaml", "wavlm/config.json", "eend.ckpt", "README.md",
                 "manifest.json"):
        assert (exported / name).is_file(), name
    model = PrunedDiarizer.from_hparams(source=exported, savedir=tmp_path / "fetched")
    with torch.no_grad():
        ours = model.mods.eend(model.mods.wavlm(WAVS), None)
        expected = back_end(ta_hidden(oracle_wavlm, WAVS))
    assert float((ours - expected).abs().max()) < TOL
    # settings of config.toml; no PLDA for our embedder -> AHC
    params = model._params()
    assert (params["window"], params["step"], params["clustering"]) == (8.0, 0.8, "ahc")
    # it diarizes a file through the pipeline and the CLI
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "rec.wav", 0.1 * rng.standard_normal(16000 * 6), 16000)
    # the tiny test WavLM has a 20-sample hop (6400 frames per 8 s): short windows
    model.set_params(window=2.0, step=1.0, inference_precision="fp32")
    output = model(str(tmp_path / "rec.wav"))
    assert output.speaker_diarization.uri == "rec"
    from speechbrain_pruning.diarization.cli import main as diarize

    assert diarize([str(exported), str(tmp_path / "rec.wav"), "--output", str(tmp_path / "out"),
                    "--window", "2", "--step", "1"]) == 0
    assert (tmp_path / "out" / "rec.rttm").is_file()


def test_imported_model_can_be_fine_tuned_from_the_export(tmp_path):
    """The exported WavLM reloads plain (fine-tuning) or gated (pruning further)."""
    folder, _, _, oracle_wavlm = tiny_folder(tmp_path)
    convert_diarizen(folder, tmp_path / "exported")
    imported = read_diarizen(folder).wavlm
    plain = PrunableWavLM.from_pretrained(tmp_path / "exported" / "wavlm").eval()
    gated = PrunableWavLM.from_pretrained(tmp_path / "exported" / "wavlm",
                                          prune_units="head,interm")
    with torch.no_grad():
        assert torch.equal(plain(WAVS), imported(WAVS))
    weights = {k: v for k, v in gated.state_dict().items() if not k.endswith("log_alpha")}
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in weights.items())
    gates = [p.numel() for n, p in gated.named_parameters() if n.endswith("log_alpha")]
    assert sum(gates) == (3 + 1) + (32 + 40)  # one gate per kept head and FFN unit


def diarizen_layout(name, seed=0):
    """A random DiariZen state dict of predefined architecture ``name`` (DiariZen's key names)."""
    torch.manual_seed(seed)
    wavlm = PrunableWavLM(dphubert_config(DIARIZEN_WAVLM_CONFIGS[name])).eval()
    state = {}
    for key, value in to_dphubert_state_dict(wavlm).items():  # DiariZen: parametrizations
        key = key.replace("conv.weight_g", "conv.parametrizations.weight.original0")
        state[key.replace("conv.weight_v", "conv.parametrizations.weight.original1")] = value
    return wavlm, state


@pytest.mark.parametrize("name, heads, ffn", [("wavlm_base_s80_md", 27, 5279),
                                              ("wavlm_large_s80_md", 90, 14441)])
def test_published_pruned_architectures(name, heads, ffn):
    """The transcribed s80 configs have DiariZen's published head / FFN totals."""
    cfg = dphubert_config(DIARIZEN_WAVLM_CONFIGS[name])
    assert sum(len(h) for h in cfg.layer_heads) == heads
    assert sum(cfg.layer_ffn_dims) == ffn


def test_released_base_s80_layout_by_config_name(tmp_path):
    wavlm, state = diarizen_layout("wavlm_base_s80_md")
    cfg = DIARIZEN_WAVLM_CONFIGS["wavlm_base_s80_md"]
    back_end = perturb(DiariZenBackEnd(13, 768), seed=6)
    folder = write_diarizen_folder(tmp_path / "dz", state, cfg, back_end, src="wavlm_base_s80_md")
    assert "pos_conv_embed.conv.parametrizations.weight.original0" in " ".join(state)
    model = read_diarizen(folder)
    wavs = torch.randn(1, 16000)
    with torch.no_grad():
        expected = back_end(wavlm(wavs))
        ours = model.eend(model.wavlm(wavs), None)
    assert float((ours - expected).abs().max()) < TOL
    assert model.wavlm.num_params() == wavlm.num_params()
    assert 18.5e6 < model.wavlm.num_params() < 19.5e6  # "about 18.9 M" (DiariZen's figures)


def test_errors_name_the_problem(tmp_path):
    folder, ckpt, back_end, _ = tiny_folder(tmp_path)
    state = torch.load(folder / "pytorch_model.bin")
    # unknown key
    torch.save({**state, "conformer.extra.weight": torch.zeros(3)}, folder / "bad.bin")
    with pytest.raises(ValueError, match="conformer.extra.weight"):
        read_diarizen(folder, weights=folder / "bad.bin")
    # missing key
    torch.save({k: v for k, v in state.items() if k != "proj.bias"}, folder / "bad.bin")
    with pytest.raises(ValueError, match="proj.bias"):
        read_diarizen(folder, weights=folder / "bad.bin")
    # wrong shape (classifier for a 16-class powerset, 4 speakers at a time)
    bad = dict(state, **{"classifier.weight": torch.zeros(16, 32), "classifier.bias": torch.zeros(16)})
    torch.save(bad, folder / "bad.bin")
    with pytest.raises(ValueError, match=r"classifier.weight.*\(16, 32\).*\(11, 32\)"):
        read_diarizen(folder, weights=folder / "bad.bin")
    # unresolvable wavlm_src
    text = (folder / "config.toml").read_text()
    (folder / "config.toml").write_text(text.replace('"wavlm.bin"', '"missing.bin"'))
    with pytest.raises(ValueError, match="missing.bin"):
        read_diarizen(folder)
    (folder / "config.toml").write_text(text.replace("use_posi = false", "use_posi = true"))
    with pytest.raises(ValueError, match="use_posi"):
        read_diarizen(folder)
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2


def test_diarizer_exports_to_onnx_and_runs_it(tmp_path):
    """WavLM + EEND segmentation as ONNX (dynamic batch and time, padding mask), used by
    PrunedDiarizer with the same diarization as PyTorch."""
    from speechbrain_pruning.inference import PrunedDiarizer
    from speechbrain_pruning.onnx_export import export_onnx

    folder, _, _, _ = tiny_folder(tmp_path)
    # the tiny test WavLM has a 20-sample hop (6400 frames per 8 s): short windows
    convert_diarizen(folder, tmp_path / "exported", inference={"window": 2.0, "step": 1.0})
    rng = np.random.default_rng(1)
    sf.write(tmp_path / "rec.wav", 0.1 * rng.standard_normal(16000 * 5), 16000)
    report = export_onnx(tmp_path / "exported", int8=True, eval_files=[str(tmp_path / "rec.wav")])
    assert report["max_abs_diff"] < 1e-4 and report["output_shape"][2] == 11
    assert 0.0 <= report["int8"]["effect"]["frame_agreement"] <= 1.0
    model = PrunedDiarizer.from_hparams(source=tmp_path / "exported")
    model.set_params(inference_precision="fp32")
    wavs, lens = 0.1 * torch.randn(3, 20000), torch.tensor([1.0, 0.5, 0.8])
    with torch.no_grad():
        reference = model.graph(wavs, lens)
        onnx = model.use_onnx().run_graph(wavs, lens)
    assert (onnx[0] - reference[0]).abs().max() < 1e-4  # unpadded item
    torch_output = model.use_onnx(False)(str(tmp_path / "rec.wav")).speaker_diarization
    onnx_output = model.use_onnx()(str(tmp_path / "rec.wav")).speaker_diarization
    assert onnx_output == torch_output or abs(
        onnx_output.get_timeline().duration() - torch_output.get_timeline().duration()) < 0.1


def test_diarizen_v2_powerset_with_four_speakers_per_frame(tmp_path):
    """DiariZen v2 checkpoints: max_speakers_per_frame = 4, a 16-class powerset."""
    ta = make_torchaudio(seed=7)
    ckpt, oracle_wavlm = dphubert_from_torchaudio(ta, ta_kwargs(), **PRUNED)
    back_end = perturb(DiariZenBackEnd(4, 64, classes=16), seed=8)
    folder = write_diarizen_folder(tmp_path / "dz", ckpt["state_dict"], ckpt["config"], back_end,
                                   per_frame=4, extra_toml="")
    model = read_diarizen(folder)
    assert model.eend.powerset.num_classes == 16 and model.inference == {"window": 8.0}
    with torch.no_grad():
        expected = back_end(ta_hidden(oracle_wavlm, WAVS))
        ours = model.eend(model.wavlm(WAVS), None)
    assert float((ours - expected).abs().max()) < TOL
    assert model.eend.powerset.to_multilabel(ours).sum(-1).max() <= 4


def test_plda_trained_at_import_from_a_diarizen_data_folder(tmp_path):
    """--embedder + --plda-data (wav.scp + rttm, DiariZen's data layout) -> VBx export."""
    from speechbrain_pruning.inference import PrunedDiarizer
    from speechbrain_pruning.synthetic.meeting import make_meeting_corpus
    from speechbrain_pruning.synthetic.models import write_tiny_speaker_model

    folder, _, _, _ = tiny_folder(tmp_path)
    corpus = tmp_path / "meetings"
    make_meeting_corpus(corpus, splits={"train": 2}, duration=20.0, progress=False)
    data = tmp_path / "data" / "train"  # DiariZen: data/<corpus>/<split>/{wav.scp,rttm}
    data.mkdir(parents=True)
    wavs = sorted((corpus / "train" / "audio").glob("*.wav"))
    (data / "wav.scp").write_text("".join(f"{w.stem} {w}\n" for w in wavs))
    (data / "rttm").write_text("".join(r.read_text() for r in
                                       sorted((corpus / "train" / "rttm").glob("*.rttm"))))
    speaker = write_tiny_speaker_model(tmp_path / "speaker")
    assert main([str(folder), str(tmp_path / "exported"), "--embedder", str(speaker),
                 "--plda-data", str(data), "--lda-dim", "16"]) == 0
    exported = tmp_path / "exported"
    assert (exported / "plda.safetensors").is_file() and (exported / "embedder").is_dir()
    model = PrunedDiarizer.from_hparams(source=exported)
    params = model._params()
    assert params["clustering"] == "vbx" and params["plda"] == "plda.safetensors"
    model.set_params(window=2.0, step=1.0, inference_precision="fp32")
    output = model(str(wavs[0]))
    assert output.speaker_embeddings.shape[0] == len(output.speaker_diarization.labels())
    with pytest.raises(ValueError, match="needs an embedder"):
        convert_diarizen(folder, tmp_path / "x", plda_data=data)


def test_vbx_npz_plda_folder_is_converted_at_import(tmp_path):
    from speechbrain_pruning.diarization.plda import PLDA
    from speechbrain_pruning.synthetic.models import write_tiny_speaker_model

    folder, _, _, _ = tiny_folder(tmp_path)
    rng = np.random.default_rng(0)
    E, D = 64, 16  # the tiny speaker model's embedding size; LDA to 16
    plda_dir = tmp_path / "plda"
    plda_dir.mkdir()
    np.savez(plda_dir / "xvec_transform.npz", mean1=rng.normal(size=E),
             mean2=rng.normal(size=D), lda=rng.normal(size=(E, D)))
    np.savez(plda_dir / "plda.npz", mu=rng.normal(size=D),
             tr=rng.normal(size=(D, D)) + 4 * np.eye(D), psi=np.linspace(10, 1, D))
    speaker = write_tiny_speaker_model(tmp_path / "speaker")
    assert main([str(folder), str(tmp_path / "exported"), "--embedder", str(speaker),
                 "--plda", str(plda_dir)]) == 0
    shipped = PLDA.load(tmp_path / "exported" / "plda.safetensors")
    reference = PLDA.from_vbx_npz(plda_dir)
    x = rng.normal(size=(3, E))
    assert np.array_equal(shipped.transform(x), reference.transform(x))
    assert "clustering: vbx" in (tmp_path / "exported" / "hyperparams.yaml").read_text()


def test_diarizen_pipeline_with_its_wespeaker_embedder_and_plda(tmp_path):
    """DiariZen's own speaker model (pyannote's WeSpeaker ResNet34 checkpoint) and its
    plda/ folder: the import ships both and clusters with VBx."""
    from speechbrain_pruning.diarization.plda import PLDA
    from speechbrain_pruning.synthetic.models import write_random_wespeaker_checkpoint
    from speechbrain_pruning.inference import PrunedDiarizer

    from conftest import make_hf_wavlm
    from speechbrain_pruning.wavlm.dphubert import to_dphubert_config

    make_hf_wavlm(tmp_path / "hf")  # tiny, but with WavLM's 320-sample hop (the pipeline's)
    wavlm = PrunableWavLM.from_pretrained(tmp_path / "hf").eval()
    back_end = perturb(DiariZenBackEnd(wavlm.config.num_layers + 1, wavlm.config.hidden_size),
                       seed=3)
    folder = write_diarizen_folder(tmp_path / "dz", to_dphubert_state_dict(wavlm),
                                   to_dphubert_config(wavlm), back_end)
    rng = np.random.default_rng(0)
    E, D = 256, 32
    (folder / "plda").mkdir()
    np.savez(folder / "plda" / "xvec_transform.npz", mean1=rng.normal(size=E),
             mean2=rng.normal(size=D), lda=rng.normal(size=(E, D)))
    np.savez(folder / "plda" / "plda.npz", mu=rng.normal(size=D),
             tr=rng.normal(size=(D, D)) + 6 * np.eye(D), psi=np.linspace(10, 1, D))
    checkpoint = tmp_path / "pytorch_model.bin"
    write_random_wespeaker_checkpoint(checkpoint)
    exported = tmp_path / "exported"
    assert main([str(folder), str(exported), "--embedder", str(checkpoint)]) == 0
    assert (exported / "embedder" / "pytorch_model.bin").is_file()
    shipped = PLDA.load(exported / "plda.safetensors")
    x = rng.normal(size=(2, E))
    assert np.array_equal(shipped.transform(x), PLDA.from_vbx_npz(folder / "plda").transform(x))
    model = PrunedDiarizer.from_hparams(source=exported, savedir=tmp_path / "copy")
    assert model._params()["clustering"] == "vbx"
    model.set_params(window=2.0, step=1.0, inference_precision="fp32")
    sf.write(tmp_path / "rec.wav", 0.1 * rng.standard_normal(16000 * 4), 16000)
    pipeline = model._pipeline()  # the shipped WeSpeaker embeds the pipeline's crops
    crops = [0.1 * rng.standard_normal(16000), 0.1 * rng.standard_normal(24000)]
    assert pipeline.embed_crops(crops).shape == (2, E)
    output = model(str(tmp_path / "rec.wav"))
    assert output.speaker_embeddings is None or output.speaker_embeddings.shape[1] == E
