"""ONNX export: dynamic batch / time, padding mask as input, ONNX Runtime = PyTorch."""

import json

import pytest
import torch

from speechbrain_pruning.inference import PrunedSpeakerRecognition
from speechbrain_pruning.onnx_export import export_onnx
from speechbrain_pruning.synthetic.models import write_tiny_speaker_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return write_tiny_speaker_model(tmp_path_factory.mktemp("onnx") / "sv")


def test_speaker_model_onnx_matches_pytorch_on_padded_batches(exported):
    report = export_onnx(exported)
    assert report["max_abs_diff"] < 1e-4 and report["check_shape"] == [3, 52800]
    model = PrunedSpeakerRecognition.from_hparams(exported)
    for batch, samples, lens in ((1, 16000, [1.0]), (4, 27000, [1.0, 0.3, 0.75, 0.5])):
        wavs = 0.1 * torch.randn(batch, samples)
        lens = torch.tensor(lens)
        reference = model.use_onnx(False).encode_batch(wavs, lens)
        onnx = model.use_onnx().encode_batch(wavs, lens)
        assert onnx.shape == reference.shape == (batch, 1, 64)
        assert (onnx - reference).abs().max() < 1e-4
    # padding is masked: an utterance scores the same alone and in a padded batch
    alone = model.encode_batch(wavs[1:2, : int(0.3 * 27000)])
    assert (alone[0] - onnx[1]).abs().max() < 1e-4
    assert json.loads((exported / "onnx_report.json").read_text())["model.onnx"]["atol"] == 1e-4


def test_wavlm_alone_and_errors(exported, tmp_path):
    report = export_onnx(exported, wavlm_only=True)
    assert report["output_shape"] == [5, 3, 164, 128]  # [L+1, B, T, D], T from the check batch
    assert report["max_abs_diff"] < 1e-4
    model = PrunedSpeakerRecognition.from_hparams(exported)
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        model.use_onnx(tmp_path / "missing.onnx")


def test_int8_export_is_measured_and_written_into_the_model_card(exported, tmp_path):
    import numpy as np
    import soundfile as sf

    from speechbrain_pruning.pruning.export import write_manifest

    rng = np.random.default_rng(0)
    files = []
    for i in range(4):
        files.append(tmp_path / f"utt{i}.wav")
        sf.write(files[-1], 0.1 * rng.standard_normal(16000 + 3000 * i), 16000)
    write_manifest(exported)
    report = export_onnx(exported, int8=True, eval_files=[str(f) for f in files])
    effect = report["int8"]["effect"]
    assert effect["num_files"] == 4
    assert 0.9 < effect["cosine_min"] <= effect["cosine_mean"] <= 1.0 + 1e-6
    assert report["int8"]["bytes"] < report["int8"]["fp32_bytes"]
    card = (exported / "README.md").read_text()
    assert card.count("## ONNX deployment") == 1
    assert f"mean {effect['cosine_mean']:.4f}" in card
    manifest = json.loads((exported / "manifest.json").read_text())["files"]
    assert {"model.onnx", "model.int8.onnx", "onnx_report.json"} <= set(manifest)
    model = PrunedSpeakerRecognition.from_hparams(exported).use_onnx(int8=True)
    wav = torch.from_numpy(sf.read(files[0], dtype="float32")[0])[None]
    int8 = model.encode_batch(wav).reshape(-1)
    fp32 = model.use_onnx(False).encode_batch(wav).reshape(-1)
    cosine = float(torch.nn.functional.cosine_similarity(int8, fp32, dim=0))
    assert abs(cosine - 1.0) < 0.1 and not torch.equal(int8, fp32)  # really quantised
    # a second export replaces the card section instead of adding one
    export_onnx(exported, int8=True)
    card = (exported / "README.md").read_text()
    assert card.count("## ONNX deployment") == 1 and "effect not measured" in card


def test_backend_chosen_in_run_opts(exported):
    if not (exported / "model.int8.onnx").is_file():
        export_onnx(exported, int8=True)
    wavs = 0.1 * torch.randn(2, 20000)
    reference = PrunedSpeakerRecognition.from_hparams(exported).encode_batch(wavs)
    for backend in ("onnx", "onnx-int8"):
        model = PrunedSpeakerRecognition.from_hparams(
            exported, run_opts={"backend": backend, "onnx_threads": 1, "device": "cpu"})
        assert model._onnx is not None
        assert model._onnx._model_path.endswith("model.int8.onnx" if backend == "onnx-int8"
                                                else "model.onnx")
        out = model.encode_batch(wavs)
        assert torch.nn.functional.cosine_similarity(out, reference, dim=-1).min() > 0.99
    with pytest.raises(ValueError, match="backend must be"):
        PrunedSpeakerRecognition.from_hparams(exported, run_opts={"backend": "tensorrt"})
