"""SpeakerNormaliser and SequencePadder on frame tables built from random numbers."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn import config_context
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_s2au.preprocessing import SequenceBatch, SequencePadder, SpeakerNormaliser


def _frame_table(speakers=("ann", "bob", "cy"), per_speaker=3, n_features=4, seed=0,
                 lengths=(1, 30)):
    """Frame table whose speakers differ in offset and scale, string index, extra column."""
    rng = np.random.RandomState(seed)
    rows = []
    for s, speaker in enumerate(speakers):
        offset = rng.uniform(-50, 50, n_features)
        scale = rng.uniform(0.1, 10, n_features)
        for r in range(per_speaker):
            n = rng.randint(lengths[0], lengths[1] + 1)
            feats = (rng.randn(n, n_features) * scale + offset).astype(np.float32)
            rows.append({"speaker": speaker, "features": feats, "take": r})
    index = pd.Index([f"{row['speaker']}_{row['take']}" for row in rows], name="recording")
    return pd.DataFrame(rows, index=index)


def _speaker_frames(X, speaker):
    return np.concatenate(list(X.loc[X["speaker"] == speaker, "features"])).astype(np.float64)


def test_speaker_mode_zscores_each_speaker():
    X = _frame_table()
    Xt = SpeakerNormaliser().fit_transform(X)
    assert Xt.index.equals(X.index) and list(Xt.columns) == list(X.columns)
    assert Xt["take"].tolist() == X["take"].tolist()
    assert all(f.dtype == np.float32 for f in Xt["features"])
    assert [f.shape for f in Xt["features"]] == [f.shape for f in X["features"]]
    for speaker in ("ann", "bob", "cy"):
        raw = _speaker_frames(X, speaker)
        out = _speaker_frames(Xt, speaker)
        expected = (raw - raw.mean(0)) / raw.std(0)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(out.std(0), 1, atol=1e-5)
    # the input is not modified
    assert not np.allclose(X["features"].iloc[0], Xt["features"].iloc[0])


def test_unseen_speaker_uses_only_its_own_frames():
    train = _frame_table(speakers=("ann", "bob"), seed=1)
    test = _frame_table(speakers=("zoe", "yan"), seed=2)
    norm = SpeakerNormaliser().fit(train)
    out = norm.transform(test)
    for speaker in ("zoe", "yan"):
        raw = _speaker_frames(test, speaker)
        np.testing.assert_allclose(_speaker_frames(out, speaker),
                                   (raw - raw.mean(0)) / raw.std(0), rtol=1e-5, atol=1e-5)
    # no information from other speakers (test or train) reaches a speaker's output
    alone = SpeakerNormaliser().fit(train.iloc[:1]).transform(test[test["speaker"] == "zoe"])
    np.testing.assert_array_equal(np.concatenate(list(alone["features"])),
                                  _speaker_frames(out, "zoe").astype(np.float32))
    # and the row order of the table does not matter
    shuffled = test.sample(frac=1, random_state=0)
    out_shuffled = norm.transform(shuffled)
    for label in test.index:
        np.testing.assert_array_equal(out_shuffled.loc[label, "features"],
                                      out.loc[label, "features"])


def test_labels_are_never_used():
    X = _frame_table()
    y = [np.ones(len(f)) for f in X["features"]]
    a = SpeakerNormaliser().fit(X, y).transform(X)
    b = SpeakerNormaliser().fit(X).transform(X)
    for fa, fb in zip(a["features"], b["features"]):
        np.testing.assert_array_equal(fa, fb)


def test_fitted_statistics():
    X = _frame_table()
    norm = SpeakerNormaliser().fit(X)
    assert norm.n_features_in_ == 4
    assert norm.mean_.index.tolist() == ["ann", "bob", "cy"]
    assert norm.mean_.shape == norm.scale_.shape == (3, 4)
    for speaker in ("ann", "bob", "cy"):
        raw = _speaker_frames(X, speaker)
        np.testing.assert_allclose(norm.mean_.loc[speaker], raw.mean(0), rtol=1e-10)
        np.testing.assert_allclose(norm.scale_.loc[speaker], raw.std(0), rtol=1e-10)
        assert norm.n_frames_[speaker] == len(raw)
    flat = np.concatenate(list(X["features"])).astype(np.float64)
    np.testing.assert_allclose(norm.global_mean_, flat.mean(0), rtol=1e-10)
    np.testing.assert_allclose(norm.global_scale_, flat.std(0), rtol=1e-10)


def test_global_mode_uses_training_statistics():
    train = _frame_table(seed=3)
    test = _frame_table(speakers=("new",), seed=4)
    out = SpeakerNormaliser(mode="global").fit(train).transform(test)
    scaler = StandardScaler().fit(np.concatenate(list(train["features"])).astype(np.float64))
    expected = scaler.transform(np.concatenate(list(test["features"])).astype(np.float64))
    np.testing.assert_allclose(np.concatenate(list(out["features"])), expected,
                               rtol=1e-5, atol=1e-5)


def test_global_mode_works_without_speaker_column():
    X = _frame_table().drop(columns="speaker")
    norm = SpeakerNormaliser(mode="global").fit(X)
    assert norm.mean_.shape == (0, 4)
    out = norm.transform(X)
    assert list(out.columns) == ["features", "take"]
    np.testing.assert_allclose(np.concatenate(list(out["features"])).mean(0), 0, atol=1e-5)


def test_constant_features_and_single_frame_speakers_give_zeros():
    rng = np.random.RandomState(0)
    varying = rng.randn(40, 1)
    # 0.1 is not exact in binary: the mean of many copies is off by rounding, which must
    # not be blown up to +-1 by a tiny standard deviation.
    constant = np.full((40, 1), 0.1)
    big = np.full((40, 1), 12345.678)
    zero = np.zeros((40, 1))
    feats = np.hstack([varying, constant, big, zero]).astype(np.float32)
    X = pd.DataFrame({"speaker": ["ann", "ann", "solo"],
                      "features": [feats[:25], feats[25:], feats[:1] * 3]})
    for mode in ("speaker", "global"):
        out = SpeakerNormaliser(mode=mode).fit(X).transform(X)
        flat = np.concatenate(list(out["features"]))
        assert np.isfinite(flat).all()
        if mode == "speaker":
            np.testing.assert_array_equal(flat[:40, 1:], 0)   # constant for "ann"
            np.testing.assert_array_equal(flat[40:], 0)       # "solo" has a single frame
            np.testing.assert_allclose(flat[:40, 0].std(), 1, atol=1e-5)
        else:
            np.testing.assert_array_equal(flat[:, 3], 0)
    norm = SpeakerNormaliser().fit(X)
    assert norm.scale_.loc["ann", 1] == 0 and norm.scale_.loc["solo"].eq(0).all()


def test_large_offset_small_spread_is_still_normalised():
    rng = np.random.RandomState(0)
    feats = (1e4 + rng.randn(200, 1)).astype(np.float32)
    X = pd.DataFrame({"speaker": ["a"], "features": [feats]})
    out = SpeakerNormaliser().fit_transform(X)["features"].iloc[0]
    np.testing.assert_allclose(out.std(), 1, atol=1e-3)
    np.testing.assert_allclose(out.mean(), 0, atol=1e-3)


def test_speaker_normaliser_errors():
    X = _frame_table()
    with pytest.raises(ValueError, match="mode must be 'speaker' or 'global', got 'spk'"):
        SpeakerNormaliser(mode="spk").fit(X)
    with pytest.raises(ValueError, match="no speaker column 'talker'"):
        SpeakerNormaliser(speaker_col="talker").fit(X)
    with pytest.raises(TypeError, match="expects a frame table"):
        SpeakerNormaliser().fit(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"the frame table is empty \(0 recordings\)"):
        SpeakerNormaliser().fit(X.iloc[:0])
    norm = SpeakerNormaliser().fit(X)
    narrow = X.assign(features=[f[:, :3] for f in X["features"]])
    with pytest.raises(ValueError, match="have 3 features but the normaliser was fitted on 4"):
        norm.transform(narrow)
    feats = list(X["features"])
    feats[X.index.get_loc("bob_1")] = np.full((3, 4), np.nan, dtype=np.float32)
    bad = X.assign(features=feats)
    with pytest.raises(ValueError, match="recording 'bob_1' has a non-finite value"):
        norm.transform(bad)


def test_speaker_normaliser_feature_names_clone_pickle():
    X = _frame_table()
    norm = SpeakerNormaliser().fit(X)
    assert norm.get_feature_names_out().tolist() == ["x0", "x1", "x2", "x3"]
    names = ["f0", "loudness", "mfcc1", "hnr"]
    assert norm.get_feature_names_out(names).tolist() == names
    with pytest.raises(ValueError, match="has 2 names but the frames have 4 features"):
        norm.get_feature_names_out(["a", "b"])
    assert clone(norm).get_params() == {"mode": "speaker", "speaker_col": "speaker"}
    again = pickle.loads(pickle.dumps(norm))
    for a, b in zip(again.transform(X)["features"], norm.transform(X)["features"]):
        np.testing.assert_array_equal(a, b)


def test_padder_matches_sequence_batch_and_keeps_every_frame():
    X = _frame_table(lengths=(1, 12))
    batch = SequencePadder(max_len=5).transform(X)   # stateless: no fit needed
    assert isinstance(batch, SequenceBatch)
    ref = SequenceBatch.from_features(list(X["features"]), X["speaker"].to_numpy(), 5)
    for name in ("X", "lengths", "recording", "offset", "speaker", "n_frames"):
        np.testing.assert_array_equal(getattr(batch, name), getattr(ref, name))
    assert batch.index.equals(X.index)
    assert batch.max_len == 5
    assert batch.recording_speakers().tolist() == X["speaker"].tolist()
    for orig, back in zip(X["features"], batch.unpad(batch.X)):
        np.testing.assert_array_equal(back, orig)


def test_padder_in_pipeline_after_normaliser():
    X = _frame_table()
    pipe = Pipeline([("norm", SpeakerNormaliser()), ("pad", SequencePadder(max_len=7))])
    batch = pipe.fit_transform(X)
    normalised = SpeakerNormaliser().fit_transform(X)
    for a, b in zip(batch.unpad(batch.X), normalised["features"]):
        np.testing.assert_array_equal(a, b)
    assert pipe.get_feature_names_out().tolist() == ["x0", "x1", "x2", "x3"]
    assert batch.mask().sum() == sum(len(f) for f in X["features"])


@pytest.mark.parametrize("max_len", [0, -3, 2.5, "100", True, None])
def test_padder_rejects_bad_max_len(max_len):
    X = _frame_table()
    padder = SequencePadder(max_len=max_len)
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        padder.fit(X)
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        padder.transform(X)


def test_padder_rejects_non_frame_tables():
    with pytest.raises(TypeError, match="expects a frame table"):
        SequencePadder().transform(np.zeros((2, 3)))
    recordings = pd.DataFrame({"speaker": ["a"], "signal": [np.zeros(10)],
                               "sampling_rate": [16000]})
    with pytest.raises(ValueError, match="put OpenSmileLLD before this step"):
        SequencePadder().transform(recordings)
    assert np.int64(3) == SequencePadder(max_len=np.int64(3)).transform(_frame_table()).max_len


def test_global_pandas_output_config_leaves_frame_tables_alone():
    """set_config(transform_output="pandas") must not rename a frame table's columns to
    feature names, nor try to turn a SequenceBatch into a DataFrame."""
    X = _frame_table()
    with config_context(transform_output="pandas"):
        out = SpeakerNormaliser().fit_transform(X)
        batch = SequencePadder(max_len=5).fit_transform(X)
    assert list(out.columns) == list(X.columns)
    assert isinstance(batch, SequenceBatch)
    assert not hasattr(SpeakerNormaliser(), "set_output")
