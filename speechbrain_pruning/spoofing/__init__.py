"""Anti-spoofing (countermeasures): SSL-AASIST and the spoof head, RawBoost,
CM metrics (minDCF, actDCF, Cllr, EER, per-attack / per-codec tables), scoring
of manifests, and ``PrunedSpoofDetector``."""

from .aasist import SSLAASIST
from .head import SpoofHead, bonafide_score
from .interface import PrunedSpoofDetector
from .rawboost import RawBoost

__all__ = ["SSLAASIST", "SpoofHead", "bonafide_score", "RawBoost", "PrunedSpoofDetector"]
