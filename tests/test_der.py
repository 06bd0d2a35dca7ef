"""DER and JER reports on hand-made annotations with known error rates."""

import math

import pandas as pd
import pytest
from pyannote.core import Annotation, Segment, Timeline

from speechbrain_pruning.diarization.der import DER_COLUMNS, der_report, nist_collar, write_der_report
from speechbrain_pruning.diarization.rttm import write_rttm, write_uem
from speechbrain_pruning.diarization.scoring import evaluate_recordings


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


# JER = mean over reference speakers of (false alarm + missed) / union of the
# reference speaker's and its mapped hypothesis speaker's speech (1 if unmapped).


def test_jer_perfect_and_all_missed():
    hyp = make("a", [(0, 10, "x"), (10, 20, "y")])
    assert total_row(der_report({"a": REF}, {"a": hyp}))["jer %"] == pytest.approx(0.0)
    # nothing detected: both reference speakers unmapped -> (1 + 1) / 2
    assert total_row(der_report({"a": REF}, {}))["jer %"] == pytest.approx(100.0)


def test_jer_one_speaker_for_two():
    # REF: A 0-10, B 10-20; hyp: x 0-20. x maps to A (tie: either way the same):
    # A: false alarm 10 (x's 10-20), missed 0, union 20 -> 0.5; B unmapped -> 1.
    # JER = (0.5 + 1) / 2 = 75 %, while DER = 10 s confusion / 20 s = 50 %.
    row = der_report({"a": REF}, {"a": make("a", [(0, 20, "x")])}).iloc[0]
    assert row["der %"] == pytest.approx(50.0)
    assert row["jer %"] == pytest.approx(75.0)


def test_jer_boundary_error():
    # hyp: x 0-15, y 15-20. A<->x: false alarm 5, union 15 -> 1/3;
    # B<->y: missed 5, union 10 -> 1/2. JER = (1/3 + 1/2) / 2 = 5/12 = 41.67 %.
    hyp = make("a", [(0, 15, "x"), (15, 20, "y")])
    row = total_row(der_report({"a": REF}, {"a": hyp}))
    assert row["jer %"] == pytest.approx(100 * 5 / 12)
    assert row["der %"] == pytest.approx(25.0)


def test_jer_weighs_every_speaker_the_same():
    # A talks 18 s, B 2 s, hyp gives all 20 s to one speaker x <-> A.
    # DER = 2 s confusion / 20 s = 10 %; JER: A: 2 / 20 = 0.1, B unmapped: 1 -> 55 %.
    ref = make("a", [(0, 18, "A"), (18, 20, "B")])
    row = total_row(der_report({"a": ref}, {"a": make("a", [(0, 20, "x")])}))
    assert row["der %"] == pytest.approx(10.0)
    assert row["jer %"] == pytest.approx(55.0)


def test_jer_total_is_pooled_over_speakers():
    # a: 2 speakers, errors 0.5 + 1 (see above); b: 1 speaker, perfect.
    # pyannote's aggregate: (0.5 + 1 + 0) / 3 speakers = 50 %, not the mean of the
    # per-file JERs ((75 + 0) / 2 = 37.5 %).
    refs = {"a": REF, "b": make("b", [(0, 30, "A")])}
    hyps = {"a": make("a", [(0, 20, "x")]), "b": make("b", [(0, 30, "x")])}
    df = der_report(refs, hyps)
    assert df["jer %"].tolist() == pytest.approx([75.0, 0.0, 50.0])


def test_jer_collar_uem_and_overlap():
    # 0.1 s shift: A<->x: false alarm 0.1 over union 10.1; B<->y: missed 0.1 over 10
    hyp = make("a", [(0, 10.1, "x"), (10.1, 20, "y")])
    strict = total_row(der_report({"a": REF}, {"a": hyp}))
    assert strict["jer %"] == pytest.approx(100 * (0.1 / 10.1 + 0.1 / 10) / 2)
    assert total_row(der_report({"a": REF}, {"a": hyp}, collar=0.25))["jer %"] == \
        pytest.approx(0.0)
    # outside the UEM B does not exist: A alone, perfect
    row = total_row(der_report({"a": REF}, {"a": make("a", [(0, 10, "x")])},
                               uems={"a": Timeline([Segment(0, 10)])}))
    assert row["jer %"] == pytest.approx(0.0)
    ref = make("a", [(0, 10, "A"), (5, 15, "B")])
    hyp = make("a", [(0, 5, "x"), (10, 15, "y")])
    assert total_row(der_report({"a": ref}, {"a": hyp}))["jer %"] > 0
    assert total_row(der_report({"a": ref}, {"a": hyp}, skip_overlap=True))["jer %"] == \
        pytest.approx(0.0)


def test_jer_without_reference_speakers():
    # silent reference: 0 if the hypothesis is silent too, 100 otherwise; adds no
    # speaker to the total
    refs = {"a": REF, "s": Annotation(uri="s")}
    uems = {"s": Timeline([Segment(0, 10)])}
    quiet = der_report(refs, {"a": make("a", [(0, 20, "x")])}, uems=uems)
    assert quiet["jer %"].tolist() == pytest.approx([75.0, 0.0, 75.0])
    noisy = der_report(refs, {"a": make("a", [(0, 20, "x")]), "s": make("s", [(0, 5, "x")])},
                       uems=uems)
    assert noisy["jer %"].tolist() == pytest.approx([75.0, 100.0, 75.0])


def test_evaluate_recordings_returns_der_and_jer(tmp_path):
    refs = {"a": REF, "b": make("b", [(0, 30, "A")])}
    hyps = {"a": make("a", [(0, 20, "x")]), "b": make("b", [(0, 30, "x")])}
    lines = ["ID,duration,wav,rttm,uem"]
    for uri, ref in refs.items():
        write_rttm(ref, tmp_path / f"{uri}.rttm")
        write_uem({uri: Timeline([Segment(0, 30)])}, tmp_path / f"{uri}.uem")
        lines.append(f"{uri},30.0,{tmp_path / uri}.wav,{tmp_path / uri}.rttm,"
                     f"{tmp_path / uri}.uem")
    (tmp_path / "recordings.csv").write_text("\n".join(lines) + "\n")
    totals = evaluate_recordings(lambda path, uri: hyps[uri], tmp_path / "recordings.csv",
                                 tmp_path / "eval", collars=(0.0,), progress=False)
    assert set(totals) == {0.0}
    # 10 s confusion over 50 s of speech; JER pooled as above
    assert totals[0.0]["der %"] == pytest.approx(20.0)
    assert totals[0.0]["jer %"] == pytest.approx(50.0)
    table = pd.read_csv(tmp_path / "eval" / "der_collar0.csv")
    assert table["jer %"].tolist() == pytest.approx([75.0, 0.0, 50.0])
    assert "jer %" in (tmp_path / "eval" / "der_collar0.md").read_text()
    assert sorted(p.name for p in (tmp_path / "eval" / "rttm").iterdir()) == ["a.rttm", "b.rttm"]
