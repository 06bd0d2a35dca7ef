"""Corpus preparation: SpeechBrain CSV manifests for the recipes.

* :mod:`data_prep.voxceleb_prepare`: ``prepare_voxceleb`` (VoxCeleb1/2);
* :mod:`data_prep.asvspoof_prepare`: ``prepare_asvspoof`` (ASVspoof5, 2019 LA);
* :mod:`data_prep.diarization_prepare`: ``prepare_diarization`` (AMI, DIHARD III,
  CHiME-6, VoxConverse, MSDWild, Kaldi and generic RTTM layouts);
* :mod:`data_prep.common`: shared helpers and the command line.

Each module is also a command (``python data_prep/voxceleb_prepare.py --help``).
The modules are not imported here, so importing one stays light.
"""
