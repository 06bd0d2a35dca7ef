"""``PrunedDiarizer``: speaker diarization from an exported folder, and the pipeline builder."""

from pathlib import Path

import soundfile as sf
import torch

from ..nn import unwrap_module
from ..pretrained import PrunedInterface, load_exported
from .pipeline import SlidingWindowDiarizer
from .rttm import write_rttm

__all__ = ["PrunedDiarizer", "build_diarizer"]


def build_diarizer(wavlm, eend, embedder, params, device="cpu"):
    """A ``diarize(path_or_audio, uri=None, **speaker_counts) -> Annotation`` callable.

    ``eend`` maps WavLM hidden states to powerset log-probabilities; local
    speaker embeddings come from ``embedder`` (an object with
    ``encode_batch(wavs, wav_lens) -> [B, 1, E]``) or, when it is None, from
    the mean of WavLM hidden layer ``params["embedding_layer"]`` over the
    speaker's frames.
    """
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


class PrunedDiarizer(PrunedInterface):
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
        write_rttm(annotation, file)


def _load_embedder(source, device):
    """A speaker-embedding interface from an exported or SpeechBrain folder."""
    source = Path(source)
    run_opts = {"device": str(device)}
    if (source / "wavlm").is_dir():  # exported by this package: its own interface class
        return load_exported(source, "speechbrain_pruning.inference.PrunedSpeakerRecognition",
                             run_opts=run_opts)
    from speechbrain.inference.speaker import EncoderClassifier

    return EncoderClassifier.from_hparams(source=str(source), savedir=str(source),
                                          run_opts=run_opts)
