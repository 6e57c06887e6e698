"""scikit-learn's common estimator checks for every public estimator.

`OpenSmileLLD` takes a *recordings table* (a DataFrame of audio files or signals), the
transformers and `FrameClassifier` a *frame table* (a DataFrame, one row per recording,
with a ``features`` column of per-recording ``(n_frames, n_features)`` arrays) or a
``SequenceBatch``, the skorch networks a ``SequenceBatch``; labels are one sequence per
recording. Their tags say so honestly (``input_tags.two_d_array = False``; sklearn's tags
have no field for DataFrame input), and sklearn then skips every check that needs data:
only ``check_estimator_cloneable`` runs (`test_sklearn_compatible`).

To still run the API checks that do not depend on the input format (repr, cloning,
get/set_params, nothing set in ``__init__``, NotFittedError before fit, mixin order,
default-constructible parameters, ...), `test_sklearn_api_as_if_2d` re-runs all checks on
test-only subclasses that *claim* 2-D array input. Every check that then fails is listed
in `expected_failed_checks` with the reason and must fail in exactly that way (the
exception type and message of `_expected_raise`): a check that starts passing, fails
differently, or a new check that fails, breaks this test.
"""

import re

import numpy as np
import pandas as pd

import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.utils import estimator_html_repr, get_tags
from sklearn.utils.estimator_checks import (_check_name, estimator_checks_generator,
                                            parametrize_with_checks)

from sklearn_s2au.baselines import FrameClassifier
from sklearn_s2au.classifiers import EncInterAttDecClassifier, StackedIntraAttClassifier
from sklearn_s2au.features import OpenSmileLLD
from sklearn_s2au.preprocessing import SequencePadder, SpeakerNormaliser

NETWORKS = (StackedIntraAttClassifier, EncInterAttDecClassifier)
# tiny settings: no check trains (2-D arrays are rejected), but stay fast if one ever does
TINY = dict(module__hidden_size=4, module__intra_att_units=4, max_epochs=1)

_FRAME_TABLE = ("passes a 2-D numpy array as X; the estimator takes a frame table "
                "(DataFrame of per-recording (n_frames, n_features) arrays) and rejects "
                "anything else with a TypeError saying so")
_RECORDINGS_TABLE = ("passes a 2-D numpy array as X; OpenSmileLLD takes a recordings table "
                     "(DataFrame of audio files or signals with sampling_rate and speaker) "
                     "and rejects anything else with a TypeError saying so")
_SEQUENCE_BATCH = ("passes a 2-D numpy array as X; the network takes a SequenceBatch (the "
                   "output of SequencePadder) and rejects anything else with a TypeError "
                   "saying to put SequencePadder before it")

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


# The networks fail what FrameClassifier fails, except check_decision_proba_consistency
# (they have no decision_function, so it passes), plus what skorch and the paper's
# class weights bring.
_NETWORK = {
    **{name: reason for name, reason in _CLASSIFIER.items()
       if name != "check_decision_proba_consistency"},
    "check_classifiers_one_label": "trains on a 2-D array; on a SequenceBatch, single-class "
        "training logs a warning and trains with that class's weight (test_robustness)",
    "check_classifiers_one_label_sample_weights": "fit takes no sample_weight; the check "
        "wants an error mentioning sample_weight, but 2-D X gets the not-a-SequenceBatch "
        "TypeError first",
    "check_estimators_partial_fit_n_features": _SEQUENCE_BATCH,
    "check_requires_y_none": "2-D X gets the not-a-SequenceBatch TypeError before y is looked "
        "at; on a SequenceBatch, y=None raises 'requires y to be passed' (test_robustness)",
    "check_class_weight_classifiers": "class_weight is 'balanced' (the paper's per-target "
        "W_c = N / (2 N_c) over real frames) or None; a dict of weights raises a ValueError "
        "saying so",
    "check_no_attributes_set_in_init": "skorch's NeuralNet.__init__ sets history_, "
        "initialized_, virtual_params_ and the module__* keyword arguments as attributes "
        "(skorch's design; clone, get_params and set_params work, see test_classifiers)",
    "check_set_params": "skorch 1.4's get_params(deep=False) returns its private "
        "_params_to_validate set; the check's fuzzing sets it to -inf and skorch's "
        "set_params then fails on .add (AttributeError); a plain skorch "
        "NeuralNetClassifier fails the same way",
}


def expected_failed_checks(estimator):
    """Checks each estimator fails when run on 2-D arrays, and why."""
    if isinstance(estimator, OpenSmileLLD):
        given = _RECORDINGS_TABLE
    elif isinstance(estimator, NETWORKS):
        given = _SEQUENCE_BATCH
    else:
        given = _FRAME_TABLE
    # the same reasons, naming the input this estimator takes
    failed = {name: reason.replace(_FRAME_TABLE, given) for name, reason in _COMMON.items()}
    if isinstance(estimator, NETWORKS):
        extra = _NETWORK
    elif isinstance(estimator, FrameClassifier):
        extra = _CLASSIFIER
    else:
        extra = _TRANSFORMER
    failed.update({name: reason.replace(_FRAME_TABLE, given)
                   for name, reason in extra.items()})
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


class _OpenSmileLLDAs2D(OpenSmileLLD):
    __sklearn_tags__ = _as_if_2d


class _StackedIntraAttClassifierAs2D(StackedIntraAttClassifier):
    __sklearn_tags__ = _as_if_2d


class _EncInterAttDecClassifierAs2D(EncInterAttDecClassifier):
    __sklearn_tags__ = _as_if_2d


ESTIMATORS = [OpenSmileLLD(), SpeakerNormaliser(), SequencePadder(max_len=100),
              FrameClassifier(SVC(class_weight="balanced")),
              StackedIntraAttClassifier(**TINY), EncInterAttDecClassifier(**TINY)]


# What each expected failure must raise: by default the estimator's own "not my input"
# TypeError (below, per input); these checks fail otherwise, each in the stated way.
_RAISES = {
    "check_estimators_empty_data_messages": (
        AssertionError, r"does not raise a ValueError when an empty data is used"),
    "check_estimators_nan_inf": (AssertionError, r"doesn't check for NaN and inf in fit"),
    "check_estimator_sparse_tag": (AssertionError, r"failed when fitted on sparse data"),
    "check_estimator_sparse_array": (AssertionError,
                                     r"doesn't seem to fail gracefully on sparse data"),
    "check_estimator_sparse_matrix": (AssertionError,
                                      r"doesn't seem to fail gracefully on sparse data"),
    "check_positive_only_tag_during_fit": (AssertionError,
                                           r"raised TypeError unexpectedly.*negative input"),
    "check_classifiers_one_label": (AssertionError,
                                    r"can't train when only one class is present"),
    "check_classifiers_train": (AssertionError, r"does not raise an error when "
                                                r"incorrect/malformed input data for fit"),
    "check_classifiers_regression_target": (AssertionError,
                                            r"When a classifier is passed a continuous "
                                            r"target"),
    "check_supervised_y_no_nan": (AssertionError,
                                  r"should have raised error on fitting array y with inf"),
    "check_classifier_not_supporting_multiclass": (
        AssertionError, r"does not support multiclass classification"),
    "check_no_attributes_set_in_init": (
        AssertionError, r"should not set any attribute apart from parameters during init\. "
                        r"Found attributes \['history_', 'initialized_'"),
    "check_classifiers_one_label_sample_weights": (
        AssertionError, r"should contain one of the following patterns:.*sample_weight.*"
                        r"expects a SequenceBatch"),
    "check_class_weight_classifiers": (
        ValueError, r"class_weight must be 'balanced' or None, got \{0: 1000, 1: 0\.0001\}"),
    "check_set_params": (AttributeError, r"'float' object has no attribute 'add'"),
}


def _expected_raise(estimator, name):
    if name in _RAISES:
        return _RAISES[name]
    cls = next(c for c in type(estimator).__mro__ if not c.__name__.endswith("As2D"))
    if isinstance(estimator, OpenSmileLLD):
        return TypeError, r"^OpenSmileLLD expects a recordings table: a pandas DataFrame"
    if isinstance(estimator, NETWORKS):
        return TypeError, (rf"^_?{type(estimator).__name__} expects a SequenceBatch "
                           rf"\(the output of SequencePadder\)")
    return TypeError, rf"^{cls.__name__} expects a frame table"


def _run(estimator, check):
    """Run a check; a check in `expected_failed_checks` must fail in the stated way.

    It must raise the exception type and message of `_expected_raise`: a check that
    starts passing, or fails differently, fails the test (so the list is exact and each
    reason is checked, not just that something went wrong).
    """
    name = _check_name(check)
    if name not in expected_failed_checks(estimator):
        check(estimator)
        return
    kind, pattern = _expected_raise(estimator, name)
    with pytest.raises(kind) as info:
        check(estimator)
    if not re.search(pattern, str(info.value), re.S):
        pytest.fail(f"{name} was expected to fail with {kind.__name__} matching "
                    f"{pattern!r} but raised {info.type.__name__}: {info.value}",
                    pytrace=False)


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    _run(estimator, check)


@parametrize_with_checks([_OpenSmileLLDAs2D(), _SpeakerNormaliserAs2D(),
                          _SequencePadderAs2D(max_len=100),
                          _FrameClassifierAs2D(LogisticRegression()),
                          _StackedIntraAttClassifierAs2D(**TINY),
                          _EncInterAttDecClassifierAs2D(**TINY)])
# the networks' check_set_params (an expected failure, see _NETWORK) warns once per param
@pytest.mark.filterwarnings("ignore:.*occurred during set_params of param:UserWarning")
@pytest.mark.filterwarnings("ignore:Estimator's parameters changed after set_params:UserWarning")
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
    elif isinstance(estimator, NETWORKS):
        assert tags.estimator_type == "classifier" and tags.target_tags.required
        assert tags.requires_fit
    else:
        assert tags.estimator_type is None and not tags.target_tags.required
        # openSMILE's output dtype does not follow the input's: float32 whatever comes in
        assert tags.transformer_tags.preserves_dtype == (
            [] if isinstance(estimator, OpenSmileLLD) else ["float32"])
        assert tags.requires_fit == (not isinstance(estimator, (SequencePadder, OpenSmileLLD)))
    # with these tags sklearn runs no data check at all, hence test_sklearn_api_as_if_2d
    with pytest.warns(Warning, match="Can't test estimator"):
        names = [_check_name(check) for _, check in estimator_checks_generator(estimator)]
    assert names == ["check_estimator_cloneable"]


@pytest.mark.parametrize("cls", NETWORKS, ids=lambda c: c.__name__)
def test_network_classifier_tags_match_frame_classifier(cls):
    tags = get_tags(cls(**TINY)).classifier_tags
    assert not tags.multi_class and tags.multi_label


def test_html_repr_of_the_full_pipeline():
    pipe = Pipeline([("lld", OpenSmileLLD("eGeMAPSv02")), ("norm", SpeakerNormaliser()),
                     ("pad", SequencePadder(max_len=100)),
                     ("clf", EncInterAttDecClassifier(module__hidden_size=10))])
    html = estimator_html_repr(pipe)
    for step, cls in pipe.steps:
        # each step is a box named by its class, whose parameters carry the step's prefix
        assert f'data-param-prefix="{step}__"' in html
        assert f"<div>{type(cls).__name__}</div>" in html
    assert "eGeMAPSv02" in html and "module__hidden_size" in html
    assert html.count('class="sk-toggleable__label') >= 5   # pipeline + 4 steps


# ---- native equivalents of the data checks, on the inputs these estimators take ---------
#
# sklearn's check_classifiers_train, check_fit_idempotent, check_dont_overwrite_parameters,
# check_dict_unchanged and check_methods_subset_invariance cannot run (2-D arrays), so the
# same properties are checked here on frame tables and SequenceBatches.

def _easy_recordings(n_recordings=24, n_features=4, seed=0):
    """Per-recording features and labels that a model must learn (target: feature 0 of
    the frame > 0, learnable frame by frame too), speakers s0..s3; s3 is held out."""
    rng = np.random.RandomState(seed)
    feats = [rng.randn(n, n_features).astype(np.float32)
             for n in rng.randint(30, 60, size=n_recordings)]
    labels = [(f[:, 0] > 0).astype(int) for f in feats]
    speakers = np.array([f"s{i % 4}" for i in range(n_recordings)])
    return feats, labels, speakers


def _frame_table(feats, speakers):
    column = np.empty(len(feats), dtype=object)
    column[:] = feats
    return pd.DataFrame({"speaker": speakers, "features": column},
                        index=[f"rec{i:02d}" for i in range(len(feats))])


NATIVE = {
    "FrameClassifier": lambda: FrameClassifier(LogisticRegression(class_weight="balanced")),
    "StackedIntraAttClassifier": lambda: StackedIntraAttClassifier(
        module__hidden_size=8, lr=2e-2, l2_kernel=0.0, max_epochs=40, random_state=0),
    "EncInterAttDecClassifier": lambda: EncInterAttDecClassifier(
        module__hidden_size=8, lr=2e-2, l2_kernel=0.0, max_epochs=40, random_state=0),
}


def _native_input(name, feats, speakers):
    if name == "FrameClassifier":
        return _frame_table(feats, speakers)
    from sklearn_s2au._sequence import SequenceBatch

    return SequenceBatch.from_features(feats, list(speakers), 20)


def _subset(X, positions):
    return X.iloc[positions] if isinstance(X, pd.DataFrame) else X.select(positions)


def _state(estimator):
    """Everything a fitted estimator holds, comparable (weights as bytes)."""
    import joblib

    if hasattr(estimator, "module_"):
        return ({k: v.detach().numpy().tobytes()
                 for k, v in estimator.module_.state_dict().items()},
                len(estimator.history), joblib.hash(estimator.threshold_))
    return joblib.hash(estimator)


def _param_hashes(estimator):
    """``get_params(deep=True)``, each value hashed with its state (joblib.hash)."""
    import joblib

    return {k: joblib.hash(v) for k, v in estimator.get_params(deep=True).items()}


@pytest.fixture(scope="module")
def easy():
    return _easy_recordings()


@pytest.fixture(scope="module")
def fitted(easy):
    feats, labels, speakers = easy
    train = np.flatnonzero(speakers != "s3")
    out = {}
    for name, make in NATIVE.items():
        X = _native_input(name, [feats[i] for i in train], speakers[train])
        out[name] = make().fit(X, [labels[i] for i in train])
    return out


@pytest.mark.parametrize("name", NATIVE)
def test_native_classifiers_train_learn_easy_data(name, easy, fitted):
    from sklearn_s2au.metrics import sequence_uar

    feats, labels, speakers = easy
    test = np.flatnonzero(speakers == "s3")
    X = _native_input(name, [feats[i] for i in test], speakers[test])
    pred = fitted[name].predict(X)
    assert len(pred) == len(test)
    assert all(p.shape == (len(feats[i]),) and set(np.unique(p)) <= {0, 1}
               for p, i in zip(pred, test))
    # a held-out speaker: far above chance (0.5)
    assert sequence_uar([labels[i] for i in test], pred) > 0.85


@pytest.mark.parametrize("name", NATIVE)
def test_native_fit_idempotent_and_params_untouched(name, easy, fitted):
    feats, labels, speakers = easy
    train = np.flatnonzero(speakers != "s3")
    X = _native_input(name, [feats[i] for i in train], speakers[train])
    y = [labels[i] for i in train]
    estimator = NATIVE[name]()
    before = _param_hashes(estimator)
    estimator.fit(X, y)
    after = _param_hashes(estimator)
    # every parameter, nested ones included (FrameClassifier's estimator, the networks'
    # callbacks), is the same object in the same state: fit worked on copies
    assert {k: after.get(k) for k in before} == before
    # skorch lists its initialised callbacks' parameters after fit (its design); nothing
    # else may appear
    assert all(k.startswith("callbacks__") for k in set(after) - set(before))
    first = np.concatenate(estimator.predict_proba(X))
    estimator.fit(X, y)            # refit: same random_state, same result
    np.testing.assert_array_equal(np.concatenate(estimator.predict_proba(X)), first)
    np.testing.assert_array_equal(np.concatenate(fitted[name].predict_proba(X)), first)


@pytest.mark.parametrize("name", NATIVE)
def test_native_predict_leaves_state_and_is_subset_invariant(name, easy, fitted):
    feats, labels, speakers = easy
    X = _native_input(name, feats, speakers)
    estimator = fitted[name]
    state = _state(estimator)
    proba = estimator.predict_proba(X)
    pred = estimator.predict(X)
    assert _state(estimator) == state
    rng = np.random.RandomState(1)
    subset = np.sort(rng.choice(len(feats), 7, replace=False))
    sub_proba = estimator.predict_proba(_subset(X, subset))
    sub_pred = estimator.predict(_subset(X, subset))
    for j, i in enumerate(subset):
        np.testing.assert_allclose(sub_proba[j], proba[i], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(sub_pred[j], pred[i])
    assert _state(estimator) == state
