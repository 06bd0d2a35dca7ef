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
