"""Countermeasure (anti-spoofing) metrics for ASVspoof5 track 1.

Conventions used throughout this module:

* scores are *higher = more likely bona fide*; a trial is *accepted as bona
  fide* when ``score >= threshold``;
* labels are 1 (or ``"bonafide"``) for bona fide and 0 (or ``"spoof"``) for
  spoofed trials;
* ``P_miss(t)`` is the fraction of bona fide trials with ``score < t`` and
  ``P_fa(t)`` the fraction of spoofed trials with ``score >= t``.

The error-rate sweep is the one of the speaker verification metrics
(:func:`speechbrain_pruning.detection._sweep`, bona fide trials
playing the role of targets): one sort, ``O(n log n)``, so a million scores
take well under a second. The minimum Cllr re-uses that sweep as well: the
per-score class counts are read back from it and calibrated with the
pool-adjacent-violators (PAV) algorithm (Brümmer & du Preez, 2006).

The DCF follows the ASVspoof5 evaluation plan:
``DCF(t) = c_miss * (1 - p_spoof) * P_miss(t) + c_fa * p_spoof * P_fa(t)``,
normalised by ``min(c_miss * (1 - p_spoof), c_fa * p_spoof)`` (the cost of
the best system that ignores its input), with ``p_spoof = 0.05``,
``c_miss = 1`` and ``c_fa = 10`` by default.

Authors
 * speechbrain_pruning contributors
"""

import logging
import math
import os

import numpy as np

from ..detection import _eer_from_sweep, _sweep

__all__ = [
    "cm_eer",
    "cm_min_dcf",
    "cm_act_dcf",
    "bayes_threshold",
    "cllr",
    "min_cllr",
    "evaluate_cm",
    "breakdown",
    "breakdown_table",
    "read_scores",
    "write_scores",
]

logger = logging.getLogger(__name__)

STRING_LABELS = {"bonafide": True, "spoof": False}
SCORE_HEADER = ("filename", "cm-score")
LLR_CLIP = 1e6  # |LLR| bound replacing the +-inf of pure PAV bins
TABLE_COLUMNS = ("Group", "EER (%)", "minDCF", "actDCF", "Cllr", "#bona", "#spoof")


# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------
def _bonafide_mask(labels):
    """Boolean bona fide mask of 0/1 or ``"bonafide"``/``"spoof"`` labels.

    Strings are compared case-insensitively after stripping blanks; numeric
    labels (including booleans) must equal 0 or 1. Raises ValueError naming
    (up to ten of) the offending values.
    """
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype == object:
        try:
            labels = labels.astype(np.float64)
        except (TypeError, ValueError):
            labels = labels.astype(str)
    if labels.dtype.kind in "US":
        text = np.char.lower(np.char.strip(labels.astype(str)))
        is_bona = text == "bonafide"
        valid = is_bona | (text == "spoof")
    elif labels.dtype.kind in "biuf":
        is_bona = labels == 1
        valid = is_bona | (labels == 0)
    else:
        raise ValueError(f"unsupported label dtype {labels.dtype}")
    if not valid.all():
        bad = np.unique(labels[~valid])[:10].tolist()
        raise ValueError(
            f"labels must be 1/'bonafide' or 0/'spoof', got invalid values {bad}"
        )
    return is_bona


def _check_inputs(scores, labels):
    """Float64 scores [N] and bona fide mask [N]; both classes must occur."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    is_bona = _bonafide_mask(labels)
    if scores.shape != is_bona.shape:
        raise ValueError(
            f"scores and labels differ in length: {scores.size} vs {is_bona.size}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (found NaN or inf)")
    num_bona = int(is_bona.sum())
    if num_bona == 0 or num_bona == is_bona.size:
        raise ValueError(
            "need at least one bona fide and one spoof trial, got "
            f"{num_bona} bona fide and {is_bona.size - num_bona} spoof"
        )
    return scores, is_bona


def _check_costs(p_spoof, c_miss, c_fa):
    """Raises ValueError unless ``0 < p_spoof < 1`` and both costs are positive."""
    if not 0.0 < p_spoof < 1.0:
        raise ValueError(f"p_spoof must lie in (0, 1), got {p_spoof}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")


def _cm_sweep(scores, is_bona):
    """:func:`_sweep` with bona fide as targets: ``(p_miss, p_fa, thresholds)``."""
    return _sweep(scores, is_bona.astype(np.int8))


# --------------------------------------------------------------------------
# EER and detection costs
# --------------------------------------------------------------------------
def _normalised_dcf(p_miss, p_fa, p_spoof, c_miss, c_fa):
    """ASVspoof5 DCF divided by the cost of the best input-independent system."""
    cost_miss = c_miss * (1.0 - p_spoof)
    cost_fa = c_fa * p_spoof
    return (cost_miss * p_miss + cost_fa * p_fa) / min(cost_miss, cost_fa)


def _min_dcf_from_sweep(sweep, p_spoof, c_miss, c_fa):
    """Minimum normalised DCF and its (smallest) threshold over a sweep."""
    p_miss, p_fa, thresholds = sweep
    dcf = _normalised_dcf(p_miss, p_fa, p_spoof, c_miss, c_fa)
    i = int(np.argmin(dcf))
    return float(dcf[i]), float(thresholds[i])


def bayes_threshold(p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    """Bayes decision threshold for natural-log LLR scores.

    ``t = -log(c_miss * (1 - p_spoof) / (c_fa * p_spoof))``: accepting a trial
    as bona fide when its LLR is ``>= t`` minimises the expected cost.

    Arguments
    ---------
    p_spoof : float
        Prior probability of a spoofed trial, in ``(0, 1)``.
    c_miss, c_fa : float
        Costs of rejecting a bona fide trial and of accepting a spoof.

    Returns
    -------
    float
        The threshold (``log(0.5 / 0.95)`` with the ASVspoof5 defaults).

    Example
    -------
    >>> round(bayes_threshold(), 6)
    -0.641854
    >>> round(bayes_threshold(0.5, c_miss=1.0, c_fa=math.e), 6)
    1.0
    """
    _check_costs(p_spoof, c_miss, c_fa)
    return -math.log(c_miss * (1.0 - p_spoof) / (c_fa * p_spoof))


def cm_eer(scores, labels):
    """Equal error rate between bona fide (targets) and spoofed trials.

    Same definition as :func:`speechbrain_pruning.detection.eer`:
    the miss and false-alarm rates are evaluated at every unique score and
    linearly interpolated where they cross.

    Arguments
    ---------
    scores : array_like, shape [N]
        Countermeasure scores (higher = more likely bona fide), finite.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.

    Returns
    -------
    eer : float
        A fraction in ``[0, 1]`` (0.05 means 5 %).
    threshold : float
        The (interpolated) score threshold of the EER operating point.

    Raises
    ------
    ValueError
        Lengths differ, non-finite scores, invalid labels or a missing class.

    Example
    -------
    >>> value, threshold = cm_eer([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0])
    >>> round(value, 6), round(threshold, 6)
    (0.333333, 0.733333)
    >>> cm_eer([3.0, 2.0, 1.0], ["bonafide", "bonafide", "spoof"])
    (0.0, 2.0)
    """
    return _eer_from_sweep(*_cm_sweep(*_check_inputs(scores, labels)))


def cm_min_dcf(scores, labels, p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    """Minimum normalised detection cost (ASVspoof5 minDCF).

    The normalised DCF (see the module docstring) is minimised over every
    unique score and ``+inf``, which includes accepting and rejecting every
    trial, so the result never exceeds 1.

    Arguments
    ---------
    scores : array_like, shape [N]
        Countermeasure scores (higher = more likely bona fide), finite.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.
    p_spoof : float
        Prior probability of a spoofed trial, in ``(0, 1)``.
    c_miss, c_fa : float
        Costs of rejecting a bona fide trial and of accepting a spoof.

    Returns
    -------
    min_dcf : float
        The normalised minimum cost (0 = perfect, 1 = no better than trivial).
    threshold : float
        The threshold reaching it (the smallest one on ties; ``inf`` if
        rejecting every trial is optimal).

    Example
    -------
    >>> cm_min_dcf([4.0, 3.0, 2.0, 1.0], [1, 0, 1, 0])
    (0.5, 2.0)
    >>> cm_min_dcf([4.0, 3.0, 2.0, 1.0], [1, 1, 0, 0])
    (0.0, 3.0)
    """
    _check_costs(p_spoof, c_miss, c_fa)
    sweep = _cm_sweep(*_check_inputs(scores, labels))
    return _min_dcf_from_sweep(sweep, p_spoof, c_miss, c_fa)


def _act_dcf(scores, is_bona, p_spoof, c_miss, c_fa):
    """Normalised DCF at the Bayes threshold (inputs already checked)."""
    threshold = bayes_threshold(p_spoof, c_miss, c_fa)
    p_miss = np.mean(scores[is_bona] < threshold)
    p_fa = np.mean(scores[~is_bona] >= threshold)
    return float(_normalised_dcf(p_miss, p_fa, p_spoof, c_miss, c_fa))


def cm_act_dcf(scores, labels, p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    """Actual normalised detection cost at the Bayes threshold (actDCF).

    Trials are accepted as bona fide when ``score >= t`` with
    ``t = -log(c_miss * (1 - p_spoof) / (c_fa * p_spoof))`` (natural log,
    see :func:`bayes_threshold`). This is only meaningful if the scores are
    **calibrated log-likelihood ratios** ``log p(x | bona fide) / p(x | spoof)``
    (natural log); for uncalibrated scores actDCF may be far above minDCF
    (and even above 1).

    Arguments
    ---------
    scores : array_like, shape [N]
        Natural-log LLR scores (higher = more likely bona fide), finite.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.
    p_spoof : float
        Prior probability of a spoofed trial, in ``(0, 1)``.
    c_miss, c_fa : float
        Costs of rejecting a bona fide trial and of accepting a spoof.

    Returns
    -------
    float
        The normalised DCF at the Bayes threshold (``>=`` minDCF).

    Example
    -------
    >>> # t = log(0.5 / 0.95) = -0.64 misses one of two bona fide trials:
    >>> # 0.95 * 1/2 + 0.5 * 0, normalised by min(0.95, 0.5).
    >>> cm_act_dcf([2.0, -1.0, -3.0, -2.0], [1, 1, 0, 0])
    0.95
    """
    _check_costs(p_spoof, c_miss, c_fa)
    return _act_dcf(*_check_inputs(scores, labels), p_spoof, c_miss, c_fa)


# --------------------------------------------------------------------------
# Cllr and minimum Cllr (PAV)
# --------------------------------------------------------------------------
def _cllr_from_counts(llrs, num_bona, num_spoof):
    """Cllr (bits) of LLR bins holding ``num_bona`` / ``num_spoof`` trials each."""
    bona_cost = np.sum(num_bona * np.logaddexp(0.0, -llrs)) / np.sum(num_bona)
    spoof_cost = np.sum(num_spoof * np.logaddexp(0.0, llrs)) / np.sum(num_spoof)
    return float(0.5 * (bona_cost + spoof_cost) / math.log(2.0))


def cllr(scores, labels):
    """Log-likelihood-ratio cost in bits (Brümmer & du Preez, 2006).

    ``Cllr = 0.5 * (mean(log2(1 + exp(-s_bona))) + mean(log2(1 + exp(s_spoof))))``
    with the scores taken as natural-log LLRs; computed with
    ``np.logaddexp`` so that large scores neither overflow nor lose precision.
    0 is perfect, 1 is a system that always outputs LLR 0.

    Arguments
    ---------
    scores : array_like, shape [N]
        Natural-log LLR scores (higher = more likely bona fide), finite.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.

    Returns
    -------
    float
        Cllr in bits.

    Example
    -------
    >>> cllr([0.0, 0.0], [1, 0])
    1.0
    >>> round(cllr([math.log(3), -math.log(3)], ["bonafide", "spoof"]), 6)  # log2(4/3)
    0.415037
    """
    scores, is_bona = _check_inputs(scores, labels)
    return _cllr_from_counts(scores, is_bona, ~is_bona)


def _unique_counts(sweep, num_bona, num_spoof):
    """Bona fide / spoof counts per unique score (ascending) from a sweep."""
    p_miss, p_fa, _ = sweep
    bona = np.rint(np.diff(p_miss) * num_bona).astype(np.int64)
    spoof = np.rint(-np.diff(p_fa) * num_spoof).astype(np.int64)
    return bona, bona + spoof


def _pool_pass(bona, total):
    """Merges every maximal run of bins with non-increasing bona fide rate.

    Two adjacent bins with ``rate[k] >= rate[k + 1]`` always share a block of
    the isotonic (PAV) solution, so whole runs can be pooled at once. Rates
    are compared by exact integer cross-multiplication.
    """
    rises = bona[1:] * total[:-1] > bona[:-1] * total[1:]
    starts = np.flatnonzero(np.concatenate(([True], rises)))
    return np.add.reduceat(bona, starts), np.add.reduceat(total, starts)


def _pav_stack(bona, total):
    """Classic stack-based pool-adjacent-violators on integer bins."""
    out_bona, out_total = [], []
    for b, w in zip(bona.tolist(), total.tolist()):
        while out_bona and out_bona[-1] * w >= b * out_total[-1]:
            b += out_bona.pop()
            w += out_total.pop()
        out_bona.append(b)
        out_total.append(w)
    return np.array(out_bona, dtype=np.int64), np.array(out_total, dtype=np.int64)


def _pav(bona, total):
    """Isotonic (non-decreasing) bona fide rates of ordered bins.

    Vectorised pooling passes while they shrink the problem quickly, then the
    stack algorithm finishes in linear time. Returns the pooled
    ``(bona, total)`` counts, with strictly increasing rates.
    """
    while True:
        size = bona.size
        bona, total = _pool_pass(bona, total)
        if bona.size == size:
            return bona, total
        if bona.size > 0.9 * size:
            return _pav_stack(bona, total)


def _min_cllr_from_sweep(sweep, num_bona, num_spoof):
    """Minimum Cllr from a sweep: PAV, posteriors -> LLRs, Cllr."""
    bona, total = _pav(*_unique_counts(sweep, num_bona, num_spoof))
    spoof = total - bona
    with np.errstate(divide="ignore"):
        log_odds = np.log(bona.astype(np.float64)) - np.log(spoof.astype(np.float64))
    llrs = np.clip(log_odds - math.log(num_bona / num_spoof), -LLR_CLIP, LLR_CLIP)
    return _cllr_from_counts(llrs, bona, spoof)


def min_cllr(scores, labels):
    """Cllr after the optimal monotonic calibration of the scores (bits).

    The scores are sorted (trials with equal scores share one bin), the bona
    fide posterior of each bin is fitted by isotonic regression with the
    pool-adjacent-violators algorithm, and the posteriors are turned into
    LLRs by removing the empirical prior log-odds
    ``log(num_bonafide / num_spoof)``. Bins holding one class only give
    ``+-inf`` LLRs, clipped to ``+-1e6`` (their cost is 0 either way).
    The result depends only on the order of the scores (and their ties): it
    is invariant to any strictly increasing transform that keeps distinct
    scores distinct, and ``min_cllr <= cllr`` always.

    Arguments
    ---------
    scores : array_like, shape [N]
        Countermeasure scores (higher = more likely bona fide), finite.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.

    Returns
    -------
    float
        Minimum Cllr in bits (0 for perfectly separated scores).

    Example
    -------
    >>> # PAV pools the middle pair (rate 1/2 -> LLR 0), the ends are certain.
    >>> min_cllr([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1])
    0.5
    >>> min_cllr([1.0, 2.0, 3.0], ["spoof", "bonafide", "bonafide"])
    0.0
    """
    scores, is_bona = _check_inputs(scores, labels)
    num_bona = int(is_bona.sum())
    return _min_cllr_from_sweep(
        _cm_sweep(scores, is_bona), num_bona, is_bona.size - num_bona
    )


# --------------------------------------------------------------------------
# Summary and breakdowns
# --------------------------------------------------------------------------
def evaluate_cm(scores, labels, p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    """All ASVspoof5 track 1 metrics of a set of countermeasure scores.

    EER, minDCF and minimum Cllr share one sorted sweep.

    Arguments
    ---------
    scores : array_like, shape [N]
        Countermeasure scores (higher = more likely bona fide), finite;
        natural-log LLRs for ``act_dcf`` and ``cllr`` to be meaningful.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.
    p_spoof, c_miss, c_fa : float
        DCF parameters (ASVspoof5 defaults).

    Returns
    -------
    dict
        ``eer`` in **percent** (unlike :func:`cm_eer`), ``eer_threshold``,
        ``min_dcf``, ``min_dcf_threshold``, ``act_dcf``, ``cllr`` and
        ``min_cllr`` (bits), ``num_bonafide`` and ``num_spoof``; plain
        Python numbers.

    Example
    -------
    >>> report = evaluate_cm([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0])
    >>> round(report["eer"], 4), report["num_bonafide"], report["num_spoof"]
    (33.3333, 3, 2)
    >>> report["min_cllr"] <= report["cllr"]
    True
    """
    _check_costs(p_spoof, c_miss, c_fa)
    scores, is_bona = _check_inputs(scores, labels)
    num_bona = int(is_bona.sum())
    num_spoof = is_bona.size - num_bona
    sweep = _cm_sweep(scores, is_bona)
    eer_value, eer_threshold = _eer_from_sweep(*sweep)
    dcf, dcf_threshold = _min_dcf_from_sweep(sweep, p_spoof, c_miss, c_fa)
    return {
        "eer": 100.0 * eer_value,
        "eer_threshold": eer_threshold,
        "min_dcf": dcf,
        "min_dcf_threshold": dcf_threshold,
        "act_dcf": _act_dcf(scores, is_bona, p_spoof, c_miss, c_fa),
        "cllr": _cllr_from_counts(scores, is_bona, ~is_bona),
        "min_cllr": _min_cllr_from_sweep(sweep, num_bona, num_spoof),
        "num_bonafide": num_bona,
        "num_spoof": num_spoof,
    }


def _group_masks(groups, is_bona, pool_bonafide):
    """``(group value, trial mask)`` pairs, groups in sorted order."""
    groups = np.asarray(groups).reshape(-1)
    if groups.shape != is_bona.shape:
        raise ValueError(
            f"groups and labels differ in length: {groups.size} vs {is_bona.size}"
        )
    values = np.unique(groups[~is_bona] if pool_bonafide else groups)
    for value in values.tolist():
        in_group = groups == value
        yield value, (in_group | is_bona) if pool_bonafide else in_group


def breakdown(
    scores,
    labels,
    groups,
    metric="eer",
    pool_bonafide=True,
    p_spoof=0.05,
    c_miss=1.0,
    c_fa=10.0,
):
    """Metrics per group of trials (per attack or per codec).

    With ``pool_bonafide=True`` (attacks) each group holds **all** bona fide
    trials and the spoofed trials of that group value; the group values of
    bona fide rows are ignored (typically ``"bonafide"`` or ``"-"``). With
    ``pool_bonafide=False`` (codecs, conditions) each group holds the bona
    fide and spoofed trials sharing the group value. Groups without bona fide
    or without spoofed trials are skipped with a logged warning.

    Arguments
    ---------
    scores : array_like, shape [N]
        Countermeasure scores (higher = more likely bona fide), finite.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``.
    groups : array_like, shape [N]
        Group value of each trial (e.g. attack id ``"A17"`` or codec).
    metric : str or None
        Key of :func:`evaluate_cm`'s dict by which the returned groups are
        ordered, worst (highest) first; None orders them by group value.
    pool_bonafide : bool
        Whether every group is compared against all bona fide trials.
    p_spoof, c_miss, c_fa : float
        DCF parameters (ASVspoof5 defaults).

    Returns
    -------
    dict
        ``group value -> evaluate_cm dict``.

    Example
    -------
    >>> scores = [3.0, 2.0, 1.0, 0.0, 2.5]
    >>> labels = ["bonafide", "bonafide", "spoof", "spoof", "spoof"]
    >>> attacks = ["-", "-", "A01", "A01", "A02"]
    >>> result = breakdown(scores, labels, attacks)
    >>> {attack: round(r["eer"], 1) for attack, r in result.items()}
    {'A02': 50.0, 'A01': 0.0}
    """
    _check_costs(p_spoof, c_miss, c_fa)
    scores, is_bona = _check_inputs(scores, labels)
    results = {}
    for value, mask in _group_masks(groups, is_bona, pool_bonafide):
        num_bona = int(np.count_nonzero(is_bona[mask]))
        if num_bona == 0 or num_bona == np.count_nonzero(mask):
            logger.warning(
                "breakdown: group %r skipped (%d bona fide, %d spoof trials)",
                value, num_bona, int(np.count_nonzero(mask)) - num_bona,
            )
            continue
        results[value] = evaluate_cm(scores[mask], is_bona[mask], p_spoof, c_miss, c_fa)
    return _order_results(results, metric)


def _order_results(results, metric):
    """Orders a breakdown by ``metric`` (descending, stable) or keeps it."""
    if metric is None or not results:
        return results
    if metric not in next(iter(results.values())):
        raise ValueError(f"unknown metric {metric!r}")
    ranked = sorted(results, key=lambda group: -results[group][metric])
    return {group: results[group] for group in ranked}


def _group_sort_key(group):
    """Numbers first (by value), then everything else by its text."""
    if isinstance(group, (int, float)) and not isinstance(group, bool):
        return (0, group, "")
    return (1, 0, str(group))


def _table_row(group, result):
    """One Markdown row of :func:`breakdown_table`."""
    cells = [
        str(group).replace("|", "\\|"),
        f"{result['eer']:.2f}",
        f"{result['min_dcf']:.4f}",
        f"{result['act_dcf']:.4f}",
        f"{result['cllr']:.4f}",
        str(result["num_bonafide"]),
        str(result["num_spoof"]),
    ]
    return "| " + " | ".join(cells) + " |"


def breakdown_table(breakdown_dict, title=None):
    """Markdown table of a :func:`breakdown` result, sorted by group name.

    Arguments
    ---------
    breakdown_dict : dict
        ``group -> evaluate_cm dict``.
    title : str, optional
        Written as a ``###`` heading above the table.

    Returns
    -------
    str
        The table (columns Group, EER (%), minDCF, actDCF, Cllr, #bona,
        #spoof), ending with a newline.

    Example
    -------
    >>> row = dict(eer=1.5, min_dcf=0.04, act_dcf=0.1, cllr=0.2, num_bonafide=9, num_spoof=3)
    >>> print(breakdown_table({"A02": row, "A01": row}, "Per attack"))
    ### Per attack
    <BLANKLINE>
    | Group | EER (%) | minDCF | actDCF | Cllr | #bona | #spoof |
    |:---|---:|---:|---:|---:|---:|---:|
    | A01 | 1.50 | 0.0400 | 0.1000 | 0.2000 | 9 | 3 |
    | A02 | 1.50 | 0.0400 | 0.1000 | 0.2000 | 9 | 3 |
    <BLANKLINE>
    """
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(TABLE_COLUMNS) + " |")
    lines.append("|:---" + "|---:" * (len(TABLE_COLUMNS) - 1) + "|")
    for group in sorted(breakdown_dict, key=_group_sort_key):
        lines.append(_table_row(group, breakdown_dict[group]))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Score files
# --------------------------------------------------------------------------
def _parse_score_line(fields):
    """``(id, score)`` of a split line, or None if it is malformed."""
    if len(fields) != 2:
        return None
    try:
        score = float(fields[1])
    except ValueError:
        return None
    return (fields[0], score) if math.isfinite(score) else None


def _is_header(fields):
    """Whether split fields are the ``filename cm-score`` header."""
    return tuple(field.lower() for field in fields) == SCORE_HEADER


def read_scores(path):
    """Reads an ASVspoof score file (``filename score`` per line).

    Fields are separated by tabs or spaces; blank lines are skipped and a
    first line ``filename<TAB>cm-score`` (the ASVspoof5 header) is accepted.
    The file is decoded as UTF-8 (a byte-order mark is ignored).

    Arguments
    ---------
    path : str or os.PathLike
        The score file.

    Returns
    -------
    ids : list of str
        File ids in file order.
    scores : np.ndarray, shape [N]
        Float64 scores.

    Raises
    ------
    ValueError
        If a line is not ``id score`` with a finite score (the message names
        the file, the 1-based line number and the line).

    Example
    -------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "scores.txt")
    ...     with open(path, "w", encoding="utf-8") as f:
    ...         _ = f.write("filename\\tcm-score\\nE_0001\\t1.5\\nE_0002 -2\\n")
    ...     read_scores(path)
    (['E_0001', 'E_0002'], array([ 1.5, -2. ]))
    """
    ids, scores = [], []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or (not ids and _is_header(fields)):
                continue
            parsed = _parse_score_line(fields)
            if parsed is None:
                raise ValueError(
                    f"{os.fspath(path)}, line {number}: cannot parse score line "
                    f"{line.rstrip(chr(10))!r}; expected 'filename score'"
                )
            ids.append(parsed[0])
            scores.append(parsed[1])
    return ids, np.array(scores, dtype=np.float64)


def write_scores(path, ids, scores, header=True):
    """Writes an ASVspoof5 score file: ``filename<TAB>score`` per line.

    Scores are written with ``repr`` precision, so :func:`read_scores` gives
    them back exactly. Missing parent folders are created.

    Arguments
    ---------
    path : str or os.PathLike
        Output file.
    ids : sequence of str, length N
        File ids (no whitespace).
    scores : array_like, shape [N]
        Scores, higher = more likely bona fide.
    header : bool
        Whether to start with the ``filename<TAB>cm-score`` header line.

    Returns
    -------
    str or os.PathLike
        ``path``, as given.

    Example
    -------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_scores(os.path.join(folder, "s.txt"), ["E_1", "E_2"], [0.25, -3])
    ...     open(path, encoding="utf-8").read().splitlines()
    ['filename\\tcm-score', 'E_1\\t0.25', 'E_2\\t-3.0']
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(ids) != scores.size:
        raise ValueError(f"ids and scores differ in length: {len(ids)} vs {scores.size}")
    bad = [name for name in ids if str(name).split() != [str(name)]]
    if bad:
        raise ValueError(f"ids must be non-empty and contain no whitespace: {bad[:5]}")
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        if header:
            handle.write("\t".join(SCORE_HEADER) + "\n")
        handle.writelines(f"{name}\t{score!r}\n" for name, score in zip(ids, scores.tolist()))
    return path
