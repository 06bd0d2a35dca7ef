"""Diarization error rate (DER) and Jaccard error rate (JER) reports on top of
``pyannote.metrics``.

``DER = (missed + false alarm + confusion) / total reference speech``, every
term in seconds (overlapped speech counted once per speaker), as computed by
:class:`pyannote.metrics.diarization.DiarizationErrorRate` (optimal one-to-one
mapping of hypothesis to reference speakers).

JER (DIHARD's second metric) is
:class:`pyannote.metrics.diarization.JaccardErrorRate`: after an optimal
one-to-one speaker mapping, every reference speaker gets
``(false alarm + missed) / union`` of its own and its mapped hypothesis
speaker's speech (1 when unmapped), and JER is the mean over reference
speakers, so every speaker weighs the same whatever their speaking time.
The collar, UEM and overlap settings are the same as for DER. A file without
reference speakers has JER 0 when the hypothesis is silent there too, 100 %
otherwise (as DIHARD's ``dscore``); it adds no speaker to the total.

Collar convention
-----------------
``collar`` has **pyannote's meaning: the total width** of the no-score zone
centred on every reference speaker boundary, i.e. ``collar / 2`` seconds on
each side. SpeechBrain's AMI recipe and NIST ``md-eval.pl -c 0.25`` quote a
``+-0.25 s`` forgiveness collar, which is ``collar=0.5`` here (see
:func:`nist_collar`). ``collar=0.0`` (the strict DER reported by recent
pyannote/DiariZen papers) and ``collar=0.25`` (``+-0.125 s``) are both plain
values of the argument.

``skip_overlap=True`` removes the regions where the reference has two or
more speakers from scoring (as ``md-eval -1``).

When no UEM is given for a file, pyannote scores the union of the reference
and hypothesis extents (its warning about this approximation is silenced).

Authors
 * speechbrain_pruning contributors
"""

import os
import warnings

import numpy as np
import pandas as pd
from pyannote.core import Annotation
from pyannote.metrics.diarization import (
    JER_SPEAKER_COUNT,
    JER_SPEAKER_ERROR,
    DiarizationErrorRate,
    JaccardErrorRate,
)

__all__ = ["der_report", "write_der_report", "nist_collar", "DER_COLUMNS"]

DER_COLUMNS = [
    "uri",
    "der %",
    "jer %",
    "missed %",
    "false alarm %",
    "confusion %",
    "total speech s",
    "missed s",
    "false alarm s",
    "confusion s",
]
TOTAL_ROW = "TOTAL"


def nist_collar(half_width=0.25):
    """pyannote ``collar`` (total width) equivalent to a NIST ``+-half_width`` collar.

    Example
    -------
    >>> nist_collar(0.25)
    0.5
    """
    return 2.0 * half_width


def _percent(value, total):
    """``100 * value / total``; 0 when both are 0, NaN when only total is 0."""
    if total > 0:
        return 100.0 * value / total
    return 0.0 if value == 0 else float("nan")


def _jer_percent(jer_metric, speaker_count, speaker_error, false_alarm):
    """JER in percent from summed JER components (pyannote's formula).

    Without reference speakers: 0 if the hypothesis is silent as well
    (``false_alarm == 0``), 100 otherwise.
    """
    if speaker_count > 0:
        return 100.0 * jer_metric.compute_metric(
            {JER_SPEAKER_COUNT: speaker_count, JER_SPEAKER_ERROR: speaker_error})
    return 0.0 if false_alarm == 0 else 100.0


def _row(uri, total, missed, false_alarm, confusion, jer=float("nan")):
    """One report row (dict keyed by :data:`DER_COLUMNS`); ``jer`` in percent."""
    return {
        "uri": uri,
        "der %": _percent(missed + false_alarm + confusion, total),
        "jer %": jer,
        "missed %": _percent(missed, total),
        "false alarm %": _percent(false_alarm, total),
        "confusion %": _percent(confusion, total),
        "total speech s": total,
        "missed s": missed,
        "false alarm s": false_alarm,
        "confusion s": confusion,
    }


def der_report(references, hypotheses, uems=None, collar=0.0, skip_overlap=False):
    """Per-file and overall DER and JER.

    Arguments
    ---------
    references : dict
        ``uri -> pyannote.core.Annotation`` reference diarization.
    hypotheses : dict
        ``uri -> Annotation``; a uri missing here is scored as an empty
        hypothesis (all speech missed); uris absent from ``references`` are
        ignored.
    uems : dict, optional
        ``uri -> pyannote.core.Timeline`` scored regions; files without an
        entry use the union of reference and hypothesis extents.
    collar : float
        Total collar width in seconds (pyannote's meaning: ``collar / 2`` on
        each side of every reference boundary; ``0.5`` = NIST ``+-0.25 s``).
    skip_overlap : bool
        Exclude reference overlap regions from scoring.

    Returns
    -------
    report : pandas.DataFrame
        One row per reference uri (sorted) and a final ``TOTAL`` row whose
        DER percentages are ratios of the summed seconds and whose ``jer %``
        is pyannote's aggregate JER (mean over the reference speakers of all
        files, not the mean of the per-file JERs); columns
        :data:`DER_COLUMNS`.

    Example
    -------
    >>> from pyannote.core import Segment
    >>> ref = Annotation(uri="f"); ref[Segment(0, 10)] = "A"; ref[Segment(10, 20)] = "B"
    >>> hyp = Annotation(uri="f"); hyp[Segment(0, 15)] = "x"; hyp[Segment(15, 20)] = "y"
    >>> df = der_report({"f": ref}, {"f": hyp})
    >>> df[["uri", "der %", "confusion %", "total speech s"]].values.tolist()
    [['f', 25.0, 25.0, 20.0], ['TOTAL', 25.0, 25.0, 20.0]]
    >>> round(float(df["jer %"].iloc[-1]), 3)  # A: 5/15 wrong, B: 5/10 wrong -> (1/3 + 1/2) / 2
    41.667
    """
    uems = uems or {}
    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    jer_metric = JaccardErrorRate(collar=collar, skip_overlap=skip_overlap)
    rows = []
    sums = np.zeros(4)
    jer_sums = np.zeros(2)  # speaker count, summed speaker error
    for uri in sorted(references):
        reference = references[uri]
        hypothesis = hypotheses.get(uri)
        if hypothesis is None:
            hypothesis = Annotation(uri=uri)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'uem' was approximated.*")
            comp = metric.compute_components(reference, hypothesis, uem=uems.get(uri))
            jer_comp = jer_metric.compute_components(reference, hypothesis, uem=uems.get(uri))
        values = np.array([comp["total"], comp["missed detection"],
                           comp["false alarm"], comp["confusion"]], dtype=np.float64)
        jer_values = np.array([jer_comp[JER_SPEAKER_COUNT], jer_comp[JER_SPEAKER_ERROR]],
                              dtype=np.float64)
        sums += values
        jer_sums += jer_values
        jer = _jer_percent(jer_metric, *jer_values.tolist(), values[2])
        rows.append(_row(uri, *values.tolist(), jer=jer))
    rows.append(_row(TOTAL_ROW, *sums.tolist(),
                     jer=_jer_percent(jer_metric, *jer_sums.tolist(), sums[2])))
    return pd.DataFrame(rows, columns=DER_COLUMNS)


def _markdown_table(df, float_format="{:.2f}"):
    """GitHub Markdown table of ``df`` (floats formatted with ``float_format``)."""
    def fmt(value):
        if isinstance(value, (float, np.floating)):
            return float_format.format(value)
        return str(value)

    lines = ["| " + " | ".join(df.columns) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(df.columns) - 1)) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_der_report(df, csv_path, md_path=None, float_format="{:.2f}"):
    """Writes a :func:`der_report` table as CSV and optionally Markdown.

    Arguments
    ---------
    df : pandas.DataFrame
        Output of :func:`der_report`.
    csv_path : str
        CSV destination (full precision); parent folders are created.
    md_path : str, optional
        Markdown table destination (numbers formatted with ``float_format``).
    float_format : str
        ``str.format`` pattern of the Markdown numbers.

    Returns
    -------
    markdown : str
        The Markdown table.

    Example
    -------
    >>> import tempfile
    >>> df = pd.DataFrame([_row("TOTAL", 10.0, 1.0, 0.5, 0.5, jer=30.0)], columns=DER_COLUMNS)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     md = write_der_report(df, os.path.join(d, "der.csv"), os.path.join(d, "der.md"))
    >>> print(md.splitlines()[2])
    | TOTAL | 20.00 | 30.00 | 10.00 | 5.00 | 5.00 | 10.00 | 1.00 | 0.50 | 0.50 |
    """
    for path in (csv_path, md_path):
        if path and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    df.to_csv(csv_path, index=False)
    markdown = _markdown_table(df, float_format)
    if md_path:
        with open(md_path, "w") as handle:
            handle.write(markdown)
    return markdown
