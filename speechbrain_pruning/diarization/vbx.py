"""VBx clustering of speaker embeddings with a PLDA, as in DiariZen / pyannote.audio.

VBx (Landini, Profant, Diez, Burget: "Bayesian HMM clustering of x-vector
sequences (VBx) in speaker diarization", Computer Speech & Language 2022)
is a variational-Bayes mixture of speaker models on the PLDA latent space.
The embeddings are first mapped with :meth:`.plda.PLDA.transform` to
features ``x_t`` ``[N, D]`` in which, for speaker ``s``,

.. math::

    x_t = V y_s + \\epsilon_t, \\quad V = \\operatorname{diag}(\\sqrt{\\Phi}),
    \\quad y_s \\sim \\mathcal{N}(0, I), \\quad \\epsilon_t \\sim \\mathcal{N}(0, I).

With responsibilities ``gamma [N, S]`` (``q(z_t = s)``) and speaker priors
``pi [S]``, one iteration of :func:`vbx` computes

* ``q(y_s) = N(alpha_s, diag(invL_s))`` with
  ``invL_s = 1 / (1 + Fa/Fb * N_s * Phi)``, ``N_s = sum_t gamma_ts`` and
  ``alpha_s = Fa/Fb * invL_s * sum_t gamma_ts rho_t``, ``rho_t = sqrt(Phi) x_t``
  (eqs. 16-18 of the paper);
* ``log p_ts = Fa * (rho_t . alpha_s - 1/2 sum_d (invL_sd + alpha_sd^2) Phi_d
  - 1/2 (|x_t|^2 + D log 2 pi))``, the expected log-likelihood (eq. 23);
* ``gamma_ts = pi_s exp(log p_ts) / sum_r pi_r exp(log p_tr)`` and
  ``pi_s = mean_t gamma_ts``;
* the evidence lower bound ``ELBO = sum_t log sum_s pi_s exp(log p_ts)
  + Fb/2 sum_s sum_d (log invL_sd - invL_sd - alpha_sd^2 + 1)`` (eq. 25).

``Fa`` scales the acoustic evidence (embeddings are correlated, so each counts
as a fraction of an observation) and ``Fb`` the speaker prior: a small ``Fb``
makes new speakers expensive, so the priors ``pi`` of redundant speakers go
to zero and VBx estimates the number of speakers. Embeddings of overlapping
chunks are not a time sequence, so, as in pyannote.audio, the HMM loop
probability is 0, which turns the forward-backward pass of the original VBx
into this plain VB-GMM update.

:func:`vbx_clustering` follows pyannote.audio's ``VBxClustering`` (also
used by DiariZen):

1. AHC initialisation: centroid linkage on L2-normalised embeddings with the
   Euclidean distance, flat clusters cut at ``threshold`` (a Euclidean
   distance between unit vectors, ``sqrt(2 (1 - cos))``; 0.6 is a cosine
   distance of 0.18);
2. VBx from the one-hot AHC labels softened by ``softmax(7 * onehot)``, on the
   first ``lda_dim`` PLDA dimensions;
3. speakers with prior ``pi <= 1e-7`` are dropped, each embedding goes to its
   most responsible speaker, speakers left without embeddings are dropped;
4. optional ``min_cluster_size``: speakers with fewer embeddings are merged
   (their responsibilities summed) into the speaker with the most
   cosine-similar centroid, never below ``num_speakers`` / ``min_speakers``;
5. if the number of speakers ``G`` must change (``num_speakers`` given and
   different, or outside ``[min_speakers, max_speakers]``), the partition is
   re-clustered into exactly ``k`` clusters. pyannote.audio runs scikit-learn
   KMeans (random k-means++ restarts) on the L2-normalised embeddings; here
   k-means on the L2-normalised embeddings is initialised deterministically
   from the VBx partition: clusters are merged by the smallest Ward cost
   ``n_a n_b / (n_a + n_b) |c_a - c_b|^2`` while ``G > k`` (so tiny clusters
   go first) or the cluster with the largest scatter is split in two while
   ``G < k``, then Lloyd iterations run with empty clusters re-seeded by the
   embedding farthest from its centroid, so exactly ``k`` clusters come out
   whenever ``N >= k`` (``k`` is clipped to ``N``);
6. centroids are the responsibility-weighted means (one-hot after step 5) of
   the original embeddings, L2-normalised; labels are renumbered so that 0 is
   the largest cluster.

Defaults (``threshold=0.6``, ``Fa=0.07``, ``Fb=0.8``, ``lda_dim=128``,
``max_iters=20``, ``init_smoothing=7``) are those of pyannote.audio 4's
``pyannote/speaker-diarization-community-1`` (``VBxClustering`` with
``threshold: 0.6, Fa: 0.07, Fb: 0.8``; PLDA ``lda_dimension=128``;
``maxIters=20`` and ``init_smoothing=7.0`` in its ``cluster_vbx``) and of
DiariZen's released ``VBxClustering`` configuration (``ahc_threshold = 0.6``,
``Fa = 0.07``, ``Fb = 0.8``, ``lda_dim = 128``, ``max_iters = 20``).

Authors
 * speechbrain_pruning contributors
"""

import os

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.special import logsumexp, softmax

from .clustering import (_normalise, check_speaker_counts, effective_min_cluster_size,
                         merge_small_clusters)
from .plda import PLDA

__all__ = ["vbx", "vbx_clustering"]

LOG_PI_EPS = 1e-8  # added to the priors before the log, as in BUT's VBx
MIN_PRIOR = 1e-7  # speakers with a smaller prior are dropped (pyannote)


def _to_numpy(x, name):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    X = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return X


def vbx(X, Phi, Fa, Fb, pi, max_iters=20, epsilon=1e-4, seed=0):
    """Variational-Bayes resegmentation (VBx with loop probability 0).

    Arguments
    ---------
    X : array-like
        ``[N, D]`` features in the PLDA space (within-class covariance ``I``).
    Phi : array-like
        ``[D]`` across-class variances (``PLDA.psi``), ``>= 0``.
    Fa : float
        Scale of the acoustic evidence, ``> 0``.
    Fb : float
        Speaker regularisation, ``> 0`` (smaller: fewer speakers).
    pi : int or array-like
        Initial responsibilities ``[N, S]`` (rows are normalised), or the
        maximum number of speakers ``S`` (responsibilities then drawn from a
        flat Dirichlet with ``seed``). The initial priors are uniform.
    max_iters : int
        Maximum number of VB iterations.
    epsilon : float
        Stop when the ELBO improves by less than this.
    seed : int
        Seed of the random initialisation when ``pi`` is an int.

    Returns
    -------
    gamma : numpy.ndarray
        ``[N, S]`` responsibilities (rows sum to 1).
    pi : numpy.ndarray
        ``[S]`` speaker priors (sum to 1); redundant speakers go to ~0.
    elbo : numpy.ndarray
        ``[iterations]`` ELBO after each iteration (non-decreasing).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(3, 1, (20, 4)), rng.normal(-3, 1, (20, 4))])
    >>> init = np.full((40, 3), 1 / 3)
    >>> init[:, 0] += np.linspace(-0.1, 0.1, 40)  # break the symmetry
    >>> init[:, 1] -= np.linspace(-0.1, 0.1, 40)
    >>> gamma, pi, elbo = vbx(X, np.full(4, 9.0), Fa=1.0, Fb=1.0, pi=init)
    >>> gamma.argmax(1)[:20].tolist() == [gamma.argmax(1)[0]] * 20
    True
    >>> int(np.sum(pi > 1e-3)), bool(np.all(np.diff(elbo) > -1e-9))
    (2, True)
    """
    X = _to_numpy(X, "X")
    Phi = _to_numpy(Phi, "Phi").reshape(-1)
    if X.ndim != 2:
        raise ValueError(f"X must be [N, D], got shape {X.shape}")
    n, d = X.shape
    if Phi.shape != (d,):
        raise ValueError(f"Phi must be [D]=({d},), got shape {Phi.shape}")
    if np.any(Phi < 0):
        raise ValueError("Phi must be non-negative")
    if not (Fa > 0 and Fb > 0):
        raise ValueError(f"Fa and Fb must be > 0, got Fa={Fa}, Fb={Fb}")
    if isinstance(pi, (int, np.integer)):
        if pi < 1:
            raise ValueError(f"the number of speakers must be >= 1, got {pi}")
        gamma = np.random.default_rng(seed).gamma(1.0, size=(n, int(pi)))
    else:
        gamma = _to_numpy(pi, "initial responsibilities")
        if gamma.ndim != 2 or gamma.shape[0] != n or gamma.shape[1] < 1:
            raise ValueError(
                f"initial responsibilities must be [N={n}, S], got shape {gamma.shape}"
            )
        if np.any(gamma < 0):
            raise ValueError("initial responsibilities must be non-negative")
    num_speakers = gamma.shape[1]
    gamma = gamma / np.maximum(gamma.sum(axis=1, keepdims=True), 1e-300)
    priors = np.full(num_speakers, 1.0 / num_speakers)
    if n == 0:
        return gamma, priors, np.zeros(0)

    const = -0.5 * (np.sum(X**2, axis=1) + d * np.log(2 * np.pi))  # [N]
    rho = X * np.sqrt(Phi)  # [N, D]
    ratio = Fa / Fb
    elbo = []
    for _ in range(int(max_iters)):
        counts = gamma.sum(axis=0)  # [S]
        inv_l = 1.0 / (1.0 + ratio * counts[:, None] * Phi)  # [S, D]
        alpha = ratio * inv_l * (gamma.T @ rho)  # [S, D]
        log_p = Fa * (rho @ alpha.T - 0.5 * ((inv_l + alpha**2) @ Phi)
                      + const[:, None])  # [N, S]
        log_joint = log_p + np.log(priors + LOG_PI_EPS)
        log_marginal = logsumexp(log_joint, axis=1)  # [N]
        gamma = np.exp(log_joint - log_marginal[:, None])
        priors = gamma.sum(axis=0)
        priors /= priors.sum()
        elbo.append(log_marginal.sum()
                    + 0.5 * Fb * np.sum(np.log(inv_l) - inv_l - alpha**2 + 1.0))
        if len(elbo) > 1 and elbo[-1] - elbo[-2] < epsilon:
            break
    return gamma, priors, np.asarray(elbo)


def _ward_merge(Xn, labels, k):
    """Merges clusters of ``labels`` by the smallest Ward cost until ``k`` remain."""
    labels = labels.copy()
    ids = list(np.unique(labels))
    sums = {c: Xn[labels == c].sum(axis=0) for c in ids}
    sizes = {c: int(np.sum(labels == c)) for c in ids}
    while len(ids) > k:
        best, best_cost = None, np.inf
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                diff = sums[a] / sizes[a] - sums[b] / sizes[b]
                cost = sizes[a] * sizes[b] / (sizes[a] + sizes[b]) * float(diff @ diff)
                if cost < best_cost:
                    best, best_cost = (a, b), cost
        a, b = best
        labels[labels == b] = a
        sums[a] = sums[a] + sums.pop(b)
        sizes[a] += sizes.pop(b)
        ids.remove(b)
    return labels


def _bisect(Xn, labels, k):
    """Splits the cluster with the largest scatter in two until ``k`` clusters exist."""
    labels = labels.copy()
    while len(np.unique(labels)) < k:
        ids = np.unique(labels)
        scores = []
        for c in ids:
            members = Xn[labels == c]
            sse = float(np.sum((members - members.mean(axis=0)) ** 2))
            scores.append((len(members) >= 2, sse, len(members), -int(c)))
        c = ids[max(range(len(ids)), key=lambda i: scores[i])]
        idx = np.flatnonzero(labels == c)
        members = Xn[idx]
        far1 = int(np.argmax(np.sum((members - members.mean(axis=0)) ** 2, axis=1)))
        far2 = int(np.argmax(np.sum((members - members[far1]) ** 2, axis=1)))
        if far1 == far2:  # all members identical: split off one of them
            to_2 = np.zeros(len(idx), dtype=bool)
            to_2[-1] = True
        else:  # 2-means seeded with two far-apart members
            to_2 = (np.sum((members - members[far2]) ** 2, axis=1)
                    < np.sum((members - members[far1]) ** 2, axis=1))
            to_2[far2], to_2[far1] = True, False
        labels[idx[to_2]] = labels.max() + 1
    return labels


def _kmeans_exact(Xn, labels, k, max_iters=50):
    """k-means on ``Xn [N, E]`` from ``labels``, returning exactly ``min(k, N)`` clusters."""
    n = Xn.shape[0]
    k = min(int(k), n)
    _, labels = np.unique(labels, return_inverse=True)
    if labels.max() + 1 > k:
        labels = _ward_merge(Xn, labels, k)
    elif labels.max() + 1 < k:
        labels = _bisect(Xn, labels, k)
    _, labels = np.unique(labels, return_inverse=True)
    for _ in range(max_iters):
        sums = np.zeros((k, Xn.shape[1]))
        np.add.at(sums, labels, Xn)
        centroids = sums / np.maximum(np.bincount(labels, minlength=k), 1)[:, None]
        dist = (np.sum(Xn**2, axis=1, keepdims=True) - 2 * Xn @ centroids.T
                + np.sum(centroids**2, axis=1))
        new = np.argmin(dist, axis=1)
        counts = np.bincount(new, minlength=k)
        for empty in np.flatnonzero(counts == 0):
            # re-seed with the member farthest from its centroid, among
            # clusters that can spare one
            own = dist[np.arange(n), new]
            own = np.where(counts[new] >= 2, own, -np.inf)
            moved = int(np.argmax(own))
            counts[new[moved]] -= 1
            new[moved] = empty
            counts[empty] = 1
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def vbx_clustering(
    embeddings,
    plda,
    threshold=0.6,
    Fa=0.07,
    Fb=0.8,
    lda_dim=128,
    max_iters=20,
    num_speakers=None,
    min_speakers=None,
    max_speakers=None,
    min_cluster_size=1,
    init_smoothing=7.0,
):
    """Clusters speaker embeddings with AHC-initialised VBx (see the module docstring).

    Arguments
    ---------
    embeddings : array-like
        ``[N, E]`` embeddings (numpy or torch), without NaN.
    plda : PLDA or str or os.PathLike
        Trained :class:`.plda.PLDA` (or a file saved by ``PLDA.save``) with
        input dimension ``E``.
    threshold : float
        AHC cut: Euclidean distance between L2-normalised embeddings (centroid
        linkage). Default 0.6 (pyannote community-1, DiariZen).
    Fa : float
        VBx acoustic scaling. Default 0.07 (pyannote community-1, DiariZen).
    Fb : float
        VBx speaker regularisation. Default 0.8 (pyannote community-1, DiariZen).
    lda_dim : int
        Number of leading PLDA dimensions used. Default 128 (pyannote, DiariZen).
    max_iters : int
        Maximum number of VBx iterations. Default 20 (pyannote, DiariZen).
    num_speakers : int, optional
        Exact number of speakers (clipped to ``N``).
    min_speakers : int, optional
        Lower bound on the number of speakers (clipped to ``N``).
    max_speakers : int, optional
        Upper bound on the number of speakers.
    min_cluster_size : int
        VBx speakers with fewer embeddings are merged into the most similar
        one (1 = off, as pyannote's and DiariZen's VBx); capped to
        ``max(1, round(0.1 N))`` like pyannote's AHC.
    init_smoothing : float
        VBx initial responsibilities are ``softmax(init_smoothing * onehot)``
        of the AHC labels; a negative value uses the one-hot labels as is.

    Returns
    -------
    labels : numpy.ndarray
        ``[N]`` int64 labels in ``[0, G)``, label 0 being the largest cluster.
    centroids : numpy.ndarray
        ``[G, E]`` L2-normalised cluster centroids in the embedding space.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> train_labels = np.repeat(np.arange(50), 10)
    >>> speakers = rng.normal(size=(50, 8)) * 3
    >>> plda = PLDA.train(speakers[train_labels] + rng.normal(size=(500, 8)),
    ...                   train_labels)
    >>> emb = np.vstack([speakers[i] + rng.normal(size=(15, 8)) for i in (0, 1, 2)])
    >>> labels, centroids = vbx_clustering(emb, plda)
    >>> labels.reshape(3, 15).max(1).tolist() == labels.reshape(3, 15).min(1).tolist()
    True
    >>> len(set(labels.tolist())), centroids.shape
    (3, (3, 8))
    >>> len(set(vbx_clustering(emb, plda, num_speakers=2)[0].tolist()))
    2
    """
    if isinstance(plda, (str, os.PathLike)):
        plda = PLDA.load(plda)
    X = _to_numpy(embeddings, "embeddings")
    if X.ndim != 2:
        raise ValueError(f"embeddings must be [N, E], got shape {X.shape}")
    n, e = X.shape
    if n > 0 and e != plda.input_dim:
        raise ValueError(
            f"embeddings must be [N, {plda.input_dim}] for this PLDA, got shape {X.shape}"
        )
    check_speaker_counts(num_speakers, min_speakers, max_speakers, lda_dim=lda_dim,
                         min_cluster_size=min_cluster_size)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, e))

    # allowed range of the number of speakers (as pyannote's set_num_clusters)
    lower = num_speakers or min_speakers or 1
    lower = max(1, min(n, int(lower)))
    upper = num_speakers or max_speakers or n
    upper = max(1, min(n, int(upper)))
    Xn = _normalise(X)
    if n == 1 or upper == 1:
        return np.zeros(n, dtype=np.int64), _normalise(X.mean(axis=0, keepdims=True))

    # 1. AHC initialisation
    dendrogram = linkage(Xn, method="centroid", metric="euclidean")
    ahc = fcluster(dendrogram, threshold, criterion="distance")
    _, ahc = np.unique(ahc, return_inverse=True)
    init = np.zeros((n, ahc.max() + 1))
    init[np.arange(n), ahc] = 1.0
    if init_smoothing >= 0:
        init = softmax(init * init_smoothing, axis=1)

    # 2. VBx in the PLDA space
    fea = plda.transform(X)[:, :lda_dim]
    phi = plda.psi[:lda_dim]
    gamma, priors, _ = vbx(fea, phi, Fa=Fa, Fb=Fb, pi=init, max_iters=max_iters)

    # 3. drop speakers with ~0 prior or without any embedding
    gamma = gamma[:, priors > MIN_PRIOR]
    used, labels = np.unique(np.argmax(gamma, axis=1), return_inverse=True)
    gamma = gamma[:, used]

    # 4. small speakers are merged (responsibilities summed)
    min_size = effective_min_cluster_size(min_cluster_size, n)
    if min_size > 1:
        target = merge_small_clusters(Xn, labels, min_size, min_clusters=lower)
        merged = np.zeros_like(gamma)
        np.add.at(merged.T, target, gamma.T)
        kept, labels = np.unique(target[labels], return_inverse=True)
        gamma = merged[:, kept]

    # 5. enforce the number of speakers
    num_found = gamma.shape[1]
    if num_found < lower or num_found > upper:
        k = lower if num_found < lower else upper
        labels = _kmeans_exact(Xn, labels, k)
        gamma = np.zeros((n, k))
        gamma[np.arange(n), labels] = 1.0

    # 6. centroids in the embedding space; label 0 = largest cluster
    centroids = _normalise(gamma.T @ X / np.maximum(gamma.sum(axis=0), 1e-300)[:, None])
    counts = np.bincount(labels, minlength=gamma.shape[1])
    first = np.array([np.flatnonzero(labels == c)[0] for c in range(gamma.shape[1])])
    order = np.lexsort((first, -counts))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[labels].astype(np.int64), centroids[order]
