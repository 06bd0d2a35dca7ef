#!/usr/bin/env python3
"""Speaker diarization with a pruned WavLM EEND: the recipe of every diarization corpus.

AMI, DIHARD3 and CHiME-6 (and any corpus ``data_prep/diarization_prepare.py``
reads) share this script; their yaml files choose the corpus layout. Three
pruning modes, chosen in the yaml:

* plain fine-tuning (``prune_units: ""``, no controller);
* in-situ: powerset task loss + Lagrangian sparsity term;
* distillation-guided (DiariZen): a frozen fine-tuned ``teacher`` WavLM, the
  layer-wise ``distill_loss`` and the sparsity term, ``task_weight: 0``.

After training: diarization of the evaluation split with the gated model,
DER tables, physical pruning, export, and the same evaluation through
``PrunedDiarizer`` (the exported folder). A pruned model is fine-tuned further
by training again from its exported ``wavlm/`` folder with ``prune_units: ""``.

Usage::

    python recipes/AMI/Diarization/train.py recipes/AMI/Diarization/hparams/wavlm_base_plus.yaml \\
        --data_folder=/data/AMI --wavlm_source=/models/wavlm-base-plus
"""

import json
from pathlib import Path

import speechbrain as sb
import torch

from data_prep.diarization_prepare import prepare_diarization
from speechbrain_pruning.audio import SAMPLE_RATE, read_segment
from speechbrain_pruning.diarization import PrunedDiarizer, build_diarizer, frame_labels, read_rttm
from speechbrain_pruning.diarization.embedders import (HiddenLayerEmbedder, load_embedder,
                                                       train_plda_on_recordings)
from speechbrain_pruning.diarization.interface import resolve_precision
from speechbrain_pruning.diarization.tune import tune_exported
from speechbrain_pruning.diarization.scoring import evaluate_recordings
from speechbrain_pruning.nn import unwrap_module
from speechbrain_pruning.pruning.recipe import TaskBrain, export_and_rescore, run_recipe


class DiarizationBrain(TaskBrain):
    """Powerset EEND on a (pruned) WavLM with a permutation-invariant loss."""

    def predict(self, wavs, wav_lens, stage=sb.Stage.TEST):
        hidden = self.encode(wavs, wav_lens, stage)
        return self.modules.eend(hidden, self.frame_lens(wav_lens, wavs))

    def task_loss(self, log_probs, batch, stage):
        labels, _ = batch.labels
        labels = labels.to(self.device)
        frames = min(labels.shape[1], log_probs.shape[1])
        powerset = unwrap_module(self.modules.eend).powerset
        return powerset.permutation_invariant_loss(log_probs[:, :frames], labels[:, :frames])


def prepare_kwargs(hparams):
    return dict(data_folder=hparams["data_folder"], save_folder=hparams["save_folder"],
                layout=hparams["layout"], chunk_seconds=hparams["chunk_seconds"],
                chunk_shift=hparams["chunk_shift"], splits=hparams["splits"],
                skip_prep=hparams["skip_prep"])


def dataio_prep(hparams, prep):
    """Chunk datasets with frame labels (most talkative ``max_speakers`` per chunk)."""
    num_frames = hparams["wavlm"].config.num_frames
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
        yield read_segment(wav, samples, random_offset=False, utt_id=chunk_id,
                           start=int(round(start * SAMPLE_RATE)),
                           stop=int(round(stop * SAMPLE_RATE)))
        ann = annotation(rttm, rec_id)
        labels, _ = frame_labels(ann, start, stop - start, num_frames(samples),
                                 max_speakers=hparams["max_speakers"]) if ann is not None \
            else (torch.zeros(num_frames(samples), hparams["max_speakers"]).numpy(), [])
        yield torch.as_tensor(labels, dtype=torch.float32)

    datasets = []
    for split in (hparams["train_split"], hparams["valid_split"]):
        dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(prep["csv"][split]["chunks"])
        dataset.add_dynamic_item(pipeline)
        dataset.set_output_keys(["id", "sig", "labels"])
        datasets.append(dataset)
    return datasets


def evaluate_and_export(brain, hparams, prep):
    """DER/JER of the gated model, export, DER/JER of the exported folder (the same pipeline).

    The speaker-embedding model (``embedding_source``) and the PLDA trained on
    its embeddings of the training split are shipped inside the export, so the
    exported folder runs exactly the pipeline evaluated here.
    """
    out = Path(hparams["output_folder"])
    inference = dict(hparams["inference"])
    brain.modules.eval()  # deterministic gates and no dropout, also for the PLDA's embeddings
    wavlm, eend = unwrap_module(brain.modules.wavlm), unwrap_module(brain.modules.eend)
    source = hparams.get("embedding_source")
    embedder = load_embedder(source, brain.device) if source else None
    extra_files = {"embedder": source} if source else {}
    if source:
        inference["embedder"] = "embedder"
    if inference.get("clustering", "vbx") == "vbx":
        plda = train_plda_on_recordings(
            embedder or HiddenLayerEmbedder(wavlm, inference.get("embedding_layer", 6),
                                            brain.device),
            prep["csv"][hparams["train_split"]]["recordings"], lda_dim=hparams["plda_dim"],
            window=inference["window"])
        plda.save(out / "plda.safetensors")
        extra_files["plda.safetensors"] = out / "plda.safetensors"
        inference["plda"] = "plda.safetensors"
    else:
        plda = None
    # gated vs exported is an exactness check: both in fp32 (bf16 rounds the gated and the
    # physically pruned model differently); the deployed precision is scored afterwards
    fp32 = dict(inference, inference_precision="fp32")
    gated = build_diarizer(wavlm, eend, embedder, fp32, brain.device, plda=plda)
    recordings = prep["csv"][hparams["eval_split"]]["recordings"]

    def evaluate(diarize, out_dir, stage):
        return evaluate_recordings(lambda path, uri: diarize(path, uri=uri).speaker_diarization,
                                   recordings, out_dir)

    def exported_fp32(model):
        model.set_params(inference_precision="fp32")
        return model

    results = export_and_rescore(
        brain, hparams,
        {"eend": (brain.modules.eend, (hparams["eend_class"], hparams["eend_kwargs"]))},
        PrunedDiarizer, evaluate, gated, exported_fp32,
        export_hparams=lambda results: inference,
        metrics=lambda results: {
            **{f"DER % (collar {c:g})": v["der %"] for c, v in results.items()},
            **{f"JER % (collar {c:g})": v["jer %"] for c, v in results.items()}},
        title="WavLM EEND diarization model pruned with speechbrain-pruning",
        folders=("eval_gated", "eval_exported"), extra_files=extra_files,
    )
    if hparams.get("tune_on_dev"):  # dev-set tuning written into the export, test re-scored
        report = tune_exported(out / "exported", prep["csv"][hparams["valid_split"]]["recordings"],
                               collar=hparams["tune_collar"], device=str(brain.device))
        model = PrunedDiarizer.from_hparams(source=out / "exported",
                                            run_opts={"device": str(brain.device)})
        results["tuning"] = report
        results["exported_tuned"] = evaluate(exported_fp32(model), out / "eval_exported_tuned",
                                             "exported")
    deployed = resolve_precision(inference.get("inference_precision"), brain.device)
    if deployed != "fp32":
        model = PrunedDiarizer.from_hparams(source=out / "exported",
                                            run_opts={"device": str(brain.device)})
        results[f"exported_{deployed}"] = evaluate(model, out / f"eval_exported_{deployed}",
                                                   "exported")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    return results


def main(argv=None):
    return run_recipe(argv, DiarizationBrain, prepare_diarization, prepare_kwargs, dataio_prep,
                      evaluate_and_export)


if __name__ == "__main__":
    main()
