"""Speaker diarization: RTTM/UEM input and output and frame-level labels."""

from .rttm import frame_labels, read_rttm, read_uem, write_rttm, write_uem

__all__ = ["read_rttm", "write_rttm", "read_uem", "write_uem", "frame_labels"]
