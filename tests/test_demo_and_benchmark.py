"""The demo and the benchmark's pruned layout, on real code paths (no timing asserted)."""

import json
import sys
from pathlib import Path

import pytest

from speechbrain_pruning import PrunableWavLM
from speechbrain_pruning.pruning import demo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import wavlm_speed  # noqa: E402


def test_demo_runs_end_to_end(tmp_path):
    report = demo.main([
        "--output", str(tmp_path), "--steps", "6", "--hidden-size", "64", "--layers", "2",
        "--heads", "4", "--ffn", "128", "--seconds", "0.5", "--target", "0.3",
    ])
    assert report["max_abs_diff"] < 1e-4
    assert len(report["log"]) == 6 and report["log"][-1]["target"] > 0
    saved = json.loads((tmp_path / "demo_report.json").read_text())
    assert saved["params_after"] == PrunableWavLM.from_pretrained(tmp_path / "wavlm_pruned").num_params()


def test_benchmark_s80_layout_matches_diarizen_size(tmp_path):
    """DiariZen's Base+ s80 layout: about 18.9 M params and 1.13 GMACs per second."""
    wavlm_speed.base_plus_hf(tmp_path / "bp")
    model, summary = wavlm_speed.prune_like_s80(tmp_path / "bp")
    assert summary["conv_channels"] == wavlm_speed.S80_CONV
    assert [layer["heads"] for layer in summary["layers"]] == wavlm_speed.S80_HEADS
    assert sum(layer["ffn_dim"] for layer in summary["layers"]) == wavlm_speed.S80_FFN_TOTAL
    assert model.num_params() == pytest.approx(18.9e6, rel=0.01)
    assert float(model.expected_macs()) == pytest.approx(1.13e9, rel=0.01)
    assert summary["sparsity"] == pytest.approx(0.80, abs=0.005)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("recipe", ["VoxCeleb/SpeakerRec", "ASVspoof5/CM", "AMI/Diarization"])
def test_recipe_demos_run(recipe, tmp_path):
    """Each recipe's demo (the README's first command for VoxCeleb) runs end to end
    on one epoch and writes its summary."""
    import subprocess

    demo = Path(__file__).resolve().parents[1] / "recipes" / recipe / "demo.py"
    proc = subprocess.run([sys.executable, str(demo), "--output", str(tmp_path), "--epochs", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "demo summary" in proc.stdout
    summary = json.loads((tmp_path / "demo_summary.json").read_text())
    assert summary["params"] <= summary["reference_params"]
    assert (tmp_path / "experiment" / "exported" / "README.md").is_file()
