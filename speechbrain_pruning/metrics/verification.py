"""Speaker verification scoring: trial lists, EER, minDCF, DET curves, AS-norm.

Conventions used throughout this module:

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

Authors
 * speechbrain_pruning contributors
"""

import math
import os

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "read_trials",
    "eer",
    "min_dcf",
    "det_curve",
    "plot_det",
    "cosine_scores",
    "score_trials",
    "evaluate",
]

VOXCELEB_LABELS = {"1": 1, "0": 0}
KALDI_LABELS = {"target": 1, "nontarget": 0}
DET_TICKS_PERCENT = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40)
DET_LIMITS = (0.0005, 0.5)
COHORT_CHUNK = 4096
TRIAL_CHUNK = 65536


# --------------------------------------------------------------------------
# Trial lists
# --------------------------------------------------------------------------
def _parse_trial_line(line):
    """Parses one non-blank trial line; returns ``(label, enrol, test)`` or None.

    Accepts ``label enrol test`` (VoxCeleb, label 1/0) and
    ``enrol test target|nontarget`` (Kaldi). Returns None if neither matches.
    """
    fields = line.split()
    if len(fields) != 3:
        return None
    if fields[0] in VOXCELEB_LABELS:
        return VOXCELEB_LABELS[fields[0]], fields[1], fields[2]
    if fields[2] in KALDI_LABELS:
        return KALDI_LABELS[fields[2]], fields[0], fields[1]
    return None


def read_trials(path):
    """Reads a speaker verification trial list.

    Two line formats are accepted (they may not contain spaces in the ids):
    ``label enrol test`` (VoxCeleb: label 1 = target, 0 = non-target) and
    ``enrol test target|nontarget`` (Kaldi). Blank lines are skipped; the file
    is decoded as UTF-8 (a byte-order mark is ignored).

    Arguments
    ---------
    path : str or os.PathLike
        The trial file.

    Returns
    -------
    list of (int, str, str)
        ``(label, enrol_id, test_id)`` per trial, in file order.

    Raises
    ------
    ValueError
        If a line does not parse (the message names the file, the 1-based
        line number and the line), or if the file holds no trial.

    Example
    -------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "trials.txt")
    ...     with open(path, "w", encoding="utf-8") as f:
    ...         _ = f.write("1 id1/a/1.wav id1/b/2.wav\\n\\n")
    ...         _ = f.write("id1/a/1.wav id2/c/3.wav nontarget\\n")
    ...     read_trials(path)
    [(1, 'id1/a/1.wav', 'id1/b/2.wav'), (0, 'id1/a/1.wav', 'id2/c/3.wav')]
    """
    trials = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            trial = _parse_trial_line(line)
            if trial is None:
                raise ValueError(
                    f"{os.fspath(path)}, line {number}: cannot parse trial "
                    f"{line.rstrip(chr(10))!r}; expected 'label enrol test' "
                    "or 'enrol test target|nontarget'"
                )
            trials.append(trial)
    if not trials:
        raise ValueError(f"Trial file {os.fspath(path)} contains no trials")
    return trials


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


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------
def _as_matrix(rows):
    """Stacks 1-D tensors/arrays (singleton dims squeezed) into a float CPU tensor."""
    tensors = [torch.as_tensor(row).detach().cpu().squeeze() for row in rows]
    if any(t.dim() != 1 for t in tensors):
        raise ValueError("each embedding must be 1-D after squeezing singleton dims")
    matrix = torch.stack(tensors)
    return matrix if matrix.is_floating_point() else matrix.double()


def _to_tensor(x):
    """Detached CPU floating tensor view of an array or tensor."""
    x = torch.as_tensor(x).detach().cpu()
    return x if x.is_floating_point() else x.double()


def _rowwise_dot(a, b, index_a, index_b):
    """``(a[index_a] * b[index_b]).sum(1)`` in chunks; returns float64 numpy [N]."""
    out = np.empty(len(index_a), dtype=np.float64)
    for start in range(0, len(index_a), TRIAL_CHUNK):
        stop = start + TRIAL_CHUNK
        rows = (a[index_a[start:stop]] * b[index_b[start:stop]]).sum(dim=1)
        out[start:stop] = rows.double().numpy()
    return out


def cosine_scores(enrol, test):
    """Cosine similarity of row-aligned embeddings.

    Arguments
    ---------
    enrol, test : torch.Tensor or np.ndarray, shape [N, E]
        Enrolment and test embeddings, row ``i`` of each forming trial ``i``.

    Returns
    -------
    np.ndarray, shape [N]
        Float64 cosine scores in ``[-1, 1]``.

    Example
    -------
    >>> cosine_scores(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[2.0, 0.0], [-1.0, -1.0]]))
    array([ 1., -1.])
    """
    enrol, test = _to_tensor(enrol), _to_tensor(test)
    if enrol.dim() != 2 or enrol.shape != test.shape:
        raise ValueError(
            f"expected two [N, E] inputs of equal shape, got "
            f"{tuple(enrol.shape)} and {tuple(test.shape)}"
        )
    index = torch.arange(enrol.shape[0])
    return _rowwise_dot(F.normalize(enrol, dim=1), F.normalize(test, dim=1), index, index)


def _index_trials(embeddings, trials):
    """Maps trial ids to rows of a unique-id matrix.

    Returns ``(ids, enrol_index, test_index, labels)``; raises KeyError naming
    the first missing id and its trial index.
    """
    rows = {}
    enrol_index = np.empty(len(trials), dtype=np.int64)
    test_index = np.empty(len(trials), dtype=np.int64)
    labels = np.empty(len(trials), dtype=np.int64)
    for i, (label, enrol_id, test_id) in enumerate(trials):
        for name, target in ((enrol_id, enrol_index), (test_id, test_index)):
            if name not in rows:
                if name not in embeddings:
                    raise KeyError(f"no embedding for id {name!r} (trial index {i})")
                rows[name] = len(rows)
            target[i] = rows[name]
        labels[i] = label
    return list(rows), torch.from_numpy(enrol_index), torch.from_numpy(test_index), labels


def _cohort_stats(normed, cohort, top_n):
    """Mean and std (unbiased) of the ``top_n`` best cohort cosines per row.

    ``normed`` [U, E] and ``cohort`` [C, E] are unit-norm; returns two [U]
    tensors, computed in chunks of :data:`COHORT_CHUNK` rows.
    """
    means, stds = [], []
    for start in range(0, normed.shape[0], COHORT_CHUNK):
        scores = normed[start : start + COHORT_CHUNK] @ cohort.T
        top = scores.topk(top_n, dim=1).values
        means.append(top.mean(dim=1))
        stds.append(top.std(dim=1))
    return torch.cat(means), torch.cat(stds)


def score_trials(embeddings, trials, cohort=None, top_n=300):
    """Scores a trial list by cosine similarity, optionally AS-normalised.

    With a cohort, adaptive symmetric normalisation (AS-norm, Matejka et al.,
    2017) is applied: for raw cosine ``s`` and the mean/std (unbiased, as in
    SpeechBrain) ``mu_e, sigma_e`` of the ``top_n`` highest cosines between
    the enrolment embedding and the cohort (``mu_t, sigma_t`` for the test
    embedding), the score is
    ``0.5 * ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t)``.
    Each unique embedding is normalised and scored against the cohort once.

    Arguments
    ---------
    embeddings : dict
        ``id -> embedding`` (1-D tensor or array of size E; singleton
        dimensions such as ``[1, 1, E]`` are squeezed).
    trials : list of (int, str, str)
        ``(label, enrol_id, test_id)`` as returned by :func:`read_trials`.
    cohort : torch.Tensor or np.ndarray, shape [C, E], optional
        Cohort embeddings (e.g. per-speaker mean training embeddings).
    top_n : int
        Number of best cohort scores used; capped at ``C``, at least 2.

    Returns
    -------
    scores : np.ndarray, shape [N]
        Float64 trial scores.
    labels : np.ndarray, shape [N]
        Int64 labels.

    Raises
    ------
    KeyError
        If an id has no embedding (the message names the id and trial index).

    Example
    -------
    >>> emb = {"a": np.array([1.0, 0.0]), "b": np.array([1.0, 1.0]), "c": np.array([0.0, 1.0])}
    >>> scores, labels = score_trials(emb, [(1, "a", "b"), (0, "a", "c")])
    >>> scores.round(4).tolist(), labels.tolist()
    ([0.7071, 0.0], [1, 0])
    >>> cohort = np.array([[1.0, 0.2], [0.3, 1.0], [-1.0, 0.5]])
    >>> scores, _ = score_trials(emb, [(1, "a", "b"), (0, "a", "c")], cohort, top_n=2)
    >>> scores.shape
    (2,)
    """
    if not trials:
        raise ValueError("no trials to score")
    ids, enrol_index, test_index, labels = _index_trials(embeddings, trials)
    normed = F.normalize(_as_matrix([embeddings[name] for name in ids]), dim=1)
    raw = _rowwise_dot(normed, normed, enrol_index, test_index)
    if cohort is None:
        return raw, labels
    cohort = F.normalize(_to_tensor(cohort).to(normed.dtype), dim=1)
    if cohort.dim() != 2 or cohort.shape[1] != normed.shape[1]:
        raise ValueError(
            f"cohort must be [C, {normed.shape[1]}], got {tuple(cohort.shape)}"
        )
    top_n = min(int(top_n), cohort.shape[0])
    if top_n < 2:
        raise ValueError("AS-norm needs top_n >= 2 and at least 2 cohort embeddings")
    mean, std = (x.double().numpy() for x in _cohort_stats(normed, cohort, top_n))
    enrol_index, test_index = enrol_index.numpy(), test_index.numpy()
    scores = 0.5 * (
        (raw - mean[enrol_index]) / std[enrol_index]
        + (raw - mean[test_index]) / std[test_index]
    )
    return scores, labels
