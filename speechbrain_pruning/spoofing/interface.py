"""``PrunedSpoofDetector``: countermeasure scores from an exported folder."""

import torch

from ..pretrained import PrunedInterface
from .calibration import LinearCalibration
from .head import bonafide_score

__all__ = ["PrunedSpoofDetector"]


class PrunedSpoofDetector(PrunedInterface):
    """Anti-spoofing (countermeasure) scores with a pruned WavLM + back-end.

    The folder's ``hyperparams.yaml`` defines ``modules.wavlm``,
    ``modules.backend`` and ``modules.classifier`` (logits ``[B, 2]``, class 1 =
    bona fide; the classifier may be an identity when the back-end already
    outputs logits, as AASIST does) and the decision ``threshold`` chosen at
    export. Raw scores are ``logit_bonafide - logit_spoof``: higher = more
    likely bona fide.

    Calibration (optional): when ``hyperparams.yaml`` defines
    ``calibration: {scale: .., offset: ..}`` (a
    :class:`~speechbrain_pruning.spoofing.calibration.LinearCalibration`),
    :meth:`score_batch`, :meth:`score_file` and :meth:`classify_file` use the
    calibrated natural-log LLRs ``scale * raw + offset`` and the exported
    ``threshold`` is then an **LLR threshold** (e.g. the Bayes threshold
    :func:`~speechbrain_pruning.spoofing.metrics.bayes_threshold`,
    ``log(0.5 / 0.95)`` for the ASVspoof5 costs). :meth:`raw_score_batch` and
    :meth:`raw_score_file` always give the raw scores. Without the key, scores
    are raw and ``threshold`` is a raw-score threshold, as before. The
    calibration is applied after :meth:`graph`, so ONNX exports (and
    :meth:`use_onnx`) are unchanged.

    Example
    -------
    >>> # model = PrunedSpoofDetector.from_hparams(source="exported", savedir="exported")
    >>> # model.score_file("x.flac"), model.classify_file("x.flac")
    >>> # model.raw_score_file("x.flac")   # uncalibrated logit difference
    """

    MODULES_NEEDED = ["wavlm", "backend", "classifier"]

    @property
    def calibration(self):
        """The exported :class:`LinearCalibration`, or None (``hparams`` has no
        ``calibration`` key, or it is null)."""
        spec = getattr(self.hparams, "calibration", None)
        return None if spec is None else LinearCalibration.from_dict(spec)

    def raw_score_batch(self, wavs, wav_lens=None):
        """Raw (uncalibrated) bona fide scores ``[B]`` of ``wavs [B, S]``
        (16 kHz, relative lengths ``[B]``): ``logit_bonafide - logit_spoof``."""
        wavs, wav_lens = self.prepare_batch(wavs, wav_lens)
        with torch.no_grad():
            logits = self.run_graph(wavs, wav_lens)
        return bonafide_score(logits)

    def score_batch(self, wavs, wav_lens=None):
        """Bona fide scores ``[B]`` of ``wavs [B, S]`` (16 kHz, relative lengths):
        calibrated LLRs if the folder has a ``calibration``, else the raw scores."""
        scores = self.raw_score_batch(wavs, wav_lens)
        calibration = self.calibration
        return scores if calibration is None else calibration(scores)

    def graph(self, wavs, wav_lens):
        """The computation exported to ONNX: ``wavs [B, S], wav_lens [B] -> logits [B, C]``."""
        hidden = self.mods.wavlm(wavs, wav_lens)
        frame_lens = self.mods.wavlm.frame_relative_lengths(wav_lens, wavs.shape[-1])
        return self.mods.classifier(self.mods.backend(hidden, frame_lens))

    def score_file(self, path):
        """Bona fide score of one audio file (any rate; first channel); an LLR
        when the folder is calibrated (see :meth:`score_batch`)."""
        return float(self.score_batch(self.load_file(path)[None])[0])

    def raw_score_file(self, path):
        """Raw (uncalibrated) bona fide score of one audio file."""
        return float(self.raw_score_batch(self.load_file(path)[None])[0])

    def classify_file(self, path, threshold=None):
        """``"bonafide"`` or ``"spoof"``: ``score_file(path) >= threshold``.

        ``threshold`` defaults to the exported one, which is in the units of
        :meth:`score_file`: an LLR threshold when the folder is calibrated, a
        raw-score threshold otherwise.
        """
        threshold = self.hparams.threshold if threshold is None else threshold
        return "bonafide" if self.score_file(path) >= threshold else "spoof"
