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

from .nn import check_finite_audio, check_relative_lengths, pcm_to_float, unwrap_module

__all__ = ["PrunedSpeakerRecognition", "PrunedSpoofDetector", "PrunedDiarizer", "build_diarizer",
           "load_audio_file", "SAMPLE_RATE"]

SAMPLE_RATE = 16000


def load_audio_file(path, sample_rate=SAMPLE_RATE):
    """Read ``path`` as a mono float tensor ``[S]`` at ``sample_rate``.

    The first channel of multi-channel files is taken; other rates are
    resampled. Errors name the file, including NaN/Inf samples (float files).
    """
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise RuntimeError(f"Cannot read audio file {path}: {err}") from err
    if data.shape[0] == 0:
        raise ValueError(f"Audio file {path} is empty")
    wav = torch.from_numpy(data[:, 0].copy())
    check_finite_audio(wav, source=path)
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

    def prepare_batch(self, wavs, wav_lens=None):
        """Checked inputs on the model's device: float ``[B, S]`` and lengths ``[B]``.

        Integer PCM is scaled to [-1, 1) exactly as reading the file would
        (int16 / 32768, ...); NaN/Inf samples and relative lengths outside
        (0, 1] are errors naming the batch item.
        """
        wavs = pcm_to_float(wavs)
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        check_finite_audio(wavs)
        wav_lens = torch.ones(wavs.shape[0]) if wav_lens is None \
            else check_relative_lengths(wav_lens, wavs.shape[0])
        return wavs.to(self.device), wav_lens.to(self.device)

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
        """Embeddings ``[B, 1, E]`` of ``wavs [B, S]`` (16 kHz, relative lengths).

        ``wavs`` may be float audio in [-1, 1] or integer PCM (scaled as files are).
        """
        wavs, wav_lens = self.prepare_batch(wavs, wav_lens)
        with torch.no_grad():
            hidden = self.mods.wavlm(wavs, wav_lens)
            emb = self.mods.backend(hidden, self.mods.wavlm.frame_relative_lengths(
                wav_lens, wavs.shape[-1]))
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

        wavs, wav_lens = self.prepare_batch(wavs, wav_lens)
        with torch.no_grad():
            hidden = self.mods.wavlm(wavs, wav_lens)
            frame_lens = self.mods.wavlm.frame_relative_lengths(wav_lens, wavs.shape[-1])
            logits = self.mods.classifier(self.mods.backend(hidden, frame_lens))
        return bonafide_score(logits)

    def score_file(self, path):
        """Bona fide score of one audio file (any rate; first channel)."""
        return float(self.score_batch(self.load_file(path)[None])[0])

    def classify_file(self, path, threshold=None):
        """``"bonafide"`` or ``"spoof"`` using the exported threshold."""
        threshold = self.hparams.threshold if threshold is None else threshold
        return "bonafide" if self.score_file(path) >= threshold else "spoof"


def build_diarizer(wavlm, eend, embedder, params, device="cpu"):
    """A ``diarize(path_or_audio, uri=None, **speaker_counts) -> Annotation`` callable.

    ``eend`` maps WavLM hidden states to powerset log-probabilities; local
    speaker embeddings come from ``embedder`` (an object with
    ``encode_batch(wavs, wav_lens) -> [B, 1, E]``) or, when it is None, from
    the mean of WavLM hidden layer ``params["embedding_layer"]`` over the
    speaker's frames.
    """
    from .diarization.pipeline import SlidingWindowDiarizer

    powerset = unwrap_module(eend).powerset
    layer = params.get("embedding_layer", -1)

    silence_db = params.get("silence_threshold_db", -70.0)

    @torch.no_grad()
    def segment(wavs):
        wavs = wavs.to(device).float()
        log_probs = eend(wavlm(wavs), None)
        active = powerset.to_multilabel(log_probs)
        # digital silence (frames below silence_db dBFS RMS) is never speech
        frames = wavs.unfold(1, 400, 320)[:, : active.shape[1]]
        rms_db = 10 * torch.log10(frames.pow(2).mean(-1) + 1e-12)
        active[:, : rms_db.shape[1]] *= (rms_db > silence_db).unsqueeze(-1)
        return active.cpu()

    @torch.no_grad()
    def embed(wavs, wav_lens):
        wavs, wav_lens = wavs.to(device).float(), wav_lens.to(device)
        if embedder is not None:
            return embedder.encode_batch(wavs, wav_lens).reshape(wavs.shape[0], -1).cpu()
        hidden = wavlm(wavs, wav_lens)[layer]
        frame_lens = wavlm.frame_relative_lengths(wav_lens, wavs.shape[-1])
        frames = torch.round(frame_lens * hidden.shape[1]).clamp(min=1).long()
        mask = (torch.arange(hidden.shape[1], device=device)[None] < frames[:, None]).float()
        return ((hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)).cpu()

    keys = ("window", "step", "batch_size", "onset", "min_duration_on", "min_duration_off",
            "min_embedding_seconds", "clustering_threshold", "embedding_batch_size", "progress")
    pipeline = SlidingWindowDiarizer(segment, embed, **{k: params[k] for k in keys if k in params})

    def diarize(audio, uri=None, num_speakers=None, min_speakers=None, max_speakers=None):
        return pipeline(audio, num_speakers=num_speakers, min_speakers=min_speakers,
                        max_speakers=max_speakers, uri=uri)

    return diarize


class PrunedDiarizer(_PrunedInterface):
    """Speaker diarization with a pruned WavLM EEND model, audio file -> RTTM.

    The folder's ``hyperparams.yaml`` defines ``modules.wavlm`` and
    ``modules.eend`` and the sliding-window settings; ``embedding_source`` may
    point to a speaker-embedding folder (an exported
    ``PrunedSpeakerRecognition`` or a SpeechBrain ``EncoderClassifier``),
    otherwise WavLM hidden states provide the embeddings.

    Example
    -------
    >>> # model = PrunedDiarizer.from_hparams(source="exported", savedir="exported")
    >>> # annotation = model.diarize_file("meeting.wav", num_speakers=4)
    >>> # model.write_rttm(annotation, "meeting.rttm")
    """

    MODULES_NEEDED = ["wavlm", "eend"]

    def _pipeline(self):
        if getattr(self, "_diarize", None) is None:
            source = getattr(self.hparams, "embedding_source", None)
            embedder = _load_embedder(source, self.device) if source else None
            params = {k: getattr(self.hparams, k) for k in vars(self.hparams)}
            self._diarize = build_diarizer(self.mods.wavlm.eval(), self.mods.eend.eval(),
                                           embedder, params, self.device)
        return self._diarize

    def diarize_file(self, path, num_speakers=None, min_speakers=None, max_speakers=None,
                     uri=None):
        """``pyannote.core.Annotation`` of one audio file (uri = file stem by default).

        16 kHz files are streamed block by block (memory does not grow with the
        recording beyond per-frame outputs; channels are averaged); other rates
        are loaded and resampled first (first channel).
        """
        try:
            rate = sf.info(str(path)).samplerate
        except Exception as err:
            raise RuntimeError(f"Cannot read audio file {path}: {err}") from err
        audio = str(path) if rate == self.hparams.sample_rate else self.load_file(path)
        return self._pipeline()(audio, uri=uri or Path(path).stem, num_speakers=num_speakers,
                                min_speakers=min_speakers, max_speakers=max_speakers)

    @staticmethod
    def write_rttm(annotation, file):
        """Write ``annotation`` as RTTM to a path or an open text file."""
        from .diarization.rttm import write_rttm

        write_rttm(annotation, file)


def _load_embedder(source, device):
    """A speaker-embedding interface from an exported or SpeechBrain folder."""
    source = Path(source)
    run_opts = {"device": str(device)}
    if (source / "wavlm").is_dir():
        return PrunedSpeakerRecognition.from_hparams(source=source, run_opts=run_opts)
    from speechbrain.inference.speaker import EncoderClassifier

    return EncoderClassifier.from_hparams(source=str(source), savedir=str(source),
                                          run_opts=run_opts)
