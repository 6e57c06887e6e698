"""AU phases (onset, apex, offset, occurrence) from per-frame AU intensity curves.

The paper (Stappen et al., MMSP 2019, Sec. III-A) labels four sub-classes per AU from
the intensity curve of a video at 25 Hz:

* **onset**: from the first increasing change in intensity (the muscle starts to
  contract) up to the apex; short stretches of little change count as onset when a
  further rise follows without a plateau;
* **apex**: the peak or plateau reached after the rise and before the decrease;
* **offset**: starts when the intensity decreases over at least two consecutive frames
  and ends when it drops to zero or a new onset begins;
* **occurrence**: the union of the three (the AU is active).

:func:`au_phases` turns this into a deterministic, vectorised rule; the thresholds the
paper leaves open are its keyword arguments.
"""

import numbers
import re

import numpy as np
from sklearn.utils import Bunch

from ._utils import object_array
from ._validation import check_int

__all__ = ["AUS", "PHASES", "au_name", "phase_name", "au_phases"]

#: The 8 Action Units of the paper, in its order.
AUS = ("AU01", "AU02", "AU04", "AU06", "AU07", "AU10", "AU12", "AU17")
#: The 4 sub-classes of each AU.
PHASES = ("onset", "apex", "offset", "occurrence")

_AU_PATTERN = re.compile(r"^\s*(?:AU)?\s*0*(\d{1,2})\s*(?:_r|_c)?\s*$", re.IGNORECASE)


def au_name(au):
    """Canonical name ``"AUxx"`` of an Action Unit given as ``1``, ``"AU1"``, ``"AU01"``...

    Parameters
    ----------
    au : int or str
        The AU number, or a name such as ``"AU1"``, ``"au01"``, ``"AU01_r"`` (OpenFace
        column names are accepted).

    Returns
    -------
    name : str
        ``"AU"`` followed by the two-digit AU number.

    Examples
    --------
    >>> from sklearn_s2au.labels import au_name
    >>> au_name(1), au_name("AU2"), au_name("au17_r")
    ('AU01', 'AU02', 'AU17')
    """
    if isinstance(au, numbers.Integral) and not isinstance(au, bool):
        number = int(au)
    else:
        match = _AU_PATTERN.match(au) if isinstance(au, str) else None
        if match is None:
            raise ValueError(f"{au!r} is not an Action Unit; write it as a number (17) or "
                             f"a name such as 'AU17' or 'AU1'.")
        number = int(match.group(1))
    if not 0 < number < 100:
        raise ValueError(f"{au!r} is not an Action Unit number (1-99).")
    return f"AU{number:02d}"


def phase_name(phase):
    """Validate an AU sub-class name (case-insensitive); returns it in lower case.

    Examples
    --------
    >>> from sklearn_s2au.labels import phase_name
    >>> phase_name("Onset")
    'onset'
    """
    name = phase.lower().strip() if isinstance(phase, str) else phase
    if name not in PHASES:
        raise ValueError(f"unknown AU sub-class {phase!r}; choose from {list(PHASES)}.")
    return name


def au_phases(intensity, *, threshold=0.5, min_change=0.05, min_fall_frames=2,
              plateau_tolerance=0.3, max_hold=5, smooth=1):
    """Per-frame onset, apex, offset and occurrence of an AU from its intensity curve.

    Every frame gets at most one of onset, apex and offset, and occurrence is exactly
    their union. The rule, applied to each curve on its own (all curves at once,
    vectorised):

    1. A frame is *active* when its intensity exceeds ``threshold``; inactive frames get
       no phase (the AU is at zero). Active frames form runs.
    2. The change into frame ``t`` is a *rise* if ``x[t] - x[t-1] > min_change`` and a
       *fall* if ``< -min_change``; the first frame of a curve has no change.
    3. An *offset* begins at the first frame of a run of at least ``min_fall_frames``
       consecutive falls that lowers the intensity by more than ``plateau_tolerance`` in
       total (a shorter or shallower dip is plateau noise). It lasts until the AU is
       inactive again or a new onset begins.
    4. After an offset has begun, a *new onset* begins at the first rise after the lowest
       point, provided the intensity then climbs more than ``plateau_tolerance`` above
       that lowest point before the next offset; smaller bumps stay offset.
    5. Before the offset, a stretch of more than ``max_hold`` frames without a rise ends
       the onset: it is a plateau (apex), and a rise after it begins a new onset.
       Shorter stretches of little change inside a rise stay onset.
    6. Between the beginning of an onset and its offset, the *apex* starts at the first
       frame whose intensity is within ``plateau_tolerance`` of the highest intensity
       before the offset; the frames before it are *onset*, the frames from it to the
       offset are *apex* (including small dips that do not start an offset).

    A curve that starts (or ends) mid-event is labelled from what it shows: a recording
    that begins at a plateau begins with apex.

    Parameters
    ----------
    intensity : array-like
        AU intensity on the 0-5 scale (OpenFace ``AUxx_r`` or FACS coder A-E), one value
        per frame. Either one curve ``(n_frames,)``, a 2-D array
        ``(n_curves, n_frames)`` of equally long curves, or a list (or object array) of
        1-D curves of any lengths.
    threshold : float, default=0.5
        Intensity at or below which the AU counts as absent (zero). OpenFace reports
        small non-zero values for an absent AU; on the coder scale 1 (A, trace) is the
        lowest present level.
    min_change : float, default=0.05
        Smallest frame-to-frame change (intensity units per frame) counted as a rise or
        fall; smaller changes are "little change".
    min_fall_frames : int, default=2
        Consecutive falling frames needed to start an offset (the paper's two).
    plateau_tolerance : float, default=0.3
        Intensity differences up to this size count as one level: the apex band below
        the peak, the smallest total drop that starts an offset and the smallest rise
        that starts a new onset after an offset.
    max_hold : int, default=5
        Longest stretch of frames without a rise that still belongs to an onset (5
        frames = 0.2 s at 25 Hz); a longer one is a plateau.
    smooth : int, default=1
        Width in frames of a centred moving average applied to each curve first (1: no
        smoothing). Useful for jittery OpenFace output; the window shrinks at the ends.

    Returns
    -------
    phases : Bunch
        Keys ``onset``, ``apex``, ``offset`` and ``occurrence`` (the order of
        :data:`PHASES`), each a ``uint8`` 0/1 array laid out like ``intensity``: shape
        ``(n_frames,)`` for one curve, ``(n_curves, n_frames)`` for a 2-D array, or an
        object ndarray of ``(n_frames_i,)`` arrays for a list of curves.

    Raises
    ------
    ValueError
        If a curve contains NaN or infinite values (the error names the curve and
        frame), or a parameter is out of range.

    See Also
    --------
    sklearn_s2au.datasets.read_openface_csv : AU intensity curves from OpenFace output.

    References
    ----------
    .. [1] L. Stappen, V. Karas, N. Cummins, F. Ringeval, K. Scherer and B. Schuller,
       "From speech to facial activity: towards cross-modal sequence-to-sequence
       attention networks", MMSP 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.labels import au_phases
    >>> x = np.array([0, 0, 1, 2, 3, 3, 3, 2, 1, 0, 0], dtype=float)
    >>> p = au_phases(x)
    >>> p.onset
    array([0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=uint8)
    >>> p.apex
    array([0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0], dtype=uint8)
    >>> p.offset
    array([0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0], dtype=uint8)
    >>> p.occurrence
    array([0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=uint8)
    """
    _check_params(threshold, min_change, min_fall_frames, plateau_tolerance, max_hold,
                  smooth)
    curves, layout = _as_curves(intensity)
    lengths = np.array([len(c) for c in curves], dtype=np.int64)
    x = np.concatenate(curves) if len(curves) else np.zeros(0)
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        curve = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
        frame = first - int(lengths[:curve].sum())
        raise ValueError(f"intensity curve {curve} has a non-finite value (NaN or inf) at "
                         f"frame {frame}; interpolate or fill missing frames first "
                         f"(read_openface_csv does this for failed OpenFace frames).")
    starts = np.zeros(len(x), dtype=bool)
    starts[np.cumsum(lengths)[:-1][lengths[1:] > 0]] = True
    if len(x):
        starts[0] = True
    if smooth > 1:
        x = _moving_average(x, lengths, int(smooth))
    onset, apex, offset = _phases_flat(x, starts, threshold=threshold,
                                       min_change=min_change,
                                       min_fall_frames=int(min_fall_frames),
                                       tolerance=plateau_tolerance,
                                       max_hold=int(max_hold))
    flat = {"onset": onset, "apex": apex, "offset": offset,
            "occurrence": onset | apex | offset}
    return Bunch(**{name: _restore(flat[name].astype(np.uint8), lengths, layout)
                    for name in PHASES})


def _check_params(threshold, min_change, min_fall_frames, plateau_tolerance, max_hold,
                  smooth):
    for name, value in [("threshold", threshold), ("min_change", min_change),
                        ("plateau_tolerance", plateau_tolerance)]:
        if not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if min_change < 0 or plateau_tolerance < 0:
        raise ValueError(f"min_change and plateau_tolerance must be >= 0, got "
                         f"{min_change!r} and {plateau_tolerance!r}.")
    for name, value, low in [("min_fall_frames", min_fall_frames, 1),
                             ("max_hold", max_hold, 0), ("smooth", smooth, 1)]:
        check_int(value, name, low)


def _as_curves(intensity):
    """Split the input into a list of 1-D float arrays and remember its layout."""
    if isinstance(intensity, np.ndarray) and intensity.dtype != object:
        arr = intensity.astype(float, copy=False)
        if arr.ndim == 1:
            return [arr], "1d"
        if arr.ndim == 2:
            return list(arr), "2d"
        raise ValueError(f"intensity must be 1-D (one curve), 2-D (n_curves, n_frames) or "
                         f"a list of 1-D curves; got an array of shape {arr.shape}.")
    if hasattr(intensity, "columns"):
        raise TypeError("au_phases takes curves, not a DataFrame; pass one column "
                        "(df['AU17']) or the 2-D array df.to_numpy().T (one row per AU).")
    items = list(intensity)
    if all(np.ndim(item) == 0 for item in items):
        return [np.asarray(items, dtype=float)], "1d"
    curves = []
    for i, item in enumerate(items):
        curve = np.asarray(item, dtype=float)
        if curve.ndim != 1:
            raise ValueError(f"intensity curve {i} has shape {curve.shape}; each curve of "
                             f"a list must be 1-D (n_frames,).")
        curves.append(curve)
    return curves, "ragged"


def _restore(flat, lengths, layout):
    if layout == "1d":
        return flat
    if layout == "2d":
        return flat.reshape(len(lengths), -1)
    return object_array(np.split(flat, np.cumsum(lengths)[:-1]) if len(lengths) else [])


def _moving_average(x, lengths, width):
    """Centred moving average of each curve, the window shrinking at the curve ends."""
    ends = np.cumsum(lengths)
    curve = np.repeat(np.arange(len(lengths)), lengths)
    lo, hi = (ends - lengths)[curve], ends[curve]
    i = np.arange(len(x))
    a = np.maximum(lo, i - width // 2)
    b = np.minimum(hi, i - width // 2 + width)
    cs = np.concatenate([[0.0], np.cumsum(x)])
    return (cs[b] - cs[a]) / (b - a)


def _first_per_segment(mask, seg_starts, n):
    """Position of the first True in each contiguous segment (``n`` where none)."""
    pos = np.where(mask, np.arange(len(mask)), n)
    return np.minimum.reduceat(pos, seg_starts)


def _phases_flat(x, starts, *, threshold, min_change, min_fall_frames, tolerance,
                 max_hold):
    """Onset/apex/offset masks of concatenated curves (``starts`` marks each first frame)."""
    n_total = len(x)
    onset = np.zeros(n_total, dtype=bool)
    apex = np.zeros(n_total, dtype=bool)
    offset = np.zeros(n_total, dtype=bool)
    active = x > threshold
    if not active.any():
        return onset, apex, offset
    change = np.zeros(n_total)
    change[1:] = np.diff(x)
    change[starts] = 0.0
    rise = change > min_change
    fall = change < -min_change

    # Qualified falls (rule 3): runs of consecutive falls, long and deep enough.
    prev_fall = np.zeros(n_total, dtype=bool)
    prev_fall[1:] = fall[:-1]
    fall_first = np.flatnonzero(fall & ~prev_fall)   # never a curve start: change is 0 there
    fall_len = _run_lengths(fall, fall_first)
    fall_last = fall_first + fall_len - 1
    deep = (x[fall_first - 1] - x[fall_last]) > tolerance
    offset_start = np.zeros(n_total, dtype=bool)
    offset_start[fall_first[(fall_len >= min_fall_frames) & deep]] = True

    # From here on, work on the active frames only: every run of active frames is then
    # contiguous with the next, so segment reductions (reduceat) apply directly.
    where_active = np.flatnonzero(active)
    n = len(where_active)
    xa = x[where_active]
    pos = np.arange(n)
    prev_active = np.zeros(n_total, dtype=bool)
    prev_active[1:] = active[:-1]
    run_start = (active & (starts | ~prev_active))[where_active]
    off_start = offset_start[where_active]
    rise_a = rise[where_active]

    # Rule 4: a new onset after an offset, at the first rise after the lowest point of
    # the stretch between one offset start and the next.
    chunk_start = run_start | off_start
    chunk_first = np.flatnonzero(chunk_start)
    chunk = np.cumsum(chunk_start) - 1
    low = np.minimum.reduceat(xa, chunk_first)
    trough = np.maximum.reduceat(np.where(xa == low[chunk], pos, -1), chunk_first)
    candidate = rise_a & (pos > trough[chunk]) & off_start[chunk_first][chunk]
    first_rise = _first_per_segment(candidate, chunk_first, n)
    after = pos >= first_rise[chunk]
    climb = np.maximum.reduceat(np.where(after, xa, -np.inf), chunk_first) - low
    new_onset = np.zeros(n, dtype=bool)
    new_onset[first_rise[(first_rise < n) & (climb > tolerance)]] = True

    # Rule 5: a hold longer than max_hold before the offset is a plateau; a rise after it
    # begins a new onset.
    event_start = run_start | new_onset
    event_first = np.flatnonzero(event_start)
    event = np.cumsum(event_start) - 1
    before_offset = pos < _first_per_segment(off_start, event_first, n)[event]
    rises = np.flatnonzero((rise_a | event_start) & before_offset)
    prev, cur = rises[:-1], rises[1:]
    late = (event[prev] == event[cur]) & (cur - prev - 1 > max_hold)
    event_start[cur[late]] = True

    # Rule 6: split each event before its offset into onset and apex by level.
    event_first = np.flatnonzero(event_start)
    event = np.cumsum(event_start) - 1
    before_offset = pos < _first_per_segment(off_start, event_first, n)[event]
    peak = np.maximum.reduceat(np.where(before_offset, xa, -np.inf), event_first)
    near_peak = before_offset & (xa >= peak[event] - tolerance)
    rising = before_offset & (pos < _first_per_segment(near_peak, event_first, n)[event])
    onset[where_active] = rising
    apex[where_active] = before_offset & ~rising
    offset[where_active] = ~before_offset
    return onset, apex, offset


def _run_lengths(mask, first):
    """Length of each run of True in ``mask`` starting at the positions ``first``."""
    if len(first) == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(mask & ~np.append(mask[1:], False))
    return ends - first + 1
