"""``PrunedSpoofDetector``: countermeasure scores from an exported folder."""

import torch

from ..pretrained import PrunedInterface
from .head import bonafide_score

__all__ = ["PrunedSpoofDetector"]


class PrunedSpoofDetector(PrunedInterface):
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
        wavs, wav_lens = self.prepare_batch(wavs, wav_lens)
        with torch.no_grad():
            logits = self.run_graph(wavs, wav_lens)
        return bonafide_score(logits)

    def graph(self, wavs, wav_lens):
        """The computation exported to ONNX: ``wavs [B, S], wav_lens [B] -> logits [B, C]``."""
        hidden = self.mods.wavlm(wavs, wav_lens)
        frame_lens = self.mods.wavlm.frame_relative_lengths(wav_lens, wavs.shape[-1])
        return self.mods.classifier(self.mods.backend(hidden, frame_lens))

    def score_file(self, path):
        """Bona fide score of one audio file (any rate; first channel)."""
        return float(self.score_batch(self.load_file(path)[None])[0])

    def classify_file(self, path, threshold=None):
        """``"bonafide"`` or ``"spoof"`` using the exported threshold."""
        threshold = self.hparams.threshold if threshold is None else threshold
        return "bonafide" if self.score_file(path) >= threshold else "spoof"
