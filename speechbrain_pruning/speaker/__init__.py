"""Speaker verification: MHFA and ECAPA back-ends, the AAM margin schedule, trial
scoring (cosine, AS-norm), EER / minDCF / DET, and ``PrunedSpeakerRecognition``."""

from .._lazy import lazy_exports

_EXPORTS = {
    "WeightedLayerECAPA": ".ecapa",
    "PrunedSpeakerRecognition": ".interface",
    "MarginScheduler": ".margin",
    "cosine_scores": ".metrics",
    "det_curve": ".metrics",
    "eer": ".metrics",
    "evaluate": ".metrics",
    "min_dcf": ".metrics",
    "plot_det": ".metrics",
    "read_trials": ".metrics",
    "score_trials": ".metrics",
    "MHFA": ".mhfa",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
