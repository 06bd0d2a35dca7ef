"""Learning what to remove and removing it: hard-concrete gates, the Lagrangian
sparsity controller, distillation, the ``PruningBrain`` every recipe uses, and
the export of a physically pruned inference folder."""

from .brain import PruningBrain, rank_seed
from .distill import DistillLoss, load_teacher
from .export import build_module, component_params, export_model, load_state_dict_strict
from .hardconcrete import HardConcrete
from .sparsity import SparsityController, pruning_param_groups, target_at

__all__ = ["HardConcrete", "SparsityController", "pruning_param_groups", "target_at",
           "DistillLoss", "load_teacher", "PruningBrain", "rank_seed", "export_model", "build_module", "component_params",
           "load_state_dict_strict"]
