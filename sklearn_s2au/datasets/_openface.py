"""OpenFace 2.x FeatureExtraction CSVs, read onto the frame grid and written.

:func:`read_openface_csv` reads one (and ``load_manifest`` every one a manifest lists);
``_write_openface`` writes the generated corpus' AU curves in the same layout
(``AUCorpus.to_wav``). All CSV reading goes through ``_read_csv``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..framing import frame_count, to_frame_grid
from ..labels import au_name


def _read_csv(path, **kwargs):
    """:func:`pandas.read_csv`, with an error naming the file when it is not CSV text.

    The loaders read CSV text only: nothing a user gives them is ever unpickled or
    evaluated, so a binary file (a pickle or an audio file renamed ``.csv``) is an error.
    """
    name = str(path) if isinstance(path, (str, Path)) else getattr(path, "name", path)
    try:
        return pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{name}: not a CSV text file (byte {exc.start} is {exc.object[exc.start:][:1]!r}, "
            f"which is not UTF-8 text); give the CSV file itself. The loaders read CSV "
            f"only and never unpickle or evaluate a file.") from exc
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{name}: the file is empty; expected a CSV with a header "
                         f"row.") from exc
    except pd.errors.ParserError as exc:
        raise ValueError(f"{name}: cannot be parsed as CSV ({exc}).") from exc


def read_openface_csv(path, frame_rate=25, n_frames=None, aus=None, *, tolerance=0.25):
    """AU intensities from an OpenFace 2.x FeatureExtraction CSV, on the frame grid.

    OpenFace writes column names with a leading space (``" AU01_r"``); they are
    stripped. Only the ``AUxx_r`` intensity columns (0-5) are kept. Rows with
    ``success == 0`` (no face found) are treated as missing: they are left out before
    the values are brought onto the grid, so their frames are filled by linear
    interpolation between the nearest successful frames (and with the nearest one at the
    ends). The rows are placed by their ``timestamp`` and averaged per frame with
    :func:`sklearn_s2au.framing.to_frame_grid`, so any video frame rate works.

    Parameters
    ----------
    path : str or Path
        The CSV (read with :func:`pandas.read_csv`).
    frame_rate : float, default=25
        Frames per second of the grid.
    n_frames : int, optional
        Length of the grid, normally ``frame_count(audio duration, frame_rate)`` so the
        AUs line up with the audio features. By default
        ``frame_count(last timestamp + 1 / video fps, frame_rate)``, with the video fps
        estimated from the median timestamp step.
    aus : list of str or int, optional
        AUs to return (``"AU17"``, ``17``...); by default every ``AUxx_r`` column.
    tolerance : float, default=0.25
        When ``n_frames`` is given: how many seconds the CSV may be longer or shorter
        than the grid. Rows after the end of the grid (within the tolerance) are left
        out; a shorter CSV is extended with its last values. A larger mismatch is an
        error (wrong video for this audio?).

    Returns
    -------
    intensity : DataFrame of shape (n_frames, n_aus)
        Columns ``"AU01"``..., index ``frame`` (0-based).

    Examples
    --------
    >>> import io
    >>> from sklearn_s2au.datasets import read_openface_csv
    >>> text = ("frame, face_id, timestamp, confidence, success, AU17_r\\n"
    ...         "1, 0, 0.000, 0.98, 1, 0.5\\n2, 0, 0.040, 0.10, 0, 0.0\\n"
    ...         "3, 0, 0.080, 0.98, 1, 1.5\\n")
    >>> read_openface_csv(io.StringIO(text))["AU17"].tolist()
    [0.5, 1.0, 1.5]
    """
    name = getattr(path, "name", path)
    table = _read_csv(path, skipinitialspace=True)
    table.columns = [str(c).strip() for c in table.columns]
    if "timestamp" not in table.columns:
        raise ValueError(f"{name}: no 'timestamp' column (columns: {list(table.columns)[:8]}"
                         f"...); is this OpenFace FeatureExtraction output?")
    available = {au_name(c): c for c in table.columns
                 if c.endswith("_r") and c.upper().startswith("AU")}
    if aus is None:
        wanted = list(available)
    else:
        wanted = [au_name(a) for a in aus]
        missing = [a for a in wanted if a not in available]
        if missing:
            raise ValueError(f"{name}: no intensity column for {missing} (expected "
                             f"{[a + '_r' for a in missing]}); it has "
                             f"{[available[a] for a in available]}. Pass aus= with the "
                             f"AUs it has (on the command line: --au or --aus).")
    if not wanted:
        raise ValueError(f"{name}: no AU intensity columns (AUxx_r) found.")
    if len(table) == 0:
        raise ValueError(f"{name}: the CSV has no rows.")
    if "face_id" in table.columns and table["face_id"].nunique() > 1:
        raise ValueError(f"{name}: rows of {table['face_id'].nunique()} faces (face_id); "
                         f"keep the rows of the speaker's face before reading.")
    times = table["timestamp"].to_numpy(dtype=float)
    values = table[[available[a] for a in wanted]].to_numpy(dtype=float)
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0):
        raise ValueError(f"{name}: timestamps must be finite and increasing.")
    repeated = np.flatnonzero(np.diff(times) == 0)
    if repeated.size:
        raise ValueError(f"{name}: timestamp {times[repeated[0]]:g} s appears more than once "
                         f"(rows {repeated[0]} and {repeated[0] + 1}, 0-based, and "
                         f"{repeated.size - 1} more); each video frame must have one row "
                         f"(several faces? keep one face_id).")
    finite = np.isfinite(values)
    outside = finite & ((values < 0) | (values > 5))
    if outside.any():
        row, col = map(int, np.argwhere(outside)[0])
        raise ValueError(f"{name}: {available[wanted[col]]} is {values[row, col]:g} at row "
                         f"{row} (timestamp {times[row]:g} s); OpenFace AU intensities lie "
                         f"in 0..5 ({int(outside.sum())} value(s) outside). Is this column "
                         f"an intensity?")
    ok = np.ones(len(table), dtype=bool)
    if "success" in table.columns:
        ok = table["success"].to_numpy() != 0
    ok &= np.isfinite(values).all(axis=1)
    if not ok.any():
        raise ValueError(f"{name}: no row with success=1 and finite AU values; OpenFace "
                         f"found no face in this video.")
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / frame_rate
    csv_duration = times[-1] + step
    if n_frames is None:
        n_frames = frame_count(csv_duration, frame_rate)
    else:
        grid_duration = n_frames / frame_rate
        if abs(csv_duration - grid_duration) > tolerance:
            raise ValueError(
                f"{name}: the AU track lasts {csv_duration:.3f} s but the recording "
                f"{grid_duration:.3f} s ({n_frames} frames at {frame_rate} Hz); they differ "
                f"by more than tolerance={tolerance} s. Check that the CSV belongs to this "
                f"recording, or raise tolerance.")
        ok &= times < grid_duration
        if not ok.any():
            raise ValueError(f"{name}: no successful row within the {grid_duration:.3f} s "
                             f"of the recording.")
    grid = to_frame_grid(times[ok], values[ok], n_frames, frame_rate)
    return pd.DataFrame(grid, columns=wanted, index=pd.RangeIndex(n_frames, name="frame"))


def _write_openface(path, n_frames, frame_rate, intensity, occurrence):
    """One recording's AU curves as an OpenFace 2.x FeatureExtraction CSV.

    Columns ``frame`` (1-based), ``face_id``, ``timestamp``, ``confidence``,
    ``success``, then ``AUxx_r`` from ``intensity`` and ``AUxx_c`` from ``occurrence``
    (dicts of AU to ``(n_frames,)`` arrays), one row per frame, in OpenFace 2.x layout:
    ', '-separated header and values, 2-decimal AUs. :func:`read_openface_csv` reads it.
    """
    table = pd.DataFrame({"frame": np.arange(1, n_frames + 1), "face_id": 0,
                          "timestamp": np.arange(n_frames) / frame_rate,
                          "confidence": 0.98, "success": 1})
    for au, curve in intensity.items():
        table[f"{au}_r"] = curve
    for au, occurs in occurrence.items():
        table[f"{au}_c"] = occurs.astype(int)
    formats = {"frame": "{:d}", "face_id": "{:d}", "timestamp": "{:.3f}",
               "confidence": "{:.2f}", "success": "{:d}"}
    columns = []
    for col in table.columns:
        fmt = formats.get(col, "{:d}" if col.endswith("_c") else "{:.2f}")
        columns.append([fmt.format(v) for v in table[col].tolist()])
    lines = [", ".join(table.columns)]
    lines += [", ".join(values) for values in zip(*columns)]
    Path(path).write_text("\n".join(lines) + "\n")
