"""Linear (logistic-regression) calibration of countermeasure scores to LLRs.

A countermeasure's raw score (``logit_bonafide - logit_spoof``, higher = more
likely bona fide) ranks trials well but its scale and offset are arbitrary:
minDCF, EER and min Cllr only depend on the order of the scores, but actDCF
(:func:`~speechbrain_pruning.spoofing.metrics.cm_act_dcf` thresholds the
scores at the Bayes threshold
:func:`~speechbrain_pruning.spoofing.metrics.bayes_threshold`, ``log(0.5 / 0.95)``
with the ASVspoof5 costs) and Cllr read the scores as **natural-log
likelihood ratios** ``log p(x | bona fide) / p(x | spoof)``.
:class:`LinearCalibration` maps scores to LLRs with an affine function

    ``llr = scale * score + offset``

trained, as the linear calibration of BOSARIS (Brümmer & du Preez, 2006),
by *prior-weighted logistic regression*: with ``P`` the (effective) prior of bona fide, ``N_b`` bona fide
and ``N_s`` spoofed training trials, it minimises the prior-weighted
cross-entropy

    ``C(a, b) = P / N_b * sum_bona softplus(-(a s + b + logit P))
    + (1 - P) / N_s * sum_spoof softplus(a s + b + logit P)``

(``softplus(t) = log(1 + e^t)``); ``a s + b + logit P`` is the log posterior
odds of bona fide at prior ``P``, so ``llr = logit(posterior) - logit(P)``. At
``P = 0.5``, ``C / log(2)`` is exactly the Cllr of the calibrated scores (in
bits); at other priors it is Cllr at that effective prior. The class
weights ``P / N_b`` and ``(1 - P) / N_s`` make the result independent of the
class proportions of the training set, and, for scores whose true LLR is
affine (e.g. equal-variance Gaussian classes), of ``P`` as well.

Numerics: the 2-parameter convex problem is solved by damped Newton's
method in float64 on standardised scores ``z = (s - mean) / std`` (ten
iterations or so). A ridge penalty ``1e-6 / 2 * (a_z^2 + b_z^2)`` on the
standardised parameters keeps the minimum finite when the training scores
are **perfectly separable** (then the unpenalised loss keeps decreasing as
``scale -> inf``); it is scale-invariant (it does not depend on the units of
the scores) and its bias on non-separable data is of order ``1e-5``
relative (``1e-6`` over the curvature of the weighted loss, whatever the
number of trials), far below the sampling error. Separable data thus gives a large
but finite scale (LLRs of roughly +-9 nats at the two edges of the gap
between the classes, whatever the units of the scores), never ``inf`` /
NaN. Scores that are all equal give ``scale = 0``; a negative fitted scale
(scores ranking spoofs above bona fide trials) is kept and logged as a
warning.

Usage (fit on the development scores, apply to the evaluation scores)::

    calibration = LinearCalibration().fit(dev_scores, dev_labels)
    calibration.save("calibration.json")       # or to_dict() into hyperparams.yaml
    eval_llrs = calibration(eval_scores)      # numpy or torch

Authors
 * speechbrain_pruning contributors
"""

import json
import logging
import math
import os
from dataclasses import dataclass

import numpy as np

from .metrics import _check_costs, _check_inputs, bayes_threshold, evaluate_cm

__all__ = ["LinearCalibration", "effective_prior", "evaluate_calibrated"]

logger = logging.getLogger(__name__)

RIDGE = 1e-6  # penalty on the standardised (scale, offset): finite fits on separable data
MAX_NEWTON_STEPS = 200
METRIC_KEYS = ("min_dcf", "act_dcf", "cllr", "min_cllr", "eer")


def effective_prior(p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    """Effective prior of bona fide of the ASVspoof5 detection cost.

    ``c_miss * (1 - p_spoof) / (c_miss * (1 - p_spoof) + c_fa * p_spoof)``:
    the single prior at which deciding with the Bayes threshold
    (:func:`~speechbrain_pruning.spoofing.metrics.bayes_threshold`
    ``= -logit(effective prior)``) has the same decisions as the full
    cost model. A natural ``prior`` for :meth:`LinearCalibration.fit` when one
    operating point matters most.

    Arguments
    ---------
    p_spoof : float
        Prior probability of a spoofed trial, in ``(0, 1)``.
    c_miss, c_fa : float
        Costs of rejecting a bona fide trial and of accepting a spoof.

    Returns
    -------
    float
        The prior, in ``(0, 1)`` (``0.95 / 1.45 = 0.655`` for ASVspoof5).

    Example
    -------
    >>> round(effective_prior(), 6)
    0.655172
    >>> p = effective_prior()
    >>> round(-math.log(p / (1 - p)), 6) == round(bayes_threshold(), 6)
    True
    """
    _check_costs(p_spoof, c_miss, c_fa)
    cost_miss = c_miss * (1.0 - p_spoof)
    return cost_miss / (cost_miss + c_fa * p_spoof)


def _sigmoid(t):
    """Numerically stable logistic function (float64 arrays)."""
    out = np.empty_like(t)
    positive = t >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-t[positive]))
    exp_t = np.exp(t[~positive])
    out[~positive] = exp_t / (1.0 + exp_t)
    return out


def _objective(params, z, is_bona, weights, prior_logit):
    """Penalised prior-weighted cross-entropy (nats) of ``llr = a z + b``."""
    log_odds = params[0] * z + params[1] + prior_logit
    losses = np.logaddexp(0.0, np.where(is_bona, -log_odds, log_odds))
    return float(np.dot(weights, losses) + 0.5 * RIDGE * np.dot(params, params))


def _newton(z, is_bona, weights, prior_logit):
    """Damped Newton minimisation of :func:`_objective`; returns ``(a_z, b_z)``.

    The objective is O(1) nats (the weights sum to 1). Stops when the
    squared Newton decrement (about twice the distance to the minimum) falls
    below ``1e-15`` nats or the step below ``1e-10`` relative, i.e. at float64
    rounding level (the ridge keeps the Hessian positive definite, so every
    step is a descent direction), or when the line search cannot decrease
    the objective any more.
    """
    params = np.zeros(2)
    value = _objective(params, z, is_bona, weights, prior_logit)
    for _ in range(MAX_NEWTON_STEPS):
        posterior = _sigmoid(params[0] * z + params[1] + prior_logit)
        residual = weights * (posterior - is_bona)
        gradient = np.array([np.dot(residual, z), residual.sum()]) + RIDGE * params
        curvature = weights * posterior * (1.0 - posterior)
        hessian = np.array([
            [np.dot(curvature, z * z), np.dot(curvature, z)],
            [np.dot(curvature, z), curvature.sum()],
        ]) + RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        decrement = float(np.dot(gradient, step))  # Newton decrement squared
        if decrement < 1e-15 or np.max(np.abs(step)) < 1e-10 * (1.0 + np.max(np.abs(params))):
            return params - step
        length = 1.0
        while length >= 1e-10:  # backtracking (Armijo) line search
            candidate = params - length * step
            new_value = _objective(candidate, z, is_bona, weights, prior_logit)
            if new_value <= value - 0.25 * length * decrement:
                break
            length *= 0.5
        else:
            return params  # no further decrease representable in float64
        params, value = candidate, new_value
    logger.warning("LinearCalibration.fit: Newton's method did not converge in %d steps "
                   "(decrement %.3g)", MAX_NEWTON_STEPS, decrement)
    return params


@dataclass
class LinearCalibration:
    """Affine map from countermeasure scores to natural-log LLRs.

    ``llr = scale * score + offset``; the default (1, 0) is the identity.
    Train it with :meth:`fit`; store it as two floats with :meth:`to_dict`
    (e.g. as ``calibration: {scale: .., offset: ..}`` in an exported
    ``hyperparams.yaml``) or as JSON with :meth:`save`.

    Arguments
    ---------
    scale : float
        Multiplies the score (positive for scores where higher = bona fide).
    offset : float
        Added after scaling.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([1, 0], 20_000)
    >>> x = np.where(labels == 1, 1.0, -1.0) + rng.normal(size=labels.size)  # LLR = 2 x
    >>> raw = 5.0 * x + 3.0                                                 # LLR = 0.4 raw - 1.2
    >>> calibration = LinearCalibration().fit(raw, labels)
    >>> round(calibration.scale, 1), round(calibration.offset, 1)
    (0.4, -1.2)
    >>> np.round(calibration(np.array([-2.0, 8.0])), 1)  # ~ 2 x at x = -1 and x = 1
    array([-2.,  2.])
    >>> import torch
    >>> LinearCalibration(2.0, -1.0)(torch.tensor([0.0, 1.0]))
    tensor([-1.,  1.])
    """

    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self):
        self.scale, self.offset = _finite_float(self.scale, "scale"), \
            _finite_float(self.offset, "offset")

    # ------------------------------------------------------------------
    def fit(self, scores, labels, prior=0.5):
        """Trains ``scale`` and ``offset`` by prior-weighted logistic regression.

        Minimises the prior-weighted cross-entropy of the module docstring
        (Cllr at effective prior ``prior``), with the tiny scale-invariant
        ridge that keeps separable data finite.

        Arguments
        ---------
        scores : array_like or torch.Tensor, shape [N]
            Raw scores (higher = more likely bona fide), finite.
        labels : array_like, shape [N]
            1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.
        prior : float
            Effective prior of bona fide in ``(0, 1)`` at which the
            cross-entropy is weighted (0.5: plain Cllr, as in BOSARIS; see
            :func:`effective_prior` for the ASVspoof5 operating point).

        Returns
        -------
        LinearCalibration
            ``self``, fitted.

        Raises
        ------
        ValueError
            Lengths differ, NaN / inf scores, invalid labels, a missing
            class, or ``prior`` outside ``(0, 1)``.

        Example
        -------
        >>> # bona fide {2, 1, 0}, spoof {1, 0, -1}: the LLR is log 4 * score - log 2
        >>> cal = LinearCalibration().fit([2.0, 1.0, 0.0, 1.0, 0.0, -1.0], [1, 1, 1, 0, 0, 0])
        >>> round(cal.scale / math.log(4), 4), round(cal.offset / math.log(2), 4)
        (1.0, -1.0)
        """
        prior = float(prior)
        if not 0.0 < prior < 1.0:
            raise ValueError(f"prior must lie in (0, 1), got {prior}")
        scores, is_bona = _check_inputs(_to_numpy(scores), _to_numpy(labels))
        num_bona = int(is_bona.sum())
        weights = np.where(is_bona, prior / num_bona, (1.0 - prior) / (is_bona.size - num_bona))
        mean, std = float(scores.mean()), float(scores.std())
        if not std > 0.0 or not math.isfinite(std):  # constant scores: only an offset
            std = 1.0
        z = (scores - mean) / std
        scale_z, offset_z = _newton(z, is_bona.astype(np.float64), weights,
                                    math.log(prior / (1.0 - prior)))
        self.scale = float(scale_z / std)
        self.offset = float(offset_z - scale_z * mean / std)
        if self.scale < 0.0:
            logger.warning("LinearCalibration.fit: negative scale %.4g; the scores rank spoofed "
                           "trials above bona fide ones", self.scale)
        return self

    def __call__(self, scores):
        """Calibrated LLRs of ``scores``.

        Arguments
        ---------
        scores : torch.Tensor, np.ndarray, sequence or number, any shape
            Raw scores. NaN / inf propagate (no check at inference).

        Returns
        -------
        Same kind as ``scores``
            A tensor keeps its device and floating dtype (integer tensors
            become the default float dtype); a floating ndarray keeps its
            dtype; other arrays and sequences give float64 ndarrays and a
            Python / NumPy scalar gives a float.

        Example
        -------
        >>> cal = LinearCalibration(scale=0.5, offset=-1.0)
        >>> cal(np.array([0.0, 4.0], dtype=np.float32))
        array([-1.,  1.], dtype=float32)
        >>> cal([2.0, 6.0]), cal(2)
        (array([0., 2.]), 0.0)
        """
        if _is_tensor(scores):
            if not scores.is_floating_point():
                import torch

                scores = scores.to(torch.get_default_dtype())
            return scores * self.scale + self.offset
        if np.isscalar(scores):
            return float(scores) * self.scale + self.offset
        array = np.asarray(scores)
        if array.dtype.kind != "f":
            array = array.astype(np.float64)
        return array * array.dtype.type(self.scale) + array.dtype.type(self.offset)

    # ------------------------------------------------------------------
    def to_dict(self):
        """``{"scale": float, "offset": float}`` (plain Python floats).

        Example
        -------
        >>> LinearCalibration(0.25, -1.5).to_dict()
        {'scale': 0.25, 'offset': -1.5}
        """
        return {"scale": float(self.scale), "offset": float(self.offset)}

    @classmethod
    def from_dict(cls, spec):
        """Builds from a mapping with finite ``scale`` and ``offset`` (other keys ignored).

        Example
        -------
        >>> LinearCalibration.from_dict({"scale": "0.5", "offset": 2})
        LinearCalibration(scale=0.5, offset=2.0)
        """
        if isinstance(spec, cls):
            return cls(spec.scale, spec.offset)
        if not hasattr(spec, "keys"):
            raise ValueError(f"calibration must be a mapping with 'scale' and 'offset', "
                             f"got {type(spec).__name__}")
        missing = [key for key in ("scale", "offset") if key not in spec]
        if missing:
            raise ValueError(f"calibration is missing {missing}; expected "
                             f"{{scale: float, offset: float}}, got {dict(spec)}")
        return cls(spec["scale"], spec["offset"])

    def save(self, path):
        """Writes ``to_dict()`` as JSON (exact float round trip); returns ``path``.

        Example
        -------
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = LinearCalibration(0.1, 0.2).save(os.path.join(folder, "cal.json"))
        ...     LinearCalibration.load(path)
        LinearCalibration(scale=0.1, offset=0.2)
        """
        folder = os.path.dirname(os.fspath(path))
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2)
            handle.write("\n")
        return path

    @classmethod
    def load(cls, path):
        """Reads a JSON file written by :meth:`save`."""
        with open(path, encoding="utf-8") as handle:
            try:
                spec = json.load(handle)
            except json.JSONDecodeError as err:
                raise ValueError(f"{os.fspath(path)}: not a calibration JSON file ({err})") \
                    from err
        return cls.from_dict(spec)


def evaluate_calibrated(raw_scores, labels, calibration, p_spoof=0.05, c_miss=1.0, c_fa=10.0):
    """ASVspoof5 metrics of raw scores and of their calibrated LLRs.

    Both use :func:`~speechbrain_pruning.spoofing.metrics.evaluate_cm`: actDCF
    thresholds the (raw or calibrated) scores at the Bayes threshold
    ``-log(c_miss (1 - p_spoof) / (c_fa p_spoof))`` and Cllr reads them as
    natural-log LLRs, so only the calibrated values of those two are
    meaningful. minDCF, EER and min Cllr depend only on the order of the
    scores, so they are equal for raw and calibrated scores when
    ``scale > 0``.

    Arguments
    ---------
    raw_scores : array_like or torch.Tensor, shape [N]
        Raw scores (higher = more likely bona fide), finite.
    labels : array_like, shape [N]
        1 / ``"bonafide"`` or 0 / ``"spoof"``; both classes must occur.
    calibration : LinearCalibration or mapping
        The calibration (a ``{scale, offset}`` mapping is accepted).
    p_spoof, c_miss, c_fa : float
        DCF parameters (ASVspoof5 defaults).

    Returns
    -------
    dict
        ``{"raw": metrics, "calibrated": metrics}``, each with ``min_dcf``,
        ``act_dcf``, ``cllr`` (bits), ``min_cllr`` (bits) and ``eer`` (in
        **percent**, as :func:`evaluate_cm`), plus ``"bayes_threshold"``
        (the LLR threshold actDCF uses).

    Example
    -------
    >>> labels = [1, 1, 1, 0, 0, 0]
    >>> raw = [-8.0, -9.0, -10.0, -9.0, -10.0, -11.0]  # all below the Bayes threshold
    >>> cal = LinearCalibration().fit(raw, labels)
    >>> result = evaluate_calibrated(raw, labels, cal)
    >>> result["raw"]["act_dcf"], round(result["calibrated"]["act_dcf"], 4)
    (1.9, 0.9667)
    >>> result["raw"]["min_dcf"] == result["calibrated"]["min_dcf"]
    True
    >>> result["calibrated"]["cllr"] < result["raw"]["cllr"]
    True
    """
    calibration = LinearCalibration.from_dict(calibration)
    raw = np.asarray(_to_numpy(raw_scores), dtype=np.float64).reshape(-1)
    result = {}
    for name, scores in (("raw", raw), ("calibrated", calibration(raw))):
        metrics = evaluate_cm(scores, labels, p_spoof, c_miss, c_fa)
        result[name] = {key: metrics[key] for key in METRIC_KEYS}
    result["bayes_threshold"] = bayes_threshold(p_spoof, c_miss, c_fa)
    return result


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def _finite_float(value, name):
    """``float(value)``, raising ValueError unless it is a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"calibration {name} must be a number, got {value!r}") from err
    if not math.isfinite(number):
        raise ValueError(f"calibration {name} must be finite, got {number}")
    return number


def _is_tensor(value):
    """Whether ``value`` is a torch tensor (without importing torch eagerly)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _to_numpy(value):
    """Tensors -> float64 / label ndarrays on the CPU; anything else unchanged."""
    if _is_tensor(value):
        return value.detach().cpu().double().numpy() if value.is_floating_point() \
            else value.detach().cpu().numpy()
    return value
