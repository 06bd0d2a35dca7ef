"""pyannote's WeSpeaker ResNet34 without pyannote.audio.

The oracle below is an independent, functional transcription of pyannote's
``WeSpeakerResNet34.forward`` (``wespeaker/__init__.py`` and ``resnet.py``,
``blocks/pooling.py``): vmapped Kaldi fbank of ``waveforms * 2**15``, minus
its time mean, ResNet34 (BasicBlock, [3, 4, 6, 3], 32 channels), TSTP
(``(dimension channel)`` flattening, mean and unbiased std, or pyannote's
weighted statistics), ``seg_1``. It reads the checkpoint's state dict
directly, so it shares no code with the module under test.
"""

import functools
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi

from speechbrain_pruning.diarization import wespeaker as W
from speechbrain_pruning.synthetic import models as M
from speechbrain_pruning.synthetic.models import write_random_wespeaker_checkpoint
from speechbrain_pruning.diarization.embedders import CropEmbedder, load_embedder, wrap_embedder
from speechbrain_pruning.diarization.pipeline import SlidingWindowDiarizer

SR = 16000


# ------------------------------------------------------------------ oracle
def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"],
                        sd[p + ".weight"], sd[p + ".bias"], training=False, eps=1e-5)


def _block(x, sd, p, stride):
    out = F.relu(_bn(F.conv2d(x, sd[p + ".conv1.weight"], stride=stride, padding=1), sd,
                     p + ".bn1"))
    out = _bn(F.conv2d(out, sd[p + ".conv2.weight"], stride=1, padding=1), sd, p + ".bn2")
    if p + ".shortcut.0.weight" in sd:
        short = _bn(F.conv2d(x, sd[p + ".shortcut.0.weight"], stride=stride), sd,
                    p + ".shortcut.1")
    else:
        short = x
    return F.relu(out + short)


def reference_forward(sd, waveforms, weights=None, hp=None):
    """pyannote ``WeSpeakerResNet34.forward(waveforms [B, 1, S], weights)``."""
    hp = dict(W.DEFAULT_HPARAMS, **(hp or {}))
    fbank = functools.partial(kaldi.fbank, num_mel_bins=hp["num_mel_bins"],
                              frame_length=hp["frame_length"], frame_shift=hp["frame_shift"],
                              dither=hp["dither"], sample_frequency=hp["sample_rate"],
                              window_type=hp["window_type"], use_energy=hp["use_energy"])
    feats = torch.vmap(fbank)(waveforms * (1 << 15))
    feats = feats - feats.mean(dim=1, keepdim=True)  # [B, T, F]
    x = feats.permute(0, 2, 1).unsqueeze(1)
    x = F.relu(_bn(F.conv2d(x, sd["resnet.conv1.weight"], padding=1), sd, "resnet.bn1"))
    for layer, n in zip(range(1, 5), (3, 4, 6, 3)):
        for i in range(n):
            x = _block(x, sd, f"resnet.layer{layer}.{i}", 2 if (i == 0 and layer > 1) else 1)
    B, C, Fq, T = x.shape
    seq = x.reshape(B, C * Fq, T)
    if weights is None:
        stats = torch.cat([seq.mean(-1), seq.std(-1, correction=1)], -1)
    else:
        w = weights[:, None]
        if w.shape[-1] != T:
            w = F.interpolate(w, size=T, mode="nearest")
        v1 = w.sum(2) + 1e-8
        mean = (seq * w).sum(2) / v1
        var = ((seq - mean[..., None]) ** 2 * w).sum(2) / (v1 - (w ** 2).sum(2) / v1 + 1e-8)
        stats = torch.cat([mean, var.sqrt()], 1)
    return F.linear(stats, sd["resnet.seg_1.weight"], sd["resnet.seg_1.bias"])


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("wespeaker") / "pytorch_model.bin"
    write_random_wespeaker_checkpoint(path, seed=3)
    return path


@pytest.fixture(scope="module")
def model(ckpt_path):
    return W.load_wespeaker(ckpt_path)


def _audio(B, S, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(B, S, generator=g)


def _assert_close(a, b, tol=1e-4):
    scale = b.abs().max().item()
    assert scale > 1e-3  # a non-degenerate model
    torch.testing.assert_close(a, b, atol=tol * max(1.0, scale), rtol=tol)


# ------------------------------------------------------------------- tests
def test_checkpoint_format(ckpt_path):
    ckpt = W.read_wespeaker_checkpoint(ckpt_path)
    assert set(ckpt) == {"state_dict", "pyannote.audio", "pytorch-lightning_version",
                         "hyper_parameters"}
    meta = ckpt["pyannote.audio"]
    assert meta["architecture"] == {"module": "pyannote.audio.models.embedding.wespeaker",
                                    "class": "WeSpeakerResNet34"}
    spec = meta["specifications"]
    assert type(spec)._pickled_name == "pyannote.audio.core.task.Specifications"
    assert spec.problem.args == (3,) and spec.resolution.args == (2,) and spec.duration == 5.0
    assert ckpt["hyper_parameters"] == W.DEFAULT_HPARAMS
    sd = ckpt["state_dict"]
    assert all(k.startswith("resnet.") for k in sd)
    assert sd["resnet.seg_1.weight"].shape == (256, 5120)
    assert "resnet.layer2.0.shortcut.0.weight" in sd and "resnet.layer1.0.shortcut.0.weight" \
        not in sd
    # the same globals a real pyannote file pickles; plain weights_only refuses them
    found = set(torch.serialization.get_unsafe_globals_in_checkpoint(ckpt_path))
    assert found == {"pyannote.audio.core.task.Specifications", "pyannote.audio.core.task.Problem",
                     "pyannote.audio.core.task.Resolution", "torch.torch_version.TorchVersion"}
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt_path, weights_only=True)
    assert W.is_wespeaker_checkpoint(ckpt_path)


def test_matches_reference_transcription(model, ckpt_path):
    sd = W.read_wespeaker_checkpoint(ckpt_path)["state_dict"]
    wavs = _audio(3, 24000)
    with torch.no_grad():
        ours = model(wavs)
        ref = reference_forward(sd, wavs[:, None])
        assert ours.shape == (3, 256)
        _assert_close(ours, ref)
        # [B, 1, S] input and frame weights (pyannote's weighted statistics)
        T = model.num_frames(24000)
        weights = (torch.rand(3, T, generator=torch.Generator().manual_seed(1)) > 0.3).float()
        _assert_close(model(wavs[:, None], weights=weights), reference_forward(sd, wavs[:, None],
                                                                               weights))
        # mismatched weight resolution: nearest interpolation
        w2 = torch.rand(3, 2 * T + 1, generator=torch.Generator().manual_seed(2))
        _assert_close(model(wavs, weights=w2), reference_forward(sd, wavs[:, None], w2))


def test_num_frames(model):
    for n in (1680, 16000, 24000, 24321):
        feats = torch.zeros(1, 1 + (n - 400) // 160, 80)
        x = torch.zeros(1, 256, 10, model.num_frames(n))
        with torch.no_grad():
            out = model.resnet.layer4(model.resnet.layer3(model.resnet.layer2(
                model.resnet.layer1(model.resnet.conv1(feats.transpose(1, 2)[:, None])))))
        assert out.shape[-1] == x.shape[-1]


def test_padded_batch_equals_each_alone(model):
    S = 20000
    wavs = _audio(4, S, seed=5)
    lens = torch.tensor([1.0, 0.71, 0.4, 0.05])  # the last one is shorter than min_samples
    with torch.no_grad():
        batch = model(wavs, lens)
        for b in range(4):
            n = int(round(lens[b].item() * S))
            alone = model(wavs[b:b + 1, :n])
            torch.testing.assert_close(batch[b:b + 1], alone, atol=1e-5, rtol=1e-5)
        # padding content is ignored
        noisy = wavs.clone()
        noisy[1, int(round(0.71 * S)):] = 1.0
        torch.testing.assert_close(model(noisy, lens), batch, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(batch).all()
    with pytest.raises(ValueError, match="equal length"):
        model(wavs, lens, weights=torch.ones(4, 10))


def test_hyper_parameters(tmp_path):
    plain = tmp_path / "convert.bin"  # like pyannote's convert.py: no hyper_parameters
    write_random_wespeaker_checkpoint(plain, seed=1, hyper_parameters=False)
    assert "hyper_parameters" not in W.read_wespeaker_checkpoint(plain)
    assert W.load_wespeaker(plain).hparams == W.DEFAULT_HPARAMS
    custom = tmp_path / "custom.bin"
    hp = {"num_mel_bins": 64, "frame_shift": 12, "window_type": "povey"}
    write_random_wespeaker_checkpoint(custom, seed=2, **hp)
    model = W.load_wespeaker(custom)
    assert model.hparams == dict(W.DEFAULT_HPARAMS, **hp)
    sd = W.read_wespeaker_checkpoint(custom)["state_dict"]
    wavs = _audio(2, 16000, seed=3)
    with torch.no_grad():
        _assert_close(model(wavs), reference_forward(sd, wavs[:, None], hp=hp))


_EXECUTED = []


def _side_effect():
    _EXECUTED.append(1)
    return {}


class _Evil:
    def __reduce__(self):
        return (_side_effect, ())


def test_load_errors(tmp_path, ckpt_path):
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        W.load_wespeaker(tmp_path / "missing.bin")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="junk.bin"):
        W.load_wespeaker(junk)
    assert not W.is_wespeaker_checkpoint(junk)

    good = W.read_wespeaker_checkpoint(ckpt_path)["state_dict"]
    cases = {
        "nostate.bin": ({"weights": good}, "no 'state_dict'"),
        "missing_key.bin": ({"state_dict": {k: v for k, v in good.items()
                                            if k != "resnet.seg_1.bias"}}, "does not fit"),
        "extra_key.bin": ({"state_dict": dict(good, **{"resnet.foo": torch.zeros(1)})},
                          "does not fit"),
        "shape.bin": ({"state_dict": dict(good, **{"resnet.seg_1.bias": torch.zeros(128)})},
                      "does not fit"),
        "arch.bin": ({"state_dict": good, "pyannote.audio": {"architecture": {
            "module": "pyannote.audio.models.embedding.wespeaker",
            "class": "WeSpeakerResNet293"}}}, "only WeSpeakerResNet34"),
        "hparams.bin": ({"state_dict": good, "hyper_parameters": {"num_channels": 2}},
                        "mono"),
        "unknown_hp.bin": ({"state_dict": good, "hyper_parameters": {"n_fft": 512}},
                           "unknown hyper_parameters"),
        "evil.bin": ({"state_dict": good, "x": _Evil()}, "refusing to load"),
    }
    for name, (obj, message) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(ValueError, match=message) as info:
            W.load_wespeaker(tmp_path / name)
        assert name in str(info.value)
    assert not _EXECUTED  # nothing from the refused file ran

    # a plain dict with a wrapper prefix still loads strictly
    torch.save({"state_dict": {"model." + k: v for k, v in good.items()}},
               tmp_path / "prefixed.bin")
    prefixed = W.load_wespeaker(tmp_path / "prefixed.bin")
    for k, v in prefixed.state_dict().items():
        assert torch.equal(v, good[k])


def test_other_pyannote_globals(tmp_path, ckpt_path, monkeypatch):
    """Unknown pyannote classes (e.g. 2.x ``Introspection``) become inert placeholders."""

    class Thing:
        def __init__(self):
            self.value = 7

    monkeypatch.setitem(M._PICKLE_AS, Thing, "pyannote.audio.core.model\nThing")
    good = W.read_wespeaker_checkpoint(ckpt_path)["state_dict"]
    path = tmp_path / "other.bin"
    torch.save({"state_dict": good, "thing": Thing(),
                "hyper_parameters": {"num_mel_bins": 80, "sample_rate": 16000}},
               path, pickle_module=M._pyannote_pickle)
    assert "pyannote.audio.core.model.Thing" in \
        torch.serialization.get_unsafe_globals_in_checkpoint(path)
    ckpt = W.read_wespeaker_checkpoint(path)
    assert type(ckpt["thing"])._pickled_name == "pyannote.audio.core.model.Thing"
    assert ckpt["thing"].value == 7
    assert W.load_wespeaker(path).hparams["num_mel_bins"] == 80


def test_embedder_and_pipeline(tmp_path, ckpt_path, model):
    emb = load_embedder(ckpt_path)
    assert isinstance(emb, CropEmbedder) and isinstance(emb.model, W.WeSpeakerEmbedder)
    # a Hugging Face snapshot folder (pytorch_model.bin, no hyperparams.yaml)
    assert isinstance(load_embedder(ckpt_path.parent).model, W.WeSpeakerEmbedder)
    assert isinstance(wrap_embedder(W.WeSpeakerEmbedder(model)), CropEmbedder)

    diarizer = SlidingWindowDiarizer(None, emb, window=2.0, sample_rate=SR, clustering="ahc",
                                     progress=False)
    crops = [np.asarray(_audio(1, 16000, seed=7)[0]), np.asarray(_audio(1, 9000, seed=8)[0])]
    out = diarizer.embed_crops(crops)
    assert out.shape == (2, 256) and np.isfinite(out).all()
    with torch.no_grad():
        for i, crop in enumerate(crops):
            alone = model(torch.from_numpy(crop)[None])[0].numpy()
            np.testing.assert_allclose(out[i], alone, atol=1e-4, rtol=1e-4)

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0" * 10)
    with pytest.raises(ValueError, match="pyannote WeSpeaker"):
        load_embedder(junk)
    with pytest.raises(FileNotFoundError):
        load_embedder(tmp_path / "nothing_here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="hyperparams.yaml"):
        load_embedder(tmp_path / "empty")


def test_full_pipeline_runs(ckpt_path):
    def segment(wavs):  # one local speaker where there is energy
        frames = wavs.unfold(1, 400, 320)
        return (frames.pow(2).mean(-1, keepdim=True) > 1e-3).float()

    diarizer = SlidingWindowDiarizer(segment, load_embedder(ckpt_path), window=2.0, step=1.0,
                                     clustering="ahc", progress=False)
    audio = torch.zeros(SR * 4)
    audio[SR:3 * SR] = 0.1 * torch.randn(2 * SR, generator=torch.Generator().manual_seed(0))
    out = diarizer(audio, uri="demo")
    assert out.speaker_embeddings.shape[1] == 256
    assert len(out.speaker_diarization) >= 1
