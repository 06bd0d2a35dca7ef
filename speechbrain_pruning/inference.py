"""SpeechBrain inference interfaces for folders written by :mod:`speechbrain_pruning.export`.

Each interface is a ``speechbrain.inference.interfaces.Pretrained`` and loads
with ``Interface.from_hparams(source=folder, savedir=folder)`` without any
network access: the folder's ``hyperparams.yaml`` only references files inside
the folder.
"""

from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F
import torchaudio
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import FetchConfig, LocalStrategy

__all__ = ["PrunedSpeakerRecognition", "PrunedSpoofDetector", "load_audio_file", "SAMPLE_RATE"]

SAMPLE_RATE = 16000


def load_audio_file(path, sample_rate=SAMPLE_RATE):
    """Read ``path`` as a mono float tensor ``[S]`` at ``sample_rate``.

    The first channel of multi-channel files is taken; other rates are
    resampled. Errors name the file.
    """
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise RuntimeError(f"Cannot read audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise ValueError(f"Audio file {path} is empty")
    wav = torch.from_numpy(data[:, 0].copy())
    if rate != sample_rate:
        wav = torchaudio.functional.resample(wav, rate, sample_rate)
    return wav


class _PrunedInterface(Pretrained):
    """Offline ``from_hparams`` for exported folders."""

    HPARAMS_NEEDED = ["sample_rate"]

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", savedir=None,
                     overrides=None, **kwargs):
        """Load an exported folder; ``savedir`` defaults to ``source``.

        Never touches the network (``FetchConfig(allow_network=False)``).
        """
        source = Path(source).resolve()
        if not (source / hparams_file).is_file():
            raise FileNotFoundError(f"{source}: no {hparams_file}; not an exported model folder")
        overrides = dict(overrides or {})
        overrides.setdefault("model_folder", str(source))
        kwargs.setdefault("fetch_config", FetchConfig(allow_network=False))
        kwargs.setdefault("local_strategy", LocalStrategy.NO_LINK)
        return super().from_hparams(
            source=str(source), hparams_file=hparams_file,
            savedir=str(Path(savedir).resolve()) if savedir else str(source),
            overrides=overrides, **kwargs,
        )

    def load_file(self, path):
        """Audio file -> ``[S]`` mono 16 kHz float tensor."""
        return load_audio_file(path, self.hparams.sample_rate)

    @staticmethod
    def batch_files(wavs):
        """List of 1-D waveforms -> padded ``[B, S]`` and relative lengths ``[B]``."""
        longest = max(w.shape[0] for w in wavs)
        batch = torch.stack([F.pad(w, (0, longest - w.shape[0])) for w in wavs])
        lens = torch.tensor([w.shape[0] / longest for w in wavs])
        return batch, lens


class PrunedSpeakerRecognition(_PrunedInterface):
    """Speaker embeddings and verification with a pruned WavLM + back-end.

    The folder's ``hyperparams.yaml`` defines ``modules.wavlm`` and
    ``modules.backend`` (MHFA or ECAPA on a weighted layer sum) and a decision
    ``threshold`` on the cosine score.

    Example
    -------
    >>> # model = PrunedSpeakerRecognition.from_hparams(source="exported", savedir="exported")
    >>> # score, same = model.verify_files("a.wav", "b.wav")
    """

    MODULES_NEEDED = ["wavlm", "backend"]

    def encode_batch(self, wavs, wav_lens=None, normalize=False):
        """Embeddings ``[B, 1, E]`` of ``wavs [B, S]`` (16 kHz, relative lengths)."""
        wavs = wavs.to(self.device).float()
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wav_lens = wav_lens.to(self.device)
        with torch.no_grad():
            hidden = self.mods.wavlm(wavs, wav_lens)
            emb = self.mods.backend(hidden, wav_lens)
        if emb.dim() == 2:
            emb = emb.unsqueeze(1)
        return F.normalize(emb, dim=-1) if normalize else emb

    def verify_batch(self, wavs1, wavs2, wav1_lens=None, wav2_lens=None, threshold=None):
        """Cosine scores ``[B, 1]`` and decisions ``score > threshold``."""
        emb1 = self.encode_batch(wavs1, wav1_lens, normalize=True)
        emb2 = self.encode_batch(wavs2, wav2_lens, normalize=True)
        score = (emb1 * emb2).sum(-1)
        threshold = self.hparams.threshold if threshold is None else threshold
        return score, score > threshold

    def verify_files(self, path_x, path_y, threshold=None):
        """``(score, decision)`` for two audio files (any rate; first channel)."""
        wav_x, wav_y = self.load_file(path_x), self.load_file(path_y)
        score, decision = self.verify_batch(wav_x[None], wav_y[None], threshold=threshold)
        return float(score[0, 0]), bool(decision[0, 0])

    def encode_file(self, path):
        """Embedding ``[E]`` of one file."""
        return self.encode_batch(self.load_file(path)[None])[0, 0]


class PrunedSpoofDetector(_PrunedInterface):
    """Anti-spoofing (countermeasure) scores with a pruned WavLM + back-end.

    The folder's ``hyperparams.yaml`` defines ``modules.wavlm``,
    ``modules.backend`` and ``modules.classifier`` (logits ``[B, 2]``, class 1 =
    bona fide; the classifier may be an identity when the back-end already
    outputs logits, as AASIST does) and the decision ``threshold`` chosen at
    export. Scores are ``logit_bonafide - logit_spoof``: higher = more likely
    bona fide.

    Example
    -------
    >>> # model = PrunedSpoofDetector.from_hparams(source="exported", savedir="exported")
    >>> # model.score_file("x.flac"), model.classify_file("x.flac")
    """

    MODULES_NEEDED = ["wavlm", "backend", "classifier"]

    def score_batch(self, wavs, wav_lens=None):
        """Bona fide scores ``[B]`` of ``wavs [B, S]`` (16 kHz, relative lengths)."""
        from .backends.spoof_head import bonafide_score

        wavs = wavs.to(self.device).float()
        if wav_lens is None:
            wav_lens = torch.ones(wavs.shape[0])
        wav_lens = wav_lens.to(self.device)
        with torch.no_grad():
            hidden = self.mods.wavlm(wavs, wav_lens)
            logits = self.mods.classifier(self.mods.backend(hidden, wav_lens))
        return bonafide_score(logits)

    def score_file(self, path):
        """Bona fide score of one audio file (any rate; first channel)."""
        return float(self.score_batch(self.load_file(path)[None])[0])

    def classify_file(self, path, threshold=None):
        """``"bonafide"`` or ``"spoof"`` using the exported threshold."""
        threshold = self.hparams.threshold if threshold is None else threshold
        return "bonafide" if self.score_file(path) >= threshold else "spoof"
