"""Two-covariance PLDA for speaker embeddings, trained in closed form.

This is the back-end that VBx clustering (:mod:`.vbx`) works with: a fixed
transform that maps speaker embeddings ``[N, E]`` into a ``D``-dimensional
space where, for embeddings of one speaker,

.. math::

    z = y_s + \\epsilon, \\qquad y_s \\sim \\mathcal{N}(0, \\operatorname{diag}(\\psi)),
    \\qquad \\epsilon \\sim \\mathcal{N}(0, I),

i.e. the within-speaker covariance is the identity and the across-speaker
covariance is diagonal with variances ``psi`` (sorted in decreasing order).

Pre-processing (``xvec_tf``), as in the Kaldi / BUT VBx x-vector recipe that
DiariZen and pyannote.audio load from ``xvec_transform.npz``:

1. centre with the global training mean ``mean1`` ``[E]``;
2. length-normalise, scaled by ``sqrt(E)`` (so that the mean squared value of
   a coordinate is 1);
3. LDA ``[E, D]`` with ``D = min(lda_dim, E, num_speakers - 1)``: the
   directions ``v`` maximising ``v^T S_b v / v^T S_w v`` (between- and
   within-class scatter), obtained by whitening ``S_w`` and diagonalising the
   whitened ``S_b``;
4. re-centre with the mean ``mean2`` ``[D]`` of the projected training data;
5. length-normalise again, scaled by ``sqrt(D)``.

Steps 2 and 5 can be switched off with ``length_norm=False`` (then the
transform is linear, which the unit tests use to check the estimator
against the generating model).

PLDA (closed form, no EM): on the pre-processed training data ``z`` with
``S`` speakers, ``n_s`` embeddings and mean ``m_s`` for speaker ``s``,

* ``mu`` = mean of all ``z``;
* ``W = sum_s sum_{i in s} (z_i - m_s)(z_i - m_s)^T / (N - S)`` (unbiased
  within-class covariance);
* ``B = sum_s (m_s - m)(m_s - m)^T / (S - 1) - mean_s(1 / n_s) W`` with ``m``
  the average of the speaker means: the covariance of the speaker means minus
  the part of it due to within-speaker noise (``Cov(m_s) = B + W / n_s``), so
  ``B`` is unbiased for any speaker sizes.

``scipy.linalg.eigh(B, W)`` then solves ``B v = psi W v`` and returns
eigenvectors normalised so that ``V^T W V = I`` and ``V^T B V = diag(psi)``:
``T = V^T`` (rows sorted by decreasing ``psi``) diagonalises both
covariances at once. Negative ``psi`` (possible with the moment estimator
when a direction carries no speaker information) are clipped to 0.

:meth:`PLDA.transform` applies ``xvec_tf`` then ``(z - mu) T^T``.

Authors
 * speechbrain_pruning contributors
"""

import os

import numpy as np
from scipy.linalg import eigh

__all__ = ["PLDA"]

NORM_EPS = 1e-12
EIG_FLOOR = 1e-10  # relative floor on eigenvalues of within-class matrices
_KEYS = ("mean1", "lda", "mean2", "mu", "transform", "psi", "length_norm")


def _to_numpy(x, name):
    """``x`` (numpy, list or torch) as a float64 array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}") from err


def _length_norm(x, scale):
    """Rows of ``x [N, D]`` scaled to L2 norm ``scale`` (zero rows stay 0)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return scale * x / np.maximum(norms, NORM_EPS)


def _class_stats(x, labels):
    """Speaker means ``[S, D]``, counts ``[S]`` and within-class scatter ``[D, D]``."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), x.shape[1]))
    np.add.at(sums, inverse, x)
    means = sums / counts[:, None]
    centred = x - means[inverse]
    return means, counts, centred.T @ centred


def _inv_sqrt_psd(mat):
    """Symmetric ``mat^{-1/2}`` with eigenvalues floored relative to the largest."""
    vals, vecs = np.linalg.eigh(0.5 * (mat + mat.T))
    floor = max(float(vals.max()), NORM_EPS) * EIG_FLOOR
    return (vecs / np.sqrt(np.maximum(vals, floor))) @ vecs.T


class PLDA:
    """Two-covariance PLDA with the Kaldi/VBx x-vector pre-processing.

    Build one with :meth:`PLDA.train` or :meth:`PLDA.load`; the constructor
    takes the raw parameters (see :meth:`state_dict`).

    Arguments
    ---------
    mean1 : numpy.ndarray
        ``[E]`` global mean of the training embeddings.
    lda : numpy.ndarray
        ``[E, D]`` LDA projection.
    mean2 : numpy.ndarray
        ``[D]`` mean of the projected training embeddings.
    mu : numpy.ndarray
        ``[D]`` PLDA mean (in the pre-processed space).
    transform : numpy.ndarray
        ``[D, D]`` matrix ``T`` with ``T W T^T = I`` and ``T B T^T = diag(psi)``.
    psi : numpy.ndarray
        ``[D]`` across-class variances in the PLDA space, decreasing.
    length_norm : bool
        Whether the pre-processing length-normalises (steps 2 and 5).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> speakers = rng.normal(size=(20, 8)) * 3.0
    >>> labels = np.repeat(np.arange(20), 10)
    >>> emb = speakers[labels] + rng.normal(size=(200, 8))
    >>> plda = PLDA.train(emb, labels, lda_dim=6)
    >>> plda.transform(emb).shape, plda.psi.shape
    ((200, 6), (6,))
    >>> bool(np.all(np.diff(plda.psi) <= 0))
    True
    """

    def __init__(self, mean1, lda, mean2, mu, transform, psi, length_norm=True):
        self.mean1 = _to_numpy(mean1, "mean1")
        self.lda = _to_numpy(lda, "lda")
        self.mean2 = _to_numpy(mean2, "mean2")
        self.mu = _to_numpy(mu, "mu")
        self.transform_matrix = _to_numpy(transform, "transform")
        self.psi = _to_numpy(psi, "psi")
        self.length_norm = bool(np.asarray(length_norm).reshape(-1)[0])
        e, d = self.lda.shape if self.lda.ndim == 2 else (-1, -1)
        expected = {"mean1": (e,), "lda": (e, d), "mean2": (d,), "mu": (d,),
                    "transform": (d, d), "psi": (d,)}
        actual = {"mean1": self.mean1.shape, "lda": self.lda.shape,
                  "mean2": self.mean2.shape, "mu": self.mu.shape,
                  "transform": self.transform_matrix.shape, "psi": self.psi.shape}
        if self.lda.ndim != 2 or any(expected[k] != actual[k] for k in expected):
            raise ValueError(f"inconsistent PLDA parameter shapes: {actual}")

    @property
    def input_dim(self):
        """Embedding dimension ``E`` expected by :meth:`transform`."""
        return self.lda.shape[0]

    @property
    def dim(self):
        """Dimension ``D`` of the PLDA space."""
        return self.lda.shape[1]

    @classmethod
    def train(cls, embeddings, labels, lda_dim=128, length_norm=True):
        """Estimates the pre-processing and the PLDA from labelled embeddings.

        Arguments
        ---------
        embeddings : array-like
            ``[N, E]`` training embeddings (numpy or torch).
        labels : array-like
            ``[N]`` speaker labels (any hashable numpy dtype); at least two
            speakers, and at least one speaker with two or more embeddings.
        lda_dim : int
            Wanted LDA dimension; the actual one is
            ``min(lda_dim, E, num_speakers - 1)``.
        length_norm : bool
            Length-normalise before and after the LDA (the VBx recipe).

        Returns
        -------
        PLDA
            The trained model.

        Example
        -------
        >>> rng = np.random.default_rng(1)
        >>> labels = np.repeat(np.arange(5), 4)
        >>> emb = rng.normal(size=(5, 3))[labels] * 4 + rng.normal(size=(20, 3))
        >>> PLDA.train(emb, labels).dim  # min(128, E=3, S-1=4)
        3
        >>> PLDA.train(emb, np.zeros(20))
        Traceback (most recent call last):
            ...
        ValueError: PLDA.train needs at least 2 speakers, got 1
        """
        X = _to_numpy(embeddings, "embeddings")
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(
                f"embeddings must be a non-empty [N, E] array, got shape {X.shape}"
            )
        if hasattr(labels, "detach"):
            labels = labels.detach().cpu().numpy()
        labels = np.asarray(labels)
        if labels.shape != (X.shape[0],):
            raise ValueError(
                f"labels must have shape [N]=({X.shape[0]},), got shape {labels.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise ValueError("embeddings contain NaN or infinite values")
        if int(lda_dim) < 1:
            raise ValueError(f"lda_dim must be >= 1, got {lda_dim}")
        num_speakers = len(np.unique(labels))
        if num_speakers < 2:
            raise ValueError(f"PLDA.train needs at least 2 speakers, got {num_speakers}")
        n, e = X.shape
        if n - num_speakers < 1:
            raise ValueError(
                "PLDA.train needs at least one speaker with 2 or more embeddings "
                f"(got {n} embeddings of {num_speakers} speakers)"
            )

        # 1-2: centre, length-normalise
        mean1 = X.mean(axis=0)
        x = X - mean1
        if length_norm:
            x = _length_norm(x, np.sqrt(e))

        # 3: LDA on the scatter matrices (normalised by N)
        means, counts, s_w = _class_stats(x, labels)
        centred_means = means - x.mean(axis=0)
        s_b = (centred_means.T * counts) @ centred_means
        d = int(min(int(lda_dim), e, num_speakers - 1))
        w_isqrt = _inv_sqrt_psd(s_w / n)
        whitened_b = w_isqrt @ (s_b / n) @ w_isqrt
        _, vecs = np.linalg.eigh(0.5 * (whitened_b + whitened_b.T))
        lda = w_isqrt @ vecs[:, ::-1][:, :d]

        # 4-5: re-centre, length-normalise
        y = x @ lda
        mean2 = y.mean(axis=0)
        z = y - mean2
        if length_norm:
            z = _length_norm(z, np.sqrt(d))

        # PLDA: within (W) and across (B) class covariances, joint diagonalisation
        mu = z.mean(axis=0)
        means, counts, scatter = _class_stats(z, labels)
        W = scatter / (n - num_speakers)
        W = 0.5 * (W + W.T)
        W += np.eye(d) * EIG_FLOOR * max(np.trace(W) / d, NORM_EPS)
        dm = means - means.mean(axis=0)
        B = dm.T @ dm / (num_speakers - 1) - np.mean(1.0 / counts) * W
        psi, vecs = eigh(0.5 * (B + B.T), W)
        order = np.argsort(psi)[::-1]
        return cls(
            mean1=mean1,
            lda=lda,
            mean2=mean2,
            mu=mu,
            transform=vecs[:, order].T,
            psi=np.maximum(psi[order], 0.0),
            length_norm=length_norm,
        )

    def preprocess(self, embeddings):
        """The ``xvec_tf`` pre-processing: ``[N, E]`` -> ``[N, D]`` (before PLDA).

        Example
        -------
        >>> plda = PLDA(np.zeros(2), np.eye(2), np.zeros(2), np.zeros(2),
        ...             np.eye(2), np.ones(2))
        >>> plda.preprocess(np.array([[3.0, 4.0]])).round(4).tolist()
        [[0.8485, 1.1314]]
        """
        x = self._check(embeddings) - self.mean1
        if self.length_norm:
            x = _length_norm(x, np.sqrt(self.input_dim))
        z = x @ self.lda - self.mean2
        if self.length_norm:
            z = _length_norm(z, np.sqrt(self.dim))
        return z

    def transform(self, embeddings):
        """Maps embeddings into the PLDA space (``xvec_tf`` then ``T``).

        Arguments
        ---------
        embeddings : array-like
            ``[N, E]`` embeddings (numpy or torch).

        Returns
        -------
        numpy.ndarray
            ``[N, D]`` float64 features whose within-speaker covariance is
            ``I`` and across-speaker covariance ``diag(psi)``.

        Example
        -------
        >>> plda = PLDA(np.zeros(2), np.eye(2), np.zeros(2), np.zeros(2),
        ...             2 * np.eye(2), np.ones(2), length_norm=False)
        >>> plda.transform([[1.0, -1.0]]).tolist()
        [[2.0, -2.0]]
        >>> plda.transform(np.ones((2, 3)))
        Traceback (most recent call last):
            ...
        ValueError: embeddings must be [N, 2], got shape (2, 3)
        """
        return (self.preprocess(embeddings) - self.mu) @ self.transform_matrix.T

    def _check(self, embeddings):
        X = _to_numpy(embeddings, "embeddings")
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(
                f"embeddings must be [N, {self.input_dim}], got shape {X.shape}"
            )
        return X

    def state_dict(self):
        """All parameters as a ``dict`` of numpy arrays (see the constructor).

        Example
        -------
        >>> plda = PLDA(np.zeros(2), np.eye(2), np.zeros(2), np.zeros(2),
        ...             np.eye(2), np.ones(2))
        >>> sorted(plda.state_dict())
        ['lda', 'length_norm', 'mean1', 'mean2', 'mu', 'psi', 'transform']
        >>> PLDA.from_state_dict(plda.state_dict()).length_norm
        True
        """
        return {
            "mean1": self.mean1.copy(),
            "lda": self.lda.copy(),
            "mean2": self.mean2.copy(),
            "mu": self.mu.copy(),
            "transform": self.transform_matrix.copy(),
            "psi": self.psi.copy(),
            "length_norm": np.array([int(self.length_norm)], dtype=np.int64),
        }

    @classmethod
    def from_state_dict(cls, state, source="state dict"):
        """Builds a PLDA from :meth:`state_dict` output.

        Arguments
        ---------
        state : dict
            ``name -> array`` with every key of :meth:`state_dict`.
        source : str
            Where ``state`` comes from, for error messages.

        Returns
        -------
        PLDA

        Example
        -------
        >>> PLDA.from_state_dict({"psi": np.ones(2)})
        Traceback (most recent call last):
            ...
        KeyError: "PLDA state dict lacks keys ['lda', 'length_norm', 'mean1', 'mean2', 'mu', 'transform']"
        """
        missing = sorted(set(_KEYS) - set(state))
        if missing:
            raise KeyError(f"PLDA {source} lacks keys {missing}")
        return cls(**{k: np.asarray(state[k]) for k in _KEYS})

    def save(self, path):
        """Writes :meth:`state_dict` to a ``.safetensors`` file (exact, float64).

        Arguments
        ---------
        path : str or os.PathLike
            Output file.

        Example
        -------
        >>> import tempfile
        >>> plda = PLDA(np.zeros(2), np.eye(2), np.zeros(2), np.zeros(2),
        ...             np.eye(2), np.ones(2) / 3)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     plda.save(os.path.join(tmp, "plda.safetensors"))
        ...     again = PLDA.load(os.path.join(tmp, "plda.safetensors"))
        >>> bool(np.array_equal(again.psi, plda.psi))
        True
        """
        from safetensors.numpy import save_file

        state = {k: np.ascontiguousarray(v) for k, v in self.state_dict().items()}
        save_file(state, os.fspath(path))

    @classmethod
    def load(cls, path):
        """Reads a file written by :meth:`save`.

        Arguments
        ---------
        path : str or os.PathLike
            A ``.safetensors`` file.

        Returns
        -------
        PLDA

        Raises
        ------
        KeyError
            When the file lacks keys; the message names the file and keys.
        """
        from safetensors.numpy import load_file

        path = os.fspath(path)
        return cls.from_state_dict(load_file(path), source=f"file {path!r}")

    @classmethod
    def from_vbx_npz(cls, folder):
        """Reads the BUT VBx files DiariZen and pyannote.audio ship (``plda/`` folder).

        ``xvec_transform.npz`` holds ``mean1 [E]``, ``lda [E, D]``, ``mean2 [D]``;
        ``plda.npz`` holds ``mu [D]``, ``tr [D, D]``, ``psi [D]``. As their loader
        (``vbx_setup``) does, the within- and across-class covariances
        ``W = (tr^T tr)^-1`` and ``B = (tr^T diag(1/psi) tr)^-1`` are diagonalised
        again (``eigh(B, W)``, decreasing), so ``transform`` and ``psi`` follow this
        class's convention. VBx keeps the first ``lda_dim`` dimensions.

        Arguments
        ---------
        folder : str or os.PathLike
            Folder with ``xvec_transform.npz`` and ``plda.npz``.

        Returns
        -------
        PLDA
        """
        folder = os.fspath(folder)
        arrays = {}
        for name, keys in (("xvec_transform.npz", ("mean1", "mean2", "lda")),
                           ("plda.npz", ("mu", "tr", "psi"))):
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path}: missing (a VBx PLDA folder has "
                                        "xvec_transform.npz and plda.npz)")
            with np.load(path) as data:
                missing = sorted(set(keys) - set(data.files))
                if missing:
                    raise KeyError(f"{path} lacks arrays {missing} (has {sorted(data.files)})")
                arrays.update({k: np.asarray(data[k], dtype=np.float64) for k in keys})
        tr, psi = arrays["tr"], arrays["psi"]
        within = np.linalg.inv(tr.T @ tr)
        across = np.linalg.inv((tr.T / psi) @ tr)
        values, vectors = eigh(across, within)
        return cls(arrays["mean1"], arrays["lda"], arrays["mean2"], arrays["mu"],
                   vectors.T[::-1].copy(), values[::-1].copy(), length_norm=True)

    def __repr__(self):
        return (f"PLDA(input_dim={self.input_dim}, dim={self.dim}, "
                f"length_norm={self.length_norm})")
