"""Speaker diarization: RTTM/UEM I/O, frame labels, the sliding-window pipeline,
clustering, training (``training``) and the command line (``cli``).

Modules importing the pipeline or training code are loaded on demand, so that
``from speechbrain_pruning.diarization import read_rttm`` stays light.
"""

from .rttm import frame_labels, read_rttm, read_uem, write_rttm, write_uem

__all__ = ["read_rttm", "write_rttm", "read_uem", "write_uem", "frame_labels"]
