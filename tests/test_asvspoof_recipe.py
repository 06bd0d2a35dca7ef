"""ASVspoof5 countermeasure recipe: smoke run, export, PrunedSpoofDetector, resume, configs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from speechbrain_pruning.inference import PrunedSpoofDetector
from speechbrain_pruning.spoofing.metrics import read_scores
from speechbrain_pruning.synthetic.spoof import make_asvspoof5_mini

from conftest import make_hf_wavlm

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "ASVspoof5" / "CM"


@pytest.fixture(scope="module")
def cm_train():
    """The recipe's train module (imported by path: both recipes are named train.py)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("asvspoof5_cm_train", RECIPE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus_and_wavlm(tmp_path_factory):
    root = tmp_path_factory.mktemp("cm")
    make_asvspoof5_mini(root / "as5", num_speakers=4,
                        utts_per_speaker={"train": 8, "dev": 4, "eval": 4},
                        min_seconds=1.0, max_seconds=2.0, progress=False)
    make_hf_wavlm(root / "wavlm")
    return root / "as5", root / "wavlm"


def recipe_args(corpus, wavlm, out, *extra, hparams="tiny_cpu.yaml"):
    return [str(RECIPE / "hparams" / hparams), f"--data_folder={corpus}",
            f"--wavlm_source={wavlm}", f"--output_folder={out}", "--hidden_size=32",
            "--num_hidden_states=4", "--batch_size=4", "--segment_seconds=1.0", *extra]


def results_labels(corpus, ids):
    """1 = bona fide, in the order of ``ids``, from the eval protocol."""
    keys = {f[1]: f[8] for f in (line.split() for line in
            (corpus / "ASVspoof5.eval.track_1.tsv").read_text().splitlines())}
    return [1 if keys[i] == "bonafide" else 0 for i in ids]


def test_recipe_scores_exports_and_detector_reloads(cm_train, corpus_and_wavlm, tmp_path,
                                                    monkeypatch):
    from device_scan import scan_brain_steps

    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "exp"
    created_on_cpu = scan_brain_steps(monkeypatch, cm_train.SpoofBrain)
    results = cm_train.main(recipe_args(corpus, wavlm, out, "--number_of_epochs=2"))
    assert not created_on_cpu  # every tensor of the steps follows the model's device
    for name in ("hyperparams.yaml", "wavlm/model.safetensors", "backend.ckpt",
                 "classifier.ckpt", "pruning_report.json", "pruning_report.png", "README.md"):
        assert (out / "exported" / name).is_file(), name
    ids, gated = read_scores(out / "scores_gated" / "scores_eval.txt")
    ids2, exported = read_scores(out / "scores_exported" / "scores_eval.txt")
    assert ids == ids2 and len(ids) == 16
    assert np.abs(gated - exported).max() < 1e-4  # physical pruning changes no score
    table = (out / "scores_gated" / "results_eval.md").read_text()
    assert "A05" in table and "C01" in table  # per-attack and per-codec breakdowns
    assert results["exported"]["eval"]["eer"] == pytest.approx(results["gated"]["eval"]["eer"])

    # calibration fitted on dev: raw and calibrated metrics on every split
    from speechbrain_pruning.spoofing.calibration import LinearCalibration
    from speechbrain_pruning.spoofing.metrics import bayes_threshold, evaluate_cm

    calibration = LinearCalibration.from_dict(results["gated"]["dev"]["calibrated"]["calibration"])
    _, llrs = read_scores(out / "scores_gated" / "scores_eval.llr.txt")
    assert np.allclose(llrs, calibration(gated), atol=1e-6)
    assert results["gated"]["eval"]["calibrated"]["act_dcf"] == pytest.approx(
        evaluate_cm(llrs, results_labels(corpus, ids))["act_dcf"])
    for split in ("dev", "eval"):
        r = results["gated"][split]
        assert r["calibrated"]["min_dcf"] == pytest.approx(r["min_dcf"], abs=1e-9)  # monotone map
        assert r["calibrated"]["eer"] == pytest.approx(r["eer"], abs=1e-9)
        assert r["calibrated"]["min_cllr"] == pytest.approx(r["min_cllr"], abs=1e-6)
    # on dev (where it was fitted) calibration cannot make Cllr worse than the affine optimum
    assert results["gated"]["dev"]["calibrated"]["cllr"] <= results["gated"]["dev"]["cllr"] + 1e-9
    assert "calibrated (LLR)" in table

    model = PrunedSpoofDetector.from_hparams(source=out / "exported", savedir=out / "exported")
    first = sorted((corpus / "flac_E_eval").glob("*.flac"))[0]
    raw = model.raw_score_file(first)
    assert raw == pytest.approx(float(gated[ids.index(first.stem)]), abs=1e-4)
    score = model.score_file(first)  # an LLR
    assert score == pytest.approx(float(calibration(raw)), abs=1e-5)
    assert model.hparams.threshold == pytest.approx(bayes_threshold())
    assert model.hparams.raw_threshold == pytest.approx(results["gated"]["dev"]["eer_threshold"])
    assert model.classify_file(first) == ("bonafide" if score >= model.hparams.threshold
                                          else "spoof")
    card = (out / "exported" / "README.md").read_text()
    assert "eval act_dcf (calibrated)" in card and "## ONNX deployment" in card
    effect = results["onnx"]["int8"]["effect"]  # int8 measured on the eval audio
    assert effect["num_files"] == 16 and 0.0 <= effect["decision_flips"] <= 1.0
    assert model.score_batch(torch.randn(3, 16000), torch.tensor([1.0, 0.6, 0.9])).shape == (3,)
    # ONNX: the whole countermeasure (pruned WavLM + SSL-AASIST + head), padded batches
    from speechbrain_pruning.onnx_export import export_onnx

    assert export_onnx(out / "exported")["max_abs_diff"] < 1e-4
    wavs, lens = 0.1 * torch.randn(3, 20000), torch.tensor([1.0, 0.5, 0.8])
    reference = model.score_batch(wavs, lens)
    assert (model.use_onnx().score_batch(wavs, lens) - reference).abs().max() < 1e-4
    model.use_onnx(False)
    # bad input: errors naming the file / batch item, never a NaN score
    import soundfile as sf

    audio, rate = sf.read(first, dtype="float32")
    audio[10] = np.inf
    sf.write(tmp_path / "inf.wav", audio, rate, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"inf\.wav contains 1 NaN/Inf"):
        model.score_file(tmp_path / "inf.wav")
    wavs = torch.randn(2, 16000)
    wavs[1, 5] = float("nan")
    with pytest.raises(ValueError, match="batch item 1"):
        model.score_batch(wavs)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        model.score_batch(wavs[:1], torch.tensor([2.0]))
    pcm = (torch.from_numpy(audio[:16000]).clamp(-1, 1) * 32767).to(torch.int16)
    assert float(model.score_batch(pcm[None])[0]) == pytest.approx(
        float(model.score_batch(pcm[None].float() / 32768)[0]), abs=1e-6)


def test_resume_after_interruption(cm_train, corpus_and_wavlm, tmp_path, monkeypatch):
    corpus, wavlm = corpus_and_wavlm
    args = recipe_args(corpus, wavlm, tmp_path / "exp", "--number_of_epochs=2",
                       "--ckpt_interval_steps=3")
    original = cm_train.SpoofBrain.on_fit_batch_end

    def crash(self, *a):
        original(self, *a)
        if self.optimizer_step == 7:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(cm_train.SpoofBrain, "on_fit_batch_end", crash)
    with pytest.raises(KeyboardInterrupt):
        cm_train.main(args)
    monkeypatch.setattr(cm_train.SpoofBrain, "on_fit_batch_end", original)
    seen = []

    def record(self, *a):
        original(self, *a)
        seen.append(int(self.hparams.sparsity_controller.step_count))

    monkeypatch.setattr(cm_train.SpoofBrain, "on_fit_batch_end", record)
    cm_train.main(args)
    assert seen[0] == 7  # resumed after the step-6 checkpoint
    assert seen[-1] == 16  # 2 epochs x 8 steps, like an uninterrupted run


def test_aasist_backend_through_the_recipe(cm_train, corpus_and_wavlm, tmp_path):
    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "aasist"
    results = cm_train.main(recipe_args(
        corpus, wavlm, out, "--number_of_epochs=1", "--num_workers=0",
        "--rawboost_algo=5", "--augment_prob=1.0", hparams="aasist_base_plus.yaml",
    ))
    assert results["exported"]["eval"]["eer"] == pytest.approx(results["gated"]["eval"]["eer"])
    model = PrunedSpoofDetector.from_hparams(source=out / "exported")
    assert type(model.mods.backend).__name__ == "SSLAASIST"
    # the ONNX graph keeps AASIST's node pooling dynamic (checked on another padded batch)
    assert results["onnx"]["max_abs_diff"] < 1e-4


@pytest.mark.parametrize("name", ["mhfa_base", "mhfa_large", "aasist_base_plus"])
def test_full_size_hparams_load(name, tmp_path):
    from speechbrain_pruning.pruning.recipe import load_hparams

    make_hf_wavlm(tmp_path / "hf")
    hparams = load_hparams(RECIPE / "hparams" / f"{name}.yaml", {"data_folder": str(tmp_path),
                           "wavlm_source": str(tmp_path / "hf"),
                           "output_folder": str(tmp_path / "out"),
                           "sparsity_schedule": "sigmoid"})
    assert hparams["sparsity_controller"].schedule == "sigmoid"
    assert hparams["sparsity_controller"].target == 0.1
    assert hparams["backend"].num_layers == hparams["num_hidden_states"]


@pytest.mark.timeout(600)
def test_two_process_torchrun_exports_what_it_trained(corpus_and_wavlm, tmp_path):
    """2 processes (gloo, CPU): exported CM scores equal the trained model's."""
    import json

    from ddp import run_two_process_recipe

    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "ddp"
    run_two_process_recipe(RECIPE / "train.py",
                           recipe_args(corpus, wavlm, out, "--number_of_epochs=2"), out)
    ids, gated = read_scores(out / "scores_gated" / "scores_eval.txt")
    ids2, exported = read_scores(out / "scores_exported" / "scores_eval.txt")
    assert ids == ids2 and len(ids) == 16
    assert np.abs(gated - exported).max() < 1e-4
    results = json.loads((out / "results.json").read_text())
    for metric in ("eer", "min_dcf"):
        assert results["exported"]["eval"][metric] == pytest.approx(
            results["gated"]["eval"][metric], abs=1e-9)
    for name in ("backend", "classifier"):
        keys = torch.load(out / "exported" / f"{name}.ckpt", weights_only=True).keys()
        assert not any(k.startswith("module.") for k in keys)


def test_asvspoof2019_la_reports_min_tdcf(cm_train, corpus_and_wavlm, tmp_path):
    """The 2019 LA layout: min t-DCF against the organisers' ASV scores of dev and eval."""
    from speechbrain_pruning.spoofing.tdcf import evaluate_tdcf
    from speechbrain_pruning.synthetic.spoof import make_asvspoof2019_la_mini

    _, wavlm = corpus_and_wavlm
    info = make_asvspoof2019_la_mini(tmp_path / "la", num_speakers=4,
                                     utts_per_speaker={"train": 8, "dev": 4, "eval": 4},
                                     min_seconds=1.0, max_seconds=2.0, progress=False)
    out = tmp_path / "exp"
    results = cm_train.main(recipe_args(tmp_path / "la", wavlm, out, "--number_of_epochs=1",
                                        "--onnx_export=null"))
    for split in ("dev", "eval"):
        tdcf = results["gated"][split]["tdcf"]
        ids, scores = read_scores(out / "scores_gated" / f"scores_{split}.txt")
        expected = evaluate_tdcf(scores, _la_labels(info, split, ids),
                                 info["asv_scores"][split])
        assert tdcf["min_tdcf"] == pytest.approx(expected["min_tdcf"])
        assert 0.0 <= tdcf["min_tdcf"] <= 1.0
        assert "min t-DCF" in (out / "scores_gated" / f"results_{split}.md").read_text()
    assert "eval min t-DCF" in (out / "exported" / "README.md").read_text()
    assert results["exported"]["eval"]["tdcf"]["min_tdcf"] == pytest.approx(
        results["gated"]["eval"]["tdcf"]["min_tdcf"], abs=1e-6)


def _la_labels(info, split, ids):
    keys = {f[1]: f[4] for f in (line.split() for line in
            Path(info["protocols"][split]).read_text().splitlines())}
    return [1 if keys[i] == "bonafide" else 0 for i in ids]
