"""Simulated corpora in the real on-disk layouts (VoxCeleb, ASVspoof5 / 2019 LA,
AMI and generic diarization) and random-weight WavLM checkpoints: the inputs of
the demos and tests, built offline and byte-identically for a seed."""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".meeting": "make_meeting_corpus",
    ".models": "TINY_WAVLM write_random_hf_wavlm write_tiny_wavlm",
    ".spoof": "make_asvspoof5_mini",
    ".voices": "GENDERS sample_speaker synthesize_utterance",
    ".voxceleb": "TRIAL_LISTS make_voxceleb_mini",
})
