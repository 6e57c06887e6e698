"""scikit-learn's common estimator checks for the transformers and FrameClassifier.

These estimators take a *frame table* (a DataFrame, one row per recording, with a
``features`` column of per-recording ``(n_frames, n_features)`` arrays) or a
``SequenceBatch``, and labels as one sequence per recording. Their tags say so honestly
(``input_tags.two_d_array = False``; sklearn's tags have no field for DataFrame input), and
sklearn then skips every check that needs data: only ``check_estimator_cloneable`` runs
(`test_sklearn_compatible`).

To still run the API checks that do not depend on the input format (repr, cloning,
get/set_params, nothing set in ``__init__``, NotFittedError before fit, mixin order,
default-constructible parameters, ...), `test_sklearn_api_as_if_2d` re-runs all checks on
test-only subclasses that *claim* 2-D array input. Every check that then fails is listed
in `expected_failed_checks` with the reason, and the xfail marks are strict, so the list
is exact: a check that starts passing (or a new check that fails) breaks this test.
"""

from unittest import SkipTest

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (_check_name, estimator_checks_generator,
                                            parametrize_with_checks)

from sklearn_s2au.baselines import FrameClassifier
from sklearn_s2au.preprocessing import SequencePadder, SpeakerNormaliser

_FRAME_TABLE = ("passes a 2-D numpy array as X; the estimator takes a frame table "
                "(DataFrame of per-recording (n_frames, n_features) arrays) and rejects "
                "anything else with a TypeError saying so")

# Checks every estimator here fails for the input format alone.
_COMMON = {
    **dict.fromkeys([
        "check_fit_score_takes_y", "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
        "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_estimators_dtypes", "check_complex_data", "check_dtype_object",
        "check_pipeline_consistency", "check_estimators_pickle",
        "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
        "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature",
        "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
        "check_n_features_in", "check_fit1d", "check_fit2d_predict1d"], _FRAME_TABLE),
    "check_positive_only_tag_during_fit": _FRAME_TABLE + " (values of any sign are "
                                          "accepted in a frame table)",
    "check_estimators_empty_data_messages": "expects a ValueError for an empty 2-D array, "
        "which is not a frame table and gets a TypeError; an empty frame table raises a "
        "ValueError (tested in test_preprocessing)",
    "check_estimators_nan_inf": "expects the NaN/inf ValueError for a 2-D array, which gets "
        "the not-a-frame-table TypeError first; non-finite frames in a frame table raise a "
        "ValueError naming the recording (tested in test_preprocessing)",
    **dict.fromkeys(["check_estimator_sparse_tag", "check_estimator_sparse_array",
                     "check_estimator_sparse_matrix"],
                    "sparse input is rejected with the not-a-frame-table TypeError, whose "
                    "message does not mention sparsity as the check requires"),
    "check_array_api_input": "array-API inputs are 2-D arrays, not frame tables (the check "
                             "is skipped unless SCIPY_ARRAY_API=1)",
}

_TRANSFORMER = {
    **dict.fromkeys(["check_transformer_data_not_an_array", "check_transformer_general",
                     "check_transformer_preserve_dtypes",
                     "check_transformers_unfitted_stateless"],
                    _FRAME_TABLE + "; the output is a frame table or a SequenceBatch, not "
                    "an array"),
}

_CLASSIFIER = {
    **dict.fromkeys([
        "check_classifier_data_not_an_array", "check_classifiers_classes",
        "check_decision_proba_consistency", "check_supervised_y_2d",
        "check_classifiers_multilabel_representation_invariance",
        "check_classifiers_multilabel_output_format_predict",
        "check_classifiers_multilabel_output_format_predict_proba",
        "check_classifiers_multilabel_output_format_decision_function"],
        _FRAME_TABLE + "; labels and predictions are one array per recording (object "
        "ndarray), not (n_samples,) or (n_samples, n_outputs) arrays"),
    "check_classifiers_one_label": "trains on a 2-D array; on a frame table, single-class "
        "training falls back to a constant predictor with a warning (tested in "
        "test_baselines)",
    "check_classifiers_train": "expects a ValueError for mismatched X/y arrays, but 2-D X "
        "gets the not-a-frame-table TypeError first; mismatched per-recording labels raise "
        "a ValueError naming the recording (tested in test_baselines)",
    **dict.fromkeys(["check_classifiers_regression_target", "check_supervised_y_no_nan",
                     "check_classifier_not_supporting_multiclass"],
                    "X is rejected before y is looked at; per-recording labels that are not "
                    "0/1 (continuous, NaN/inf, several classes) raise a ValueError naming "
                    "the recording (tested in test_baselines)"),
}


def expected_failed_checks(estimator):
    """Checks each estimator fails when run on 2-D arrays, and why."""
    failed = dict(_COMMON)
    if isinstance(estimator, FrameClassifier):
        failed.update(_CLASSIFIER)
    else:
        failed.update(_TRANSFORMER)
    return failed


def _as_if_2d(self):
    tags = type(self).__mro__[1].__sklearn_tags__(self)
    tags.input_tags.two_d_array = True
    return tags


class _SpeakerNormaliserAs2D(SpeakerNormaliser):
    __sklearn_tags__ = _as_if_2d


class _SequencePadderAs2D(SequencePadder):
    __sklearn_tags__ = _as_if_2d


class _FrameClassifierAs2D(FrameClassifier):
    __sklearn_tags__ = _as_if_2d


ESTIMATORS = [SpeakerNormaliser(), SequencePadder(max_len=100),
              FrameClassifier(SVC(class_weight="balanced"))]


def _run(estimator, check):
    """Run a check; an expected failure is re-raised without sklearn's deep traceback,
    which pytest would otherwise spend a quarter of a second formatting per xfail."""
    if _check_name(check) not in expected_failed_checks(estimator):
        check(estimator)
        return
    try:
        check(estimator)
    except SkipTest:
        raise
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}") from None


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks,
                         xfail_strict=True)
def test_sklearn_compatible(estimator, check):
    _run(estimator, check)


@parametrize_with_checks([_SpeakerNormaliserAs2D(), _SequencePadderAs2D(max_len=100),
                          _FrameClassifierAs2D(LogisticRegression())],
                         expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_sklearn_api_as_if_2d(estimator, check):
    _run(estimator, check)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_tags_declare_sequence_input(estimator):
    tags = get_tags(estimator)
    assert not tags.input_tags.two_d_array and not tags.input_tags.sparse
    assert not tags.input_tags.allow_nan
    if isinstance(estimator, FrameClassifier):
        assert tags.estimator_type == "classifier" and tags.target_tags.required
        assert not tags.classifier_tags.multi_class and tags.classifier_tags.multi_label
    else:
        assert tags.estimator_type is None and not tags.target_tags.required
        assert tags.transformer_tags.preserves_dtype == ["float32"]
        assert tags.requires_fit == (not isinstance(estimator, SequencePadder))
    # with these tags sklearn runs no data check at all, hence test_sklearn_api_as_if_2d
    with pytest.warns(Warning, match="Can't test estimator"):
        names = [_check_name(check) for _, check in estimator_checks_generator(estimator)]
    assert names == ["check_estimator_cloneable"]
