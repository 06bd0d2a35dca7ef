"""Binary detection metrics shared by speaker verification and anti-spoofing.

Conventions:

* a trial is *accepted* when ``score >= threshold``;
* ``FNR(thr)`` (miss rate) is the fraction of target trials with
  ``score < thr`` and ``FPR(thr)`` (false-alarm rate) the fraction of
  non-target trials with ``score >= thr``;
* the operating points are evaluated at every unique score (so trials with the
  same score are always on the same side of the threshold) plus ``+inf``
  (reject everything). The smallest unique score accepts everything, so both
  extremes are included.

All metrics share one sorted sweep (:func:`_sweep`), ``O(n log n)`` time and
``O(n)`` memory, so a million trials take well under a second.
"""

import math
import os

import numpy as np

__all__ = ["eer", "min_dcf", "det_curve", "plot_det", "evaluate"]

DET_TICKS_PERCENT = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40)
DET_LIMITS = (0.0005, 0.5)


# --------------------------------------------------------------------------
# Error-rate sweep shared by EER, minDCF and the DET curve
# --------------------------------------------------------------------------
def _check_scores_labels(scores, labels):
    """Validates and converts to 1-D float64 scores and boolean target mask."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if scores.shape != labels.shape:
        raise ValueError(
            f"scores and labels differ in length: {scores.size} vs {labels.size}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (found NaN or inf)")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 (non-target) or 1 (target)")
    is_target = labels == 1
    if not is_target.any() or is_target.all():
        raise ValueError(
            "need at least one target and one non-target trial, got "
            f"{int(is_target.sum())} targets and {int((~is_target).sum())} "
            "non-targets"
        )
    return scores, is_target


def _sweep(scores, labels):
    """Error rates at every unique score (ascending) and at ``+inf``.

    Arguments
    ---------
    scores : array_like, shape [N]
    labels : array_like, shape [N]
        1 for target, 0 for non-target trials.

    Returns
    -------
    fnr, fpr, thresholds : np.ndarray, shape [U + 1]
        ``fnr`` is non-decreasing from 0, ``fpr`` non-increasing to 0,
        ``thresholds`` ascending with ``thresholds[-1] == inf``.
    """
    scores, is_target = _check_scores_labels(scores, labels)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    # Targets / non-targets strictly below position k of the sorted list.
    targets_below = np.concatenate(([0], np.cumsum(is_target[order])))
    nontargets_below = np.arange(scores.size + 1) - targets_below
    starts = np.flatnonzero(np.diff(sorted_scores, prepend=-np.inf) != 0)
    boundaries = np.append(starts, scores.size)
    num_target = targets_below[-1]
    num_nontarget = nontargets_below[-1]
    fnr = targets_below[boundaries] / num_target
    fpr = (num_nontarget - nontargets_below[boundaries]) / num_nontarget
    thresholds = np.append(sorted_scores[starts], np.inf)
    return fnr, fpr, thresholds


def det_curve(scores, labels):
    """Detection error trade-off: error rates at every candidate threshold.

    Arguments
    ---------
    scores : array_like, shape [N]
        Trial scores (higher = more likely target).
    labels : array_like, shape [N]
        1 for target, 0 for non-target trials.

    Returns
    -------
    fpr : np.ndarray, shape [U + 1]
        False-alarm rate (non-targets with ``score >= threshold``), decreasing.
    fnr : np.ndarray, shape [U + 1]
        Miss rate (targets with ``score < threshold``), increasing.
    thresholds : np.ndarray, shape [U + 1]
        The ``U`` unique scores in ascending order followed by ``inf``.

    Example
    -------
    >>> fpr, fnr, thr = det_curve([0.9, 0.2, 0.6, 0.6], [1, 0, 1, 0])
    >>> fpr.tolist(), fnr.tolist(), thr.tolist()
    ([1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 1.0], [0.2, 0.6, 0.9, inf])
    """
    fnr, fpr, thresholds = _sweep(scores, labels)
    return fpr, fnr, thresholds


def _interpolate(a, b, alpha):
    """``a + alpha * (b - a)``, or the finite one of ``a``/``b`` if one is inf."""
    if math.isinf(b):
        return float(a)
    return float(a + alpha * (b - a))


def _eer_from_sweep(fnr, fpr, thresholds):
    """EER and threshold from the output of :func:`_sweep` (see :func:`eer`)."""
    diff = fnr - fpr  # non-decreasing, -1 at the first point, +1 at the last
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0:
        return float(fnr[i]), float(thresholds[i])
    alpha = -diff[i - 1] / (diff[i] - diff[i - 1])
    value = fnr[i - 1] + alpha * (fnr[i] - fnr[i - 1])
    return float(value), _interpolate(thresholds[i - 1], thresholds[i], alpha)


def _check_costs(p_target, c_miss, c_fa):
    """Raises ValueError unless ``0 < p_target < 1`` and both costs are positive."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must lie in (0, 1), got {p_target}")
    if c_miss <= 0 or c_fa <= 0:
        raise ValueError(f"costs must be positive, got {c_miss} and {c_fa}")


def _min_dcf_from_sweep(fnr, fpr, thresholds, p_target, c_miss, c_fa):
    """Normalised minDCF and threshold from :func:`_sweep` (see :func:`min_dcf`)."""
    cost_miss = c_miss * p_target
    cost_fa = c_fa * (1.0 - p_target)
    dcf = (cost_miss * fnr + cost_fa * fpr) / min(cost_miss, cost_fa)
    i = int(np.argmin(dcf))
    return float(dcf[i]), float(thresholds[i])


def eer(scores, labels):
    """Equal error rate, linearly interpolated where the miss and false-alarm
    rates cross.

    With ``d = FNR - FPR`` over the ascending thresholds of
    :func:`det_curve`, ``i`` is the first point with ``d >= 0``. If
    ``d[i] == 0`` the EER is ``FNR[i]`` at ``thresholds[i]``; otherwise the two
    operating points ``i - 1`` and ``i`` are joined by a straight line and
    the EER (and threshold) is read where that line has ``FNR == FPR``.

    Arguments
    ---------
    scores : array_like, shape [N]
        Trial scores (higher = more likely target), finite.
    labels : array_like, shape [N]
        1 for target, 0 for non-target trials; both must occur.

    Returns
    -------
    eer : float
        A fraction in ``[0, 1]`` (0.05 means 5 %).
    threshold : float
        The (interpolated) score threshold of the EER operating point.

    Raises
    ------
    ValueError
        Lengths differ, non-finite scores, labels not 0/1, or a class is missing.

    Example
    -------
    >>> value, threshold = eer([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0])
    >>> round(value, 6), round(threshold, 6)
    (0.333333, 0.733333)
    >>> eer([3.0, 2.0, 1.0, 0.0], [1, 1, 0, 0])
    (0.0, 2.0)
    """
    return _eer_from_sweep(*_sweep(scores, labels))


def min_dcf(scores, labels, p_target=0.01, c_miss=1.0, c_fa=1.0):
    """Minimum normalised detection cost over all thresholds.

    ``DCF(thr) = c_miss * p_target * FNR(thr) + c_fa * (1 - p_target) * FPR(thr)``
    divided by ``min(c_miss * p_target, c_fa * (1 - p_target))`` (the cost of
    the best trivial system), minimised over every unique score and ``+inf``
    (which includes accepting and rejecting every trial).

    Arguments
    ---------
    scores : array_like, shape [N]
        Trial scores (higher = more likely target), finite.
    labels : array_like, shape [N]
        1 for target, 0 for non-target trials; both must occur.
    p_target : float
        Prior probability of a target trial, in ``(0, 1)``.
    c_miss, c_fa : float
        Costs of a miss and of a false alarm, positive.

    Returns
    -------
    min_dcf : float
        The normalised minimum cost (0 = perfect, 1 = no better than trivial).
    threshold : float
        The threshold reaching it (the smallest one on ties; ``inf`` if
        rejecting every trial is optimal).

    Example
    -------
    >>> min_dcf([4.0, 3.0, 2.0, 1.0], [1, 0, 1, 0], p_target=0.5)
    (0.5, 2.0)
    """
    _check_costs(p_target, c_miss, c_fa)
    return _min_dcf_from_sweep(*_sweep(scores, labels), p_target, c_miss, c_fa)


def evaluate(scores, labels, p_target=0.01):
    """Summary of a verification system's scores.

    Arguments
    ---------
    scores : array_like, shape [N]
        Trial scores (higher = more likely target).
    labels : array_like, shape [N]
        1 for target, 0 for non-target trials.
    p_target : float
        Target prior of the minDCF (``c_miss = c_fa = 1``).

    Returns
    -------
    dict
        ``eer`` in **percent** (unlike :func:`eer`, which returns a fraction),
        ``eer_threshold``, ``min_dcf`` (normalised), ``min_dcf_threshold``,
        ``num_target`` and ``num_nontarget``.

    Example
    -------
    >>> report = evaluate([0.9, 0.8, 0.7, 0.6, 0.5], [1, 1, 0, 1, 0])
    >>> round(report["eer"], 4), report["num_target"], report["num_nontarget"]
    (33.3333, 3, 2)
    """
    _check_costs(p_target, 1.0, 1.0)
    sweep = _sweep(scores, labels)
    eer_value, eer_threshold = _eer_from_sweep(*sweep)
    dcf, dcf_threshold = _min_dcf_from_sweep(*sweep, p_target, 1.0, 1.0)
    num_target = int(np.sum(np.asarray(labels) == 1))
    return {
        "eer": 100.0 * eer_value,
        "eer_threshold": eer_threshold,
        "min_dcf": dcf,
        "min_dcf_threshold": dcf_threshold,
        "num_target": num_target,
        "num_nontarget": int(np.asarray(labels).size) - num_target,
    }


# --------------------------------------------------------------------------
# DET plot
# --------------------------------------------------------------------------
def _probit(rates):
    """Normal deviate of ``rates``, clipped just outside the DET axis limits."""
    from scipy.stats import norm

    low, high = DET_LIMITS
    return norm.ppf(np.clip(rates, low / 2, 1.0 - low / 2))


def _style_det_axes(axes, title):
    """Probit ticks in percent, limits, labels, grid and EER diagonal."""
    from scipy.stats import norm

    ticks = norm.ppf(np.asarray(DET_TICKS_PERCENT) / 100.0)
    labels = [f"{t:g}" for t in DET_TICKS_PERCENT]
    limits = norm.ppf(DET_LIMITS)
    axes.plot(limits, limits, "k--", linewidth=0.8, label="EER line")
    for set_ticks, set_labels, set_lim in (
        (axes.set_xticks, axes.set_xticklabels, axes.set_xlim),
        (axes.set_yticks, axes.set_yticklabels, axes.set_ylim),
    ):
        set_ticks(ticks)
        set_labels(labels)
        set_lim(limits)
    axes.set_xlabel("False alarm rate (%)")
    axes.set_ylabel("Miss rate (%)")
    axes.grid(True, linestyle=":", linewidth=0.6)
    if title:
        axes.set_title(title)


def plot_det(curves, path, title=None):
    """Draws DET curves on normal-deviate axes and saves them as a PNG.

    Uses the Agg backend through a standalone ``Figure`` (no ``pyplot``), so
    the global matplotlib state is left untouched.

    Arguments
    ---------
    curves : dict
        ``name -> (scores, labels)`` with ``scores``/``labels`` of shape [N].
    path : str or os.PathLike
        Output PNG file; missing parent folders are created.
    title : str, optional
        Plot title.

    Returns
    -------
    str or os.PathLike
        ``path``, as given.

    Example
    -------
    >>> import os, tempfile
    >>> rng = np.random.default_rng(0)
    >>> scores = np.concatenate([rng.normal(2, 1, 500), rng.normal(0, 1, 500)])
    >>> labels = np.repeat([1, 0], 500)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     out = plot_det({"sys": (scores, labels)}, os.path.join(folder, "det.png"))
    ...     os.path.getsize(out) > 0
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for name, (scores, labels) in curves.items():
        fnr, fpr, thresholds = _sweep(scores, labels)
        value, _ = _eer_from_sweep(fnr, fpr, thresholds)
        axes.plot(_probit(fpr), _probit(fnr), label=f"{name} (EER {100 * value:.2f}%)")
    _style_det_axes(axes, title)
    axes.legend(loc="best")
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    figure.savefig(os.fspath(path), format="png", dpi=120, bbox_inches="tight")
    return path
