"""The installed environment is the pinned one and every public interface imports.

CI runs this inside a brand-new virtual environment (``.ci/run``), so it checks
what a new user's ``pip install -e .`` gives.
"""

import importlib
import pkgutil
import re
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pinned_requirements():
    """``{name: version}`` of the ``==`` pins in setup.py's install_requires."""
    text = (ROOT / "setup.py").read_text()
    block = text[text.index("install_requires=["):text.index("],", text.index("install_requires"))]
    return dict(re.findall(r'"([A-Za-z0-9_.\-]+)==([^"]+)"', block))


def test_every_dependency_is_pinned_and_installed_as_pinned():
    pins = pinned_requirements()
    assert {"torch", "torchaudio", "speechbrain", "transformers"} <= set(pins)
    for name, pinned in pins.items():
        assert version(name).split("+")[0] == pinned, name


def test_torch_and_torchaudio_load_together():
    """torchaudio's compiled ops run with this torch (the fresh-install failure)."""
    import torch
    import torchaudio

    assert torch.__version__.split("+")[0] == torchaudio.__version__.split("+")[0]
    cuda = lambda v: v.split("+")[1] if "+" in v else None  # noqa: E731
    assert cuda(torch.__version__) == cuda(torchaudio.__version__)  # same CUDA build
    wav = torch.randn(1, 8000)
    assert torchaudio.functional.resample(wav, 8000, 16000).shape == (1, 16000)
    conformer = torchaudio.models.Conformer(input_dim=8, num_heads=2, ffn_dim=16,
                                            num_layers=1, depthwise_conv_kernel_size=3)
    out, _ = conformer(torch.randn(1, 5, 8), torch.tensor([5]))
    assert out.shape == (1, 5, 8)


def test_every_module_and_interface_imports():
    import speechbrain_pruning

    names = [m.name for m in pkgutil.walk_packages(speechbrain_pruning.__path__,
                                                    "speechbrain_pruning.")]
    assert len(names) > 20
    for name in names:
        importlib.import_module(name)
    from speechbrain_pruning import PrunableWavLM  # noqa: F401
    from speechbrain_pruning.inference import (  # noqa: F401
        PrunedDiarizer, PrunedSpeakerRecognition, PrunedSpoofDetector,
    )


@pytest.mark.parametrize("script", ["speechbrain-pruning-diarize"])
def test_console_scripts_are_installed(script):
    import shutil
    import subprocess
    import sys

    path = shutil.which(script) or str(Path(sys.executable).parent / script)
    proc = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--quiet" in proc.stdout
