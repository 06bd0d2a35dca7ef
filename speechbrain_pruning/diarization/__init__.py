"""Speaker diarization: RTTM/UEM I/O and frame labels, the powerset encoding and
EEND head, the sliding-window pipeline with clustering, DER reports, the
``PrunedDiarizer`` interface and the ``speechbrain-pruning-diarize`` command."""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".eend": "EENDHead",
    ".interface": "PrunedDiarizer build_diarizer",
    ".powerset": "Powerset",
    ".rttm": "frame_labels read_rttm read_uem write_rttm write_uem",
})
