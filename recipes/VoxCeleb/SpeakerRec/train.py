#!/usr/bin/env python3
"""Speaker verification on VoxCeleb with a WavLM pruned in situ (Hybrid Pruning).

WavLM (gated) -> MHFA or ECAPA back-end -> AAM-softmax over training speakers,
with the Lagrangian sparsity term of ``PruningBrain``. After training: trial
scoring (cosine, optional AS-norm), EER/minDCF and DET plots, physical
pruning, export of an inference folder, and re-scoring through
``PrunedSpeakerRecognition`` to check the exported model.

Usage::

    python recipes/VoxCeleb/SpeakerRec/train.py recipes/VoxCeleb/SpeakerRec/hparams/mhfa_base_plus.yaml \\
        --data_folder=/data/voxceleb --wavlm_source=/models/wavlm-base-plus

    torchrun --nproc_per_node=4 recipes/VoxCeleb/SpeakerRec/train.py <hparams> ...
"""

from pathlib import Path

import speechbrain as sb

from data_prep.voxceleb_prepare import prepare_voxceleb
from speechbrain_pruning.pruning.recipe import (TaskBrain, crop_pipeline, export_and_rescore,
                                                run_recipe)
from speechbrain_pruning.speaker import PrunedSpeakerRecognition
from speechbrain_pruning.speaker.scoring import cohort_from_manifest, evaluate_trial_lists


class SpeakerBrain(TaskBrain):
    """Speaker classification with AAM-softmax on a pruned WavLM."""

    def embed(self, wavs, wav_lens, stage=sb.Stage.TEST):
        hidden = self.encode(wavs, wav_lens, stage)
        return self.modules.backend(hidden, self.frame_lens(wav_lens, wavs))

    def predict(self, wavs, wav_lens, stage=sb.Stage.TEST):
        return self.modules.classifier(self.embed(wavs, wav_lens, stage).unsqueeze(1))

    def task_loss(self, predictions, batch, stage):
        spk = batch.spk_id_encoded.data.to(self.device)
        if stage != sb.Stage.TRAIN:
            self.error_metrics.append(batch.id, predictions, spk)
        return self.hparams.compute_cost(predictions, spk)

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.hparams.margin_scheduler(epoch)
        else:
            self.error_metrics = self.hparams.error_stats()

    def valid_stats(self, stage_loss):
        return {"loss": stage_loss, "ErrorRate": self.error_metrics.summarize("average")}


def prepare_kwargs(hparams):
    return dict(data_folder=hparams["data_folder"], save_folder=hparams["save_folder"],
                trial_lists=hparams["trial_lists"], splits=("train", "dev", "test"),
                dev_ratio=hparams["dev_ratio"], skip_prep=hparams["skip_prep"])


def dataio_prep(hparams, prep):
    """Train/dev datasets with random (train) or first (dev) crops, and labels."""
    label_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("spk_id")
    @sb.utils.data_pipeline.provides("spk_id_encoded")
    def label_pipeline(spk_id):
        return label_encoder.encode_sequence_torch([spk_id])

    datasets = {}
    for split in ("train", "dev"):
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(prep["csv"][split])
        dataset.add_dynamic_item(crop_pipeline(hparams["segment_seconds"], split == "train",
                                               bounds=True))
        dataset.add_dynamic_item(label_pipeline)
        dataset.set_output_keys(["id", "sig", "spk_id_encoded"])
        datasets[split] = dataset
    label_encoder.load_or_create(
        path=Path(hparams["save_folder"]) / "label_encoder.txt",
        from_didatasets=[datasets["train"]], output_key="spk_id",
    )
    return datasets["train"], datasets["dev"]


def evaluate_and_export(brain, hparams, prep):
    """Score trials with the trained model, export it, and re-score the export."""
    kwargs = dict(batch_size=hparams["eval_batch_size"], max_seconds=hparams["eval_max_seconds"])

    def gated(wavs, lens):
        return brain.embed(wavs.to(brain.device), lens.to(brain.device))

    brain.modules.eval()
    cohort = cohort_from_manifest(gated, prep["csv"]["train"],
                                  hparams["cohort_utts_per_speaker"], **kwargs)
    utterances = {utt_id: row["wav"] for stem in prep["trial_lists"]
                  for utt_id, row in sb.dataio.dataio.load_data_csv(prep["csv"][stem]).items()}

    def evaluate(encode, out_dir, stage):
        return evaluate_trial_lists(encode, dict(prep["trial_lists"]), utterances, out_dir,
                                    cohort=cohort, top_n=hparams["asnorm_top_n"], **kwargs)

    def threshold(results):  # on raw cosine scores, as the interface scores
        first = next(iter(results.values()))
        return {"threshold": float(first.get("cosine", first)["eer_threshold"])}

    return export_and_rescore(
        brain, hparams,
        {"backend": (brain.modules.backend,
                     (hparams["backend_class"], hparams["backend_kwargs"]))},
        PrunedSpeakerRecognition, evaluate, gated, lambda model: model.encode_batch,
        export_hparams=threshold,
        metrics=lambda results: {f"{k} EER %": v["eer"] for k, v in results.items()}
        | {f"{k} minDCF": v["min_dcf"] for k, v in results.items()},
        title="WavLM + speaker back-end pruned in situ on VoxCeleb",
        onnx_files=sorted(set(utterances.values())),
    )


def main(argv=None):
    return run_recipe(argv, SpeakerBrain, prepare_voxceleb, prepare_kwargs, dataio_prep,
                      evaluate_and_export)


if __name__ == "__main__":
    main()
