"""sequence_uar and the UAR scorers."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import balanced_accuracy_score

from sklearn_s2au.metrics import (SequenceUARScorer, sequence_uar, uar_per_target_scorer,
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
