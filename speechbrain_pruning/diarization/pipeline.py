"""Sliding-window speaker diarization: local segmentation, embeddings, clustering.

:class:`SlidingWindowDiarizer` turns a local (window-level) segmentation model
and a speaker-embedding model into a file-level diarization, in the spirit of
pyannote's ``SpeakerDiarization`` pipeline and DiariZen's (written from scratch
here):

1. **Windows.** The file is cut into ``window`` s windows every ``step`` s,
   window starts aligned on the ``frame_shift`` grid; the last window is
   aligned to the end of the file (its tail, less than one frame, is zero
   padded). Audio shorter than a window gives one zero-padded window whose
   outputs are cropped to the file.
2. **Local segmentation, one pass.** ``segment(wavs [B, S]) -> [B, T, K]``
   returns multilabel activations (0/1 or in ``[0, 1]``) of ``K`` local
   speakers on the frame grid (frame ``t`` covers samples ``[hop t, hop t +
   rf)``). A median filter of ``median_filter`` frames along time smooths
   each window (DiariZen: 11). The activations of every window are kept as
   float16 (``W x T x K``: about 6 MB per hour at a 2 s step), so the model
   runs once per window; ``low_memory=True`` keeps only per-frame sums and
   runs the segmentation a second time for the aggregation instead.
3. **Local embeddings.** Every local speaker active (``activation >= onset``)
   for at least ``min_embedding_seconds`` gets one embedding of the frames
   where it is active *and alone* (all its active frames if those are too
   few). Two kinds of embedder:

   * *frame pooling* (an object with ``frame_features(wavs [B, S]) -> [B, T,
     Z]`` and ``pool_frames(features [N, T, Z], weights [N, T]) -> [N, E]``,
     e.g. a WavLM + MHFA speaker model): the frame features are computed once
     per recording, on consecutive non-overlapping blocks of ``window``
     seconds (each frame once), stored as float16, and every (window, local
     speaker) is pooled over its frames, batched; the speaker model runs on
     the audio once, whatever the step;
   * *crops* (a callable ``embed(wavs [B, S], wav_lens [B]) -> [B, E]``, e.g.
     a SpeechBrain ``EncoderClassifier``): the samples of the selected frames
     are concatenated and embedded, ``embedding_batch_size`` at a time.

   Local speakers without an embedding are dropped.
4. **Clustering.** ``clustering="vbx"``: VBx (AHC initialisation, then VB
   resegmentation with a PLDA, :mod:`~speechbrain_pruning.diarization.vbx`)
   as DiariZen and pyannote 3.1+ do; ``"ahc"``: cosine AHC
   (:mod:`~speechbrain_pruning.diarization.clustering`). Both honour
   ``num_speakers`` / ``min_speakers`` / ``max_speakers`` and
   ``min_cluster_size``. In each window the local speakers are then
   assigned to global speakers with the Hungarian algorithm on
   ``cosine(embedding, centroid) + assignment_bonus * [cluster label ==
   speaker]``, so that two local speakers of a window never share a global one.
5. **Aggregation.** Global activations are averaged over the overlapping
   windows. The instantaneous speaker count of a frame is the rounded average
   of the per-window local counts; each frame keeps its ``count`` global
   speakers of highest average activation (among those above
   ``min_activation``). Gaps shorter than ``min_duration_off`` are filled,
   runs shorter than ``min_duration_on`` removed, and runs become
   :class:`pyannote.core.Annotation` segments: frame ``t`` spans ``[t
   frame_shift + (receptive_field - frame_shift) / 2, + frame_shift)``
   seconds, clipped to the file. The exclusive diarization keeps, in each
   frame, only the selected speaker of highest average activation.

Audio input
-----------
A path is never loaded whole: each batch of windows is read with
:class:`~speechbrain_pruning.audio.AudioSource` (seek + read; channels
averaged; other sample rates resampled block by block, equal to resampling
the whole file). In-memory audio is a waveform ``[S]`` at ``sample_rate`` or
pyannote's ``{"waveform": [C, S], "sample_rate": int}``.

Authors
 * speechbrain_pruning contributors
"""

import os

import numpy as np
import torch
from pyannote.core import Annotation, Segment
from scipy.ndimage import median_filter as nd_median_filter
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from ..audio import AudioSource, as_numpy
from .clustering import check_speaker_counts, cluster_embeddings
from .output import DiarizeOutput

__all__ = ["SlidingWindowDiarizer", "binary_runs", "smooth_binary", "is_frame_embedder"]

CLUSTERING_METHODS = ("vbx", "ahc")
DEFAULT_THRESHOLDS = {"ahc": 0.7, "vbx": 0.6}


def is_frame_embedder(embedder):
    """True when ``embedder`` pools frame features (``frame_features`` + ``pool_frames``)."""
    return hasattr(embedder, "frame_features") and hasattr(embedder, "pool_frames")


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
    embedder : object or callable
        A frame-pooling embedder (``frame_features`` / ``pool_frames``) or a
        crop embedder ``embed(wavs [B, S], wav_lens [B]) -> [B, E]`` (see the
        module docstring).
    window, step : float
        Window duration and hop between window starts, in seconds (the step
        is rounded to whole frames).
    sample_rate : int
        Audio sample rate of the models, in Hz.
    frame_shift, receptive_field : float
        Output frame shift and the audio span of one frame of ``segment``, s.
    batch_size : int
        Windows per ``segment`` call.
    onset : float
        Local activation threshold (speaker counting and embedding frames).
    median_filter : int
        Median filter length (frames, odd) applied along time to each
        window's activations; 0 or 1 disables it.
    min_duration_on, min_duration_off : float
        Output turns shorter than ``min_duration_on`` are removed; pauses
        shorter than ``min_duration_off`` inside a speaker's speech are filled.
    min_embedding_seconds : float
        Minimum activity of a local speaker to be embedded (and kept).
    clustering : str
        ``"vbx"`` (needs ``plda``) or ``"ahc"``.
    clustering_threshold : float, optional
        AHC: cosine-distance threshold; VBx: threshold of its AHC
        initialisation. None: 0.7 (AHC) / 0.6 (VBx).
    plda : speechbrain_pruning.diarization.plda.PLDA, optional
        The PLDA of VBx (trained on the embedder's embeddings).
    vbx_fa, vbx_fb : float
        VBx acoustic scaling and speaker regularisation (DiariZen: 0.07, 0.8).
    min_cluster_size : int
        Clusters with fewer (window, local speaker) members are merged into
        the closest larger one.
    embedding_batch_size : int
        Local speakers per embedding call.
    assignment_bonus : float
        Score bonus of the cluster label in the per-window assignment.
    min_activation : float
        A global speaker is only selected in a frame if its average activation
        exceeds this.
    low_memory : bool
        Do not keep the per-window activations; segment every window again
        for the aggregation (two passes).
    progress : bool or callable
        tqdm progress bars (True), none (False), or a pyannote-style hook
        ``hook(step_name, step_artifact, file=None, total=None, completed=None)``.

    Example
    -------
    >>> def segment(wavs):  # one local speaker: frames with energy
    ...     frames = wavs.unfold(1, 400, 320)
    ...     return (frames.pow(2).mean(-1, keepdim=True) > 1e-3).float()
    >>> def embed(wavs, wav_lens):  # a single speaker
    ...     return torch.ones(wavs.shape[0], 2)
    >>> diarizer = SlidingWindowDiarizer(segment, embed, window=2.0, step=1.0,
    ...                                  clustering="ahc", progress=False)
    >>> audio = torch.zeros(16000 * 5)
    >>> audio[16000:48000] = torch.sin(torch.arange(32000) * 0.3)
    >>> out = diarizer(audio, uri="demo")
    >>> hyp = out.speaker_diarization
    >>> [(round(s.start, 4), round(s.end, 4), label) for s, _, label in hyp.itertracks(yield_label=True)]
    [(0.9825, 3.0025, 'SPEAKER_00')]
    >>> out.speaker_embeddings.shape
    (1, 2)
    """

    def __init__(
        self,
        segment,
        embedder,
        window=8.0,
        step=2.0,
        sample_rate=16000,
        frame_shift=0.02,
        receptive_field=0.025,
        batch_size=4,
        onset=0.5,
        median_filter=11,
        min_duration_on=0.0,
        min_duration_off=0.0,
        min_embedding_seconds=0.5,
        clustering="vbx",
        clustering_threshold=None,
        plda=None,
        vbx_fa=0.07,
        vbx_fb=0.8,
        min_cluster_size=1,
        embedding_batch_size=16,
        assignment_bonus=3.0,
        min_activation=0.0,
        low_memory=False,
        progress=True,
    ):
        if clustering not in CLUSTERING_METHODS:
            raise ValueError(f"clustering must be one of {CLUSTERING_METHODS}, got {clustering!r}")
        if clustering == "vbx" and plda is None:
            raise ValueError("clustering='vbx' needs a PLDA (plda=...); use clustering='ahc' "
                             "or train one (speechbrain_pruning.diarization.plda)")
        self.segment = segment
        self.embedder = embedder
        self.window = window
        self.step = step
        self.sample_rate = sample_rate
        self.frame_shift = frame_shift
        self.receptive_field = receptive_field
        self.batch_size = batch_size
        self.onset = onset
        self.median_filter = int(median_filter or 0)
        self.min_duration_on = min_duration_on
        self.min_duration_off = min_duration_off
        self.min_embedding_seconds = min_embedding_seconds
        self.clustering = clustering
        self.clustering_threshold = (DEFAULT_THRESHOLDS[clustering] if clustering_threshold
                                     is None else float(clustering_threshold))
        self.plda = plda
        self.vbx_fa = vbx_fa
        self.vbx_fb = vbx_fb
        self.min_cluster_size = min_cluster_size
        self.embedding_batch_size = embedding_batch_size
        self.assignment_bonus = assignment_bonus
        self.min_activation = min_activation
        self.low_memory = low_memory
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
        >>> d = SlidingWindowDiarizer(None, None, clustering="ahc", progress=False)
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
    # Progress
    # ------------------------------------------------------------------
    def _steps(self, items, desc, artifact_name=None):
        """Iterate ``items`` with a tqdm bar, a pyannote-style hook or nothing."""
        if callable(self.progress):
            total = len(items)
            for done, item in enumerate(items):
                yield item
                self.progress(desc, None, file=self._file, total=total, completed=done + 1)
        else:
            yield from tqdm(items, desc=desc, disable=not self.progress, leave=False)

    # ------------------------------------------------------------------
    # Model calls
    # ------------------------------------------------------------------
    def _batches(self, source, starts, desc):
        """Yields ``(first_window_index, wavs [B, S] float32)``."""
        for first in self._steps(range(0, len(starts), self.batch_size), desc):
            chunk = starts[first:first + self.batch_size]
            wavs = np.stack([
                source.read(int(s) * self.hop, int(s) * self.hop + self.window_samples)
                for s in chunk
            ])
            yield first, wavs

    def _run_segment(self, wavs):
        """``[B, T, K]`` float32 activations of ``wavs [B, S]``, median filtered."""
        with torch.inference_mode():
            out = self.segment(torch.from_numpy(wavs))
        out = as_numpy(out)
        if out.ndim != 3 or out.shape[0] != wavs.shape[0]:
            raise ValueError(f"segment must return [B, T, K], got shape {out.shape}")
        if self.median_filter > 1:
            out = nd_median_filter(out, size=(1, self.median_filter, 1), mode="reflect")
        return out

    def embed_crops(self, chunks):
        """``[N, E]`` embeddings of a list of 1-D sample arrays (crop embedder)."""
        lengths = np.array([len(c) for c in chunks])
        wavs = np.zeros((len(chunks), lengths.max()), dtype=np.float32)
        for i, chunk in enumerate(chunks):
            wavs[i, : len(chunk)] = chunk
        rel = torch.from_numpy(lengths / lengths.max()).float()
        with torch.inference_mode():
            out = self.embedder(torch.from_numpy(wavs), rel)
        return as_numpy(out).reshape(len(chunks), -1)

    def frame_features(self, source, F):
        """``[F, Z]`` float16 frame features of the whole file (frame embedder).

        Consecutive blocks of ``window_frames`` frames; block ``b`` reads the
        samples of its frames exactly (``n hop + rf - hop`` samples).
        """
        block = self.window_frames
        firsts = list(range(0, F, block))
        features = None
        for first in self._steps(firsts, "speaker features"):
            n = min(block, F - first)
            wav = source.read(first * self.hop, (first + n - 1) * self.hop + self.rf)
            with torch.inference_mode():
                out = self.embedder.frame_features(torch.from_numpy(wav)[None])
            out = as_numpy(out)[0]
            if features is None:
                features = np.zeros((F, out.shape[-1]), dtype=np.float16)
            m = min(n, out.shape[0])
            features[first:first + m] = out[:m]
            if m < n:  # a model with fewer frames: repeat its last one
                features[first + m:first + n] = out[m - 1]
        return features

    def pool(self, features, requests):
        """``[N, E]`` embeddings of ``requests = [(first_frame, frame_mask [T])]``."""
        T = max(len(mask) for _, mask in requests)
        feats = np.zeros((len(requests), T, features.shape[1]), dtype=np.float32)
        weights = np.zeros((len(requests), T), dtype=np.float32)
        for i, (first, mask) in enumerate(requests):
            seg = features[first:first + len(mask)]
            feats[i, : len(seg)] = seg
            weights[i, : len(seg)] = mask[: len(seg)]
        with torch.inference_mode():
            out = self.embedder.pool_frames(torch.from_numpy(feats), torch.from_numpy(weights))
        return as_numpy(out).reshape(len(requests), -1)

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
        """Diarizes one recording.

        Arguments
        ---------
        audio : str, os.PathLike, numpy.ndarray, torch.Tensor or dict
            A path (streamed, any sample rate), a waveform ``[S]`` at
            ``sample_rate``, or ``{"waveform": [C, S], "sample_rate": int}``.
        num_speakers, min_speakers, max_speakers : int, optional
            Exact number / bounds of the number of speakers.
        uri : str, optional
            ``uri`` of the annotations (default: the file stem of a path).

        Returns
        -------
        DiarizeOutput
            ``speaker_diarization``, ``exclusive_speaker_diarization`` and
            ``speaker_embeddings`` (labels ``SPEAKER_00``, ``SPEAKER_01``...).
        """
        check_speaker_counts(num_speakers, min_speakers, max_speakers)
        if uri is None and isinstance(audio, (str, os.PathLike)):
            uri = os.path.splitext(os.path.basename(os.fspath(audio)))[0]
        self._file = {"uri": uri, "audio": audio if isinstance(audio, (str, os.PathLike))
                      else None}
        self._reset_state()
        with AudioSource(audio, self.sample_rate) as source:
            state = self._segment_and_embed(source, uri)
            if state["empty"]:
                return self._empty(uri)
            self._cluster(len(state["starts"]), num_speakers, min_speakers, max_speakers)
            self._pass_aggregate(source, state["starts"], state["num_frames"], state["cache"])
        del state
        return self._annotate(self._duration, uri)

    def segment_and_embed(self, audio, uri=None):
        """The clustering-independent part of :meth:`__call__`, kept for re-clustering.

        Returns a state (segmentation cache, counts, embeddings) that
        :meth:`cluster_and_aggregate` turns into a :class:`DiarizeOutput` with
        the current clustering / post-processing settings, as often as wanted
        (dev-set tuning). Not available in low-memory mode.
        """
        if self.low_memory:
            raise ValueError("segment_and_embed keeps the segmentation: set low_memory=False")
        if uri is None and isinstance(audio, (str, os.PathLike)):
            uri = os.path.splitext(os.path.basename(os.fspath(audio)))[0]
        self._file = {"uri": uri, "audio": None}
        self._reset_state()
        with AudioSource(audio, self.sample_rate) as source:
            state = self._segment_and_embed(source, uri)
        state.update(count_sum=self.count_sum_, coverage=self.coverage_,
                     embeddings=self.embeddings_, keys=self.embedding_keys_,
                     num_local=getattr(self, "num_local_", 0))
        return state

    def cluster_and_aggregate(self, state, num_speakers=None, min_speakers=None,
                              max_speakers=None):
        """:class:`DiarizeOutput` of a :meth:`segment_and_embed` state."""
        uri = state["uri"]
        if state["empty"]:
            return self._empty(uri)
        self.count_sum_, self.coverage_ = state["count_sum"], state["coverage"]
        self.embeddings_, self.embedding_keys_ = state["embeddings"], state["keys"]
        self.num_local_, self._duration = state["num_local"], state["duration"]
        self._cluster(len(state["starts"]), num_speakers, min_speakers, max_speakers)
        self._pass_aggregate(None, state["starts"], state["num_frames"], state["cache"])
        return self._annotate(self._duration, uri)

    def _segment_and_embed(self, source, uri):
        """Frame features, segmentation and local embeddings of an open source."""
        num_samples = source.num_samples
        self._duration = num_samples / self.sample_rate
        F = self.num_frames(num_samples)
        state = {"uri": uri, "duration": self._duration, "num_frames": F, "cache": None,
                 "starts": np.zeros(0, dtype=np.int64), "empty": F == 0}
        if F == 0:
            return state
        state["starts"] = starts = self.window_starts(F)
        features = self.frame_features(source, F) if is_frame_embedder(self.embedder) else None
        state["cache"] = self._pass_segment_and_embed(source, starts, F, features)
        state["empty"] = len(self.embeddings_) == 0
        return state

    @staticmethod
    def _empty(uri):
        return DiarizeOutput(Annotation(uri=uri), Annotation(uri=uri), np.zeros((0, 0), np.float32))

    def _reset_state(self):
        """Clears the per-file state attributes."""
        self.count_sum_ = None  # [F] sum over windows of local speaker counts
        self.coverage_ = None  # [F] number of windows covering each frame
        self.activation_sum_ = None  # [F, G] summed global activations
        self.embeddings_ = np.zeros((0, 0), dtype=np.float32)  # [N, E]
        self.embedding_keys_ = np.zeros((0, 2), dtype=np.int64)  # [N, (window, local)]
        self.cluster_labels_ = np.zeros(0, dtype=np.int64)  # [N]
        self.centroids_ = None  # [G, E] unit-norm cluster centroids
        self.assignment_ = None  # [W, K] global speaker of each local speaker or -1

    def _pass_segment_and_embed(self, source, starts, F, features):
        """Segmentation of every window, counts, coverage and local embeddings.

        Returns the float16 activations ``[W, T, K]`` (None in low-memory mode).
        """
        self.count_sum_ = np.zeros(F, dtype=np.float32)
        self.coverage_ = np.zeros(F, dtype=np.int32)
        min_frames = max(1.0, self.min_embedding_seconds / self.frame_shift)
        pending, keys, embeddings = [], [], []
        cache = None
        self.num_local_ = 0

        def flush():
            if pending:
                embeddings.append(self.pool(features, pending) if features is not None
                                  else self.embed_crops(pending))
                pending.clear()

        for first, wavs in self._batches(source, starts, "segmentation"):
            acts = self._run_segment(wavs)
            if cache is None and not self.low_memory:
                cache = np.zeros((len(starts),) + acts.shape[1:], dtype=np.float16)
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
                    cache[w, :n, : act.shape[1]] = act
                num_valid = min(self.window_samples, source.num_samples - s * self.hop)
                for k in range(act.shape[1]):
                    active = local[:, k].sum()
                    if active < min_frames:
                        continue
                    alone = local[:, k] & (count == 1)
                    chosen = alone if alone.sum() >= min_frames else local[:, k]
                    if features is not None:
                        pending.append((s, chosen))
                    else:
                        pending.append(wavs[b][self._sample_mask(np.flatnonzero(chosen),
                                                                 num_valid)])
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
        emb = self.embeddings_.astype(np.float64)
        counts = dict(num_speakers=num_speakers, min_speakers=min_speakers,
                      max_speakers=max_speakers)
        if self.clustering == "vbx":
            from .vbx import vbx_clustering

            labels, _ = vbx_clustering(emb, self.plda, threshold=self.clustering_threshold,
                                       Fa=self.vbx_fa, Fb=self.vbx_fb,
                                       min_cluster_size=self.min_cluster_size, **counts)
        else:
            labels = cluster_embeddings(emb, threshold=self.clustering_threshold,
                                        min_cluster_size=self.min_cluster_size, **counts)
        labels = np.asarray(labels, dtype=np.int64)
        self.cluster_labels_ = labels
        G = int(labels.max()) + 1
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        centroids = np.stack([unit[labels == g].mean(axis=0) for g in range(G)])
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        self.centroids_ = centroids.astype(np.float32)
        score = unit @ centroids.T + self.assignment_bonus * (labels[:, None] == np.arange(G))
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
        """Sums the mapped global activations over windows (from the cache or a 2nd pass)."""
        self.activation_sum_ = np.zeros((F, self.num_speakers_), dtype=np.float32)

        def add(w, act):
            s = int(starts[w])
            n = min(act.shape[0], F - s)
            for k, g in enumerate(self.assignment_[w]):
                if g >= 0 and k < act.shape[1]:
                    self.activation_sum_[s:s + n, g] += act[:n, k]

        if cache is not None:
            for w in range(cache.shape[0]):
                add(w, cache[w].astype(np.float32))
            return
        for first, wavs in self._batches(source, starts, "aggregation (second pass)"):
            acts = self._run_segment(wavs)
            for b in range(acts.shape[0]):
                add(first + b, acts[b])

    def _annotate(self, duration, uri):
        """The output annotations from the aggregated activations."""
        coverage = np.maximum(self.coverage_, 1).astype(np.float32)
        average = self.activation_sum_ / coverage[:, None]
        count = np.floor(self.count_sum_ / coverage + 0.5).astype(np.int64)
        count = np.minimum(count, average.shape[1])
        rank = np.argsort(np.argsort(-average, axis=1, kind="stable"), axis=1, kind="stable")
        binary = (rank < count[:, None]) & (average > self.min_activation)
        on = int(round(self.min_duration_on / self.frame_shift))
        off = int(round(self.min_duration_off / self.frame_shift))
        smoothed = np.stack([smooth_binary(binary[:, g], on, off)
                             for g in range(binary.shape[1])], axis=1)
        best = np.argmax(np.where(smoothed, average, -np.inf), axis=1)
        exclusive = np.zeros_like(smoothed)
        speaking = smoothed.any(axis=1)
        exclusive[np.flatnonzero(speaking), best[speaking]] = True
        annotation, exclusive_annotation = Annotation(uri=uri), Annotation(uri=uri)
        for target, active in ((annotation, smoothed), (exclusive_annotation, exclusive)):
            for g in range(active.shape[1]):
                label = f"SPEAKER_{g:02d}"
                for a, b in zip(*binary_runs(active[:, g])):
                    start = max(0.0, self.frame_time(a))
                    end = min(duration, self.frame_time(b))
                    if end > start:
                        target[Segment(start, end), label] = label
        present = [int(label.split("_")[1]) for label in annotation.labels()]
        embeddings = self.centroids_[present] if present else np.zeros((0, 0), np.float32)
        return DiarizeOutput(annotation, exclusive_annotation, embeddings)
