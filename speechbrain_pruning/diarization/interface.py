"""``PrunedDiarizer``: speaker diarization from an exported folder, and the pipeline builder.

An exported diarizer folder is self-contained::

    hyperparams.yaml     modules, sliding-window / clustering settings
    wavlm/  eend.ckpt    the pruned segmentation model
    embedder/            the speaker-embedding model (an exported
                         PrunedSpeakerRecognition or a SpeechBrain EncoderClassifier)
    plda.safetensors     VBx's PLDA, trained on the embedder's embeddings of the
                         training split
"""

import copy
import logging
from pathlib import Path

import torch

from ..nn import unwrap_module
from ..pretrained import PrunedInterface
from .embedders import HiddenLayerEmbedder, load_embedder, wrap_embedder
from .pipeline import SlidingWindowDiarizer

__all__ = ["PrunedDiarizer", "build_diarizer", "PIPELINE_PARAMS"]

logger = logging.getLogger(__name__)

# inference settings a user may change (yaml ``inference:`` block, set_params, CLI flags)
PIPELINE_PARAMS = ("window", "step", "batch_size", "onset", "median_filter", "min_duration_on",
                   "min_duration_off", "min_embedding_seconds", "clustering",
                   "clustering_threshold", "vbx_fa", "vbx_fb", "min_cluster_size",
                   "embedding_batch_size", "assignment_bonus", "min_activation", "low_memory",
                   "progress")
OTHER_PARAMS = ("silence_threshold_db", "embedding_layer", "embedding_source", "embedder",
                "plda", "inference_precision")
PRECISIONS = ("auto", "fp32", "bf16", "int8")


def resolve_precision(precision, device="cpu"):
    """The numeric precision of inference: ``fp32``, ``bf16`` or ``int8``.

    ``auto`` is ``bf16`` on a CPU with native bfloat16 arithmetic (AMX or
    AVX512-BF16: oneDNN runs bf16 matrix products and convolutions about twice
    as fast as fp32 there) and ``fp32`` elsewhere (GPUs included), since
    emulated bf16 is slower than fp32. The effect on the output is measured by
    ``benchmarks/diarization_speed.py`` and the recipe tests.

    Example
    -------
    >>> resolve_precision("fp32"), resolve_precision("auto", "cuda:0")
    ('fp32', 'fp32')
    """
    precision = "auto" if precision in (None, "") else str(precision)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    native_bf16 = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    return "bf16" if str(device).startswith("cpu") and native_bf16 else "fp32"


def cast_for_inference(module, precision):
    """``module`` ready for ``precision``: a bf16 copy, an int8 copy, or itself (fp32)."""
    if precision == "bf16":
        return copy.deepcopy(module).to(torch.bfloat16)
    if precision == "int8":
        return quantize_int8(module)
    return module


def quantize_int8(module):
    """Dynamic int8 quantisation of the ``nn.Linear`` layers (CPU inference).

    Weights are int8 per tensor, activations quantised on the fly
    (``torch.ao.quantization.quantize_dynamic``); convolutions and norms stay
    float. Linear modules used for their weight only (the EEND's ``layer_weights``)
    are left alone. Its accuracy effect is measured by ``benchmarks/diarization_speed.py``.
    """
    import warnings

    from torch.ao.quantization import default_dynamic_qconfig

    spec = {name: default_dynamic_qconfig for name, m in module.named_modules()
            if type(m) is torch.nn.Linear and not name.endswith("layer_weights")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(module, spec, dtype=torch.qint8)


def build_diarizer(wavlm, eend, embedder, params, device="cpu", plda=None, onnx_session=None):
    """The :class:`SlidingWindowDiarizer` of a WavLM EEND model and a speaker embedder.

    Arguments
    ---------
    wavlm, eend : torch.nn.Module
        The segmentation model: ``eend(wavlm(wavs), None)`` -> powerset
        log-probabilities ``[B, T, C]``.
    embedder : object, optional
        A loaded speaker model (see :func:`~.embedders.wrap_embedder`); None
        averages WavLM hidden layer ``params["embedding_layer"]`` (not a
        speaker model: a fallback).
    params : dict
        Pipeline settings (:data:`PIPELINE_PARAMS`), ``silence_threshold_db``,
        ``inference_precision`` (:func:`resolve_precision`: ``auto`` / ``fp32`` / ``bf16``
        for both models / ``int8`` dynamic quantisation of the segmentation model).
    plda : PLDA, optional
        Needed by ``clustering: vbx`` (the default when a PLDA is given).
    onnx_session : onnxruntime.InferenceSession, optional
        Runs the segmentation model instead of PyTorch (its ``inference_precision``
        is then the file's: fp32 or int8).

    Returns
    -------
    SlidingWindowDiarizer
        ``diarizer(audio, num_speakers=..., uri=...) -> DiarizeOutput``.
    """
    wavlm, eend = unwrap_module(wavlm).eval(), unwrap_module(eend).eval()
    powerset = eend.powerset
    silence_db = params.get("silence_threshold_db", -70.0)
    precision = resolve_precision(params.get("inference_precision"), device)
    if precision == "int8" and not str(device).startswith("cpu"):
        raise ValueError("precision int8 (dynamic quantisation) runs on CPU only")
    seg_wavlm, seg_eend = cast_for_inference(wavlm, precision), cast_for_inference(eend, precision)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32

    @torch.inference_mode()
    def segment(wavs):
        wavs = wavs.to(device).float()
        if onnx_session is not None:
            lens = torch.ones(wavs.shape[0], dtype=torch.float32)
            log_probs = torch.from_numpy(onnx_session.run(
                None, {"wavs": wavs.cpu().numpy(), "wav_lens": lens.numpy()})[0]).to(device)
        else:
            log_probs = seg_eend(seg_wavlm(wavs.to(dtype)), None).float()
        active = powerset.to_multilabel(log_probs)
        # digital silence (frames below silence_db dBFS RMS) is never speech
        frames = wavs.unfold(1, 400, 320)[:, : active.shape[1]]
        rms_db = 10 * torch.log10(frames.pow(2).mean(-1) + 1e-12)
        active[:, : rms_db.shape[1]] *= (rms_db > silence_db).unsqueeze(-1)
        return active.cpu()

    embedder = wrap_embedder(embedder, device, dtype if precision == "bf16" else None)
    if embedder is None:
        embedder = HiddenLayerEmbedder(seg_wavlm, params.get("embedding_layer", 6), device)
    kwargs = {k: params[k] for k in PIPELINE_PARAMS if k in params and params[k] is not None}
    kwargs.setdefault("clustering", "vbx" if plda is not None else "ahc")
    return SlidingWindowDiarizer(segment, embedder, plda=plda, **kwargs)


class PrunedDiarizer(PrunedInterface):
    """Speaker diarization with a pruned WavLM EEND model: audio -> who spoke when.

    The folder's ``hyperparams.yaml`` defines ``modules.wavlm`` and
    ``modules.eend``, the sliding-window and clustering settings, the
    speaker-embedding folder ``embedder`` and the PLDA file ``plda`` (both
    inside the folder, paths relative to it).

    Example
    -------
    >>> # model = PrunedDiarizer.from_hparams(source="exported", savedir="exported")
    >>> # output = model("meeting.wav", num_speakers=4)   # or {"waveform": w, "sample_rate": sr}
    >>> # output.speaker_diarization, output.exclusive_speaker_diarization, output.speaker_embeddings
    >>> # output.write_rttm("meeting.rttm"); output.write_json("meeting.json")
    """

    MODULES_NEEDED = ["wavlm", "eend"]
    FRAME_LEVEL_OUTPUT = True

    def graph(self, wavs, wav_lens):
        """The segmentation model exported to ONNX: ``wavs [B, S], wav_lens [B]`` ->
        powerset log-probabilities ``[B, T, C]`` (see ``onnx_export``)."""
        hidden = self.mods.wavlm(wavs, wav_lens)
        frame_lens = self.mods.wavlm.frame_relative_lengths(wav_lens, wavs.shape[-1])
        return self.mods.eend(hidden, frame_lens)

    def use_onnx(self, path=None, threads=None, int8=False):
        """Segment with ONNX Runtime (``model.onnx`` / ``model.int8.onnx``); ``path=False``
        goes back to PyTorch. Speaker embeddings and clustering are unchanged."""
        super().use_onnx(path, threads, int8)
        self._diarizer = None
        return self

    def _folder_path(self, value):
        if value in (None, ""):
            return None
        path = Path(value)
        if not path.is_absolute():
            path = Path(self.hparams.model_folder) / path
        return path

    def _params(self):
        if getattr(self, "_overrides", None) is None:
            self._overrides = {}
        params = {k: getattr(self.hparams, k) for k in PIPELINE_PARAMS + OTHER_PARAMS
                  if hasattr(self.hparams, k)}
        params.update(self._overrides)
        return params

    def set_params(self, **overrides):
        """Change inference settings (``window``, ``step``, ``clustering``...) by name.

        Example
        -------
        >>> # model.set_params(step=0.8, clustering="ahc", clustering_threshold=0.6)
        """
        extra = {"silence_threshold_db", "inference_precision"}
        unknown = sorted(set(overrides) - set(PIPELINE_PARAMS) - extra)
        if unknown:
            raise ValueError(f"unknown diarization parameter(s) {unknown}; "
                             f"known: {sorted(set(PIPELINE_PARAMS) | extra)}")
        self._params()
        self._overrides.update(overrides)
        self._diarizer = None

    def _pipeline(self):
        if getattr(self, "_diarizer", None) is None:
            params = self._params()
            folder = self._folder_path(params.get("embedder") or params.get("embedding_source"))
            embedder = load_embedder(folder, self.device) if folder else None
            if embedder is None:
                logger.warning("%s: no speaker-embedding model; using WavLM layer means",
                               self.hparams.model_folder)
            plda_path = self._folder_path(params.get("plda"))
            plda = None
            if plda_path is not None:
                from .plda import PLDA

                plda = PLDA.load(plda_path)
            self._diarizer = build_diarizer(self.mods.wavlm, self.mods.eend, embedder, params,
                                            self.device, plda=plda,
                                            onnx_session=getattr(self, "_onnx", None))
        return self._diarizer

    def __call__(self, file, uri=None, num_speakers=None, min_speakers=None, max_speakers=None,
                 progress=None):
        """:class:`~.output.DiarizeOutput` of a path or ``{"waveform", "sample_rate"}``.

        Files at any sample rate are streamed block by block; ``progress``:
        True / False / a pyannote-style hook (default: the folder's setting).
        """
        pipeline = self._pipeline()
        saved = pipeline.progress
        if progress is not None:
            pipeline.progress = progress
        try:
            if uri is None and isinstance(file, dict):
                uri = file.get("uri")
            return pipeline(file, uri=uri, num_speakers=num_speakers, min_speakers=min_speakers,
                            max_speakers=max_speakers)
        finally:
            pipeline.progress = saved

    def diarize_file(self, path, num_speakers=None, min_speakers=None, max_speakers=None,
                     uri=None):
        """``pyannote.core.Annotation`` of one audio file (uri = file stem by default)."""
        return self(path, uri=uri or Path(path).stem, num_speakers=num_speakers,
                    min_speakers=min_speakers, max_speakers=max_speakers).speaker_diarization

    @staticmethod
    def write_rttm(annotation, file):
        """Write an ``Annotation`` (or a ``DiarizeOutput``) as RTTM to a path or text file."""
        from .output import DiarizeOutput
        from .rttm import write_rttm

        if isinstance(annotation, DiarizeOutput):
            annotation = annotation.speaker_diarization
        write_rttm(annotation, file)
