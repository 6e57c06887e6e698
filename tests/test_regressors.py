"""The AU intensity regressors: estimator checks, then behaviour through the sklearn API.

`StackedIntraAttRegressor` and `EncInterAttDecRegressor` take a ``SequenceBatch``, and
`FrameRegressor` a frame table or a ``SequenceBatch``; targets are one real-valued
sequence per recording. Their tags say so (``input_tags.two_d_array = False``), so
sklearn runs no data check on them (`test_sklearn_compatible`); as in
``test_estimator_checks``, `test_sklearn_api_as_if_2d` re-runs every check on test-only
subclasses that *claim* 2-D input, and `expected_failed_checks` lists every check that
then fails, with the reason. The xfail marks are strict: the list is exact.
"""

import io
import pickle
from unittest import SkipTest

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.svm import SVR
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import (_check_name, estimator_checks_generator,
                                            parametrize_with_checks)

from sklearn_s2au import (EncInterAttDecRegressor, FrameRegressor, StackedIntraAttRegressor,
                          ccc_scorer)
from sklearn_s2au._sequence import SequenceBatch
from sklearn_s2au.metrics import sequence_ccc
from sklearn_s2au.nn import TemporalConvEncoder
from sklearn_s2au.nn.layers import length_mask
from sklearn_s2au.preprocessing import SequencePadder
from sklearn_s2au.regressors import masked_ccc

# sklearn says, for every estimator collected, that it cannot test sequence input
pytestmark = [pytest.mark.filterwarnings("ignore:Can't test estimator"),
              pytest.mark.usefixtures("one_torch_thread")]


NETWORKS = (StackedIntraAttRegressor, EncInterAttDecRegressor)
TINY = dict(module__hidden_size=4, module__intra_att_units=4, batch_size=8)
CHECK_TINY = dict(module__hidden_size=4, module__intra_att_units=4, max_epochs=1)

# --------------------------------------------------------------------------------------
# scikit-learn's estimator checks
# --------------------------------------------------------------------------------------

_INPUT = {
    "network": "passes a 2-D numpy array as X; the network takes a SequenceBatch (the "
               "output of SequencePadder) and rejects anything else with a TypeError "
               "saying to put SequencePadder before it",
    "frame": "passes a 2-D numpy array as X; FrameRegressor takes a frame table "
             "(DataFrame of per-recording (n_frames, n_features) arrays) or a "
             "SequenceBatch and rejects anything else with a TypeError saying so",
}
_ARRAY_INPUT_CHECKS = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_complex_data", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature",
    "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit1d", "check_fit2d_predict1d",
    "check_regressor_data_not_an_array", "check_regressors_no_decision_function",
    "check_regressors_int"]
_OUTPUT = ("; targets and predictions are one array per recording (object ndarray), not "
           "(n_samples,) or (n_samples, n_outputs) arrays")
_REASONS = {
    "check_positive_only_tag_during_fit": " (values of any sign are accepted in a "
                                          "SequenceBatch or frame table)",
    "check_regressor_multioutput": _OUTPUT + "; several AUs are 2-D arrays per recording "
                                   "(tested in test_multi_target_* below)",
    "check_supervised_y_2d": _OUTPUT,
}
_OTHER = {
    "check_estimators_empty_data_messages": "expects a ValueError for an empty 2-D array, "
        "which gets the input-format TypeError first; an empty frame table raises a "
        "ValueError (test_preprocessing)",
    "check_estimators_nan_inf": "expects the NaN/inf ValueError for a 2-D array, which "
        "gets the input-format TypeError first; non-finite features raise a ValueError "
        "naming the recording in SpeakerNormaliser/SequencePadder",
    **dict.fromkeys(["check_estimator_sparse_tag", "check_estimator_sparse_array",
                     "check_estimator_sparse_matrix"],
                    "sparse input gets the input-format TypeError, whose message does not "
                    "mention sparsity as the check requires"),
    "check_array_api_input": "array-API inputs are 2-D arrays (skipped unless "
                             "SCIPY_ARRAY_API=1)",
    "check_regressors_train": "expects a ValueError for mismatched X/y arrays, but 2-D X "
        "gets the input-format TypeError first; per-recording targets of the wrong length "
        "raise a ValueError naming the recording (test_targets_are_checked below)",
    "check_supervised_y_no_nan": "X is rejected before y is looked at; non-finite targets "
        "raise a ValueError naming the recording and frame (test_targets_are_checked)",
}
_NETWORK_ONLY = {
    "check_estimators_partial_fit_n_features": _INPUT["network"],
    "check_requires_y_none": "2-D X gets the not-a-SequenceBatch TypeError before y is "
        "looked at; on a SequenceBatch, y=None raises 'requires y to be passed' "
        "(test_targets_are_checked)",
    "check_no_attributes_set_in_init": "skorch's NeuralNet.__init__ sets history_, "
        "initialized_, virtual_params_ and the module__* keyword arguments as attributes "
        "(skorch's design, as for the classifiers; clone, get_params and set_params work, "
        "see test_clone_pickle_grid_search)",
    "check_set_params": "skorch 1.4's get_params(deep=False) returns its private "
        "_params_to_validate set; the check's fuzzing sets it to -inf and skorch's "
        "set_params then fails on .add (AttributeError), as for any skorch net",
}


def expected_failed_checks(estimator):
    """Checks each regressor fails when run on 2-D arrays, and why."""
    network = isinstance(estimator, NETWORKS)
    given = _INPUT["network" if network else "frame"]
    failed = dict.fromkeys(_ARRAY_INPUT_CHECKS, given)
    failed.update({name: given + extra for name, extra in _REASONS.items()})
    failed.update(_OTHER)
    if network:
        failed.update(_NETWORK_ONLY)
    return failed


def _as_if_2d(self):
    tags = type(self).__mro__[1].__sklearn_tags__(self)
    tags.input_tags.two_d_array = True
    return tags


class _StackedIntraAttRegressorAs2D(StackedIntraAttRegressor):
    __sklearn_tags__ = _as_if_2d


class _EncInterAttDecRegressorAs2D(EncInterAttDecRegressor):
    __sklearn_tags__ = _as_if_2d


class _FrameRegressorAs2D(FrameRegressor):
    __sklearn_tags__ = _as_if_2d


ESTIMATORS = [StackedIntraAttRegressor(**CHECK_TINY), EncInterAttDecRegressor(**CHECK_TINY),
              FrameRegressor(SVR())]


def _run(estimator, check):
    """Run a check; an expected failure is re-raised without sklearn's deep traceback."""
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


@parametrize_with_checks([_StackedIntraAttRegressorAs2D(**CHECK_TINY),
                          _EncInterAttDecRegressorAs2D(**CHECK_TINY),
                          _FrameRegressorAs2D(Ridge())],
                         expected_failed_checks=expected_failed_checks, xfail_strict=True)
@pytest.mark.filterwarnings("ignore:.*occurred during set_params of param:UserWarning")
@pytest.mark.filterwarnings("ignore:Estimator's parameters changed after set_params:UserWarning")
def test_sklearn_api_as_if_2d(estimator, check):
    _run(estimator, check)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_tags_declare_a_sequence_regressor(estimator):
    tags = get_tags(estimator)
    assert tags.estimator_type == "regressor" and is_regressor(estimator)
    assert not is_classifier(estimator) and tags.classifier_tags is None
    assert not tags.input_tags.two_d_array and not tags.input_tags.sparse
    assert tags.target_tags.required and tags.target_tags.multi_output
    with pytest.warns(Warning, match="Can't test estimator"):
        names = [_check_name(check) for _, check in estimator_checks_generator(estimator)]
    assert names == ["check_estimator_cloneable"]


# --------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------

def _sequences(n_recordings=18, n_features=4, n_targets=2, seed=0, lengths=(20, 40)):
    """Features, speakers and intensities (0-5) that depend on the features."""
    rng = np.random.RandomState(seed)
    feats = [rng.randn(n, n_features).astype(np.float32)
             for n in rng.randint(lengths[0], lengths[1], size=n_recordings)]
    speakers = [f"s{i % 3}" for i in range(n_recordings)]
    # target j: the (3-frame smoothed) feature j, scaled onto 0..5
    targets = [np.clip(np.stack([np.convolve(f[:, j % n_features], np.ones(3), "same")
                                 for j in range(n_targets)], axis=1) + 1.0, 0, 5)
               for f in feats]
    if n_targets == 1:
        targets = [t[:, 0] for t in targets]
    return feats, speakers, targets


def _batch(feats, speakers, max_len=16):
    return SequenceBatch.from_features(feats, speakers, max_len)


def test_masked_ccc_equals_sequence_ccc_and_ignores_padding():
    feats, speakers, targets = _sequences()
    X = _batch(feats, speakers)
    rng = np.random.RandomState(1)
    pred = [t + rng.randn(*t.shape) for t in targets]
    true_pad = torch.from_numpy(X.pad_labels(targets, binary=False)).double()
    pred_pad = torch.from_numpy(X.pad_labels(pred, binary=False)).double()
    mask = torch.from_numpy(X.mask())
    expected = sequence_ccc(targets, pred, return_per_target=True).to_numpy()
    np.testing.assert_allclose(masked_ccc(pred_pad, true_pad, mask).numpy(), expected,
                               rtol=1e-5)
    pred_pad[~mask] = 1e3
    np.testing.assert_allclose(masked_ccc(pred_pad, true_pad, mask).numpy(), expected,
                               rtol=1e-5)


@pytest.mark.parametrize("loss", ["mse", "ccc"])
def test_frame_loss_is_over_real_frames_only(loss):
    feats, speakers, targets = _sequences(n_recordings=6)
    X = _batch(feats, speakers)
    reg = StackedIntraAttRegressor(loss=loss, max_epochs=1, **TINY).fit(X, targets)
    y = torch.from_numpy(X.pad_labels(targets, binary=False))
    mask = torch.from_numpy(X.mask())
    pred = y + torch.randn(y.shape)
    base = reg.get_frame_loss(pred, y, mask)
    garbage = pred.clone()
    garbage[~mask] = 1e3
    torch.testing.assert_close(reg.get_frame_loss(garbage, y, mask), base)
    flat_pred, flat_y = pred[mask], y[mask]
    if loss == "mse":
        torch.testing.assert_close(base, ((flat_pred - flat_y) ** 2).mean(0))
    else:
        assert base.shape == (2,) and (base > 0).all() and (base < 1).all()


@pytest.mark.parametrize("cls", NETWORKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("encoder", ["lstm", "transformer", "tcn"])
def test_learns_intensities_with_every_encoder(cls, encoder):
    feats, speakers, targets = _sequences()
    X = _batch(feats, speakers)
    reg = cls(max_epochs=30, lr=0.02, l2_kernel=0.0, random_state=0, module__n_heads=2,
              module__encoder=encoder, **TINY).fit(X, targets)
    pred = reg.predict(X)
    assert [p.shape for p in pred] == [(len(f), 2) for f in feats]
    assert all(p.dtype == np.float32 for p in pred)
    flat = np.concatenate(pred)
    assert flat.min() >= 0.0 and flat.max() <= 5.0           # clipped to the 0-5 scale
    assert reg.score(X, targets) == pytest.approx(sequence_ccc(targets, pred))
    # measured (random_state=0): 0.38-0.69 for the BiLSTM and the Transformer, 0.79-0.90
    # for the TCN, whose centred window matches the 3-frame smoothing of the targets
    floor = 0.7 if encoder == "tcn" else 0.3
    assert reg.score(X, targets) > floor
    assert reg.history[-1, "valid_ccc"] > floor - 0.15
    for key in ("train_frame_loss", "train_penalty", "valid_loss", "valid_ccc",
                "valid_ccc_per_model", "models_running"):
        assert key in reg.history[-1], key
    assert len(reg.history[-1, "valid_ccc_per_model"]) == 2
    assert reg.selected_epochs_.shape == (2,)


def test_early_stopping_on_validation_ccc_or_loss():
    feats, speakers, targets = _sequences()
    X = _batch(feats, speakers)
    common = dict(max_epochs=12, lr=0.02, patience=1, prev_rounds=2, last_top_results=4,
                  random_state=0, **TINY)
    reg = StackedIntraAttRegressor(monitor="ccc", **common).fit(X, targets)
    scores = np.array(reg.history[:, "valid_ccc_per_model"])            # (epochs, 2)
    for k, epoch in enumerate(reg.selected_epochs_):
        window = scores[reg.stopped_epochs_[k] - 4:reg.stopped_epochs_[k], k]
        assert scores[epoch - 1, k] == window.max()
    by_loss = StackedIntraAttRegressor(monitor="loss", **common).fit(X, targets)
    losses = np.array(by_loss.history[:, "valid_loss_per_model"])
    for k, epoch in enumerate(by_loss.selected_epochs_):
        window = losses[by_loss.stopped_epochs_[k] - 4:by_loss.stopped_epochs_[k], k]
        assert losses[epoch - 1, k] == window.min()
    # no validation speakers: every epoch is trained and the last one kept
    none = StackedIntraAttRegressor(valid_speakers=0, **dict(common, max_epochs=3)).fit(
        X, targets)
    assert list(none.selected_epochs_) == [3, 3] and "valid_ccc" not in none.history[-1]


def test_independent_targets_equal_separate_fits():
    """K independent models in one pass == K one-target fits with seeds r + k.

    No dropout, a fixed batch order and a named validation speaker: the per-model
    initialisation is the only randomness that differs between the runs.
    """
    feats, speakers, targets = _sequences(n_targets=3, n_features=3, lengths=(10, 24))
    X = _batch(feats, speakers)
    common = dict(max_epochs=20, lr=0.03, patience=1, prev_rounds=2, last_top_results=3,
                  valid_speakers=["s2"], module__dropout=0.0, iterator_train__shuffle=False,
                  module__encoder="tcn", **TINY)
    joint = EncInterAttDecRegressor(random_state=5, **common).fit(X, targets)
    pred = np.concatenate(joint.predict(X))
    stops = []
    for k in range(3):
        single = EncInterAttDecRegressor(random_state=5 + k, **common).fit(
            X, [t[:, k] for t in targets])
        assert single.selected_epochs_[0] == joint.selected_epochs_[k]
        assert single.stopped_epochs_[0] == joint.stopped_epochs_[k]
        stops.append(single.stopped_epochs_[0])
        np.testing.assert_allclose(np.concatenate(single.predict(X)), pred[:, k], atol=2e-4)
    # the models stopped at different epochs: frozen models did not move afterwards
    assert len(set(stops)) > 1


def test_shared_targets_one_network():
    feats, speakers, targets = _sequences(n_targets=3)
    X = _batch(feats, speakers)
    reg = StackedIntraAttRegressor(multi_target="shared", max_epochs=3, **TINY).fit(
        X, targets)
    assert reg.module_.n_models == 1 and reg.module_.n_outputs == 3
    assert reg.predict(X)[0].shape == (len(feats[0]), 3)


def test_one_target_and_long_recordings_one_prediction_per_real_frame():
    feats, speakers, targets = _sequences(n_recordings=6, n_targets=1, lengths=(30, 70))
    X = _batch(feats, speakers, max_len=16)             # every recording spans chunks
    reg = EncInterAttDecRegressor(max_epochs=2, random_state=0, **TINY).fit(X, targets)
    pred = reg.predict(X)
    assert [p.shape for p in pred] == [(len(f),) for f in feats]
    assert not hasattr(reg, "predict_proba")
    with pytest.raises(AttributeError, match="is a regressor and has no predict_proba"):
        reg.predict_proba(X)


def test_clip_range():
    feats, speakers, targets = _sequences(n_recordings=6)
    X = _batch(feats, speakers)
    free = StackedIntraAttRegressor(clip=None, max_epochs=2, random_state=0, **TINY).fit(
        X, [10 * t - 20 for t in targets])                 # targets of -20..30
    flat = np.concatenate(free.predict(X))
    assert flat.min() < 0.0
    narrow = clone(free).set_params(clip=(0.0, 1.0)).fit(X, [10 * t - 20 for t in targets])
    flat = np.concatenate(narrow.predict(X))
    assert flat.min() >= 0.0 and flat.max() <= 1.0


def test_targets_are_checked():
    feats, speakers, targets = _sequences(n_recordings=6)
    X = _batch(feats, speakers)
    reg = StackedIntraAttRegressor(max_epochs=1, **TINY)
    bad = [t.copy() for t in targets]
    bad[3][5, 0] = np.inf
    with pytest.raises(ValueError, match="targets of recording 3 hold a non-finite value "
                                         r".* at frame 5"):
        reg.fit(X, bad)
    with pytest.raises(ValueError, match=r"recording 1 has \d+ feature frames but 4 labels"):
        reg.fit(X, [targets[0], np.zeros(4)] + targets[2:])
    with pytest.raises(ValueError, match="requires y to be passed"):
        reg.fit(X, None)
    with pytest.raises(TypeError, match="expects a SequenceBatch .* before the regressor"):
        reg.fit(np.zeros((3, 4)), targets[:3])
    for params, message in [({"loss": "mae"}, "loss must be 'mse'"),
                            ({"monitor": "uar"}, "monitor must be 'ccc'"),
                            ({"clip": (5, 0)}, "clip must be None or a range"),
                            ({"clip": 5}, "clip must be None or a range"),
                            ({"patience": 0}, "patience must be a positive integer"),
                            ({"multi_target": "joint"}, "multi_target must be")]:
        with pytest.raises(ValueError, match=message):
            clone(reg).set_params(**params).fit(X, targets)
    fitted = clone(reg).fit(X, targets)
    narrow = _batch([f[:, :3] for f in feats], speakers)
    with pytest.raises(ValueError, match="X has 3 features but StackedIntraAttRegressor "
                                         "was fitted with 4"):
        fitted.predict(narrow)
    with pytest.raises(ValueError, match="partial_fit: y has 1 target"):
        fitted.partial_fit(X, [t[:, 0] for t in targets])


def test_random_state_partial_fit_and_rng():
    feats, speakers, targets = _sequences(n_recordings=9)
    X = _batch(feats, speakers)
    common = dict(max_epochs=3, random_state=5, module__dropout=0.3, **TINY)
    state = torch.get_rng_state()
    a = StackedIntraAttRegressor(**common).fit(X, targets)
    assert torch.equal(torch.get_rng_state(), state)        # global RNG untouched
    b = StackedIntraAttRegressor(**common).fit(X, targets)
    np.testing.assert_array_equal(np.concatenate(a.predict(X)), np.concatenate(b.predict(X)))
    a.partial_fit(X, targets)
    assert len(a.history) == 6


def _frame_table(feats, speakers):
    import pandas as pd

    return pd.DataFrame({"speaker": speakers, "features": feats},
                        index=[f"rec{i}" for i in range(len(feats))])


def test_clone_pickle_grid_search():
    from sklearn_s2au import SpeakerNormaliser

    feats, speakers, targets = _sequences(n_recordings=12)
    frames = _frame_table(feats, speakers)
    pipe = Pipeline([("norm", SpeakerNormaliser()), ("pad", SequencePadder(max_len=16)),
                     ("reg", StackedIntraAttRegressor(max_epochs=3, random_state=0,
                                                      module__encoder="tcn", **TINY))])
    res = cross_validate(pipe, frames, targets, groups=speakers, cv=LeaveOneGroupOut(),
                         scoring=ccc_scorer)
    assert len(res["test_score"]) == 3 and np.isfinite(res["test_score"]).all()
    gs = GridSearchCV(pipe, {"reg__module__tcn_levels": [1, 2]}, cv=LeaveOneGroupOut(),
                      scoring=ccc_scorer).fit(frames, targets, groups=speakers)
    assert set(gs.cv_results_["param_reg__module__tcn_levels"]) == {1, 2}
    best = gs.best_estimator_[-1]
    assert isinstance(best.module_.encoder1, TemporalConvEncoder)
    assert best.module_.encoder1.levels == gs.best_params_["reg__module__tcn_levels"]
    again = pickle.loads(pickle.dumps(gs.best_estimator_))
    for a, b in zip(again.predict(frames), gs.predict(frames)):
        np.testing.assert_array_equal(a, b)
    params = clone(best).get_params()
    assert params["module__encoder"] == "tcn" and params["loss"] == "mse"
    assert "class_weight" not in params and "threshold" not in params


def test_initialize_and_load_params_predict_the_same():
    feats, speakers, targets = _sequences(n_recordings=6)
    X = _batch(feats, speakers)
    reg = EncInterAttDecRegressor(max_epochs=2, random_state=0, module__encoder="transformer",
                                  module__n_heads=2, **TINY).fit(X, targets)
    buffer = io.BytesIO()
    reg.save_params(f_params=buffer)
    buffer.seek(0)
    fresh = EncInterAttDecRegressor(module__n_features=4, module__n_models=2,
                                    module__encoder="transformer", module__n_heads=2,
                                    **TINY).initialize()
    fresh.load_params(f_params=buffer)
    for a, b in zip(fresh.predict(X), reg.predict(X)):
        np.testing.assert_array_equal(a, b)


def test_padding_never_reaches_a_real_prediction():
    feats, speakers, targets = _sequences(n_recordings=6)
    X = _batch(feats, speakers)
    reg = StackedIntraAttRegressor(max_epochs=2, random_state=0, module__encoder="tcn",
                                   **TINY).fit(X, targets)
    garbage = SequenceBatch(X=X.X.copy(), lengths=X.lengths, recording=X.recording,
                            offset=X.offset, speaker=X.speaker, n_frames=X.n_frames)
    garbage.X[~X.mask()] = 1e3
    for a, b in zip(reg.predict(garbage), reg.predict(X)):
        np.testing.assert_array_equal(a, b)
    assert length_mask(torch.from_numpy(X.lengths), X.max_len).sum() == sum(map(len, feats))


def test_paper_settings_cover_the_regressors():
    from sklearn_s2au.classifiers import PAPER_DECODER, PAPER_SETTINGS, paper_settings

    assert paper_settings(EncInterAttDecRegressor) == {**PAPER_SETTINGS, **PAPER_DECODER}
    assert paper_settings(EncInterAttDecRegressor(lr=0.5)) == {**PAPER_SETTINGS,
                                                               **PAPER_DECODER}
    assert paper_settings(StackedIntraAttRegressor()) == PAPER_SETTINGS


def test_non_finite_loss_warns_in_every_regressor():
    """Issue 12 (defect 11) for the intensity models: a diverged network or frame-wise
    regressor says so instead of returning NaN intensities silently."""
    feats, speakers, targets = _sequences(n_recordings=12)
    X = _batch(feats, speakers)
    for cls in (StackedIntraAttRegressor, EncInterAttDecRegressor):
        with pytest.warns(RuntimeWarning, match=rf"{cls.__name__}: the training loss "
                                                rf"became non-finite at epoch 1 .*Lower lr "
                                                rf"\(now 1e\+30\)"):
            cls(lr=1e30, max_epochs=2, random_state=0, **TINY).fit(X, targets)

    class Diverged(Ridge):
        def fit(self, X, y):
            super().fit(X, y)
            self.coef_ = np.full_like(self.coef_, np.nan)
            return self

    with pytest.warns(RuntimeWarning, match=r"fitted Diverged of target 0 has non-finite "
                                            r"values in \['coef_'\]; its training diverged"):
        FrameRegressor(Diverged()).fit(X, targets)
