#!/usr/bin/env python3
"""Anti-spoofing (ASVspoof5 track 1 / ASVspoof 2019 LA) with a WavLM pruned in situ.

WavLM (gated) -> MHFA + head or SSL-AASIST -> 2-class weighted cross-entropy,
with the Lagrangian sparsity term of ``PruningBrain``. After training: dev and
eval scoring (``scores_<split>.txt`` as ``filename score``, higher = bona fide),
EER / minDCF / actDCF / Cllr with per-attack and per-codec tables, physical
pruning, export, and re-scoring of eval through ``PrunedSpoofDetector``.

Usage::

    python recipes/ASVspoof5/CM/train.py recipes/ASVspoof5/CM/hparams/mhfa_base.yaml \\
        --data_folder=/data/ASVspoof5 --wavlm_source=/models/wavlm-base
"""

import json
import sys
from pathlib import Path

import speechbrain as sb
import torch
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from data_prep.asvspoof_prepare import prepare_asvspoof  # noqa: E402
from speechbrain_pruning.backends.spoof_head import bonafide_score  # noqa: E402
from speechbrain_pruning.brain import PruningBrain  # noqa: E402
from speechbrain_pruning.dataio import read_segment  # noqa: E402
from speechbrain_pruning.export import export_model  # noqa: E402
from speechbrain_pruning.inference import PrunedSpoofDetector  # noqa: E402
from speechbrain_pruning.metrics.spoofing import evaluate_cm  # noqa: E402
from speechbrain_pruning.spoof_eval import evaluate_manifest  # noqa: E402

SAMPLE_RATE = 16000
LABELS = {"spoof": 0, "bonafide": 1}


class SpoofBrain(PruningBrain):
    """Bona fide / spoof classification on a pruned WavLM."""

    def logits(self, wavs, wav_lens, stage=sb.Stage.TEST):
        hidden = self.encode(wavs, wav_lens, stage)
        return self.modules.classifier(self.modules.backend(hidden, self.frame_lens(wav_lens, wavs)))

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        wavs, lens = wavs.to(self.device), lens.to(self.device)
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            wavs, lens = augment(wavs, lens)
        return self.logits(wavs, lens, stage)

    def task_loss(self, logits, batch, stage):
        labels = batch.label_id.to(self.device)
        if stage != sb.Stage.TRAIN:
            self.valid_scores.append(bonafide_score(logits).detach().cpu())
            self.valid_labels.append(labels.cpu())
        weight = torch.tensor(self.hparams.class_weights, device=self.device)
        return F.cross_entropy(logits, labels, weight=weight)

    def on_stage_start(self, stage, epoch=None):
        self.valid_scores, self.valid_labels = [], []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss, **self.pruning_stats()}
            return
        result = evaluate_cm(torch.cat(self.valid_scores).numpy(),
                             torch.cat(self.valid_labels).numpy())
        stats = {"loss": stage_loss, "EER": result["eer"], "minDCF": result["min_dcf"]}
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch}, train_stats=self.train_stats, valid_stats=stats
            )
            # last checkpoints, not the best: the sparsity target is reached at the end
            self.checkpointer.save_and_keep_only(meta=stats, num_to_keep=2)


def audio_pipeline_factory(hparams, train):
    """A ``segment_seconds`` crop (random in training), repeated if shorter."""
    segment = int(hparams["segment_seconds"] * SAMPLE_RATE)

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(utt_id, wav):
        return read_segment(wav, segment, random_offset=train, utt_id=utt_id)

    return audio_pipeline


@sb.utils.data_pipeline.takes("label")
@sb.utils.data_pipeline.provides("label_id")
def label_pipeline(label):
    return LABELS[label]


def dataio_prep(hparams, csv_files):
    datasets = {}
    for split in ("train", "dev"):
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_files[split])
        dataset.add_dynamic_item(audio_pipeline_factory(hparams, train=split == "train"))
        dataset.add_dynamic_item(label_pipeline)
        dataset.set_output_keys(["id", "sig", "label_id"])
        datasets[split] = dataset
    return datasets["train"], datasets["dev"]


def evaluate_and_export(brain, hparams, prep):
    """Score dev/eval, export the pruned model, re-score eval through the interface."""
    out = Path(hparams["output_folder"])
    brain.modules.eval()
    kwargs = dict(batch_size=hparams["eval_batch_size"], max_seconds=hparams["eval_max_seconds"])

    def score(wavs, lens):
        with torch.no_grad():
            return bonafide_score(brain.logits(wavs.to(brain.device), lens.to(brain.device)))

    results = {split: evaluate_manifest(score, prep["csv"][split], out / "scores_gated", split,
                                        **kwargs)
               for split in ("dev", "eval") if split in prep["csv"]}
    report = export_model(
        out / "exported", brain.wavlm,
        {"backend": brain.modules.backend, "classifier": brain.modules.classifier},
        {"backend": (hparams["backend_class"], hparams["backend_kwargs"]),
         "classifier": (hparams["classifier_class"], hparams["classifier_kwargs"])},
        "PrunedSpoofDetector", hparams={"threshold": float(results["dev"]["eer_threshold"])},
        metrics={f"{s} {k}": v[k] for s, v in results.items()
                 for k in ("eer", "min_dcf", "act_dcf", "cllr")},
        title="WavLM + countermeasure back-end pruned in situ",
    )
    model = PrunedSpoofDetector.from_hparams(source=out / "exported",
                                             run_opts={"device": str(brain.device)})
    final_split = "eval" if "eval" in prep["csv"] else "dev"
    exported = evaluate_manifest(model.score_batch, prep["csv"][final_split],
                                 out / "scores_exported", final_split, **kwargs)
    summary = {"gated": results, "exported": {final_split: exported},
               "params": report["params_after"], "reference_params": report["reference_params"],
               "macs": report["macs_after"], "sparsity": report["sparsity"]}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def main(argv=None):
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:] if argv is None else argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"],
                                   hyperparams_to_save=hparams_file, overrides=overrides)
    prep_kwargs = dict(data_folder=hparams["data_folder"], save_folder=hparams["save_folder"],
                       layout=hparams["layout"], skip_prep=hparams["skip_prep"])
    run_on_main(prepare_asvspoof, kwargs=prep_kwargs)
    prep = prepare_asvspoof(**prep_kwargs)  # instant: already prepared
    train_set, dev_set = dataio_prep(hparams, prep["csv"])
    brain = SpoofBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                       checkpointer=hparams["checkpointer"])
    brain.fit(brain.hparams.epoch_counter, train_set, dev_set,
              train_loader_kwargs=hparams["train_dataloader_options"],
              valid_loader_kwargs=hparams["valid_dataloader_options"])
    if sb.utils.distributed.if_main_process():
        return evaluate_and_export(brain, hparams, prep)
    return None


if __name__ == "__main__":
    main()
