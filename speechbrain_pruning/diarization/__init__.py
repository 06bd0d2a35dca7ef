"""Speaker diarization: RTTM/UEM I/O and frame labels, the powerset encoding and
EEND head, the sliding-window pipeline with clustering, DER reports, the
``PrunedDiarizer`` interface and the ``speechbrain-pruning-diarize`` command."""

from .._lazy import lazy_exports

_EXPORTS = {
    "EENDHead": ".eend",
    "PrunedDiarizer": ".interface",
    "build_diarizer": ".interface",
    "Powerset": ".powerset",
    "frame_labels": ".rttm",
    "read_rttm": ".rttm",
    "read_uem": ".rttm",
    "write_rttm": ".rttm",
    "write_uem": ".rttm",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
