"""Agglomerative hierarchical clustering (AHC) of speaker embeddings.

The embeddings are L2-normalised and compared with the cosine distance
``1 - cos(a, b)`` (in ``[0, 2]``). The dendrogram is built once with
:func:`scipy.cluster.hierarchy.linkage` and then cut:

* ``num_speakers`` given: the dendrogram is cut into exactly
  ``min(num_speakers, N)`` clusters;
* else every merge whose linkage height is ``<= threshold`` is kept, and the
  resulting number of clusters is clamped into ``[min_speakers,
  max_speakers]`` (each bound optional) by cutting the dendrogram again.

``min_cluster_size`` (``m``, default 1 = off) follows pyannote.audio's
``AgglomerativeClustering``: ``m`` is first capped to
``max(1, round(0.1 N))`` so that few embeddings are never all "small";
clusters with ``>= m`` members are *large*, the others *small*. Each small
cluster is merged into the large cluster whose centroid (mean of the
normalised embeddings) is the most cosine-similar, so the number of speakers
is the number of large clusters. When that number must be a given ``k``
(``num_speakers``, or a violated ``min_speakers`` / ``max_speakers`` bound,
or ``k = 1`` when no cluster is large) the dendrogram is searched for the
cut with exactly ``k`` large clusters whose merge height is the closest to
the threshold; if no cut has exactly ``k`` large clusters, the plain cut into
``k`` clusters is used (all of them then count as large). The count is thus
never below ``num_speakers`` / ``min_speakers`` when these are given.

Cutting into ``k`` clusters applies the first ``N - k`` merges of the linkage
matrix (union-find), so the requested count is always honoured exactly, even
with tied heights (where ``fcluster(criterion="maxclust")`` may return fewer
clusters).

For ``method`` in ``("ward", "centroid", "median")`` scipy needs Euclidean
distances; on unit vectors ``||a - b|| = sqrt(2 (1 - cos(a, b)))``, so the
threshold is converted to ``sqrt(2 * threshold)`` for those methods (for
``ward`` the heights are not plain distances, so the threshold is then only
indicative). All-zero embeddings are kept as zero vectors, at squared
half-distance ``0.5`` from every unit vector.

Authors
 * speechbrain_pruning contributors
"""

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import pdist

__all__ = [
    "check_speaker_counts",
    "cluster_embeddings",
    "cut_linkage",
    "effective_min_cluster_size",
    "merge_small_clusters",
]

EUCLIDEAN_METHODS = ("ward", "centroid", "median")
NORM_EPS = 1e-12


def _normalise(embeddings, eps=NORM_EPS):
    """Rows of ``embeddings [N, E]`` divided by their L2 norm (zero rows stay 0)."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.maximum(norms, eps)


def cut_linkage(Z, num_items, num_clusters):
    """Labels ``[N]`` obtained by applying the first ``N - k`` merges of ``Z``.

    Arguments
    ---------
    Z : numpy.ndarray
        Linkage matrix ``[N - 1, 4]`` from :func:`scipy.cluster.hierarchy.linkage`.
    num_items : int
        Number ``N`` of clustered items.
    num_clusters : int
        Wanted number of clusters ``k``, clipped into ``[1, N]``.

    Returns
    -------
    labels : numpy.ndarray
        ``[N]`` int64 labels in ``[0, k)``; label 0 is the largest cluster,
        ties broken by first appearance.

    Example
    -------
    >>> Z = linkage(np.array([[0.0], [0.1], [5.0]]), "average")
    >>> cut_linkage(Z, 3, 2).tolist()
    [0, 0, 1]
    >>> cut_linkage(Z, 3, 1).tolist(), cut_linkage(Z, 3, 3).tolist()
    ([0, 0, 0], [0, 1, 2])
    """
    n = int(num_items)
    k = int(min(max(num_clusters, 1), max(n, 1)))
    parent = list(range(2 * n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for step in range(n - k):
        a, b = int(Z[step, 0]), int(Z[step, 1])
        parent[find(a)] = n + step
        parent[find(b)] = n + step
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    return _relabel(roots)


def _relabel(raw):
    """Maps arbitrary integer labels to ``0..k-1``, largest cluster first."""
    uniq, first, counts = np.unique(raw, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], first[i]))
    lookup = {uniq[i]: new for new, i in enumerate(order)}
    return np.array([lookup[r] for r in raw], dtype=np.int64)


def effective_min_cluster_size(min_cluster_size, num_items):
    """``min(min_cluster_size, max(1, round(0.1 * num_items)))`` (pyannote's cap).

    Example
    -------
    >>> effective_min_cluster_size(15, 40), effective_min_cluster_size(15, 1000)
    (4, 15)
    >>> effective_min_cluster_size(3, 4)
    1
    """
    if int(min_cluster_size) < 1:
        raise ValueError(f"min_cluster_size must be >= 1, got {min_cluster_size}")
    return int(min(int(min_cluster_size), max(1, round(0.1 * int(num_items)))))


def merge_small_clusters(embeddings, labels, min_cluster_size, min_clusters=1):
    """Maps every cluster with fewer than ``min_cluster_size`` members to a large one.

    A cluster is *large* when it has ``>= min_cluster_size`` members. If fewer
    than ``min_clusters`` clusters are large, the biggest small clusters (ties:
    lowest label) are promoted to large until there are ``min_clusters`` of
    them (or no cluster is left). Every small cluster is then mapped to the
    large cluster whose centroid (mean of its ``embeddings``) has the highest
    cosine similarity with its own centroid. ``min_cluster_size`` is used as
    given (see :func:`effective_min_cluster_size` for pyannote's cap).

    Arguments
    ---------
    embeddings : numpy.ndarray
        ``[N, E]`` embeddings (typically L2-normalised).
    labels : numpy.ndarray
        ``[N]`` integer labels in ``[0, K)``.
    min_cluster_size : int
        Minimum size of a large cluster.
    min_clusters : int
        Minimum number of clusters to keep.

    Returns
    -------
    target : numpy.ndarray
        ``[K]`` int64: ``target[c]`` is the cluster that ``c`` is merged into
        (``c`` itself for a large cluster); new labels are ``target[labels]``.

    Example
    -------
    >>> emb = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [0.9, 0.2]])
    >>> merge_small_clusters(emb, np.array([0, 0, 1, 1, 2]), 2).tolist()
    [0, 1, 0]
    >>> merge_small_clusters(emb, np.array([0, 0, 1, 1, 2]), 3, min_clusters=2).tolist()
    [0, 1, 0]
    """
    labels = np.asarray(labels, dtype=np.int64)
    num_clusters = int(labels.max()) + 1 if labels.size else 0
    counts = np.bincount(labels, minlength=num_clusters)
    large = counts >= int(min_cluster_size)
    present = counts > 0
    want = min(int(min_clusters), int(present.sum()))
    if large.sum() < want:
        # promote the biggest small clusters (stable sort: lowest label first)
        order = np.argsort(-counts, kind="stable")
        for c in order:
            if large.sum() >= want:
                break
            large[c] = present[c]
    target = np.arange(num_clusters, dtype=np.int64)
    small = np.flatnonzero(present & ~large)
    large_ids = np.flatnonzero(large)
    if len(small) == 0 or len(large_ids) == 0:
        return target
    sums = np.zeros((num_clusters, embeddings.shape[1]))
    np.add.at(sums, labels, embeddings)
    centroids = _normalise(sums / np.maximum(counts, 1)[:, None])
    similarity = centroids[small] @ centroids[large_ids].T
    target[small] = large_ids[np.argmax(similarity, axis=1)]
    return target


def _search_num_large(Z, num_items, min_cluster_size, num_clusters, cut_height):
    """Number of merges giving exactly ``num_clusters`` large clusters, or None.

    Walks the linkage matrix once, tracking the number of clusters with at
    least ``min_cluster_size`` members after each merge; among the cuts with
    exactly ``num_clusters`` large clusters (and at least that many clusters),
    returns the one whose last merge height is the closest to ``cut_height``.
    """
    n, m = int(num_items), int(min_cluster_size)
    size = np.ones(2 * n, dtype=np.int64)
    num_large = n if m <= 1 else 0
    best, best_gap = None, np.inf
    for merges in range(0, n - num_clusters + 1):
        if merges > 0:
            a, b = int(Z[merges - 1, 0]), int(Z[merges - 1, 1])
            size[n + merges - 1] = size[a] + size[b]
            num_large += (int(size[a] + size[b] >= m) - int(size[a] >= m)
                          - int(size[b] >= m))
        if num_large == num_clusters:
            height = Z[merges - 1, 2] if merges > 0 else 0.0
            gap = abs(height - cut_height)
            if gap < best_gap:
                best, best_gap = merges, gap
    return best


def check_speaker_counts(num_speakers=None, min_speakers=None, max_speakers=None, **others):
    """Raise ``ValueError`` for a count below 1 or ``min_speakers > max_speakers``.

    ``others``: more name -> value pairs that must be >= 1 when given.

    Example
    -------
    >>> check_speaker_counts(min_speakers=3, max_speakers=2)
    Traceback (most recent call last):
    ...
    ValueError: min_speakers=3 > max_speakers=2
    """
    values = dict(num_speakers=num_speakers, min_speakers=min_speakers,
                  max_speakers=max_speakers, **others)
    for name, value in values.items():
        if value is not None and int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise ValueError(f"min_speakers={min_speakers} > max_speakers={max_speakers}")


def cluster_embeddings(
    embeddings,
    threshold=0.7,
    num_speakers=None,
    min_speakers=None,
    max_speakers=None,
    method="average",
    min_cluster_size=1,
):
    """Clusters speaker embeddings with cosine AHC.

    Arguments
    ---------
    embeddings : array-like
        ``[N, E]`` embeddings (numpy or torch); normalised internally.
    threshold : float
        Cosine-distance threshold: merges at height ``<= threshold`` are kept
        when ``num_speakers`` is None.
    num_speakers : int, optional
        Exact number of clusters (clipped to ``N``).
    min_speakers : int, optional
        Lower bound on the number of clusters (clipped to ``N``).
    max_speakers : int, optional
        Upper bound on the number of clusters.
    method : str
        Linkage method of :func:`scipy.cluster.hierarchy.linkage`.
    min_cluster_size : int
        Clusters with fewer members are merged into the most similar large
        cluster (see the module docstring); 1 disables this.

    Returns
    -------
    labels : numpy.ndarray
        ``[N]`` int64 labels in ``[0, k)``, label 0 being the largest cluster.

    Example
    -------
    >>> emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> cluster_embeddings(emb).tolist()
    [0, 0, 1, 1]
    >>> cluster_embeddings(emb, num_speakers=1).tolist()
    [0, 0, 0, 0]
    >>> cluster_embeddings(emb, threshold=1.5, min_speakers=2).tolist()
    [0, 0, 1, 1]
    >>> cluster_embeddings(np.zeros((0, 2))).tolist(), cluster_embeddings(emb[:1]).tolist()
    ([], [0])

    A stray embedding forms its own cluster unless ``min_cluster_size`` merges it:

    >>> rng = np.random.default_rng(0)
    >>> emb = np.vstack([rng.normal([5, 0, 0], 0.3, (15, 3)),
    ...                  rng.normal([0, 5, 0], 0.3, (15, 3)), [[3.0, 3.0, 3.0]]])
    >>> np.bincount(cluster_embeddings(emb, threshold=0.2)).tolist()
    [15, 15, 1]
    >>> np.bincount(cluster_embeddings(emb, threshold=0.2, min_cluster_size=3)).tolist()
    [16, 15]
    """
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    X = np.asarray(embeddings, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be [N, E], got shape {X.shape}")
    n = X.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    check_speaker_counts(num_speakers, min_speakers, max_speakers)
    min_size = effective_min_cluster_size(min_cluster_size, n)

    Xn = _normalise(X)
    if method in EUCLIDEAN_METHODS:
        Z = linkage(Xn, method=method, metric="euclidean")
        cut_height = np.sqrt(2.0 * max(threshold, 0.0))
    else:
        # 0.5 * ||a - b||^2 = 1 - cos(a, b) for unit vectors (no NaN for zero rows)
        dist = 0.5 * pdist(Xn, metric="sqeuclidean")
        Z = linkage(np.clip(dist, 0.0, 2.0), method=method)
        cut_height = threshold

    if min_size <= 1:
        if num_speakers is not None:
            k = min(int(num_speakers), n)
        else:
            k = n - int(np.sum(Z[:, 2] <= cut_height))
            if min_speakers is not None:
                k = max(k, min(int(min_speakers), n))
            if max_speakers is not None:
                k = min(k, int(max_speakers))
        return cut_linkage(Z, n, k)

    # min_cluster_size > 1: count "large" clusters only (pyannote's scheme)
    merges = int(np.sum(Z[:, 2] <= cut_height))
    labels = cut_linkage(Z, n, n - merges)
    num_large = int(np.sum(np.bincount(labels) >= min_size))
    lower = 1 if min_speakers is None else min(int(min_speakers), n)
    if num_speakers is not None:
        target = min(int(num_speakers), n)
    elif num_large < lower:
        target = lower
    elif max_speakers is not None and num_large > int(max_speakers):
        target = int(max_speakers)
    else:
        target = None
    if target is not None and target != num_large:
        found = _search_num_large(Z, n, min_size, target, cut_height)
        labels = cut_linkage(Z, n, n - (n - target if found is None else found))
    keep = target if target is not None else lower
    target_of = merge_small_clusters(Xn, labels, min_size, min_clusters=keep)
    return _relabel(target_of[labels])
