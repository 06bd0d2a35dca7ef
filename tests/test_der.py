"""DER reports on hand-made annotations with known error rates."""

import math

import pandas as pd
import pytest
from pyannote.core import Annotation, Segment, Timeline

from speechbrain_pruning.diarization.der import DER_COLUMNS, der_report, nist_collar, write_der_report


def make(uri, turns):
    """Annotation from ``[(start, end, label), ...]``."""
    ann = Annotation(uri=uri)
    for start, end, label in turns:
        ann[Segment(start, end), label] = label
    return ann


REF = make("a", [(0, 10, "A"), (10, 20, "B")])


def total_row(df):
    return df[df["uri"] == "TOTAL"].iloc[0]


def test_perfect_is_zero_even_with_other_labels():
    hyp = make("a", [(0, 10, "x"), (10, 20, "y")])
    row = total_row(der_report({"a": REF}, {"a": hyp}))
    assert row["der %"] == pytest.approx(0.0)
    assert row["total speech s"] == pytest.approx(20.0)


def test_all_missed_is_hundred():
    for hyps in ({"a": Annotation(uri="a")}, {}):
        row = total_row(der_report({"a": REF}, hyps))
        assert row["der %"] == pytest.approx(100.0)
        assert row["missed %"] == pytest.approx(100.0)
        assert row["false alarm %"] == pytest.approx(0.0)


def test_known_confusion_and_false_alarm():
    # one speaker for everything: B's 10 s confused -> 50 %
    hyp = make("a", [(0, 20, "x")])
    row = total_row(der_report({"a": REF}, {"a": hyp}))
    assert row["confusion %"] == pytest.approx(50.0)
    assert row["der %"] == pytest.approx(50.0)
    # extra 5 s of speech in the hypothesis -> 25 % false alarm
    hyp = make("a", [(0, 10, "x"), (10, 20, "y"), (20, 25, "y")])
    ref = make("a", [(0, 10, "A"), (10, 20, "B")])
    uem = {"a": Timeline([Segment(0, 25)])}
    row = total_row(der_report({"a": ref}, {"a": hyp}, uems=uem))
    assert row["false alarm %"] == pytest.approx(25.0)
    assert row["false alarm s"] == pytest.approx(5.0)


def test_total_row_pools_seconds():
    refs = {"a": REF, "b": make("b", [(0, 30, "A")])}
    hyps = {"a": make("a", [(0, 20, "x")]), "b": make("b", [(0, 30, "x")])}
    df = der_report(refs, hyps)
    assert list(df.columns) == DER_COLUMNS
    assert df["uri"].tolist() == ["a", "b", "TOTAL"]
    # 10 s error over 50 s of speech
    assert total_row(df)["der %"] == pytest.approx(20.0)


def test_collar_forgives_boundary_shift():
    hyp = make("a", [(0, 10.1, "x"), (10.1, 20, "y")])
    strict = total_row(der_report({"a": REF}, {"a": hyp}, collar=0.0))
    assert strict["der %"] == pytest.approx(0.5)  # 0.1 s confusion / 20 s
    # pyannote's collar is the total width: 0.25 -> +-0.125 s covers the 0.1 s shift
    loose = total_row(der_report({"a": REF}, {"a": hyp}, collar=0.25))
    assert loose["der %"] == pytest.approx(0.0)
    # 0.15 total width (+-0.075 s) does not
    assert total_row(der_report({"a": REF}, {"a": hyp}, collar=0.15))["der %"] > 0
    assert nist_collar(0.25) == 0.5


def test_uem_is_honoured():
    hyp = make("a", [(0, 10, "x")])  # B missed
    uems = {"a": Timeline([Segment(0, 10)])}
    row = total_row(der_report({"a": REF}, {"a": hyp}, uems=uems))
    assert row["der %"] == pytest.approx(0.0)
    assert row["total speech s"] == pytest.approx(10.0)


def test_skip_overlap():
    ref = make("a", [(0, 10, "A"), (5, 15, "B")])
    hyp = make("a", [(0, 5, "x"), (10, 15, "y")])
    assert total_row(der_report({"a": ref}, {"a": hyp}))["der %"] > 0
    row = total_row(der_report({"a": ref}, {"a": hyp}, skip_overlap=True))
    assert row["der %"] == pytest.approx(0.0)


def test_write_report(tmp_path):
    df = der_report({"a": REF}, {"a": make("a", [(0, 20, "x")])})
    md = write_der_report(df, str(tmp_path / "out" / "der.csv"), str(tmp_path / "der.md"))
    back = pd.read_csv(tmp_path / "out" / "der.csv")
    assert back["der %"].tolist() == pytest.approx([50.0, 50.0])
    text = (tmp_path / "der.md").read_text()
    assert text == md and "| TOTAL | 50.00 |" in text
    assert not any(math.isnan(v) for v in back["der %"])
