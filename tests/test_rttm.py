"""Tests for speechbrain_pruning/diarization/rttm.py."""

import io

import numpy as np
import pytest
from pyannote.core import Annotation, Segment, Timeline

from speechbrain_pruning.diarization import (
    frame_labels,
    read_rttm,
    read_uem,
    write_rttm,
    write_uem,
)


def _turns(annotation):
    return sorted((round(s.start * 1000), round(s.end * 1000), label)
                  for s, _, label in annotation.itertracks(yield_label=True))


def test_round_trip_exact_to_ms(tmp_path):
    rng = np.random.default_rng(0)
    annotations = {}
    for uri in ("rec1", "rec2"):
        ann = Annotation(uri=uri)
        for index in range(50):
            start = int(rng.integers(0, 600_000))
            ann[Segment(start / 1000, (start + int(rng.integers(1, 5000))) / 1000),
                index] = f"spk{int(rng.integers(0, 4))}"
        annotations[uri] = ann
    path = tmp_path / "all.rttm"
    with open(path, "w", encoding="utf-8") as handle:
        for ann in annotations.values():
            write_rttm(ann, handle)
    back = read_rttm(path)
    assert sorted(back) == ["rec1", "rec2"]
    for uri, ann in annotations.items():
        assert back[uri].uri == uri
        assert _turns(back[uri]) == _turns(ann)
    # a second write of what was read is byte-identical
    write_rttm(back["rec1"], tmp_path / "again.rttm")
    write_rttm(annotations["rec1"], tmp_path / "first.rttm")
    assert (tmp_path / "again.rttm").read_bytes() == (tmp_path / "first.rttm").read_bytes()


def test_format_identical_turns_and_ignored_lines(tmp_path):
    path = tmp_path / "a.rttm"
    path.write_text(
        "# a comment\n"
        "\n"
        ";; another comment\n"
        "SPKR-INFO rec 1 <NA> <NA> <NA> unknown A <NA> <NA>\n"
        "SPEAKER rec 1 1.000 0.500 <NA> <NA> A <NA> <NA>\n"
        "SPEAKER rec 1 1.000 0.500 <NA> <NA> B <NA> <NA>\n"
        "SPEAKER rec 1 2.000 0.000 <NA> <NA> C <NA> <NA>\n"
        "LEXEME rec 1 1.0 0.2 hello lex A <NA> <NA>\n",
        encoding="utf-8")
    ann = read_rttm(path)["rec"]
    assert _turns(ann) == [(1000, 1500, "A"), (1000, 1500, "B")]
    out = io.StringIO()
    write_rttm(ann, out)
    assert out.getvalue() == ("SPEAKER rec 1 1.000 0.500 <NA> <NA> A <NA> <NA>\n"
                              "SPEAKER rec 1 1.000 0.500 <NA> <NA> B <NA> <NA>\n")


def test_non_ascii_speakers(tmp_path):
    ann = Annotation(uri="réunion_1")
    ann[Segment(0.0, 1.0)] = "Zoë"
    ann[Segment(0.5, 2.0)] = "李雷"
    write_rttm(ann, tmp_path / "a.rttm")
    back = read_rttm(tmp_path / "a.rttm")["réunion_1"]
    assert sorted(back.labels()) == sorted(["Zoë", "李雷"])
    assert _turns(back) == _turns(ann)


@pytest.mark.parametrize("line, message", [
    ("SPEAKER rec 1 0.0\n", "expected"),
    ("SPEAKER rec 1 abc 1.0 <NA> <NA> A <NA> <NA>\n", "not a finite number"),
    ("SPEAKER rec 1 0.0 nan <NA> <NA> A <NA> <NA>\n", "not a finite number"),
    ("SPEAKER rec 1 1.0 -0.5 <NA> <NA> A <NA> <NA>\n", "negative"),
    ("rec 1 0.0 1.0\n", "unknown RTTM type"),
])
def test_malformed_rttm(tmp_path, line, message):
    path = tmp_path / "bad.rttm"
    path.write_text("SPEAKER rec 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n\n" + line)
    with pytest.raises(ValueError, match=message) as info:
        read_rttm(path)
    assert f"{path}, line 3" in str(info.value)


def test_write_rttm_rejects_bad_names():
    ann = Annotation(uri="a b")
    ann[Segment(0, 1)] = "A"
    with pytest.raises(ValueError, match="uri"):
        write_rttm(ann, io.StringIO())
    ann = Annotation(uri="ab")
    ann[Segment(0, 1)] = "John Smith"
    with pytest.raises(ValueError, match="whitespace"):
        write_rttm(ann, io.StringIO())
    with pytest.raises(ValueError, match="uri"):
        write_rttm(Annotation(), io.StringIO())


def test_uem(tmp_path):
    path = tmp_path / "all.uem"
    path.write_text("# scoring regions\nrec1 1 0.000 10.5\nrec2 1 2 4\nrec2 1 5 5\n")
    uems = read_uem(path)
    assert list(uems["rec1"]) == [Segment(0, 10.5)]
    assert list(uems["rec2"]) == [Segment(2, 4)]
    assert uems["rec2"].uri == "rec2"
    write_uem(uems, tmp_path / "out.uem")
    assert (tmp_path / "out.uem").read_text() == "rec1 1 0.000 10.500\nrec2 1 2.000 4.000\n"
    out = io.StringIO()
    write_uem(Timeline([Segment(1, 2)], uri="x"), out)
    assert out.getvalue() == "x 1 1.000 2.000\n"
    for bad, message in (("rec 1 0.0\n", "expected"), ("rec 1 3.0 2.0\n", "start <= end"),
                         ("rec 1 0 x\n", "finite")):
        path.write_text("rec 1 0 1\n" + bad)
        with pytest.raises(ValueError, match=message) as info:
            read_uem(path)
        assert "line 2" in str(info.value)


def test_frame_labels_known_values():
    ann = Annotation(uri="rec")
    # frame t (shift 0.1, field 0.1) has its centre at start + 0.1 t + 0.05
    ann[Segment(1.0, 1.3), 0] = "B"        # frames 0-2
    ann[Segment(1.2, 1.6), 1] = "A"        # frames 2-5 (overlap in frame 2)
    ann[Segment(1.56, 1.6), 2] = "E"       # covers no centre, 0.04 s of speech
    ann[Segment(1.7, 1.8), 3] = "D"        # frame 7, 0.1 s
    ann[Segment(1.8, 1.9), 4] = "C"        # frame 8, 0.1 s (ties with D)
    ann[Segment(0.0, 0.9), 5] = "F"        # before the chunk
    ann[Segment(1.9, 2.5), 6] = "G"        # frame 9, 0.1 s inside the chunk
    labels, speakers = frame_labels(ann, 1.0, 1.0, 10, frame_shift=0.1,
                                    receptive_field=0.1, max_speakers=4)
    assert labels.dtype == np.float32 and labels.shape == (10, 4)
    # A 0.4, B 0.3, then C/D/G at 0.1 s: ties by name keep C and D
    assert speakers == ["B", "A", "D", "C"]
    expected = np.zeros((10, 4), dtype=np.float32)
    expected[0:3, 0] = 1
    expected[2:6, 1] = 1
    expected[7, 2] = 1
    expected[8, 3] = 1
    np.testing.assert_array_equal(labels, expected)

    labels, speakers = frame_labels(ann, 1.0, 1.0, 10, frame_shift=0.1,
                                    receptive_field=0.1, max_speakers=6)
    assert speakers == ["B", "A", "D", "C", "G", "E"]
    assert not labels[:, 5].any()  # E covers no frame centre
    labels, speakers = frame_labels(ann, 3.0, 1.0, 10, frame_shift=0.1, receptive_field=0.1)
    assert speakers == [] and not labels.any()


def test_frame_labels_wavlm_defaults():
    ann = Annotation(uri="rec")
    ann[Segment(0.0, 0.1)] = "A"
    labels, speakers = frame_labels(ann, 0.0, 0.2, 9)
    # centres 0.0125, 0.0325, ..., 0.0925 are < 0.1; 0.1125 is not
    assert speakers == ["A"]
    assert labels[:, 0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert not labels[:, 1:].any()
