#!/usr/bin/env python3
"""Speaker diarization on DIHARD3 with a pruned WavLM EEND (see README.md).

Usage::

    python recipes/DIHARD3/Diarization/train.py recipes/DIHARD3/Diarization/hparams/wavlm_base_plus.yaml \\
        --data_folder=/data/DIHARD3 --wavlm_source=/models/wavlm-base-plus
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from data_prep.diarization_prepare import prepare_diarization  # noqa: E402
from speechbrain_pruning.diarization.training import run  # noqa: E402


def main(argv=None):
    return run(sys.argv[1:] if argv is None else argv, prepare_diarization)


if __name__ == "__main__":
    main()
