"""Simulated corpora in the real on-disk layouts (VoxCeleb, ASVspoof5 / 2019 LA,
AMI and generic diarization) and random-weight WavLM checkpoints: the inputs of
the demos and tests, built offline and byte-identically for a seed."""

from .._lazy import lazy_exports

_EXPORTS = {
    "make_meeting_corpus": ".meeting",
    "TINY_WAVLM": ".models",
    "write_random_hf_wavlm": ".models",
    "write_tiny_wavlm": ".models",
    "make_asvspoof5_mini": ".spoof",
    "GENDERS": ".voices",
    "sample_speaker": ".voices",
    "synthesize_utterance": ".voices",
    "TRIAL_LISTS": ".voxceleb",
    "make_voxceleb_mini": ".voxceleb",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
