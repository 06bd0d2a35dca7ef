"""Install speechbrain-pruning: `pip install -e .` (add `[test]` for pytest)."""
from setuptools import find_packages, setup

setup(
    name="speechbrain_pruning",
    version="0.1.0",
    description=(
        "Prune WavLM while fine-tuning it with SpeechBrain: hard-concrete gates, "
        "Lagrangian sparsity control, distillation and physical pruning."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["speechbrain_pruning", "speechbrain_pruning.*", "data_prep"]),
    python_requires=">=3.10",
    # Exact pins: `pip install -e .` in a brand-new virtual environment resolves to
    # this set, which CI (.ci/run) installs afresh and tests on every run.
    #
    # torch / torchaudio: torchaudio's compiled library only loads with the torch it
    # was built against. torchaudio 2.11.0 (declares no torch requirement) is built for
    # torch 2.11.0, and both wheels are CUDA 13.0 builds (2.11.0+cu130), so GPU users
    # get a matched pair. torchaudio 2.11.1 (the newest) fails to load with torch
    # 2.11.0 (undefined symbol torch_exception_get_what_without_backtrace); it imports
    # with torch 2.14.1, but as a CUDA 13.2 build beside torch's CUDA 13.0, which no
    # GPU run has checked. So: the newest pair built for the same CUDA version.
    install_requires=[
        "torch==2.11.0",
        "torchaudio==2.11.0",
        "speechbrain==1.1.2",
        "transformers==5.24.0",
        "huggingface_hub==2.4.0",
        "hyperpyyaml==1.2.3",
        "ruamel.yaml==0.18.17",  # HyperPyYAML's parser; load_hparams merges override files with it
        "numpy==2.4.6",
        "pandas==3.1.1",
        "scipy==1.17.1",
        "safetensors==0.8.0",
        "soundfile==0.14.0",
        "tqdm==4.70.1",
        "matplotlib==3.11.2",
        "pyannote.core==6.1.0",
        "pyannote.metrics==4.2.0",
        "onnx==1.23.2",  # ONNX export (speechbrain_pruning.onnx_export)
        "onnxruntime==1.32.0",  # interfaces' use_onnx()
    ],
    extras_require={"test": ["pytest==9.2.0", "pytest-timeout==2.4.0"]},
    entry_points={
        "console_scripts": [
            "speechbrain-pruning-diarize=speechbrain_pruning.diarization.cli:main",
            "speechbrain-pruning-tune-diarizer=speechbrain_pruning.diarization.tune:main",
            "speechbrain-pruning-import-diarizen=speechbrain_pruning.diarization.diarizen:main",
        ]
    },
)
