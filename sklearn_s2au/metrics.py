"""Scores over the real frames of sequences, and the scorers for cross-validation.

The paper's metric is the unweighted average recall (UAR, balanced accuracy; chance is
50 % for two classes) over the frames of all recordings of a test fold, computed on the
real length of each recording (never on padding). For AU intensities (regression) the
concordance correlation coefficient (CCC, Lin 1989) and Pearson's r are computed the
same way, over the real frames of all recordings concatenated.
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning

from ._sequence import SequenceBatch
from ._validation import _label

__all__ = ["sequence_uar", "sequence_ccc", "sequence_pearson", "SequenceUARScorer",
           "SequenceCCCScorer", "SequencePearsonScorer", "uar_scorer",
           "uar_per_target_scorer", "ccc_scorer", "ccc_per_target_scorer",
           "pearson_scorer", "pearson_per_target_scorer"]


def _as_sequences(y, name):
    """Per-recording arrays from the accepted forms, plus the index naming recordings.

    A list/tuple/object ndarray/Series of arrays is one array per recording; so is a
    numeric ndarray of 2 or more dimensions, row by row (as `check_labels` reads it). A
    1-D numeric array, or a list of scalars, is the concatenated frames of one sequence.
    """
    if isinstance(y, SequenceBatch):
        raise TypeError(f"{name} is a SequenceBatch, which holds padded features, not "
                        f"per-frame labels or predictions; pass one label array per "
                        f"recording (for predictions: the output of predict).")
    if isinstance(y, pd.DataFrame):
        raise TypeError(f"{name} is a DataFrame; pass one label array per recording (a "
                        f"list, an object ndarray or a Series of arrays).")
    index = None
    if isinstance(y, pd.Series):
        index = y.index
        y = y.to_numpy(dtype=object)
    if isinstance(y, np.ndarray) and y.dtype != object:
        return ([y] if y.ndim == 1 else list(y)), None
    y = list(y)
    if len(y) > 0 and all(np.ndim(v) == 0 for v in y):
        return [np.asarray(y)], None
    return [np.asarray(v) for v in y], index


def _frame_matrices(y_true, y_pred, targets, func, what):
    """Check per-recording truths and predictions; concatenate their real frames.

    Returns ``(flat_true, flat_pred, targets)``: two ``(n_frames_total, n_targets)``
    arrays of the frames of all recordings in order, and the list of target names.
    ``func`` and ``what`` (``"labels"``, ``"values"``) name things in errors.
    """
    true_seqs, index = _as_sequences(y_true, "y_true")
    pred_seqs, _ = _as_sequences(y_pred, "y_pred")
    if len(true_seqs) != len(pred_seqs):
        raise ValueError(f"{func}: y_true has {len(true_seqs)} recordings but y_pred "
                         f"has {len(pred_seqs)}; give one prediction array per recording.")
    if len(true_seqs) == 0:
        raise ValueError(f"{func}: no recordings given.")
    for i, (t, p) in enumerate(zip(true_seqs, pred_seqs)):
        if t.ndim not in (1, 2):
            raise ValueError(f"{func}: {what} of recording {_label(index, i)} have "
                             f"shape {t.shape}; expected (n_frames,) or (n_frames, "
                             f"n_targets).")
        if t.shape != p.shape:
            raise ValueError(
                f"{func}: recording {_label(index, i)} has true {what} of shape "
                f"{t.shape} but predictions of shape {p.shape}; every real frame needs "
                f"exactly one prediction (check that predict returns per-recording arrays "
                f"of full length, in input order).")
        if t.ndim != true_seqs[0].ndim or t.shape[1:] != true_seqs[0].shape[1:]:
            raise ValueError(f"{func}: recording {_label(index, i)} has {what} of "
                             f"shape {t.shape} but the first recording has "
                             f"{true_seqs[0].shape}; all recordings need the same targets.")
    flat_true = np.concatenate(true_seqs, axis=0)
    flat_pred = np.concatenate(pred_seqs, axis=0)
    if flat_true.shape[0] == 0:
        raise ValueError(f"{func}: the recordings hold no frames.")
    if flat_true.ndim == 1:
        flat_true, flat_pred = flat_true[:, None], flat_pred[:, None]
    n_targets = flat_true.shape[1]
    if targets is None:
        targets = list(range(n_targets))
    else:
        targets = list(targets)
        if len(targets) != n_targets:
            raise ValueError(f"{func}: {len(targets)} target names given for "
                             f"{n_targets} targets.")
    return flat_true, flat_pred, targets


def _uar_columns(y_true, y_pred, targets):
    """UAR of every column of the frame matrices ``(n_frames, n_targets)``."""
    scores = np.empty(y_true.shape[1])
    for k in range(y_true.shape[1]):
        # recall of every class present in y_true, averaged with equal weight
        classes, true_code = np.unique(y_true[:, k], return_inverse=True)
        correct = y_pred[:, k] == y_true[:, k]
        recall = (np.bincount(true_code, weights=correct, minlength=len(classes))
                  / np.bincount(true_code, minlength=len(classes)))
        scores[k] = recall.mean()
        if len(classes) == 1:
            warnings.warn(
                f"sequence_uar: the true labels of target {targets[k]!r} hold a single "
                f"class ({classes[0].item()!r}) in all {len(correct)} frames given (for example a "
                f"test speaker without any AU onset); its UAR is the recall of that class "
                f"alone ({scores[k]:.3f}) and is not comparable with the two-class chance "
                f"level of 0.5.", UndefinedMetricWarning, stacklevel=3)
    return scores


def sequence_uar(y_true, y_pred, *, targets=None, return_per_target=False):
    """Unweighted average recall over the real frames of all recordings.

    The frames of all recordings are concatenated and the recall of every class present
    in ``y_true`` is averaged with equal weight: this is
    :func:`sklearn.metrics.balanced_accuracy_score` on the concatenated frames. With
    several targets (2-D label arrays) the UAR of each target is computed on its own and
    the mean over targets is returned.

    **Single-class ground truth.** When the true labels of a target hold one class only
    (a test speaker who never shows an AU onset), recall is defined for that class alone,
    so the UAR is the recall of the present class (the fraction of its frames predicted
    correctly): 1.0 for a classifier that never fires, and not comparable with the
    two-class chance level of 0.5. This is the value
    ``balanced_accuracy_score`` returns as well. An
    :class:`~sklearn.exceptions.UndefinedMetricWarning` naming the target is emitted; the
    result is never NaN.

    Parameters
    ----------
    y_true : sequence of array-like
        One label array per recording, ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``:
        a list, an object ndarray or a pandas Series (whose index then names recordings in
        errors). A numeric ndarray ``(n_recordings, n_frames[, n_targets])`` holds
        recordings of equal length, one per row. A 1-D numeric array (or a list of
        scalars) is taken as the already concatenated frames of one sequence.
    y_pred : sequence of array-like
        Predicted labels (not probabilities) in the same layout, with exactly as many
        frames per recording.
    targets : sequence of str, optional
        Names of the ``n_targets`` targets (index of the per-target Series, and how
        warnings name them). Defaults to ``0 ... n_targets - 1``.
    return_per_target : bool, default=False
        If True, return a Series with the UAR of every target instead of their mean.

    Returns
    -------
    uar : float or pandas.Series
        Mean UAR over targets, or the per-target UARs (``return_per_target=True``).

    Raises
    ------
    ValueError
        If the numbers of recordings differ, a recording has a different number of true
        and predicted frames or targets (the recording is named), ``y_pred`` holds
        non-integral values (probabilities), or there are no frames.

    See Also
    --------
    uar_scorer : The scorer for ``cross_validate`` and ``GridSearchCV``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.metrics import sequence_uar
    >>> y_true = [np.array([0, 0, 1]), np.array([1, 1, 0, 0])]
    >>> y_pred = [np.array([0, 1, 1]), np.array([1, 0, 0, 0])]
    >>> round(sequence_uar(y_true, y_pred), 4)   # mean of recalls 3/4 (0) and 2/3 (1)
    0.7083
    >>> y_true = [np.array([[0, 0], [1, 1], [1, 0]])]     # 3 frames, 2 targets
    >>> y_pred = [np.array([[0, 0], [1, 1], [1, 1]])]
    >>> sequence_uar(y_true, y_pred, targets=["onset", "apex"], return_per_target=True)
    onset    1.00
    apex     0.75
    Name: uar, dtype: float64
    """
    flat_true, flat_pred, targets = _frame_matrices(y_true, y_pred, targets,
                                                    "sequence_uar", "labels")
    if flat_pred.dtype.kind == "f" and not np.array_equal(flat_pred, np.round(flat_pred)):
        odd = flat_pred[flat_pred != np.round(flat_pred)][0]
        raise ValueError(f"sequence_uar: y_pred holds non-label values such as {odd:.3g}; "
                         f"pass predicted labels (the output of predict), not "
                         f"probabilities or scores.")
    scores = _uar_columns(flat_true, flat_pred, targets)
    if return_per_target:
        return pd.Series(scores, index=pd.Index(targets, name=None), name="uar")
    return float(scores.mean())


def _real_values(flat, func, which):
    """``flat`` as float64, or an error: intensities must be finite real numbers."""
    if flat.dtype.kind not in "biuf":
        raise ValueError(f"{func}: {which} holds values of dtype {flat.dtype}; give real "
                         f"numbers (intensities or scores), one per frame.")
    flat = flat.astype(np.float64)
    if not np.isfinite(flat).all():
        row, col = map(int, np.argwhere(~np.isfinite(flat))[0])
        raise ValueError(f"{func}: {which} holds a non-finite value ({flat[row, col]}) at "
                         f"frame {row} of the concatenated recordings, target {col}; "
                         f"every real frame needs a finite value (impute or drop the "
                         f"frames first).")
    return flat


def _moments(y_true, y_pred, targets, func):
    flat_true, flat_pred, targets = _frame_matrices(y_true, y_pred, targets, func, "values")
    t = _real_values(flat_true, func, "y_true")
    p = _real_values(flat_pred, func, "y_pred")
    mean_t, mean_p = t.mean(0), p.mean(0)
    dt, dp = t - mean_t, p - mean_p
    # population (biased) moments, as in Lin (1989) and the AVEC challenges
    var_t, var_p = (dt * dt).mean(0), (dp * dp).mean(0)
    cov = (dt * dp).mean(0)
    # exact constancy (a float mean of equal values need not give a variance of 0)
    const_t, const_p = np.ptp(t, axis=0) == 0, np.ptp(p, axis=0) == 0
    return targets, len(t), mean_t, mean_p, var_t, var_p, cov, const_t, const_p


def _result(scores, targets, name, return_per_target):
    if return_per_target:
        return pd.Series(scores, index=pd.Index(targets, name=None), name=name)
    return float(scores.mean())


def _warn_constant(func, kind, target, n_frames, value, consequence):
    warnings.warn(f"{func}: the {kind} of target {target!r} are constant ({value:.4g}) "
                  f"over all {n_frames} frames given (for example a test speaker who "
                  f"never shows that AU); {consequence}", UndefinedMetricWarning,
                  stacklevel=3)


def sequence_ccc(y_true, y_pred, *, targets=None, return_per_target=False):
    """Concordance correlation coefficient over the real frames of all recordings.

    Lin's CCC, ``2 cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p)) ** 2)`` with
    population moments, on the frames of all recordings concatenated: 1 for perfect
    agreement, 0 for none, -1 for perfect disagreement. Unlike Pearson's r it also
    penalises a shift or a scaling of the predictions, so a model has to predict the
    intensity itself, not only its rises and falls. With several targets (2-D arrays)
    each target is scored on its own and the mean over targets is returned.

    **Constant ground truth.** When the true values of a target are constant (a test
    speaker who never shows the AU), ``cov = 0`` and the CCC is 0 for any prediction
    that is not that same constant, however close: an
    :class:`~sklearn.exceptions.UndefinedMetricWarning` naming the target says so. When
    truth and prediction are the same constant, the CCC is 0 / 0: NaN, with the warning.

    Parameters
    ----------
    y_true : sequence of array-like
        One array of true values (e.g. AU intensities 0-5) per recording,
        ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``, in the layouts
        :func:`sequence_uar` accepts (a list, an object ndarray, a pandas Series whose
        index then names recordings in errors, a numeric ndarray of equal-length
        recordings, or a 1-D array of already concatenated frames).
    y_pred : sequence of array-like
        Predicted values in the same layout, exactly as many frames per recording.
    targets : sequence of str, optional
        Names of the targets (index of the per-target Series, and how warnings name
        them). Defaults to ``0 ... n_targets - 1``.
    return_per_target : bool, default=False
        If True, return a Series with the CCC of every target instead of their mean.

    Returns
    -------
    ccc : float or pandas.Series
        Mean CCC over targets, or the per-target values (``return_per_target=True``).

    Raises
    ------
    ValueError
        If the numbers of recordings differ, a recording has a different number of true
        and predicted frames or targets (the recording is named), a value is not a
        finite real number, or there are no frames.

    See Also
    --------
    sequence_pearson : Pearson's r on the same frames.
    ccc_scorer : The scorer for ``cross_validate`` and ``GridSearchCV``.

    References
    ----------
    L. I.-K. Lin, "A concordance correlation coefficient to evaluate reproducibility",
    Biometrics 45(1), 1989.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.metrics import sequence_ccc
    >>> y_true = [np.array([0.0, 1.0, 2.0]), np.array([3.0, 4.0])]
    >>> sequence_ccc(y_true, y_true)
    1.0
    >>> round(sequence_ccc(y_true, [t + 1.0 for t in y_true]), 4)   # shifted by 1
    0.8
    >>> y_true = [np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])]   # 3 frames, 2 AUs
    >>> y_pred = [np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])]
    >>> sequence_ccc(y_true, y_pred, targets=["AU12", "AU17"], return_per_target=True)
    AU12    1.0
    AU17    0.4
    Name: ccc, dtype: float64
    """
    func = "sequence_ccc"
    targets, n, mean_t, mean_p, var_t, var_p, cov, const_t, const_p = _moments(
        y_true, y_pred, targets, func)
    denominator = var_t + var_p + (mean_t - mean_p) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(denominator > 0, 2 * cov / denominator, np.nan)
    scores[const_t] = np.where(denominator[const_t] > 0, 0.0, np.nan)
    for k in np.flatnonzero(const_t):
        consequence = ("so are the predictions, with the same value: the CCC is 0 / 0 "
                       "and returned as NaN." if np.isnan(scores[k]) else
                       "its CCC is 0 for any other prediction and is not comparable with "
                       "the CCC of a target that varies.")
        _warn_constant(func, "true values", targets[k], n, mean_t[k], consequence)
    return _result(scores, targets, "ccc", return_per_target)


def sequence_pearson(y_true, y_pred, *, targets=None, return_per_target=False):
    """Pearson's correlation coefficient r over the real frames of all recordings.

    The frames of all recordings are concatenated and ``r = cov(t, p) / (std(t) std(p))``
    is computed per target; with several targets the mean over targets is returned. r
    ignores the scale and offset of the predictions (see :func:`sequence_ccc` for a
    score that does not).

    **Constant values.** When the true or the predicted values of a target are constant
    (a test speaker who never shows the AU, a model that predicts the same intensity on
    every frame), r is undefined: it is returned as NaN with an
    :class:`~sklearn.exceptions.UndefinedMetricWarning` naming the target, as
    :func:`scipy.stats.pearsonr` does. The mean over targets is then NaN too.

    Parameters
    ----------
    y_true, y_pred : sequence of array-like
        As in :func:`sequence_ccc`.
    targets : sequence of str, optional
        Names of the targets. Defaults to ``0 ... n_targets - 1``.
    return_per_target : bool, default=False
        If True, return a Series with r of every target instead of their mean.

    Returns
    -------
    r : float or pandas.Series
        Mean r over targets, or the per-target values (``return_per_target=True``).

    Raises
    ------
    ValueError
        As :func:`sequence_ccc`.

    See Also
    --------
    sequence_ccc : The concordance correlation coefficient.
    pearson_scorer : The scorer for ``cross_validate`` and ``GridSearchCV``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.metrics import sequence_pearson
    >>> y_true = [np.array([0.0, 1.0, 2.0]), np.array([3.0, 4.0])]
    >>> sequence_pearson(y_true, [2 * t + 1 for t in y_true])    # r ignores scale, shift
    1.0
    """
    func = "sequence_pearson"
    targets, n, mean_t, mean_p, var_t, var_p, cov, const_t, const_p = _moments(
        y_true, y_pred, targets, func)
    undefined = const_t | const_p
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(undefined, np.nan, cov / np.sqrt(var_t * var_p))
    # rounding can take |r| a hair past 1
    scores = np.clip(scores, -1.0, 1.0)
    for k in np.flatnonzero(undefined):
        kind, value = (("true values", mean_t[k]) if const_t[k]
                       else ("predictions", mean_p[k]))
        _warn_constant(func, kind, targets[k], n, value,
                       "Pearson's r is undefined and returned as NaN.")
    return _result(scores, targets, "r", return_per_target)


class _SequenceScorer:
    """A ``scorer(estimator, X, y)`` of a sequence metric of ``estimator.predict(X)``."""

    _metric = None      # the metric function, set by subclasses
    _key = None         # name of the score in per-target dicts

    def __init__(self, targets=None, per_target=False):
        self.targets = targets
        self.per_target = per_target

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__} does not support sample_weight.")
        y_pred = estimator.predict(X)
        metric = type(self)._metric
        if not self.per_target:
            return metric(y, y_pred, targets=self.targets)
        per_target = metric(y, y_pred, targets=self.targets, return_per_target=True)
        scores = {self._key: float(per_target.mean())}
        for name, value in per_target.items():
            scores[f"{self._key}_{name}"] = float(value)
        return scores

    def __repr__(self):
        args = []
        if self.targets is not None:
            args.append(f"targets={list(self.targets)!r}")
        if self.per_target:
            args.append("per_target=True")
        return f"{type(self).__name__}({', '.join(args)})"


class SequenceUARScorer(_SequenceScorer):
    """Scorer computing `sequence_uar` of ``estimator.predict(X)`` against ``y``.

    A callable ``scorer(estimator, X, y)`` for the ``scoring`` argument of
    :func:`~sklearn.model_selection.cross_validate`, :class:`GridSearchCV` and friends,
    where ``y`` holds one label sequence per recording (which sklearn's ``make_scorer``
    does not expect). Use the ready-made instances `uar_scorer` and
    `uar_per_target_scorer`.

    Parameters
    ----------
    targets : sequence of str, optional
        Target names, for the per-target keys.
    per_target : bool, default=False
        If False, the scorer returns the mean UAR over targets (a float). If True, it
        returns a dict ``{"uar": mean, "uar_<target>": ...}``, which ``cross_validate``
        reports as ``test_uar``, ``test_uar_<target>``, ... (for ``GridSearchCV`` set
        ``refit="uar"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.metrics import SequenceUARScorer, uar_scorer
    >>> class Echo:                       # an "estimator" predicting its input
    ...     def predict(self, X):
    ...         return X
    >>> y = [np.array([0, 1, 1]), np.array([1, 0])]
    >>> uar_scorer(Echo(), y, y)
    1.0
    >>> SequenceUARScorer(targets=["AU17"], per_target=True)(Echo(), y, y)
    {'uar': 1.0, 'uar_AU17': 1.0}
    """

    _metric = staticmethod(sequence_uar)
    _key = "uar"


class SequenceCCCScorer(_SequenceScorer):
    """Scorer computing `sequence_ccc` of ``estimator.predict(X)`` against ``y``.

    As `SequenceUARScorer`, for intensity regressors: the ``scoring`` argument of
    :func:`~sklearn.model_selection.cross_validate` and :class:`GridSearchCV` (higher is
    better). Use the ready-made instances `ccc_scorer` and `ccc_per_target_scorer`.

    Parameters
    ----------
    targets : sequence of str, optional
        Target names, for the per-target keys.
    per_target : bool, default=False
        If True, return ``{"ccc": mean, "ccc_<target>": ...}`` (``cross_validate``
        reports ``test_ccc``, ``test_ccc_<target>``...; for ``GridSearchCV`` set
        ``refit="ccc"``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.metrics import SequenceCCCScorer
    >>> class Echo:
    ...     def predict(self, X):
    ...         return X
    >>> y = [np.array([0.0, 1.5, 3.0]), np.array([1.0, 0.5])]
    >>> SequenceCCCScorer(targets=["AU12"], per_target=True)(Echo(), y, y)
    {'ccc': 1.0, 'ccc_AU12': 1.0}
    """

    _metric = staticmethod(sequence_ccc)
    _key = "ccc"


class SequencePearsonScorer(_SequenceScorer):
    """Scorer computing `sequence_pearson` of ``estimator.predict(X)`` against ``y``.

    As `SequenceCCCScorer`, with Pearson's r; the per-target dict has the keys ``"r"``
    and ``"r_<target>"``. Use `pearson_scorer` and `pearson_per_target_scorer`.

    Parameters
    ----------
    targets : sequence of str, optional
    per_target : bool, default=False
    """

    _metric = staticmethod(sequence_pearson)
    _key = "r"


#: Scorer for ``scoring=``: mean UAR over the real frames of the test recordings.
uar_scorer = SequenceUARScorer()
#: Scorer for ``scoring=`` returning ``{"uar": mean, "uar_0": ..., "uar_1": ...}``.
uar_per_target_scorer = SequenceUARScorer(per_target=True)
#: Scorer for ``scoring=``: mean CCC over targets, on the real frames of the test recordings.
ccc_scorer = SequenceCCCScorer()
#: Scorer for ``scoring=`` returning ``{"ccc": mean, "ccc_0": ..., "ccc_1": ...}``.
ccc_per_target_scorer = SequenceCCCScorer(per_target=True)
#: Scorer for ``scoring=``: mean Pearson r over targets, on the real test frames.
pearson_scorer = SequencePearsonScorer()
#: Scorer for ``scoring=`` returning ``{"r": mean, "r_0": ..., "r_1": ...}``.
pearson_per_target_scorer = SequencePearsonScorer(per_target=True)
