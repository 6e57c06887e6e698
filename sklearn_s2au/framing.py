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

__all__ = ["frame_count", "frame_times", "to_frame_grid"]

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


def frame_times(n_frames, frame_rate):
    """Start time in seconds of each frame: ``arange(n_frames) / frame_rate``."""
    return np.arange(n_frames) / float(frame_rate)


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
    n_columns = values.shape[1]
    if n_frames <= 0:
        raise ValueError(f"n_frames must be positive, got {n_frames}.")
    if values.shape[0] == 0:
        raise ValueError("no values to bring onto the frame grid (the source is empty).")
    index = np.floor(times * frame_rate + _EPS).astype(np.int64)
    # A window centred a hair past the end still belongs to the last frame.
    index = np.clip(index, 0, None)
    late = index >= n_frames
    if np.any(late):
        tolerance = index[late] - (n_frames - 1)
        if np.any(tolerance > 1):
            raise ValueError(
                f"{int(late.sum())} values have time stamps after the last of {n_frames} "
                f"frames at {frame_rate} Hz (latest {times.max():.3f} s); the source is "
                f"longer than the recording it is aligned to.")
        index[late] = n_frames - 1
    counts = np.bincount(index, minlength=n_frames).astype(float)
    grid = np.empty((n_frames, n_columns))
    for j in range(n_columns):
        grid[:, j] = np.bincount(index, weights=values[:, j], minlength=n_frames)
    filled = counts > 0
    grid[filled] /= counts[filled, None]
    if not filled.all():
        where = np.flatnonzero(filled)
        missing = np.flatnonzero(~filled)
        for j in range(n_columns):
            grid[missing, j] = np.interp(missing, where, grid[where, j])
    return grid
