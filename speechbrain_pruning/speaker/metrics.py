"""Speaker verification scoring: trial lists, cosine scoring, AS-norm.

EER, minDCF and DET curves come from :mod:`speechbrain_pruning.detection`
(re-exported here; its docstring states the conventions: a trial is accepted
when ``score >= threshold``, one sorted sweep, ``O(n log n)``).
"""

import os

import numpy as np
import torch
import torch.nn.functional as F

from ..detection import det_curve, eer, evaluate, min_dcf, plot_det

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
