"""The skorch classifiers through the scikit-learn API, on tiny synthetic sequences."""

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from sklearn_s2au._sequence import SequenceBatch
from sklearn_s2au.classifiers import (TABLE1_CONFIGS, EncInterAttDecClassifier,
                                      StackedIntraAttClassifier, balanced_class_weights,
                                      paper_early_stopping)
from sklearn_s2au.metrics import uar_scorer
from sklearn_s2au.nn import BiLSTM
from sklearn_s2au.preprocessing import SequencePadder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = dict(module__hidden_size=4, module__intra_att_units=4, batch_size=8)


def _sequences(n_recordings=12, n_features=4, n_targets=None, seed=0, lengths=(8, 30)):
    """Features, speakers and labels that depend on the features (learnable)."""
    rng = np.random.RandomState(seed)
    feats = [rng.randn(n, n_features).astype(np.float32)
             for n in rng.randint(lengths[0], lengths[1], size=n_recordings)]
    speakers = [f"s{i % 3}" for i in range(n_recordings)]
    k = 1 if n_targets is None else n_targets
    # target j is active where feature j (smoothed over 3 frames) is positive
    labels = [np.stack([np.convolve(f[:, j % n_features], np.ones(3), "same") > 0
                        for j in range(k)], axis=1).astype(int) for f in feats]
    if n_targets is None:
        labels = [lab[:, 0] for lab in labels]
    return feats, speakers, labels


def _batch(feats, speakers, max_len=16):
    return SequenceBatch.from_features(feats, speakers, max_len)


# ---- early stopping ------------------------------------------------------------------

def test_paper_early_stopping_on_synthetic_scores():
    # rising scores: every epoch beats the mean of the 15 before it, never stops
    rising = list(np.linspace(0.5, 0.9, 40))
    assert paper_early_stopping(rising) == (None, 40)
    # rise for 20 epochs, then 0.6: from epoch 21 each score is below the mean of the 15
    # epochs before it (0.62 at epoch 21), 5 misses -> stop at 25; the best of the last
    # 10 epochs (16..25) is epoch 20 (0.69)
    scores = [0.5 + 0.01 * i for i in range(20)] + [0.6] * 10
    assert paper_early_stopping(scores) == (25, 20)
    # nothing is checked before epoch prev_rounds + 1: minimum is 20 epochs
    flat = [0.7] * 30
    assert paper_early_stopping(flat) == (20, 20)     # ties: the latest epoch
    # an improvement resets the counter
    bumpy = [0.7] * 18 + [0.9] + [0.7] * 20
    stop, best = paper_early_stopping(bumpy)
    assert stop == 24 and best == 19
    # loss: lower is better
    loss = [1.0 - 0.01 * i for i in range(20)] + [2.0] * 10
    assert paper_early_stopping(loss, lower_is_better=True) == (25, 20)
    # custom parameters
    assert paper_early_stopping([1, 2, 3, 1, 1, 1, 5], patience=2, prev_rounds=2,
                                last_top_results=3) == (5, 3)


def test_balanced_class_weights_values():
    labels = np.zeros((2, 5, 2))
    labels[0, :2, 0] = 1                      # target 0: 2 positives of 8 real frames
    labels[1, 4, 1] = 1                       # target 1: a padded positive, ignored
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    weights = balanced_class_weights(labels, mask)
    assert weights[0] == pytest.approx([8 / (2 * 6), 8 / (2 * 2)])
    assert weights[1] == pytest.approx([8 / (2 * 8), 0.0])   # no positive frame


def test_class_weights_from_training_speakers_only():
    feats, speakers, labels = _sequences()
    X = _batch(feats, speakers)
    clf = StackedIntraAttClassifier(max_epochs=1, valid_speakers=["s1"], random_state=0,
                                    **TINY).fit(X, labels)
    train = [i for i, s in enumerate(speakers) if s != "s1"]
    frames = np.concatenate([labels[i] for i in train])
    n, n_pos = len(frames), frames.sum()
    assert clf.class_weight_[0] == pytest.approx([n / (2 * (n - n_pos)), n / (2 * n_pos)])
    assert clf.validation_recordings_.tolist() == [i for i, s in enumerate(speakers)
                                                   if s == "s1"]


# ---- the eight configurations ---------------------------------------------------------

@pytest.mark.parametrize("name", list(TABLE1_CONFIGS))
def test_table1_configuration_fits_predicts_and_ignores_padding(name):
    cls, kwargs = TABLE1_CONFIGS[name]
    feats, speakers, labels = _sequences(n_targets=2, lengths=(8, 40))
    X = _batch(feats, speakers)
    assert X.n_chunks > len(feats)            # some recordings span several chunks
    clf = cls(**kwargs, max_epochs=2, random_state=0, **TINY).fit(X, labels)
    proba = clf.predict_proba(X)
    pred = clf.predict(X)
    assert len(proba) == len(feats)
    for p, q, f in zip(proba, pred, feats):
        assert p.shape == q.shape == (len(f), 2)
        assert ((p > 0) & (p < 1)).all()
        assert np.array_equal(q, (p > 0.5).astype(int))
    # the default: one network with an output per target, one early stopping
    assert len(clf.history) == 2 and clf.selected_epochs_.shape == (1,)
    assert clf.module_.n_models == 1 and clf.module_.n_outputs == 2
    # garbage on padded frames changes neither predictions nor the loss
    garbage = SequenceBatch(**{**X.__dict__, "X": X.X.copy()})
    garbage.X[~X.mask()] = 1e3
    for p, q in zip(proba, clf.predict_proba(garbage)):
        np.testing.assert_array_equal(p, q)
    mask = torch.from_numpy(X.mask())
    y = torch.from_numpy(X.pad_labels(labels))
    y_garbage = y.clone()
    y_garbage[~mask] = 1.0
    losses = []
    for x, target in ((X.X, y), (garbage.X, y_garbage)):
        batch = {"x": torch.from_numpy(x), "lengths": torch.from_numpy(X.lengths)}
        clf.module_.train()
        torch.manual_seed(0)
        with torch.no_grad():
            losses.append(clf.get_loss(clf.infer(batch), target, X=batch, training=True))
    assert losses[0].item() == losses[1].item()


def test_one_target_layout_and_long_recordings():
    feats, speakers, labels = _sequences(lengths=(30, 50))
    X = _batch(feats, speakers, max_len=16)
    clf = EncInterAttDecClassifier(max_epochs=1, random_state=0, **TINY).fit(X, labels)
    pred = clf.predict(X)
    assert pred.dtype == object
    assert [p.shape for p in pred] == [(len(f),) for f in feats]
    assert set(np.concatenate(pred).tolist()) <= {0, 1}
    # score is the balanced accuracy over all real frames
    from sklearn.metrics import balanced_accuracy_score
    expected = balanced_accuracy_score(np.concatenate(labels), np.concatenate(pred))
    assert clf.score(X, labels) == pytest.approx(expected)


def test_predict_attention_rows_sum_to_one():
    feats, speakers, labels = _sequences()
    X = _batch(feats, speakers)
    clf = EncInterAttDecClassifier(max_epochs=1, random_state=0, **TINY,
                                   module__intra_att=("pa", 3)).fit(X, labels)
    for layer in ("decoder", "intra_att_dec"):
        weights = clf.predict_attention(X, layer=layer)
        assert len(weights) == X.n_chunks
        for w, n in zip(weights, X.lengths):
            assert w.shape == (n, n)
            np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="layer must be one of"):
        clf.predict_attention(X, layer="intra_att1")


# ---- learning and several targets ------------------------------------------------------

def test_learns_a_feature_dependent_target():
    feats, speakers, labels = _sequences(n_recordings=18, lengths=(20, 40))
    X = _batch(feats, speakers)
    clf = StackedIntraAttClassifier(max_epochs=25, lr=0.02, l2_kernel=0.0, random_state=0,
                                    **TINY).fit(X, labels)
    assert clf.score(X, labels) > 0.8
    assert clf.history[-1, "valid_uar"] > 0.7


def test_independent_targets_equal_separate_fits():
    """K independent models in one pass == K one-target fits with seeds r + k.

    Dropout is 0 (its masks come from one generator shared by the stacked models), the
    batch order is fixed and the validation speaker named, so that every source of
    randomness other than the per-model initialisation is the same in both runs.
    """
    feats, speakers, labels = _sequences(n_targets=3, n_features=3, lengths=(10, 24))
    X = _batch(feats, speakers)
    common = dict(max_epochs=20, lr=0.03, patience=1, prev_rounds=2, last_top_results=3,
                  monitor="loss", valid_speakers=["s2"], module__dropout=0.0,
                  iterator_train__shuffle=False, multi_target="independent", **TINY)
    joint = EncInterAttDecClassifier(random_state=5, **common).fit(X, labels)
    proba = np.concatenate(joint.predict_proba(X))
    stops = []
    for k in range(3):
        single = EncInterAttDecClassifier(random_state=5 + k, **common).fit(
            X, [lab[:, k] for lab in labels])
        assert single.selected_epochs_[0] == joint.selected_epochs_[k]
        assert single.stopped_epochs_[0] == joint.stopped_epochs_[k]
        stops.append(single.stopped_epochs_[0])
        np.testing.assert_allclose(np.concatenate(single.predict_proba(X)), proba[:, k],
                                   atol=2e-5)
    # the models stopped at different epochs: frozen models did not move afterwards
    assert len(set(stops)) > 1
    running = joint.history[:, "models_running"]
    assert running == sorted(running, reverse=True) and running[-1] == 0


@pytest.mark.parametrize("module_params", [
    {"module__dropout": 0.3},
    {"module__dropout": 0.2, "module__intra_att": ("pa", 3)},
])
def test_stopped_models_are_skipped_without_changing_results(monkeypatch, module_params):
    """Skipping stopped models (``active=``) changes no running model's result.

    The same fit, with dropout, once with the skipping switched off: every model gets
    the same stopping epochs, selected epochs, validation scores and predictions.
    """
    from sklearn_s2au.nn import EncoderDecoderNet

    feats, speakers, labels = _sequences(n_targets=4, n_features=3, lengths=(10, 24))
    X = _batch(feats, speakers)
    common = dict(max_epochs=10, lr=0.03, patience=1, prev_rounds=2, last_top_results=3,
                  valid_speakers=["s2"], random_state=3, multi_target="independent",
                  **TINY, **module_params)
    calls = []
    original = EncoderDecoderNet.forward

    def spy(self, x, lengths, active=None, **kwargs):
        calls.append(None if active is None else len(active))
        return original(self, x, lengths, active=active, **kwargs)

    monkeypatch.setattr(EncoderDecoderNet, "forward", spy)
    skipping = EncInterAttDecClassifier(**common).fit(X, labels)
    assert any(n is not None and n < 4 for n in calls)        # some models were skipped
    assert skipping._running_models() is None                 # all models predict
    monkeypatch.setattr(EncInterAttDecClassifier, "_running_models", lambda self: None)
    full = EncInterAttDecClassifier(**common).fit(X, labels)
    np.testing.assert_array_equal(skipping.stopped_epochs_, full.stopped_epochs_)
    np.testing.assert_array_equal(skipping.selected_epochs_, full.selected_epochs_)
    assert len(set(full.stopped_epochs_)) > 1
    np.testing.assert_allclose(skipping.history[:, "valid_uar_per_model"],
                               full.history[:, "valid_uar_per_model"], atol=1e-12)
    np.testing.assert_allclose(skipping.history[:, "valid_loss_per_model"],
                               full.history[:, "valid_loss_per_model"], rtol=1e-5)
    np.testing.assert_allclose(np.concatenate(skipping.predict_proba(X)),
                               np.concatenate(full.predict_proba(X)), atol=2e-5)


def test_shared_targets_one_network():
    feats, speakers, labels = _sequences(n_targets=3)
    X = _batch(feats, speakers)
    clf = EncInterAttDecClassifier(multi_target="shared", max_epochs=2, random_state=0,
                                   **TINY).fit(X, labels)
    assert clf.module_.n_models == 1 and clf.module_.n_outputs == 3
    assert clf.predict(X)[0].shape == (len(feats[0]), 3)
    assert clf.class_weight_.shape == (3, 2)


# ---- sklearn behaviour -------------------------------------------------------------------

def test_random_state_makes_training_repeatable():
    feats, speakers, labels = _sequences()
    X = _batch(feats, speakers)
    runs = [np.concatenate(StackedIntraAttClassifier(max_epochs=2, random_state=seed, **TINY)
                           .fit(X, labels).predict_proba(X)) for seed in (3, 3, 4)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    # the global torch generator is left as it was
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    StackedIntraAttClassifier(max_epochs=1, random_state=0, **TINY).fit(X, labels)
    assert torch.rand(1) == expected


def test_clone_pickle_joblib_and_set_params():
    feats, speakers, labels = _sequences()
    X = _batch(feats, speakers)
    clf = EncInterAttDecClassifier(max_epochs=2, random_state=0, **TINY).fit(X, labels)
    proba = np.concatenate(clf.predict_proba(X))
    fresh = clone(clf)
    assert not hasattr(fresh, "module_") and fresh.get_params()["module__hidden_size"] == 4
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(np.concatenate(restored.predict_proba(X)), proba)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(np.concatenate(joblib.load(buffer).predict_proba(X)), proba)
    fresh.set_params(module__hidden_size=3).fit(X, labels)
    assert fresh.module_.hidden_size == 3


def test_partial_fit_continues_training():
    feats, speakers, labels = _sequences()
    X = _batch(feats, speakers)
    clf = EncInterAttDecClassifier(max_epochs=2, random_state=0, **TINY)
    clf.partial_fit(X, labels)
    first = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    clf.partial_fit(X, labels)
    assert len(clf.history) == 4
    assert 3 <= clf.selected_epochs_[0] <= 4
    assert any(not torch.equal(first[k], v) for k, v in clf.module_.state_dict().items())


def test_partial_fit_is_repeatable_and_leaves_the_global_rng_alone():
    feats, speakers, labels = _sequences()
    X = _batch(feats, speakers)

    def twice(global_seed):
        clf = EncInterAttDecClassifier(max_epochs=2, random_state=0, **TINY)
        clf.partial_fit(X, labels)
        torch.manual_seed(global_seed)           # the global generator must not matter
        clf.partial_fit(X, labels)
        return np.concatenate(clf.predict_proba(X))

    np.testing.assert_array_equal(twice(1), twice(2))
    clf = EncInterAttDecClassifier(max_epochs=1, random_state=0, **TINY).fit(X, labels)
    torch.manual_seed(7)
    expected = torch.rand(1)
    torch.manual_seed(7)
    clf.partial_fit(X, labels)
    assert torch.rand(1) == expected


def test_partial_fit_with_other_targets_or_features_says_so():
    feats, speakers, labels = _sequences(n_targets=2)
    X = _batch(feats, speakers)
    clf = EncInterAttDecClassifier(max_epochs=1, random_state=0, **TINY).fit(X, labels)
    with pytest.raises(ValueError, match=r"y has 1 target\(s\).*shape \(n_frames, 2\)"):
        clf.partial_fit(X, [lab[:, 0] for lab in labels])
    with pytest.raises(ValueError, match="X has 3 features but .* fitted with 4"):
        clf.partial_fit(_batch([f[:, :3] for f in feats], speakers), labels)


def _frame_table(feats, speakers):
    return pd.DataFrame({"speaker": speakers, "features": feats},
                        index=[f"rec{i}" for i in range(len(feats))])


def test_grid_search_over_hidden_size_in_a_pipeline():
    feats, speakers, labels = _sequences()
    frames = _frame_table(feats, speakers)
    pipe = Pipeline([("pad", SequencePadder(max_len=16)),
                     ("clf", StackedIntraAttClassifier(max_epochs=1, random_state=0,
                                                       valid_speakers=0, **TINY))])
    search = GridSearchCV(pipe, {"clf__module__hidden_size": [2, 3]}, cv=LeaveOneGroupOut(),
                          scoring=uar_scorer).fit(frames, labels, groups=frames["speaker"])
    results = search.cv_results_
    best = results["params"][int(np.argmax(results["mean_test_score"]))]
    assert search.best_params_ == best
    assert search.best_score_ == pytest.approx(np.max(results["mean_test_score"]))
    assert len(results["split0_test_score"]) == 2      # both candidates were scored
    assert search.best_estimator_[-1].module_.hidden_size == \
        search.best_params_["clf__module__hidden_size"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_parallel_cross_validation_uses_one_thread_per_worker():
    feats, speakers, labels = _sequences()
    frames = _frame_table(feats, speakers)
    pipe = Pipeline([("pad", SequencePadder(max_len=16)),
                     ("clf", StackedIntraAttClassifier(max_epochs=1, random_state=0, **TINY))])
    result = cross_validate(pipe, frames, labels, groups=frames["speaker"],
                            cv=LeaveOneGroupOut(), scoring=uar_scorer, n_jobs=2,
                            return_estimator=True)
    assert [est[-1].n_threads_ for est in result["estimator"]] == [1, 1, 1]
    assert np.isfinite(result["test_score"]).all()


# ---- errors ---------------------------------------------------------------------------

def test_errors_name_the_problem():
    feats, speakers, labels = _sequences()
    X = _batch(feats, speakers)
    clf = StackedIntraAttClassifier(max_epochs=1, **TINY)
    with pytest.raises(TypeError, match="SequencePadder"):
        clf.fit(np.zeros((3, 4, 4)), labels)
    bad = list(labels)
    bad[2] = bad[2][:-1]
    with pytest.raises(ValueError, match="recording 2 has"):
        clf.fit(X, bad)
    bad[2] = np.full(len(feats[2]), 2)
    with pytest.raises(ValueError, match="binary"):
        clf.fit(X, bad)
    with pytest.raises(ValueError, match="leaving none to train on"):
        clf.set_params(valid_speakers=3).fit(X, labels)
    with pytest.raises(ValueError, match="multi_target"):
        clf.set_params(valid_speakers=1, multi_target="joint").fit(X, labels)
    fitted = StackedIntraAttClassifier(max_epochs=1, **TINY).fit(X, labels)
    with pytest.raises(ValueError, match="fitted with 4"):
        fitted.predict(_batch([f[:, :3] for f in feats], speakers))


# ---- diagnostics: what a user sees when training goes wrong ----------------------------

@pytest.mark.parametrize("multi_target", ["shared", "independent"])
@pytest.mark.parametrize("cls", [StackedIntraAttClassifier, EncInterAttDecClassifier])
def test_history_separates_frame_bce_from_penalties(cls, multi_target):
    feats, speakers, labels = _sequences(n_recordings=12, n_targets=2)
    X = _batch(feats, speakers)
    clf = cls(max_epochs=3, lr=1e-2, last_top_results=1, random_state=0,
              multi_target=multi_target, **TINY).fit(X, labels)
    for row in clf.history:
        # train_loss (what Adam minimises) = frame BCE + weight/attention penalties
        np.testing.assert_allclose(row["train_loss"], row["train_bce"] + row["train_penalty"],
                                   rtol=1e-5)
        np.testing.assert_allclose(row["train_bce"], sum(row["train_bce_per_model"]),
                                   rtol=1e-6)
        assert row["train_penalty"] > 0
    assert "valid_bce" not in clf.history[-1]
    # valid_loss is the class-weighted BCE of the kept (last) epoch on the validation
    # speakers, recomputed here from the predictions
    valid = clf.validation_recordings_
    proba = clf.predict_proba(X.select(valid))
    y = np.concatenate([labels[i] for i in valid]).astype(float)
    p = np.clip(np.concatenate(proba), 1e-7, 1 - 1e-7)
    w = clf.class_weight_                                            # (K, 2)
    per_target = -(w[:, 1] * y * np.log(p) + w[:, 0] * (1 - y) * np.log(1 - p)).mean(0)
    # one entry per model: per target (independent) or the network's sum (shared)
    per_model = per_target if multi_target == "independent" else [per_target.sum()]
    np.testing.assert_allclose(clf.history[-1, "valid_loss_per_model"], per_model,
                               rtol=1e-4)
    np.testing.assert_allclose(clf.history[-1, "valid_loss"], per_target.sum(), rtol=1e-4)


def test_non_finite_loss_warns_and_names_lr():
    feats, speakers, labels = _sequences(n_recordings=12)
    X = _batch(feats, speakers)
    with pytest.warns(RuntimeWarning, match=r"non-finite at epoch 1 .*Lower lr \(now 1e\+30\)"):
        EncInterAttDecClassifier(lr=1e30, max_epochs=2, random_state=0, **TINY).fit(X, labels)


def test_constant_validation_predictions_warn():
    feats, speakers, labels = _sequences(n_recordings=12)
    X = _batch(feats, speakers)
    # a huge L2 penalty leaves every weight at zero: one class everywhere
    with pytest.warns(UserWarning, match=r"target\(s\) \[0\] predict the same class"):
        StackedIntraAttClassifier(l2_kernel=1e4, l1_bias=1e4, lr=0.1, max_epochs=3,
                                  random_state=0, **TINY).fit(X, labels)


def test_default_networks_learn_on_held_out_speakers():
    # the generated corpus carries a real (imperfect) audio-face signal: with their
    # defaults both networks must detect AU12/AU17 on speakers they never heard, with
    # predictions that vary along the recordings (no flat line, no single class)
    from sklearn_s2au import OpenSmileLLD, SpeakerNormaliser, sequence_uar
    from sklearn_s2au.datasets import make_speech_au_corpus

    corpus = make_speech_au_corpus(n_speakers=6, recordings_per_speaker=10, random_state=1)
    frames = OpenSmileLLD("eGeMAPSv02").fit_transform(corpus.X)
    bunch = corpus.labels_frame(aus=["AU12", "AU17"], phases=["occurrence"])
    test = frames["speaker"].isin(["spk05", "spk06"]).to_numpy()
    y_train = [y for y, held_out in zip(bunch.y, test) if not held_out]
    y_test = [y for y, held_out in zip(bunch.y, test) if held_out]
    for cls in (EncInterAttDecClassifier, StackedIntraAttClassifier):
        name = cls.__name__
        # three seeds (initial weights and validation speaker): on 2 test speakers one
        # seed's UAR of a target varies by about 0.1, their mean far less
        uars = []
        for seed in range(3):
            pipe = Pipeline([("norm", SpeakerNormaliser()),
                             ("pad", SequencePadder(max_len=100)),
                             ("clf", cls(random_state=seed))]).fit(frames[~test], y_train)
            pred = pipe.predict(frames[test])
            proba = np.concatenate(pipe.predict_proba(frames[test]))
            frames_pred = np.concatenate(pred)
            for k in range(2):
                assert 0.05 < frames_pred[:, k].mean() < 0.95, (name, seed)  # not one class
                assert proba[:, k].std() > 0.03, (name, seed)      # not a flat probability
            uars.append(sequence_uar(y_test, pred, return_per_target=True))
        uars = np.array(uars)                                      # (seed, target)
        # every seed: every target above chance, their mean clearly so; over the seeds
        # every target clearly above chance
        assert (uars > 0.5).all(), (name, uars.round(3).tolist())
        assert (uars.mean(1) > 0.57).all(), (name, uars.round(3).tolist())
        assert (uars.mean(0) > 0.57).all(), (name, uars.round(3).tolist())
        assert uars.mean() > 0.6, (name, uars.round(3).tolist())


def test_paper_settings_are_one_call_away():
    from sklearn_s2au.classifiers import PAPER_DECODER, PAPER_SETTINGS, paper_settings

    assert paper_settings(StackedIntraAttClassifier) == PAPER_SETTINGS
    assert paper_settings(EncInterAttDecClassifier()) == {**PAPER_SETTINGS, **PAPER_DECODER}
    feats, speakers, labels = _sequences(n_recordings=6)
    X = _batch(feats, speakers)
    clf = EncInterAttDecClassifier(max_epochs=1, random_state=0, **TINY)
    clf.set_params(**paper_settings(clf)).set_params(max_epochs=1, batch_size=8).fit(X, labels)
    assert (clf.lr, clf.l2_kernel) == (1e-4, 1e-1)
    decoder = clf.module_.decoder
    assert decoder.attention_window is None and not decoder.aligned_input
    default = EncInterAttDecClassifier(max_epochs=1, random_state=0, **TINY).fit(X, labels)
    assert default.module_.decoder.attention_window == 8.0
    assert default.module_.decoder.aligned_input
    assert (default.lr, default.batch_size) == (1e-3, 8)


# ---- threshold="auto" and weight averaging ---------------------------------------------

def test_best_uar_cut_maximises_uar_and_prefers_the_middle():
    from sklearn_s2au.classifiers import _best_uar_cut

    # separable: the cut lies between the classes
    assert _best_uar_cut([-3.0, -2.0, 1.0, 2.0], [0, 0, 1, 1]) == -0.5
    # positives score lower than 0 but above the negatives: the cut follows them
    cut = _best_uar_cut([-4.0, -3.5, -1.0, -0.8, -2.0], [0, 0, 1, 1, 0])
    assert -2.0 < cut < -1.0
    # every cut equally good (scores carry nothing): the one nearest 0
    assert _best_uar_cut([0.0, 0.0, 1.0, 1.0], [0, 1, 0, 1]) == 0.5
    # brute force on random data: no cut does better
    rng = np.random.RandomState(0)
    scores, labels = rng.randn(200), rng.rand(200) < 0.2
    cut = _best_uar_cut(scores, labels)

    def uar(c):
        pred = scores > c
        return 0.5 * (pred[labels].mean() + (~pred[~labels]).mean())

    assert np.isclose(uar(cut), max(uar(c) for c in np.r_[scores, scores - 1e-9]))
    assert _best_uar_cut([0.1, 0.2], [1, 1]) is None


def test_auto_threshold_is_the_validation_optimum():
    feats, speakers, labels = _sequences(n_recordings=12, n_targets=2)
    X = _batch(feats, speakers)
    fixed = StackedIntraAttClassifier(max_epochs=4, lr=1e-2, random_state=0, **TINY)
    auto = clone(fixed).set_params(threshold="auto")
    fixed.fit(X, labels)
    auto.fit(X, labels)
    np.testing.assert_array_equal(fixed.threshold_, [0.5, 0.5])
    # same weights: the threshold is chosen after training
    np.testing.assert_allclose(np.concatenate(auto.predict_proba(X)),
                               np.concatenate(fixed.predict_proba(X)))
    valid = auto.validation_recordings_
    proba = np.concatenate(auto.predict_proba(X.select(valid)))
    y = np.concatenate([labels[i] for i in valid])
    pred = np.concatenate(auto.predict(X.select(valid)))
    np.testing.assert_array_equal(pred, (proba > auto.threshold_).astype(int))
    for k in range(2):
        def uar(p):
            return 0.5 * (p[y[:, k] == 1].mean() + (1 - p[y[:, k] == 0]).mean())
        best = max(uar(proba[:, k] > c) for c in np.r_[proba[:, k], 0.0])
        assert np.isclose(uar(pred[:, k]), best)
    with pytest.raises(ValueError, match="threshold must be a probability in \\(0, 1\\) or "
                                         "'auto', got 'best'"):
        clone(fixed).set_params(threshold="best").fit(X, labels)


class _Snapshots(Callback):
    """Records the module's state after every epoch."""

    def on_train_begin(self, net, **kwargs):
        self.states = {}

    def on_epoch_end(self, net, **kwargs):
        self.states[len(net.history)] = {k: v.detach().clone()
                                         for k, v in net.module_.state_dict().items()}


def test_average_epochs_averages_the_best_snapshots():
    feats, speakers, labels = _sequences(n_recordings=12)
    X = _batch(feats, speakers)
    recorder = _Snapshots()
    clf = StackedIntraAttClassifier(max_epochs=6, lr=3e-2, prev_rounds=50, last_top_results=6,
                                    average_epochs=3, callbacks=[("snap", recorder)],
                                    random_state=0, **TINY).fit(X, labels)
    scores = np.array([row["valid_uar_per_model"][0] for row in clf.history])
    # the 3 best of the 6 epochs, ties to the later one
    order = sorted(range(6), key=lambda e: (-scores[e], -e))[:3]
    best = [e + 1 for e in order]
    assert clf.selected_epochs_[0] == best[0]
    state = clf.module_.state_dict()
    averaged = 0
    for name, value in state.items():
        if value.is_floating_point():
            expected = torch.stack([recorder.states[e][name] for e in best]).mean(0)
            torch.testing.assert_close(value, expected)
            single = recorder.states[best[0]][name]
            averaged += not torch.equal(value, single)
        else:
            assert torch.equal(value, recorder.states[best[0]][name])
    assert averaged > 0          # the epochs differ, so the average is not one of them
    with pytest.raises(ValueError, match="average_epochs=7 must not exceed last_top_results=6"):
        StackedIntraAttClassifier(max_epochs=1, last_top_results=6, average_epochs=7,
                                  **TINY).fit(X, labels)


# ---- skorch's device -----------------------------------------------------------------

_DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here"))]


@pytest.mark.parametrize("device", _DEVICES)
@pytest.mark.parametrize("cls", [StackedIntraAttClassifier, EncInterAttDecClassifier])
def test_device_runs_end_to_end_with_early_stopping(cls, device):
    # two targets, stopping rules that freeze one model early (active-model masking,
    # snapshot restore), attention maps and the "auto" threshold all on `device`
    feats, speakers, labels = _sequences(n_recordings=12, n_targets=2)
    X = _batch(feats, speakers)
    params = dict(max_epochs=8, prev_rounds=2, patience=1, last_top_results=3,
                  average_epochs=2, threshold="auto", lr=1e-2, random_state=0, **TINY)
    clf = cls(device=device, **params).fit(X, labels)
    assert next(clf.module_.parameters()).device.type == device
    proba = clf.predict_proba(X)
    assert all(p.shape == (len(f), 2) and np.isfinite(p).all() for p, f in zip(proba, feats))
    if cls is EncInterAttDecClassifier:
        maps = clf.predict_attention(X, layer="decoder")
        np.testing.assert_allclose(maps[0].sum(1), 1.0, rtol=1e-4)
    if device == "cpu":
        # "cpu" passed explicitly goes through the same code as the default
        reference = cls(**params).fit(X, labels)
        np.testing.assert_array_equal(np.concatenate(proba),
                                      np.concatenate(reference.predict_proba(X)))


@pytest.mark.parametrize("cls", [StackedIntraAttClassifier, EncInterAttDecClassifier])
def test_backends_record_what_ran_and_agree(cls):
    feats, speakers, labels = _sequences(n_recordings=12, n_targets=2)
    X = _batch(feats, speakers)
    params = dict(max_epochs=3, valid_speakers=0, random_state=0, lr=1e-2,
                  module__intra_att=("pa", 3), **TINY)
    compiled = cls(backend="compiled", **params).fit(X, labels)
    auto = cls(**params).fit(X, labels)
    torch_ = cls(backend="torch", **params).fit(X, labels)
    assert (compiled.backend_, auto.backend_, torch_.backend_) == ("compiled", "compiled",
                                                                  "torch")
    p_compiled, p_auto, p_torch = (np.concatenate(c.predict_proba(X))
                                   for c in (compiled, auto, torch_))
    np.testing.assert_array_equal(p_auto, p_compiled)
    # the same training on the other backend: float32 rounding apart, the same network
    np.testing.assert_allclose(p_torch, p_compiled, atol=2e-3)
    assert not np.array_equal(p_torch, p_compiled)
    with pytest.raises(ValueError, match="backend must be one of"):
        cls(backend="cuda", **params).fit(X, labels)
    with pytest.raises(ValueError, match="not module__backend"):
        cls(module__backend="torch", **params).fit(X, labels)


def test_compiled_backend_refuses_a_gpu_device():
    feats, speakers, labels = _sequences()
    with pytest.raises(ValueError, match="backend='compiled' cannot run here"):
        EncInterAttDecClassifier(backend="compiled", device="cuda", max_epochs=1,
                                 **TINY).fit(_batch(feats, speakers), labels)


def test_results_do_not_depend_on_the_thread_count():
    feats, speakers, labels = _sequences(n_recordings=12, n_targets=3)
    X = _batch(feats, speakers)
    params = dict(max_epochs=3, random_state=0, module__intra_att=("pa", 3), **TINY)
    before = torch.get_num_threads()
    one, two = (EncInterAttDecClassifier(n_threads=n, **params).fit(X, labels)
                for n in (1, 2))
    assert (one.n_threads_, two.n_threads_) == (1, 2)
    np.testing.assert_allclose(np.concatenate(one.predict_proba(X)),
                               np.concatenate(two.predict_proba(X)), rtol=0, atol=1e-6)
    assert torch.get_num_threads() == before            # the limit was undone


# ---- encoders beyond the paper ----------------------------------------------------------

@pytest.mark.parametrize("cls", [StackedIntraAttClassifier, EncInterAttDecClassifier],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("encoder, floor", [("transformer", 0.62), ("tcn", 0.8)])
def test_classifiers_take_the_new_encoders_end_to_end(cls, encoder, floor):
    from sklearn_s2au.nn import TemporalConvEncoder, TransformerEncoderLayer

    feats, speakers, labels = _sequences(n_recordings=18, lengths=(20, 40))
    X = _batch(feats, speakers)
    clf = cls(max_epochs=25, lr=0.02, l2_kernel=0.0, random_state=0,
              module__encoder=encoder, module__n_heads=2, **TINY).fit(X, labels)
    layer = TransformerEncoderLayer if encoder == "transformer" else TemporalConvEncoder
    assert any(isinstance(m, layer) for m in clf.module_.modules())
    assert not any(isinstance(m, BiLSTM) for m in clf.module_.modules())
    pred = clf.predict(X)
    assert [p.shape for p in pred] == [(len(f),) for f in feats]
    assert clf.score(X, labels) > floor
    # an sklearn parameter like any other: clone, set_params, pickle
    assert clone(clf).get_params()["module__encoder"] == encoder
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(np.concatenate(again.predict_proba(X)),
                                  np.concatenate(clf.predict_proba(X)))
    other = clone(clf).set_params(module__encoder="lstm", max_epochs=1).fit(X, labels)
    assert any(isinstance(m, BiLSTM) for m in other.module_.modules())
    with pytest.raises(ValueError, match="module encoder must be one of"):
        clone(clf).set_params(module__encoder="gru").fit(X, labels)


@pytest.mark.filterwarnings("ignore:.*predict the same class:UserWarning")
@pytest.mark.parametrize("encoder", ["transformer", "tcn"])
def test_new_encoders_skip_stopped_models_without_changing_results(monkeypatch, encoder):
    feats, speakers, labels = _sequences(n_targets=4, n_features=3, lengths=(10, 24))
    X = _batch(feats, speakers)
    common = dict(max_epochs=10, lr=0.03, patience=1, prev_rounds=2, last_top_results=3,
                  valid_speakers=["s2"], random_state=3, module__dropout=0.3,
                  module__encoder=encoder, module__n_heads=2, multi_target="independent",
                  **TINY)
    skipping = StackedIntraAttClassifier(**common).fit(X, labels)
    monkeypatch.setattr(StackedIntraAttClassifier, "_running_models", lambda self: None)
    full = StackedIntraAttClassifier(**common).fit(X, labels)
    assert len(set(full.stopped_epochs_)) > 1
    np.testing.assert_array_equal(skipping.selected_epochs_, full.selected_epochs_)
    np.testing.assert_allclose(np.concatenate(skipping.predict_proba(X)),
                               np.concatenate(full.predict_proba(X)), atol=2e-5)
