"""Learning what to remove and removing it: hard-concrete gates, the Lagrangian
sparsity controller, distillation, the ``PruningBrain`` every recipe uses, and
the export of a physically pruned inference folder."""

from .._lazy import lazy_exports

_EXPORTS = {
    "PruningBrain": ".brain",
    "rank_seed": ".brain",
    "DistillLoss": ".distill",
    "load_teacher": ".distill",
    "build_module": ".export",
    "component_params": ".export",
    "export_model": ".export",
    "load_state_dict_strict": ".export",
    "HardConcrete": ".hardconcrete",
    "SparsityController": ".sparsity",
    "pruning_param_groups": ".sparsity",
    "target_at": ".sparsity",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
