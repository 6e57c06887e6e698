"""The frame grid shared by features, labels and loaders.

Every recording of duration ``d`` seconds is cut into ``frame_count(d, frame_rate)``
frames; frame ``k`` covers the half-open interval ``[k / frame_rate, (k + 1) / frame_rate)``.
A partial last frame counts as a frame, so every audio sample belongs to exactly one
frame and nothing at the end of a recording is dropped. `OpenSmileLLD`, the AU phase
labels, `read_openface_csv` and the demo corpus all call `frame_count`, so features and
labels of one recording always have the same number of frames.
"""

import math

import numpy as np

__all__ = ["frame_count", "to_frame_grid"]

# Durations are sums of floating-point sample periods; without a tolerance a recording of
# exactly 3 s at 16 kHz could get a spurious 76th frame at 25 Hz.
_EPS = 1e-9


def frame_count(duration, frame_rate):
    """Number of frames of a recording on the frame grid.

    Parameters
    ----------
    duration : float
        Duration of the recording in seconds (``n_samples / sampling_rate``).
    frame_rate : float
        Frames per second (25 for video-rate labels, 100 for openSMILE's LLD rate).

    Returns
    -------
    n_frames : int
        ``ceil(duration * frame_rate)``: frame ``k`` covers
        ``[k / frame_rate, (k + 1) / frame_rate)`` and a partial last frame counts.

    Examples
    --------
    >>> from sklearn_s2au.framing import frame_count
    >>> frame_count(3.0, 25)
    75
    >>> frame_count(3.01, 25)
    76
    >>> frame_count(48000 / 16000, 100)
    300
    """
    if not np.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be a finite number of seconds >= 0, got {duration!r}.")
    if not np.isfinite(frame_rate) or frame_rate <= 0:
        raise ValueError(f"frame_rate must be a positive number of frames per second, "
                         f"got {frame_rate!r}.")
    return int(math.ceil(duration * frame_rate - _EPS))


def to_frame_grid(times, values, n_frames, frame_rate):
    """Bring time-stamped values onto the frame grid by averaging.

    Each value is assigned to the frame whose interval contains its time stamp and the
    values of a frame are averaged. Frames that receive no value (a source slower than the
    grid, or the ends of a recording where an analysis window does not fit) are filled by
    linear interpolation between the nearest frames that did, and by the nearest such frame
    at the ends. Values whose time stamps fall after the last frame are an error rather
    than being dropped.

    Parameters
    ----------
    times : array-like of shape (n_values,)
        Time stamps in seconds (for example the centres of analysis windows).
    values : array-like of shape (n_values, n_columns)
        The values to bring onto the grid.
    n_frames : int
        Number of frames of the grid, usually `frame_count` of the recording.
    frame_rate : float
        Frames per second of the grid.

    Returns
    -------
    grid : ndarray of shape (n_frames, n_columns), float64

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.framing import to_frame_grid
    >>> t = np.arange(8) / 100 + 0.005          # 100 Hz values
    >>> to_frame_grid(t, np.arange(8.0)[:, None], 2, 25).ravel()
    array([1.5, 5.5])
    """
    times = np.asarray(times, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    if times.shape[0] != values.shape[0]:
        raise ValueError(f"times has {times.shape[0]} entries but values has "
                         f"{values.shape[0]} rows; give one time stamp per row.")
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}.")
    if values.shape[0] == 0:
        raise ValueError("no values to bring onto the frame grid (the source is empty).")
    grid = _GridAverager(n_frames, values.shape[1], frame_rate)
    grid.add(times, values)
    return grid.result()


class _GridAverager:
    """`to_frame_grid` fed block by block, finalising frames as it goes.

    Blocks must come in time order (a long recording's LLD frames as openSMILE emits
    them). Each frame's sum is one sequential ``np.bincount`` over its values in input
    order, as in a single call: the values of the last frame a block reaches are held
    back until a later block (or `result`) shows that the frame is complete, so no
    frame's sum is ever split into partial sums, whose addition would round differently.
    A complete frame's float64 mean goes straight into the output (``dtype``), and a run
    of frames without values is interpolated (``np.interp`` between the two filled frames
    around it, the same pair and arithmetic as one ``np.interp`` over the whole grid) as
    soon as the frame after it is filled. So the averager holds the output, one block's
    values and the float64 mean of the last filled frame, never a float64 copy of the
    grid: its memory is the output's.
    """

    def __init__(self, n_frames, n_columns, frame_rate, dtype=np.float64):
        self.n_frames, self.n_columns, self.frame_rate = n_frames, n_columns, frame_rate
        self.out = np.empty((n_frames, n_columns), dtype=dtype)
        self._held = None        # (index, values) of the frame that may still grow
        self._last = None        # (index, float64 mean) of the last filled frame

    def _index(self, times):
        index = np.floor(times * self.frame_rate + _EPS).astype(np.int64)
        # A window centred a hair past the end still belongs to the last frame.
        index = np.clip(index, 0, None)
        late = index >= self.n_frames
        if np.any(late):
            tolerance = index[late] - (self.n_frames - 1)
            if np.any(tolerance > 1):
                raise ValueError(
                    f"{int(late.sum())} values have time stamps after the last of "
                    f"{self.n_frames} frames at {self.frame_rate} Hz (latest "
                    f"{times.max():.3f} s); the source is longer than the recording it is "
                    f"aligned to.")
            index[late] = self.n_frames - 1
        return index

    def add(self, times, values, *, final=True):
        """Add time-stamped ``values`` ``(n, n_columns)``; ``final=False`` if more follow."""
        index = self._index(np.asarray(times, dtype=float))
        values = np.asarray(values, dtype=float)
        if self._held is not None:
            index = np.concatenate([self._held[0], index])
            values = np.concatenate([self._held[1], values])
            self._held = None
        if not final and len(index):
            open_frame = index >= index.max()
            self._held = index[open_frame], values[open_frame]
            index, values = index[~open_frame], values[~open_frame]
        if len(index) == 0:
            return
        if self._last is not None and index.min() <= self._last[0]:
            raise ValueError("values must come in time order: a block reaches back to a "
                             "frame that an earlier block completed.")
        low = int(index.min())
        local = index - low
        width = int(local.max()) + 1
        counts = np.bincount(local, minlength=width)
        filled = np.flatnonzero(counts)
        means = np.empty((len(filled), self.n_columns))
        for j in range(self.n_columns):
            means[:, j] = np.bincount(local, weights=values[:, j], minlength=width)[filled]
        means /= counts[filled, None]
        filled += low
        self.out[filled] = means
        self._fill_gaps(filled, means)

    def _fill_gaps(self, filled, means):
        """Interpolate the frames without values before ``filled[-1]``, not yet written."""
        if self._last is not None:
            filled = np.concatenate([[self._last[0]], filled])
            means = np.concatenate([self._last[1][None], means])
        start = filled[0] if self._last is not None else 0
        span = np.arange(start, filled[-1] + 1)
        missing = span[~np.isin(span, filled)]
        if len(missing):
            for j in range(self.n_columns):
                self.out[missing, j] = np.interp(missing, filled, means[:, j])
        self._last = filled[-1], means[-1].copy()

    def result(self):
        """The grid ``(n_frames, n_columns)``: means, gaps interpolated."""
        if self._held is not None:
            self.add(np.empty(0), np.empty((0, self.n_columns)))
        if self._last is None:
            raise ValueError("no values to bring onto the frame grid (the source is empty).")
        # frames after the last filled one: its value, as np.interp gives beyond the end
        self.out[self._last[0] + 1:] = self._last[1]
        return self.out
