"""Agglomerative hierarchical clustering (AHC) of speaker embeddings.

The embeddings are L2-normalised and compared with the cosine distance
``1 - cos(a, b)`` (in ``[0, 2]``). The dendrogram is built once with
:func:`scipy.cluster.hierarchy.linkage` and then cut:

* ``num_speakers`` given: the dendrogram is cut into exactly
  ``min(num_speakers, N)`` clusters;
* else every merge whose linkage height is ``<= threshold`` is kept, and the
  resulting number of clusters is clamped into ``[min_speakers,
  max_speakers]`` (each bound optional) by cutting the dendrogram again.

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

__all__ = ["cluster_embeddings", "cut_linkage"]

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


def cluster_embeddings(
    embeddings,
    threshold=0.7,
    num_speakers=None,
    min_speakers=None,
    max_speakers=None,
    method="average",
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
    """
    if hasattr(embeddings, "detach"):
        embeddings = embeddings.detach().cpu().numpy()
    X = np.asarray(embeddings, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be [N, E], got shape {X.shape}")
    n = X.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=np.int64)
    for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                        ("max_speakers", max_speakers)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise ValueError(f"min_speakers={min_speakers} > max_speakers={max_speakers}")

    Xn = _normalise(X)
    if method in EUCLIDEAN_METHODS:
        Z = linkage(Xn, method=method, metric="euclidean")
        cut_height = np.sqrt(2.0 * max(threshold, 0.0))
    else:
        # 0.5 * ||a - b||^2 = 1 - cos(a, b) for unit vectors (no NaN for zero rows)
        dist = 0.5 * pdist(Xn, metric="sqeuclidean")
        Z = linkage(np.clip(dist, 0.0, 2.0), method=method)
        cut_height = threshold

    if num_speakers is not None:
        k = min(int(num_speakers), n)
    else:
        k = n - int(np.sum(Z[:, 2] <= cut_height))
        if min_speakers is not None:
            k = max(k, min(int(min_speakers), n))
        if max_speakers is not None:
            k = min(k, int(max_speakers))
    return cut_linkage(Z, n, k)
