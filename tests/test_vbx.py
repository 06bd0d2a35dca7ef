"""PLDA training, VBx and VBx clustering on data drawn from a known PLDA model.

Generative model (``E = 32``): speaker latents ``y_s ~ N(0, diag(psi))``,
embeddings ``x = A (y_s + eps) + m`` with ``eps ~ N(0, I)``, ``A`` a random
well-conditioned linear map and ``m`` an offset. The PLDA transform must undo
``A``: within-speaker covariance ~I and across-speaker variances ~psi.
"""

import numpy as np
import pytest
import torch
from scipy.cluster.hierarchy import fcluster, linkage

from speechbrain_pruning.diarization.clustering import (
    _normalise,
    cluster_embeddings,
    effective_min_cluster_size,
    merge_small_clusters,
)
from speechbrain_pruning.diarization.plda import PLDA, _class_stats
from speechbrain_pruning.diarization.vbx import vbx, vbx_clustering

E = 32
PSI = np.geomspace(20.0, 0.5, E)  # true across-class variances, decreasing


class Model:
    """The generative PLDA model above, with a fixed map ``A`` and offset ``m``."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.A = rng.normal(size=(E, E)) / np.sqrt(E) + np.eye(E)
        self.m = 2.0 * rng.normal(size=E)

    def sample(self, rng, num_speakers, per_speaker, outlier_frac=0.0, outlier_scale=1.0):
        """``[S * n, E]`` embeddings (speaker-major) and their ``[S * n]`` labels."""
        y = rng.normal(size=(num_speakers, E)) * np.sqrt(PSI)
        labels = np.repeat(np.arange(num_speakers), per_speaker)
        noise = rng.normal(size=(len(labels), E))
        noise[rng.random(len(labels)) < outlier_frac] *= outlier_scale
        return (y[labels] + noise) @ self.A.T + self.m, labels


@pytest.fixture(scope="module")
def model():
    return Model(0)


@pytest.fixture(scope="module")
def plda(model):
    X, labels = model.sample(np.random.default_rng(1), 500, 10)
    return PLDA.train(X, labels)


def within_cov(F, labels):
    _, _, scatter = _class_stats(F, labels)
    return scatter / (len(F) - len(np.unique(labels)))


def same_partition(a, b):
    """True when label arrays ``a`` and ``b`` agree up to a permutation."""
    pairs = set(zip(np.asarray(a).tolist(), np.asarray(b).tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def refines(fine, coarse):
    """True when every cluster of ``fine`` lies inside one cluster of ``coarse``."""
    return len(set(zip(fine.tolist(), coarse.tolist()))) == len(set(fine.tolist()))


# ----------------------------------------------------------------------- PLDA
def test_plda_recovers_generative_model(model):
    rng = np.random.default_rng(2)
    X, labels = model.sample(rng, 1000, 10)
    held_out, held_labels = model.sample(rng, 1000, 10)

    # Linear pre-processing: the closed-form estimator is consistent
    linear = PLDA.train(X, labels, length_norm=False)
    assert linear.dim == E and linear.transform(X).shape == (10000, E)
    assert np.all(np.diff(linear.psi) <= 0)
    # on the training data T W T^T = I up to the tiny ridge
    np.testing.assert_allclose(within_cov(linear.transform(X), labels), np.eye(E), atol=1e-8)
    # held-out: sampling error of a 32x32 covariance from 9000 dof is ~0.01-0.03
    W = within_cov(linear.transform(held_out), held_labels)
    assert np.abs(W - np.eye(E)).max() < 0.08
    # psi: relative std error sqrt(2 / 1000) ~ 0.045 per value -> 20 % is > 4 sigma
    np.testing.assert_allclose(linear.psi, PSI, rtol=0.2)
    assert abs(np.mean(linear.psi / PSI) - 1) < 0.05

    # Kaldi/VBx pre-processing (two length normalisations): W ~ I still, psi
    # slightly shrunk by the length normalisation (measured ~0.9x)
    plda = PLDA.train(X, labels)
    assert plda.length_norm and plda.dim == E
    W = within_cov(plda.transform(held_out), held_labels)
    assert np.abs(W - np.eye(E)).max() < 0.1
    np.testing.assert_allclose(plda.psi, PSI, rtol=0.3)
    # held-out speaker means are uncorrelated across dimensions (diagonal B):
    # correlations of 1000 means, estimation noise of T included, measured <= 0.14
    means, _, _ = _class_stats(plda.transform(held_out), held_labels)
    assert np.abs(np.corrcoef(means.T) - np.eye(E)).max() < 0.25


def test_plda_lda_dim_and_torch(model):
    X, labels = model.sample(np.random.default_rng(3), 10, 5)
    assert PLDA.train(X, labels).dim == 9  # num_speakers - 1
    assert PLDA.train(X, labels, lda_dim=4).dim == 4
    plda = PLDA.train(torch.from_numpy(X), torch.from_numpy(labels), lda_dim=4)
    np.testing.assert_array_equal(plda.transform(torch.from_numpy(X)), plda.transform(X))
    # string labels work too
    plda2 = PLDA.train(X, np.array([f"spk{i}" for i in labels]), lda_dim=4)
    np.testing.assert_allclose(plda2.psi, plda.psi)


def test_plda_bad_input(model):
    X, labels = model.sample(np.random.default_rng(4), 5, 4)
    with pytest.raises(ValueError, match="at least 2 speakers, got 1"):
        PLDA.train(X, np.zeros(len(X)))
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PLDA.train(bad, labels)
    with pytest.raises(ValueError, match=r"shape \(20,\)"):
        PLDA.train(X[:, 0], labels)
    with pytest.raises(ValueError, match=r"shape \(19,\)"):
        PLDA.train(X, labels[:-1])
    with pytest.raises(ValueError, match="2 or more embeddings"):
        PLDA.train(X[:5], np.arange(5))
    plda = PLDA.train(X, labels)
    with pytest.raises(ValueError, match=r"got shape \(3, 7\)"):
        plda.transform(np.ones((3, 7)))


def test_plda_save_load_exact(tmp_path, plda, model):
    path = tmp_path / "plda.safetensors"
    plda.save(path)
    again = PLDA.load(path)
    for key, value in plda.state_dict().items():
        assert np.array_equal(again.state_dict()[key], value), key
        assert again.state_dict()[key].dtype == value.dtype
    X, _ = model.sample(np.random.default_rng(5), 3, 4)
    assert np.array_equal(again.transform(X), plda.transform(X))
    assert np.array_equal(PLDA.from_state_dict(plda.state_dict()).transform(X),
                          plda.transform(X))

    from safetensors.numpy import save_file

    partial = {k: v for k, v in plda.state_dict().items() if k not in ("psi", "mu")}
    broken = tmp_path / "broken.safetensors"
    save_file(partial, str(broken))
    with pytest.raises(KeyError) as err:
        PLDA.load(broken)
    assert "broken.safetensors" in str(err.value) and "'mu', 'psi'" in str(err.value)


# ------------------------------------------------------------------------ VBx
def test_vbx_update_properties(plda, model):
    X, labels = model.sample(np.random.default_rng(6), 3, 30)
    F = plda.transform(X)
    gamma, pi, elbo = vbx(F, plda.psi, Fa=0.3, Fb=1.0, pi=6, max_iters=40, epsilon=1e-6)
    assert gamma.shape == (90, 6) and pi.shape == (6,)
    np.testing.assert_allclose(gamma.sum(1), 1.0)
    np.testing.assert_allclose(pi.sum(), 1.0)
    assert np.all(np.diff(elbo) > -1e-6), elbo  # the ELBO never decreases
    assert int(np.sum(pi > 1e-3)) == 3  # the 3 spare speakers die
    assert same_partition(gamma.argmax(1), labels)
    # from a given initialisation the update is deterministic
    init = np.eye(3)[labels]
    g1, p1, _ = vbx(F, plda.psi, 0.07, 0.8, init)
    g2, p2, _ = vbx(F, plda.psi, 0.07, 0.8, init)
    assert np.array_equal(g1, g2) and np.array_equal(p1, p2)
    empty = vbx(np.zeros((0, E)), plda.psi, 0.07, 0.8, 4)
    assert empty[0].shape == (0, 4) and empty[2].shape == (0,)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        vbx(F, plda.psi[:5], 0.07, 0.8, 2)
    with pytest.raises(ValueError, match=r"\[N=90, S\]"):
        vbx(F, plda.psi, 0.07, 0.8, np.ones((5, 2)))


def test_vbx_fixes_ahc_over_splitting(plda, model):
    """10 % of the embeddings have 3x the noise: AHC at 0.6 isolates them,
    VBx (default Fa, Fb, threshold) finds exactly the 3 speakers."""
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        X, truth = model.sample(rng, 3, 40, outlier_frac=0.1, outlier_scale=3.0)
        ahc = fcluster(linkage(_normalise(X), "centroid"), 0.6, "distance")
        assert len(set(ahc)) >= 6  # over-split: spurious (mostly singleton) clusters
        assert np.sort(np.bincount(ahc))[-4] <= 2
        labels, centroids = vbx_clustering(X, plda)
        assert labels.dtype == np.int64 and centroids.shape == (3, E)
        assert same_partition(labels, truth)
        np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0)
        assert np.all(np.diff(np.bincount(labels)) <= 0)  # label 0 is the largest
        # centroid of cluster c is the (normalised) mean of its embeddings
        for c in range(3):
            mean = X[labels == c].mean(0)
            assert mean @ centroids[c] / np.linalg.norm(mean) > 0.999


def test_vbx_unequal_speakers(plda, model):
    rng = np.random.default_rng(7)
    parts = [model.sample(rng, 1, n) for n in (60, 25, 12, 6)]
    X = np.vstack([p[0] for p in parts])
    truth = np.concatenate([np.full(len(p[1]), i) for i, p in enumerate(parts)])
    labels, centroids = vbx_clustering(X, plda)
    assert same_partition(labels, truth) and len(centroids) == 4
    assert np.bincount(labels).tolist() == [60, 25, 12, 6]
    # min_cluster_size merges the 6-embedding speaker (103 embeddings: cap 10)
    # into one of the others, whole
    labels, centroids = vbx_clustering(X, plda, min_cluster_size=8)
    assert len(centroids) == 3 and refines(truth, labels)
    assert sorted(np.bincount(labels).tolist()) in ([12, 25, 66], [18, 25, 60], [12, 31, 60])
    # ... but never below min_speakers / num_speakers
    assert len(set(vbx_clustering(X, plda, min_cluster_size=8, min_speakers=4)[0])) == 4
    # pyannote's cap: min_cluster_size 15 acts as round(0.1 * 103) = 10
    assert np.array_equal(vbx_clustering(X, plda, min_cluster_size=15)[0], labels)
    assert same_partition(vbx_clustering(X, plda, min_cluster_size=8, num_speakers=4)[0],
                          truth)


def test_vbx_number_of_speakers(plda, model):
    X, truth = model.sample(np.random.default_rng(8), 4, 20)
    auto, _ = vbx_clustering(X, plda)
    assert same_partition(auto, truth)
    for k in (1, 2, 3, 4, 5, 7, 12):
        labels, centroids = vbx_clustering(X, plda, num_speakers=k)
        assert sorted(set(labels.tolist())) == list(range(k)) and centroids.shape == (k, E)
        assert refines(truth, labels) if k <= 4 else refines(labels, truth)
    assert np.array_equal(vbx_clustering(X, plda, num_speakers=4)[0], auto)
    assert len(set(vbx_clustering(X, plda, num_speakers=500)[0])) == 80  # clipped to N
    assert len(set(vbx_clustering(X, plda, min_speakers=6)[0])) == 6
    assert len(set(vbx_clustering(X, plda, max_speakers=2)[0])) == 2
    assert np.array_equal(vbx_clustering(X, plda, min_speakers=2, max_speakers=6)[0], auto)
    # bounds are also honoured when the AHC threshold alone would give 1 or N clusters
    assert len(set(vbx_clustering(X, plda, threshold=2.0, min_speakers=3)[0])) >= 3
    assert len(set(vbx_clustering(X, plda, threshold=0.0, max_speakers=5)[0])) <= 5


def test_vbx_degenerate_inputs(plda, model):
    labels, centroids = vbx_clustering(np.zeros((0, E)), plda)
    assert labels.shape == (0,) and labels.dtype == np.int64 and centroids.shape == (0, E)
    X, _ = model.sample(np.random.default_rng(9), 2, 5)
    labels, centroids = vbx_clustering(X[:1], plda, num_speakers=3)
    assert labels.tolist() == [0] and centroids.shape == (1, E)
    same = np.tile(X[:1], (12, 1))
    labels, centroids = vbx_clustering(same, plda)
    assert labels.tolist() == [0] * 12 and np.allclose(np.linalg.norm(centroids), 1)
    labels, centroids = vbx_clustering(same, plda, num_speakers=3)
    assert sorted(set(labels.tolist())) == [0, 1, 2] and centroids.shape == (3, E)
    t_labels, _ = vbx_clustering(torch.from_numpy(X), plda)
    assert np.array_equal(t_labels, vbx_clustering(X, plda)[0])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        vbx_clustering(bad, plda)
    with pytest.raises(ValueError, match=r"got shape \(10, 8\)"):
        vbx_clustering(X[:, :8], plda)
    with pytest.raises(ValueError, match="min_speakers=3 > max_speakers=2"):
        vbx_clustering(X, plda, min_speakers=3, max_speakers=2)


def test_vbx_clustering_from_file(tmp_path, plda, model):
    plda.save(tmp_path / "p.safetensors")
    X, _ = model.sample(np.random.default_rng(10), 3, 10)
    assert np.array_equal(vbx_clustering(X, str(tmp_path / "p.safetensors"))[0],
                          vbx_clustering(X, plda)[0])


# ------------------------------------------------------------ AHC min size
def test_ahc_min_cluster_size(model):
    X, truth = model.sample(np.random.default_rng(11), 3, 40, 0.1, 3.0)
    plain = cluster_embeddings(X, threshold=0.18, method="centroid")
    assert len(set(plain)) >= 6  # outliers form their own clusters
    merged = cluster_embeddings(X, threshold=0.18, method="centroid", min_cluster_size=5)
    assert same_partition(merged, truth)
    for k in (2, 3, 4):
        labels = cluster_embeddings(X, threshold=0.18, method="centroid",
                                    min_cluster_size=5, num_speakers=k)
        assert len(set(labels)) == k
        assert refines(truth, labels) if k <= 3 else refines(labels, truth)
    labels = cluster_embeddings(X, threshold=0.18, method="centroid", min_cluster_size=5,
                                min_speakers=5)
    assert len(set(labels)) == 5
    labels = cluster_embeddings(X, threshold=0.18, method="centroid", min_cluster_size=5,
                                max_speakers=2)
    assert len(set(labels)) == 2 and refines(truth, labels)
    # identical embeddings: the count is still honoured
    assert len(set(cluster_embeddings(np.ones((60, 3)), num_speakers=3,
                                      min_cluster_size=10))) == 3
    assert effective_min_cluster_size(15, 120) == 12
    with pytest.raises(ValueError, match="min_cluster_size"):
        cluster_embeddings(X, min_cluster_size=0)


def test_merge_small_clusters():
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.2, 1.0], [1.0, 0.1]])
    labels = np.array([0, 0, 1, 1, 2, 3])
    assert merge_small_clusters(emb, labels, 2).tolist() == [0, 1, 1, 0]
    # min_clusters=3 promotes the biggest small cluster (lowest label on ties)
    assert merge_small_clusters(emb, labels, 2, min_clusters=3).tolist() == [0, 1, 2, 0]
    assert merge_small_clusters(emb, labels, 1).tolist() == [0, 1, 2, 3]


def test_vbx_npz_files_of_diarizen_and_pyannote(tmp_path):
    """plda/{xvec_transform,plda}.npz read as their vbx_setup reads them (written out here)."""
    from scipy.linalg import eigh as scipy_eigh

    from speechbrain_pruning.diarization.plda import PLDA

    rng = np.random.default_rng(3)
    E, D = 12, 6
    lda = rng.normal(size=(E, D))
    mean1, mean2, mu = rng.normal(size=E), rng.normal(size=D), rng.normal(size=D)
    tr = rng.normal(size=(D, D)) + 3 * np.eye(D)
    psi = np.sort(rng.uniform(0.5, 20, size=D))[::-1]
    np.savez(tmp_path / "xvec_transform.npz", mean1=mean1, mean2=mean2, lda=lda)
    np.savez(tmp_path / "plda.npz", mu=mu, tr=tr, psi=psi)
    plda = PLDA.from_vbx_npz(tmp_path)

    def l2(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    W = np.linalg.inv(tr.T @ tr)
    B = np.linalg.inv((tr.T / psi) @ tr)
    acvar, wccn = scipy_eigh(B, W)
    x = rng.normal(size=(5, E))
    xvec = np.sqrt(D) * l2((lda.T @ (np.sqrt(E) * l2(x - mean1)).T).T - mean2)
    expected = (xvec - mu) @ wccn.T[::-1].T
    assert np.allclose(plda.transform(x), expected, atol=1e-10)
    assert np.allclose(plda.psi, acvar[::-1])
    (tmp_path / "plda.npz").unlink()
    with pytest.raises(FileNotFoundError, match="plda.npz"):
        PLDA.from_vbx_npz(tmp_path)
