"""Diarization recipe: the three pruning modes, export, PrunedDiarizer, CLI, resume."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechbrain_pruning.diarization.cli import main as cli_main
from speechbrain_pruning.diarization.rttm import read_rttm
from speechbrain_pruning.inference import PrunedDiarizer
from speechbrain_pruning.synthetic.meeting import make_meeting_corpus
from speechbrain_pruning.synthetic.models import write_tiny_speaker_model

from conftest import make_hf_wavlm

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "AMI" / "Diarization"


@pytest.fixture(scope="module")
def ami_train():
    spec = importlib.util.spec_from_file_location("ami_diar_train", RECIPE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus_and_wavlm(tmp_path_factory):
    root = tmp_path_factory.mktemp("diar")
    make_meeting_corpus(root / "ami", layout="ami", splits={"train": 3, "dev": 1, "test": 1},
                        duration=20.0, progress=False)
    make_hf_wavlm(root / "wavlm")
    write_tiny_speaker_model(root / "speaker")
    return root / "ami", root / "wavlm"


def recipe_args(corpus, wavlm, out, *extra):
    return [str(RECIPE / "hparams" / "tiny_cpu.yaml"), f"--data_folder={corpus}",
            f"--wavlm_source={wavlm}", f"--output_folder={out}", "--hidden_size=32",
            f"--embedding_source={Path(wavlm).parent / 'speaker'}",
            "--num_hidden_states=4", "--batch_size=4", "--distill_loss={student_layers: [0, 2]}",
            *extra]


MODES = {
    "finetune": ['--prune_units=""'],
    "insitu": [],
    "distill": ["--teacher_source={wavlm}", "--task_weight=0.0"],
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_pruning_mode_trains_exports_and_scores(mode, ami_train, corpus_and_wavlm, tmp_path,
                                                     monkeypatch):
    from device_scan import scan_brain_steps

    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / mode
    extra = [arg.format(wavlm=wavlm) for arg in MODES[mode]]
    created_on_cpu = scan_brain_steps(monkeypatch, ami_train.DiarizationBrain)
    results = ami_train.main(recipe_args(corpus, wavlm, out, "--number_of_epochs=1", *extra))
    assert not created_on_cpu  # every tensor of the steps follows the model's device
    for name in ("hyperparams.yaml", "wavlm/config.json", "eend.ckpt", "pruning_report.png",
                 "README.md"):
        assert (out / "exported" / name).is_file(), name
    for collar in (0.0, 0.25):
        assert results["exported"][collar]["der %"] == pytest.approx(
            results["gated"][collar]["der %"], abs=1e-6)  # physical pruning changes nothing
        assert (out / "eval_gated" / f"der_collar{collar:g}.csv").is_file()
    assert list((out / "eval_gated" / "rttm").glob("*.rttm"))
    # dev tuning: written into the export, never worse on dev, test scored again
    tuning = json.loads((out / "exported" / "tuning.json").read_text())
    assert tuning["tuned_der"] <= tuning["default_der"] and tuning["written"]
    exported_yaml = (out / "exported" / "hyperparams.yaml").read_text()
    for name, value in tuning["tuned"].items():
        assert f"\n{name}: {json.dumps(value)}\n" in exported_yaml
    assert results["exported_tuned"][0.0]["der %"] >= 0.0
    assert "jer %" in results["exported"][0.0]
    if mode == "finetune":
        assert results["params"] == results["reference_params"]
    else:
        assert results["params"] <= results["reference_params"]
    log = (out / "train_log.txt").read_text()
    assert ("distill" in log) == (mode == "distill")


@pytest.fixture(scope="module")
def exported_model(ami_train, corpus_and_wavlm, tmp_path_factory):
    corpus, wavlm = corpus_and_wavlm
    out = tmp_path_factory.mktemp("diar_model") / "exp"
    ami_train.main(recipe_args(corpus, wavlm, out, "--number_of_epochs=1"))
    return out / "exported"


def test_pruned_diarizer_files_and_bad_audio(exported_model, corpus_and_wavlm, tmp_path):
    corpus, _ = corpus_and_wavlm
    model = PrunedDiarizer.from_hparams(source=exported_model, savedir=exported_model)
    meeting = sorted((corpus / "amicorpus").glob("*/audio/*.wav"))[-1]
    annotation = model.diarize_file(meeting, num_speakers=2)
    assert annotation.uri == meeting.stem and len(annotation.labels()) == 2
    model.write_rttm(annotation, tmp_path / "out.rttm")
    again = read_rttm(tmp_path / "out.rttm")[meeting.stem]
    assert abs(again.get_timeline().duration() - annotation.get_timeline().duration()) < 0.01
    # silence only: empty annotation; shorter than a window: handled
    sf.write(tmp_path / "silence.wav", np.zeros(5 * 16000), 16000)
    assert len(model.diarize_file(tmp_path / "silence.wav")) == 0
    audio, rate = sf.read(meeting)
    sf.write(tmp_path / "short.wav", audio[: rate], rate)
    assert model.diarize_file(tmp_path / "short.wav").uri == "short"


def test_cli_folder_with_spaces_and_accents(exported_model, corpus_and_wavlm, tmp_path, capsys):
    corpus, _ = corpus_and_wavlm
    meeting = sorted((corpus / "amicorpus").glob("*/audio/*.wav"))[-1]
    folder = tmp_path / "réunions du lundi"
    folder.mkdir()
    shutil.copy(meeting, folder / "réunion équipe 1.wav")
    status = cli_main([str(exported_model), str(folder), "--output", str(tmp_path / "rttm"),
                       "--max-speakers", "3"])
    assert status == 0
    written = sorted((tmp_path / "rttm").glob("*.rttm"))
    assert [p.name for p in written] == ["réunion équipe 1.rttm"]
    uri, annotation = next(iter(read_rttm(written[0]).items()))
    assert uri == "réunion_équipe_1" and 1 <= len(annotation.labels()) <= 3
    assert "1 RTTM file(s) written" in capsys.readouterr().out


def test_cli_same_stems_failures_and_exit_status(exported_model, corpus_and_wavlm, tmp_path):
    """Through the installed console script: same stems in two folders keep both RTTMs;
    a NaN file and an unreadable file fail, the others are written, exit status 1."""
    import subprocess
    import sys

    corpus, _ = corpus_and_wavlm
    meeting = sorted((corpus / "amicorpus").glob("*/audio/*.wav"))[-1]
    audio, rate = sf.read(meeting)
    for sub in ("day1", "day2"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        sf.write(tmp_path / "in" / sub / "meeting.wav", audio[: 6 * rate], rate)
    cmd = [str(Path(sys.executable).parent / "speechbrain-pruning-diarize"), str(exported_model),
           str(tmp_path / "in"), "--output", str(tmp_path / "rttm"), "--quiet"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert ok.stdout == ""  # --quiet
    assert sorted(p.relative_to(tmp_path / "rttm").as_posix()
                  for p in (tmp_path / "rttm").rglob("*.rttm")) == \
        ["day1/meeting.rttm", "day2/meeting.rttm"]
    bad = audio[: 6 * rate].astype(np.float32)
    bad[100] = np.nan
    sf.write(tmp_path / "in" / "day2" / "nan.wav", bad, rate, subtype="FLOAT")
    (tmp_path / "in" / "day2" / "broken.wav").write_bytes(b"RIFF not really a wav")
    failed = subprocess.run(cmd[:-1] + ["--overwrite"], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1
    assert "2 of 4 file(s) failed" in failed.stderr
    assert "nan.wav" in failed.stderr and "NaN/Inf" in failed.stderr
    assert "broken.wav" in failed.stderr
    assert "2 RTTM file(s) written" in failed.stdout
    assert not (tmp_path / "rttm" / "day2" / "nan.rttm").exists()


def test_resume_after_interruption(ami_train, corpus_and_wavlm, tmp_path, monkeypatch):
    DiarizationBrain = ami_train.DiarizationBrain

    corpus, wavlm = corpus_and_wavlm
    args = recipe_args(corpus, wavlm, tmp_path / "exp", "--number_of_epochs=2",
                       "--ckpt_interval_steps=2")
    original = DiarizationBrain.on_fit_batch_end

    def crash(self, *a):
        original(self, *a)
        if self.optimizer_step == 3:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(DiarizationBrain, "on_fit_batch_end", crash)
    with pytest.raises(KeyboardInterrupt):
        ami_train.main(args)
    seen = []

    def record(self, *a):
        original(self, *a)
        seen.append(int(self.hparams.sparsity_controller.step_count))

    monkeypatch.setattr(DiarizationBrain, "on_fit_batch_end", record)
    results = ami_train.main(args)
    assert seen[0] == 3  # resumed after the step-2 checkpoint
    chunks = sum(1 for _ in open(tmp_path / "exp" / "save" / "train_chunks.csv")) - 1
    steps_per_epoch = chunks // 4  # drop_last
    assert seen[-1] == 2 * steps_per_epoch
    assert json.loads((tmp_path / "exp" / "results.json").read_text())["params"] == results["params"]


def test_export_is_self_contained_with_speaker_model_and_plda(exported_model, corpus_and_wavlm,
                                                             tmp_path):
    """The speaker model and the PLDA travel inside the exported folder; another speaker model
    can be swapped in with the ``embedder`` override."""
    from speechbrain_pruning import PrunableWavLM
    from speechbrain_pruning.diarization.embedders import FramePoolingEmbedder
    from speechbrain_pruning.diarization.plda import PLDA
    from speechbrain_pruning.pruning.export import export_model
    from speechbrain_pruning.pretrained import interface_class_of
    from speechbrain_pruning.speaker import MHFA

    corpus, wavlm = corpus_and_wavlm
    assert interface_class_of(exported_model / "embedder").endswith("PrunedSpeakerRecognition")
    plda = PLDA.load(exported_model / "plda.safetensors")
    assert plda.input_dim == 64  # the tiny speaker model's embedding size
    moved = tmp_path / "moved"  # fetched file by file (manifest.json) into another savedir
    meeting = sorted((corpus / "amicorpus").glob("*/audio/*.wav"))[-1]
    original = PrunedDiarizer.from_hparams(source=exported_model)
    copy = PrunedDiarizer.from_hparams(source=exported_model, savedir=moved)
    assert (moved / "embedder" / "wavlm" / "config.json").is_file()
    for model in (original, copy):
        model.set_params(inference_precision="fp32", progress=False)
    out = copy(meeting, num_speakers=2)
    assert out.speaker_diarization == original(meeting, num_speakers=2).speaker_diarization
    assert out.speaker_embeddings.shape == (2, 64)
    embedder = copy._pipeline().embedder
    assert isinstance(embedder, FramePoolingEmbedder)
    assert Path(embedder.model.hparams.model_folder).resolve() == (moved / "embedder").resolve()
    # another speaker model (16-d embeddings), AHC since the PLDA belongs to the shipped one
    kwargs = {"num_layers": 4, "feat_dim": 32, "num_heads": 2, "compression_dim": 8,
              "embed_dim": 16}
    export_model(tmp_path / "sv", PrunableWavLM.from_pretrained(wavlm), {"backend": MHFA(**kwargs)},
                 {"backend": ("speechbrain_pruning.speaker.MHFA", kwargs)},
                 "PrunedSpeakerRecognition", hparams={"threshold": 0.5})
    other = PrunedDiarizer.from_hparams(source=moved, overrides={
        "embedder": str(tmp_path / "sv"), "clustering": "ahc", "clustering_threshold": 0.7})
    other.set_params(progress=False)
    assert other(meeting, num_speakers=2).speaker_embeddings.shape == (2, 16)
    with pytest.raises(ValueError, match="unknown diarization parameter"):
        other.set_params(windw=4.0)


@pytest.mark.parametrize("dataset,name", [("AMI", "wavlm_base_plus"), ("AMI", "wavlm_large"),
                                          ("DIHARD3", "wavlm_base_plus"),
                                          ("CHiME6", "wavlm_base_plus")])
def test_full_size_hparams_load(dataset, name, tmp_path):
    from speechbrain_pruning.pruning.recipe import load_hparams

    make_hf_wavlm(tmp_path / "hf")
    path = ROOT / "recipes" / dataset / "Diarization" / "hparams" / f"{name}.yaml"
    hparams = load_hparams(path, {"data_folder": str(tmp_path),
                           "wavlm_source": str(tmp_path / "hf"), "embedding_source": None,
                           "output_folder": str(tmp_path / "out"),
                           "sparsity_objective": "macs"})
    assert hparams["teacher"] is None and hparams["sparsity_controller"].objective == "macs"
    assert hparams["eend"].powerset.num_classes == 11
    assert hparams["layout"] == {"AMI": "ami", "DIHARD3": "dihard3", "CHiME6": "chime6"}[dataset]
    assert hparams["eval_split"] in hparams["splits"]
    assert hparams["eend"].num_layers == hparams["num_hidden_states"]
    inference = hparams["inference"]  # DiariZen-like defaults a user would accept
    assert inference["window"] == 8.0 and inference["step"] <= 2.0
    assert inference["clustering"] == "vbx" and inference["median_filter"] == 11
    assert not inference["low_memory"]


@pytest.mark.timeout(600)
def test_two_process_torchrun_exports_what_it_trained(corpus_and_wavlm, tmp_path):
    """2 processes (gloo, CPU), distillation with projections (DDP-synchronised):
    the exported diarizer's DER equals the trained model's."""
    import torch

    from ddp import run_two_process_recipe

    corpus, wavlm = corpus_and_wavlm
    out = tmp_path / "ddp"
    args = [a for a in recipe_args(corpus, wavlm, out, "--number_of_epochs=1",
                                   f"--teacher_source={wavlm}")
            if not a.startswith("--distill_loss")]
    args.append("--distill_loss={student_layers: [0, 2], student_dim: 32, teacher_dim: 32, "
                "projection: True}")
    run_two_process_recipe(RECIPE / "train.py", args, out)
    results = json.loads((out / "results.json").read_text())
    for collar in ("0.0", "0.25"):
        assert results["exported"][collar]["der %"] == pytest.approx(
            results["gated"][collar]["der %"], abs=1e-6)
    keys = torch.load(out / "exported" / "eend.ckpt", weights_only=True).keys()
    assert keys and not any(k.startswith("module.") for k in keys)
    # the projections were trained and checkpointed with the run
    ckpt = max((out / "save").glob("CKPT+*"), key=lambda p: p.stat().st_mtime)
    assert (ckpt / "distill_loss.ckpt").is_file()


@pytest.mark.parametrize("corpus", ["DIHARD3", "CHiME6"])
def test_other_corpora_run_the_shared_recipe(corpus, corpus_and_wavlm, tmp_path):
    """recipes/{DIHARD3,CHiME6}/Diarization/train.py run the one diarization recipe
    (here on the AMI-layout mini corpus with the tiny config), and their yaml files are
    short overrides of the AMI one."""
    import subprocess
    import sys

    ami_corpus, wavlm = corpus_and_wavlm
    launcher = ROOT / "recipes" / corpus / "Diarization" / "train.py"
    assert len(launcher.read_text().splitlines()) < 20
    yaml_text = (launcher.parent / "hparams" / "wavlm_base_plus.yaml").read_text()
    assert "extends: ../../../AMI/Diarization/hparams/wavlm_base_plus.yaml" in yaml_text
    assert len([l for l in yaml_text.splitlines() if l and not l.startswith("#")]) <= 6
    if corpus == "CHiME6":
        return  # one end-to-end run of a launcher is enough
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(launcher),
                           *recipe_args(ami_corpus, wavlm, out, "--number_of_epochs=1")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["exported"]["0.0"]["der %"] == pytest.approx(results["gated"]["0.0"]["der %"])


def test_imported_diarizen_model_is_pruned_further_by_the_recipe(ami_train, corpus_and_wavlm,
                                                                  tmp_path):
    """DiariZen layout -> converter -> recipe (in-situ pruning from its WavLM and head)."""
    import torch

    from speechbrain_pruning import PrunableWavLM
    from speechbrain_pruning.diarization.diarizen import convert_diarizen
    from speechbrain_pruning.pruning.recipe import init_modules_from
    from speechbrain_pruning.wavlm.dphubert import to_dphubert_config, to_dphubert_state_dict

    from test_diarizen_import import DiariZenBackEnd, perturb, write_diarizen_folder

    corpus, wavlm_dir = corpus_and_wavlm
    wavlm = PrunableWavLM.from_pretrained(wavlm_dir).eval()
    # tiny_cpu.yaml's head sizes (hidden 64, 2 blocks, ffn 128, 4 heads, kernel 15)
    back_end = perturb(DiariZenBackEnd(4, 32, d=64, ffn=128, heads=4, kernel=15), seed=1)
    folder = write_diarizen_folder(tmp_path / "dz", to_dphubert_state_dict(wavlm),
                                   to_dphubert_config(wavlm), back_end)
    convert_diarizen(folder, tmp_path / "imported")
    head = torch.load(tmp_path / "imported" / "eend.ckpt")
    out = tmp_path / "run"
    args = recipe_args(corpus, tmp_path / "imported" / "wavlm", out, "--number_of_epochs=1",
                       f"--init_from={tmp_path / 'imported'}", "--tune_on_dev=False")
    args = [a if not a.startswith("--embedding_source=")
            else f"--embedding_source={wavlm_dir.parent / 'speaker'}" for a in args]
    results = ami_train.main(args)
    assert results["params"] < wavlm.num_params()  # pruned further
    # the head started from the imported weights (checked on a fresh module)
    from speechbrain_pruning.diarization import EENDHead

    fresh = EENDHead(num_layers=4, feat_dim=32, hidden=64, conformer_layers=2, heads=4,
                     ffn_dim=128, kernel_size=15)
    assert init_modules_from(tmp_path / "imported", {"eend": fresh, "wavlm": wavlm}) == ["eend"]
    assert all(torch.equal(v, head[k]) for k, v in fresh.state_dict().items())
