"""Evaluation metrics: speaker verification scoring (EER, minDCF, DET, AS-norm)."""

from .verification import (
    cosine_scores,
    det_curve,
    eer,
    evaluate,
    min_dcf,
    plot_det,
    read_trials,
    score_trials,
)

__all__ = [
    "read_trials",
    "eer",
    "min_dcf",
    "det_curve",
    "plot_det",
    "cosine_scores",
    "score_trials",
    "evaluate",
]
