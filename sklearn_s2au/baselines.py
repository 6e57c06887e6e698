"""Frame-by-frame baselines: any scikit-learn classifier or regressor with the sequence
models' I/O."""

import warnings

import numpy as np
import pandas as pd
from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, clone,
                          is_classifier, is_regressor)
from sklearn.dummy import DummyClassifier
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._sequence import SequenceBatch
from ._utils import object_array
from ._validation import (check_clip, check_frame_table, check_int, check_labels,
                          check_positive_int, sequence_input_tags)
from .metrics import sequence_ccc, sequence_uar

__all__ = ["FrameClassifier", "FrameRegressor"]


def _estimator_has(method):
    def check(self):
        return hasattr(self.estimator, method)
    return check


def _stack_context(features, context):
    """Concatenate recordings and stack each frame with its ``context`` neighbours.

    Returns ``(n_frames_total, n_features * (2 * context + 1))`` float32: the features of
    frames t - context, ..., t + context, in that order; neighbours beyond either end of a
    recording repeat its first/last frame, so no frame borrows from another recording.
    """
    flat = np.concatenate(features, axis=0)
    if context == 0:
        return flat
    n_frames = np.array([len(f) for f in features], dtype=np.int64)
    start = np.repeat(np.concatenate([[0], np.cumsum(n_frames)[:-1]]), n_frames)
    last = np.repeat(n_frames - 1, n_frames)
    t = np.arange(len(flat), dtype=np.int64) - start          # frame within its recording
    blocks = [flat[start + np.clip(t + d, 0, last)] for d in range(-context, context + 1)]
    return np.concatenate(blocks, axis=1)


def _stratified_subsample(y, max_frames, rng):
    """Positions of ``max_frames`` frames drawn without replacement, per class in
    proportion to its frequency (largest remainders), at least one frame per class."""
    classes, code = np.unique(y, return_inverse=True)
    counts = np.bincount(code)
    share = max_frames * counts / counts.sum()
    quota = np.maximum(np.floor(share).astype(np.int64), 1)
    deficit = max_frames - quota.sum()
    if deficit > 0:
        quota[np.argsort(-(share - np.floor(share)), kind="stable")[:deficit]] += 1
    elif deficit < 0:
        quota[np.argmax(quota)] += deficit
    quota = np.minimum(quota, counts)
    chosen = [rng.permutation(np.flatnonzero(code == j))[:q] for j, q in enumerate(quota)]
    return np.sort(np.concatenate(chosen))


def _frames_to_recordings(flat, n_frames):
    """Frame-level outputs ``(n_frames_total, ...)`` to an object array of recordings."""
    return object_array(np.split(flat, np.cumsum(n_frames)[:-1]))


def _non_finite_attributes(estimator):
    """Names of the fitted float array attributes (``coef_``...) holding inf or NaN."""
    if hasattr(estimator, "steps"):                     # a Pipeline: its final step
        estimator = estimator.steps[-1][1]
    bad = []
    for name in ("coef_", "intercept_", "dual_coef_", "coefs_", "intercepts_"):
        value = getattr(estimator, name, None)
        arrays = value if isinstance(value, list) else [value]
        for array in arrays:
            if (isinstance(array, np.ndarray) and np.issubdtype(array.dtype, np.floating)
                    and not np.isfinite(array).all()):
                bad.append(name)
                break
    return bad


class _FrameEstimator(BaseEstimator):
    """What the frame-wise baselines share: frames in, one output per real frame out."""

    _step = "FrameEstimator"          # how errors name the estimator
    _kind = "estimator"

    def _frames(self, X):
        """Per-recording ``(n_frames_i, n_features)`` arrays and the recordings' index."""
        if isinstance(X, SequenceBatch):
            features = [np.ascontiguousarray(f, dtype=np.float32) for f in X.unpad(X.X)]
            return features, X.index
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{self._step} expects a frame table (pandas DataFrame with "
                            f"a 'features' column, e.g. from SpeakerNormaliser) or a "
                            f"SequenceBatch (from SequencePadder); got {type(X).__name__}.")
        features, _ = check_frame_table(X, self.speaker_col, step=self._step,
                                        require_speaker=False)
        return features, X.index

    def _design(self, X):
        check_is_fitted(self, "estimators_")
        features, _ = self._frames(X)
        if features[0].shape[1] != self.n_features_in_:
            raise ValueError(f"{self._step}: the frames have {features[0].shape[1]} "
                             f"features but the {self._kind} was fitted on "
                             f"{self.n_features_in_}; use the same feature set.")
        n_frames = np.array([len(f) for f in features], dtype=np.int64)
        return _stack_context(features, int(self.context)), n_frames

    def _per_recording(self, columns, n_frames):
        flat = np.stack(columns, axis=1) if self.outputs_2d_ else columns[0]
        return _frames_to_recordings(flat, n_frames)

    def _check_common_params(self):
        check_int(self.context, "context", 0, f"{self._step}: ",
                  explain=" (frames on each side)")

    def _warn_non_finite(self, est, k):
        bad = _non_finite_attributes(est)
        if bad:
            where = f"target {k}" if self.outputs_2d_ else "the target"
            warnings.warn(
                f"{self._step}: the fitted {type(est).__name__} of {where} has "
                f"non-finite values in {bad}; its training diverged and its predictions "
                f"are meaningless. Lower its learning rate or step size, or scale the "
                f"features (SpeakerNormaliser).", RuntimeWarning, stacklevel=3)


class FrameClassifier(ClassifierMixin, _FrameEstimator):
    """Apply any scikit-learn classifier frame by frame, with the sequence models' I/O.

    The baseline of Ringeval et al. (2015), an SVM on single frames, as a drop-in
    replacement for the sequence classifiers: it takes the same inputs (a frame table
    from `SpeakerNormaliser`, or a `SequenceBatch` from `SequencePadder`, whose padding is
    dropped) and the same per-recording labels, and returns one prediction per real frame
    per recording in input order. Every real frame of every training recording is a
    training sample; optionally each frame is stacked with its ``context`` neighbours on
    either side.

    With several targets (2-D label arrays ``(n_frames_i, n_targets)``) one clone of
    ``estimator`` is fitted per target, on the same frames.

    Parameters
    ----------
    estimator : classifier
        Unfitted scikit-learn classifier, cloned for every target, e.g.
        ``SVC(class_weight="balanced")``.
    context : int, default=0
        Frames of context on each side: frame t is described by the features of frames
        t - context, ..., t + context, concatenated. Neighbours past either end of a
        recording repeat its first or last frame; frames of other recordings are never
        used.
    speaker_col : str, default="speaker"
        Speaker column of a frame table. Speakers are not used for training; the column
        is only validated (no missing values) when present.
    max_frames : int or None, default=None
        If set and the training data hold more frames, fit on a random subsample of
        ``max_frames`` frames (per target), drawn per class in proportion to the class
        frequencies with at least one frame of each class. Kernel SVMs scale
        quadratically or worse with the number of samples, so this bounds their training
        time; None uses every frame.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling of ``max_frames``. It is not passed on to ``estimator``;
        set the estimator's own ``random_state`` for that.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted clones, one per target. A target whose training labels hold a single
        class gets a constant predictor (:class:`~sklearn.dummy.DummyClassifier`) and a
        warning instead, so that the fold does not crash: it predicts that class for
        every frame (UAR 0.5 on test data with both classes).
    estimator_ : estimator
        ``estimators_[0]``; only set for 1-D labels (a single target).
    classes_ : ndarray or list of ndarray
        Classes seen per target: an array for 1-D labels, a list of arrays for 2-D.
    n_outputs_ : int
        Number of targets.
    outputs_2d_ : bool
        Whether the labels were 2-D; predictions then are ``(n_frames_i, n_outputs_)``.
    n_features_in_ : int
        Features per frame, before context stacking.

    See Also
    --------
    sklearn_s2au.metrics.sequence_uar : The evaluation metric (also used by `score`).

    References
    ----------
    F. Ringeval, E. Marchi, M. Mehu, K. Scherer and B. Schuller, "Face reading from
    speech: predicting facial action units from audio cues", Interspeech 2015.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.svm import SVC
    >>> from sklearn_s2au.baselines import FrameClassifier
    >>> rng = np.random.RandomState(0)
    >>> feats = [rng.randn(n, 3).astype(np.float32) for n in (20, 30, 25)]
    >>> X = pd.DataFrame({"speaker": ["a", "b", "c"], "features": feats})
    >>> y = [(f[:, 0] > 0).astype(int) for f in feats]
    >>> clf = FrameClassifier(SVC(class_weight="balanced"), context=1).fit(X, y)
    >>> [p.shape for p in clf.predict(X)]
    [(20,), (30,), (25,)]
    >>> clf.score(X, y) > 0.9
    True
    """

    _step = "FrameClassifier"
    _kind = "classifier"

    def __init__(self, estimator, context=0, speaker_col="speaker", max_frames=None,
                 random_state=None):
        self.estimator = estimator
        self.context = context
        self.speaker_col = speaker_col
        self.max_frames = max_frames
        self.random_state = random_state

    def _check_params(self):
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict")):
            raise TypeError(f"FrameClassifier: estimator must be a scikit-learn classifier "
                            f"with fit and predict, got {self.estimator!r}.")
        if not is_classifier(self.estimator):
            raise TypeError(f"FrameClassifier: estimator must be a classifier (0/1 labels "
                            f"per frame), got the {type(self.estimator).__name__} "
                            f"{get_tags(self.estimator).estimator_type or 'estimator'}; "
                            f"use e.g. SVC, LinearSVC or LogisticRegression.")
        self._check_common_params()
        check_int(self.max_frames, "max_frames", 2, "FrameClassifier: ", allow_none=True,
                  explain=" (room for one frame of each class)")

    def fit(self, X, y):
        """Fit one clone of ``estimator`` per target on the real frames.

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table (``features`` column of ``(n_frames_i, n_features)`` arrays) or the
            padded batch of `SequencePadder`.
        y : sequence of array-like
            One 0/1 label array per recording, ``(n_frames_i,)`` or
            ``(n_frames_i, n_targets)``, exactly as many frames as the recording.

        Returns
        -------
        self : FrameClassifier
        """
        self._check_params()
        if y is None:
            raise ValueError("FrameClassifier requires y to be passed, but the target y is "
                             "None: give one 0/1 label array per recording.")
        features, index = self._frames(X)
        n_frames = [len(f) for f in features]
        labels = check_labels(y, n_frames, index=index, step="FrameClassifier")
        flat_y = np.concatenate(labels, axis=0).astype(np.int64)
        self.outputs_2d_ = flat_y.ndim == 2
        if not self.outputs_2d_:
            flat_y = flat_y[:, None]
        design = _stack_context(features, int(self.context))
        rng = check_random_state(self.random_state)
        self.estimators_ = []
        for k in range(flat_y.shape[1]):
            target = flat_y[:, k]
            rows = slice(None)
            if self.max_frames is not None and len(target) > self.max_frames:
                rows = _stratified_subsample(target, int(self.max_frames), rng)
            classes = np.unique(target[rows])
            if len(classes) == 1:
                where = f"target {k}" if self.outputs_2d_ else "the target"
                warnings.warn(
                    f"FrameClassifier: the training labels of {where} hold a single class "
                    f"({classes[0].item()}) in all {len(target)} frames; fitting a constant "
                    f"predictor for it instead of {type(self.estimator).__name__}.",
                    UserWarning, stacklevel=2)
                est = DummyClassifier(strategy="constant", constant=classes[0])
            else:
                est = clone(self.estimator)
            self.estimators_.append(est.fit(design[rows], target[rows]))
            self._warn_non_finite(est, k)
        self.n_outputs_ = flat_y.shape[1]
        self.n_features_in_ = features[0].shape[1]
        self.classes_ = ([e.classes_ for e in self.estimators_] if self.outputs_2d_
                         else self.estimators_[0].classes_)
        if not self.outputs_2d_:
            self.estimator_ = self.estimators_[0]
        return self

    def predict(self, X):
        """Predict the label of every real frame.

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table or padded batch, as in `fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_recordings,), dtype=object
            One int array per recording, ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``,
            in input order.
        """
        design, n_frames = self._design(X)
        return self._per_recording([e.predict(design) for e in self.estimators_], n_frames)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Probability of the positive class (label 1) for every real frame.

        Only available when ``estimator`` has ``predict_proba`` (for ``SVC``, set
        ``probability=True``). A constant target (single training class) gets 1.0 or 0.0.

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table or padded batch, as in `fit`.

        Returns
        -------
        proba : ndarray of shape (n_recordings,), dtype=object
            One float array per recording, ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``.
        """
        design, n_frames = self._design(X)
        columns = []
        for est in self.estimators_:
            proba = est.predict_proba(design)
            positive = np.flatnonzero(est.classes_ == 1)
            columns.append(proba[:, positive[0]] if len(positive)
                           else np.zeros(len(design)))
        return self._per_recording(columns, n_frames)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision score of the positive class (label 1) for every real frame.

        Only available when ``estimator`` has ``decision_function``. A constant target
        (single training class) gets +1.0 when that class is 1, -1.0 when it is 0.

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table or padded batch, as in `fit`.

        Returns
        -------
        scores : ndarray of shape (n_recordings,), dtype=object
            One float array per recording, ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``.
        """
        design, n_frames = self._design(X)
        columns = []
        for est in self.estimators_:
            if isinstance(est, DummyClassifier):
                sign = 1.0 if est.classes_[0] == 1 else -1.0
                columns.append(np.full(len(design), sign))
            else:
                columns.append(np.asarray(est.decision_function(design), dtype=np.float64))
        return self._per_recording(columns, n_frames)

    def score(self, X, y):
        """UAR of the predictions over the real frames (`sequence_uar`), not accuracy.

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table or padded batch.
        y : sequence of array-like
            One label array per recording.

        Returns
        -------
        score : float
            Mean UAR over targets.
        """
        return sequence_uar(y, self.predict(X))

    def __sklearn_tags__(self):
        # input: a frame table or a SequenceBatch
        tags = sequence_input_tags(super().__sklearn_tags__())
        # labels are 0/1 per frame (check_labels); 2-D labels are several binary targets
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.multi_label = True
        return tags


class FrameRegressor(RegressorMixin, _FrameEstimator):
    """Apply any scikit-learn regressor frame by frame, with the sequence models' I/O.

    The intensity counterpart of `FrameClassifier`: an SVR on single frames (the
    regression variant of the Ringeval et al. (2015) baseline) predicting AU intensity
    (e.g. OpenFace's 0-5 ``AUxx_r``) on every real frame. It takes the same inputs (a
    frame table from `SpeakerNormaliser`, or a `SequenceBatch` from `SequencePadder`,
    whose padding is dropped) and one target array per recording
    (``corpus.intensity(aus=[...])``), and returns one float prediction per real frame
    per recording, in input order. Every real frame of every training recording is a
    training sample; optionally each frame is stacked with its ``context`` neighbours on
    either side.

    With several targets (2-D arrays ``(n_frames_i, n_targets)``, several AUs) one clone
    of ``estimator`` is fitted per target, on the same frames.

    Parameters
    ----------
    estimator : regressor
        Unfitted scikit-learn regressor, cloned for every target, e.g. ``SVR()`` or
        ``LinearSVR()``.
    context : int, default=0
        Frames of context on each side, as in `FrameClassifier`.
    speaker_col : str, default="speaker"
        Speaker column of a frame table (only validated when present).
    max_frames : int or None, default=None
        If set and the training data hold more frames, fit on a uniform random subsample
        of ``max_frames`` frames (the same frames for every target). Kernel SVRs scale
        quadratically or worse with the number of samples, so this bounds their training
        time; None uses every frame.
    clip : (float, float) or None, default=(0.0, 5.0)
        Range the predictions are clipped to (OpenFace's 0-5 intensity scale), as for
        the network regressors; this never moves a prediction away from a true value
        inside the range. None leaves them as ``estimator`` predicts them.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsampling of ``max_frames``; not passed on to ``estimator``.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted clones, one per target.
    estimator_ : estimator
        ``estimators_[0]``; only set for 1-D targets.
    n_outputs_ : int
        Number of targets.
    outputs_2d_ : bool
        Whether the targets were 2-D; predictions then are ``(n_frames_i, n_outputs_)``.
    n_features_in_ : int
        Features per frame, before context stacking.

    See Also
    --------
    FrameClassifier : The same for 0/1 labels.
    sklearn_s2au.metrics.sequence_ccc : The evaluation metric (also used by `score`).

    References
    ----------
    F. Ringeval, E. Marchi, M. Mehu, K. Scherer and B. Schuller, "Face reading from
    speech: predicting facial action units from audio cues", Interspeech 2015.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.svm import SVR
    >>> from sklearn_s2au.baselines import FrameRegressor
    >>> rng = np.random.RandomState(0)
    >>> feats = [rng.randn(n, 3).astype(np.float32) for n in (20, 30, 25)]
    >>> X = pd.DataFrame({"speaker": ["a", "b", "c"], "features": feats})
    >>> y = [np.c_[np.clip(f[:, 0] + 1, 0, 5), np.clip(f[:, 1], 0, 5)] for f in feats]
    >>> reg = FrameRegressor(SVR(), context=1).fit(X, y)
    >>> [p.shape for p in reg.predict(X)]
    [(20, 2), (30, 2), (25, 2)]
    >>> reg.score(X, y) > 0.8
    True
    """

    _step = "FrameRegressor"
    _kind = "regressor"

    def __init__(self, estimator, context=0, speaker_col="speaker", max_frames=None,
                 clip=(0.0, 5.0), random_state=None):
        self.estimator = estimator
        self.context = context
        self.speaker_col = speaker_col
        self.max_frames = max_frames
        self.clip = clip
        self.random_state = random_state

    def _check_params(self):
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict")):
            raise TypeError(f"FrameRegressor: estimator must be a scikit-learn regressor "
                            f"with fit and predict, got {self.estimator!r}.")
        if not is_regressor(self.estimator):
            kind = get_tags(self.estimator).estimator_type or "estimator"
            hint = (" For 0/1 labels use FrameClassifier instead."
                    if is_classifier(self.estimator) else "")
            raise TypeError(f"FrameRegressor: estimator must be a regressor (a real value, "
                            f"e.g. an AU intensity, per frame), got the "
                            f"{type(self.estimator).__name__} {kind}; use e.g. SVR, "
                            f"LinearSVR or Ridge.{hint}")
        self._check_common_params()
        check_positive_int(self.max_frames, "max_frames", "FrameRegressor: ", allow_none=True)
        check_clip(self.clip, "clip", "FrameRegressor: ")

    def fit(self, X, y):
        """Fit one clone of ``estimator`` per target on the real frames.

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table (``features`` column of ``(n_frames_i, n_features)`` arrays) or the
            padded batch of `SequencePadder`.
        y : sequence of array-like
            One target array per recording (e.g. ``corpus.intensity(aus=[...])``),
            ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``, exactly as many frames as the
            recording, finite values.

        Returns
        -------
        self : FrameRegressor
        """
        self._check_params()
        if y is None:
            raise ValueError("FrameRegressor requires y to be passed, but the target y is "
                             "None: give one target array (e.g. AU intensities) per "
                             "recording.")
        features, index = self._frames(X)
        n_frames = [len(f) for f in features]
        targets = check_labels(y, n_frames, index=index, step=self._step, binary=False)
        flat_y = np.concatenate(targets, axis=0).astype(np.float64)
        self.outputs_2d_ = flat_y.ndim == 2
        if not self.outputs_2d_:
            flat_y = flat_y[:, None]
        design = _stack_context(features, int(self.context))
        rows = slice(None)
        if self.max_frames is not None and len(flat_y) > self.max_frames:
            rng = check_random_state(self.random_state)
            rows = np.sort(rng.choice(len(flat_y), int(self.max_frames), replace=False))
        self.estimators_ = []
        for k in range(flat_y.shape[1]):
            est = clone(self.estimator).fit(design[rows], flat_y[rows, k])
            self.estimators_.append(est)
            self._warn_non_finite(est, k)
        self.n_outputs_ = flat_y.shape[1]
        self.n_features_in_ = features[0].shape[1]
        if not self.outputs_2d_:
            self.estimator_ = self.estimators_[0]
        return self

    def predict(self, X):
        """Predict the target of every real frame.

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table or padded batch, as in `fit`.

        Returns
        -------
        y_pred : ndarray of shape (n_recordings,), dtype=object
            One float64 array per recording, ``(n_frames_i,)`` or
            ``(n_frames_i, n_targets)``, in input order, clipped to ``clip``.
        """
        design, n_frames = self._design(X)
        columns = []
        for k, est in enumerate(self.estimators_):
            values = np.asarray(est.predict(design), dtype=np.float64).reshape(len(design))
            if self.clip is not None:
                values = np.clip(values, float(self.clip[0]), float(self.clip[1]))
            columns.append(values)
        return self._per_recording(columns, n_frames)

    def score(self, X, y):
        """CCC of the predictions over the real frames (`sequence_ccc`), not R².

        Parameters
        ----------
        X : pandas.DataFrame or SequenceBatch
            Frame table or padded batch.
        y : sequence of array-like
            One target array per recording.

        Returns
        -------
        score : float
            Mean concordance correlation coefficient over targets.
        """
        return sequence_ccc(y, self.predict(X))

    def __sklearn_tags__(self):
        tags = sequence_input_tags(super().__sklearn_tags__())
        # one real value per frame and target; 2-D targets are several AUs
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
