"""Speaker embedders of the diarization pipeline, and PLDA training data.

The pipeline (:mod:`~speechbrain_pruning.diarization.pipeline`) takes two kinds
of embedder:

* *frame pooling* (``frame_features`` + ``pool_frames``):
  :class:`FramePoolingEmbedder` wraps an exported
  :class:`~speechbrain_pruning.speaker.PrunedSpeakerRecognition` whose
  back-end is MHFA (the VoxCeleb recipe's model: the same pruning serving two
  tasks); :class:`HiddenLayerEmbedder` averages one hidden layer of the
  segmentation WavLM (a fallback, not a speaker model);
* *crops*: :class:`CropEmbedder` wraps anything with ``encode_batch(wavs,
  wav_lens) -> [B, 1, E]`` (a SpeechBrain ``EncoderClassifier`` such as ECAPA,
  or a ``PrunedSpeakerRecognition`` with an ECAPA back-end, or pyannote's
  WeSpeaker ResNet34 of DiariZen, :mod:`.wespeaker`).

:func:`load_embedder` opens a folder of either kind or a WeSpeaker
``pytorch_model.bin``; :func:`reference_embeddings`
embeds the single-speaker stretches of reference RTTMs (the training split),
the data :func:`train_plda_on_recordings` fits VBx's PLDA on.
"""

import logging
from pathlib import Path

import numpy as np
import torch
from speechbrain.dataio.dataio import load_data_csv
from tqdm.auto import tqdm

from ..audio import AudioSource
from ..pretrained import interface_class_of, load_exported
from .pipeline import SlidingWindowDiarizer, is_frame_embedder
from .rttm import read_rttm

__all__ = ["FramePoolingEmbedder", "HiddenLayerEmbedder", "CropEmbedder", "load_embedder",
           "wrap_embedder", "reference_embeddings", "train_plda_on_recordings"]

logger = logging.getLogger(__name__)


class FramePoolingEmbedder:
    """Frame-pooling view of a speaker model with ``encode_frames`` / ``pool_frames``.

    ``dtype`` (e.g. ``torch.bfloat16``) casts the model's modules for inference.
    """

    def __init__(self, model, dtype=None):
        self.model = model
        if dtype is not None:
            model.mods.to(dtype)

    def frame_features(self, wavs):
        """``[B, T, Z]`` frame features of ``wavs [B, S]``."""
        return self.model.encode_frames(wavs).float().cpu()

    def pool_frames(self, features, weights):
        """``[N, E]`` embeddings pooled over frames of weight > 0."""
        return self.model.pool_frames(features, weights).float().cpu()


class HiddenLayerEmbedder:
    """Mean of one WavLM hidden layer over a speaker's frames (no speaker model).

    Example
    -------
    >>> class Fake(torch.nn.Module):
    ...     def forward(self, wavs, wav_lens=None):  # [L+1, B, T, D]
    ...         return wavs.unfold(1, 400, 320).mean(-1, keepdim=True)[None].repeat(2, 1, 1, 3)
    >>> emb = HiddenLayerEmbedder(Fake(), layer=1)
    >>> feats = emb.frame_features(torch.ones(1, 16000))
    >>> feats.shape, emb.pool_frames(feats, torch.ones(1, 49)).tolist()
    (torch.Size([1, 49, 3]), [[1.0, 1.0, 1.0]])
    """

    def __init__(self, wavlm, layer=6, device="cpu"):
        self.wavlm, self.layer, self.device = wavlm, int(layer), device

    @torch.inference_mode()
    def frame_features(self, wavs):
        dtype = next(self.wavlm.parameters(), torch.zeros(())).dtype  # bf16 when cast
        return self.wavlm(wavs.to(self.device, dtype))[self.layer].float().cpu()

    @staticmethod
    def pool_frames(features, weights):
        weights = weights.to(features.dtype).unsqueeze(-1)
        return (features * weights).sum(1) / weights.sum(1).clamp_min(1e-8)


class CropEmbedder:
    """``embed(wavs, wav_lens) -> [B, E]`` from ``encode_batch(wavs, wav_lens) -> [B, 1, E]``."""

    def __init__(self, model, device="cpu"):
        self.model, self.device = model, device

    @torch.inference_mode()
    def __call__(self, wavs, wav_lens):
        out = self.model.encode_batch(wavs.to(self.device).float(), wav_lens.to(self.device))
        return out.reshape(wavs.shape[0], -1).float().cpu()


def wrap_embedder(model, device="cpu", dtype=None):
    """The pipeline view of a loaded speaker model (frame pooling when it can).

    ``dtype``: run a frame-pooling model in this dtype (e.g. bf16).
    """
    if isinstance(model, FramePoolingEmbedder):
        return FramePoolingEmbedder(model.model, dtype)
    if model is None or is_frame_embedder(model) or callable(model) and not hasattr(
            model, "encode_batch"):
        return model
    if getattr(model, "supports_frame_pooling", False):
        return FramePoolingEmbedder(model, dtype)
    return CropEmbedder(model, device)


def load_embedder(folder, device="cpu", savedir=None):
    """A speaker model from an exported folder, a SpeechBrain folder or a WeSpeaker file.

    Folders naming an ``interface_class`` (this package's exports) load with
    it; other folders with a ``hyperparams.yaml`` load as a SpeechBrain
    ``EncoderClassifier`` (e.g. a local copy of
    ``speechbrain/spkrec-ecapa-voxceleb``). A pyannote WeSpeaker ResNet34
    checkpoint (the ``pytorch_model.bin`` of
    ``pyannote/wespeaker-voxceleb-resnet34-LM``, DiariZen's embedder), given
    as the file or as a folder holding it without ``hyperparams.yaml`` (a
    Hugging Face snapshot), loads as a
    :class:`~speechbrain_pruning.diarization.wespeaker.WeSpeakerEmbedder`
    without pyannote.audio. Returns the pipeline view (:func:`wrap_embedder`).
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such speaker model file or folder")
    if folder.is_dir() and not (folder / "hyperparams.yaml").is_file() and (
            folder / "pytorch_model.bin").is_file():
        folder = folder / "pytorch_model.bin"
    if folder.is_file():
        from .wespeaker import WeSpeakerEmbedder

        try:
            embedder = WeSpeakerEmbedder.from_checkpoint(folder, device)
        except ValueError as err:
            raise ValueError(f"{err} (a speaker model file must be a pyannote WeSpeaker "
                             "ResNet34 checkpoint, pytorch_model.bin)") from None
        return wrap_embedder(embedder, device)
    if not (folder / "hyperparams.yaml").is_file():
        raise FileNotFoundError(f"{folder}: no hyperparams.yaml (nor a pyannote WeSpeaker "
                                "pytorch_model.bin); not a speaker model folder")
    run_opts = {"device": str(device)}
    if interface_class_of(folder) is not None or (folder / "wavlm").is_dir():
        model = load_exported(folder, "speechbrain_pruning.inference.PrunedSpeakerRecognition",
                              run_opts=run_opts)
    else:
        from speechbrain.inference.speaker import EncoderClassifier

        model = EncoderClassifier.from_hparams(source=str(folder),
                                               savedir=str(savedir or folder), run_opts=run_opts)
    return wrap_embedder(model, device)


def reference_embeddings(embedder, recordings_csv, window=8.0, min_seconds=1.0,
                         max_per_recording=200, sample_rate=16000, progress=True):
    """Embeddings of the single-speaker stretches of reference RTTMs.

    Every stretch where exactly one reference speaker talks (within the UEM
    if any) is cut into pieces of at most ``window`` seconds; pieces shorter
    than ``min_seconds`` are skipped; at most ``max_per_recording`` pieces per
    recording, spread evenly. Labels are ``"<uri>/<speaker>"``.

    Returns
    -------
    embeddings : numpy.ndarray
        ``[N, E]`` float32.
    labels : list of str
        ``[N]`` speaker labels.
    """
    helper = SlidingWindowDiarizer(None, embedder, window=window, sample_rate=sample_rate,
                                   clustering="ahc", progress=False)
    frame_route = is_frame_embedder(embedder)
    embeddings, labels = [], []
    rows = load_data_csv(str(recordings_csv))
    for uri, row in tqdm(rows.items(), desc="PLDA embeddings", disable=not progress):
        reference = read_rttm(row["rttm"]).get(uri)
        if reference is None:
            continue
        pieces = _single_speaker_pieces(reference, window, min_seconds)
        if len(pieces) > max_per_recording:
            keep = np.linspace(0, len(pieces) - 1, max_per_recording).round().astype(int)
            pieces = [pieces[i] for i in keep]
        if not pieces:
            continue
        with AudioSource(row["wav"], sample_rate) as source:
            F = helper.num_frames(source.num_samples)
            if frame_route:
                features = helper.frame_features(source, F)
                requests = []
                for start, end, _ in pieces:
                    a = max(0, int(round(start / helper.frame_shift)))
                    b = min(F, int(round(end / helper.frame_shift)))
                    requests.append((a, np.ones(max(b - a, 1), dtype=np.float32)))
                for i in range(0, len(requests), 64):
                    embeddings.append(helper.pool(features, requests[i:i + 64]))
            else:
                crops = [source.read(int(s * sample_rate), int(e * sample_rate))
                         for s, e, _ in pieces]
                for i in range(0, len(crops), 16):
                    embeddings.append(helper.embed_crops(crops[i:i + 16]))
        labels.extend(f"{uri}/{speaker}" for _, _, speaker in pieces)
    if not embeddings:
        raise ValueError(f"{recordings_csv}: no single-speaker stretch of >= {min_seconds} s "
                         "in the reference RTTMs")
    return np.concatenate(embeddings).astype(np.float32), labels


def _single_speaker_pieces(reference, window, min_seconds):
    """``[(start, end, speaker)]`` pieces where exactly one speaker talks."""
    overlap = reference.get_overlap()
    pieces = []
    for label in reference.labels():
        solo = reference.label_timeline(label).support().extrude(overlap)
        for segment in solo:
            start = segment.start
            while segment.end - start >= min_seconds:
                end = min(segment.end, start + window)
                pieces.append((start, end, label))
                start = end
    return sorted(pieces)


def train_plda_on_recordings(embedder, recordings_csv, lda_dim=128, **kwargs):
    """A VBx PLDA fitted on :func:`reference_embeddings` of a manifest."""
    from .plda import PLDA

    embeddings, labels = reference_embeddings(embedder, recordings_csv, **kwargs)
    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    logger.info("PLDA: %d embeddings of %d speakers from %s", len(labels), len(names),
                recordings_csv)
    return PLDA.train(embeddings, np.array([index[n] for n in labels]), lda_dim=lda_dim)

