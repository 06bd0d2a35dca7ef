"""PruningBrain: optimizers, distillation, freezing, clipping; augmentation helper."""

import numpy as np
import soundfile as sf
import torch

from speechbrain_pruning import PrunableWavLM
from speechbrain_pruning.augment import build_wav_augment
from speechbrain_pruning.brain import PruningBrain
from speechbrain_pruning.distill import DistillLoss
from speechbrain_pruning.sparsity import SparsityController

from conftest import make_hf_wavlm


class ToyBrain(PruningBrain):
    def compute_forward(self, batch, stage):
        hidden = self.encode(batch, None, stage)
        return self.modules.head(hidden[-1].mean(1))

    def task_loss(self, predictions, batch, stage):
        return predictions.pow(2).mean()


def make_brain(folder, **hparams):
    wavlm = PrunableWavLM.from_pretrained(folder, prune_units="head,interm")
    base = {
        "wavlm_opt_class": lambda p: torch.optim.Adam(p, 1e-3),
        "backend_opt_class": lambda p: torch.optim.Adam(p, 1e-3),
        "sparsity_controller": SparsityController(0.3, warmup_steps=4),
        "gate_lr": 0.05, "lambda_lr": 0.05,
    }
    base.update(hparams)
    return ToyBrain(modules={"wavlm": wavlm, "head": torch.nn.Linear(32, 2)}, hparams=base,
                    run_opts={"device": "cpu", "max_grad_norm": 1.0})


def test_optimizers_distillation_and_controller(tmp_path):
    make_hf_wavlm(tmp_path / "hf")
    teacher = PrunableWavLM.from_pretrained(tmp_path / "hf")
    brain = make_brain(tmp_path / "hf", teacher=teacher, distill_loss=DistillLoss([0, 2]),
                       distill_weight=0.5)
    gates_before = [g.detach().clone() for g in brain.wavlm.gate_parameters()]
    data = [torch.randn(2, 1600) for _ in range(3)]
    brain.fit(range(2), train_set=data, train_loader_kwargs={"batch_size": None},
              progressbar=False)
    assert set(brain.optimizers_dict) == {"wavlm", "backend", "reg"}
    reg_groups = {g["name"]: g["lr"] for g in brain.optimizers_dict["reg"].param_groups}
    assert reg_groups == {"log_alpha": 0.05, "lambda": 0.05}
    assert int(brain.hparams.sparsity_controller.step_count) == 6
    assert brain.distill_value is not None and "distill" in brain.pruning_stats()
    assert any(not torch.equal(a, b) for a, b in zip(gates_before, brain.wavlm.gate_parameters()))
    assert all(not p.requires_grad for p in teacher.parameters())


def test_frozen_wavlm_steps_and_joint_clipping(tmp_path):
    make_hf_wavlm(tmp_path / "hf")
    brain = make_brain(tmp_path / "hf", wavlm_frozen_steps=3)
    wavlm_before = {n: p.detach().clone() for n, p in brain.wavlm.named_parameters()}
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        total = original(params, max_norm, *args, **kwargs)
        norms.append(torch.norm(torch.stack([p.grad.norm() for p in params])))
        return total

    torch.nn.utils.clip_grad_norm_ = spy
    try:
        brain.fit(range(1), train_set=[torch.randn(2, 1600) for _ in range(3)],
                  train_loader_kwargs={"batch_size": None}, progressbar=False)
    finally:
        torch.nn.utils.clip_grad_norm_ = original
    # frozen for 3 optimizer steps: WavLM weights and gates unchanged, controller not stepped
    for name, param in brain.wavlm.named_parameters():
        assert torch.equal(param, wavlm_before[name]), name
    assert int(brain.hparams.sparsity_controller.step_count) == 0
    assert all(float(n) <= 1.0 + 1e-5 for n in norms)


def test_wav_augment_from_local_folders(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "musan").mkdir()
    (tmp_path / "rirs").mkdir()
    sf.write(tmp_path / "musan" / "noise.wav", rng.standard_normal(16000) * 0.1, 16000)
    rir = np.zeros(800)
    rir[0], rir[400] = 1.0, 0.5
    sf.write(tmp_path / "rirs" / "rir.wav", rir, 16000)
    augment = build_wav_augment(tmp_path / "save", tmp_path / "musan", tmp_path / "rirs",
                                augment_prob=1.0)
    wavs = torch.randn(3, 8000) * 0.1
    out, lens = augment(wavs, torch.ones(3))
    assert out.shape == wavs.shape and not torch.allclose(out, wavs)
    assert build_wav_augment(tmp_path / "save") is None
