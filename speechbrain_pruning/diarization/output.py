"""``DiarizeOutput``: what a diarization call returns (pyannote.audio 4's shape).

Like pyannote.audio 4's ``DiarizeOutput``, the result carries

* ``speaker_diarization``: the :class:`pyannote.core.Annotation` (overlap kept);
* ``exclusive_speaker_diarization``: at most one speaker at a time (in
  overlapped frames the speaker of highest aggregated activation), handy for
  transcription alignment;
* ``speaker_embeddings``: ``[num_speakers, E]``, row ``i`` the embedding
  (cluster centroid) of ``speaker_diarization.labels()[i]``;

and writes itself as RTTM or JSON.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyannote.core import Annotation

from .rttm import write_rttm

__all__ = ["DiarizeOutput"]


@dataclass
class DiarizeOutput:
    """The diarization of one recording.

    Example
    -------
    >>> from pyannote.core import Segment
    >>> ann = Annotation(uri="rec")
    >>> ann[Segment(0.0, 1.5)] = "SPEAKER_00"
    >>> out = DiarizeOutput(ann, ann, np.ones((1, 2), dtype=np.float32))
    >>> out.to_dict()["speakers"][0]["label"], out.to_dict()["segments"][0]
    ('SPEAKER_00', {'start': 0.0, 'end': 1.5, 'speaker': 'SPEAKER_00'})
    """

    speaker_diarization: Annotation
    exclusive_speaker_diarization: Annotation
    speaker_embeddings: np.ndarray = field(default=None)

    @property
    def uri(self):
        return self.speaker_diarization.uri

    def write_rttm(self, file, exclusive=False):
        """RTTM of the (exclusive) diarization to a path or an open text file."""
        write_rttm(self.exclusive_speaker_diarization if exclusive
                   else self.speaker_diarization, file)

    def to_dict(self, embeddings=True):
        """JSON-ready dict: uri, segments, exclusive segments, speakers (+ embeddings)."""
        def turns(annotation):
            return [{"start": round(s.start, 3), "end": round(s.end, 3), "speaker": str(label)}
                    for s, _, label in annotation.itertracks(yield_label=True)]

        speakers = []
        for i, label in enumerate(self.speaker_diarization.labels()):
            entry = {"label": str(label),
                     "duration": round(float(self.speaker_diarization.label_duration(label)), 3)}
            if embeddings and self.speaker_embeddings is not None:
                entry["embedding"] = [float(v) for v in self.speaker_embeddings[i]]
            speakers.append(entry)
        return {"uri": self.uri, "segments": turns(self.speaker_diarization),
                "exclusive_segments": turns(self.exclusive_speaker_diarization),
                "speakers": speakers}

    def write_json(self, path, embeddings=True):
        """Write :meth:`to_dict` to ``path`` (atomically: ``.part`` then rename)."""
        path = Path(os.fspath(path))
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(self.to_dict(embeddings), indent=1) + "\n", encoding="utf-8")
        partial.replace(path)
