"""sequence_uar, sequence_ccc, sequence_pearson and their scorers."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline

from sklearn_s2au.metrics import (SequenceCCCScorer, SequencePearsonScorer,
                                  SequenceUARScorer, ccc_per_target_scorer, ccc_scorer,
                                  pearson_per_target_scorer, pearson_scorer, sequence_ccc,
                                  sequence_pearson, sequence_uar, uar_per_target_scorer,
                                  uar_scorer)
from sklearn_s2au.preprocessing import SequenceBatch


def _sequences(lengths, n_targets=None, p=0.3, seed=0):
    rng = np.random.RandomState(seed)
    shape = (lambda n: (n,)) if n_targets is None else (lambda n: (n, n_targets))
    return [(rng.rand(*shape(n)) < p).astype(int) for n in lengths]


@settings(max_examples=50, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=5),
       seed=st.integers(0, 10_000))
def test_equals_balanced_accuracy_on_concatenated_frames(lengths, seed):
    y_true = _sequences(lengths, seed=seed)
    y_pred = _sequences(lengths, p=0.5, seed=seed + 1)
    flat_true, flat_pred = np.concatenate(y_true), np.concatenate(y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # single-class draws are checked elsewhere
        expected = balanced_accuracy_score(flat_true, flat_pred)
        assert sequence_uar(y_true, y_pred) == pytest.approx(expected, abs=1e-12)


def test_known_value_and_input_forms():
    y_true = [np.array([0, 0, 1]), np.array([1, 1, 0, 0])]
    y_pred = [np.array([0, 1, 1]), np.array([1, 0, 0, 0])]
    expected = (3 / 4 + 2 / 3) / 2
    assert sequence_uar(y_true, y_pred) == pytest.approx(expected)
    as_object = np.empty(2, dtype=object)
    as_object[:] = y_pred
    assert sequence_uar(pd.Series(y_true), as_object) == pytest.approx(expected)
    assert sequence_uar(tuple(y_true), [p.astype(float) for p in y_pred]) == \
        pytest.approx(expected)
    # plain form: the already concatenated frames of one sequence
    assert sequence_uar(np.concatenate(y_true), np.concatenate(y_pred)) == \
        pytest.approx(expected)
    assert sequence_uar([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.75)
    # a numeric 2-D array holds equal-length recordings row by row, as check_labels reads it
    rows_true, rows_pred = np.array([[0, 0, 1], [1, 1, 0]]), np.array([[0, 1, 1], [1, 0, 0]])
    assert sequence_uar(rows_true, list(rows_pred)) == pytest.approx(
        balanced_accuracy_score(rows_true.ravel(), rows_pred.ravel()))
    assert isinstance(sequence_uar(y_true, y_pred), float)


def test_multi_target_mean_and_per_target():
    lengths = [12, 30, 7]
    y_true = _sequences(lengths, n_targets=3, seed=1)
    y_pred = _sequences(lengths, n_targets=3, p=0.5, seed=2)
    flat_true, flat_pred = np.concatenate(y_true), np.concatenate(y_pred)
    per = [balanced_accuracy_score(flat_true[:, k], flat_pred[:, k]) for k in range(3)]
    assert sequence_uar(y_true, y_pred) == pytest.approx(np.mean(per))
    series = sequence_uar(y_true, y_pred, targets=["onset", "apex", "offset"],
                          return_per_target=True)
    assert isinstance(series, pd.Series)
    assert series.index.tolist() == ["onset", "apex", "offset"]
    np.testing.assert_allclose(series.to_numpy(), per)
    default = sequence_uar(y_true, y_pred, return_per_target=True)
    assert default.index.tolist() == [0, 1, 2]
    one = sequence_uar(y_true[0][:, 0], y_pred[0][:, 0], targets=["AU17"],
                       return_per_target=True)
    assert one.index.tolist() == ["AU17"] and len(one) == 1


def test_single_class_truth_is_recall_of_present_class_with_warning():
    # a test speaker who never shows an onset: 10 negative frames, 3 predicted positive
    y_true = [np.zeros(6, int), np.zeros(4, int)]
    y_pred = [np.array([0, 1, 0, 0, 1, 0]), np.array([0, 0, 1, 0])]
    with pytest.warns(UndefinedMetricWarning, match=r"target 'AU17_onset' hold a single "
                                                    r"class \(0\) in all 10 frames"):
        score = sequence_uar(y_true, y_pred, targets=["AU17_onset"])
    assert score == pytest.approx(0.7)          # recall of class 0: 7 of 10 frames
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert score == pytest.approx(balanced_accuracy_score(np.concatenate(y_true),
                                                              np.concatenate(y_pred)))
    with pytest.warns(UndefinedMetricWarning):
        assert sequence_uar(y_true, [np.zeros(6), np.zeros(4)]) == 1.0
    # multi-target: only the single-class target warns, the others are ordinary
    y2_true = [np.stack([np.zeros(4), [0, 1, 0, 1]], axis=1)]
    y2_pred = [np.stack([[1, 1, 0, 0], [0, 1, 0, 1]], axis=1)]
    with pytest.warns(UndefinedMetricWarning, match="target 0 hold a single class") as rec:
        per = sequence_uar(y2_true, y2_pred, return_per_target=True)
    assert len(rec) == 1
    assert per.tolist() == [0.5, 1.0] and not per.isna().any()


def test_errors_name_the_recording():
    y_true = pd.Series([np.zeros(3), np.zeros(5)], index=["take_a", "take_b"])
    with pytest.raises(ValueError, match=r"recording 'take_b' has true labels of shape "
                                         r"\(5,\) but predictions of shape \(4,\)"):
        sequence_uar(y_true, [np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match=r"recording 1 has true labels of shape \(5, 2\)"):
        sequence_uar([np.zeros((3, 2)), np.zeros((5, 2))], [np.zeros((3, 2)), np.zeros(5)])
    with pytest.raises(ValueError, match="y_true has 2 recordings but y_pred has 1"):
        sequence_uar(y_true, [np.zeros(3)])
    with pytest.raises(ValueError, match=r"recording 1 has labels of shape \(2, 2\) but the "
                                         r"first recording has \(3,\)"):
        sequence_uar([np.zeros(3), np.zeros((2, 2))], [np.zeros(3), np.zeros((2, 2))])
    with pytest.raises(ValueError, match="3 target names given for 2 targets"):
        sequence_uar([np.zeros((3, 2))], [np.zeros((3, 2))], targets=["a", "b", "c"])
    with pytest.raises(ValueError, match="no recordings"):
        sequence_uar([], [])
    with pytest.raises(ValueError, match="hold no frames"):
        sequence_uar([np.zeros(0)], [np.zeros(0)])
    with pytest.raises(ValueError, match="non-label values such as 0.7; pass predicted"):
        sequence_uar([np.array([0, 1])], [np.array([0.7, 0.2])])
    batch = SequenceBatch.from_features([np.ones((3, 2), np.float32)], ["a"], 2)
    with pytest.raises(TypeError, match="y_pred is a SequenceBatch"):
        sequence_uar([np.zeros(3)], batch)


class _Echo:
    """Predicts its input: lets a test choose the predictions the scorer sees."""

    def predict(self, X):
        return X


def test_scorers():
    y_true = _sequences([10, 20], n_targets=2, seed=3)
    y_pred = _sequences([10, 20], n_targets=2, p=0.5, seed=4)
    expected = sequence_uar(y_true, y_pred, return_per_target=True)
    assert uar_scorer(_Echo(), y_pred, y_true) == pytest.approx(expected.mean())
    scores = uar_per_target_scorer(_Echo(), y_pred, y_true)
    assert list(scores) == ["uar", "uar_0", "uar_1"]
    assert scores["uar"] == pytest.approx(expected.mean())
    assert [scores["uar_0"], scores["uar_1"]] == pytest.approx(expected.tolist())
    named = SequenceUARScorer(targets=["onset", "apex"], per_target=True)
    assert list(named(_Echo(), y_pred, y_true)) == ["uar", "uar_onset", "uar_apex"]
    assert repr(uar_scorer) == "SequenceUARScorer()"
    assert repr(named) == "SequenceUARScorer(targets=['onset', 'apex'], per_target=True)"
    with pytest.raises(ValueError, match="sample_weight"):
        uar_scorer(_Echo(), y_pred, y_true, sample_weight=np.ones(2))


# --------------------------------------------------------------------------------------
# CCC and Pearson r for intensities
# --------------------------------------------------------------------------------------

def _hand_ccc(t, p):
    """Lin's CCC written out with population moments, one target."""
    t, p = np.asarray(t, float), np.asarray(p, float)
    n = len(t)
    mt, mp = sum(t) / n, sum(p) / n
    vt = sum((a - mt) ** 2 for a in t) / n
    vp = sum((b - mp) ** 2 for b in p) / n
    cov = sum((a - mt) * (b - mp) for a, b in zip(t, p)) / n
    return 2 * cov / (vt + vp + (mt - mp) ** 2)


def test_ccc_known_values():
    y_true = [np.array([0.0, 1.0, 2.0]), np.array([3.0, 4.0])]
    assert sequence_ccc(y_true, y_true) == 1.0
    # shifted by 1: var 2 each, so 2 * 2 / (2 + 2 + 1)
    assert sequence_ccc(y_true, [t + 1 for t in y_true]) == pytest.approx(0.8)
    # halved: cov 1, var_p 0.5, mean difference 1: 2 / (2 + 0.5 + 1)
    assert sequence_ccc(y_true, [t / 2 for t in y_true]) == pytest.approx(2 / 3.5)
    # mirrored about the mean: perfect disagreement
    assert sequence_ccc(y_true, [4.0 - t for t in y_true]) == pytest.approx(-1.0)
    # Pearson r ignores shift and scale, CCC does not
    assert sequence_pearson(y_true, [t / 2 + 3 for t in y_true]) == pytest.approx(1.0)
    assert isinstance(sequence_ccc(y_true, y_true), float)


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(2, 30), min_size=1, max_size=4),
       seed=st.integers(0, 10_000))
def test_ccc_and_r_equal_hand_computation_on_concatenated_frames(lengths, seed):
    from scipy.stats import pearsonr

    rng = np.random.RandomState(seed)
    y_true = [5 * rng.rand(n, 2) for n in lengths]
    y_pred = [t + rng.randn(*t.shape) for t in y_true]
    flat_t, flat_p = np.concatenate(y_true), np.concatenate(y_pred)
    ccc = sequence_ccc(y_true, y_pred, targets=["AU12", "AU17"], return_per_target=True)
    r = sequence_pearson(y_true, y_pred, return_per_target=True)
    for k, name in enumerate(["AU12", "AU17"]):
        assert ccc[name] == pytest.approx(_hand_ccc(flat_t[:, k], flat_p[:, k]), abs=1e-10)
        assert r[k] == pytest.approx(pearsonr(flat_t[:, k], flat_p[:, k])[0], abs=1e-10)
    assert sequence_ccc(y_true, y_pred) == pytest.approx(ccc.mean())
    assert sequence_pearson(y_true, y_pred) == pytest.approx(r.mean())
    # the CCC never exceeds |r| (it is r times a bias-correction factor in [0, 1])
    assert (np.abs(ccc.to_numpy()) <= np.abs(r.to_numpy()) + 1e-12).all()


def test_ccc_is_over_frames_of_all_recordings_not_a_mean_of_recordings():
    # each recording alone is perfectly concordant after removing its mean; together not
    y_true = [np.array([0.0, 1.0]), np.array([4.0, 5.0])]
    y_pred = [np.array([2.0, 3.0]), np.array([2.0, 3.0])]
    flat_t, flat_p = np.concatenate(y_true), np.concatenate(y_pred)
    assert sequence_ccc(y_true, y_pred) == pytest.approx(_hand_ccc(flat_t, flat_p))
    assert sequence_ccc(y_true, y_pred) < 0.5
    # input forms as for sequence_uar: Series, object array, concatenated 1-D
    as_object = np.empty(2, dtype=object)
    as_object[:] = y_pred
    expected = _hand_ccc(flat_t, flat_p)
    assert sequence_ccc(pd.Series(y_true), as_object) == pytest.approx(expected)
    assert sequence_ccc(flat_t, flat_p) == pytest.approx(expected)
    assert sequence_ccc(flat_t.astype(int), flat_p) == pytest.approx(expected)


def test_constant_truth_warns_and_ccc_is_zero_r_nan():
    y_true = [np.zeros(5), np.zeros(3)]           # a speaker who never shows the AU
    y_pred = [np.linspace(0, 1, 5), np.zeros(3)]
    with pytest.warns(UndefinedMetricWarning, match=r"true values of target 'AU10' are "
                                                    r"constant \(0\) over all 8 frames"):
        assert sequence_ccc(y_true, y_pred, targets=["AU10"]) == 0.0
    with pytest.warns(UndefinedMetricWarning, match="returned as NaN"):
        assert np.isnan(sequence_ccc(y_true, [np.zeros(5), np.zeros(3)]))
    with pytest.warns(UndefinedMetricWarning, match="r is undefined"):
        assert np.isnan(sequence_pearson(y_true, y_pred))
    # a constant prediction: CCC is defined (0 covariance), r is not
    varying = [np.array([0.0, 1.0, 2.0])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sequence_ccc(varying, [np.full(3, 1.0)]) == 0.0
    with pytest.warns(UndefinedMetricWarning, match="predictions of target 0 are constant"):
        per = sequence_pearson(varying, [np.full(3, 1.0)], return_per_target=True)
    assert np.isnan(per[0])
    # only the constant target warns; a float mean of equal values is still constant
    y2_true = [np.stack([np.full(3, 0.1), [0.0, 1.0, 2.0]], axis=1)]
    y2_pred = [np.stack([[0.1, 0.2, 0.3], [0.0, 1.0, 2.0]], axis=1)]
    with pytest.warns(UndefinedMetricWarning, match="target 0") as rec:
        per = sequence_ccc(y2_true, y2_pred, return_per_target=True)
    assert len(rec) == 1 and per.tolist() == [0.0, 1.0]


def test_ccc_and_r_errors_name_the_recording():
    y_true = pd.Series([np.zeros(3), np.ones(5)], index=["take_a", "take_b"])
    for metric, name in [(sequence_ccc, "sequence_ccc"), (sequence_pearson,
                                                          "sequence_pearson")]:
        with pytest.raises(ValueError, match=rf"{name}: recording 'take_b' has true values "
                                             rf"of shape \(5,\) but predictions of shape "
                                             rf"\(4,\)"):
            metric(y_true, [np.zeros(3), np.zeros(4)])
        with pytest.raises(ValueError, match="y_true has 2 recordings but y_pred has 1"):
            metric(y_true, [np.zeros(3)])
        with pytest.raises(ValueError, match="no recordings"):
            metric([], [])
        with pytest.raises(ValueError, match="hold no frames"):
            metric([np.zeros(0)], [np.zeros(0)])
        with pytest.raises(ValueError, match="3 target names given for 2 targets"):
            metric([np.ones((3, 2))], [np.ones((3, 2))], targets=["a", "b", "c"])
        with pytest.raises(ValueError, match=r"y_pred holds a non-finite value \(nan\) at "
                                             r"frame 1 .* target 0"):
            metric([np.array([0.0, 1.0])], [np.array([0.0, np.nan])])
        with pytest.raises(ValueError, match="y_true holds values of dtype <U1"):
            metric([np.array(["a", "b"])], [np.array([0.0, 1.0])])
        batch = SequenceBatch.from_features([np.ones((3, 2), np.float32)], ["a"], 2)
        with pytest.raises(TypeError, match="y_pred is a SequenceBatch"):
            metric([np.zeros(3)], batch)


def test_ccc_and_pearson_scorers():
    rng = np.random.RandomState(0)
    y_true = [5 * rng.rand(n, 2) for n in (10, 20)]
    y_pred = [t + rng.randn(*t.shape) for t in y_true]
    ccc = sequence_ccc(y_true, y_pred, return_per_target=True)
    r = sequence_pearson(y_true, y_pred, return_per_target=True)
    assert ccc_scorer(_Echo(), y_pred, y_true) == pytest.approx(ccc.mean())
    assert pearson_scorer(_Echo(), y_pred, y_true) == pytest.approx(r.mean())
    scores = ccc_per_target_scorer(_Echo(), y_pred, y_true)
    assert list(scores) == ["ccc", "ccc_0", "ccc_1"]
    assert [scores["ccc_0"], scores["ccc_1"]] == pytest.approx(ccc.tolist())
    named = SequencePearsonScorer(targets=["AU12", "AU17"], per_target=True)
    assert list(named(_Echo(), y_pred, y_true)) == ["r", "r_AU12", "r_AU17"]
    assert list(pearson_per_target_scorer(_Echo(), y_pred, y_true)) == ["r", "r_0", "r_1"]
    assert repr(ccc_scorer) == "SequenceCCCScorer()"
    assert repr(SequenceCCCScorer(targets=["AU12"], per_target=True)) == \
        "SequenceCCCScorer(targets=['AU12'], per_target=True)"
    with pytest.raises(ValueError, match="SequenceCCCScorer does not support sample_weight"):
        ccc_scorer(_Echo(), y_pred, y_true, sample_weight=np.ones(2))


class _ScaledFeature(RegressorMixin, BaseEstimator):
    """Predicts ``scale * feature 0`` per frame of per-recording feature arrays."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def fit(self, X, y):
        self.fitted_ = True
        return self

    def predict(self, X):
        out = np.empty(len(X), dtype=object)
        out[:] = [self.scale * np.asarray(x)[:, 0] for x in X]
        return out


def test_ccc_scorer_in_cross_validate_and_grid_search():
    rng = np.random.RandomState(0)
    X = np.empty(6, dtype=object)
    X[:] = [rng.rand(n, 2) for n in (8, 9, 10, 11, 12, 13)]
    y = np.empty(6, dtype=object)
    y[:] = [2.0 * x[:, 0] for x in X]                 # the truth is 2 * feature 0
    groups = ["a", "a", "b", "b", "c", "c"]
    pipe = Pipeline([("reg", _ScaledFeature())])
    res = cross_validate(pipe, X, y, groups=groups, cv=LeaveOneGroupOut(),
                         scoring={"ccc": ccc_scorer, "r": pearson_scorer})
    for k, (_, test) in enumerate(LeaveOneGroupOut().split(X, y, groups)):
        assert res["test_ccc"][k] == pytest.approx(
            sequence_ccc(list(y[test]), [x[:, 0] for x in X[test]]))
    assert res["test_r"] == pytest.approx(1.0)        # r cannot tell the scale
    assert (res["test_ccc"] < 0.9).all()
    gs = GridSearchCV(pipe, {"reg__scale": [0.5, 1.0, 2.0, 4.0]}, cv=LeaveOneGroupOut(),
                      scoring=ccc_scorer).fit(X, y, groups=groups)
    assert gs.best_params_ == {"reg__scale": 2.0}
    assert gs.best_score_ == pytest.approx(1.0)
