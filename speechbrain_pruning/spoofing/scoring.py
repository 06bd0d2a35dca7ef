"""Countermeasure evaluation: score every file of a manifest, write the
ASVspoof score file, overall metrics and per-attack / per-codec tables.

Works with any ``score(wavs [B, S], wav_lens [B]) -> [B]`` function (a Brain's
modules or :class:`~speechbrain_pruning.spoofing.PrunedSpoofDetector`).
"""

import json
import logging
from pathlib import Path

import numpy as np

from ..audio import embed_files
from .metrics import breakdown, breakdown_table, evaluate_cm, write_scores

__all__ = ["score_manifest", "evaluate_manifest"]

logger = logging.getLogger(__name__)


def score_manifest(score, manifest_csv, batch_size=8, max_seconds=None, progress=True):
    """Scores of every row of a manifest (``ID``, ``wav``, ``label``, ``attack``, ``codec``).

    Returns
    -------
    dict
        ``ids``, ``scores`` (ndarray), ``labels`` (1 = bona fide),
        ``attacks``, ``codecs`` in manifest order.
    """
    from speechbrain.dataio.dataio import load_data_csv

    rows = load_data_csv(str(manifest_csv))
    scored = embed_files(
        lambda wavs, lens: score(wavs, lens).reshape(-1, 1),
        {utt: row["wav"] for utt, row in rows.items()},
        batch_size=batch_size, max_seconds=max_seconds, progress=progress, desc="scoring",
    )
    ids = list(rows)
    return {
        "ids": ids,
        "scores": np.array([float(scored[i][0]) for i in ids]),
        "labels": np.array([1 if rows[i]["label"] == "bonafide" else 0 for i in ids]),
        "attacks": [rows[i]["attack"] for i in ids],
        "codecs": [rows[i]["codec"] for i in ids],
    }


def evaluate_manifest(score, manifest_csv, out_dir, name, **score_kwargs):
    """Score a split and write ``scores_<name>.txt``, ``results_<name>.md`` / ``.json``.

    Returns the overall :func:`evaluate_cm` dict with ``"per_attack"`` and
    ``"per_codec"`` breakdowns added.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = score_manifest(score, manifest_csv, **score_kwargs)
    write_scores(out_dir / f"scores_{name}.txt", data["ids"], data["scores"])
    result = evaluate_cm(data["scores"], data["labels"])
    result["per_attack"] = breakdown(data["scores"], data["labels"], data["attacks"],
                                     pool_bonafide=True)
    codecs = set(data["codecs"]) - {"-"}
    result["per_codec"] = (
        breakdown(data["scores"], data["labels"], data["codecs"], pool_bonafide=False)
        if codecs else {}
    )
    tables = [f"# {name}\n",
              f"EER {result['eer']:.3f} %, minDCF {result['min_dcf']:.4f}, "
              f"actDCF {result['act_dcf']:.4f}, Cllr {result['cllr']:.4f} bits, "
              f"{result['num_bonafide']} bona fide / {result['num_spoof']} spoof\n",
              breakdown_table(result["per_attack"], f"{name}: per attack")]
    if result["per_codec"]:
        tables.append(breakdown_table(result["per_codec"], f"{name}: per codec"))
    (out_dir / f"results_{name}.md").write_text("\n".join(tables) + "\n", encoding="utf-8")
    (out_dir / f"results_{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    logger.info("%s: EER %.3f %%, minDCF %.4f, actDCF %.4f, Cllr %.4f", name, result["eer"],
                result["min_dcf"], result["act_dcf"], result["cllr"])
    return result
