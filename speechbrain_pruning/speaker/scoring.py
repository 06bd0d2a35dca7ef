"""Speaker-verification evaluation: embed every trial file once, score, measure, plot.

Used by the VoxCeleb recipe after training and by the demo; works with any
``encode(wavs [B, S], wav_lens [B]) -> [B, E] or [B, 1, E]`` function (a Brain's
modules or a :class:`~speechbrain_pruning.speaker.PrunedSpeakerRecognition`).
"""

import logging
from pathlib import Path

import torch

from ..audio import embed_files
from .metrics import evaluate, plot_det, read_trials, score_trials

__all__ = ["speaker_cohort", "cohort_from_manifest", "evaluate_trial_lists"]

logger = logging.getLogger(__name__)


def speaker_cohort(embeddings, speakers):
    """Per-speaker mean embeddings ``[C, E]`` (the AS-norm cohort).

    ``speakers`` maps utterance id -> speaker id.
    """
    grouped = {}
    for utt_id, emb in embeddings.items():
        grouped.setdefault(speakers[utt_id], []).append(
            torch.nn.functional.normalize(emb, dim=0)
        )
    return torch.stack([torch.stack(v).mean(0) for _, v in sorted(grouped.items())])


def cohort_from_manifest(encode, manifest_csv, per_speaker, **embed_kwargs):
    """AS-norm cohort from a training manifest (``ID``, ``wav``, ``spk_id`` columns).

    Embeds up to ``per_speaker`` utterances of every speaker and returns the
    per-speaker means ``[C, E]`` (None when ``per_speaker`` is 0).
    """
    if not per_speaker:
        return None
    from speechbrain.dataio.dataio import load_data_csv

    rows, count = {}, {}
    for utt_id, row in load_data_csv(str(manifest_csv)).items():
        if count.get(row["spk_id"], 0) < per_speaker:
            count[row["spk_id"]] = count.get(row["spk_id"], 0) + 1
            rows[utt_id] = row
    embeddings = embed_files(encode, {k: r["wav"] for k, r in rows.items()},
                                  desc="cohort", **embed_kwargs)
    return speaker_cohort(embeddings, {k: r["spk_id"] for k, r in rows.items()})


def evaluate_trial_lists(encode, trial_lists, utterances, out_dir, cohort=None, top_n=300,
                         batch_size=4, max_seconds=None, progress=True):
    """Score every trial list and write scores, metrics and a DET plot.

    Arguments
    ---------
    trial_lists : dict
        name (e.g. ``"vox1_O"``) -> trial file path (``label enrol test``).
    utterances : dict
        trial id -> audio path, covering every id of every list.
    out_dir : str or Path
        Receives ``scores_<name>.txt``, ``det_<name>.png`` (and ``det.png``
        with all lists when there are several).
    cohort : tensor ``[C, E]``, optional
        AS-norm cohort (see :func:`speaker_cohort`); None = plain cosine.

    Returns
    -------
    dict
        name -> :func:`~speechbrain_pruning.detection.evaluate` dict (EER in %);
        with a cohort, its ``"cosine"`` entry holds the un-normalised figures.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = {name: read_trials(path) for name, path in trial_lists.items()}
    needed = {utt for lst in trials.values() for _, a, b in lst for utt in (a, b)}
    missing = sorted(needed - set(utterances))
    if missing:
        raise KeyError(f"{len(missing)} trial utterances have no audio path, e.g. {missing[0]}")
    embeddings = embed_files(
        encode, {u: utterances[u] for u in sorted(needed)}, batch_size, max_seconds, progress
    )
    results, curves = {}, {}
    for name, lst in trials.items():
        scores, labels = score_trials(embeddings, lst, cohort=cohort, top_n=top_n)
        with open(out_dir / f"scores_{name}.txt", "w", encoding="utf-8") as fout:
            for (label, enrol, test), score in zip(lst, scores):
                fout.write(f"{enrol} {test} {score:.6f} {'target' if label else 'nontarget'}\n")
        results[name] = evaluate(scores, labels)
        if cohort is not None:  # raw cosine figures too: interfaces threshold raw cosine
            results[name]["cosine"] = evaluate(*score_trials(embeddings, lst))
        curves[name] = (scores, labels)
        plot_det({name: curves[name]}, out_dir / f"det_{name}.png", title=f"DET {name}")
        logger.info("%s: EER %.3f %%, minDCF %.4f (%d trials)", name,
                    results[name]["eer"], results[name]["min_dcf"], len(lst))
    if len(curves) > 1:
        plot_det(curves, out_dir / "det.png", title="DET")
    return results

