"""Sliding-window diarization with oracle segmentation and embeddings.

The synthetic audio is a sum of sinusoids, one frequency per speaker, plus a
little seeded noise. The oracle segmentation finds each window's position in
the file (by matching its first frame of samples) and returns the reference
activations of the speakers present in that window, in window-local order of
first appearance. The oracle embedding measures the energy at every speaker
frequency and returns a one-hot-ish vector of the loudest one.
"""

import gc
import weakref

import numpy as np
import pytest
import soundfile as sf
import torch
from pyannote.core import Annotation, Segment

from speechbrain_pruning.diarization.clustering import cluster_embeddings
from speechbrain_pruning.diarization.pipeline import SlidingWindowDiarizer, smooth_binary
from speechbrain_pruning.diarization.der import der_report

SR = 16000
HOP = 320
RF = 400
FREQS = {"A": 250.0, "B": 550.0, "C": 900.0, "D": 1300.0}
TURNS = [
    ("A", 0.5, 8.0), ("A", 15.0, 21.0), ("A", 30.0, 36.0),
    ("B", 7.0, 13.5), ("B", 20.0, 26.0), ("B", 35.0, 39.5),
    ("C", 12.5, 15.5), ("C", 25.0, 30.5),
]
K_LOCAL = 4


def make_reference(turns, uri="synth"):
    ann = Annotation(uri=uri)
    for label, start, end in turns:
        ann[Segment(start, end), label] = label
    return ann


def synthesize(turns, duration, amplitude=0.3, noise=0.01, seed=0):
    """Waveform ``[S]`` float32: one sinusoid per speaker during its turns."""
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    t = np.arange(n) / SR
    wav = noise * rng.standard_normal(n)
    for label, start, end in turns:
        a, b = int(start * SR), int(end * SR)
        wav[a:b] += amplitude * np.sin(2 * np.pi * FREQS[label] * t[a:b])
    return wav.astype(np.float32)


def frame_activity(turns, num_frames, labels):
    """``[F, len(labels)]`` reference activity at the frame middles."""
    mid = (np.arange(num_frames) * HOP + RF / 2) / SR
    act = np.zeros((num_frames, len(labels)), dtype=np.float32)
    for label, start, end in turns:
        act[(mid >= start) & (mid < end), labels.index(label)] = 1.0
    return act


class OracleSegmentation:
    """``segment(wavs [B, S]) -> [B, T, K]`` true activations in local order."""

    def __init__(self, wav, turns, window=8.0):
        self.window_frames = (int(window * SR) - RF) // HOP + 1
        self.labels = sorted({label for label, _, _ in turns})
        num_frames = (len(wav) - RF) // HOP + 1
        self.activity = frame_activity(turns, num_frames, self.labels)
        self.index = {wav[s * HOP:s * HOP + HOP].tobytes(): s for s in range(num_frames)}

    def __call__(self, wavs):
        out = np.zeros((wavs.shape[0], self.window_frames, K_LOCAL), dtype=np.float32)
        for b, wav in enumerate(wavs.numpy()):
            start = self.index[wav[:HOP].tobytes()]
            act = self.activity[start:start + self.window_frames]
            present = [k for k in range(act.shape[1]) if act[:, k].any()]
            present.sort(key=lambda k: np.argmax(act[:, k]))
            for local, k in enumerate(present):
                out[b, : len(act), local] = act[:, k]
        return torch.from_numpy(out)


def oracle_embed(wavs, wav_lens):
    """One-hot-ish ``[B, len(FREQS)]`` vector of the loudest speaker frequency."""
    out = []
    for wav, rel in zip(wavs.numpy(), wav_lens.numpy()):
        x = wav[: int(round(rel * wav.shape[0]))]
        t = np.arange(len(x)) / SR
        energy = np.array([abs(np.sum(x * np.exp(-2j * np.pi * f * t))) for f in FREQS.values()])
        vec = 0.05 * energy / max(energy.max(), 1e-9)
        vec[np.argmax(energy)] += 1.0
        out.append(vec)
    return torch.tensor(np.stack(out), dtype=torch.float32)


def make_diarizer(wav, turns, **kwargs):
    kwargs.setdefault("clustering", "ahc")
    return SlidingWindowDiarizer(OracleSegmentation(wav, turns), oracle_embed,
                                 progress=False, **kwargs)


@pytest.fixture(scope="module")
def synth():
    wav = synthesize(TURNS, 40.0)
    return wav, make_reference(TURNS)


def der_of(reference, hypothesis):
    df = der_report({"synth": reference}, {"synth": hypothesis})
    return df.iloc[-1]


def test_oracle_der_below_five_percent(synth):
    wav, reference = synth
    diarizer = make_diarizer(wav, TURNS)
    hypothesis = diarizer(wav, uri="synth").speaker_diarization
    assert hypothesis.uri == "synth"
    assert len(hypothesis.labels()) == 3
    row = der_of(reference, hypothesis)
    assert row["der %"] < 5.0, row
    # accumulators are per frame, not per window
    F = diarizer.num_frames(len(wav))
    assert diarizer.activation_sum_.shape == (F, 3)
    assert diarizer.count_sum_.shape == diarizer.coverage_.shape == (F,)
    assert diarizer.coverage_.min() >= 1


def test_low_memory_two_pass_matches_one_pass(synth):
    wav, _ = synth
    calls = []
    segmentation = OracleSegmentation(wav, TURNS)

    def counted(wavs):
        calls.append(wavs.shape[0])
        return segmentation(wavs)

    one = SlidingWindowDiarizer(counted, oracle_embed, clustering="ahc", progress=False)
    cached = one(wav, uri="synth")
    windows = len(one.window_starts(one.num_frames(len(wav))))
    assert sum(calls) == windows  # one segmentation pass
    calls.clear()
    two = SlidingWindowDiarizer(counted, oracle_embed, clustering="ahc", low_memory=True,
                                progress=False)
    assert two(wav, uri="synth").speaker_diarization == cached.speaker_diarization
    assert sum(calls) == 2 * windows


def test_path_input_matches_memory(synth, tmp_path):
    wav, reference = synth
    path = tmp_path / "synth.wav"
    sf.write(path, wav, SR, subtype="FLOAT")
    hypothesis = make_diarizer(wav, TURNS)(str(path)).speaker_diarization
    assert hypothesis.uri == "synth"
    assert der_of(reference, hypothesis)["der %"] < 5.0


def test_num_and_max_speakers_honoured(synth):
    wav, _ = synth
    diarizer = make_diarizer(wav, TURNS)
    def speakers(**kwargs):
        return len(diarizer(wav, **kwargs).speaker_diarization.labels())

    assert speakers(num_speakers=2) == 2
    assert speakers(max_speakers=2) <= 2
    assert speakers(num_speakers=3) == 3
    # a huge threshold merges everyone unless min_speakers says otherwise
    diarizer.clustering_threshold = 5.0
    assert speakers() == 1
    assert speakers(min_speakers=3) == 3
    with pytest.raises(ValueError, match="min_speakers=3 > max_speakers=2"):
        diarizer(wav, min_speakers=3, max_speakers=2)
    with pytest.raises(ValueError, match="num_speakers must be >= 1"):
        diarizer(wav, num_speakers=0)


def test_silence_gives_empty_annotation():
    wav = np.zeros(SR * 20, dtype=np.float32)
    wav[::7] = 1e-4  # distinct frames so the oracle can locate windows
    wav += np.arange(len(wav), dtype=np.float32) * 1e-9
    output = make_diarizer(wav, [])(wav, uri="silence")
    hypothesis = output.speaker_diarization
    assert isinstance(hypothesis, Annotation) and len(hypothesis) == 0
    assert hypothesis.uri == "silence" and len(output.exclusive_speaker_diarization) == 0
    empty = make_diarizer(wav, [])(np.zeros(100, dtype=np.float32))
    assert len(empty.speaker_diarization) == 0


def test_audio_shorter_than_window():
    turns = [("A", 0.5, 2.5)]
    wav = synthesize(turns, 3.0)
    hypothesis = make_diarizer(wav, turns)(wav, uri="short").speaker_diarization
    segments = list(hypothesis.itertracks(yield_label=True))
    assert len(segments) == 1
    segment, _, _ = segments[0]
    assert abs(segment.start - 0.5) < 0.02 and abs(segment.end - 2.5) < 0.02
    assert hypothesis.get_timeline().extent().end <= 3.0


def test_min_durations():
    x = np.array([1, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
    assert smooth_binary(x, min_off_frames=2).astype(int).tolist() == [1, 1, 1, 1, 0, 0, 0, 1]
    assert smooth_binary(x, min_on_frames=2).astype(int).tolist() == [0, 0, 1, 1, 0, 0, 0, 0]


def test_clustering_constraints():
    rng = np.random.default_rng(0)
    centers = np.eye(4)
    emb = np.concatenate([c + 0.05 * rng.standard_normal((5, 4)) for c in centers])
    truth = np.repeat(np.arange(4), 5)
    labels = cluster_embeddings(emb)
    assert len(set(labels)) == 4
    # same partition as the truth
    assert len(set(zip(labels, truth))) == 4
    for k in (1, 2, 3, 4, 6, 20, 30):
        assert len(set(cluster_embeddings(emb, num_speakers=k))) == min(k, 20)
    assert len(set(cluster_embeddings(emb, max_speakers=2))) == 2
    assert len(set(cluster_embeddings(emb, threshold=1.9, min_speakers=3))) == 3
    assert len(set(cluster_embeddings(emb, threshold=0.0001, max_speakers=5))) == 5
    assert len(set(cluster_embeddings(emb, method="ward", num_speakers=4))) == 4
    assert cluster_embeddings(np.zeros((0, 4))).shape == (0,)
    assert cluster_embeddings(emb[:1], num_speakers=3).tolist() == [0]
    # ties (identical embeddings) still give the requested count
    assert len(set(cluster_embeddings(np.ones((6, 3)), num_speakers=3))) == 3
    with pytest.raises(ValueError):
        cluster_embeddings(emb, min_speakers=3, max_speakers=2)


def test_long_file_streams_with_frame_level_state(tmp_path):
    """10 minutes read block-wise from disk; no per-window outputs survive."""
    duration = 600.0
    turns = [("A", 100.0, 110.0), ("B", 400.0, 420.0)]
    n = int(duration * SR)
    wav = np.zeros(n, dtype=np.float32)
    t = np.arange(int(20 * SR)) / SR
    for label, start, end in turns:
        a, b = int(start * SR), int(end * SR)
        wav[a:b] = 0.3 * np.sin(2 * np.pi * FREQS[label] * t[: b - a])
    path = tmp_path / "long.wav"
    sf.write(path, wav, SR)
    del wav

    outputs = []

    def energy_segment(wavs):  # one local speaker: frames with energy
        frames = wavs.unfold(1, RF, HOP)
        act = torch.zeros(wavs.shape[0], frames.shape[1], 2)
        act[..., 0] = (frames.pow(2).mean(-1) > 1e-3).float()
        outputs.append(weakref.ref(act))
        return act

    diarizer = SlidingWindowDiarizer(energy_segment, oracle_embed, batch_size=16,
                                     clustering="ahc", progress=False)
    hypothesis = diarizer(str(path)).speaker_diarization
    F = diarizer.num_frames(n)
    num_windows = len(diarizer.window_starts(F))
    assert num_windows > 250 and len(outputs) == (num_windows + 15) // 16  # one pass
    gc.collect()
    assert all(ref() is None for ref in outputs)
    assert diarizer.activation_sum_.shape == (F, 2)
    assert diarizer.count_sum_.shape == (F,) and diarizer.coverage_.shape == (F,)
    assert diarizer.assignment_.shape == (num_windows, 2)
    assert diarizer.embeddings_.shape[0] <= 2 * num_windows
    for value in vars(diarizer).values():
        if isinstance(value, np.ndarray):
            assert value.size <= 2 * F
    reference = make_reference(turns, uri="long")
    assert hypothesis.uri == "long"
    assert der_report({"long": reference}, {"long": hypothesis}).iloc[-1]["der %"] < 1.0


def test_audio_source_rejects_nan_and_scales_integer_pcm(tmp_path):
    from speechbrain_pruning.audio import AudioSource

    wav = np.zeros(1000, dtype=np.float32)
    wav[500] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN/Inf sample\(s\) \(first at sample 500\)"):
        AudioSource(wav)
    sf.write(tmp_path / "nan.wav", wav, 16000, subtype="FLOAT")
    with AudioSource(tmp_path / "nan.wav") as source:
        assert source.read(0, 400).tolist() == [0.0] * 400
        with pytest.raises(ValueError, match=r"nan\.wav: NaN/Inf audio sample at sample 500"):
            source.read(400, 800)
    pcm = torch.tensor([-32768, 0, 16384], dtype=torch.int16)
    assert AudioSource(pcm).read(0, 3).tolist() == [-1.0, 0.0, 0.5]


class OracleFrameEmbedder:
    """Frame pooling: per-frame energy at every speaker frequency, pooled by weighted mean."""

    def __init__(self):
        self.feature_calls, self.pool_calls = [], []

    def frame_features(self, wavs):
        self.feature_calls.append(tuple(wavs.shape))
        frames = wavs.unfold(1, RF, HOP)  # [B, T, RF]
        t = torch.arange(RF) / SR
        feats = []
        for f in FREQS.values():
            c, s = torch.cos(2 * np.pi * f * t), torch.sin(2 * np.pi * f * t)
            feats.append(((frames * c).sum(-1) ** 2 + (frames * s).sum(-1) ** 2).sqrt())
        return torch.stack(feats, dim=-1)  # [B, T, 4]

    def pool_frames(self, features, weights):
        self.pool_calls.append(features.shape[0])
        w = weights.unsqueeze(-1)
        mean = (features * w).sum(1) / w.sum(1).clamp_min(1e-8)
        return torch.nn.functional.one_hot(mean.argmax(-1), len(FREQS)).float() + 0.05 * mean \
            / mean.amax(-1, keepdim=True).clamp_min(1e-8)


def test_frame_pooling_embedder_runs_once_per_frame_and_batches(synth):
    wav, reference = synth
    embedder = OracleFrameEmbedder()
    diarizer = SlidingWindowDiarizer(OracleSegmentation(wav, TURNS), embedder, clustering="ahc",
                                     embedding_batch_size=8, progress=False)
    output = diarizer(wav, uri="synth")
    assert der_of(reference, output.speaker_diarization)["der %"] < 5.0
    F = diarizer.num_frames(len(wav))
    # the speaker model sees every frame once: consecutive blocks of one window
    assert len(embedder.feature_calls) == -(-F // diarizer.window_frames)
    frames_seen = sum((s - RF) // HOP + 1 for _, s in embedder.feature_calls)
    assert frames_seen == F
    # every (window, local speaker) pooled, in batches of <= 8
    assert sum(embedder.pool_calls) == len(diarizer.embeddings_)
    assert max(embedder.pool_calls) <= 8 and len(embedder.pool_calls) < len(diarizer.embeddings_)


def test_output_exclusive_annotation_and_speaker_embeddings(synth):
    wav, reference = synth
    output = make_diarizer(wav, TURNS)(wav, uri="synth")
    hyp, excl = output.speaker_diarization, output.exclusive_speaker_diarization
    assert len(hyp.get_overlap()) > 0  # the reference overlaps, so does the output
    assert len(excl.get_overlap()) == 0
    assert abs(excl.get_timeline().support().duration()
               - hyp.get_timeline().support().duration()) < 0.05
    assert excl.labels() == hyp.labels()
    # one unit embedding per label, each pointing at one oracle frequency
    emb = output.speaker_embeddings
    assert emb.shape == (len(hyp.labels()), len(FREQS))
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert len(set(np.argmax(emb, axis=1))) == len(hyp.labels())
    data = output.to_dict()
    assert [s["label"] for s in data["speakers"]] == hyp.labels()
    assert len(data["segments"]) == len(hyp) and len(data["exclusive_segments"]) == len(excl)


def test_waveform_dict_and_any_sample_rate(synth, tmp_path):
    wav, reference = synth
    diarizer = SlidingWindowDiarizer(energy_per_frequency_segment, oracle_embed,
                                     clustering="ahc", progress=False)
    base = diarizer(wav, uri="synth").speaker_diarization
    as_dict = diarizer({"waveform": torch.from_numpy(wav)[None].repeat(2, 1),
                        "sample_rate": SR}, uri="synth").speaker_diarization
    assert as_dict == base
    for rate in (8000, 44100):
        import torchaudio

        resampled = torchaudio.functional.resample(torch.from_numpy(wav), SR, rate).numpy()
        sf.write(tmp_path / f"synth{rate}.wav", resampled, rate, subtype="FLOAT")
        hyp = diarizer(str(tmp_path / f"synth{rate}.wav")).speaker_diarization
        assert hyp.uri == f"synth{rate}"
        assert der_of(reference, hyp.rename_tracks())["der %"] < 6.0, rate


def energy_per_frequency_segment(wavs):
    """Local speakers = the 4 frequencies (fixed order), active when their energy is high."""
    feats = OracleFrameEmbedder().frame_features(wavs)
    return (feats > 0.25 * RF * 0.3 / 2).float()


def test_progress_hook_and_median_filter(synth):
    wav, _ = synth
    seen = []

    def hook(step_name, step_artifact, file=None, total=None, completed=None):
        seen.append((step_name, completed, total, file["uri"]))

    diarizer = make_diarizer(wav, TURNS, batch_size=4)
    diarizer.progress = hook
    diarizer(wav, uri="synth")
    steps = [s for s in seen if s[0] == "segmentation"]
    assert steps[-1][1] == steps[-1][2] == len(steps) and steps[0][3] == "synth"

    def blip_segment(wavs):  # one speaker everywhere but 3-frame holes every 50 frames
        T = (wavs.shape[1] - RF) // HOP + 1
        act = torch.ones(wavs.shape[0], T, 1)
        act[:, 20::50] = act[:, 21::50] = act[:, 22::50] = 0
        return act

    def ones(wavs, lens):
        return torch.ones(wavs.shape[0], 2)

    filtered = SlidingWindowDiarizer(blip_segment, ones, clustering="ahc", progress=False,
                                     median_filter=11)(wav).speaker_diarization
    raw = SlidingWindowDiarizer(blip_segment, ones, clustering="ahc", progress=False,
                                median_filter=0)(wav).speaker_diarization
    assert len(filtered) == 1 and len(raw) > 10


def test_vbx_with_a_plda_from_reference_single_speaker_stretches(synth, tmp_path):
    from speechbrain_pruning.diarization.embedders import (_single_speaker_pieces,
                                                           reference_embeddings,
                                                           train_plda_on_recordings)
    from speechbrain_pruning.diarization.rttm import write_rttm

    wav, reference = synth
    pieces = _single_speaker_pieces(reference, window=4.0, min_seconds=1.0)
    overlap = reference.get_overlap()
    assert len(pieces) == 9  # every solo stretch of TURNS cut at 4 s, pieces < 1 s dropped
    for start, end, label in pieces:
        piece = Segment(start, end)
        assert 1.0 <= piece.duration <= 4.0 + 1e-9
        assert reference.label_timeline(label).crop(piece).duration() == \
            pytest.approx(piece.duration)  # the speaker talks throughout
        assert overlap.crop(piece).duration() == pytest.approx(0.0)  # and alone
    sf.write(tmp_path / "synth.wav", wav, SR, subtype="FLOAT")
    write_rttm(reference, tmp_path / "synth.rttm")
    csv = tmp_path / "train.csv"
    csv.write_text(f"ID,wav,rttm\nsynth,{tmp_path / 'synth.wav'},{tmp_path / 'synth.rttm'}\n")
    emb, labels = reference_embeddings(oracle_embed, csv, window=4.0, progress=False)
    assert emb.shape == (len(pieces), len(FREQS)) and sorted(set(labels)) == \
        ["synth/A", "synth/B", "synth/C"]
    plda = train_plda_on_recordings(oracle_embed, csv, window=4.0, progress=False)
    diarizer = make_diarizer(wav, TURNS, clustering="vbx", plda=plda)
    hypothesis = diarizer(wav, uri="synth").speaker_diarization
    assert len(hypothesis.labels()) == 3
    assert der_of(reference, hypothesis)["der %"] < 5.0
    with pytest.raises(ValueError, match="needs a PLDA"):
        make_diarizer(wav, TURNS, clustering="vbx")
