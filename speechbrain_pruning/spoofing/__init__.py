"""Anti-spoofing (countermeasures): SSL-AASIST and the spoof head, RawBoost,
CM metrics (minDCF, actDCF, Cllr, EER, per-attack / per-codec tables), scoring
of manifests, and ``PrunedSpoofDetector``."""

from .._lazy import lazy_exports

_EXPORTS = {
    "SSLAASIST": ".aasist",
    "SpoofHead": ".head",
    "bonafide_score": ".head",
    "PrunedSpoofDetector": ".interface",
    "RawBoost": ".rawboost",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
