"""FrameClassifier and FrameRegressor: frame-by-frame sklearn estimators with the sequence
models' I/O."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, SVR

from sklearn_s2au.baselines import FrameClassifier, FrameRegressor
from sklearn_s2au.metrics import (ccc_scorer, pearson_scorer, sequence_ccc, sequence_uar,
                                  uar_per_target_scorer, uar_scorer)
from sklearn_s2au.preprocessing import SequencePadder, SpeakerNormaliser


class _Recorder(ClassifierMixin, BaseEstimator):
    """Remembers what it was trained on; predicts the sign of the first column."""

    def fit(self, X, y):
        self.X_, self.y_ = np.array(X), np.array(y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return (np.asarray(X)[:, 0] > 0).astype(int)


class _NoPredict(BaseEstimator):
    """Has fit but no predict: not a classifier."""

    def fit(self, X, y=None):
        return self


def _corpus(n_speakers=4, per_speaker=3, n_features=3, lengths=(30, 60), seed=0,
            n_targets=None):
    """Frame table whose labels follow feature 0 *after* speaker normalisation.

    Each speaker has its own offset and scale, so the raw features are not comparable
    across speakers but the speaker-normalised ones are.
    """
    rng = np.random.RandomState(seed)
    rows, labels = [], []
    for s in range(n_speakers):
        offset, scale = rng.randn(n_features) * 5, rng.uniform(0.5, 3, n_features)
        for r in range(per_speaker):
            n = rng.randint(*lengths)
            z = rng.randn(n, n_features)
            rows.append({"speaker": f"spk{s}", "features": (z * scale + offset)
                         .astype(np.float32)})
            onset = (z[:, 0] + 0.3 * rng.randn(n) > 0.5).astype(int)
            labels.append(onset if n_targets is None else
                          np.stack([onset, (z[:, 1] > 0).astype(int)], axis=1))
    X = pd.DataFrame(rows, index=[f"rec{i}" for i in range(len(rows))])
    y = np.empty(len(labels), dtype=object)
    y[:] = labels
    return X, y


def _indexed_table(lengths):
    """Features encode (recording, frame): value = 100 * recording + frame."""
    feats = [(100 * i + np.arange(n, dtype=np.float32))[:, None] for i, n in enumerate(lengths)]
    return pd.DataFrame({"speaker": ["a"] * len(lengths), "features": feats})


def test_context_stacking_replicates_edges_within_recording():
    X = _indexed_table([4, 1, 3])
    y = [np.array([0, 1, 0, 1]), np.array([1]), np.array([0, 0, 1])]
    clf = FrameClassifier(_Recorder(), context=2).fit(X, y)
    seen = clf.estimator_.X_
    assert seen.shape == (8, 5)
    expected = [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3], [1, 2, 3, 3, 3],
                [100] * 5,
                [200, 200, 200, 201, 202], [200, 200, 201, 202, 202],
                [200, 201, 202, 202, 202]]
    np.testing.assert_array_equal(seen, expected)
    np.testing.assert_array_equal(clf.estimator_.y_, np.concatenate(y))
    no_context = FrameClassifier(_Recorder()).fit(X, y).estimator_.X_
    np.testing.assert_array_equal(no_context, seen[:, [2]])


def test_predict_layout_one_value_per_real_frame_in_input_order():
    X, y = _corpus()
    clf = FrameClassifier(LogisticRegression()).fit(X, y)
    pred = clf.predict(X)
    assert pred.dtype == object and len(pred) == len(X)
    assert [p.shape for p in pred] == [f.shape[:1] for f in X["features"]]
    assert all(np.isin(p, [0, 1]).all() and p.dtype.kind == "i" for p in pred)
    reversed_pred = clf.predict(X.iloc[::-1])
    for a, b in zip(pred, reversed_pred[::-1]):
        np.testing.assert_array_equal(a, b)
    assert clf.classes_.tolist() == [0, 1] and clf.n_features_in_ == 3
    assert clf.score(X, y) == pytest.approx(sequence_uar(y, pred))


def test_sequence_batch_input_equals_frame_table_input():
    X, y = _corpus()
    Xn = SpeakerNormaliser().fit_transform(X)
    batch = SequencePadder(max_len=7).transform(Xn)     # recordings span several chunks
    svc = SVC(class_weight="balanced")
    from_table = FrameClassifier(svc, context=1).fit(Xn, y)
    from_batch = FrameClassifier(svc, context=1).fit(batch, y)
    np.testing.assert_array_equal(from_table.estimator_.support_vectors_,
                                  from_batch.estimator_.support_vectors_)
    for a, b, c in zip(from_table.predict(Xn), from_batch.predict(batch),
                       from_table.predict(batch)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_multi_target_fits_one_clone_per_target():
    X, y = _corpus(n_targets=2)
    Xn = SpeakerNormaliser().fit_transform(X)
    clf = FrameClassifier(LogisticRegression()).fit(Xn, y)
    assert len(clf.estimators_) == 2 and clf.n_outputs_ == 2 and clf.outputs_2d_
    assert not hasattr(clf, "estimator_")
    assert [c.tolist() for c in clf.classes_] == [[0, 1], [0, 1]]
    pred = clf.predict(Xn)
    assert [p.shape for p in pred] == [(len(f), 2) for f in Xn["features"]]
    # each target's clone equals a single-target fit on that column
    for k in range(2):
        single = FrameClassifier(LogisticRegression()).fit(Xn, [t[:, k] for t in y])
        for a, b in zip(pred, single.predict(Xn)):
            np.testing.assert_array_equal(a[:, k], b)
    proba = clf.predict_proba(Xn)
    assert [p.shape for p in proba] == [(len(f), 2) for f in Xn["features"]]
    assert sequence_uar(y, pred, return_per_target=True).gt(0.75).all()


def test_max_frames_subsamples_per_class_reproducibly():
    X, y = _corpus()
    flat_y = np.concatenate(list(y))
    clf = FrameClassifier(_Recorder(), max_frames=60, random_state=0).fit(X, y)
    seen_y = clf.estimator_.y_
    assert len(seen_y) == 60
    assert seen_y.mean() == pytest.approx(flat_y.mean(), abs=1 / 60)
    # the frames are real training frames, drawn without replacement
    flat_x = np.concatenate(list(X["features"]))
    rows = [np.flatnonzero((flat_x == row).all(1))[0] for row in clf.estimator_.X_]
    assert len(set(rows)) == 60
    np.testing.assert_array_equal(flat_y[rows], seen_y)
    again = FrameClassifier(_Recorder(), max_frames=60, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.estimator_.X_, clf.estimator_.X_)
    other = FrameClassifier(_Recorder(), max_frames=60, random_state=1).fit(X, y)
    assert not np.array_equal(other.estimator_.X_, clf.estimator_.X_)
    # a rare class keeps at least one frame
    rare = [np.zeros(len(t), int) for t in y]
    rare[2][5] = 1
    assert FrameClassifier(_Recorder(), max_frames=10, random_state=0).fit(X, rare) \
        .estimator_.y_.tolist().count(1) == 1
    # max_frames above the number of frames uses them all
    everything = FrameClassifier(_Recorder(), max_frames=10_000).fit(X, y)
    assert len(everything.estimator_.y_) == len(flat_y)


def test_predict_proba_and_decision_function():
    X, y = _corpus()
    Xn = SpeakerNormaliser().fit_transform(X)
    assert not hasattr(FrameClassifier(SVC()), "predict_proba")
    assert hasattr(FrameClassifier(SVC(probability=True)), "predict_proba")
    assert not hasattr(FrameClassifier(DummyClassifier()), "decision_function")
    clf = FrameClassifier(LogisticRegression(), context=1).fit(Xn, y)
    proba, scores, pred = clf.predict_proba(Xn), clf.decision_function(Xn), clf.predict(Xn)
    for p, s, c, f in zip(proba, scores, pred, Xn["features"]):
        assert p.shape == s.shape == (len(f),)
        assert ((p >= 0) & (p <= 1)).all()
        np.testing.assert_array_equal(p > 0.5, c == 1)
        np.testing.assert_array_equal(s > 0, c == 1)
        np.testing.assert_allclose(p, 1 / (1 + np.exp(-s)), rtol=1e-6)


def test_single_class_training_falls_back_to_constant_with_warning():
    X, _ = _corpus(n_speakers=2)
    y = [np.zeros(len(f), int) for f in X["features"]]
    with pytest.warns(UserWarning, match=r"labels of the target hold a single class \(0\)"):
        clf = FrameClassifier(SVC(probability=True)).fit(X, y)
    assert isinstance(clf.estimator_, DummyClassifier)
    assert all((p == 0).all() for p in clf.predict(X))
    assert all((p == 0).all() for p in clf.predict_proba(X))
    assert all((s == -1).all() for s in clf.decision_function(X))
    y2 = [np.stack([t, np.ones(len(t), int)], axis=1) for t in _corpus(n_speakers=2)[1]]
    with pytest.warns(UserWarning, match=r"target 1 hold a single class \(1\)"):
        clf2 = FrameClassifier(SVC()).fit(X, y2)
    assert isinstance(clf2.estimators_[0], SVC)
    assert all((p[:, 1] == 1).all() for p in clf2.predict(X))
    assert all((s[:, 1] == 1).all() for s in clf2.decision_function(X))


def test_errors():
    X, y = _corpus()
    with pytest.raises(ValueError, match=r"recording 'rec1' has \d+ feature frames but 3"):
        FrameClassifier(SVC()).fit(X, [y[0], np.zeros(3)] + list(y[2:]))
    with pytest.raises(ValueError, match="labels of recording 'rec0' contain"):
        FrameClassifier(SVC()).fit(X, [2 * y[0]] + list(y[1:]))
    for context in (-1, 1.5, True):
        with pytest.raises(ValueError, match="context must be an integer >= 0"):
            FrameClassifier(SVC(), context=context).fit(X, y)
    for max_frames in (1, 0, 10.0):
        with pytest.raises(ValueError, match="max_frames must be None or an integer >= 2"):
            FrameClassifier(SVC(), max_frames=max_frames).fit(X, y)
    with pytest.raises(TypeError, match="estimator must be a scikit-learn classifier"):
        FrameClassifier(_NoPredict()).fit(X, y)
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        FrameClassifier(SVC()).fit(X, None)
    with pytest.raises(TypeError, match="frame table .* or a SequenceBatch"):
        FrameClassifier(SVC()).fit(np.zeros((3, 4)), y[:3])
    clf = FrameClassifier(LogisticRegression()).fit(X, y)
    narrow = X.assign(features=[f[:, :2] for f in X["features"]])
    with pytest.raises(ValueError, match="have 2 features but the classifier was fitted on 3"):
        clf.predict(narrow)


def test_clone_params_pickle():
    X, y = _corpus(n_speakers=2)
    clf = FrameClassifier(SVC(C=2.0, class_weight="balanced"), context=1)
    assert clf.get_params()["estimator__C"] == 2.0
    clf.set_params(estimator__C=0.5, context=2)
    cloned = clone(clf)
    assert cloned.estimator.C == 0.5 and cloned.context == 2
    assert cloned.estimator is not clf.estimator
    clf.fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    for a, b in zip(again.predict(X), clf.predict(X)):
        np.testing.assert_array_equal(a, b)


def test_notebook_loso_svm_pipeline():
    """The DESIGN.md call: SVM baseline under leave-one-speaker-out with the UAR scorer."""
    X, y = _corpus()
    pipe = Pipeline([("norm", SpeakerNormaliser()),
                     ("clf", FrameClassifier(SVC(class_weight="balanced")))])
    res = cross_validate(pipe, X, y, groups=X["speaker"], cv=LeaveOneGroupOut(),
                         scoring=uar_scorer, n_jobs=2)
    assert len(res["test_score"]) == 4
    assert (res["test_score"] > 0.75).all()
    # one speaker's fold computed by hand gives the same score
    test = (X["speaker"] == "spk0").to_numpy()
    manual = clone(pipe).fit(X[~test], y[~test])
    assert res["test_score"][0] == pytest.approx(sequence_uar(y[test], manual.predict(X[test])))
    # without speaker normalisation the speakers' offsets hide the signal
    raw = Pipeline([("clf", FrameClassifier(SVC(class_weight="balanced")))])
    res_raw = cross_validate(raw, X, list(y), groups=X["speaker"], cv=LeaveOneGroupOut(),
                             scoring=uar_scorer)
    assert res_raw["test_score"].mean() < res["test_score"].mean()


def test_grid_search_and_padded_pipeline():
    X, y = _corpus(n_targets=2)
    pipe = Pipeline([("norm", SpeakerNormaliser()), ("pad", SequencePadder(max_len=10)),
                     ("clf", FrameClassifier(LogisticRegression()))])
    gs = GridSearchCV(pipe, {"clf__context": [0, 1], "pad__max_len": [5, 100]},
                      cv=LeaveOneGroupOut(), scoring=uar_per_target_scorer, refit="uar")
    gs.fit(X, y, groups=X["speaker"])
    assert gs.best_score_ > 0.75
    assert {"mean_test_uar", "mean_test_uar_0", "mean_test_uar_1"} <= set(gs.cv_results_)
    # padding length does not change a frame classifier's results
    by_len = pd.DataFrame(gs.cv_results_).groupby("param_clf__context")["mean_test_uar"]
    assert by_len.nunique().eq(1).all()
    pred = gs.predict(X)
    assert [p.shape for p in pred] == [(len(f), 2) for f in X["features"]]


# --------------------------------------------------------------------------------------
# FrameRegressor
# --------------------------------------------------------------------------------------

class _RecordingRegressor(RegressorMixin, BaseEstimator):
    """Remembers what it was trained on; predicts 10 times the first column."""

    def fit(self, X, y):
        self.X_, self.y_ = np.array(X), np.array(y)
        return self

    def predict(self, X):
        return 10.0 * np.asarray(X)[:, 0]


def _intensity_corpus(n_speakers=4, per_speaker=3, seed=0):
    """Frame table with two intensity targets (0-5) following the normalised features."""
    X, _ = _corpus(n_speakers=n_speakers, per_speaker=per_speaker, seed=seed)
    norm = SpeakerNormaliser().fit_transform(X)
    y = np.empty(len(X), dtype=object)
    y[:] = [np.c_[np.clip(1.5 * f[:, 0] + 1.0, 0, 5), np.clip(f[:, 1] - f[:, 2], 0, 5)]
            for f in norm["features"]]
    return X, y


def test_frame_regressor_layout_values_and_one_clone_per_target():
    X, y = _intensity_corpus()
    norm = SpeakerNormaliser().fit_transform(X)
    reg = FrameRegressor(Ridge(alpha=1.0), clip=(0.0, 5.0)).fit(norm, y)
    pred = reg.predict(norm)
    assert pred.dtype == object and len(pred) == len(X)
    assert [p.shape for p in pred] == [(len(f), 2) for f in X["features"]]
    assert len(reg.estimators_) == 2 and reg.n_outputs_ == 2 and reg.outputs_2d_
    # target k's clone is a Ridge fitted on the concatenated frames and column k
    frames = np.concatenate(list(norm["features"]))
    flat_y = np.concatenate(list(y))
    for k in range(2):
        alone = Ridge(alpha=1.0).fit(frames, flat_y[:, k])
        np.testing.assert_allclose(reg.estimators_[k].coef_, alone.coef_, rtol=1e-5)
        expected = np.clip(alone.predict(frames), 0.0, 5.0)
        np.testing.assert_allclose(np.concatenate(pred)[:, k], expected, rtol=1e-5,
                                   atol=1e-6)
    # 1-D targets: 1-D predictions and estimator_
    one = FrameRegressor(Ridge()).fit(norm, [t[:, 0] for t in y])
    assert one.predict(norm)[0].shape == (len(X["features"].iloc[0]),)
    assert one.estimator_ is one.estimators_[0]
    # a SequenceBatch gives the same frames, so the same predictions
    batch = SequencePadder(max_len=7).fit_transform(norm)
    from_batch = FrameRegressor(Ridge(alpha=1.0)).fit(batch, y).predict(batch)
    for a, b in zip(from_batch, pred):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_frame_regressor_context_clip_and_max_frames():
    X = _indexed_table([4, 1, 3])
    y = [np.arange(4.0), np.array([5.0]), np.array([0.0, 0.5, 1.0])]
    reg = FrameRegressor(_RecordingRegressor(), context=1, clip=None).fit(X, y)
    seen = reg.estimator_.X_
    np.testing.assert_array_equal(seen[:5], [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3],
                                             [100, 100, 100]])
    np.testing.assert_array_equal(reg.estimator_.y_, np.concatenate(y))
    # 10 x feature 0 lies far outside 0..5; clipping keeps predictions in the clip range
    assert np.concatenate(reg.predict(X)).max() == 2010.0
    clipped = FrameRegressor(_RecordingRegressor(), context=1).fit(X, y).predict(X)
    assert np.concatenate(clipped).max() == 5.0 and np.concatenate(clipped).min() == 0.0
    narrow = FrameRegressor(_RecordingRegressor(), clip=(1, 2)).fit(X, y).predict(X)
    assert np.concatenate(narrow).max() == 2.0 and np.concatenate(narrow).min() == 1.0
    # max_frames: a repeatable uniform subsample, the same frames for every target
    X, y = _intensity_corpus()
    sub = FrameRegressor(_RecordingRegressor(), max_frames=50, random_state=0).fit(X, y)
    assert [len(e.X_) for e in sub.estimators_] == [50, 50]
    np.testing.assert_array_equal(sub.estimators_[0].X_, sub.estimators_[1].X_)
    again = FrameRegressor(_RecordingRegressor(), max_frames=50, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.estimators_[0].X_, sub.estimators_[0].X_)


def test_frame_regressor_errors():
    X, y = _intensity_corpus()
    with pytest.raises(TypeError, match=r"estimator must be a regressor .* got the SVC "
                                        r"classifier; use e.g. SVR.*use FrameClassifier"):
        FrameRegressor(SVC()).fit(X, y)
    with pytest.raises(TypeError, match="estimator must be a scikit-learn regressor"):
        FrameRegressor(_NoPredict()).fit(X, y)
    with pytest.raises(TypeError, match=r"estimator must be a classifier .* got the SVR "
                                        r"regressor"):
        FrameClassifier(SVR()).fit(X, [(t[:, 0] > 1).astype(int) for t in y])
    with pytest.raises(ValueError, match=r"recording 'rec1' has \d+ feature frames but 3"):
        FrameRegressor(SVR()).fit(X, [y[0], np.zeros(3)] + list(y[2:]))
    bad = [t.copy() for t in y]
    bad[2][4, 1] = np.nan
    with pytest.raises(ValueError, match=r"targets of recording 'rec2' hold a non-finite "
                                         r"value .* at frame 4"):
        FrameRegressor(SVR()).fit(X, bad)
    with pytest.raises(ValueError, match="requires y to be passed"):
        FrameRegressor(SVR()).fit(X, None)
    for context in (-1, 1.5):
        with pytest.raises(ValueError, match="FrameRegressor: context must be an integer"):
            FrameRegressor(SVR(), context=context).fit(X, y)
    with pytest.raises(ValueError, match="max_frames must be None or a positive integer"):
        FrameRegressor(SVR(), max_frames=0).fit(X, y)
    for clip in (True, (5, 0), 5):
        with pytest.raises(ValueError, match="clip must be None or a range"):
            FrameRegressor(SVR(), clip=clip).fit(X, y)
    with pytest.raises(TypeError, match="FrameRegressor expects a frame table"):
        FrameRegressor(SVR()).fit(np.zeros((3, 4)), y[:3])
    reg = FrameRegressor(Ridge()).fit(X, y)
    narrow = X.assign(features=[f[:, :2] for f in X["features"]])
    with pytest.raises(ValueError, match="have 2 features but the regressor was fitted on 3"):
        reg.predict(narrow)


def test_frame_regressor_loso_with_ccc_scorer_and_grid_search():
    X, y = _intensity_corpus()
    pipe = Pipeline([("norm", SpeakerNormaliser()), ("reg", FrameRegressor(SVR()))])
    res = cross_validate(pipe, X, y, groups=X["speaker"], cv=LeaveOneGroupOut(),
                         scoring={"ccc": ccc_scorer, "r": pearson_scorer})
    assert (res["test_ccc"] > 0.8).all()
    assert (res["test_r"] >= res["test_ccc"] - 1e-12).all()
    test = (X["speaker"] == "spk1").to_numpy()
    manual = clone(pipe).fit(X[~test], y[~test])
    assert res["test_ccc"][1] == pytest.approx(sequence_ccc(y[test], manual.predict(X[test])))
    assert manual.score(X[test], y[test]) == pytest.approx(res["test_ccc"][1])
    gs = GridSearchCV(pipe, {"reg__estimator__C": [1e-3, 1.0]}, cv=LeaveOneGroupOut(),
                      scoring=ccc_scorer).fit(X, y, groups=X["speaker"])
    assert gs.best_params_ == {"reg__estimator__C": 1.0}
    again = pickle.loads(pickle.dumps(gs.best_estimator_))
    for a, b in zip(again.predict(X), gs.predict(X)):
        np.testing.assert_array_equal(a, b)
