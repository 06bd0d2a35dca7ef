#!/usr/bin/env python3
"""DIHARD3 diarization: the shared diarization recipe (``recipes/AMI/Diarization/train.py``).

Usage::

    python recipes/DIHARD3/Diarization/train.py recipes/DIHARD3/Diarization/hparams/wavlm_base_plus.yaml \\
        --data_folder=/data/DIHARD3 --wavlm_source=/models/wavlm-base-plus
"""

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parents[2] / "AMI" / "Diarization" / "train.py"),
                   run_name="__main__")
