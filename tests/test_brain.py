"""PruningBrain: optimizers, distillation, freezing, clipping; augmentation helper."""

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_pruning import PrunableWavLM
from speechbrain_pruning.augment import build_wav_augment
from speechbrain_pruning.pruning.brain import PruningBrain
from speechbrain_pruning.pruning.distill import DistillLoss
from speechbrain_pruning.pruning.sparsity import SparsityController

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
    distill = DistillLoss([0, 2], student_dim=32, teacher_dim=32, projection=True)
    brain = make_brain(tmp_path / "hf", teacher=teacher, distill_loss=distill,
                       distill_weight=0.5)
    teacher_modes = []
    teacher.register_forward_pre_hook(lambda module, args: teacher_modes.append(module.training))
    controller = brain.hparams.sparsity_controller
    gaps = []
    original_forward = controller.forward

    def record_gap(expected):
        gaps.append(float(expected.detach()) - controller.current_target())
        return original_forward(expected)

    controller.forward = record_gap
    gates_before = [g.detach().clone() for g in brain.wavlm.gate_parameters()]
    projection_before = [p.detach().clone() for p in distill.parameters()]
    data = [torch.randn(2, 1600) for _ in range(3)]
    brain.fit(range(2), train_set=data, train_loader_kwargs={"batch_size": None},
              progressbar=False)
    assert set(brain.optimizers_dict) == {"wavlm", "backend", "reg"}
    reg_groups = {g["name"]: g["lr"] for g in brain.optimizers_dict["reg"].param_groups}
    assert reg_groups == {"log_alpha": 0.05, "lambda": 0.05}
    assert int(controller.step_count) == 6
    assert brain.distill_value is not None and "distill" in brain.pruning_stats()
    assert any(not torch.equal(a, b) for a, b in zip(gates_before, brain.wavlm.gate_parameters()))
    # the teacher is frozen and ran in eval mode on every training batch
    assert all(not p.requires_grad for p in teacher.parameters())
    assert teacher_modes == [False] * 6 and not teacher.training
    # gates are trained by the reg optimizer only, never by the WavLM one
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    wavlm_opt = ids(p for g in brain.optimizers_dict["wavlm"].param_groups for p in g["params"])
    gates = ids(brain.wavlm.gate_parameters())
    assert gates and not wavlm_opt & gates
    assert wavlm_opt == ids(p for n, p in brain.wavlm.named_parameters()
                            if not n.endswith("log_alpha"))
    # the distillation projections are a module of the Brain (DDP-synchronised) and
    # trained by the back-end optimizer
    assert brain.modules["distill_loss"] is distill
    backend_opt = ids(p for g in brain.optimizers_dict["backend"].param_groups for p in g["params"])
    assert ids(distill.parameters()) <= backend_opt
    assert any(not torch.equal(a, b) for a, b in zip(projection_before, distill.parameters()))
    # the multipliers ascend: sparsity stayed below the target, so lambda1 < 0 pushes
    # it up; lambda2 grows with the squared gap
    assert len(gaps) == 6 and all(g < 0 for g in gaps[1:])
    lambda1, lambda2 = (float(p) for p in controller.lagrangian_parameters())
    assert lambda1 < 0 < lambda2


def test_frozen_wavlm_steps_and_joint_clipping(tmp_path):
    """Frozen steps update the back-end only; afterwards WavLM + gates + back-end are
    clipped together (multipliers excluded); schedules wait for the release."""
    from speechbrain.nnet.schedulers import WarmAndExpDecayLRSchedule

    make_hf_wavlm(tmp_path / "hf")
    brain = make_brain(
        tmp_path / "hf", wavlm_frozen_steps=3,
        wavlm_lr_scheduler=WarmAndExpDecayLRSchedule(1e-3, n_warmup_steps=10, total_steps=100),
        backend_lr_scheduler=WarmAndExpDecayLRSchedule(1e-3, n_warmup_steps=10, total_steps=100),
    )
    with torch.no_grad():
        brain.modules.head.weight.mul_(1e3)  # gradients far above max_grad_norm = 1
    wavlm_before = {n: p.detach().clone() for n, p in brain.wavlm.named_parameters()}
    calls = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *args, **kwargs):
        params = list(params)
        before = torch.norm(torch.stack([p.grad.norm() for p in params]))
        total = original(params, max_norm, *args, **kwargs)
        after = torch.norm(torch.stack([p.grad.norm() for p in params]))
        calls.append(({id(p) for p in params}, float(before), float(after), max_norm))
        return total

    torch.nn.utils.clip_grad_norm_ = spy
    frozen_state = {}

    def keep_frozen_copy(brain_self, *a):
        if brain_self.optimizer_step == 3:  # the last frozen step has just been taken
            frozen_state.update({n: p.detach().clone()
                                 for n, p in brain_self.wavlm.named_parameters()})

    original_end = ToyBrain.on_fit_batch_end

    def on_end(brain_self, *a):
        original_end(brain_self, *a)
        keep_frozen_copy(brain_self, *a)

    ToyBrain.on_fit_batch_end = on_end
    try:
        brain.fit(range(1), train_set=[torch.randn(2, 1600) for _ in range(5)],
                  train_loader_kwargs={"batch_size": None}, progressbar=False)
    finally:
        torch.nn.utils.clip_grad_norm_ = original
        ToyBrain.on_fit_batch_end = original_end
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    backend = ids(brain.modules.head.parameters())
    model = ids(brain.wavlm.parameters()) | backend  # WavLM weights + gates + back-end
    multipliers = ids(brain.hparams.sparsity_controller.lagrangian_parameters())
    assert len(calls) == 5
    assert [c[0] for c in calls[:3]] == [backend] * 3  # frozen: only the back-end steps
    assert [c[0] for c in calls[3:]] == [model] * 2  # then all together, no multipliers
    assert not any(c[0] & multipliers for c in calls)
    assert all(before > 1.0 for _, before, _, _ in calls)  # clipping really acted
    assert all(after == pytest.approx(1.0, rel=1e-4) for _, _, after, _ in calls)
    # frozen for 3 optimizer steps: WavLM weights and gates unchanged, then released
    for name, param in frozen_state.items():
        assert torch.equal(param, wavlm_before[name]), name
    assert any(not torch.equal(p, wavlm_before[n]) for n, p in brain.wavlm.named_parameters())
    # the sparsity schedule and the WavLM LR warm-up start at the release (2 real steps)
    assert int(brain.hparams.sparsity_controller.step_count) == 2
    assert brain.hparams.wavlm_lr_scheduler.current_step == 2
    assert brain.hparams.backend_lr_scheduler.current_step == 5


def test_skipped_fp16_step_does_not_advance_schedules(tmp_path):
    """A step the GradScaler skips (inf gradients) moves neither the sparsity
    schedule nor the LR schedulers."""
    from speechbrain.nnet.schedulers import WarmAndExpDecayLRSchedule

    make_hf_wavlm(tmp_path / "hf")
    brain = make_brain(
        tmp_path / "hf",
        wavlm_lr_scheduler=WarmAndExpDecayLRSchedule(1e-3, n_warmup_steps=10, total_steps=100),
    )

    class FakeScaler(torch.amp.GradScaler):
        """Enabled on CPU; reports inf gradients on the second step."""

        def __init__(self):
            super().__init__("cpu", init_scale=4.0)
            self.calls, self.current = 0, 4.0

        def get_scale(self):
            return self.current

        def step(self, optimizer, *args, **kwargs):
            return None if self.calls == 1 else optimizer.step()

        def unscale_(self, optimizer):
            return None

        def update(self, new_scale=None):
            self.calls += 1
            if self.calls == 2:
                self.current /= 2  # what a step with inf gradients does

        def scale(self, outputs):
            return outputs

    scaler = FakeScaler()
    brain.scaler = scaler
    brain.fit(range(1), train_set=[torch.randn(2, 1600) for _ in range(3)],
              train_loader_kwargs={"batch_size": None}, progressbar=False)
    assert scaler.calls == 3
    assert int(brain.hparams.sparsity_controller.step_count) == 2
    assert brain.hparams.wavlm_lr_scheduler.current_step == 2


def test_each_ddp_rank_gets_its_own_seed(tmp_path, monkeypatch):
    """rank_seed: rank 0 keeps the run's seed, rank r uses seed + r; the gate noise
    of two ranks differs while the run stays reproducible."""
    from speechbrain_pruning.pruning.brain import rank_seed

    make_hf_wavlm(tmp_path / "hf")
    samples = {}
    for rank in (0, 1, 1):
        torch.manual_seed(1986)
        brain = make_brain(tmp_path / "hf")
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 1)
        monkeypatch.setattr(torch.distributed, "all_gather_object",
                            lambda out, obj: out.__setitem__(0, obj))
        brain._seed_rank()
        monkeypatch.undo()
        assert brain.noise_seed == rank_seed(1986, rank)
        gates = [m.train() for m in brain.wavlm.modules() if hasattr(m, "log_alpha")]
        samples.setdefault(rank, []).append(torch.cat([g().detach() for g in gates]))
    assert not torch.equal(samples[0][0], samples[1][0])
    assert torch.equal(samples[1][0], samples[1][1])


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


def test_training_audio_with_nan_names_file_and_manifest_row(tmp_path):
    from speechbrain_pruning.audio import read_segment

    wav = np.zeros(8000, dtype=np.float32)
    wav[42] = np.nan
    sf.write(tmp_path / "utt.wav", wav, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"utt\.wav \(manifest row id07/a/1\) contains 1 NaN"):
        read_segment(str(tmp_path / "utt.wav"), 4000, random_offset=False, utt_id="id07/a/1")
