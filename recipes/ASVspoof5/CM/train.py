#!/usr/bin/env python3
"""Anti-spoofing (ASVspoof5 track 1 / ASVspoof 2019 LA) with a WavLM pruned in situ.

WavLM (gated) -> MHFA + head or SSL-AASIST -> 2-class weighted cross-entropy,
with the Lagrangian sparsity term of ``PruningBrain``. After training: dev and
eval scoring (``scores_<split>.txt`` as ``filename score``, higher = bona fide),
EER / minDCF / actDCF / Cllr with per-attack and per-codec tables,
score calibration on dev (LLRs, raw and calibrated metrics), min t-DCF for
ASVspoof 2019 LA, physical pruning, export (with ONNX / int8 files), and
re-scoring of eval through ``PrunedSpoofDetector``.

Usage::

    python recipes/ASVspoof5/CM/train.py recipes/ASVspoof5/CM/hparams/mhfa_base.yaml \\
        --data_folder=/data/ASVspoof5 --wavlm_source=/models/wavlm-base
"""

import speechbrain as sb
import torch
import torch.nn.functional as F

from data_prep.asvspoof_prepare import prepare_asvspoof
from speechbrain_pruning.pruning.recipe import (TaskBrain, crop_pipeline, export_and_rescore,
                                                run_recipe)
from speechbrain_pruning.spoofing import PrunedSpoofDetector, bonafide_score
from speechbrain_pruning.spoofing.calibration import LinearCalibration
from speechbrain_pruning.spoofing.metrics import bayes_threshold, evaluate_cm
from speechbrain_pruning.spoofing.scoring import report_scores, score_manifest

LABELS = {"spoof": 0, "bonafide": 1}


class SpoofBrain(TaskBrain):
    """Bona fide / spoof classification on a pruned WavLM."""

    def predict(self, wavs, wav_lens, stage=sb.Stage.TEST):
        hidden = self.encode(wavs, wav_lens, stage)
        return self.modules.classifier(self.modules.backend(hidden, self.frame_lens(wav_lens, wavs)))

    def task_loss(self, logits, batch, stage):
        labels = batch.label_id.to(self.device)
        if stage != sb.Stage.TRAIN:
            self.valid_scores.append(bonafide_score(logits).detach().cpu())
            self.valid_labels.append(labels.cpu())
        weight = torch.tensor(self.hparams.class_weights, device=self.device)
        return F.cross_entropy(logits, labels, weight=weight)

    def on_stage_start(self, stage, epoch=None):
        self.valid_scores, self.valid_labels = [], []

    def valid_stats(self, stage_loss):
        result = evaluate_cm(torch.cat(self.valid_scores).numpy(),
                             torch.cat(self.valid_labels).numpy())
        return {"loss": stage_loss, "EER": result["eer"], "minDCF": result["min_dcf"]}


@sb.utils.data_pipeline.takes("label")
@sb.utils.data_pipeline.provides("label_id")
def label_pipeline(label):
    return LABELS[label]


def prepare_kwargs(hparams):
    return dict(data_folder=hparams["data_folder"], save_folder=hparams["save_folder"],
                layout=hparams["layout"], skip_prep=hparams["skip_prep"])


def dataio_prep(hparams, prep):
    datasets = {}
    for split in ("train", "dev"):
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(prep["csv"][split])
        dataset.add_dynamic_item(crop_pipeline(hparams["segment_seconds"], split == "train"))
        dataset.add_dynamic_item(label_pipeline)
        dataset.set_output_keys(["id", "sig", "label_id"])
        datasets[split] = dataset
    return datasets["train"], datasets["dev"]


def evaluate_and_export(brain, hparams, prep):
    """Score dev/eval, calibrate on dev, export, re-score eval through the interface.

    Scores are raw (``logit_bonafide - logit_spoof``). A logistic-regression
    calibration (scores -> LLR) is fitted on the gated model's dev scores
    (``calibrate: True``); every split reports minDCF / actDCF / Cllr / min
    Cllr for raw and calibrated scores (the dev figures of the calibrated
    scores are optimistic: fitted there). The export carries the calibration,
    so ``PrunedSpoofDetector.score_*`` return LLRs and its ``threshold`` is the
    Bayes decision threshold of the ASVspoof5 costs; the raw scores stay
    available (``raw_score_*``, ``raw_threshold`` = dev EER threshold). With the
    ASVspoof 2019 LA layout, min t-DCF is computed against the organisers' ASV
    scores of each split found by the data preparation.
    """
    kwargs = dict(batch_size=hparams["eval_batch_size"], max_seconds=hparams["eval_max_seconds"])
    final_split = "eval" if "eval" in prep["csv"] else "dev"
    asv_scores = prep.get("asv_scores") or {}
    state = {}

    def gated(wavs, lens):
        with torch.no_grad():
            return bonafide_score(brain.predict(wavs.to(brain.device), lens.to(brain.device)))

    def evaluate(score, out_dir, stage):
        splits = ("dev", "eval") if stage == "gated" else (final_split,)
        data = {split: score_manifest(score, prep["csv"][split], **kwargs)
                for split in splits if split in prep["csv"]}
        if stage == "gated" and hparams.get("calibrate", True) and "dev" in data:
            state["calibration"] = LinearCalibration().fit(data["dev"]["scores"],
                                                           data["dev"]["labels"])
        return {split: report_scores(d, out_dir, split, calibration=state.get("calibration"),
                                     asv_scores=asv_scores.get(split))
                for split, d in data.items()}

    def export_hparams(results):
        raw_threshold = float(results["dev"]["eer_threshold"])
        calibration = state.get("calibration")
        if calibration is None:
            return {"threshold": raw_threshold}
        return {"threshold": float(bayes_threshold()), "raw_threshold": raw_threshold,
                "calibration": calibration.to_dict()}

    def metrics(results):
        out = {}
        for split, r in results.items():
            out.update({f"{split} {k}": r[k] for k in ("eer", "min_dcf", "act_dcf", "cllr",
                                                        "min_cllr")})
            if "calibrated" in r:
                out.update({f"{split} {k} (calibrated)": r["calibrated"][k]
                            for k in ("min_dcf", "act_dcf", "cllr", "min_cllr")})
            if "tdcf" in r:
                out[f"{split} min t-DCF"] = r["tdcf"]["min_tdcf"]
        return out

    from speechbrain.dataio.dataio import load_data_csv

    eval_rows = load_data_csv(prep["csv"][final_split])
    return export_and_rescore(
        brain, hparams,
        {name: (brain.modules[name], (hparams[f"{name}_class"], hparams[f"{name}_kwargs"]))
         for name in ("backend", "classifier")},
        PrunedSpoofDetector, evaluate, gated, lambda model: model.raw_score_batch,
        export_hparams=export_hparams, metrics=metrics,
        title="WavLM + countermeasure back-end pruned in situ",
        onnx_files=sorted(row["wav"] for row in eval_rows.values()),
    )


def main(argv=None):
    return run_recipe(argv, SpoofBrain, prepare_asvspoof, prepare_kwargs, dataio_prep,
                      evaluate_and_export)


if __name__ == "__main__":
    main()
