"""Speaker verification: MHFA and ECAPA back-ends, the AAM margin schedule, trial
scoring (cosine, AS-norm), EER / minDCF / DET, and ``PrunedSpeakerRecognition``."""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".ecapa": "WeightedLayerECAPA",
    ".interface": "PrunedSpeakerRecognition",
    ".margin": "MarginScheduler",
    ".metrics": "cosine_scores det_curve eer evaluate min_dcf plot_det read_trials score_trials",
    ".mhfa": "MHFA",
})
