"""What every recipe's ``train.py`` shares: the task Brain's common behaviour, the
audio crop pipeline, the ``main`` skeleton and the export-and-rescore step.

A recipe keeps what is its own: the Brain's :meth:`TaskBrain.predict` and
``task_loss``, its data pipeline and its evaluation; :func:`run_recipe` does
the rest, as one process or under ``torchrun``::

    class SpeakerBrain(TaskBrain):
        def predict(self, wavs, wav_lens, stage): ...
        def task_loss(self, predictions, batch, stage): ...

    def main(argv=None):
        return run_recipe(argv, SpeakerBrain, prepare_voxceleb, prepare_kwargs,
                          dataio_prep, evaluate_and_export)
"""

import io
import json
import re
import sys
from pathlib import Path

import ruamel.yaml

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from ..audio import SAMPLE_RATE, read_segment
from .brain import PruningBrain, flatten_fragments
from .export import export_model

__all__ = ["TaskBrain", "crop_pipeline", "run_recipe", "export_and_rescore", "load_hparams"]


_EXTENDS = re.compile(r"\A((?:[ \t]*(?:#[^\n]*)?\n)*)extends:[ \t]*(\S+)[ \t]*(?:#[^\n]*)?\n")


def _merge_overrides(first, second):
    """HyperPyYAML override text: ``second`` (text, dict or None) deep-merged over ``first``."""
    yaml = ruamel.yaml.YAML()  # round trip: keeps !ref / !new tags for HyperPyYAML

    def load(value):
        if value is None or value == "":
            return {}
        return yaml.load(value) if isinstance(value, str) else dict(value)

    def merge(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    merged = merge(load(first) or {}, load(second) or {})
    out = io.StringIO()
    yaml.dump(merged, out)
    return out.getvalue()


def load_hparams(path, overrides=None):
    """Load a recipe's HyperPyYAML file; ``extends:`` bases and fragments resolved.

    A file whose first key is ``extends: <path relative to it>`` is that base
    file with the rest of this file as overrides (``!ref`` tags allowed), so a
    corpus or model-size variant states only what differs (DIHARD3 and CHiME-6
    extend AMI). Command-line ``overrides`` apply last. The entries of included
    ``hparams/`` fragments become top-level names (:func:`flatten_fragments`).

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "base.yaml").write_text("a: 1\\nb: !ref <a>\\n")
    ...     _ = (Path(tmp) / "x.yaml").write_text("# variant\\nextends: base.yaml\\na: 2\\n")
    ...     load_hparams(Path(tmp) / "x.yaml", "b: 5")
    {'a': 2, 'b': 5}
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    match = _EXTENDS.match(text)
    if match:
        base = (path.parent / match.group(2)).resolve()
        if not base.is_file():
            raise FileNotFoundError(f"{path}: extends {match.group(2)}, not found at {base}")
        return load_hparams(base, _merge_overrides(text[match.end():], overrides))
    with open(path, encoding="utf-8") as fin:
        return flatten_fragments(load_hyperpyyaml(fin, overrides))


class TaskBrain(PruningBrain):
    """A :class:`PruningBrain` whose batches carry ``sig`` (padded audio).

    Training batches go through ``hparams.wav_augment`` when the yaml defines
    one. After each validation the train and valid statistics are logged and
    the last two checkpoints are kept (not the best: the sparsity target is only
    reached at the end of the warm-up). Subclasses implement :meth:`predict`,
    ``task_loss`` and, for more validation figures, :meth:`valid_stats`.
    """

    def predict(self, wavs, wav_lens, stage=sb.Stage.TEST):
        """The task's output for ``wavs [B, S]`` (implemented by the recipe)."""
        raise NotImplementedError("TaskBrain subclasses implement predict")

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        wavs, lens = wavs.to(self.device), lens.to(self.device)
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            wavs, lens = augment(wavs, lens)
        return self.predict(wavs, lens, stage)

    def valid_stats(self, stage_loss):
        """Validation figures to log and store with the checkpoint."""
        return {"loss": stage_loss}

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss, **self.pruning_stats()}
            return
        stats = self.valid_stats(stage_loss)
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch}, train_stats=self.train_stats, valid_stats=stats
            )
            self.checkpointer.save_and_keep_only(meta=stats, num_to_keep=2)


def crop_pipeline(segment_seconds, train, bounds=False):
    """SpeechBrain dynamic item ``(id, wav[, start, stop]) -> sig``.

    A ``segment_seconds`` crop of the file (of its ``start``-``stop`` samples
    when ``bounds``, columns of the manifest): random in training, the first
    one otherwise; shorter files are repeated to the length.

    Example
    -------
    >>> item = crop_pipeline(1.0, train=False)
    >>> item.takes, item.provides
    (('id', 'wav'), ('sig',))
    """
    segment = int(segment_seconds * SAMPLE_RATE)
    keys = ("id", "wav", "start", "stop") if bounds else ("id", "wav")

    @sb.utils.data_pipeline.takes(*keys)
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(utt_id, wav, start=0, stop=None):
        return read_segment(wav, segment, random_offset=train, utt_id=utt_id, start=start,
                            stop=stop)

    return audio_pipeline


def init_modules_from(folder, modules):
    """Load ``<folder>/<name>.ckpt`` into each module of ``modules`` that has one.

    ``folder`` is an exported folder (ours, or one written by
    ``speechbrain-pruning-import-diarizen``), so its back-end initialises the
    recipe's; its WavLM is chosen with ``wavlm_source: <folder>/wavlm``. Keys
    and shapes must match exactly (:func:`load_state_dict_strict`). Returns the
    names loaded; ``folder`` None loads nothing.

    Example
    -------
    >>> import tempfile, torch
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     torch.save(torch.nn.Linear(2, 1).state_dict(), f"{tmp}/head.ckpt")
    ...     init_modules_from(tmp, {"head": torch.nn.Linear(2, 1), "other": torch.nn.Linear(1, 1)})
    ['head']
    """
    if not folder:
        return []
    from .export import load_state_dict_strict

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"init_from: {folder} is not a folder")
    loaded = []
    for name, module in modules.items():
        path = folder / f"{name}.ckpt"
        if name != "wavlm" and path.is_file():
            load_state_dict_strict(module, path)
            loaded.append(name)
    if not loaded:
        raise ValueError(f"init_from: no <module>.ckpt in {folder} matches the recipe's modules "
                         f"{sorted(modules)}")
    return loaded


def run_recipe(argv, brain_class, prepare, prepare_kwargs, dataio_prep, evaluate):
    """The ``main`` of a recipe: prepare, train (DDP-aware), evaluate and export.

    Arguments
    ---------
    argv : list of str or None
        ``<hparams.yaml> --key=value ...`` (``sys.argv[1:]`` when None).
    brain_class : type
        The recipe's :class:`TaskBrain` subclass.
    prepare : callable
        The ``data_prep`` function, run on the main process first.
    prepare_kwargs : callable
        ``hparams -> kwargs`` of ``prepare``.
    dataio_prep : callable
        ``(hparams, prepared) -> (train_set, valid_set)``.
    evaluate : callable
        ``(brain, hparams, prepared) -> results``, run on the main process only.
    """
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:] if argv is None else argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    hparams = load_hparams(hparams_file, overrides)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"],
                                   hyperparams_to_save=hparams_file, overrides=overrides)
    kwargs = prepare_kwargs(hparams)
    run_on_main(prepare, kwargs=kwargs)
    prepared = prepare(**kwargs)  # instant: prepared with these options above
    train_set, valid_set = dataio_prep(hparams, prepared)
    init_modules_from(hparams.get("init_from"), hparams["modules"])
    brain = brain_class(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                        checkpointer=hparams["checkpointer"])
    brain.fit(brain.hparams.epoch_counter, train_set, valid_set,
              train_loader_kwargs=hparams["train_dataloader_options"],
              valid_loader_kwargs=hparams["valid_dataloader_options"])
    if sb.utils.distributed.if_main_process():
        return evaluate(brain, hparams, prepared)
    return None


def export_and_rescore(brain, hparams, modules, interface, evaluate, gated, exported,
                       export_hparams=None, metrics=None, title="Pruned WavLM model",
                       folders=("scores_gated", "scores_exported"), extra_files=None,
                       onnx_files=None):
    """Evaluate the trained (gated) model, export it, evaluate the exported folder.

    Arguments
    ---------
    brain : PruningBrain
        The trained Brain (modules are put in eval mode).
    hparams : dict
        Recipe hyperparameters (``output_folder``).
    modules : dict
        name -> ``(module, (dotted class path, kwargs))`` shipped beside the WavLM.
    interface : type
        The inference interface class of the exported folder.
    evaluate : callable
        ``evaluate(fn, out_dir, stage) -> results`` with ``stage`` "gated" or
        "exported" and ``fn`` the model function to evaluate.
    gated : callable
        The gated model's function (built from ``brain``).
    exported : callable
        ``interface instance -> function``, the same function through the export.
    export_hparams, metrics : callable, optional
        ``gated results -> dict``: inference hyperparameters (e.g. a decision
        threshold) and the figures of the model card.
    extra_files : dict, optional
        Files / folders copied into the export (see ``export_model``).
    onnx_files : list of str, optional
        Audio files on which an int8 ONNX export is measured. The yaml's
        ``onnx_export`` (``null`` / ``fp32`` / ``int8``) chooses whether
        ``model.onnx`` (checked against PyTorch) and ``model.int8.onnx`` (its
        effect on these files in the model card) are written into the export.

    Returns
    -------
    dict
        ``gated`` and ``exported`` results and the exported sizes (also written
        to ``<output_folder>/results.json``).
    """
    out = Path(hparams["output_folder"])
    brain.modules.eval()
    before = evaluate(gated, out / folders[0], "gated")
    report = export_model(
        out / "exported", brain.wavlm, {name: m for name, (m, _) in modules.items()},
        {name: spec for name, (_, spec) in modules.items()}, interface.__name__,
        hparams=export_hparams(before) if export_hparams else None,
        metrics=metrics(before) if metrics else None, title=title, extra_files=extra_files,
    )
    model = interface.from_hparams(source=out / "exported", run_opts={"device": str(brain.device)})
    after = evaluate(exported(model), out / folders[1], "exported")
    summary = {"gated": before, "exported": after, "params": report["params_after"],
               "reference_params": report["reference_params"], "macs": report["macs_after"],
               "sparsity": report["sparsity"]}
    onnx = hparams.get("onnx_export")
    if onnx:
        if onnx not in ("fp32", "int8"):
            raise ValueError(f"onnx_export must be null, fp32 or int8, got {onnx!r}")
        from ..onnx_export import export_onnx

        summary["onnx"] = export_onnx(out / "exported", int8=onnx == "int8",
                                      eval_files=onnx_files)
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary
