"""Prunable WavLM: configuration, modules and checkpoint conversion."""

from .config import WavLMConfig, wavlm_base, wavlm_base_plus, wavlm_large
from .model import DEFAULT_GATE_INIT, PRUNE_UNITS, PrunableWavLM

__all__ = [
    "WavLMConfig",
    "PrunableWavLM",
    "PRUNE_UNITS",
    "DEFAULT_GATE_INIT",
    "wavlm_base",
    "wavlm_base_plus",
    "wavlm_large",
]
