"""Seed ensembles of the sequence networks: several seeds trained, their outputs averaged.

A network's held-out score depends on its seed (weights, dropout and the validation
speaker of early stopping): on the generated corpora single seeds of one setting differ
by up to 3 UAR points, and the average of three seeds' frame probabilities scores 1.0 to
1.6 points above the seeds' mean (``docs/architectures.rst``, "Seed ensembles";
``benchmarks/bench_seed_ensemble.py``). `SeedEnsembleClassifier` and
`SeedEnsembleRegressor` make that a last pipeline step::

    Pipeline([("lld", OpenSmileLLD()), ("norm", SpeakerNormaliser()),
              ("pad", SequencePadder()),
              ("net", SeedEnsembleClassifier(EncInterAttDecClassifier(), n_seeds=3))])

Each member is a clone of ``estimator`` with its own ``random_state``; they train one
after the other (or in ``n_jobs`` worker processes), so an ensemble of ``n`` costs ``n``
fits. Members are independent: nothing of one member's training reaches another, and
each draws its own validation speaker(s) from the training speakers only.
"""

import numbers

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import (BaseEstimator, ClassifierMixin, MetaEstimatorMixin,
                          RegressorMixin, clone)
from sklearn.utils.validation import check_is_fitted

from ._utils import _MAX_SEED, seed_from

__all__ = ["SeedEnsembleClassifier", "SeedEnsembleRegressor"]


def _fit_member(estimator, X, y, fit_params):
    return estimator.fit(X, y, **fit_params)


class _SeedEnsemble(MetaEstimatorMixin, BaseEstimator):
    """Common code: members, seeds, fitting and the averaging of per-recording outputs."""

    #: the members' method whose per-recording outputs are averaged
    _averaged = None

    def __init__(self, estimator=None, *, n_seeds=3, random_state=None, n_jobs=None):
        self.estimator = estimator
        self.n_seeds = n_seeds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _default_estimator(self):
        raise NotImplementedError

    def _check_params(self):
        name = type(self).__name__
        if (not isinstance(self.n_seeds, numbers.Integral) or isinstance(self.n_seeds, bool)
                or self.n_seeds < 1):
            raise ValueError(f"{name}: n_seeds must be an int >= 1 (the number of members), "
                             f"got {self.n_seeds!r}.")
        estimator = self._default_estimator() if self.estimator is None else self.estimator
        if not hasattr(estimator, "get_params") or "random_state" not in estimator.get_params():
            raise TypeError(f"{name}: estimator must be a scikit-learn estimator with a "
                            f"random_state parameter (the members differ by it), got "
                            f"{type(estimator).__name__}.")
        if not hasattr(estimator, self._averaged):
            raise TypeError(f"{name}: estimator {type(estimator).__name__} has no "
                            f"{self._averaged}(), whose outputs the ensemble averages.")
        return estimator

    def _member_seeds(self):
        """``random_state`` of each member: an int ``r`` gives ``r, r + 1, ...``."""
        first = seed_from(self.random_state)
        return [(first + i) % _MAX_SEED for i in range(self.n_seeds)]

    def fit(self, X, y, **fit_params):
        """Fit ``n_seeds`` clones of ``estimator``, each with its own ``random_state``.

        Parameters
        ----------
        X : SequenceBatch
            As the estimator takes it (from ``SequencePadder``).
        y : list of arrays
            One label sequence per recording, as for the estimator.
        **fit_params
            Passed to every member's ``fit``.

        Returns
        -------
        self
        """
        estimator = self._check_params()
        self.random_states_ = self._member_seeds()
        members = [clone(estimator).set_params(random_state=seed)
                   for seed in self.random_states_]
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(member, X, y, fit_params) for member in members)
        first = self.estimators_[0]
        for attr in ("n_features_in_", "n_targets_"):
            if hasattr(first, attr):
                setattr(self, attr, getattr(first, attr))
        return self

    def _average(self, X):
        """The members' per-recording outputs for ``X``, averaged frame by frame."""
        check_is_fitted(self, "estimators_")
        outputs = [getattr(member, self._averaged)(X) for member in self.estimators_]
        n_recordings = len(outputs[0])
        mean = np.empty(n_recordings, dtype=object)
        for i in range(n_recordings):
            mean[i] = np.mean([np.asarray(out[i], dtype=np.float64) for out in outputs],
                              axis=0)
        return mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.target_tags.required = True
        return tags


class SeedEnsembleClassifier(ClassifierMixin, _SeedEnsemble):
    """Average of the frame probabilities of several seeds of one sequence classifier.

    Parameters
    ----------
    estimator : estimator, default=None
        The classifier to train with each seed: `EncInterAttDecClassifier` (None gives
        its defaults), `StackedIntraAttClassifier` or any classifier with a
        ``random_state`` parameter and ``predict_proba`` returning one array per
        recording. Its ``threshold`` is not used; the ensemble's is.
    n_seeds : int, default=3
        Number of members (fits).
    random_state : int, numpy Generator, RandomState or None, default=None
        Member ``i`` gets ``random_state + i`` (an int); a generator or None draws the
        first seed. Set it for repeatable results.
    threshold : float, default=0.5
        A frame is predicted active when the averaged probability exceeds it.
    n_jobs : int or None, default=None
        Members trained in parallel (joblib processes); None trains them one after the
        other. Each member's own ``n_threads`` still applies.

    Attributes
    ----------
    estimators_ : list of fitted classifiers
        Each a fitted network as it would be alone (``history_``, ``predict_attention``,
        ``plotting.plot_learning_curves(ens.estimators_[0])``).
    random_states_ : list of int
        The members' ``random_state``.
    classes_ : ndarray, ``[0, 1]``
    n_features_in_ : int
        Features per frame (when the members record it).

    Examples
    --------
    >>> from sklearn_s2au.ensemble import SeedEnsembleClassifier
    >>> from sklearn_s2au.classifiers import StackedIntraAttClassifier
    >>> ens = SeedEnsembleClassifier(StackedIntraAttClassifier(max_epochs=5), n_seeds=2,
    ...                              random_state=0)
    >>> ens.get_params()["estimator__max_epochs"]
    5
    """

    _averaged = "predict_proba"

    def __init__(self, estimator=None, *, n_seeds=3, random_state=None, threshold=0.5,
                 n_jobs=None):
        super().__init__(estimator, n_seeds=n_seeds, random_state=random_state,
                         n_jobs=n_jobs)
        self.threshold = threshold

    def _default_estimator(self):
        from .classifiers import EncInterAttDecClassifier

        return EncInterAttDecClassifier()

    def _check_params(self):
        if (not isinstance(self.threshold, numbers.Real) or isinstance(self.threshold, bool)
                or not 0.0 < float(self.threshold) < 1.0):
            raise ValueError(f"{type(self).__name__}: threshold must be a probability in "
                             f"(0, 1), got {self.threshold!r}.")
        return super()._check_params()

    def fit(self, X, y, **fit_params):
        super().fit(X, y, **fit_params)
        self.classes_ = np.array([0, 1])
        return self

    fit.__doc__ = _SeedEnsemble.fit.__doc__

    def predict_proba(self, X):
        """Members' probabilities of the positive class, averaged, per real frame.

        Returns
        -------
        proba : object ndarray of n_recordings arrays
            ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``, float64, in input order.
        """
        return self._average(X)

    def predict(self, X):
        """0/1 per real frame (averaged probability > ``threshold``), one array per recording."""
        proba = self.predict_proba(X)
        out = np.empty(len(proba), dtype=object)
        for i, p in enumerate(proba):
            out[i] = (p > float(self.threshold)).astype(np.int64)
        return out

    def score(self, X, y, sample_weight=None):
        """UAR over all real frames (averaged over targets), as ``uar_scorer``."""
        from .metrics import sequence_uar

        return sequence_uar(y, self.predict(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.classifier_tags.multi_label = True
        return tags


class SeedEnsembleRegressor(RegressorMixin, _SeedEnsemble):
    """Average of the frame predictions of several seeds of one sequence regressor.

    Parameters
    ----------
    estimator : estimator, default=None
        The regressor to train with each seed: `EncInterAttDecRegressor` (None gives its
        defaults), `StackedIntraAttRegressor` or any regressor with a ``random_state``
        parameter and ``predict`` returning one array per recording.
    n_seeds : int, default=3
    random_state : int, numpy Generator, RandomState or None, default=None
        Member ``i`` gets ``random_state + i`` (an int).
    n_jobs : int or None, default=None

    Attributes
    ----------
    estimators_ : list of fitted regressors
    random_states_ : list of int
    n_features_in_ : int
    """

    _averaged = "predict"

    def _default_estimator(self):
        from .regressors import EncInterAttDecRegressor

        return EncInterAttDecRegressor()

    def predict(self, X):
        """Members' predictions averaged per real frame, one float32 array per recording."""
        mean = self._average(X)
        for i, m in enumerate(mean):
            mean[i] = m.astype(np.float32)
        return mean

    def score(self, X, y, sample_weight=None):
        """CCC over all real frames (averaged over targets), as ``ccc_scorer``; not R²."""
        from .metrics import sequence_ccc

        return sequence_ccc(y, self.predict(X))
