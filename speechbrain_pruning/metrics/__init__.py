"""Evaluation metrics: speaker verification scoring (EER, minDCF, DET, AS-norm)
and ASVspoof5 countermeasure metrics (EER, minDCF, actDCF, Cllr, minCllr)."""

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
from .spoofing import (
    bayes_threshold,
    breakdown,
    breakdown_table,
    cllr,
    cm_act_dcf,
    cm_eer,
    cm_min_dcf,
    evaluate_cm,
    min_cllr,
    read_scores,
    write_scores,
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
    "cm_eer",
    "cm_min_dcf",
    "cm_act_dcf",
    "bayes_threshold",
    "cllr",
    "min_cllr",
    "evaluate_cm",
    "breakdown",
    "breakdown_table",
    "read_scores",
    "write_scores",
]
