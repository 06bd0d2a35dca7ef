"""VoxCeleb speaker-verification recipe: smoke run, export, interface, resume, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_pruning.inference import PrunedSpeakerRecognition
from speechbrain_pruning.synthetic import make_voxceleb_mini

from conftest import make_hf_wavlm
from ddp import run_two_process_recipe
from device_scan import scan_brain_steps

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "VoxCeleb" / "SpeakerRec"
sys.path.insert(0, str(RECIPE))
import train  # noqa: E402


@pytest.fixture(scope="module")
def corpus_and_wavlm(tmp_path_factory):
    root = tmp_path_factory.mktemp("sv")
    make_voxceleb_mini(root / "vox", num_speakers=4, num_test_speakers=3, videos_per_speaker=2,
                       utts_per_video=2, min_seconds=1.0, max_seconds=2.0, num_trials=24,
                       progress=False)
    make_hf_wavlm(root / "wavlm")
    return root / "vox", root / "wavlm"


def recipe_args(corpus, wavlm, out, *extra, hparams="tiny_cpu.yaml"):
    return [
        str(RECIPE / "hparams" / hparams), f"--data_folder={corpus}",
        f"--wavlm_source={wavlm}", f"--output_folder={out}", "--hidden_size=32",
        "--num_hidden_states=4", "--out_n_neurons=4", "--batch_size=4", "--dev_ratio=0.25",
        "--segment_seconds=1.0", "--cohort_utts_per_speaker=2", "--asnorm_top_n=3",
        *extra,
    ]


def test_recipe_prunes_exports_and_interface_reloads(corpus_and_wavlm, tmp_path, monkeypatch):
    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "exp"
    created_on_cpu = scan_brain_steps(monkeypatch, train.SpeakerBrain)
    results = train.main(recipe_args(corpus, wavlm, out, "--number_of_epochs=2",
                                     "--target_sparsity=0.3"))
    assert not created_on_cpu  # every tensor of the steps follows the model's device
    exported = out / "exported"
    for name in ("hyperparams.yaml", "wavlm/config.json", "wavlm/model.safetensors",
                 "backend.ckpt", "pruning_report.json", "pruning_report.png", "README.md"):
        assert (exported / name).is_file(), name
    assert (out / "scores_gated" / "det_veri_test2.png").is_file()
    # physical pruning does not change the scores
    gated, final = results["gated"]["veri_test2"], results["exported"]["veri_test2"]
    assert final["eer"] == pytest.approx(gated["eer"], abs=1e-9)
    gated_scores = np.loadtxt(out / "scores_gated" / "scores_veri_test2.txt", usecols=2)
    final_scores = np.loadtxt(out / "scores_exported" / "scores_veri_test2.txt", usecols=2)
    # AS-norm scores are O(5): compare relative to their scale
    assert np.abs(gated_scores - final_scores).max() < 1e-4 * max(1.0, np.abs(gated_scores).max())
    report = json.loads((exported / "pruning_report.json").read_text())
    assert report["params_after"] == results["params"] < report["reference_params"]
    # onnx_export: int8 -> checked model.onnx, model.int8.onnx measured on the trial audio
    effect = results["onnx"]["int8"]["effect"]
    assert results["onnx"]["max_abs_diff"] < 1e-4 and effect["num_files"] > 5
    assert 0.9 < effect["cosine_min"] <= effect["cosine_mean"] <= 1.0 + 1e-6
    assert f"mean {effect['cosine_mean']:.4f}" in (exported / "README.md").read_text()

    model = PrunedSpeakerRecognition.from_hparams(source=exported, savedir=exported)
    # the decision threshold is the raw-cosine EER threshold (the interface scores raw cosine)
    assert model.hparams.threshold == pytest.approx(gated["cosine"]["eer_threshold"])
    trial = (corpus / "veri_test2.txt").read_text().split("\n")[0].split()
    score, decision = model.verify_files(corpus / "wav" / trial[1], corpus / "wav" / trial[2])
    assert isinstance(score, float) and isinstance(decision, bool) and -1 <= score <= 1
    wavs = torch.randn(3, 16000)
    emb = model.encode_batch(wavs, torch.tensor([1.0, 0.5, 0.8]))
    assert emb.shape == (3, 1, 64)
    # 8 kHz stereo: resampled, first channel taken
    wav16, _ = sf.read(corpus / "wav" / trial[1], dtype="float32")
    stereo = tmp_path / "stereo_8k.wav"
    sf.write(stereo, np.stack([wav16[::2], np.zeros_like(wav16[::2])], 1), 8000)
    score_8k, _ = model.verify_files(stereo, corpus / "wav" / trial[1])
    assert score_8k > 0.5  # the same utterance at a lower rate


def test_resume_after_interruption_mid_epoch(corpus_and_wavlm, tmp_path, monkeypatch):
    """Killed at step 5 (checkpoints every 2 steps), the same command finishes the run."""
    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "exp"
    args = recipe_args(corpus, wavlm, out, "--number_of_epochs=3", "--ckpt_interval_steps=2",
                       "--target_sparsity=0.3")
    original = train.SpeakerBrain.on_fit_batch_end

    def crash(self, batch, outputs, loss, should_step):
        original(self, batch, outputs, loss, should_step)
        if self.optimizer_step == 5:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(train.SpeakerBrain, "on_fit_batch_end", crash)
    with pytest.raises(KeyboardInterrupt):
        train.main(args)
    monkeypatch.setattr(train.SpeakerBrain, "on_fit_batch_end", original)
    latest = max((out / "save").glob("CKPT+*"), key=lambda p: p.stat().st_mtime)
    saved_step = int(torch.load(latest / "sparsity_controller.ckpt")["step_count"])
    assert 0 < saved_step < 5  # an intra-epoch checkpoint before the kill
    steps = {}

    def record(self, *a):
        original(self, *a)
        steps["first"] = steps.get("first", int(self.hparams.sparsity_controller.step_count))
        steps["last"] = int(self.hparams.sparsity_controller.step_count)

    monkeypatch.setattr(train.SpeakerBrain, "on_fit_batch_end", record)
    results = train.main(args)
    # resumed from that checkpoint: the controller continues where it stopped
    assert steps["first"] == saved_step + 1
    assert steps["last"] == 9  # 3 epochs x 3 steps, as an uninterrupted run
    assert results["exported"]["veri_test2"]["eer"] == pytest.approx(
        results["gated"]["veri_test2"]["eer"]
    )


@pytest.mark.timeout(600)
def test_two_process_torchrun_exports_what_it_trained(corpus_and_wavlm, tmp_path):
    """2 processes (gloo, CPU): the exported model scores exactly as the trained
    (gated, DDP-wrapped) one, with strict loading and no parameter-load warning."""
    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "ddp"
    run_two_process_recipe(RECIPE / "train.py", recipe_args(
        corpus, wavlm, out, "--number_of_epochs=2", "--target_sparsity=0.3"), out)
    results = json.loads((out / "results.json").read_text())
    gated, exported = results["gated"]["veri_test2"], results["exported"]["veri_test2"]
    assert exported["eer"] == pytest.approx(gated["eer"], abs=1e-9)
    assert exported["min_dcf"] == pytest.approx(gated["min_dcf"], abs=1e-9)
    gated_scores = np.loadtxt(out / "scores_gated" / "scores_veri_test2.txt", usecols=2)
    final_scores = np.loadtxt(out / "scores_exported" / "scores_veri_test2.txt", usecols=2)
    assert np.abs(gated_scores - final_scores).max() < 1e-4 * max(1.0, np.abs(gated_scores).max())
    # the back-end file holds the unwrapped module's keys
    keys = torch.load(out / "exported" / "backend.ckpt", weights_only=True).keys()
    assert keys and not any(k.startswith("module.") for k in keys)


def test_ecapa_backend_through_the_recipe(corpus_and_wavlm, tmp_path):
    """The ECAPA configuration, shrunk by command-line overrides only."""
    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "ecapa"
    results = train.main(recipe_args(
        corpus, wavlm, out, "--number_of_epochs=1", "--num_workers=0", "--embedding_dim=64",
        "--trial_lists=[veri_test2.txt]", "--backend_kwargs={channels: [32, 32, 32, 32, 96]}",
        hparams="ecapa_base_plus.yaml",
    ))
    assert results["exported"]["veri_test2"]["eer"] == pytest.approx(
        results["gated"]["veri_test2"]["eer"]
    )
    model = PrunedSpeakerRecognition.from_hparams(source=out / "exported")
    assert type(model.mods.backend).__name__ == "WeightedLayerECAPA"
    assert results["onnx"]["max_abs_diff"] < 1e-4  # the ECAPA back-end exports to ONNX too
    wavs = 0.1 * torch.randn(2, 20000)
    lens = torch.tensor([1.0, 0.6])
    reference = model.encode_batch(wavs, lens)
    assert (model.use_onnx().encode_batch(wavs, lens) - reference).abs().max() < 1e-4


@pytest.mark.parametrize("name", ["mhfa_base_plus", "mhfa_large", "ecapa_base_plus"])
def test_full_size_hparams_load(name, tmp_path):
    """The GPU configurations parse and build (WavLM sizes from a local checkpoint)."""
    from speechbrain_pruning.pruning.recipe import load_hparams

    make_hf_wavlm(tmp_path / "hf")
    hparams = load_hparams(RECIPE / "hparams" / f"{name}.yaml", {
            "data_folder": str(tmp_path), "wavlm_source": str(tmp_path / "hf"),
            "output_folder": str(tmp_path / "out"),
        })
    assert hparams["wavlm"].prune_units == ("conv", "head", "attlayer", "interm", "ffnlayer")
    assert hparams["sparsity_controller"].target == 0.7
    backend = hparams["backend"]
    assert backend.num_layers == hparams["num_hidden_states"]


def test_padded_batch_embeddings_equal_single_files(small_export):
    """Through the interface, a padded batch gives each file exactly its own embedding
    (frame counts come from the conv front-end, not from rounding relative lengths)."""
    model = PrunedSpeakerRecognition.from_hparams(source=small_export)
    # lengths whose frame count differs from round(relative length * T)
    lengths = [16000, 4182, 7035, 15149]
    wavs = torch.zeros(len(lengths), max(lengths))
    singles = []
    for i, n in enumerate(lengths):
        wavs[i, :n] = torch.randn(n)
        singles.append(model.encode_batch(wavs[i:i + 1, :n])[0, 0])
    batch = model.encode_batch(wavs, torch.tensor(lengths) / max(lengths))
    for i in range(len(lengths)):
        assert (batch[i, 0] - singles[i]).abs().max() < 1e-4, i


@pytest.fixture
def small_export(tmp_path):
    """An untrained exported speaker model (random WavLM + MHFA), built in a second."""
    from speechbrain_pruning import PrunableWavLM
    from speechbrain_pruning.speaker import MHFA
    from speechbrain_pruning.pruning.export import export_model

    make_hf_wavlm(tmp_path / "hf")
    kwargs = {"num_layers": 4, "feat_dim": 32, "num_heads": 2, "compression_dim": 8,
              "embed_dim": 16}
    torch.manual_seed(0)
    export_model(tmp_path / "sv", PrunableWavLM.from_pretrained(tmp_path / "hf"),
                 {"backend": MHFA(**kwargs)},
                 {"backend": ("speechbrain_pruning.speaker.MHFA", kwargs)},
                 "PrunedSpeakerRecognition", hparams={"threshold": 0.5})
    return tmp_path / "sv"


def test_bad_audio_gives_errors_naming_file_or_batch_item(small_export, tmp_path):
    model = PrunedSpeakerRecognition.from_hparams(source=small_export)
    rng = np.random.default_rng(0)
    good = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    sf.write(tmp_path / "good.wav", good, 16000, subtype="FLOAT")
    bad = good.copy()
    bad[1234] = np.nan
    sf.write(tmp_path / "nan.wav", bad, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"nan\.wav contains 1 NaN/Inf sample.*1234"):
        model.verify_files(tmp_path / "good.wav", tmp_path / "nan.wav")
    wavs = torch.from_numpy(np.stack([good, bad]))
    with pytest.raises(ValueError, match="batch item 1"):
        model.encode_batch(wavs)
    with pytest.raises(ValueError, match=r"\(0, 1\]; batch item 0 has 1.5"):
        model.encode_batch(wavs[:1], torch.tensor([1.5]))
    with pytest.raises(ValueError, match="batch item 1"):
        model.encode_batch(torch.zeros(2, 16000), torch.tensor([1.0, 0.0]))


def test_integer_pcm_tensors_are_scaled_like_files(small_export, tmp_path):
    """An int16 tensor gives the embedding of the same audio read from a PCM_16 file."""
    model = PrunedSpeakerRecognition.from_hparams(source=small_export)
    rng = np.random.default_rng(1)
    pcm = (rng.standard_normal(16000) * 3000).astype(np.int16)
    sf.write(tmp_path / "pcm16.wav", pcm, 16000, subtype="PCM_16")
    from_file = model.encode_file(tmp_path / "pcm16.wav")
    from_tensor = model.encode_batch(torch.from_numpy(pcm)[None])[0, 0]
    assert torch.allclose(from_file, from_tensor, atol=1e-5)
    # the samples the model sees are exactly those of the file (not +-32767 floats)
    seen, _ = model.prepare_batch(torch.from_numpy(pcm)[None])
    assert torch.equal(seen[0], model.load_file(tmp_path / "pcm16.wav"))
    for dtype, peak in ((torch.int32, 2**31), (torch.int8, 128)):
        assert float(model.prepare_batch(torch.tensor([[-peak]], dtype=dtype))[0]) == -1.0


def test_exported_folder_loads_strictly(small_export):
    """A wrong back-end file or a truncated WavLM is an error naming the file."""
    import shutil

    folder = small_export
    backend = torch.load(folder / "backend.ckpt", weights_only=True)
    original = (folder / "backend.ckpt").read_bytes()
    # saved from a DDP-wrapped module: every key prefixed with "module."
    torch.save({f"module.{k}": v for k, v in backend.items()}, folder / "backend.ckpt")
    with pytest.raises(ValueError, match=r"backend\.ckpt does not fit MHFA: missing keys .*"
                                         r"DDP/DataParallel"):
        PrunedSpeakerRecognition.from_hparams(source=folder)
    extra = dict(backend, stray=torch.zeros(1))
    torch.save(extra, folder / "backend.ckpt")
    with pytest.raises(ValueError, match=r"backend\.ckpt .*unexpected keys \['stray'\]"):
        PrunedSpeakerRecognition.from_hparams(source=folder)
    (folder / "backend.ckpt").write_bytes(original[:100])
    with pytest.raises(RuntimeError, match=r"backend\.ckpt \(truncated or corrupt"):
        PrunedSpeakerRecognition.from_hparams(source=folder)
    (folder / "backend.ckpt").write_bytes(original)
    weights = folder / "wavlm" / "model.safetensors"
    shutil.copy(weights, folder / "full.safetensors")
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(RuntimeError, match=r"wavlm/model\.safetensors \(truncated or corrupt"):
        PrunedSpeakerRecognition.from_hparams(source=folder)
    shutil.copy(folder / "full.safetensors", weights)
    assert PrunedSpeakerRecognition.from_hparams(source=folder).encode_batch(
        torch.randn(1, 8000)).shape == (1, 1, 16)


def test_load_exported_picks_the_interface_the_folder_names(small_export):
    """The diarizer loads a speaker embedder this way, without importing speaker/."""
    from speechbrain_pruning.pretrained import interface_class_of, load_exported

    assert interface_class_of(small_export) == \
        "speechbrain_pruning.inference.PrunedSpeakerRecognition"
    model = load_exported(small_export)
    assert isinstance(model, PrunedSpeakerRecognition)
    assert model.encode_batch(torch.randn(2, 8000)).shape == (2, 1, 16)
    with pytest.raises(ValueError, match="not an exported model folder"):
        load_exported(small_export / "wavlm")
