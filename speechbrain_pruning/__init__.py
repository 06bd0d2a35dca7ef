"""speechbrain-pruning: make WavLM small and fast while fine-tuning it.

The public entry point is :class:`PrunableWavLM`; the inference interfaces are in
:mod:`speechbrain_pruning.inference`. ``docs/DESIGN.md`` is the plan of the
package and the contracts other code relies on.
"""

from . import _compat
from .pruning.hardconcrete import HardConcrete
from .wavlm import PRUNE_UNITS, PrunableWavLM, WavLMConfig

__version__ = "0.1.0"

_compat.install()  # old module paths: deprecated aliases for one release

__all__ = ["PrunableWavLM", "WavLMConfig", "HardConcrete", "PRUNE_UNITS", "__version__"]
