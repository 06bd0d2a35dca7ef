"""Helpers shared by the corpus preparation scripts: header reads, atomic CSV
writes and the stored-options file that makes a re-run with the same options
instant."""

import csv
import json
import os
from pathlib import Path

import soundfile as sf

__all__ = ["BadAudioFileError", "audio_header", "write_csv", "load_options", "outputs_exist"]


class BadAudioFileError(RuntimeError):
    """An audio file whose header cannot be read (corrupt or truncated)."""


def audio_header(path):
    """``soundfile.info`` of ``path``; a corrupt header raises :class:`BadAudioFileError`.

    Example
    -------
    >>> import tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sf.write(f"{tmp}/a.wav", np.zeros(800), 16000)
    ...     int(audio_header(f"{tmp}/a.wav").frames)
    800
    """
    try:
        return sf.info(str(path))
    except (RuntimeError, OSError, ValueError, EOFError) as err:
        raise BadAudioFileError(f"Cannot read the audio header of {path}: {err}") from err


def write_csv(path, fields, rows):
    """Write rows (sequences in ``fields`` order) atomically; IDs (first column) unique."""
    path = Path(path)
    seen = set()
    for row in rows:
        if row[0] in seen:
            raise ValueError(f"Duplicate ID {row[0]!r} in {path}")
        seen.add(row[0])
    partial = path.with_name(path.name + ".part")
    with open(partial, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows(rows)
    os.replace(partial, path)


def load_options(opt_path):
    """Stored options and summary, or ``None``."""
    try:
        with open(opt_path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def outputs_exist(summary, keys=("csv",)):
    """Whether every file listed under ``keys`` of a stored summary still exists."""
    paths = [p for key in keys for p in summary.get(key, {}).values()]
    return bool(paths) and all(Path(p).is_file() for p in paths)
