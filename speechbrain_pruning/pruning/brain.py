"""PruningBrain: the ``speechbrain.Brain`` every recipe of this collection subclasses.

It fine-tunes a :class:`PrunableWavLM` (``modules.wavlm``) together with a task
back-end and adds, as chosen in the yaml:

* **in-situ pruning**: the Lagrangian sparsity term of a
  :class:`~speechbrain_pruning.pruning.SparsityController`
  (``hparams.sparsity_controller``) on the WavLM's expected sparsity;
* **distillation**: a layer-wise loss (``hparams.distill_loss``) between the
  student's hidden states and those of a frozen teacher (``hparams.teacher``);
* neither (plain fine-tuning baseline) or both.

Four optimizers, each with its own learning rate and optional per-step
scheduler: WavLM weights (``wavlm_opt_class`` / ``wavlm_lr_scheduler``), the
rest of ``modules`` (``backend_opt_class`` / ``backend_lr_scheduler``), and
one ``reg_opt_class`` optimizer with two groups, gates (``gate_lr``) and
Lagrange multipliers (``lambda_lr``, gradient ascent through the controller).
Gradients of the model (WavLM, gates, back-end) are clipped together to
``max_grad_norm``; the multipliers are not clipped. LR schedulers and the
sparsity schedule advance only on steps where their optimizer really stepped:
not while WavLM is frozen (``wavlm_frozen_steps``), not on a step that the fp16
``GradScaler`` skipped (inf/NaN gradients).

Under DDP (``torchrun``), the distillation loss is registered as
``modules.distill_loss`` when it has parameters (layer projections), so DDP
synchronises their gradients like any back-end's; and each rank re-seeds its
random generators with :func:`rank_seed` (``seed + rank``) so that every rank
samples its own gate noise. Everything needed to resume
(modules with gates, optimizers, schedulers, controller, epoch and step
counters) is registered with the checkpointer.

Recipe subclasses implement ``compute_forward`` (calling
:meth:`PruningBrain.encode` for the WavLM) and :meth:`task_loss`.

Hparams read (all optional except ``wavlm_opt_class`` and ``backend_opt_class``):
``sparsity_controller``, ``teacher``, ``distill_loss``, ``distill_weight``,
``task_weight``, ``gate_lr``, ``lambda_lr``, ``reg_opt_class``, ``wavlm_lr_scheduler``,
``backend_lr_scheduler``, ``wavlm_frozen_steps``, ``log_interval``,
``train_logger``.
"""

import logging

import speechbrain as sb
import torch

from ..nn import unwrap_module
from .sparsity import GATE_PARAM_SUFFIX

__all__ = ["PruningBrain", "rank_seed", "flatten_fragments", "FRAGMENTS"]

#: Shared yaml fragments (``hparams/*.yaml``) a recipe includes under these keys.
FRAGMENTS = ("pruning", "optimizers", "run")

logger = logging.getLogger(__name__)


def flatten_fragments(hparams, fragments=FRAGMENTS):
    """Make the keys of included fragments top-level hyperparameters (in place).

    A recipe includes the shared fragments of ``hparams/`` as nested mappings
    (``pruning: !include:../../../../hparams/wavlm_pruning.yaml``); the Brain and
    the recipes read their entries (``sparsity_controller``, ``gate_lr``,
    ``epoch_counter``, ...) as top-level names. A top-level key of the recipe
    wins over a fragment's.

    Example
    -------
    >>> hparams = {"gate_lr": 0.1, "pruning": {"gate_lr": 0.05, "lambda_lr": 0.05}}
    >>> flatten_fragments(hparams)["gate_lr"], hparams["lambda_lr"]
    (0.1, 0.05)
    """
    for fragment in fragments:
        for key, value in (hparams.get(fragment) or {}).items():
            hparams.setdefault(key, value)
    return hparams


def rank_seed(base_seed, rank):
    """The random seed of DDP rank ``rank``: ``base_seed + rank``.

    Every rank samples its own hard-concrete gate noise, dropout masks and
    augmentations (as independent replicas of a larger batch would), while a
    run stays reproducible for a given seed and world size. Rank 0 keeps the
    seed of a single-process run.

    Example
    -------
    >>> rank_seed(1986, 0), rank_seed(1986, 3)
    (1986, 1989)
    """
    return int(base_seed) + int(rank)


class PruningBrain(sb.Brain):
    """A Brain that prunes ``modules.wavlm`` while training the task.

    Example
    -------
    >>> import torch
    >>> from speechbrain_pruning import PrunableWavLM, WavLMConfig
    >>> from speechbrain_pruning.pruning import SparsityController
    >>> cfg = WavLMConfig(conv_layers=[[8, 10, 5], [8, 3, 2]], hidden_size=16,
    ...                   num_layers=1, num_heads=2, intermediate_size=16,
    ...                   pos_conv_kernel=4, pos_conv_groups=2)
    >>> class Toy(PruningBrain):
    ...     def compute_forward(self, batch, stage):
    ...         return self.encode(batch, None)[-1].mean()
    ...     def task_loss(self, predictions, batch, stage):
    ...         return predictions ** 2
    >>> brain = Toy(
    ...     modules={"wavlm": PrunableWavLM(cfg, prune_units="head,interm"),
    ...              "head": torch.nn.Linear(1, 1)},
    ...     hparams={"wavlm_opt_class": lambda p: torch.optim.Adam(p, 1e-3),
    ...              "backend_opt_class": lambda p: torch.optim.Adam(p, 1e-3),
    ...              "sparsity_controller": SparsityController(0.3, warmup_steps=4),
    ...              "gate_lr": 0.05, "lambda_lr": 0.05},
    ...     run_opts={"device": "cpu"},
    ... )
    >>> brain.fit(range(2), train_set=[torch.randn(1, 800)] * 3,
    ...           train_loader_kwargs={"batch_size": None}, progressbar=False)
    >>> int(brain.hparams.sparsity_controller.step_count)
    6
    """

    # ------------------------------------------------------------ set-up
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        flatten_fragments(vars(self.hparams))  # entries of included hparams/ fragments

    def _hp(self, name, default=None):
        return getattr(self.hparams, name, default)

    @property
    def wavlm(self):
        """The (unwrapped) student ``PrunableWavLM``."""
        return unwrap_module(self.modules.wavlm)

    @property
    def controller(self):
        return self._hp("sparsity_controller")

    @property
    def pruning_enabled(self):
        return self.controller is not None and bool(self.wavlm.prune_units)

    @property
    def distillation_enabled(self):
        return self._hp("teacher") is not None and self._hp("distill_loss") is not None

    def on_fit_start(self):
        """Move controller/teacher to the device, register them, then the usual start."""
        controller = self.controller
        if controller is not None:
            controller.to(self.device)
            if self.checkpointer is not None and "sparsity_controller" not in self.checkpointer.recoverables:
                self.checkpointer.add_recoverable("sparsity_controller", controller)
        teacher = self._hp("teacher")
        if teacher is not None:
            teacher.to(self.device).eval().requires_grad_(False)
        distill = self._hp("distill_loss")
        if distill is not None:
            distill.to(self.device)
            has_state = any(True for _ in distill.parameters())  # projections only
            if has_state and "distill_loss" not in self.modules:
                # a module of the Brain: DDP-wrapped (gradients synchronised) with the rest
                self.modules["distill_loss"] = distill
            if has_state and self.checkpointer is not None \
                    and "distill_loss" not in self.checkpointer.recoverables:
                self.checkpointer.add_recoverable("distill_loss", distill)
        if self.distributed_launch:
            self._seed_rank()
        for name in ("wavlm_lr_scheduler", "backend_lr_scheduler"):
            scheduler = self._hp(name)
            if scheduler is not None and self.checkpointer is not None \
                    and name not in self.checkpointer.recoverables:
                self.checkpointer.add_recoverable(name, scheduler)
        if self.pruning_enabled:
            logger.info(
                "In-situ pruning of %s: target %s sparsity %.3f, %s warm-up over %d steps",
                ",".join(self.wavlm.prune_units), controller.objective, controller.target,
                controller.schedule, controller.warmup_steps,
            )
        super().on_fit_start()

    def _wrap_distributed(self):
        """SpeechBrain's DDP wrapping; on CPU (gloo) without SyncBatchNorm.

        SpeechBrain converts BatchNorm to ``SyncBatchNorm``, which only runs on
        GPUs; on CPU each rank keeps its own BatchNorm statistics (parameters
        and gradients are still synchronised by DDP).
        """
        if not self.distributed_launch or str(self.device).startswith("cuda"):
            return super()._wrap_distributed()
        from torch.nn.parallel import DistributedDataParallel

        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module, device_ids=None, find_unused_parameters=self.find_unused_parameters
                )
        return None

    def _seed_rank(self):
        """Re-seed torch, numpy and random with :func:`rank_seed` (see the module doc).

        ``SB_GLOBAL_SEED`` (SpeechBrain's sampler seed) is left alone: the data
        partition across ranks must stay the same on every rank.
        """
        import random

        import numpy as np

        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        base = getattr(self, "_base_seed", None)
        if base is None:
            base = self._base_seed = torch.initial_seed()
        self.noise_seed = rank_seed(base, rank)
        torch.manual_seed(self.noise_seed)
        np.random.seed(self.noise_seed % 2**32)
        random.seed(self.noise_seed)
        seeds = [self.noise_seed]
        if torch.distributed.is_initialized():
            seeds = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(seeds, self.noise_seed)
        logger.info("DDP random seeds per rank: %s (gate noise, dropout and augmentation "
                    "differ per rank)", seeds)

    def init_optimizers(self):
        """WavLM, back-end and gate/multiplier optimizers (see module docstring)."""
        wavlm_main, gates = [], []
        for name, param in self.modules.wavlm.named_parameters():
            if param.requires_grad:
                (gates if name.endswith(GATE_PARAM_SUFFIX) else wavlm_main).append(param)
        # every other module: the back-end, and the distillation projections
        # (registered as modules.distill_loss in on_fit_start)
        backend = [
            p for key, module in self.modules.items() if key != "wavlm"
            for p in module.parameters() if p.requires_grad
        ]
        self.optimizers_dict = {}
        if wavlm_main:
            self.optimizers_dict["wavlm"] = self.hparams.wavlm_opt_class(wavlm_main)
        if backend:
            self.optimizers_dict["backend"] = self.hparams.backend_opt_class(backend)
        groups = []
        if gates and self.pruning_enabled:
            groups.append({"params": gates, "lr": self._hp("gate_lr", 0.05), "name": "log_alpha"})
        if self.pruning_enabled:
            groups.append({
                "params": self.controller.lagrangian_parameters(),
                "lr": abs(self._hp("lambda_lr", 0.05)), "name": "lambda",
            })
        if groups:
            reg_class = self._hp("reg_opt_class") or torch.optim.AdamW
            self.optimizers_dict["reg"] = reg_class(groups, weight_decay=0.0)
        self.optimizer = self.optimizers_dict.get("wavlm") or next(iter(self.optimizers_dict.values()))
        if self.checkpointer is not None:
            for key, opt in self.optimizers_dict.items():
                self.checkpointer.add_recoverable(f"{key}_optimizer", opt)

    def freeze_optimizers(self, optimizers):
        """Keep WavLM (and its gates) frozen for ``wavlm_frozen_steps`` steps.

        The sparsity schedule starts when they are released.
        """
        frozen = self._hp("wavlm_frozen_steps", 0) or 0
        if self.optimizer_step < frozen:
            return {k: v for k, v in optimizers.items() if k == "backend"}
        return optimizers

    # ----------------------------------------------------------- forward
    def encode(self, wavs, wav_lens, stage=sb.Stage.TRAIN):
        """Student hidden states ``[L+1, B, T, D]``; stores the distillation loss.

        In training with distillation on, the frozen teacher runs on the same
        audio and :attr:`distill_value` holds the loss for this batch.
        """
        hidden = self.modules.wavlm(wavs, wav_lens)
        self.distill_value = None
        if stage == sb.Stage.TRAIN and self.distillation_enabled:
            with torch.no_grad():
                target = self.hparams.teacher(wavs, wav_lens)
            distill = self.modules["distill_loss"] if "distill_loss" in self.modules \
                else self.hparams.distill_loss  # the DDP-wrapped one when it has parameters
            self.distill_value, self.distill_details = distill(
                hidden, target, self.frame_lens(wav_lens, wavs)
            )
        return hidden

    def frame_lens(self, wav_lens, wavs):
        """Frame-axis relative lengths of ``wavs [B, S]`` (see
        :meth:`PrunableWavLM.frame_relative_lengths`); pass these to back-ends."""
        return self.wavlm.frame_relative_lengths(wav_lens, wavs.shape[-1])

    def task_loss(self, predictions, batch, stage):
        """The task's loss (implemented by the recipe)."""
        raise NotImplementedError("PruningBrain subclasses implement task_loss")

    def compute_objectives(self, predictions, batch, stage):
        """Task loss + distillation + Lagrangian sparsity term (training only)."""
        loss = self.task_loss(predictions, batch, stage)
        self.last_task_loss = float(loss.detach())
        if stage != sb.Stage.TRAIN:
            return loss
        loss = self._hp("task_weight", 1.0) * loss  # 0 = pure distillation (DiariZen stage 1)
        if getattr(self, "distill_value", None) is not None:
            loss = loss + self._hp("distill_weight", 1.0) * self.distill_value
        if self.pruning_enabled:
            objective = self.controller.objective
            self.expected_sparsity = self.wavlm.expected_sparsity(objective).float()
            loss = loss + self.controller(self.expected_sparsity)
        return loss

    # ---------------------------------------------------------- stepping
    def optimizers_step(self):
        """Unscale, clip model gradients together, step every active optimizer."""
        valid = self.freeze_optimizers(self.optimizers_dict)
        self.active_optimizers = set(valid)
        for opt in valid.values():
            self.scaler.unscale_(opt)
        multipliers = set()
        if self.pruning_enabled:
            multipliers = {id(p) for p in self.controller.lagrangian_parameters()}
        params = [
            p for opt in valid.values() for group in opt.param_groups
            for p in group["params"] if id(p) not in multipliers and p.grad is not None
        ]
        if params and self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
        if not self.scaler.is_enabled() and self.skip_nonfinite_grads:
            self.check_gradients()
        for opt in valid.values():
            self.scaler.step(opt)
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
        self.scaler.update()
        # fp16: the scaler skipped this step (inf/NaN gradients) iff it lowered its scale
        self.step_skipped = scale is not None and self.scaler.get_scale() < scale
        for opt in self.optimizers_dict.values():
            opt.zero_grad(set_to_none=True)
        self.optimizer_step += 1

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Advance the controller and the LR schedulers; log every N steps."""
        if not should_step:
            return
        # Schedules advance only with real optimizer steps: not while an optimizer
        # is frozen, not when the fp16 scaler skipped the step.
        stepped = set() if getattr(self, "step_skipped", False) \
            else set(getattr(self, "active_optimizers", ()))
        if self.pruning_enabled and "reg" in stepped:
            self.controller.after_optimizer_step()
            self.controller.step()
        for name, key in (("wavlm_lr_scheduler", "wavlm"), ("backend_lr_scheduler", "backend")):
            scheduler = self._hp(name)
            if scheduler is not None and key in stepped:
                scheduler(self.optimizers_dict[key])
        interval = self._hp("log_interval", 0) or 0
        if interval and self.optimizer_step % interval == 0:
            logger.info("step %d: %s", self.optimizer_step, self._format(self.pruning_stats()))

    @staticmethod
    def _format(stats):
        return ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()
        )

    def pruning_stats(self):
        """Current pruning figures (python floats) for logging."""
        stats = {"loss": float(getattr(self, "last_task_loss", float("nan")))}
        wavlm = self.wavlm
        if wavlm.prune_units:
            with torch.no_grad():
                stats["params_M"] = float(wavlm.expected_num_params()) / 1e6
                stats["gmacs"] = float(wavlm.expected_macs()) / 1e9
                stats["sparsity"] = float(wavlm.expected_sparsity("params"))
                stats["macs_sparsity"] = float(wavlm.expected_sparsity("macs"))
        if self.pruning_enabled:
            controller_stats = self.controller.stats(
                torch.tensor(stats.get("sparsity" if self.controller.objective == "params"
                                       else "macs_sparsity", 0.0))
            )
            stats.update(target=controller_stats["target"], lambda1=controller_stats["lambda1"],
                         lambda2=controller_stats["lambda2"])
        if getattr(self, "distill_value", None) is not None:
            stats["distill"] = float(self.distill_value.detach())
        for key, opt in self.optimizers_dict.items():
            stats[f"lr_{key}"] = opt.param_groups[0]["lr"]
        return stats
