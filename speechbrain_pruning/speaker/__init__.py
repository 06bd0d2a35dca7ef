"""Speaker verification: MHFA and ECAPA back-ends, the AAM margin schedule, trial
scoring (cosine, AS-norm), EER / minDCF / DET, and ``PrunedSpeakerRecognition``."""

from .ecapa import WeightedLayerECAPA
from .interface import PrunedSpeakerRecognition
from .margin import MarginScheduler
from .metrics import cosine_scores, det_curve, eer, evaluate, min_dcf, plot_det, read_trials, \
    score_trials
from .mhfa import MHFA

__all__ = ["MHFA", "WeightedLayerECAPA", "MarginScheduler", "PrunedSpeakerRecognition",
           "read_trials", "cosine_scores", "score_trials", "eer", "min_dcf", "det_curve",
           "plot_det", "evaluate"]
