"""Simulated corpora in the real on-disk layouts (VoxCeleb, ASVspoof5 / 2019 LA,
AMI and generic diarization) and random-weight WavLM checkpoints: the inputs of
the demos and tests, built offline and byte-identically for a seed."""

from .meeting import make_meeting_corpus
from .models import TINY_WAVLM, write_random_hf_wavlm, write_tiny_wavlm
from .spoof import make_asvspoof5_mini
from .voices import GENDERS, sample_speaker, synthesize_utterance
from .voxceleb import TRIAL_LISTS, make_voxceleb_mini

__all__ = ["sample_speaker", "synthesize_utterance", "GENDERS", "make_voxceleb_mini",
           "TRIAL_LISTS", "make_asvspoof5_mini", "make_meeting_corpus", "TINY_WAVLM",
           "write_tiny_wavlm", "write_random_hf_wavlm"]
