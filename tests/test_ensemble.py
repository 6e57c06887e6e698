"""Seed ensembles: members, seeds, averaging, and the scikit-learn API around them."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils import get_tags

from sklearn_s2au._sequence import SequenceBatch
from sklearn_s2au.baselines import FrameClassifier
from sklearn_s2au.classifiers import EncInterAttDecClassifier, StackedIntraAttClassifier
from sklearn_s2au.ensemble import SeedEnsembleClassifier, SeedEnsembleRegressor
from sklearn_s2au.metrics import sequence_uar, uar_scorer
from sklearn_s2au.preprocessing import SequencePadder
from sklearn_s2au.regressors import EncInterAttDecRegressor, StackedIntraAttRegressor

TINY = dict(module__hidden_size=4, module__intra_att_units=4, batch_size=8, max_epochs=3,
            verbose=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data(n_recordings=12, n_features=4, n_targets=2, seed=0, binary=True, raw=False):
    """Sequences whose targets follow the features (as in test_classifiers)."""
    rng = np.random.RandomState(seed)
    feats = [rng.randn(n, n_features).astype(np.float32)
             for n in rng.randint(8, 30, size=n_recordings)]
    speakers = [f"s{i % 3}" for i in range(n_recordings)]
    smooth = [np.stack([np.convolve(f[:, j], np.ones(3), "same") for j in range(n_targets)],
                       axis=1) for f in feats]
    y = ([(s > 0).astype(int) for s in smooth] if binary
         else [np.clip(s + 1.0, 0, 5).astype(np.float32) for s in smooth])
    if raw:
        return feats, y, np.array(speakers)
    return SequenceBatch.from_features(feats, speakers, 16), y, np.array(speakers)


def test_members_get_consecutive_seeds_and_the_mean_of_their_probabilities():
    X, y, _ = _data()
    ens = SeedEnsembleClassifier(StackedIntraAttClassifier(**TINY), n_seeds=3,
                                 random_state=5).fit(X, y)
    assert ens.random_states_ == [5, 6, 7]
    assert [m.random_state for m in ens.estimators_] == [5, 6, 7]
    assert len({id(m) for m in ens.estimators_}) == 3
    # each member is exactly a single fit with its seed
    single = clone(StackedIntraAttClassifier(**TINY)).set_params(random_state=6).fit(X, y)
    proba = ens.predict_proba(X)
    one = single.predict_proba(X)
    members = [m.predict_proba(X) for m in ens.estimators_]
    for i in range(len(proba)):
        np.testing.assert_allclose(members[1][i], one[i], rtol=1e-6)
        np.testing.assert_allclose(proba[i], np.mean([m[i] for m in members], axis=0))
        assert proba[i].shape == (len(y[i]), 2)
    # the members differ (else the ensemble would be one model three times)
    assert not np.allclose(np.concatenate(members[0]), np.concatenate(members[1]))
    pred = ens.predict(X)
    for p, q in zip(pred, proba):
        np.testing.assert_array_equal(p, (q > 0.5).astype(np.int64))
        assert p.dtype == np.int64
    assert ens.score(X, y) == pytest.approx(sequence_uar(y, pred))
    assert ens.n_features_in_ == 4 and list(ens.classes_) == [0, 1]


def test_threshold_cuts_the_averaged_probability():
    X, y, _ = _data()
    ens = SeedEnsembleClassifier(StackedIntraAttClassifier(**TINY), n_seeds=2,
                                 random_state=0, threshold=0.3).fit(X, y)
    proba = np.concatenate(list(ens.predict_proba(X)))
    pred = np.concatenate(list(ens.predict(X)))
    np.testing.assert_array_equal(pred, (proba > 0.3).astype(int))


def test_same_random_state_repeats_and_n_jobs_gives_the_same_members():
    X, y, _ = _data(n_targets=1)
    y = [t[:, 0] for t in y]
    est = EncInterAttDecClassifier(**TINY)
    a = SeedEnsembleClassifier(est, n_seeds=2, random_state=1).fit(X, y).predict_proba(X)
    b = SeedEnsembleClassifier(est, n_seeds=2, random_state=1, n_jobs=2).fit(X, y)
    for p, q in zip(a, b.predict_proba(X)):
        assert p.ndim == 1
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)


def test_default_estimators():
    assert isinstance(SeedEnsembleClassifier()._check_params(), EncInterAttDecClassifier)
    assert isinstance(SeedEnsembleRegressor()._check_params(), EncInterAttDecRegressor)


def test_regressor_averages_predictions():
    X, y, _ = _data(binary=False)
    ens = SeedEnsembleRegressor(StackedIntraAttRegressor(**TINY), n_seeds=2,
                                random_state=0).fit(X, y)
    members = [m.predict(X) for m in ens.estimators_]
    pred = ens.predict(X)
    for i, p in enumerate(pred):
        assert p.dtype == np.float32 and p.shape == (len(y[i]), 2)
        np.testing.assert_allclose(p, (members[0][i] + members[1][i]) / 2, rtol=1e-5)
    assert np.isfinite(ens.score(X, y))


def test_in_a_pipeline_under_leave_one_speaker_out_and_grid_search():
    feats, y, speakers = _data(n_recordings=9, raw=True)
    frames = pd.DataFrame({"speaker": speakers, "features": feats},
                          index=[f"rec{i}" for i in range(len(y))])
    pipe = Pipeline([("pad", SequencePadder(max_len=16)),
                     ("net", SeedEnsembleClassifier(StackedIntraAttClassifier(**TINY),
                                                    n_seeds=2, random_state=0))])
    scores = cross_validate(pipe, frames, y, groups=speakers, cv=LeaveOneGroupOut(),
                            scoring=uar_scorer, error_score="raise", return_estimator=True)
    assert len(scores["test_score"]) == 3
    assert [len(est[-1].estimators_) for est in scores["estimator"]] == [2, 2, 2]
    assert all(0.0 <= s <= 1.0 for s in scores["test_score"])
    search = GridSearchCV(pipe, {"net__estimator__lr": [1e-3, 1e-2], "net__n_seeds": [1, 2]},
                          cv=LeaveOneGroupOut(), scoring=uar_scorer, error_score="raise")
    search.fit(frames, y, groups=speakers)
    assert set(search.best_params_) == {"net__estimator__lr", "net__n_seeds"}
    assert len(search.best_estimator_[-1].estimators_) == search.best_params_["net__n_seeds"]


def test_params_and_tags():
    ens = SeedEnsembleClassifier(StackedIntraAttClassifier(max_epochs=5), n_seeds=2)
    params = ens.get_params()
    assert params["estimator__max_epochs"] == 5 and params["n_seeds"] == 2
    ens.set_params(estimator__max_epochs=7)
    assert ens.estimator.max_epochs == 7
    assert is_classifier(ens) and is_regressor(SeedEnsembleRegressor())
    tags = get_tags(ens)
    assert not tags.input_tags.two_d_array and tags.target_tags.required
    assert tags.classifier_tags.multi_label


@pytest.mark.parametrize("params, match", [
    (dict(n_seeds=0), "n_seeds must be an int >= 1"),
    (dict(n_seeds=2.0), "n_seeds must be an int >= 1"),
    (dict(n_seeds=True), "n_seeds must be an int >= 1"),
    (dict(threshold=1.0), "threshold must be a probability in \\(0, 1\\), got 1.0"),
    (dict(threshold="auto"), "threshold must be a probability"),
    (dict(random_state=-1), "random_state must be >= 0"),
])
def test_bad_parameters_name_the_parameter(params, match):
    X, y, _ = _data()
    with pytest.raises(ValueError, match=match):
        SeedEnsembleClassifier(StackedIntraAttClassifier(**TINY), **params).fit(X, y)


def test_estimator_without_random_state_or_proba_is_refused():
    X, y, _ = _data()

    class NoSeed(FrameClassifier):
        def get_params(self, deep=True):
            params = super().get_params(deep)
            params.pop("random_state", None)
            return params

    with pytest.raises(TypeError, match="random_state parameter"):
        SeedEnsembleClassifier(NoSeed(SVC())).fit(X, y)
    with pytest.raises(TypeError, match="has no predict_proba"):
        SeedEnsembleClassifier(EncInterAttDecRegressor(**TINY)).fit(X, y)


def test_predict_before_fit_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    X, _, _ = _data()
    with pytest.raises(NotFittedError):
        SeedEnsembleClassifier(StackedIntraAttClassifier(**TINY)).predict(X)


def test_pickled_ensemble_predicts_the_same():
    import pickle

    X, y, _ = _data()
    ens = SeedEnsembleClassifier(StackedIntraAttClassifier(**TINY), n_seeds=2,
                                 random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(ens))
    for p, q in zip(ens.predict_proba(X), again.predict_proba(X)):
        np.testing.assert_array_equal(p, q)
