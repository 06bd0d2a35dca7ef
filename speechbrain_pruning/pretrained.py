"""The SpeechBrain ``Pretrained`` base of every exported model's interface.

An exported folder (:func:`speechbrain_pruning.pruning.export.export_model`)
holds a ``hyperparams.yaml`` that only references files inside the folder and
names its interface class (``interface_class``); :func:`load_exported` loads
any such folder with the right class, so a task can use another task's model
(e.g. the diarizer's speaker embedder) without importing its package.
"""

import importlib
from pathlib import Path

import torch
import torch.nn.functional as F
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import FetchConfig, LocalStrategy

from .audio import load_audio_file
from .nn import check_finite_audio, check_relative_lengths, pcm_to_float

__all__ = ["PrunedInterface", "load_exported", "interface_class_of", "fetch_exported", "MANIFEST"]

#: The list of an exported folder's files, written by ``export_model``.
MANIFEST = "manifest.json"


def fetch_exported(source, savedir, allow_network=False):
    """Fetch every file of an exported folder into ``savedir``; returns ``savedir``.

    ``source`` is a local folder or a model hub repository id; the files are
    those of its ``manifest.json`` (nested folders such as ``wavlm/`` or a
    diarizer's ``embedder/`` included), fetched one by one with SpeechBrain's
    :func:`speechbrain.utils.fetching.fetch` (local files are copied, so
    ``savedir`` stands alone). Network access only with ``allow_network``.
    A local folder exported before manifests existed is copied whole.
    """
    import json
    import shutil

    from speechbrain.utils.fetching import fetch

    savedir = Path(savedir).resolve()
    config = FetchConfig(allow_network=allow_network)
    local = Path(source)
    try:
        manifest = fetch(MANIFEST, source=str(source), savedir=savedir,
                         local_strategy=LocalStrategy.COPY, fetch_config=config)
    except Exception as err:
        if local.is_dir() and (local / "hyperparams.yaml").is_file():
            shutil.copytree(local, savedir, dirs_exist_ok=True)
            return savedir
        raise FileNotFoundError(
            f"Cannot fetch {MANIFEST} of exported model {source} into {savedir}"
            f"{'' if allow_network else ' (network access not allowed: allow_network=True)'}: "
            f"{err}") from err
    for name in json.loads(Path(manifest).read_text())["files"]:
        (savedir / name).parent.mkdir(parents=True, exist_ok=True)
        fetch(name, source=str(source), savedir=savedir, save_filename=name,
              local_strategy=LocalStrategy.COPY, fetch_config=config)
    return savedir


class PrunedInterface(Pretrained):
    """Base of the interfaces of exported folders: offline ``from_hparams``, checked inputs.

    Subclasses: :class:`~speechbrain_pruning.speaker.PrunedSpeakerRecognition`,
    :class:`~speechbrain_pruning.spoofing.PrunedSpoofDetector`,
    :class:`~speechbrain_pruning.diarization.PrunedDiarizer`.
    """

    HPARAMS_NEEDED = ["sample_rate"]
    #: whether :meth:`graph` outputs one row per frame (``[B, T, C]``) rather than per utterance
    FRAME_LEVEL_OUTPUT = False

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", savedir=None,
                     overrides=None, allow_network=False, **kwargs):
        """Load an exported folder (a local folder or a model hub repository id).

        A local ``source`` with no ``savedir`` (or ``savedir == source``) loads
        in place. Otherwise every file of the folder (its ``manifest.json``)
        is fetched into ``savedir`` with SpeechBrain's fetching and loaded
        from there; a hub id needs ``allow_network=True`` (never otherwise).

        Example
        -------
        >>> # PrunedSpeakerRecognition.from_hparams("exported")                # in place
        >>> # PrunedSpeakerRecognition.from_hparams("exported", savedir="copy")  # fetched copy
        >>> # PrunedSpeakerRecognition.from_hparams("user/sv-s80", savedir="models/sv-s80",
        >>> #                                        allow_network=True)       # model hub
        >>> # PrunedSpeakerRecognition.from_hparams("exported",
        >>> #     run_opts={"backend": "onnx"})   # or "onnx-int8": model(.int8).onnx

        ``run_opts["backend"]``: ``"torch"`` (default), ``"onnx"`` or ``"onnx-int8"``
        (:meth:`use_onnx` right after loading; ``run_opts["onnx_threads"]`` sets its
        threads).
        """
        run_opts = dict(kwargs.pop("run_opts", None) or {})
        backend = str(run_opts.pop("backend", "torch") or "torch")
        threads = run_opts.pop("onnx_threads", None)
        if backend not in ("torch", "onnx", "onnx-int8"):
            raise ValueError(f"run_opts backend must be torch, onnx or onnx-int8, got {backend!r}")
        if run_opts:
            kwargs["run_opts"] = run_opts
        model = cls._from_hparams(source, hparams_file, savedir, overrides, allow_network,
                                  **kwargs)
        if backend != "torch":
            model.use_onnx(threads=threads, int8=backend == "onnx-int8")
        return model

    @classmethod
    def _from_hparams(cls, source, hparams_file, savedir, overrides, allow_network, **kwargs):
        """:meth:`from_hparams` without the backend choice."""
        local = Path(source)
        in_place = local.is_dir() and (savedir is None
                                       or Path(savedir).resolve() == local.resolve())
        if not in_place:
            if savedir is None:
                raise ValueError(f"{source}: not a local folder; give savedir= to fetch it into")
            source = fetch_exported(source, savedir, allow_network)
        source = Path(source).resolve()
        if not (source / hparams_file).is_file():
            raise FileNotFoundError(f"{source}: no {hparams_file}; not an exported model folder")
        overrides = dict(overrides or {})
        overrides.setdefault("model_folder", str(source))
        kwargs.setdefault("fetch_config", FetchConfig(allow_network=False))
        kwargs.setdefault("local_strategy", LocalStrategy.NO_LINK)
        return super().from_hparams(
            source=str(source), hparams_file=hparams_file, savedir=str(source),
            overrides=overrides, **kwargs,
        )

    def graph(self, wavs, wav_lens):
        """The model's computation ``(wavs [B, S], wav_lens [B]) -> output`` (ONNX-exportable)."""
        raise NotImplementedError(f"{type(self).__name__} has no single-graph computation")

    def use_onnx(self, path=None, threads=None, int8=False):
        """Run :meth:`graph` with ONNX Runtime from now on (``path``: default
        ``<folder>/model.onnx``, or ``<folder>/model.int8.onnx`` with ``int8=True``,
        written by :func:`speechbrain_pruning.onnx_export.export_onnx`); ``path=False``
        goes back to PyTorch. The public methods (``encode_batch``, ``score_batch``...)
        are unchanged.

        Example
        -------
        >>> # model = PrunedSpeakerRecognition.from_hparams("exported")
        >>> # model.use_onnx()          # exported/model.onnx
        >>> # model.encode_batch(wavs)  # now computed by onnxruntime
        """
        if path is False:
            self._onnx = None
            return self
        import onnxruntime as ort

        default = "model.int8.onnx" if int8 else "model.onnx"
        path = Path(path) if path else Path(self.hparams.model_folder) / default
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no ONNX file; write it with "
                                    "speechbrain_pruning.onnx_export.export_onnx(folder)")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self._onnx = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self

    def run_graph(self, wavs, wav_lens):
        """:meth:`graph` in PyTorch, or in ONNX Runtime after :meth:`use_onnx`."""
        session = getattr(self, "_onnx", None)
        if session is None:
            return self.graph(wavs, wav_lens)
        out = session.run(None, {"wavs": wavs.detach().cpu().float().numpy(),
                                 "wav_lens": wav_lens.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out).to(self.device)

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


def interface_class_of(folder, default=None):
    """The dotted class path an exported folder names (``interface_class``), or ``default``.

    Folders exported before the key existed name their class only in the
    header comment of ``hyperparams.yaml``; that is read too.
    """
    path = Path(folder) / "hyperparams.yaml"
    if not path.is_file():
        return default
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("interface_class:"):
            return line.split(":", 1)[1].strip()
        if line.startswith("# Inference hyperparameters for "):
            name = line.rsplit(".", 2)[-2] if line.endswith(".") else line.rsplit(".", 1)[-1]
            return f"speechbrain_pruning.inference.{name}"
    return default


def load_exported(folder, default_class=None, **kwargs):
    """Load an exported folder with the interface class it names.

    Example
    -------
    >>> # model = load_exported("exported_sv")  # -> PrunedSpeakerRecognition
    """
    dotted = interface_class_of(folder, default_class)
    if dotted is None:
        raise ValueError(f"{folder}: not an exported model folder (no hyperparams.yaml)")
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name).from_hparams(source=folder, **kwargs)
