"""Sliding-window speaker diarization: local segmentation, embeddings, AHC.

:class:`SlidingWindowDiarizer` turns a local (window-level) segmentation model
and a speaker-embedding model into a file-level diarization, in the spirit of
pyannote's ``SpeakerDiarization`` pipeline (written from scratch here):

1. **Windows.** The file is cut into ``window`` s windows every ``step`` s,
   window starts aligned on the ``frame_shift`` grid; the last window is
   aligned to the end of the file (its tail, less than one frame, is zero
   padded). Audio shorter than a window gives one zero-padded window whose
   outputs are cropped to the file.
2. **Local segmentation.** ``segment(wavs [B, S]) -> [B, T, K]`` returns
   multilabel activations (hard 0/1 or soft in ``[0, 1]``) of ``K`` local
   speakers on the frame grid (frame ``t`` covers samples
   ``[hop t, hop t + rf)`` with ``hop = frame_shift * sample_rate`` and
   ``rf = receptive_field * sample_rate``). For a powerset model compose the
   decoding, e.g. ``lambda w: powerset.to_multilabel(model(w))``.
3. **Local embeddings.** Every local speaker active (``activation >= onset``)
   for at least ``min_embedding_seconds`` gets one embedding of the audio
   samples of the frames where it is active *and alone*; if those last less
   than ``min_embedding_seconds``, of all its active frames. The selected
   samples are concatenated and passed to ``embed(wavs [B, S], wav_lens [B])
   -> [B, E]`` (relative lengths, SpeechBrain convention; e.g.
   ``lambda w, l: recognizer.encode_batch(w, l).squeeze(1)``). Other local
   speakers get no embedding and are dropped.
4. **Clustering.** All (window, local speaker) embeddings are clustered with
   :func:`~speechbrain_pruning.diarization.clustering.cluster_embeddings`
   (``num_speakers`` / ``min_speakers`` / ``max_speakers`` honoured). In each
   window the local speakers are then assigned to global speakers with the
   Hungarian algorithm on ``cosine(embedding, centroid) +
   assignment_bonus * [AHC label == speaker]``: the AHC label is kept unless two
   local speakers of one window share it, in which case the one closer to the
   centroid keeps it and the other moves to its best free global speaker.
5. **Aggregation.** Global activations are summed over the overlapping
   windows and divided by the number of covering windows (average). The
   instantaneous speaker count of a frame is the rounded average of the
   per-window local counts (number of local speakers with activation
   ``>= onset``); each frame keeps its ``count`` global speakers of highest
   average activation (among those with average activation
   ``> min_activation``). Gaps shorter than ``min_duration_off`` are filled,
   then runs shorter than ``min_duration_on`` removed, and the runs become
   :class:`pyannote.core.Annotation` segments: frame ``t`` spans
   ``[t frame_shift + (receptive_field - frame_shift) / 2, +frame_shift)``
   seconds, clipped to the file.

Streaming and memory
--------------------
Windows are processed ``batch_size`` at a time and only per-frame
accumulators are kept for the whole file: ``activation_sum_ [F, G]``,
``count_sum_ [F]`` and ``coverage_ [F]`` (``F`` frames, ``G`` global
speakers), plus one embedding per active (window, local speaker). The
``windows x frames x speakers`` tensor is never stored: since the local to
global mapping is only known after clustering, the segmentation is run twice
(pass 1: counts and embeddings; pass 2: aggregation of the mapped
activations). ``cache_activations=True`` trades memory for time: it keeps the
per-window activations (float16) of pass 1 and skips the second segmentation
pass.

When ``audio`` is a path, it is never loaded whole: each batch of windows is
read with ``soundfile.SoundFile.seek`` / ``read`` (random access, so WAV, FLAC
or any seekable format of libsndfile; multi-channel files are averaged to
mono). The file must already be at ``sample_rate``.

Authors
 * speechbrain_pruning contributors
"""

import os

import numpy as np
import torch
from pyannote.core import Annotation, Segment
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from ..audio import AudioSource, as_numpy
from .clustering import cluster_embeddings

__all__ = ["SlidingWindowDiarizer", "binary_runs", "smooth_binary"]


def binary_runs(active):
    """``(starts, ends)`` frame indices of the runs of True in ``active [F]``.

    Example
    -------
    >>> binary_runs(np.array([0, 1, 1, 0, 1], dtype=bool))
    (array([1, 4]), array([3, 5]))
    """
    padded = np.concatenate([[False], np.asarray(active, dtype=bool), [False]])
    diff = np.diff(padded.astype(np.int8))
    return np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)


def smooth_binary(active, min_on_frames=0, min_off_frames=0):
    """Fills gaps shorter than ``min_off_frames``, then drops runs shorter than ``min_on_frames``.

    Arguments
    ---------
    active : numpy.ndarray
        ``[F]`` boolean activity.
    min_on_frames : int
        Minimum run length kept.
    min_off_frames : int
        Gaps (between two runs) shorter than this are filled.

    Returns
    -------
    active : numpy.ndarray
        ``[F]`` smoothed boolean copy.

    Example
    -------
    >>> x = np.array([1, 1, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    >>> smooth_binary(x, min_on_frames=2, min_off_frames=2).astype(int).tolist()
    [1, 1, 1, 1, 0, 0, 0, 0, 0]
    """
    out = np.asarray(active, dtype=bool).copy()
    if min_off_frames > 0:
        starts, ends = binary_runs(out)
        for gap_start, gap_end in zip(ends[:-1], starts[1:]):
            if gap_end - gap_start < min_off_frames:
                out[gap_start:gap_end] = True
    if min_on_frames > 0:
        starts, ends = binary_runs(out)
        for run_start, run_end in zip(starts, ends):
            if run_end - run_start < min_on_frames:
                out[run_start:run_end] = False
    return out


class SlidingWindowDiarizer:
    """File-level diarization from a window-level segmenter and an embedder.

    Arguments
    ---------
    segment : callable
        ``segment(wavs [B, S]) -> [B, T, K]`` multilabel activations in
        ``[0, 1]`` (torch or numpy), ``S = window * sample_rate``.
    embed : callable
        ``embed(wavs [B, S], wav_lens [B]) -> [B, E]`` speaker embeddings of
        zero-padded waveforms with relative lengths ``wav_lens``.
    window : float
        Window duration in seconds.
    step : float
        Hop between window starts in seconds (rounded to whole frames).
    sample_rate : int
        Audio sample rate in Hz.
    frame_shift : float
        Output frame shift of ``segment`` in seconds.
    receptive_field : float
        Duration of audio covered by one output frame in seconds.
    batch_size : int
        Windows per ``segment`` call.
    onset : float
        Local activation threshold (speaker counting and embedding masks).
    min_duration_on : float
        Output speech turns shorter than this (seconds) are removed.
    min_duration_off : float
        Pauses shorter than this (seconds) inside a speaker's speech are filled.
    min_embedding_seconds : float
        Minimum activity of a local speaker to be embedded (and kept).
    clustering_threshold : float
        Cosine-distance threshold of the AHC.
    clustering_method : str
        scipy linkage method.
    embedding_batch_size : int
        Local speakers per ``embed`` call.
    assignment_bonus : float
        Score bonus of the AHC label in the per-window Hungarian assignment
        (``> 2`` makes the AHC label win whenever it is free).
    min_activation : float
        A global speaker is only selected in a frame if its average activation
        exceeds this.
    cache_activations : bool
        Keep pass-1 activations instead of re-running ``segment`` (memory
        ``O(windows x frames x speakers)``).
    progress : bool
        Show tqdm progress bars.

    Example
    -------
    >>> def segment(wavs):  # one local speaker: frames with energy
    ...     frames = wavs.unfold(1, 400, 320)
    ...     return (frames.pow(2).mean(-1, keepdim=True) > 1e-3).float()
    >>> def embed(wavs, wav_lens):  # a single speaker
    ...     return torch.ones(wavs.shape[0], 2)
    >>> diarizer = SlidingWindowDiarizer(segment, embed, window=2.0, step=1.0, progress=False)
    >>> audio = torch.zeros(16000 * 5)
    >>> audio[16000:48000] = torch.sin(torch.arange(32000) * 0.3)
    >>> hyp = diarizer(audio, uri="demo")
    >>> [(round(s.start, 4), round(s.end, 4), label) for s, _, label in hyp.itertracks(yield_label=True)]
    [(0.9825, 3.0025, 'SPEAKER_00')]
    """

    def __init__(
        self,
        segment,
        embed,
        window=8.0,
        step=2.0,
        sample_rate=16000,
        frame_shift=0.02,
        receptive_field=0.025,
        batch_size=4,
        onset=0.5,
        min_duration_on=0.0,
        min_duration_off=0.0,
        min_embedding_seconds=0.5,
        clustering_threshold=0.7,
        clustering_method="average",
        embedding_batch_size=16,
        assignment_bonus=3.0,
        min_activation=0.0,
        cache_activations=False,
        progress=True,
    ):
        self.segment = segment
        self.embed = embed
        self.window = window
        self.step = step
        self.sample_rate = sample_rate
        self.frame_shift = frame_shift
        self.receptive_field = receptive_field
        self.batch_size = batch_size
        self.onset = onset
        self.min_duration_on = min_duration_on
        self.min_duration_off = min_duration_off
        self.min_embedding_seconds = min_embedding_seconds
        self.clustering_threshold = clustering_threshold
        self.clustering_method = clustering_method
        self.embedding_batch_size = embedding_batch_size
        self.assignment_bonus = assignment_bonus
        self.min_activation = min_activation
        self.cache_activations = cache_activations
        self.progress = progress

        self.hop = int(round(frame_shift * sample_rate))
        self.rf = int(round(receptive_field * sample_rate))
        self.window_samples = int(round(window * sample_rate))
        self.step_frames = max(1, int(round(step / frame_shift)))
        if self.window_samples < self.rf:
            raise ValueError("window shorter than the receptive field")
        self.window_frames = (self.window_samples - self.rf) // self.hop + 1

    # ------------------------------------------------------------------
    # Frame grid
    # ------------------------------------------------------------------
    def num_frames(self, num_samples):
        """Number of output frames ``F`` of a file of ``num_samples`` samples."""
        if num_samples < self.rf:
            return 0
        return (num_samples - self.rf) // self.hop + 1

    def window_starts(self, num_frames):
        """Start frames ``[W]`` of the windows covering ``num_frames`` frames.

        Example
        -------
        >>> d = SlidingWindowDiarizer(None, None, progress=False)
        >>> d.window_starts(1999)[[0, 1, -1]].tolist(), len(d.window_starts(1999))
        ([0, 100, 1600], 17)
        >>> d.window_starts(50).tolist()
        [0]
        """
        last = max(0, num_frames - self.window_frames)
        starts = list(range(0, last + 1, self.step_frames))
        if starts[-1] != last:
            starts.append(last)
        return np.asarray(starts, dtype=np.int64)

    def frame_time(self, frame):
        """Start time (s) of frame ``frame`` (its middle minus half a frame shift)."""
        return float(frame * self.frame_shift + 0.5 * (self.receptive_field - self.frame_shift))

    # ------------------------------------------------------------------
    # Model calls
    # ------------------------------------------------------------------
    def _batches(self, source, starts, desc):
        """Yields ``(first_window_index, wavs [B, S] float32)``."""
        bar = tqdm(range(0, len(starts), self.batch_size), desc=desc,
                   disable=not self.progress, leave=False)
        for first in bar:
            chunk = starts[first:first + self.batch_size]
            wavs = np.stack([
                source.read(int(s) * self.hop, int(s) * self.hop + self.window_samples)
                for s in chunk
            ])
            yield first, wavs

    def _run_segment(self, wavs):
        """``[B, T, K]`` float32 activations of ``wavs [B, S]``."""
        with torch.no_grad():
            out = self.segment(torch.from_numpy(wavs))
        out = as_numpy(out)
        if out.ndim != 3 or out.shape[0] != wavs.shape[0]:
            raise ValueError(f"segment must return [B, T, K], got shape {out.shape}")
        return out

    def _run_embed(self, chunks):
        """``[N, E]`` embeddings of a list of 1-D sample arrays."""
        lengths = np.array([len(c) for c in chunks])
        wavs = np.zeros((len(chunks), lengths.max()), dtype=np.float32)
        for i, chunk in enumerate(chunks):
            wavs[i, : len(chunk)] = chunk
        rel = torch.from_numpy(lengths / lengths.max()).float()
        with torch.no_grad():
            out = self.embed(torch.from_numpy(wavs), rel)
        out = as_numpy(out).reshape(len(chunks), -1)
        return out

    def _sample_mask(self, frames, num_valid):
        """Boolean ``[window_samples]`` mask of the samples of ``frames``."""
        delta = np.zeros(self.window_samples + self.rf + 1, dtype=np.int32)
        np.add.at(delta, frames * self.hop, 1)
        np.add.at(delta, frames * self.hop + self.rf, -1)
        mask = np.cumsum(delta)[: self.window_samples] > 0
        mask[num_valid:] = False
        return mask

    # ------------------------------------------------------------------
    # Pipeline
    # ------------------------------------------------------------------
    def __call__(self, audio, num_speakers=None, min_speakers=None, max_speakers=None, uri=None):
        """Diarizes one file.

        Arguments
        ---------
        audio : str, os.PathLike, numpy.ndarray or torch.Tensor
            Waveform ``[S]`` at ``sample_rate`` or a path read block-wise.
        num_speakers : int, optional
            Exact number of speakers.
        min_speakers : int, optional
            Minimum number of speakers.
        max_speakers : int, optional
            Maximum number of speakers.
        uri : str, optional
            ``uri`` of the returned annotation (default: the file stem of a
            path, else None).

        Returns
        -------
        annotation : pyannote.core.Annotation
            Speaker turns in seconds, labels ``SPEAKER_00``, ``SPEAKER_01``...
        """
        if uri is None and isinstance(audio, (str, os.PathLike)):
            uri = os.path.splitext(os.path.basename(os.fspath(audio)))[0]
        annotation = Annotation(uri=uri)
        self._reset_state()
        with AudioSource(audio, self.sample_rate) as source:
            num_samples = source.num_samples
            F = self.num_frames(num_samples)
            if F == 0:
                return annotation
            starts = self.window_starts(F)
            cache = self._pass_embeddings(source, starts, F)
            if len(self.embeddings_) == 0:
                return annotation
            self._cluster(len(starts), num_speakers, min_speakers, max_speakers)
            self._pass_aggregate(source, starts, F, cache)
        del cache
        binary = self._select_speakers()
        duration = num_samples / self.sample_rate
        on = int(round(self.min_duration_on / self.frame_shift))
        off = int(round(self.min_duration_off / self.frame_shift))
        for g in range(binary.shape[1]):
            active = smooth_binary(binary[:, g], on, off)
            label = f"SPEAKER_{g:02d}"
            for a, b in zip(*binary_runs(active)):
                start = max(0.0, self.frame_time(a))
                end = min(duration, self.frame_time(b))
                if end > start:
                    annotation[Segment(start, end), label] = label
        return annotation

    def _reset_state(self):
        """Clears the per-file state attributes."""
        self.count_sum_ = None  # [F] sum over windows of local speaker counts
        self.coverage_ = None  # [F] number of windows covering each frame
        self.activation_sum_ = None  # [F, G] summed global activations
        self.embeddings_ = np.zeros((0, 0), dtype=np.float32)  # [N, E]
        self.embedding_keys_ = np.zeros((0, 2), dtype=np.int64)  # [N, (window, local)]
        self.cluster_labels_ = np.zeros(0, dtype=np.int64)  # [N]
        self.assignment_ = None  # [W, K] global speaker of each local speaker or -1

    def _pass_embeddings(self, source, starts, F):
        """Pass 1: speaker counts, coverage and local embeddings."""
        self.count_sum_ = np.zeros(F, dtype=np.float32)
        self.coverage_ = np.zeros(F, dtype=np.int32)
        min_frames = self.min_embedding_seconds / self.frame_shift
        pending, keys, embeddings = [], [], []
        cache = [] if self.cache_activations else None
        self.num_local_ = 0

        def flush():
            if pending:
                embeddings.append(self._run_embed(pending))
                pending.clear()

        for first, wavs in self._batches(source, starts, "segmentation + embeddings"):
            acts = self._run_segment(wavs)
            self.num_local_ = max(self.num_local_, acts.shape[2])
            for b in range(acts.shape[0]):
                w = first + b
                s = int(starts[w])
                n = min(acts.shape[1], F - s)
                act = acts[b, :n]
                local = act >= self.onset  # [n, K]
                count = local.sum(axis=1)
                self.count_sum_[s:s + n] += count
                self.coverage_[s:s + n] += 1
                if cache is not None:
                    cache.append(act.astype(np.float16))
                num_valid = min(self.window_samples, source.num_samples - s * self.hop)
                for k in range(act.shape[1]):
                    if local[:, k].sum() < min_frames or local[:, k].sum() == 0:
                        continue
                    alone = local[:, k] & (count == 1)
                    frames = np.flatnonzero(alone if alone.sum() >= min_frames else local[:, k])
                    mask = self._sample_mask(frames, num_valid)
                    pending.append(wavs[b][mask])
                    keys.append((w, k))
                    if len(pending) >= self.embedding_batch_size:
                        flush()
        flush()
        if keys:
            self.embeddings_ = np.concatenate(embeddings, axis=0)
            self.embedding_keys_ = np.asarray(keys, dtype=np.int64)
        return cache

    def _cluster(self, num_windows, num_speakers, min_speakers, max_speakers):
        """Clusters the embeddings and maps every window's local speakers."""
        labels = cluster_embeddings(
            self.embeddings_,
            threshold=self.clustering_threshold,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            method=self.clustering_method,
        )
        self.cluster_labels_ = labels
        G = int(labels.max()) + 1
        emb = self.embeddings_ / np.maximum(
            np.linalg.norm(self.embeddings_, axis=1, keepdims=True), 1e-12)
        centroids = np.stack([emb[labels == g].mean(axis=0) for g in range(G)])
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        score = emb @ centroids.T + self.assignment_bonus * (labels[:, None] == np.arange(G))
        self.assignment_ = np.full((num_windows, self.num_local_), -1, dtype=np.int64)
        windows = self.embedding_keys_[:, 0]
        order = np.argsort(windows, kind="stable")
        bounds = np.flatnonzero(np.diff(windows[order])) + 1
        for rows in np.split(order, bounds):
            local_idx, global_idx = linear_sum_assignment(score[rows], maximize=True)
            w = self.embedding_keys_[rows[0], 0]
            self.assignment_[w, self.embedding_keys_[rows[local_idx], 1]] = global_idx
        self.num_speakers_ = G

    def _pass_aggregate(self, source, starts, F, cache):
        """Pass 2: sums the mapped global activations over windows."""
        self.activation_sum_ = np.zeros((F, self.num_speakers_), dtype=np.float32)

        def add(w, act):
            s = int(starts[w])
            n = min(act.shape[0], F - s)
            for k, g in enumerate(self.assignment_[w]):
                if g >= 0 and k < act.shape[1]:
                    self.activation_sum_[s:s + n, g] += act[:n, k]

        if cache is not None:
            for w, act in enumerate(cache):
                add(w, act.astype(np.float32))
            return
        for first, wavs in self._batches(source, starts, "aggregation"):
            acts = self._run_segment(wavs)
            for b in range(acts.shape[0]):
                add(first + b, acts[b])

    def _select_speakers(self):
        """``[F, G]`` binary: per frame the top-``count`` average activations."""
        coverage = np.maximum(self.coverage_, 1).astype(np.float32)
        average = self.activation_sum_ / coverage[:, None]
        count = np.floor(self.count_sum_ / coverage + 0.5).astype(np.int64)
        count = np.minimum(count, average.shape[1])
        rank = np.argsort(np.argsort(-average, axis=1, kind="stable"), axis=1, kind="stable")
        return (rank < count[:, None]) & (average > self.min_activation)
