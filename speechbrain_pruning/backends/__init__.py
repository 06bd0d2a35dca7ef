"""Speaker-embedding back-ends on the stacked hidden states of WavLM.

Every back-end takes ``hidden [L+1, B, T, D]`` (as returned by
:class:`speechbrain_pruning.PrunableWavLM`) and SpeechBrain relative
``lengths [B]``, and returns embeddings ``[B, E]``; padded frames never
influence the output (ECAPA: in eval mode, see :mod:`.ecapa`).

* :class:`MHFA`: multi-head factorized attentive pooling (Peng et al., 2022);
* :class:`WeightedLayerECAPA`: weighted layer sum + SpeechBrain ECAPA-TDNN;
* :class:`MarginScheduler`: linear warm-up of the AAM-softmax margin;
* :class:`EENDHead`: Conformer powerset diarization head (frame-level
  log-probabilities ``[B, T, C]`` instead of embeddings).
"""

import pydoc

from .ecapa import WeightedLayerECAPA
from .margin import MarginScheduler
from .mhfa import MHFA
from .aasist import SSLAASIST
from .spoof_head import SpoofHead, bonafide_score
from .eend import EENDHead

__all__ = ["MHFA", "WeightedLayerECAPA", "MarginScheduler", "build_backend",
           "SSLAASIST", "SpoofHead", "bonafide_score", "EENDHead"]


def build_backend(class_path, kwargs):
    """Instantiate a back-end from its dotted class path and keyword arguments.

    Recipes build back-ends this way so that the same ``(class_path, kwargs)``
    pair can be written into an exported inference folder.

    Example
    -------
    >>> mhfa = build_backend("speechbrain_pruning.backends.MHFA",
    ...                      {"num_layers": 3, "feat_dim": 8, "num_heads": 2,
    ...                       "compression_dim": 4, "embed_dim": 5})
    >>> type(mhfa).__name__
    'MHFA'
    """
    cls = pydoc.locate(class_path)
    if cls is None:
        raise ValueError(f"Cannot import back-end class {class_path!r}")
    return cls(**dict(kwargs))
