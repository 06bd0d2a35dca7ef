"""The GPU paths, on CUDA when a GPU is present (skipped otherwise).

Run all GPU checks of the project with ``bash benchmarks/gpu_check.sh`` on a GPU
machine (these tests, then ``benchmarks/gpu_benchmark.py``).
"""

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from conftest import make_hf_wavlm

# SBP_GPU_TEST_DEVICE=cpu runs these tests on the CPU (a check of the tests themselves)
DEVICE = os.environ.get("SBP_GPU_TEST_DEVICE", "cuda:0")
pytestmark = pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                reason="needs a CUDA GPU")

ROOT = Path(__file__).resolve().parents[1]
UNITS = ("conv", "head", "attlayer", "interm", "ffnlayer")


@pytest.fixture(autouse=True)
def exact_matmul():
    """TF32 off: equivalence checks compare float32 results."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("stable", [False, True])
def test_hidden_states_match_transformers_on_cuda(tmp_path, stable):
    from speechbrain_pruning import PrunableWavLM

    reference = make_hf_wavlm(tmp_path / "hf", stable=stable).to(DEVICE)
    model = PrunableWavLM.from_pretrained(tmp_path / "hf").eval().to(DEVICE)
    wavs = torch.randn(2, 8000, device=DEVICE)
    with torch.no_grad():
        expected = reference(wavs, output_hidden_states=True).hidden_states
        ours = model(wavs)
    assert ours.device == torch.device(DEVICE) and len(expected) == ours.shape[0]
    for layer, (a, b) in enumerate(zip(ours, expected)):
        assert (a - b).abs().max() < 1e-4, layer


@pytest.mark.parametrize("stable", [False, True])
def test_pruning_is_exact_on_cuda(tmp_path, stable):
    from speechbrain_pruning import PrunableWavLM

    make_hf_wavlm(tmp_path / "hf", stable=stable)
    torch.manual_seed(0)
    model = PrunableWavLM.from_pretrained(tmp_path / "hf", prune_units=UNITS).to(DEVICE).eval()
    with torch.no_grad():
        for gate in model.gate_parameters():
            gate.normal_(0.0, 3.0)
    wavs, lens = torch.randn(2, 8000, device=DEVICE), torch.tensor([1.0, 0.6], device=DEVICE)
    with torch.no_grad():
        gated = model(wavs, lens)
        expected = round(float(model.expected_num_params()))
        model.prune()
        pruned = model(wavs, lens)
    assert model.num_params() == expected
    assert (gated - pruned).abs().max() < 1e-4
    assert all(p.device == torch.device(DEVICE) for p in model.parameters())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_brain_steps_in_mixed_precision_with_all_units(tmp_path, precision):
    """Brain steps on CUDA in bf16 / fp16 (GradScaler) with all five units: finite
    losses, gates trained, the controller and schedules advanced by real steps."""
    from speechbrain_pruning import PrunableWavLM
    from speechbrain_pruning.pruning import PruningBrain, SparsityController

    if precision == "fp16" and not DEVICE.startswith("cuda"):
        pytest.skip("SpeechBrain runs fp16 on GPUs only")

    class Toy(PruningBrain):
        def compute_forward(self, batch, stage):
            wavs = batch.to(self.device)
            return self.modules.head(self.encode(wavs, None, stage)[-1].mean(1))

        def task_loss(self, predictions, batch, stage):
            return predictions.float().pow(2).mean()

    make_hf_wavlm(tmp_path / "hf")
    wavlm = PrunableWavLM.from_pretrained(tmp_path / "hf", prune_units=UNITS)
    gates_before = [g.detach().clone() for g in wavlm.gate_parameters()]
    brain = Toy(modules={"wavlm": wavlm, "head": torch.nn.Linear(32, 2)},
                hparams={"wavlm_opt_class": lambda p: torch.optim.AdamW(p, 1e-4),
                         "backend_opt_class": lambda p: torch.optim.AdamW(p, 1e-3),
                         "sparsity_controller": SparsityController(0.3, warmup_steps=4),
                         "gate_lr": 0.05, "lambda_lr": 0.05},
                run_opts={"device": DEVICE, "precision": precision, "max_grad_norm": 5.0})
    losses = []
    original = Toy.compute_objectives

    def record(self, *args):
        loss = original(self, *args)
        losses.append(float(loss.detach()))
        return loss

    Toy.compute_objectives = record
    try:
        brain.fit(range(1), train_set=[torch.randn(2, 16000) for _ in range(4)],
                  train_loader_kwargs={"batch_size": None}, progressbar=False)
    finally:
        Toy.compute_objectives = original
    assert all(torch.isfinite(torch.tensor(losses)))
    assert brain.scaler.is_enabled() == (precision == "fp16")
    steps = int(brain.hparams.sparsity_controller.step_count)
    assert 1 <= steps <= 4  # fp16 may skip a step on overflow; the controller follows
    assert any(not torch.equal(a.to(DEVICE), b)
               for a, b in zip(gates_before, brain.wavlm.gate_parameters()))


def _recipe(path):
    spec = importlib.util.spec_from_file_location(f"cuda_{path.parent.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
@pytest.mark.parametrize("recipe", ["VoxCeleb/SpeakerRec", "ASVspoof5/CM", "AMI/Diarization"])
def test_tiny_recipes_end_to_end_on_cuda(recipe, tmp_path):
    """Each recipe's tiny configuration with --device=cuda:0: train, export, reload the
    export on the GPU; the exported model scores as the trained one."""
    from speechbrain_pruning.synthetic import (make_asvspoof5_mini, make_meeting_corpus,
                                               make_voxceleb_mini)

    corpus = tmp_path / "corpus"
    if recipe.startswith("VoxCeleb"):
        make_voxceleb_mini(corpus, num_speakers=4, num_test_speakers=3, videos_per_speaker=2,
                           utts_per_video=2, min_seconds=1.0, max_seconds=2.0, num_trials=24,
                           progress=False)
        extra = ["--out_n_neurons=4", "--dev_ratio=0.25", "--cohort_utts_per_speaker=2",
                 "--asnorm_top_n=3", "--segment_seconds=1.0"]
    elif recipe.startswith("ASVspoof5"):
        make_asvspoof5_mini(corpus, num_speakers=4, utts_per_speaker={"train": 8, "dev": 4,
                                                                      "eval": 4},
                            min_seconds=1.0, max_seconds=2.0, progress=False)
        extra = ["--segment_seconds=1.0"]
    else:
        make_meeting_corpus(corpus, layout="ami", splits={"train": 3, "dev": 1, "test": 1},
                            duration=20.0, progress=False)
        extra = ["--distill_loss={student_layers: [0, 2]}"]
    make_hf_wavlm(tmp_path / "wavlm")
    folder = ROOT / "recipes" / recipe
    results = _recipe(folder / "train.py").main([
        str(folder / "hparams" / "tiny_cpu.yaml"), f"--data_folder={corpus}",
        f"--wavlm_source={tmp_path / 'wavlm'}", f"--output_folder={tmp_path / 'out'}",
        "--hidden_size=32", "--num_hidden_states=4", "--batch_size=4", "--number_of_epochs=1",
        f"--device={DEVICE}", *extra,
    ])
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary["params"] == results["params"]
    gated, exported = results["gated"], results["exported"]
    for key in exported:
        first = gated[key]
        metric = "der %" if "der %" in first else "eer"
        assert exported[key][metric] == pytest.approx(first[metric], abs=1e-6), key
