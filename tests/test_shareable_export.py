"""Exported folders travel through SpeechBrain's fetching (local folder or model hub)."""

import json
import shutil

import pytest
import torch

from speechbrain_pruning.inference import PrunedSpeakerRecognition
from speechbrain_pruning.pretrained import MANIFEST, fetch_exported
from speechbrain_pruning.synthetic.models import write_tiny_speaker_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return write_tiny_speaker_model(tmp_path_factory.mktemp("share") / "sv")


def test_manifest_lists_every_file(exported):
    files = json.loads((exported / MANIFEST).read_text())["files"]
    on_disk = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*")
                     if p.is_file() and p.name != MANIFEST)
    assert files == on_disk
    assert "hyperparams.yaml" in files and "backend.ckpt" in files
    assert any(f.startswith("wavlm/") for f in files)  # nested folders included


def test_fetched_into_a_separate_savedir_equals_the_original(exported, tmp_path):
    original = PrunedSpeakerRecognition.from_hparams(source=exported)
    copy = PrunedSpeakerRecognition.from_hparams(source=exported, savedir=tmp_path / "copy")
    assert (tmp_path / "copy" / "wavlm" / "config.json").is_file()
    assert not any(p.is_symlink() for p in (tmp_path / "copy").rglob("*"))  # stands alone
    assert copy.hparams.model_folder == str((tmp_path / "copy").resolve())
    wavs = torch.randn(2, 16000)
    assert torch.equal(copy.encode_batch(wavs), original.encode_batch(wavs))
    # the copy works without the original
    moved = tmp_path / "moved_original"
    shutil.move(str(exported), moved)
    try:
        again = PrunedSpeakerRecognition.from_hparams(source=tmp_path / "copy")
        assert torch.equal(again.encode_batch(wavs), original.encode_batch(wavs))
    finally:
        shutil.move(str(moved), exported)


def test_hub_id_needs_network_permission(tmp_path):
    with pytest.raises(FileNotFoundError, match="network access not allowed"):
        fetch_exported("someone/some-pruned-model", tmp_path / "hub")
    with pytest.raises(ValueError, match="give savedir"):
        PrunedSpeakerRecognition.from_hparams(source="someone/some-pruned-model")
