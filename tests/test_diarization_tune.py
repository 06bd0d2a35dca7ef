"""Dev-set tuning: one segmentation per recording, coordinate descent, values written back."""


import numpy as np
import pytest
import soundfile as sf

from speechbrain_pruning.diarization.pipeline import SlidingWindowDiarizer
from speechbrain_pruning.diarization.rttm import write_rttm
from speechbrain_pruning.diarization.tune import tune_pipeline, write_params

from test_diarization_pipeline import (SR, TURNS, OracleSegmentation, make_reference, oracle_embed,
                                       synthesize)


def test_tuning_finds_a_better_threshold_and_segments_once(tmp_path):
    wav = synthesize(TURNS, 40.0)
    sf.write(tmp_path / "synth.wav", wav, SR, subtype="FLOAT")
    write_rttm(make_reference(TURNS), tmp_path / "synth.rttm")
    csv = tmp_path / "dev.csv"
    csv.write_text(f"ID,wav,rttm\nsynth,{tmp_path / 'synth.wav'},{tmp_path / 'synth.rttm'}\n")
    calls = []
    oracle = OracleSegmentation(wav, TURNS)

    def segment(wavs):
        calls.append(wavs.shape[0])
        return oracle(wavs)

    # a threshold that merges everyone: 3 speakers become 1
    pipeline = SlidingWindowDiarizer(segment, oracle_embed, clustering="ahc",
                                     clustering_threshold=1.9, progress=False)
    report = tune_pipeline(pipeline, csv, progress=False)
    windows = len(pipeline.window_starts(pipeline.num_frames(len(wav))))
    assert sum(calls) == windows  # segmented once, whatever the number of evaluations
    assert report["evaluations"] > 5
    assert report["default"]["clustering_threshold"] == 1.9
    assert report["default_der"] > 30.0 and report["tuned_der"] < 5.0
    assert report["tuned"]["clustering_threshold"] < 1.0
    assert pipeline.clustering_threshold == report["tuned"]["clustering_threshold"]
    assert np.isfinite(report["tuned_jer"]) and report["tuned_jer"] < report["default_jer"]


def test_write_params_updates_the_exported_yaml(tmp_path):
    path = tmp_path / "hyperparams.yaml"
    path.write_text("model_folder: !PLACEHOLDER\ninterface_class: x.Y\nclustering_threshold: 0.6"
                    "\nvbx_fa: 0.07\n\nwavlm: !apply:f\n    path: p\n")
    write_params(path, {"clustering_threshold": 0.7, "vbx_fa": 0.1, "min_duration_off": 0.2})
    text = path.read_text()
    assert "clustering_threshold: 0.7\n" in text and "vbx_fa: 0.1\n" in text
    assert "min_duration_off: 0.2" in text and text.count("clustering_threshold") == 1
    assert text.endswith("wavlm: !apply:f\n    path: p\n")


def test_low_memory_pipeline_cannot_be_tuned():
    pipeline = SlidingWindowDiarizer(None, oracle_embed, clustering="ahc", low_memory=True,
                                     progress=False)
    with pytest.raises(ValueError, match="low_memory=False"):
        pipeline.segment_and_embed(np.zeros(16000, dtype=np.float32))
