"""Frame-table preprocessing: speaker-wise normalisation and padding into sequences.

`SpeakerNormaliser` z-scores every speaker's frames with that speaker's own statistics
(the paper's "speaker-wise normalisation of the LLDs"); `SequencePadder` cuts the
recordings of a frame table into padded, masked chunks of at most ``max_len`` frames for
the sequence classifiers (a :class:`SequenceBatch`).
"""


import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._sequence import SequenceBatch
from ._utils import object_array
from ._validation import (FEATURES_COL, check_frame_table, check_positive_int,
                          sequence_input_tags)

__all__ = ["SpeakerNormaliser", "SequencePadder", "SequenceBatch"]

# A feature whose standard deviation is below float32 resolution relative to its mean is
# constant up to rounding: dividing by such a std would blow rounding noise up to +-1.
_CONSTANT_RTOL = 10 * np.finfo(np.float32).eps


def _group_moments(features, groups):
    """Mean, std and frame count of the frames of each group of recordings.

    ``features``: list of ``(n_frames_i, n_features)`` arrays; ``groups``: int codes
    ``(n_recordings,)`` from 0 to ``n_groups - 1``, every code used. Returns float64
    ``mean`` and ``std`` ``(n_groups, n_features)`` (population std, exactly 0 for features
    that are constant within the group) and ``counts`` ``(n_groups,)``.
    """
    n_groups = int(groups.max()) + 1
    # Concatenate recordings sorted by group, so each group's frames are one block and
    # np.add.reduceat sums them without any per-frame indexing.
    order = np.argsort(groups, kind="stable")
    flat = np.concatenate([features[i] for i in order], axis=0).astype(np.float64)
    n_frames = np.array([len(features[i]) for i in order], dtype=np.int64)
    counts = np.bincount(groups[order], weights=n_frames, minlength=n_groups).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mean = np.add.reduceat(flat, starts, axis=0) / counts[:, None]
    # Two passes (centre, then square) rather than E[x^2] - E[x]^2, which cancels badly.
    flat -= np.repeat(mean, counts, axis=0)
    std = np.sqrt(np.add.reduceat(flat * flat, starts, axis=0) / counts[:, None])
    std[std <= _CONSTANT_RTOL * np.abs(mean)] = 0.0
    return mean, std, counts


def _inverse_scale(std):
    """1 / std, with 0 where std is 0 so that constant features map to exactly 0."""
    inv = np.zeros_like(std)
    np.divide(1.0, std, out=inv, where=std > 0)
    return inv


def _frame_table_like(X, features):
    """Copy of frame table ``X`` with its features column replaced, same index/columns."""
    out = X.copy()
    out[FEATURES_COL] = pd.Series(object_array(features), index=X.index, dtype=object)
    return out


def _check_max_len(max_len, owner):
    check_positive_int(max_len, "max_len", f"{owner}: ", explain=" (frames per chunk)")
    return int(max_len)


def _passthrough_feature_names(estimator, input_features):
    check_is_fitted(estimator, "n_features_in_")
    n = estimator.n_features_in_
    if input_features is None:
        return np.array([f"x{i}" for i in range(n)], dtype=object)
    input_features = np.asarray(input_features, dtype=object)
    if input_features.ndim != 1 or len(input_features) != n:
        raise ValueError(f"{type(estimator).__name__}: input_features has "
                         f"{input_features.size} names but the frames have {n} features.")
    return input_features


# auto_wrap_output_keys=None: sklearn's set_output (or set_config(transform_output=
# "pandas")) would otherwise rebuild the output as a DataFrame with one column per
# feature name, renaming a frame table's columns and failing on a SequenceBatch.
class SpeakerNormaliser(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Z-score frame features speaker by speaker.

    Each feature of a speaker's frames is centred on that speaker's mean and divided by
    that speaker's standard deviation, both computed over all real frames of all of the
    speaker's recordings (the speaker-wise normalisation of Stappen et al., 2019).

    **What mode="speaker" uses at transform time.** The statistics of a speaker come
    from that speaker's frames *in the data being transformed*: a test speaker who was not
    in the training data is normalised with its own statistics. This is transductive per
    speaker, as in the paper's leave-one-speaker-out protocol: it uses the test speaker's
    unlabeled features only, never any label and never any other speaker's frames, so it
    does not leak across the folds of a speaker-grouped cross-validation. It does mean that
    the output for one recording depends on the other recordings of the same speaker that
    are transformed with it. Use ``mode="global"`` for a plain standardisation with the
    training statistics.

    Statistics are computed in float64; the output features are float32. A feature that
    is constant for a speaker (standard deviation 0, also every feature of a speaker with
    a single frame) becomes 0, never NaN or inf.

    Parameters
    ----------
    mode : {"speaker", "global"}, default="speaker"
        ``"speaker"``: per-speaker statistics of the transformed data (see above).
        ``"global"``: the mean and standard deviation of all training frames, for everyone.
    speaker_col : str, default="speaker"
        Column of the frame table holding each recording's speaker. Required in mode
        ``"speaker"``; optional in mode ``"global"``.

    Attributes
    ----------
    mean_ : pandas.DataFrame of shape (n_train_speakers, n_features)
        Per-speaker means of the training frames (index: speaker), for inspection. Empty
        (no rows) when the training table had no speaker column (mode ``"global"``).
    scale_ : pandas.DataFrame of shape (n_train_speakers, n_features)
        Per-speaker standard deviations of the training frames; 0 marks a feature that is
        constant for that speaker.
    n_frames_ : pandas.Series of shape (n_train_speakers,)
        Training frames per speaker.
    global_mean_ : ndarray of shape (n_features,)
        Mean of all training frames (used by mode ``"global"``).
    global_scale_ : ndarray of shape (n_features,)
        Standard deviation of all training frames; 0 for constant features.
    n_features_in_ : int
        Features per frame.

    See Also
    --------
    SequencePadder : The next step of the pipeline.
    sklearn.preprocessing.StandardScaler : The non-sequence, non-speaker equivalent of
        mode ``"global"``.

    References
    ----------
    L. Stappen, V. Karas, N. Cummins, F. Ringeval, K. Scherer and B. Schuller, "From speech
    to facial activity: towards cross-modal sequence-to-sequence attention networks",
    MMSP 2019.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_s2au.preprocessing import SpeakerNormaliser
    >>> X = pd.DataFrame({
    ...     "speaker": ["ann", "ann", "bob"],
    ...     "features": [np.array([[1.0], [3.0]], dtype=np.float32),
    ...                  np.array([[5.0]], dtype=np.float32),
    ...                  np.array([[10.0], [30.0]], dtype=np.float32)]})
    >>> Xt = SpeakerNormaliser().fit_transform(X)
    >>> [f.ravel().astype(float).round(3).tolist() for f in Xt["features"]]
    [[-1.225, 0.0], [1.225], [-1.0, 1.0]]
    >>> SpeakerNormaliser().fit(X).mean_[0].to_dict()     # feature 0, per speaker
    {'ann': 3.0, 'bob': 20.0}
    """

    def __init__(self, mode="speaker", speaker_col="speaker"):
        self.mode = mode
        self.speaker_col = speaker_col

    def _check_params(self):
        if self.mode not in ("speaker", "global"):
            raise ValueError(f"SpeakerNormaliser: mode must be 'speaker' or 'global', "
                             f"got {self.mode!r}.")

    def _validate(self, X):
        return check_frame_table(X, self.speaker_col, step="SpeakerNormaliser",
                                 require_speaker=self.mode == "speaker")

    def fit(self, X, y=None):
        """Compute the global and per-speaker statistics of the training frames.

        Parameters
        ----------
        X : pandas.DataFrame
            Frame table: one row per recording, a ``features`` column of float32
            ``(n_frames, n_features)`` arrays and a speaker column.
        y : None
            Ignored; labels are never used.

        Returns
        -------
        self : SpeakerNormaliser
        """
        self._check_params()
        features, speakers = self._validate(X)
        n_features = features[0].shape[1]
        mean, std, _ = _group_moments(features, np.zeros(len(features), dtype=np.int64))
        self.global_mean_ = mean[0]
        self.global_scale_ = std[0]
        if speakers is not None:
            try:
                codes, names = pd.factorize(pd.Series(speakers, dtype=object), sort=True)
            except TypeError:  # speakers of mixed, unorderable types: keep first-seen order
                codes, names = pd.factorize(pd.Series(speakers, dtype=object))
            mean, std, counts = _group_moments(features, codes.astype(np.int64))
        else:
            names, mean, std = [], np.empty((0, n_features)), np.empty((0, n_features))
            counts = np.empty(0, dtype=np.int64)
        index = pd.Index(names, name=self.speaker_col, dtype=object)
        self.mean_ = pd.DataFrame(mean, index=index)
        self.scale_ = pd.DataFrame(std, index=index)
        self.n_frames_ = pd.Series(counts, index=index, name="n_frames")
        self.n_features_in_ = n_features
        return self

    def transform(self, X):
        """Normalise the frames of every recording.

        Parameters
        ----------
        X : pandas.DataFrame
            Frame table with the same number of features as the training table.

        Returns
        -------
        Xt : pandas.DataFrame
            Frame table with the same index and columns as ``X``; ``features`` holds the
            normalised float32 arrays, every other column is copied unchanged.
        """
        check_is_fitted(self, "n_features_in_")
        self._check_params()
        features, speakers = self._validate(X)
        if features[0].shape[1] != self.n_features_in_:
            raise ValueError(f"SpeakerNormaliser: the frames have {features[0].shape[1]} "
                             f"features but the normaliser was fitted on "
                             f"{self.n_features_in_}; use the same feature set.")
        if self.mode == "speaker":
            codes, _ = pd.factorize(pd.Series(speakers, dtype=object))
            codes = codes.astype(np.int64)
            mean, std, _ = _group_moments(features, codes)
        else:
            codes = np.zeros(len(features), dtype=np.int64)
            mean, std = self.global_mean_[None, :], self.global_scale_[None, :]
        inv = _inverse_scale(std)
        out = [((f - mean[c]) * inv[c]).astype(np.float32) for f, c in zip(features, codes)]
        return _frame_table_like(X, out)

    def get_feature_names_out(self, input_features=None):
        """Feature names of the output: the input names (normalisation keeps features).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the input features; ``x0 ... x{n-1}`` when None (frame tables carry
            no feature names).

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        return _passthrough_feature_names(self, input_features)

    def __sklearn_tags__(self):
        # input: a frame table (DataFrame of per-recording 2-D arrays)
        tags = sequence_input_tags(super().__sklearn_tags__())
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class SequencePadder(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Cut the recordings of a frame table into zero-padded chunks of ``max_len`` frames.

    A recording of ``n`` frames becomes ``ceil(n / max_len)`` consecutive, non-overlapping
    chunks; the last one is zero-padded, and the returned :class:`SequenceBatch` keeps the
    real length of each chunk (its mask), the recording it came from and its speaker, so
    that padding never reaches a loss or a metric and predictions can be stitched back
    into one value per real frame. No frame is dropped, also for recordings longer than
    ``max_len``. Stateless: ``transform`` works without ``fit``.

    Parameters
    ----------
    max_len : int, default=100
        Frames per chunk (the paper's T = 100 steps).
    speaker_col : str, default="speaker"
        Column of the frame table holding each recording's speaker; the chunks carry it so
        classifiers can hold out whole speakers for early stopping.

    Attributes
    ----------
    n_features_in_ : int
        Features per frame seen in `fit` (for `get_feature_names_out`; `transform` does
        not need it).

    See Also
    --------
    SequenceBatch : The output; ``unpad`` maps per-chunk outputs back to recordings.
    SpeakerNormaliser : The previous step of the pipeline.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn_s2au.preprocessing import SequencePadder
    >>> X = pd.DataFrame({"speaker": ["ann", "bob"],
    ...                   "features": [np.ones((5, 2), np.float32),
    ...                                np.ones((2, 2), np.float32)]})
    >>> batch = SequencePadder(max_len=3).transform(X)
    >>> batch.X.shape, batch.lengths.tolist(), batch.recording.tolist()
    ((3, 3, 2), [3, 2, 2], [0, 0, 1])
    >>> [len(p) for p in batch.unpad(batch.X[:, :, 0])]   # one value per real frame
    [5, 2]
    """

    def __init__(self, max_len=100, speaker_col="speaker"):
        self.max_len = max_len
        self.speaker_col = speaker_col

    def fit(self, X, y=None):
        """Check the parameters and the frame table; nothing is learned.

        Parameters
        ----------
        X : pandas.DataFrame
            Frame table.
        y : None
            Ignored.

        Returns
        -------
        self : SequencePadder
        """
        _check_max_len(self.max_len, "SequencePadder")
        features, _ = check_frame_table(X, self.speaker_col, step="SequencePadder")
        self.n_features_in_ = features[0].shape[1]
        return self

    def transform(self, X):
        """Pad and chunk the recordings.

        Parameters
        ----------
        X : pandas.DataFrame
            Frame table.

        Returns
        -------
        batch : SequenceBatch
            ``X`` float32 ``(n_chunks, max_len, n_features)`` plus lengths, recording,
            offset, speaker and the recordings' index (used to name them in errors).
        """
        max_len = _check_max_len(self.max_len, "SequencePadder")
        features, speakers = check_frame_table(X, self.speaker_col, step="SequencePadder")
        return SequenceBatch.from_features(features, speakers, max_len, index=X.index)

    def get_feature_names_out(self, input_features=None):
        """Feature names of the output: the input names (padding keeps features).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the input features; ``x0 ... x{n-1}`` when None.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        return _passthrough_feature_names(self, input_features)

    def __sklearn_tags__(self):
        tags = sequence_input_tags(super().__sklearn_tags__())
        tags.target_tags.required = False
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
