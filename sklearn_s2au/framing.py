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
    """`to_frame_grid` fed block by block: the same float64 grid, bit for bit.

    Blocks must come in time order (a long recording's LLD frames as openSMILE emits them).
    Each frame's sum is one sequential ``np.bincount`` over its values in input order, as
    in a single call: the values of the last frame a block reaches are held back until a
    later block (or `result`) shows that the frame is complete, so no frame's sum is ever
    split into partial sums, whose addition would round differently.
    """

    def __init__(self, n_frames, n_columns, frame_rate):
        self.n_frames, self.frame_rate = n_frames, frame_rate
        self.sums = np.zeros((n_frames, n_columns))   # (n_frames, n_columns)
        self.counts = np.zeros(n_frames)
        self._held = None                                # (index, values) of the open frame

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
        low = int(index.min())
        local = index - low
        width = int(local.max()) + 1
        self.counts[low:low + width] += np.bincount(local, minlength=width)
        for j in range(values.shape[1]):
            self.sums[low:low + width, j] += np.bincount(local, weights=values[:, j],
                                                         minlength=width)

    def result(self):
        """The grid ``(n_frames, n_columns)``, float64: means, gaps interpolated."""
        if self._held is not None:
            self.add(np.empty(0), np.empty((0, self.sums.shape[1])))
        grid, counts = self.sums, self.counts
        filled = counts > 0
        grid[filled] /= counts[filled, None]
        if not filled.all():
            where = np.flatnonzero(filled)
            missing = np.flatnonzero(~filled)
            for j in range(grid.shape[1]):
                grid[missing, j] = np.interp(missing, where, grid[where, j])
        return grid
