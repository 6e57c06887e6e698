"""UAR over the real frames of sequences, and the scorers for cross-validation.

The paper's metric is the unweighted average recall (UAR, balanced accuracy; chance is
50 % for two classes) over the frames of all recordings of a test fold, computed on the
real length of each recording (never on padding).
"""

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning

from ._sequence import SequenceBatch

__all__ = ["sequence_uar", "SequenceUARScorer", "uar_scorer", "uar_per_target_scorer"]


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


def _where(index, i):
    return repr(index[i]) if index is not None else str(i)


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
    true_seqs, index = _as_sequences(y_true, "y_true")
    pred_seqs, _ = _as_sequences(y_pred, "y_pred")
    if len(true_seqs) != len(pred_seqs):
        raise ValueError(f"sequence_uar: y_true has {len(true_seqs)} recordings but y_pred "
                         f"has {len(pred_seqs)}; give one prediction array per recording.")
    if len(true_seqs) == 0:
        raise ValueError("sequence_uar: no recordings given.")
    for i, (t, p) in enumerate(zip(true_seqs, pred_seqs)):
        if t.ndim not in (1, 2):
            raise ValueError(f"sequence_uar: labels of recording {_where(index, i)} have "
                             f"shape {t.shape}; expected (n_frames,) or (n_frames, "
                             f"n_targets).")
        if t.shape != p.shape:
            raise ValueError(
                f"sequence_uar: recording {_where(index, i)} has true labels of shape "
                f"{t.shape} but predictions of shape {p.shape}; every real frame needs "
                f"exactly one prediction (check that predict returns per-recording arrays "
                f"of full length, in input order).")
        if t.ndim != true_seqs[0].ndim or t.shape[1:] != true_seqs[0].shape[1:]:
            raise ValueError(f"sequence_uar: recording {_where(index, i)} has labels of "
                             f"shape {t.shape} but the first recording has "
                             f"{true_seqs[0].shape}; all recordings need the same targets.")
    flat_true = np.concatenate(true_seqs, axis=0)
    flat_pred = np.concatenate(pred_seqs, axis=0)
    if flat_true.shape[0] == 0:
        raise ValueError("sequence_uar: the recordings hold no frames.")
    if flat_pred.dtype.kind == "f" and not np.array_equal(flat_pred, np.round(flat_pred)):
        odd = flat_pred[flat_pred != np.round(flat_pred)][0]
        raise ValueError(f"sequence_uar: y_pred holds non-label values such as {odd:.3g}; "
                         f"pass predicted labels (the output of predict), not "
                         f"probabilities or scores.")
    if flat_true.ndim == 1:
        flat_true, flat_pred = flat_true[:, None], flat_pred[:, None]
    n_targets = flat_true.shape[1]
    if targets is None:
        targets = list(range(n_targets))
    else:
        targets = list(targets)
        if len(targets) != n_targets:
            raise ValueError(f"sequence_uar: {len(targets)} target names given for "
                             f"{n_targets} targets.")
    scores = _uar_columns(flat_true, flat_pred, targets)
    if return_per_target:
        return pd.Series(scores, index=pd.Index(targets, name=None), name="uar")
    return float(scores.mean())


class SequenceUARScorer:
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

    def __init__(self, targets=None, per_target=False):
        self.targets = targets
        self.per_target = per_target

    def __call__(self, estimator, X, y, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("SequenceUARScorer does not support sample_weight.")
        y_pred = estimator.predict(X)
        if not self.per_target:
            return sequence_uar(y, y_pred, targets=self.targets)
        per_target = sequence_uar(y, y_pred, targets=self.targets, return_per_target=True)
        scores = {"uar": float(per_target.mean())}
        for name, value in per_target.items():
            scores[f"uar_{name}"] = float(value)
        return scores

    def __repr__(self):
        args = []
        if self.targets is not None:
            args.append(f"targets={list(self.targets)!r}")
        if self.per_target:
            args.append("per_target=True")
        return f"SequenceUARScorer({', '.join(args)})"


#: Scorer for ``scoring=``: mean UAR over the real frames of the test recordings.
uar_scorer = SequenceUARScorer()
#: Scorer for ``scoring=`` returning ``{"uar": mean, "uar_0": ..., "uar_1": ...}``.
uar_per_target_scorer = SequenceUARScorer(per_target=True)

