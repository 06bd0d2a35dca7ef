"""speechbrain-pruning: make WavLM small and fast while fine-tuning it.

The public entry point is :class:`PrunableWavLM`; see ``DESIGN.md`` for the
contracts other modules rely on.
"""

from .hardconcrete import HardConcrete
from .wavlm import PRUNE_UNITS, PrunableWavLM, WavLMConfig

__version__ = "0.1.0"

__all__ = ["PrunableWavLM", "WavLMConfig", "HardConcrete", "PRUNE_UNITS", "__version__"]
