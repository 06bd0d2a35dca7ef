"""Speaker diarization: RTTM/UEM I/O and frame labels, the powerset encoding and
EEND head, the sliding-window pipeline with clustering, DER reports, the
``PrunedDiarizer`` interface and the ``speechbrain-pruning-diarize`` command."""

from .eend import EENDHead
from .interface import PrunedDiarizer, build_diarizer
from .powerset import Powerset
from .rttm import frame_labels, read_rttm, read_uem, write_rttm, write_uem

__all__ = ["read_rttm", "write_rttm", "read_uem", "write_uem", "frame_labels", "Powerset",
           "EENDHead", "PrunedDiarizer", "build_diarizer"]
