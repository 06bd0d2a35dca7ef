"""``PrunedSpeakerRecognition``: speaker embeddings and verification from an exported folder."""

import torch
import torch.nn.functional as F

from ..pretrained import PrunedInterface

__all__ = ["PrunedSpeakerRecognition"]


class PrunedSpeakerRecognition(PrunedInterface):
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
        """Embeddings ``[B, 1, E]`` of ``wavs [B, S]`` (16 kHz, relative lengths).

        ``wavs`` may be float audio in [-1, 1] or integer PCM (scaled as files are).
        """
        wavs, wav_lens = self.prepare_batch(wavs, wav_lens)
        with torch.no_grad():
            emb = self.run_graph(wavs, wav_lens)
        if emb.dim() == 2:
            emb = emb.unsqueeze(1)
        return F.normalize(emb, dim=-1) if normalize else emb

    def graph(self, wavs, wav_lens):
        """The computation exported to ONNX: ``wavs [B, S], wav_lens [B] -> [B, E]``."""
        hidden = self.mods.wavlm(wavs, wav_lens)
        return self.mods.backend(hidden, self.mods.wavlm.frame_relative_lengths(
            wav_lens, wavs.shape[-1]))

    @property
    def supports_frame_pooling(self):
        """True when the back-end pools frame-local features (MHFA), see :meth:`encode_frames`."""
        return hasattr(self.mods.backend, "frame_features")

    def encode_frames(self, wavs, wav_lens=None):
        """Frame-level features ``[B, T, Z]`` (20 ms grid) that :meth:`pool_frames` pools.

        Only for back-ends whose computation before pooling is frame-local
        (MHFA); ``pool_frames(encode_frames(w), valid frames)`` equals
        ``encode_batch(w)``. The diarization pipeline computes these once per
        recording and embeds every (window, local speaker) from them.
        """
        if not self.supports_frame_pooling:
            raise TypeError(f"{type(self.mods.backend).__name__} back-end cannot pool frames")
        wavs, wav_lens = self.prepare_batch(wavs, wav_lens)
        dtype = next(self.mods.wavlm.parameters()).dtype  # the modules may run in bf16
        with torch.no_grad():
            return self.mods.backend.frame_features(self.mods.wavlm(wavs.to(dtype), wav_lens))

    def pool_frames(self, features, weights=None, normalize=False):
        """Embeddings ``[N, E]`` of ``features [N, T, Z]`` over frames of weight > 0 (``[N, T]``)."""
        dtype = next(self.mods.backend.parameters()).dtype
        with torch.no_grad():
            emb = self.mods.backend.pool_frames(features.to(self.device, dtype), None
                                                if weights is None else weights.to(self.device))
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
