"""Noise and reverberation augmentation from local MUSAN / RIR folders.

SpeechBrain's ``prepare_dataset_from_URL`` downloads its own noise and RIR
archives; here the corpora are local folders (e.g. ``musan/`` and
``RIRS_NOISES/``) scanned once into the CSV files that
``speechbrain.augment.time_domain.AddNoise`` / ``AddReverb`` read.
"""

import csv
import logging
from pathlib import Path

import soundfile as sf
import torch

__all__ = ["folder_to_csv", "build_wav_augment", "augment_random_subset"]

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac")


def folder_to_csv(folder, csv_path, extensions=AUDIO_EXTENSIONS):
    """Write ``ID,duration,wav,wav_format,wav_opts`` rows (the CSV layout
    SpeechBrain's ``AddNoise``/``AddReverb`` read) for every audio file under
    ``folder``.

    Durations come from file headers. Returns the number of files; an empty
    folder raises ``ValueError`` naming it.

    Example
    -------
    >>> import tempfile, numpy as np
    >>> tmp = Path(tempfile.mkdtemp())
    >>> sf.write(tmp / "n1.wav", np.zeros(1600), 16000)
    >>> folder_to_csv(tmp, tmp / "noise.csv")
    1
    """
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in extensions)
    if not files:
        raise ValueError(f"No {'/'.join(extensions)} files found under {folder}")
    with open(csv_path, "w", newline="", encoding="utf-8") as fout:
        writer = csv.writer(fout)
        writer.writerow(["ID", "duration", "wav", "wav_format", "wav_opts"])
        for i, path in enumerate(files):
            try:
                info = sf.info(str(path))
            except Exception as err:
                raise RuntimeError(f"Cannot read audio header of {path}: {err}") from err
            writer.writerow([f"{path.stem}_{i}", f"{info.duration:.3f}", str(path),
                             path.suffix.lower().lstrip("."), ""])
    return len(files)


def build_wav_augment(save_folder, musan_folder=None, rir_folder=None, augment_prob=0.6,
                      snr_low=0, snr_high=15, num_workers=0):
    """An ``Augmenter`` applying one of noise (MUSAN) or reverberation (RIR).

    Returns None when neither folder is given. The batch size is unchanged
    (no concatenation of the clean copy), each batch is augmented with
    probability ``augment_prob``.
    """
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.time_domain import AddNoise, AddReverb

    augmentations = []
    save_folder = Path(save_folder)
    save_folder.mkdir(parents=True, exist_ok=True)
    if musan_folder:
        n = folder_to_csv(musan_folder, save_folder / "noise.csv")
        logger.info("Noise augmentation with %d files from %s", n, musan_folder)
        augmentations.append(AddNoise(csv_file=str(save_folder / "noise.csv"), snr_low=snr_low,
                                      snr_high=snr_high, num_workers=num_workers))
    if rir_folder:
        n = folder_to_csv(rir_folder, save_folder / "rir.csv")
        logger.info("Reverberation with %d impulse responses from %s", n, rir_folder)
        augmentations.append(AddReverb(csv_file=str(save_folder / "rir.csv"),
                                       num_workers=num_workers))
    if not augmentations:
        return None
    return Augmenter(parallel_augment=False, concat_original=False, min_augmentations=1,
                     max_augmentations=1, augment_prob=augment_prob,
                     augmentations=augmentations)


def augment_random_subset(augment, wavs, lengths, prob):
    """``augment(wavs, lengths) -> wavs`` applied to the utterances of a random subset.

    Each utterance of ``wavs [B, S]`` is chosen with probability ``prob``
    (drawn on the host); the chosen ones (and their relative ``lengths``, or
    None) go through ``augment`` in one batch, the others are returned as
    they are. Returns ``[B, S]``.

    Example
    -------
    >>> wavs = torch.zeros(4, 10)
    >>> augment_random_subset(lambda w, l: w + 1, wavs, None, prob=1.0).sum().item()
    40.0
    >>> augment_random_subset(lambda w, l: w + 1, wavs, None, prob=0.0).sum().item()
    0.0
    """
    if prob <= 0.0:
        return wavs
    if prob >= 1.0:
        return augment(wavs, lengths)
    chosen = torch.rand(wavs.shape[0], device="cpu") < prob  # host-side choice
    if not bool(chosen.any()):
        return wavs
    index = chosen.nonzero().squeeze(1).to(wavs.device)
    subset = None if lengths is None else torch.as_tensor(lengths, device=wavs.device)[index]
    out = wavs.clone()
    out[index] = augment(wavs[index], subset).to(wavs.dtype)
    return out
