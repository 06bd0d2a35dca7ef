"""The public face: SpeechBrain inference interfaces for exported folders.

Each interface is a ``speechbrain.inference.interfaces.Pretrained`` and loads
with ``Interface.from_hparams(source=folder, savedir=folder)`` without any
network access: the folder's ``hyperparams.yaml`` only references files inside
the folder. They live with their task (:mod:`speechbrain_pruning.speaker`,
:mod:`~speechbrain_pruning.spoofing`, :mod:`~speechbrain_pruning.diarization`);
this module gathers them.

Example
-------
>>> from speechbrain_pruning.inference import PrunedSpeakerRecognition
>>> # model = PrunedSpeakerRecognition.from_hparams(source="exported", savedir="exported")
"""

from .audio import SAMPLE_RATE, load_audio_file
from .diarization.interface import PrunedDiarizer, build_diarizer
from .pretrained import PrunedInterface, load_exported
from .speaker.interface import PrunedSpeakerRecognition
from .spoofing.interface import PrunedSpoofDetector

__all__ = ["PrunedSpeakerRecognition", "PrunedSpoofDetector", "PrunedDiarizer", "build_diarizer",
           "PrunedInterface", "load_exported", "load_audio_file", "SAMPLE_RATE"]
