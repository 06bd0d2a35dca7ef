"""Training and evaluation of the pruned-WavLM EEND diarization model.

Shared by the diarization recipes (AMI, DIHARD3, CHiME-6, ...): each recipe's
``train.py`` prepares its corpus with ``data_prep/diarization_prepare.py``
and calls :func:`run`. Three pruning modes, chosen in the yaml:

* ``none``: plain fine-tuning (``prune_units: ""``, no controller);
* in-situ: powerset task loss + Lagrangian sparsity term;
* distillation-guided (DiariZen): a frozen fine-tuned ``teacher`` WavLM, the
  layer-wise ``distill_loss`` and the sparsity term, ``task_weight: 0``.

A pruned model is fine-tuned further by training again from its exported
``wavlm/`` folder with ``prune_units: ""``.
"""

import json
import logging
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

from ..brain import PruningBrain
from ..dataio import read_segment
from ..export import export_model
from ..nn import unwrap_module
from ..metrics.der import der_report, nist_collar, write_der_report
from .rttm import frame_labels, read_rttm, read_uem

__all__ = ["DiarizationBrain", "dataio_prep", "evaluate_recordings", "run"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000


class DiarizationBrain(PruningBrain):
    """Powerset EEND on a (pruned) WavLM with a permutation-invariant loss."""

    def log_probs(self, wavs, wav_lens, stage=sb.Stage.TEST):
        hidden = self.encode(wavs, wav_lens, stage)
        return self.modules.eend(hidden, self.frame_lens(wav_lens, wavs))

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        return self.log_probs(wavs.to(self.device), lens.to(self.device), stage)

    def task_loss(self, log_probs, batch, stage):
        labels, _ = batch.labels
        labels = labels.to(self.device)
        frames = min(labels.shape[1], log_probs.shape[1])
        powerset = unwrap_module(self.modules.eend).powerset
        return powerset.permutation_invariant_loss(log_probs[:, :frames], labels[:, :frames])

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss, **self.pruning_stats()}
            return
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch}, train_stats=self.train_stats,
                valid_stats={"loss": stage_loss},
            )
            self.checkpointer.save_and_keep_only(meta={"loss": stage_loss}, num_to_keep=2)


def dataio_prep(hparams, csv_files, num_frames):
    """Chunk datasets with frame labels (most talkative ``max_speakers`` per chunk)."""
    annotations = {}

    def annotation(rttm_path, rec_id):
        if rttm_path not in annotations:
            annotations[rttm_path] = read_rttm(rttm_path)
        return annotations[rttm_path].get(rec_id)

    @sb.utils.data_pipeline.takes("id", "wav", "rec_id", "start", "stop", "rttm")
    @sb.utils.data_pipeline.provides("sig", "labels")
    def pipeline(chunk_id, wav, rec_id, start, stop, rttm):
        start, stop = float(start), float(stop)
        samples = int(round((stop - start) * SAMPLE_RATE))
        sig = read_segment(wav, samples, random_offset=False, utt_id=chunk_id,
                           start=int(round(start * SAMPLE_RATE)),
                           stop=int(round(stop * SAMPLE_RATE)))
        yield sig
        ann = annotation(rttm, rec_id)
        labels, _ = frame_labels(ann, start, stop - start, num_frames(samples),
                                 max_speakers=hparams["max_speakers"]) if ann is not None \
            else (torch.zeros(num_frames(samples), hparams["max_speakers"]).numpy(), [])
        yield torch.as_tensor(labels, dtype=torch.float32)

    datasets = []
    for split in (hparams["train_split"], hparams["valid_split"]):
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_files[split]["chunks"])
        dataset.add_dynamic_item(pipeline)
        dataset.set_output_keys(["id", "sig", "labels"])
        datasets.append(dataset)
    return datasets


def evaluate_recordings(diarize, recordings_csv, out_dir, collars=(0.0, 0.25), progress=True):
    """Diarize every recording of a manifest, write RTTMs and DER tables.

    ``diarize(path, uri) -> Annotation``. ``collars`` are forgiveness collars
    on each side of reference boundaries, as md-eval's ``-c`` and the papers
    quote them (0.25 = +-0.25 s). Overlap is scored, UEMs honoured. Returns
    {collar: TOTAL row dict}.
    """
    from speechbrain.dataio.dataio import load_data_csv
    from tqdm import tqdm

    from .rttm import write_rttm

    out_dir = Path(out_dir)
    (out_dir / "rttm").mkdir(parents=True, exist_ok=True)
    rows = load_data_csv(str(recordings_csv))
    references, hypotheses, uems = {}, {}, {}
    for uri, row in tqdm(rows.items(), desc="diarizing", disable=not progress):
        hyp = diarize(row["wav"], uri)
        hypotheses[uri] = hyp
        with open(out_dir / "rttm" / f"{uri}.rttm", "w", encoding="utf-8") as fout:
            write_rttm(hyp, fout)
        references[uri] = read_rttm(row["rttm"]).get(uri) or _empty(uri)
        if row.get("uem"):
            uem = read_uem(row["uem"]).get(uri)
            if uem is not None:
                uems[uri] = uem
    totals = {}
    for collar in collars:
        table = der_report(references, hypotheses, uems=uems or None,
                           collar=nist_collar(collar))
        name = f"der_collar{collar:g}"
        write_der_report(table, out_dir / f"{name}.csv", out_dir / f"{name}.md")
        totals[collar] = table.iloc[-1].to_dict()
        logger.info("DER (collar %g): %s", collar, totals[collar])
    return totals


def _empty(uri):
    from pyannote.core import Annotation

    return Annotation(uri=uri)


def run(argv, prepare):
    """The recipe: prepare, train, evaluate with the gated model, export, re-evaluate."""
    from ..inference import PrunedDiarizer

    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"],
                                   hyperparams_to_save=hparams_file, overrides=overrides)
    prep_kwargs = dict(data_folder=hparams["data_folder"], save_folder=hparams["save_folder"],
                       layout=hparams["layout"], chunk_seconds=hparams["chunk_seconds"],
                       chunk_shift=hparams["chunk_shift"], splits=hparams["splits"],
                       skip_prep=hparams["skip_prep"])
    run_on_main(prepare, kwargs=prep_kwargs)
    prep = prepare(**prep_kwargs)
    wavlm = hparams["wavlm"]
    train_set, dev_set = dataio_prep(hparams, prep["csv"], wavlm.config.num_frames)
    brain = DiarizationBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                             checkpointer=hparams["checkpointer"])
    brain.fit(brain.hparams.epoch_counter, train_set, dev_set,
              train_loader_kwargs=hparams["train_dataloader_options"],
              valid_loader_kwargs=hparams["valid_dataloader_options"])
    if not sb.utils.distributed.if_main_process():
        return None
    out = Path(hparams["output_folder"])
    test_csv = prep["csv"][hparams["eval_split"]]["recordings"]
    brain.modules.eval()
    gated = evaluate_recordings(_brain_diarizer(brain, hparams), test_csv, out / "eval_gated")
    report = export_model(
        out / "exported", brain.wavlm, {"eend": brain.modules.eend},
        {"eend": (hparams["eend_class"], hparams["eend_kwargs"])}, "PrunedDiarizer",
        hparams=dict(hparams["inference"]),
        metrics={f"DER % (collar {c:g})": v["der %"] for c, v in gated.items()},
        title="WavLM EEND diarization model pruned with speechbrain-pruning",
    )
    model = PrunedDiarizer.from_hparams(source=out / "exported",
                                        run_opts={"device": str(brain.device)})
    exported = evaluate_recordings(lambda path, uri: model.diarize_file(path, uri=uri),
                                   test_csv, out / "eval_exported")
    summary = {"gated": gated, "exported": exported, "params": report["params_after"],
               "reference_params": report["reference_params"], "macs": report["macs_after"],
               "sparsity": report["sparsity"]}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _brain_diarizer(brain, hparams):
    """The inference pipeline on the trained (gated, eval-mode) Brain modules."""
    from ..inference import build_diarizer

    return build_diarizer(unwrap_module(brain.modules.wavlm), unwrap_module(brain.modules.eend),
                          None, dict(hparams["inference"]), brain.device)


def load_teacher(source, **overrides):
    """The frozen teacher WavLM for distillation-guided pruning (None if no source)."""
    if not source:
        return None
    from ..wavlm import PrunableWavLM

    return PrunableWavLM.from_pretrained(source, **overrides).eval().requires_grad_(False)
