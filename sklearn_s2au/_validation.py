"""Input checks shared by every step: the frame table, per-recording labels, parameters."""

import numbers

import numpy as np
import pandas as pd

FEATURES_COL = "features"


def sequence_input_tags(tags):
    """Declare table/sequence input on sklearn ``Tags``, in place, and return them.

    The steps take DataFrames of per-recording audio or frame arrays, or a
    ``SequenceBatch``; sklearn's tags have no field for that, so every array-input flag
    is off.
    """
    tags.input_tags.two_d_array = False
    tags.input_tags.sparse = False
    tags.input_tags.allow_nan = False
    return tags


def _label(index, i):
    """How an error names recording ``i``: its index label when there is one."""
    return repr(index[i]) if index is not None else str(i)


def check_frame_table(X, speaker_col="speaker", *, step="this step", require_speaker=True):
    """Validate a frame table and return its per-recording float32 feature arrays.

    Returns ``(features, speakers)`` where ``features`` is a list of C-contiguous
    ``float32`` arrays ``(n_frames_i, n_features)`` and ``speakers`` an object ndarray (or
    None when ``require_speaker`` is False and no speaker column is present).
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{step} expects a frame table: a pandas DataFrame with one row per recording, "
            f"a {FEATURES_COL!r} column of (n_frames, n_features) arrays and a "
            f"{speaker_col!r} column, as returned by OpenSmileLLD; got {type(X).__name__}. "
            f"See docs/data_contract.rst.")
    if FEATURES_COL not in X.columns:
        hint = (" It looks like a recordings table: put OpenSmileLLD before this step."
                if ("signal" in X.columns or "file" in X.columns) else "")
        raise ValueError(f"{step}: the frame table has no {FEATURES_COL!r} column "
                         f"(columns: {list(X.columns)}).{hint}")
    speakers = None
    if speaker_col in X.columns:
        speakers = X[speaker_col].to_numpy(dtype=object)
        bad = pd.isna(X[speaker_col]).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{step}: recording {_label(X.index, i)} has no speaker "
                             f"(missing value in column {speaker_col!r}); fill it in.")
    elif require_speaker:
        raise ValueError(
            f"{step}: the frame table has no speaker column {speaker_col!r} (columns: "
            f"{list(X.columns)}). Add one, or set speaker_col to the column that holds "
            f"the speaker of each recording.")
    if len(X) == 0:
        raise ValueError(f"{step}: the frame table is empty (0 recordings).")
    features = []
    n_features = None
    for i, value in enumerate(X[FEATURES_COL].to_numpy()):
        where = _label(X.index, i)
        arr = _as_float32_features(value, where, step)
        if arr.ndim != 2:
            raise ValueError(f"{step}: recording {where} has features of shape {arr.shape}; "
                             f"expected a 2-D array (n_frames, n_features).")
        if arr.shape[0] == 0:
            raise ValueError(f"{step}: recording {where} has 0 frames; remove it or give "
                             f"it at least one frame of features.")
        if n_features is None:
            n_features = arr.shape[1]
        elif arr.shape[1] != n_features:
            raise ValueError(f"{step}: recording {where} has {arr.shape[1]} features but the "
                             f"first recording has {n_features}; all recordings must share "
                             f"one feature set.")
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            original = float(np.asarray(value)[tuple(bad)])
            if np.isfinite(original):
                raise ValueError(f"{step}: recording {where} has the value {original:.4g} at "
                                 f"frame {bad[0]}, feature {bad[1]}, beyond the float32 "
                                 f"range (features are float32); rescale the features.")
            raise ValueError(f"{step}: recording {where} has a non-finite value (NaN or inf) "
                             f"at frame {bad[0]}, feature {bad[1]}; clean or impute the "
                             f"features before this step.")
        features.append(np.ascontiguousarray(arr))
    return features, speakers


def _as_float32_features(value, where, step):
    """The features of one recording as float32, or an error naming the recording."""
    try:
        raw = np.asarray(value)
    except ValueError:  # ragged nested lists
        raw = None
    # complex values would lose their imaginary part in the cast: never drop silently
    if raw is not None and raw.dtype.kind != "c":
        try:
            with np.errstate(over="ignore"):  # overflow is reported by the caller
                return raw.astype(np.float32, copy=False)
        except (TypeError, ValueError):  # strings, ...
            pass
    what = "ragged nested sequences" if raw is None else f"dtype {raw.dtype}"
    raise ValueError(f"{step}: recording {where} has non-numeric features ({what}); give a "
                     f"real-valued (n_frames, n_features) array.")


def label_shape(tail):
    """``"(n_frames,)"`` or ``"(n_frames, K)"`` for the shape after the frame axis."""
    return "(n_frames,)" if not tuple(tail) else f"(n_frames, {tuple(tail)[0]})"


def check_labels(y, n_frames, *, index=None, step="this step", allow_2d=True, binary=True):
    """Validate per-recording labels against the recordings' frame counts.

    Returns a list of ``float32`` arrays, each ``(n_frames_i,)`` or ``(n_frames_i, K)``
    (all with the same K), holding only 0 and 1 (``binary=True``) or finite real values
    such as AU intensities (``binary=False``).
    """
    kind = "0/1 label" if binary else "target (e.g. AU intensity)"
    if y is None:
        raise ValueError(f"{step} requires y to be passed, but the target y is None: give "
                         f"one {kind} sequence per recording.")
    if isinstance(y, (pd.Series, pd.DataFrame)):
        y = list(y.to_numpy())
    if isinstance(y, np.ndarray) and y.dtype != object:
        y = list(y)
    y = list(y)
    if len(y) != len(n_frames):
        raise ValueError(f"{step}: got labels for {len(y)} recordings but features for "
                         f"{len(n_frames)}; give one {kind} sequence per recording.")
    out = []
    n_targets = None
    for i, (labels, n) in enumerate(zip(y, n_frames)):
        where = _label(index, i)
        arr = np.asarray(labels)
        if arr.ndim == 0 or arr.ndim > 2 or (arr.ndim == 2 and not allow_2d):
            raise ValueError(f"{step}: labels of recording {where} have shape {arr.shape}; "
                             f"expected one label per frame ({'(n_frames,) or (n_frames, '}"
                             f"n_targets)).")
        if arr.shape[0] != n:
            raise ValueError(
                f"{step}: recording {where} has {n} feature frames but {arr.shape[0]} labels."
                f" Labels and features must share the frame grid (sklearn_s2au.framing."
                f"frame_count at the same frame_rate); nothing is re-aligned silently.")
        k = 1 if arr.ndim == 1 else arr.shape[1]
        if n_targets is None:
            n_targets, first_shape = k, arr.shape[1:]
        elif arr.shape[1:] != first_shape:
            raise ValueError(
                f"{step}: labels of recording {where} have shape "
                f"{label_shape(arr.shape[1:])} but those of the first recording "
                f"{_label(index, 0)} have shape {label_shape(first_shape)}; give every "
                f"recording labels of the same shape "
                f"(reshape 1-column arrays with labels[:, 0], or stack targets with "
                f"np.stack(..., axis=1)).")
        try:
            values = arr.astype(np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{step}: labels of recording {where} are not numeric.") from None
        if not binary:
            if not np.isfinite(values).all():
                frame = int(np.argwhere(~np.isfinite(values))[0][0])
                raise ValueError(f"{step}: the targets of recording {where} hold a "
                                 f"non-finite value (NaN or inf, or beyond the float32 "
                                 f"range) at frame {frame}; give a finite target on every "
                                 f"frame (interpolate missing intensities first).")
            out.append(values)
            continue
        if not np.isin(values, (0.0, 1.0)).all():
            odd = np.unique(values[~np.isin(values, (0.0, 1.0))])[:5]
            raise ValueError(f"{step}: labels of recording {where} contain {odd.tolist()}; "
                             f"labels must be binary 0/1 per frame (derive them with "
                             f"sklearn_s2au.labels.au_phases).")
        out.append(values)
    return out


# ---- parameters ------------------------------------------------------------------------
# One spelling of the checks every estimator makes of its own parameters; ``where``
# prefixes the message (e.g. "EncInterAttDecClassifier: ").

def check_int(value, name, low, where="", allow_none=False, what=None, explain=""):
    """``value`` must be an int >= ``low`` (not a bool), or None when ``allow_none``.

    The message says ``what`` it must be (default "an integer >= low") and ``explain``.
    """
    if allow_none and value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        none = "None or " if allow_none else ""
        what = f"an integer >= {low}" if what is None else what
        raise ValueError(f"{where}{name} must be {none}{what}{explain}, got {value!r}.")
    return value


def check_positive_int(value, name, where="", allow_none=False, explain=""):
    """``value`` must be an int >= 1 (not a bool), or None when ``allow_none``."""
    return check_int(value, name, 1, where, allow_none, what="a positive integer",
                     explain=explain)


def check_option(value, name, options, where="", explain=None):
    """``value`` must be one of ``options`` (of the option's type: 0 is not False)."""
    if not any(value is o or (isinstance(value, type(o)) and value == o) for o in options):
        listed = " or ".join(repr(o) for o in options) if explain is None else explain
        raise ValueError(f"{where}{name} must be {listed}, got {value!r}.")
    return value


def check_clip(value, name="clip", where=""):
    """``value`` must be None or a range ``(low, high)`` of real numbers, low < high."""
    ok = value is None or (
        isinstance(value, (tuple, list)) and len(value) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
        and value[0] < value[1])
    if not ok:
        raise ValueError(f"{where}{name} must be None or a range (low, high) with low < high, "
                         f"e.g. (0, 5) for AU intensities; got {value!r}.")
    return value
