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

import json
import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.distributed import run_on_main

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from data_prep.voxceleb_prepare import prepare_voxceleb  # noqa: E402
from speechbrain_pruning.brain import PruningBrain  # noqa: E402
from speechbrain_pruning.dataio import read_segment  # noqa: E402
from speechbrain_pruning.export import export_model  # noqa: E402
from speechbrain_pruning.inference import PrunedSpeakerRecognition  # noqa: E402
from speechbrain_pruning.speaker_eval import (  # noqa: E402
    cohort_from_manifest, evaluate_trial_lists,
)

SAMPLE_RATE = 16000


class SpeakerBrain(PruningBrain):
    """Speaker classification with AAM-softmax on a pruned WavLM."""

    def embed(self, wavs, wav_lens, stage=sb.Stage.TEST):
        hidden = self.encode(wavs, wav_lens, stage)
        return self.modules.backend(hidden, self.frame_lens(wav_lens, wavs))

    def compute_forward(self, batch, stage):
        wavs, lens = batch.sig
        wavs, lens = wavs.to(self.device), lens.to(self.device)
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            wavs, lens = augment(wavs, lens)
        return self.modules.classifier(self.embed(wavs, lens, stage).unsqueeze(1))

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

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss, **self.pruning_stats()}
            return
        stats = {"loss": stage_loss, "ErrorRate": self.error_metrics.summarize("average")}
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch}, train_stats=self.train_stats, valid_stats=stats
            )
            # The last checkpoints are kept (not the best): the sparsity target
            # is only reached at the end of the warm-up.
            self.checkpointer.save_and_keep_only(meta=stats, num_to_keep=2)


def audio_pipeline_factory(hparams, train):
    """Reads a ``segment_seconds`` crop (random in training) as mono 16 kHz."""
    segment = int(hparams["segment_seconds"] * SAMPLE_RATE)

    @sb.utils.data_pipeline.takes("id", "wav", "start", "stop")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(utt_id, wav, start, stop):
        return read_segment(wav, segment, random_offset=train, utt_id=utt_id, start=start,
                            stop=stop)

    return audio_pipeline


def dataio_prep(hparams, csv_files):
    """Train/dev datasets with random (train) or first (dev) crops, and labels."""
    label_encoder = sb.dataio.encoder.CategoricalEncoder()

    @sb.utils.data_pipeline.takes("spk_id")
    @sb.utils.data_pipeline.provides("spk_id_encoded")
    def label_pipeline(spk_id):
        return label_encoder.encode_sequence_torch([spk_id])

    datasets = {}
    for split in ("train", "dev"):
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_files[split])
        dataset.add_dynamic_item(audio_pipeline_factory(hparams, train=split == "train"))
        dataset.add_dynamic_item(label_pipeline)
        dataset.set_output_keys(["id", "sig", "spk_id_encoded"])
        datasets[split] = dataset
    label_encoder.load_or_create(
        path=Path(hparams["save_folder"]) / "label_encoder.txt",
        from_didatasets=[datasets["train"]], output_key="spk_id",
    )
    return datasets["train"], datasets["dev"], label_encoder


def evaluate_and_export(brain, hparams, prep):
    """Score trials with the trained model, export it, and re-score the export."""
    out = Path(hparams["output_folder"])
    brain.modules.eval()
    utterances = _trial_utterances(prep)
    eval_kwargs = dict(batch_size=hparams["eval_batch_size"],
                       max_seconds=hparams["eval_max_seconds"])

    def encode(wavs, lens):
        return brain.embed(wavs.to(brain.device), lens.to(brain.device))

    cohort = cohort_from_manifest(encode, prep["csv"]["train"],
                                  hparams["cohort_utts_per_speaker"], **eval_kwargs)
    lists = dict(prep["trial_lists"])
    before = evaluate_trial_lists(encode, lists, utterances, out / "scores_gated", cohort=cohort,
                                  top_n=hparams["asnorm_top_n"], **eval_kwargs)
    wavlm = brain.wavlm
    first = next(iter(before.values()))
    threshold = first.get("cosine", first)["eer_threshold"]  # on raw cosine, as the interface
    report = export_model(
        out / "exported", wavlm, {"backend": brain.modules.backend},
        {"backend": (hparams["backend_class"], hparams["backend_kwargs"])},
        "PrunedSpeakerRecognition", hparams={"threshold": float(threshold)},
        metrics={f"{k} EER %": v["eer"] for k, v in before.items()}
        | {f"{k} minDCF": v["min_dcf"] for k, v in before.items()},
        title="WavLM + speaker back-end pruned in situ on VoxCeleb",
    )
    model = PrunedSpeakerRecognition.from_hparams(source=out / "exported",
                                                  run_opts={"device": str(brain.device)})
    after = evaluate_trial_lists(lambda w, l: model.encode_batch(w, l), lists, utterances,
                                 out / "scores_exported", cohort=cohort,
                                 top_n=hparams["asnorm_top_n"], **eval_kwargs)
    summary = {"gated": before, "exported": after, "params": report["params_after"],
               "reference_params": report["reference_params"],
               "macs": report["macs_after"], "sparsity": report["sparsity"]}
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _trial_utterances(prep):
    utterances = {}
    for stem in prep["trial_lists"]:
        csv_path = prep["csv"][stem]
        for utt_id, row in sb.dataio.dataio.load_data_csv(csv_path).items():
            utterances[utt_id] = row["wav"]
    return utterances


def main(argv=None):
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:] if argv is None else argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(experiment_directory=hparams["output_folder"],
                                   hyperparams_to_save=hparams_file, overrides=overrides)
    prep_kwargs = dict(data_folder=hparams["data_folder"], save_folder=hparams["save_folder"],
                       trial_lists=hparams["trial_lists"], splits=("train", "dev", "test"),
                       dev_ratio=hparams["dev_ratio"], skip_prep=hparams["skip_prep"])
    run_on_main(prepare_voxceleb, kwargs=prep_kwargs)
    prep = prepare_voxceleb(**prep_kwargs)  # instant: options unchanged since the run above
    train_set, valid_set, _ = dataio_prep(hparams, prep["csv"])
    brain = SpeakerBrain(modules=hparams["modules"], hparams=hparams, run_opts=run_opts,
                         checkpointer=hparams["checkpointer"])
    brain.fit(brain.hparams.epoch_counter, train_set, valid_set,
              train_loader_kwargs=hparams["train_dataloader_options"],
              valid_loader_kwargs=hparams["valid_dataloader_options"])
    if sb.utils.distributed.if_main_process():
        return evaluate_and_export(brain, hparams, prep)
    return None


if __name__ == "__main__":
    main()
