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

__all__ = ["score_manifest", "report_scores", "evaluate_manifest"]

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


def report_scores(data, out_dir, name, calibration=None, asv_scores=None):
    """Metrics and files of scored split ``data`` (from :func:`score_manifest`).

    Writes ``scores_<name>.txt`` (raw scores), with a ``calibration``
    ``scores_<name>.llr.txt`` (its LLRs), and ``results_<name>.md`` / ``.json``.

    Arguments
    ---------
    data : dict
        :func:`score_manifest` output.
    out_dir : str or Path
        Output folder.
    name : str
        Split name used in file names and titles.
    calibration : LinearCalibration, optional
        Score -> LLR map; its metrics go to ``result["calibrated"]``.
    asv_scores : str or Path, optional
        The organisers' ASV score file of this split (ASVspoof 2019 LA): min
        t-DCF and the ASV operating point go to ``result["tdcf"]``.

    Returns
    -------
    dict
        :func:`evaluate_cm` of the raw scores with ``per_attack`` /
        ``per_codec`` breakdowns, ``calibrated`` (:func:`evaluate_cm` of the
        LLRs and the ``calibration`` parameters) and ``tdcf`` when asked.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores, labels = data["scores"], data["labels"]
    write_scores(out_dir / f"scores_{name}.txt", data["ids"], scores)
    result = evaluate_cm(scores, labels)
    result["per_attack"] = breakdown(scores, labels, data["attacks"], pool_bonafide=True)
    codecs = set(data["codecs"]) - {"-"}
    result["per_codec"] = (breakdown(scores, labels, data["codecs"], pool_bonafide=False)
                           if codecs else {})
    rows = [("raw", result)]
    if calibration is not None:
        llrs = calibration(np.asarray(scores, dtype=np.float64))
        write_scores(out_dir / f"scores_{name}.llr.txt", data["ids"], llrs)
        result["calibrated"] = evaluate_cm(llrs, labels)
        result["calibrated"]["calibration"] = calibration.to_dict()
        rows.append(("calibrated (LLR)", result["calibrated"]))
    if asv_scores:
        from .tdcf import evaluate_tdcf

        result["tdcf"] = evaluate_tdcf(scores, labels, asv_scores)
    tables = [f"# {name}\n",
              f"{result['num_bonafide']} bona fide / {result['num_spoof']} spoof; ASVspoof5 "
              "costs (P_spoof 0.05, C_miss 1, C_fa 10); Cllr in bits\n",
              "| scores | EER % | minDCF | actDCF | Cllr | min Cllr |",
              "|---|---|---|---|---|---|"]
    tables += [f"| {label} | {r['eer']:.3f} | {r['min_dcf']:.4f} | {r['act_dcf']:.4f} | "
               f"{r['cllr']:.4f} | {r['min_cllr']:.4f} |" for label, r in rows]
    if "tdcf" in result:
        t = result["tdcf"]
        tables.append(f"\nmin t-DCF (ASVspoof 2019, organisers' ASV scores) {t['min_tdcf']:.4f}; "
                      f"ASV EER {t['asv_eer']:.3f} %\n")
    tables.append("\n" + breakdown_table(result["per_attack"], f"{name}: per attack"))
    if result["per_codec"]:
        tables.append(breakdown_table(result["per_codec"], f"{name}: per codec"))
    (out_dir / f"results_{name}.md").write_text("\n".join(tables) + "\n", encoding="utf-8")
    (out_dir / f"results_{name}.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    logger.info("%s: EER %.3f %%, minDCF %.4f, actDCF %.4f, Cllr %.4f%s", name, result["eer"],
                result["min_dcf"], result["act_dcf"], result["cllr"],
                f" (calibrated: actDCF {result['calibrated']['act_dcf']:.4f}, Cllr "
                f"{result['calibrated']['cllr']:.4f})" if calibration is not None else "")
    return result


def evaluate_manifest(score, manifest_csv, out_dir, name, calibration=None, asv_scores=None,
                      **score_kwargs):
    """Score a split (:func:`score_manifest`) and report it (:func:`report_scores`)."""
    data = score_manifest(score, manifest_csv, **score_kwargs)
    return report_scores(data, out_dir, name, calibration=calibration, asv_scores=asv_scores)
