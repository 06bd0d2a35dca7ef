"""Diarization evaluation: diarize every recording of a manifest, write RTTMs and
DER/JER tables (pyannote.metrics), as the recipes and the tuning tools do."""

import logging
from pathlib import Path

from pyannote.core import Annotation
from speechbrain.dataio.dataio import load_data_csv
from tqdm import tqdm

from .der import der_report, nist_collar, write_der_report
from .rttm import read_rttm, read_uem, write_rttm

__all__ = ["evaluate_recordings"]

logger = logging.getLogger(__name__)


def evaluate_recordings(diarize, recordings_csv, out_dir, collars=(0.0, 0.25), progress=True):
    """Diarize every recording of a manifest, write RTTMs and DER/JER tables.

    ``diarize(path, uri) -> Annotation``. ``collars`` are forgiveness collars
    on each side of reference boundaries, as md-eval's ``-c`` and the papers
    quote them (0.25 = +-0.25 s). Overlap is scored, UEMs honoured. Writes
    ``der_collar<c>.{csv,md}`` (per-file rows and TOTAL, with ``der %`` and
    ``jer %``) and returns {collar: TOTAL row dict}; the TOTAL row's
    ``"jer %"`` is pyannote's aggregate JER.
    """
    out_dir = Path(out_dir)
    (out_dir / "rttm").mkdir(parents=True, exist_ok=True)
    rows = load_data_csv(str(recordings_csv))
    references, hypotheses, uems = {}, {}, {}
    for uri, row in tqdm(rows.items(), desc="diarizing", disable=not progress):
        hyp = diarize(row["wav"], uri)
        hypotheses[uri] = hyp
        with open(out_dir / "rttm" / f"{uri}.rttm", "w", encoding="utf-8") as fout:
            write_rttm(hyp, fout)
        references[uri] = read_rttm(row["rttm"]).get(uri) or _empty(uri)
        if row.get("uem"):
            uem = read_uem(row["uem"]).get(uri)
            if uem is not None:
                uems[uri] = uem
    totals = {}
    for collar in collars:
        table = der_report(references, hypotheses, uems=uems or None,
                           collar=nist_collar(collar))
        name = f"der_collar{collar:g}"
        write_der_report(table, out_dir / f"{name}.csv", out_dir / f"{name}.md")
        totals[collar] = table.iloc[-1].to_dict()
        logger.info("collar +-%g s: DER %.2f %%, JER %.2f %% (%s)", collar,
                    totals[collar]["der %"], totals[collar]["jer %"], totals[collar])
    return totals


def _empty(uri):
    return Annotation(uri=uri)
