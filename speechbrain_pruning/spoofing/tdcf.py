"""Tandem detection cost function (t-DCF) of ASVspoof 2019 LA.

The minimum normalised t-DCF (Kinnunen et al., Odyssey 2018) is the primary
metric of ASVspoof 2019 logical access. It scores a countermeasure (CM)
placed in front of a *fixed* automatic speaker verification (ASV) system,
whose scores the organisers distribute with the corpus::

    LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.dev.gi.trl.scores.txt
    LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.eval.gi.trl.scores.txt

Each line of those files is ``CM_KEY ASV_KEY SCORE`` (whitespace separated,
no header): ``CM_KEY`` is ``bonafide`` or the attack id (``A01``-``A19``),
``ASV_KEY`` is ``target``, ``nontarget`` or ``spoof`` and ``SCORE`` the
ASV similarity score, e.g. ``bonafide target 1.8326`` or
``A07 spoof -0.3411`` (README.LA.txt of the corpus, section 4).

This module follows the 2019 ("legacy") t-DCF of the organisers' reference
script (``evaluate_tDCF_asvspoof19.py`` / ``compute_tDCF`` of the ASVspoof
2019 baseline, as in ``evaluation.py`` of clovaai/aasist and
``compute_tDCF_legacy`` of TakHemlata/SSL_Anti-spoofing):

1. **ASV operating point.** The ASV threshold ``t_asv`` is the EER threshold
   of target vs nontarget scores as the reference finds it: all scores are
   sorted (stable, targets before nontargets on ties); after the ``k``
   lowest, ``FRR_k`` is the fraction of targets among them and ``FAR_k``
   the fraction of nontargets not among them; ``k`` is the first minimiser
   of ``|FRR_k - FAR_k|`` and ``t_asv`` the ``k``-th lowest score (for
   ``k = 0``: the lowest score minus 0.001). The ASV EER is
   ``(FRR_k + FAR_k) / 2``. Then, with *accept if score >= t_asv*::

       Pfa_asv         = fraction of nontarget scores >= t_asv
       Pmiss_asv       = fraction of target scores    <  t_asv
       Pmiss_spoof_asv = fraction of spoof scores     <  t_asv

   (the reference selects the threshold treating a score equal to it as a
   rejection, then counts errors treating it as an acceptance; this is
   reproduced as is, so the numbers match published ones).

2. **Cost model** (ASVspoof 2019 evaluation plan, :data:`ASVSPOOF2019_COST_MODEL`)::

       Pspoof = 0.05, Ptar = (1 - Pspoof) * 0.99, Pnon = (1 - Pspoof) * 0.01
       Cmiss_asv = 1, Cfa_asv = 10, Cmiss_cm = 1, Cfa_cm = 10

3. **t-DCF.** For a CM threshold ``s`` (accept as bona fide if CM score
   ``>= s``), ``Pmiss_cm(s)`` is the fraction of bona fide trials rejected
   and ``Pfa_cm(s)`` the fraction of spoofed trials accepted; the expected
   cost of the tandem is ``t-DCF(s) = C0 + C1 * Pmiss_cm(s) + C2 * Pfa_cm(s)``
   with::

       C0 = Ptar * Cmiss_asv * Pmiss_asv + Pnon * Cfa_asv * Pfa_asv
       C1 = Ptar * (Cmiss_cm - Cmiss_asv * Pmiss_asv) - Pnon * Cfa_asv * Pfa_asv
       C2 = Cfa_cm * Pspoof * (1 - Pmiss_spoof_asv)

   ``C0`` is the cost of the ASV system alone behind a perfect CM. The 2019
   *normalised* t-DCF drops it and divides by the cost of the best CM that
   ignores its input (accept all: ``C2``, reject all: ``C1``)::

       t-DCF_norm(s) = (C1 * Pmiss_cm(s) + C2 * Pfa_cm(s)) / min(C1, C2)

   and ``min t-DCF = min_s t-DCF_norm(s)``: 0 for a perfect CM, at most 1
   (the sweep includes accepting and rejecting every trial), 1 for a CM
   no better than a constant decision.

The CM thresholds are every unique CM score and ``+inf`` (the sweep of
:mod:`speechbrain_pruning.spoofing.metrics`). The reference sweeps sorted
positions instead; on tied scores it adds points that put part of a tie on
either side, but such a point never costs less than both ends of its tie,
so the minimum is the same. The reference's sanity checks are errors here:
priors must be non-negative and sum to 1, there must be spoof trials in
the ASV scores, CM scores must be finite with at least 3 distinct values
(soft scores, not decisions), and ``C1``, ``C2`` must be positive (the
reference stops on negative ones and divides by zero on a zero one);
negative costs only log a warning, as in the reference.

Authors
 * speechbrain_pruning contributors
"""

import collections
import csv
import logging
import math
import os

import numpy as np

from .metrics import STRING_LABELS, _check_inputs, _cm_sweep, cm_eer, read_scores

__all__ = [
    "ASVSPOOF2019_COST_MODEL",
    "ASV_KEYS",
    "AsvScores",
    "read_asv_scores",
    "write_asv_scores",
    "asv_error_rates",
    "tdcf_coefficients",
    "tdcf_curve",
    "min_tdcf",
    "evaluate_tdcf",
]

logger = logging.getLogger(__name__)

ASVSPOOF2019_COST_MODEL = {
    "Pspoof": 0.05,  # prior of a spoofing attack
    "Ptar": (1 - 0.05) * 0.99,  # prior of a target speaker
    "Pnon": (1 - 0.05) * 0.01,  # prior of a nontarget speaker (zero-effort impostor)
    "Cmiss_asv": 1.0,  # ASV rejects a target
    "Cfa_asv": 10.0,  # ASV accepts a nontarget
    "Cmiss_cm": 1.0,  # CM rejects bona fide speech
    "Cfa_cm": 10.0,  # CM accepts a spoof
}
COST_KEYS = tuple(ASVSPOOF2019_COST_MODEL)
ASV_KEYS = ("target", "nontarget", "spoof")
PRIOR_TOLERANCE = 1e-10  # as in the reference script
FIRST_THRESHOLD_OFFSET = 0.001  # reference: lowest ASV score minus this
MIN_UNIQUE_CM_SCORES = 3
LA_PROTOCOL_COLUMNS = 5  # SPEAKER FILE - ATTACK KEY
ASV5_PROTOCOL_COLUMNS = 10  # SPEAKER_ID FLAC_FILE_NAME ... KEY TMP
KEY_COLUMN = {LA_PROTOCOL_COLUMNS: 4, ASV5_PROTOCOL_COLUMNS: 8}
MAX_EXAMPLES = 5

AsvScores = collections.namedtuple("AsvScores", ["sources", "keys", "scores"])
AsvScores.__doc__ = """ASV scores of a t-DCF evaluation (columns of the organisers' file).

``sources`` [N] (str: ``bonafide`` or attack id), ``keys`` [N] (str:
``target``/``nontarget``/``spoof``) and ``scores`` [N] (float64)."""


# --------------------------------------------------------------------------
# ASV score files
# --------------------------------------------------------------------------
def read_asv_scores(path):
    """Reads an organisers' ASV score file (``CM_KEY ASV_KEY SCORE`` per line).

    The format of ``ASVspoof2019.LA.asv.{dev,eval}.gi.trl.scores.txt``: three
    whitespace-separated columns, the source (``bonafide`` or the attack id),
    the ASV key (``target``, ``nontarget`` or ``spoof``, compared
    case-insensitively and returned in lower case) and a finite score.
    Blank lines are skipped; the file is read as UTF-8 (a byte-order mark is
    ignored).

    Arguments
    ---------
    path : str or os.PathLike
        The score file.

    Returns
    -------
    AsvScores
        ``(sources, keys, scores)``: string arrays [N], [N] and a float64
        array [N], in file order.

    Raises
    ------
    ValueError
        On a line without exactly three columns, an unknown key or a
        non-finite score (the message names the file, the 1-based line
        number and the line), or on a file without any score.

    Example
    -------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "asv.txt")
    ...     with open(path, "w", encoding="utf-8") as f:
    ...         _ = f.write("bonafide target 1.5\\nbonafide nontarget -2\\nA07 spoof 0.25\\n")
    ...     sources, keys, scores = read_asv_scores(path)
    >>> sources.tolist(), keys.tolist(), scores.tolist()
    (['bonafide', 'bonafide', 'A07'], ['target', 'nontarget', 'spoof'], [1.5, -2.0, 0.25])
    """
    sources, keys, scores = [], [], []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            problem = _asv_line_problem(fields)
            if problem:
                raise ValueError(
                    f"{os.fspath(path)}, line {number}: {problem} in "
                    f"{line.rstrip(chr(10))!r}; expected 'CM_KEY ASV_KEY SCORE' "
                    f"(e.g. 'bonafide target 1.23' or 'A07 spoof -0.5')"
                )
            sources.append(fields[0])
            keys.append(fields[1].lower())
            scores.append(float(fields[2]))
    if not scores:
        raise ValueError(f"{os.fspath(path)}: the ASV score file holds no scores")
    return AsvScores(np.array(sources, dtype=str), np.array(keys, dtype=str),
                     np.array(scores, dtype=np.float64))


def _asv_line_problem(fields):
    """What is wrong with a split ASV score line, or None."""
    if len(fields) != 3:
        return f"{len(fields)} columns instead of 3"
    if fields[1].lower() not in ASV_KEYS:
        return f"ASV key {fields[1]!r} is not one of {', '.join(ASV_KEYS)}"
    try:
        score = float(fields[2])
    except ValueError:
        return f"score {fields[2]!r} is not a number"
    return None if math.isfinite(score) else f"score {fields[2]!r} is not finite"


def write_asv_scores(path, sources, keys, scores):
    """Writes an ASV score file in the organisers' format (``CM_KEY ASV_KEY SCORE``).

    Scores are written with ``repr`` precision (read back exactly by
    :func:`read_asv_scores`); missing parent folders are created.

    Arguments
    ---------
    path : str or os.PathLike
        Output file.
    sources : sequence of str, length N
        ``bonafide`` or the attack id of each trial (no whitespace).
    keys : sequence of str, length N
        ``target``, ``nontarget`` or ``spoof``.
    scores : array_like, shape [N]
        Finite ASV scores.

    Returns
    -------
    str or os.PathLike
        ``path``, as given.

    Example
    -------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_asv_scores(os.path.join(folder, "a", "asv.txt"),
    ...                             ["bonafide", "A01"], ["target", "spoof"], [2.5, -1])
    ...     open(path, encoding="utf-8").read().splitlines()
    ['bonafide target 2.5', 'A01 spoof -1.0']
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    sources = [str(source) for source in sources]
    keys = [str(key).lower() for key in keys]
    if not len(sources) == len(keys) == scores.size:
        raise ValueError(
            f"sources, keys and scores differ in length: {len(sources)}, {len(keys)}, "
            f"{scores.size}"
        )
    bad = [s for s in sources if s.split() != [s]]
    if bad:
        raise ValueError(f"sources must be non-empty and contain no whitespace: {bad[:5]}")
    _key_masks(keys)
    if not np.all(np.isfinite(scores)):
        raise ValueError("ASV scores must be finite (found NaN or inf)")
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(f"{source} {key} {score!r}\n"
                          for source, key, score in zip(sources, keys, scores.tolist()))
    return path


# --------------------------------------------------------------------------
# ASV operating point
# --------------------------------------------------------------------------
def _key_masks(keys):
    """``{key: boolean mask}`` of target / nontarget / spoof ASV keys."""
    keys = np.char.lower(np.char.strip(np.asarray(keys, dtype=str).reshape(-1)))
    masks = {key: keys == key for key in ASV_KEYS}
    valid = masks["target"] | masks["nontarget"] | masks["spoof"]
    if not valid.all():
        bad = np.unique(keys[~valid])[:10].tolist()
        raise ValueError(f"ASV keys must be target, nontarget or spoof, got {bad}")
    return masks


def _reference_eer_threshold(target, nontarget):
    """ASV EER and threshold picked as by the reference script (module docstring, 1.)."""
    scores = np.concatenate((target, nontarget))
    is_target = np.concatenate((np.ones(target.size, dtype=bool),
                                np.zeros(nontarget.size, dtype=bool)))
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    targets_below = np.cumsum(is_target[order])  # among the k lowest, k = 1..n
    nontargets_above = nontarget.size - (np.arange(1, scores.size + 1) - targets_below)
    frr = np.concatenate(([0.0], targets_below / target.size))
    far = np.concatenate(([1.0], nontargets_above / nontarget.size))
    thresholds = np.concatenate(([sorted_scores[0] - FIRST_THRESHOLD_OFFSET], sorted_scores))
    k = int(np.argmin(np.abs(frr - far)))
    return float((frr[k] + far[k]) / 2.0), float(thresholds[k])


def asv_error_rates(asv_scores, asv_keys):
    """ASV operating point of the t-DCF: EER threshold and error rates there.

    See the module docstring (step 1) for how the threshold is chosen; the
    rates are then counted with *accept if score >= threshold*.

    Arguments
    ---------
    asv_scores : array_like, shape [N]
        ASV scores (higher = more likely the claimed speaker), finite.
    asv_keys : array_like of str, shape [N]
        ``target``, ``nontarget`` or ``spoof``; each must occur.

    Returns
    -------
    dict
        ``asv_threshold``, ``asv_eer`` (fraction), ``pfa_asv`` (nontargets
        accepted), ``pmiss_asv`` (targets rejected), ``pmiss_spoof_asv``
        (spoofs rejected), all fractions, and ``num_target``,
        ``num_nontarget``, ``num_spoof``.

    Raises
    ------
    ValueError
        Lengths differ, non-finite scores, unknown keys, or a missing key
        (without spoof trials the t-DCF is undefined).

    Example
    -------
    >>> rates = asv_error_rates([2.0, 3.0, 4.0, 5.0, -1.0, 0.0, 1.0, 2.5, 1.5, 4.5],
    ...                         ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 2)
    >>> [rates[k] for k in ("asv_threshold", "pfa_asv", "pmiss_asv", "pmiss_spoof_asv")]
    [2.0, 0.25, 0.0, 0.5]
    """
    scores = np.asarray(asv_scores, dtype=np.float64).reshape(-1)
    masks = _key_masks(asv_keys)
    if scores.size != masks["target"].size:
        raise ValueError(
            f"ASV scores and keys differ in length: {scores.size} vs {masks['target'].size}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("ASV scores must be finite (found NaN or inf)")
    counts = {key: int(mask.sum()) for key, mask in masks.items()}
    missing = [key for key, count in counts.items() if count == 0]
    if missing:
        raise ValueError(
            f"the ASV scores need target, nontarget and spoof trials; none of: "
            f"{', '.join(missing)} (counts {counts})"
        )
    target, nontarget, spoof = (scores[masks[key]] for key in ASV_KEYS)
    eer_value, threshold = _reference_eer_threshold(target, nontarget)
    return {
        "asv_threshold": threshold,
        "asv_eer": eer_value,
        "pfa_asv": float(np.mean(nontarget >= threshold)),
        "pmiss_asv": float(np.mean(target < threshold)),
        "pmiss_spoof_asv": float(np.mean(spoof < threshold)),
        "num_target": counts["target"],
        "num_nontarget": counts["nontarget"],
        "num_spoof": counts["spoof"],
    }


# --------------------------------------------------------------------------
# t-DCF
# --------------------------------------------------------------------------
def _cost_model(cost_model):
    """The default cost model updated with ``cost_model``, checked as the reference does."""
    model = dict(ASVSPOOF2019_COST_MODEL)
    if cost_model is not None:
        unknown = set(cost_model) - set(COST_KEYS) - {"Cmiss", "Cfa"}  # unused reference keys
        if unknown:
            raise ValueError(f"unknown cost model keys {sorted(unknown)}; valid: {COST_KEYS}")
        model.update({key: float(value) for key, value in cost_model.items()})
    if any(model[key] < 0 for key in ("Cmiss_asv", "Cfa_asv", "Cmiss_cm", "Cfa_cm")):
        logger.warning("t-DCF: usually the cost values should be positive: %s", model)
    priors = (model["Ptar"], model["Pnon"], model["Pspoof"])
    if min(priors) < 0 or abs(sum(priors) - 1.0) > PRIOR_TOLERANCE:
        raise ValueError(
            "the priors Ptar, Pnon and Pspoof must be non-negative and sum to 1, got "
            f"{priors}"
        )
    return model


def tdcf_coefficients(asv_rates, cost_model=None):
    """Weights ``(C0, C1, C2)`` of the t-DCF for a fixed ASV system.

    ``t-DCF(s) = C0 + C1 * Pmiss_cm(s) + C2 * Pfa_cm(s)`` (module docstring,
    step 3).

    Arguments
    ---------
    asv_rates : dict
        ``pfa_asv``, ``pmiss_asv`` and ``pmiss_spoof_asv`` (fractions), as
        returned by :func:`asv_error_rates`.
    cost_model : dict, optional
        Entries replacing those of :data:`ASVSPOOF2019_COST_MODEL`.

    Returns
    -------
    tuple of float
        ``(C0, C1, C2)``.

    Raises
    ------
    ValueError
        Invalid priors or cost model keys, or ``C1`` / ``C2`` not positive
        (the normalised t-DCF is then undefined).

    Example
    -------
    >>> rates = {"pfa_asv": 0.0, "pmiss_asv": 0.0, "pmiss_spoof_asv": 0.0}
    >>> c0, c1, c2 = tdcf_coefficients(rates)  # an error-free ASV
    >>> c0, round(c1, 6), round(c2, 6)
    (0.0, 0.9405, 0.5)
    """
    model = _cost_model(cost_model)
    pfa, pmiss = asv_rates["pfa_asv"], asv_rates["pmiss_asv"]
    pmiss_spoof = asv_rates["pmiss_spoof_asv"]
    if pmiss_spoof is None:
        raise ValueError("the t-DCF needs the miss rate of spoof trials of the ASV system")
    c0 = model["Ptar"] * model["Cmiss_asv"] * pmiss + model["Pnon"] * model["Cfa_asv"] * pfa
    c1 = (model["Ptar"] * (model["Cmiss_cm"] - model["Cmiss_asv"] * pmiss)
          - model["Pnon"] * model["Cfa_asv"] * pfa)
    c2 = model["Cfa_cm"] * model["Pspoof"] * (1.0 - pmiss_spoof)
    if c1 <= 0 or c2 <= 0:
        raise ValueError(
            f"cannot normalise the t-DCF with non-positive weights C1={c1}, C2={c2} "
            f"(ASV rates {dict(pfa_asv=pfa, pmiss_asv=pmiss, pmiss_spoof_asv=pmiss_spoof)}); "
            "C2 = 0 means the ASV system rejects every spoof"
        )
    return float(c0), float(c1), float(c2)


def _checked_cm(cm_scores, cm_labels):
    """CM scores [N] and bona fide mask [N], with the reference's sanity checks."""
    scores, is_bona = _check_inputs(cm_scores, cm_labels)
    if np.unique(scores).size < MIN_UNIQUE_CM_SCORES:
        raise ValueError(
            f"the t-DCF needs soft CM scores, not binary decisions: found fewer than "
            f"{MIN_UNIQUE_CM_SCORES} distinct scores"
        )
    return scores, is_bona


def _tdcf_sweep(scores, is_bona, coefficients):
    """Normalised t-DCF [U + 1] and thresholds [U + 1] of checked CM inputs."""
    _, c1, c2 = coefficients
    p_miss, p_fa, thresholds = _cm_sweep(scores, is_bona)
    return (c1 * p_miss + c2 * p_fa) / min(c1, c2), thresholds


def tdcf_curve(cm_scores, cm_labels, asv_scores, asv_keys, cost_model=None):
    """Normalised 2019 t-DCF at every CM threshold.

    ``t-DCF_norm(s) = (C1 * Pmiss_cm(s) + C2 * Pfa_cm(s)) / min(C1, C2)``
    (module docstring), a trial being accepted as bona fide when its CM
    score is ``>= s``.

    Arguments
    ---------
    cm_scores : array_like, shape [N]
        CM scores (higher = more likely bona fide), finite, at least 3
        distinct values.
    cm_labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.
    asv_scores : array_like, shape [M]
        Scores of the fixed ASV system.
    asv_keys : array_like of str, shape [M]
        ``target``, ``nontarget`` or ``spoof`` (see :func:`asv_error_rates`).
    cost_model : dict, optional
        Entries replacing those of :data:`ASVSPOOF2019_COST_MODEL`.

    Returns
    -------
    tdcf : np.ndarray, shape [U + 1]
        Normalised t-DCF at each threshold; its first value (accept all) is
        ``C2 / min(C1, C2)``, its last (reject all) ``C1 / min(C1, C2)``.
    thresholds : np.ndarray, shape [U + 1]
        The ``U`` unique CM scores in ascending order followed by ``inf``.

    Example
    -------
    >>> asv = [2.0, 3.0, 4.0, 5.0, -1.0, 0.0, 1.0, 2.5, 1.5, 4.5]
    >>> keys = ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 2
    >>> tdcf, thr = tdcf_curve([0.9, 0.7, 0.4, 0.3], [1, 1, 0, 0], asv, keys)
    >>> np.round(tdcf, 4).tolist(), thr.tolist()
    ([1.0, 0.5, 0.0, 1.8335, 3.667], [0.3, 0.4, 0.7, 0.9, inf])
    """
    scores, is_bona = _checked_cm(cm_scores, cm_labels)
    coefficients = tdcf_coefficients(asv_error_rates(asv_scores, asv_keys), cost_model)
    return _tdcf_sweep(scores, is_bona, coefficients)


def min_tdcf(cm_scores, cm_labels, asv_scores, asv_keys, cost_model=None):
    """Minimum normalised t-DCF (ASVspoof 2019 LA primary metric).

    Arguments
    ---------
    cm_scores : array_like, shape [N]
        CM scores (higher = more likely bona fide), finite, at least 3
        distinct values.
    cm_labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.
    asv_scores : array_like, shape [M]
        Scores of the fixed ASV system.
    asv_keys : array_like of str, shape [M]
        ``target``, ``nontarget`` or ``spoof``.
    cost_model : dict, optional
        Entries replacing those of :data:`ASVSPOOF2019_COST_MODEL`.

    Returns
    -------
    min_tdcf : float
        The minimum normalised t-DCF, in ``[0, 1]``.
    threshold : float
        The CM threshold reaching it (accept as bona fide if score ``>=``
        it; the smallest one on ties, ``inf`` if rejecting all is optimal).
    eer : float
        The CM EER (:func:`~speechbrain_pruning.spoofing.metrics.cm_eer`),
        a fraction.

    Example
    -------
    >>> asv = [2.0, 3.0, 4.0, 5.0, -1.0, 0.0, 1.0, 2.5, 1.5, 4.5]
    >>> keys = ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 2
    >>> min_tdcf([0.9, 0.7, 0.4, 0.3], ["bonafide", "bonafide", "spoof", "spoof"],
    ...          asv, keys)
    (0.0, 0.7, 0.0)
    """
    scores, is_bona = _checked_cm(cm_scores, cm_labels)
    coefficients = tdcf_coefficients(asv_error_rates(asv_scores, asv_keys), cost_model)
    tdcf, thresholds = _tdcf_sweep(scores, is_bona, coefficients)
    i = int(np.argmin(tdcf))
    return float(tdcf[i]), float(thresholds[i]), cm_eer(scores, is_bona.astype(np.int8))[0]


# --------------------------------------------------------------------------
# Files and the one-call evaluation
# --------------------------------------------------------------------------
def _is_path(value):
    """Whether ``value`` names a file (str or os.PathLike)."""
    return isinstance(value, (str, os.PathLike))


def _label_problem(key):
    """Why a CM key is invalid, or None."""
    return None if key in STRING_LABELS else f"key {key!r} is not bonafide or spoof"


def _read_baseline_cm_scores(path):
    """``(ids, scores, labels)`` of a baseline score file ``ID SOURCE KEY SCORE``."""
    ids, scores, labels = [], [], []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            problem = (f"{len(fields)} columns instead of 4" if len(fields) != 4
                       else _label_problem(fields[2]))
            if problem is None:
                try:
                    score = float(fields[3])
                except ValueError:
                    score = math.nan
                problem = None if math.isfinite(score) else f"score {fields[3]!r} is invalid"
            if problem:
                raise ValueError(
                    f"{os.fspath(path)}, line {number}: {problem} in "
                    f"{line.rstrip(chr(10))!r}; a CM score file without labels must "
                    "read 'ID SOURCE KEY SCORE' (or pass the labels / protocol)"
                )
            ids.append(fields[0])
            labels.append(fields[2])
            scores.append(score)
    return ids, np.array(scores, dtype=np.float64), np.array(labels, dtype=str)


def _read_manifest_labels(path):
    """``{ID: label}`` of a SpeechBrain CSV manifest with ``ID`` and ``label`` columns."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not {"ID", "label"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{os.fspath(path)}: a CSV manifest needs ID and label columns")
        labels = {}
        for row in reader:
            problem = _label_problem(row["label"])
            if problem:
                raise ValueError(f"{os.fspath(path)}, line {reader.line_num}: {problem}")
            labels[row["ID"]] = row["label"]
    return labels


def _read_protocol_labels(path):
    """``{file id: label}`` of a 2019 LA (5 columns) or ASVspoof5 (10 columns) protocol."""
    labels = {}
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or (not labels and fields[0].upper() == "SPEAKER_ID"):
                continue
            column = KEY_COLUMN.get(len(fields))
            problem = (f"{len(fields)} columns instead of {LA_PROTOCOL_COLUMNS} (2019 LA) "
                       f"or {ASV5_PROTOCOL_COLUMNS} (ASVspoof5)" if column is None
                       else _label_problem(fields[column]))
            if problem:
                raise ValueError(f"{os.fspath(path)}, line {number}: {problem} in "
                                 f"{line.rstrip(chr(10))!r}")
            labels[fields[1]] = fields[column]
    return labels


def _read_labels(path):
    """``{id: label}`` of a CM protocol or of a CSV manifest."""
    with open(path, encoding="utf-8-sig") as handle:
        first = next((line for line in handle if line.strip()), "")
    if first.split(",")[0].strip() == "ID":
        return _read_manifest_labels(path)
    return _read_protocol_labels(path)


def _labels_of(ids, labels, source):
    """Labels [N] of ``ids`` from a ``{id: label}`` mapping; every id must be there."""
    missing = [name for name in ids if name not in labels]
    if missing:
        raise ValueError(
            f"{len(missing)} scored ids have no label in {source} (first "
            f"{min(len(missing), MAX_EXAMPLES)}: {', '.join(missing[:MAX_EXAMPLES])})"
        )
    unscored = len(set(labels) - set(ids))
    if unscored:
        logger.warning("t-DCF: %d of the %d labelled files in %s have no CM score",
                       unscored, len(labels), source)
    return np.array([labels[name] for name in ids], dtype=object)


def _load_cm(cm_scores, cm_labels):
    """CM ``(scores [N], labels [N])`` from arrays or files (see :func:`evaluate_tdcf`)."""
    if not _is_path(cm_scores):
        if cm_labels is None:
            raise ValueError("cm_labels is required with CM score arrays")
        return cm_scores, cm_labels
    if cm_labels is None:
        _, scores, labels = _read_baseline_cm_scores(cm_scores)
        return scores, labels
    ids, scores = read_scores(cm_scores)
    if _is_path(cm_labels):
        return scores, _labels_of(ids, _read_labels(cm_labels), os.fspath(cm_labels))
    if isinstance(cm_labels, dict):
        return scores, _labels_of(ids, cm_labels, "the label mapping")
    return scores, cm_labels


def _load_asv(asv):
    """``(scores [M], keys [M])`` of an ASV score file, an AsvScores or a pair."""
    if _is_path(asv):
        asv = read_asv_scores(asv)
    if isinstance(asv, AsvScores):
        return asv.scores, asv.keys
    if isinstance(asv, (tuple, list)) and len(asv) == 2:
        return asv[0], asv[1]
    raise ValueError("asv must be an ASV score file, an AsvScores or a (scores, keys) pair")


def evaluate_tdcf(cm_scores, cm_labels, asv, cost_model=None):
    """Min t-DCF, CM EER and the ASV operating point, from files or arrays.

    Arguments
    ---------
    cm_scores : str, os.PathLike or array_like of shape [N]
        CM scores (higher = more likely bona fide), or a score file: either
        ``ID SCORE`` per line (:func:`~speechbrain_pruning.spoofing.metrics.
        read_scores`, the recipe's format) or, when ``cm_labels`` is None,
        the baseline's ``ID SOURCE KEY SCORE`` (``LA_E_1 A07 spoof -3.1``).
    cm_labels : str, os.PathLike, dict, array_like of shape [N] or None
        With score arrays: labels [N] (1 / ``"bonafide"``, 0 / ``"spoof"``).
        With a score file: a CM protocol (2019 LA ``SPEAKER FILE - ATTACK
        KEY`` or ASVspoof5), a CSV manifest with ``ID`` and ``label``
        columns, a ``{id: label}`` dict, or labels in file order; every
        scored id must have a label (labelled files without a score are
        only reported in the log).
    asv : str, os.PathLike, AsvScores or tuple
        The organisers' ASV score file of the same split, or ``(scores,
        keys)`` arrays.
    cost_model : dict, optional
        Entries replacing those of :data:`ASVSPOOF2019_COST_MODEL`.

    Returns
    -------
    dict
        ``min_tdcf`` and ``tdcf_threshold`` (:func:`min_tdcf`),
        ``min_tdcf_unnormalised`` (``C0 + min_s (C1 Pmiss_cm + C2 Pfa_cm)``),
        ``tdcf_c0``, ``tdcf_c1``, ``tdcf_c2``, ``eer`` in **percent** (as in
        :func:`~speechbrain_pruning.spoofing.metrics.evaluate_cm`),
        ``eer_threshold``, ``asv_eer`` in percent, ``asv_threshold``,
        ``pfa_asv``, ``pmiss_asv``, ``pmiss_spoof_asv`` (fractions),
        ``num_bonafide``, ``num_spoof`` (CM trials), ``num_asv_target``,
        ``num_asv_nontarget``, ``num_asv_spoof``; plain Python numbers.

    Example
    -------
    >>> asv = ([2.0, 3.0, 4.0, 5.0, -1.0, 0.0, 1.0, 2.5, 1.5, 4.5],
    ...        ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 2)
    >>> result = evaluate_tdcf([0.9, 0.3, 0.7, 0.4, 0.8], [1, 0, 1, 0, 0], asv)
    >>> round(result["min_tdcf"], 4), result["tdcf_threshold"], round(result["eer"], 2)
    (0.3333, 0.7, 33.33)
    """
    scores, labels = _load_cm(cm_scores, cm_labels)
    scores, is_bona = _checked_cm(scores, labels)
    rates = asv_error_rates(*_load_asv(asv))
    c0, c1, c2 = tdcf_coefficients(rates, cost_model)
    tdcf, thresholds = _tdcf_sweep(scores, is_bona, (c0, c1, c2))
    i = int(np.argmin(tdcf))
    eer_value, eer_threshold = cm_eer(scores, is_bona.astype(np.int8))
    num_bona = int(is_bona.sum())
    return {
        "min_tdcf": float(tdcf[i]),
        "tdcf_threshold": float(thresholds[i]),
        "min_tdcf_unnormalised": float(c0 + tdcf[i] * min(c1, c2)),
        "tdcf_c0": c0,
        "tdcf_c1": c1,
        "tdcf_c2": c2,
        "eer": 100.0 * eer_value,
        "eer_threshold": eer_threshold,
        "asv_eer": 100.0 * rates["asv_eer"],
        "asv_threshold": rates["asv_threshold"],
        "pfa_asv": rates["pfa_asv"],
        "pmiss_asv": rates["pmiss_asv"],
        "pmiss_spoof_asv": rates["pmiss_spoof_asv"],
        "num_bonafide": num_bona,
        "num_spoof": int(is_bona.size) - num_bona,
        "num_asv_target": rates["num_target"],
        "num_asv_nontarget": rates["num_nontarget"],
        "num_asv_spoof": rates["num_spoof"],
    }
