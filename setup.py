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
    packages=find_packages(include=["speechbrain_pruning", "speechbrain_pruning.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch==2.11.*",
        "torchaudio==2.11.*",
        "speechbrain>=1.1,<1.2",
        "transformers>=5",
        "hyperpyyaml",
        "numpy",
        "pandas",
        "scipy",
        "safetensors",
        "soundfile",
        "tqdm",
        "matplotlib",
        "pyannote.core",
        "pyannote.metrics",
    ],
    extras_require={"test": ["pytest", "pytest-timeout"]},
    entry_points={
        "console_scripts": [
            "speechbrain-pruning-diarize=speechbrain_pruning.diarization.cli:main",
        ]
    },
)
