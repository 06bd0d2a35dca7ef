"""RTTM and UEM reading/writing with :mod:`pyannote.core` types, and frame labels.

RTTM (NIST Rich Transcription Time Marked) lines used for diarization::

    SPEAKER <uri> <channel> <start> <duration> <NA> <NA> <speaker> <NA> <NA>

Times are in seconds. Other line types (``SPKR-INFO``, ``LEXEME``, ...) are
ignored, as are blank lines and comments (``#`` or ``;;``). The file is
whitespace separated, so neither a uri nor a speaker name can contain
whitespace; speaker names may use any other (non-ASCII) characters, files
are UTF-8. The channel is not kept (everything is written as channel ``1``).

UEM (un-partitioned evaluation map) lines::

    <uri> <channel> <start> <end>

Authors
 * speechbrain_pruning contributors
"""

import io  # noqa: F401 (the doctests use it)
import math
import os
from pathlib import Path  # noqa: F401 (the doctests use it)

import numpy as np
from pyannote.core import Annotation, Segment, Timeline

__all__ = ["read_rttm", "write_rttm", "read_uem", "write_uem", "frame_labels"]

RTTM_TYPES = frozenset({
    "SPEAKER", "SPKR-INFO", "LEXEME", "NON-LEX", "NON-SPEECH", "SEGMENT", "NOSCORE",
    "NO_RT_METADATA", "SU", "CB", "A/P", "IP", "EDIT", "FILLER", "NONLEX", "NON_LEX",
})


def _is_skipped(fields):
    """Blank and comment lines."""
    return not fields or fields[0].startswith("#") or fields[0].startswith(";;")


def _time(text, path, line_number, line, what):
    """A finite float field, else a ValueError naming the file and line."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line_number}: {what} {text!r} is not a finite "
                         f"number in {line.rstrip()!r}")
    return value


def read_rttm(path):
    """Reads the ``SPEAKER`` lines of an RTTM file.

    Arguments
    ---------
    path : str or pathlib.Path
        RTTM file (UTF-8).

    Returns
    -------
    dict
        uri -> :class:`pyannote.core.Annotation` (``uri`` set, labels are the
        speaker names, one track per line so overlapping or identical turns
        are all kept). Zero-length turns are dropped. A file without
        ``SPEAKER`` lines gives an empty dict.

    Raises
    ------
    ValueError
        On a malformed line (unknown type, too few fields, a start or
        duration that is not a number, a negative start or duration),
        naming the file, the 1-based line number and the line.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "a.rttm").write_text(
    ...         "SPEAKER rec 1 0.50 1.25 <NA> <NA> Zoë <NA> <NA>\\n"
    ...         "SPKR-INFO rec 1 <NA> <NA> <NA> unknown Zoë <NA> <NA>\\n", encoding="utf-8")
    ...     ann = read_rttm(Path(tmp, "a.rttm"))["rec"]
    >>> ann.uri, ann.labels(), ann.get_timeline()[0].end
    ('rec', ['Zoë'], 1.75)
    """
    annotations = {}
    counters = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if _is_skipped(fields):
                continue
            if fields[0] not in RTTM_TYPES:
                raise ValueError(f"{path}, line {line_number}: unknown RTTM type "
                                 f"{fields[0]!r} in {line.rstrip()!r}")
            if fields[0] != "SPEAKER":
                continue
            if len(fields) < 8:
                raise ValueError(
                    f"{path}, line {line_number}: expected 'SPEAKER <uri> <channel> <start> "
                    f"<duration> <NA> <NA> <speaker> <NA> <NA>', got {line.rstrip()!r}")
            start = _time(fields[3], path, line_number, line, "start")
            duration = _time(fields[4], path, line_number, line, "duration")
            if start < 0 or duration < 0:
                raise ValueError(f"{path}, line {line_number}: negative start or duration "
                                 f"in {line.rstrip()!r}")
            uri = fields[1]
            if uri not in annotations:
                annotations[uri] = Annotation(uri=uri)
                counters[uri] = 0
            if duration > 0:
                annotations[uri][Segment(start, start + duration), counters[uri]] = fields[7]
                counters[uri] += 1
    return annotations


def _ms(value):
    """Seconds rounded to integer milliseconds."""
    return int(round(value * 1000))


def _open_for_write(file):
    """``(handle, close)`` for a path or an open text handle."""
    if isinstance(file, (str, os.PathLike)):
        return open(file, "w", encoding="utf-8"), True
    return file, False


def write_rttm(annotation, file):
    """Writes an annotation as RTTM ``SPEAKER`` lines (times with 3 decimals).

    Turns are sorted by start, end and speaker; a turn shorter than 1 ms
    after rounding is dropped. Start and end are rounded to the millisecond
    (the duration is their difference), so :func:`read_rttm` gives the
    turns back exactly to 1 ms.

    Arguments
    ---------
    annotation : pyannote.core.Annotation
        Its ``uri`` is written (it must be set and contain no whitespace);
        labels are written with ``str`` and must contain no whitespace.
    file : str, pathlib.Path or text file
        Destination path (overwritten) or an open text handle (appended to).

    Raises
    ------
    ValueError
        Missing uri, or a uri or label containing whitespace.

    Example
    -------
    >>> ann = Annotation(uri="rec")
    >>> ann[Segment(0.1, 0.4)] = "A"
    >>> out = io.StringIO()
    >>> write_rttm(ann, out)
    >>> out.getvalue()
    'SPEAKER rec 1 0.100 0.300 <NA> <NA> A <NA> <NA>\\n'
    """
    uri = annotation.uri
    if not uri or len(str(uri).split()) != 1 or str(uri).split()[0] != str(uri):
        raise ValueError(f"RTTM needs a uri without whitespace, got {uri!r}")
    turns = []
    for segment, _, label in annotation.itertracks(yield_label=True):
        name = str(label)
        if not name or len(name.split()) != 1 or name.split()[0] != name:
            raise ValueError(f"RTTM speaker names cannot contain whitespace: {name!r} "
                             f"(uri {uri})")
        start, end = _ms(segment.start), _ms(segment.end)
        if end > start:
            turns.append((start, end, name))
    handle, close = _open_for_write(file)
    try:
        for start, end, name in sorted(turns):
            handle.write(f"SPEAKER {uri} 1 {start / 1000:.3f} {(end - start) / 1000:.3f} "
                         f"<NA> <NA> {name} <NA> <NA>\n")
    finally:
        if close:
            handle.close()


def read_uem(path):
    """Reads a UEM file (``<uri> <channel> <start> <end>`` per line).

    Arguments
    ---------
    path : str or pathlib.Path
        UEM file; blank lines and comments (``#``, ``;;``) are skipped.

    Returns
    -------
    dict
        uri -> :class:`pyannote.core.Timeline` (``uri`` set). Empty regions
        (``start == end``) are dropped.

    Raises
    ------
    ValueError
        On a malformed line (not 4 fields, non-numeric or negative times,
        end before start), naming the file, the 1-based line number and the line.

    Example
    -------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = Path(tmp, "a.uem").write_text("rec 1 0.0 2.5\\nrec 1 3.0 4.0\\n")
    ...     list(read_uem(Path(tmp, "a.uem"))["rec"])
    [<Segment(0, 2.5)>, <Segment(3, 4)>]
    """
    timelines = {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if _is_skipped(fields):
                continue
            if len(fields) != 4:
                raise ValueError(f"{path}, line {line_number}: expected '<uri> <channel> "
                                 f"<start> <end>', got {line.rstrip()!r}")
            start = _time(fields[2], path, line_number, line, "start")
            end = _time(fields[3], path, line_number, line, "end")
            if start < 0 or end < start:
                raise ValueError(f"{path}, line {line_number}: need 0 <= start <= end, got "
                                 f"{line.rstrip()!r}")
            uri = fields[0]
            timeline = timelines.setdefault(uri, Timeline(uri=uri))
            if end > start:
                timeline.add(Segment(start, end))
    return timelines


def write_uem(timelines, file):
    """Writes UEM lines (channel ``1``, times with 3 decimals).

    Arguments
    ---------
    timelines : dict or pyannote.core.Timeline
        uri -> Timeline, or one Timeline whose ``uri`` is set. Uris are
        written in sorted order, regions in time order.
    file : str, pathlib.Path or text file
        Destination path (overwritten) or an open text handle.

    Example
    -------
    >>> out = io.StringIO()
    >>> write_uem({"rec": Timeline([Segment(0, 2.5)])}, out)
    >>> out.getvalue()
    'rec 1 0.000 2.500\\n'
    """
    if isinstance(timelines, Timeline):
        timelines = {timelines.uri: timelines}
    lines = []
    for uri in sorted(timelines, key=str):
        if not uri or len(str(uri).split()) != 1 or str(uri).split()[0] != str(uri):
            raise ValueError(f"UEM needs uris without whitespace, got {uri!r}")
        for segment in timelines[uri]:
            start, end = _ms(segment.start), _ms(segment.end)
            if end > start:
                lines.append(f"{uri} 1 {start / 1000:.3f} {end / 1000:.3f}\n")
    handle, close = _open_for_write(file)
    try:
        handle.writelines(lines)
    finally:
        if close:
            handle.close()


def frame_labels(annotation, start, duration, num_frames, frame_shift=0.02,
                 receptive_field=0.025, max_speakers=4):
    """Frame-level speaker activity of a chunk, for end-to-end diarization.

    Frame ``t`` covers ``[start + t * frame_shift, start + t * frame_shift +
    receptive_field]``; a speaker is active in it when one of its turns
    covers the frame centre (``turn.start <= centre < turn.end``), so
    overlapped speech gives several active speakers.

    At most ``max_speakers`` speakers are kept: those with the most speech
    inside ``[start, start + duration]`` (compared to the microsecond, ties
    broken by name). Kept
    speakers are ordered by their first active frame (then first speech
    inside the chunk, then name); unused columns stay zero.

    Arguments
    ---------
    annotation : pyannote.core.Annotation
        Reference turns of the recording.
    start : float
        Chunk start in seconds.
    duration : float
        Chunk length in seconds (the window used to rank speakers).
    num_frames : int
        Number of output frames (e.g. the encoder output length).
    frame_shift : float
        Seconds between frames (0.02 for WavLM).
    receptive_field : float
        Seconds covered by one frame (0.025 for WavLM).
    max_speakers : int
        Number of output columns.

    Returns
    -------
    labels : numpy.ndarray
        ``float32`` array of shape ``[num_frames, max_speakers]`` (1 = active).
    speakers : list
        Labels of the kept speakers, in column order.

    Example
    -------
    >>> ann = Annotation(uri="rec")
    >>> ann[Segment(0.0, 0.05)] = "B"
    >>> ann[Segment(0.03, 0.10)] = "A"
    >>> labels, speakers = frame_labels(ann, 0.0, 0.1, 5, max_speakers=3)
    >>> speakers
    ['B', 'A']
    >>> labels.astype(int).tolist()
    [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0]]
    """
    if num_frames < 0 or max_speakers < 1 or frame_shift <= 0 or receptive_field < 0:
        raise ValueError("need num_frames >= 0, max_speakers >= 1, frame_shift > 0 and "
                         "receptive_field >= 0")
    centres = start + np.arange(num_frames) * frame_shift + receptive_field / 2
    window = Segment(start, start + duration)
    stats = []
    for label in annotation.labels():
        support = annotation.label_timeline(label, copy=False).support()
        inside = support.crop(window, mode="intersection") if duration > 0 else Timeline()
        talk = round(sum(segment.duration for segment in inside), 6)  # robust ties
        active = np.zeros(num_frames, dtype=bool)
        for segment in support:
            active |= (centres >= segment.start) & (centres < segment.end)
        if talk <= 0 and not active.any():
            continue
        first_frame = int(np.argmax(active)) if active.any() else num_frames
        first_speech = min((segment.start for segment in inside), default=math.inf)
        stats.append((talk, str(label), label, active, first_frame, first_speech))
    stats.sort(key=lambda item: (-item[0], item[1]))
    kept = sorted(stats[:max_speakers], key=lambda item: (item[4], item[5], item[1]))
    labels = np.zeros((num_frames, max_speakers), dtype=np.float32)
    for column, item in enumerate(kept):
        labels[:, column] = item[3]
    return labels, [item[2] for item in kept]
