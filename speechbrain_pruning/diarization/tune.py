"""Tune the diarization pipeline for DER on a dev split and write the values into the export.

Usage::

    speechbrain-pruning-tune-diarizer results/.../exported results/.../save/dev_recordings.csv
    python -m speechbrain_pruning.diarization.tune <exported folder> <recordings.csv> [--collar 0.25]

The manifest is the ``<split>_recordings.csv`` written by
``data_prep/diarization_prepare.py`` (columns ``wav``, ``rttm``, optional ``uem``).
Every recording is segmented and embedded once
(:meth:`~.pipeline.SlidingWindowDiarizer.segment_and_embed`); the settings
that act after that are then searched by coordinate descent (each parameter
over its grid in turn, the others fixed, ``--rounds`` times), minimising the
total DER at ``--collar``:

* ``clustering_threshold`` (VBx: its AHC initialisation; AHC: the cut),
* ``vbx_fa`` and ``vbx_fb`` (VBx only),
* ``min_duration_off``.

``onset`` is not searched: the powerset segmentation gives hard 0/1
activities, for which every onset in (0, 1) is the same. The chosen values
are written into the folder's ``hyperparams.yaml`` (unless ``--dry-run``) and
the default and tuned DER / JER into ``tuning.json`` beside it.
"""

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
from pyannote.core import Annotation
from speechbrain.dataio.dataio import load_data_csv
from tqdm.auto import tqdm

from .der import der_report, nist_collar
from .rttm import read_rttm, read_uem

__all__ = ["GRIDS", "tune_pipeline", "write_params", "main"]

logger = logging.getLogger(__name__)

#: Search grids (pyannote's tuning ranges for VBx: threshold 0.5-0.8, Fa 0.01-0.5, Fb 0.01-15).
GRIDS = {
    "clustering_threshold": {"vbx": [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8],
                             "ahc": [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]},
    "vbx_fa": [0.01, 0.03, 0.07, 0.1, 0.2, 0.3, 0.5],
    "vbx_fb": [0.4, 0.8, 1.5, 3.0, 6.0, 10.0, 15.0],
    "min_duration_off": [0.0, 0.1, 0.2, 0.4],
}


def _references(recordings_csv):
    rows = load_data_csv(str(recordings_csv))
    refs, uems = {}, {}
    for uri, row in rows.items():
        refs[uri] = read_rttm(row["rttm"]).get(uri) or Annotation(uri=uri)
        if row.get("uem"):
            uem = read_uem(row["uem"]).get(uri)
            if uem is not None:
                uems[uri] = uem
    return rows, refs, uems


def tune_pipeline(pipeline, recordings_csv, collar=0.0, rounds=2, grids=None, progress=True):
    """Coordinate-descent search of the post-segmentation settings of ``pipeline``.

    Arguments
    ---------
    pipeline : SlidingWindowDiarizer
        The pipeline to tune (its attributes are set to the best values found).
    recordings_csv : str or Path
        Dev recordings manifest (``wav``, ``rttm``, optional ``uem``).
    collar : float
        Forgiveness collar (s, each side) of the DER minimised.
    rounds : int
        Passes over the parameters.
    grids : dict, optional
        Parameter -> candidate values (default :data:`GRIDS`).

    Returns
    -------
    dict
        ``default`` and ``tuned`` parameters, ``default_der`` / ``tuned_der``
        and ``default_jer`` / ``tuned_jer`` (%), ``evaluations``.
    """
    grids = dict(GRIDS if grids is None else grids)
    names = ["clustering_threshold", "min_duration_off"]
    if pipeline.clustering == "vbx":
        names[1:1] = ["vbx_fa", "vbx_fb"]
    rows, refs, uems = _references(recordings_csv)
    states = {uri: pipeline.segment_and_embed(row["wav"], uri=uri)
              for uri, row in tqdm(rows.items(), desc="segmentation + embeddings (once)",
                                   disable=not progress)}
    scores = {}

    def score(params):
        key = tuple(sorted(params.items()))
        if key not in scores:
            for name, value in params.items():
                setattr(pipeline, name, value)
            hyps = {uri: pipeline.cluster_and_aggregate(state).speaker_diarization
                    for uri, state in states.items()}
            total = der_report(refs, hyps, uems=uems or None, collar=nist_collar(collar)).iloc[-1]
            scores[key] = (float(total["der %"]), float(total.get("jer %", np.nan)))
        return scores[key]

    default = {name: getattr(pipeline, name) for name in names}
    best, best_score = dict(default), score(default)
    default_score = best_score
    for _ in range(rounds):
        changed = False
        for name in names:
            grid = grids[name][pipeline.clustering] if isinstance(grids[name], dict) \
                else grids[name]
            for value in tqdm(grid, desc=f"tuning {name}", disable=not progress, leave=False):
                candidate = dict(best, **{name: value})
                result = score(candidate)
                if result[0] < best_score[0] - 1e-9:
                    best, best_score, changed = candidate, result, True
        if not changed:
            break
    for name, value in best.items():
        setattr(pipeline, name, value)
    return {"default": default, "tuned": best, "collar": collar,
            "default_der": default_score[0], "tuned_der": best_score[0],
            "default_jer": default_score[1], "tuned_jer": best_score[1],
            "evaluations": len(scores), "recordings": len(states)}


def write_params(hyperparams_file, params):
    """Set top-level ``key: value`` lines of an exported ``hyperparams.yaml``.

    Example
    -------
    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "h.yaml")
    ...     _ = open(path, "w").write("interface_class: x\\nstep: 2.0\\n")
    ...     write_params(path, {"step": 0.8, "vbx_fa": 0.1})
    ...     open(path).read()
    'interface_class: x\\nvbx_fa: 0.1\\nstep: 0.8\\n'
    """
    path = Path(hyperparams_file)
    text = path.read_text(encoding="utf-8")
    for name, value in params.items():
        line = f"{name}: {json.dumps(value)}"
        pattern = re.compile(rf"^{re.escape(name)}:.*$", re.MULTILINE)
        if pattern.search(text):
            text = pattern.sub(line, text, count=1)
        else:
            text = re.sub(r"^(interface_class:.*)$", rf"\1\n{line}", text, count=1,
                          flags=re.MULTILINE)
    partial = path.with_name(path.name + ".part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def tune_exported(folder, recordings_csv, collar=0.0, rounds=2, write=True, device="cpu",
                  progress=True):
    """Tune an exported diarizer folder on a dev manifest (see the module docstring)."""
    from .interface import PrunedDiarizer

    folder = Path(folder)
    model = PrunedDiarizer.from_hparams(source=folder, run_opts={"device": device})
    model.set_params(low_memory=False, progress=False)
    report = tune_pipeline(model._pipeline(), recordings_csv, collar=collar, rounds=rounds,
                           progress=progress)
    report["manifest"] = str(recordings_csv)
    report["written"] = bool(write)
    if write:
        write_params(folder / "hyperparams.yaml", report["tuned"])
    (folder / "tuning.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="speechbrain-pruning-tune-diarizer",
        description="Tune an exported diarizer for DER on a dev split; write the values into it.")
    parser.add_argument("model", help="exported diarizer folder")
    parser.add_argument("recordings", help="dev recordings manifest (<split>_recordings.csv)")
    parser.add_argument("--collar", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        report = tune_exported(args.model, args.recordings, args.collar, args.rounds,
                               write=not args.dry_run, device=args.device,
                               progress=not args.quiet)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"DER (collar {args.collar:g}) on {report['recordings']} recording(s): default "
          f"{report['default_der']:.2f} % -> tuned {report['tuned_der']:.2f} % "
          f"(JER {report['default_jer']:.2f} -> {report['tuned_jer']:.2f} %)")
    for name, value in report["tuned"].items():
        print(f"  {name}: {report['default'][name]} -> {value}")
    print("written to" if report["written"] else "not written (--dry-run):",
          Path(args.model) / "hyperparams.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())

