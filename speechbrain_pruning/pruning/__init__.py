"""Learning what to remove and removing it: hard-concrete gates, the Lagrangian
sparsity controller, distillation, the ``PruningBrain`` every recipe uses, and
the export of a physically pruned inference folder."""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".brain": "PruningBrain rank_seed",
    ".distill": "DistillLoss load_teacher",
    ".export": "build_module component_params export_model load_state_dict_strict",
    ".hardconcrete": "HardConcrete",
    ".sparsity": "SparsityController pruning_param_groups target_at",
})
