"""Anti-spoofing (countermeasures): SSL-AASIST and the spoof head, RawBoost,
codec augmentation (``CodecAugment``, ``AugmentChain``), CM metrics (minDCF,
actDCF, Cllr, EER, per-attack / per-codec tables), scoring of manifests, and
``PrunedSpoofDetector``."""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".aasist": "SSLAASIST",
    ".codec": "CodecAugment AugmentChain",
    ".head": "SpoofHead bonafide_score",
    ".interface": "PrunedSpoofDetector",
    ".rawboost": "RawBoost",
})
