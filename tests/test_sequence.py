"""SequenceBatch: chunking, padding, masks, label padding, unpadding and selection."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_s2au.preprocessing import SequenceBatch


def _features(lengths, n_features=2, seed=0):
    rng = np.random.RandomState(seed)
    # 1 + |noise| keeps every real value non-zero, so padding (0) is recognisable
    return [(1 + np.abs(rng.randn(n, n_features))).astype(np.float32) for n in lengths]


def test_from_features_layout():
    feats = _features([5, 2, 3])
    batch = SequenceBatch.from_features(feats, ["a", "b", "c"], 3,
                                        index=pd.Index(["r0", "r1", "r2"]))
    assert batch.X.dtype == np.float32 and batch.X.shape == (4, 3, 2)
    assert batch.lengths.tolist() == [3, 2, 2, 3]
    assert batch.recording.tolist() == [0, 0, 1, 2]
    assert batch.offset.tolist() == [0, 3, 0, 0]
    assert batch.speaker.tolist() == ["a", "a", "b", "c"]
    assert batch.n_frames.tolist() == [5, 2, 3]
    assert (len(batch), batch.n_chunks, batch.max_len, batch.n_features) == (3, 4, 3, 2)
    np.testing.assert_array_equal(batch.X[0], feats[0][:3])
    np.testing.assert_array_equal(batch.X[1, :2], feats[0][3:])
    np.testing.assert_array_equal(batch.X[3], feats[2])
    # padding is zero, and exactly where the mask says
    mask = batch.mask()
    assert mask.tolist() == [[True] * 3, [True, True, False], [True, True, False], [True] * 3]
    assert np.all(batch.X[~mask] == 0) and np.all(batch.X[mask] != 0)
    assert batch.recording_speakers().tolist() == ["a", "b", "c"]


def test_from_features_without_speakers():
    batch = SequenceBatch.from_features(_features([4]), None, 2)
    assert batch.speaker.tolist() == [None, None]
    assert batch.index is None


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(1, 23), min_size=1, max_size=6),
       max_len=st.integers(1, 9))
def test_unpad_roundtrip_one_value_per_real_frame(lengths, max_len):
    feats = _features(lengths)
    batch = SequenceBatch.from_features(feats, list("abcdef")[: len(lengths)], max_len)
    assert batch.n_chunks == sum(-(-n // max_len) for n in lengths)
    assert batch.mask().sum() == sum(lengths)
    back = batch.unpad(batch.X)
    assert back.dtype == object and len(back) == len(lengths)
    for orig, rec in zip(feats, back):
        np.testing.assert_array_equal(rec, orig)
    # per-frame outputs of shape (n_chunks, max_len) come back with one value per frame
    flat = batch.unpad(batch.X[:, :, 0])
    assert [f.shape for f in flat] == [(n,) for n in lengths]


def test_pad_labels_1d_and_2d():
    batch = SequenceBatch.from_features(_features([5, 2]), ["a", "b"], 3)
    y = [np.array([1, 0, 1, 1, 1]), np.array([1, 1])]
    padded = batch.pad_labels(y)
    assert padded.dtype == np.float32 and padded.shape == (3, 3)
    assert padded.tolist() == [[1, 0, 1], [1, 1, 0], [1, 1, 0]]
    assert np.all(padded[~batch.mask()] == 0)
    back = batch.unpad(padded)
    assert [b.tolist() for b in back] == [[1, 0, 1, 1, 1], [1, 1]]

    y2 = [np.stack([a, 1 - a], axis=1) for a in y]
    padded2 = batch.pad_labels(y2)
    assert padded2.shape == (3, 3, 2)
    np.testing.assert_array_equal(padded2[..., 0], padded)
    np.testing.assert_array_equal(padded2[..., 1][batch.mask()], 1 - padded[batch.mask()])
    assert np.all(padded2[~batch.mask()] == 0)


def test_pad_labels_errors_name_the_recording():
    batch = SequenceBatch.from_features(_features([5, 2]), ["a", "b"], 3,
                                        index=pd.Index(["take1", "take2"]))
    with pytest.raises(ValueError, match=r"recording 'take2' has 2 feature frames but 3"):
        batch.pad_labels([np.zeros(5), np.zeros(3)])
    with pytest.raises(ValueError, match=r"recording 'take1' contain \[2\.0\]"):
        batch.pad_labels([np.full(5, 2), np.zeros(2)])
    with pytest.raises(ValueError, match="labels for 1 recordings but features for 2"):
        batch.pad_labels([np.zeros(5)])


def test_unpad_rejects_wrong_shape():
    batch = SequenceBatch.from_features(_features([5, 2]), ["a", "b"], 3)
    with pytest.raises(ValueError, match=r"expected outputs of shape \(3, 3, \.\.\.\)"):
        batch.unpad(np.zeros((3, 4)))


def test_select_matches_batch_of_the_subset():
    feats = _features([5, 2, 7, 1])
    speakers = ["a", "b", "c", "d"]
    index = pd.Index(["r0", "r1", "r2", "r3"])
    batch = SequenceBatch.from_features(feats, speakers, 3, index=index)
    for chosen in ([2, 0], [3], [True, False, True, True]):
        positions = (np.flatnonzero(chosen) if isinstance(chosen[0], bool)
                     else np.asarray(chosen))
        sub = batch.select(chosen)
        ref = SequenceBatch.from_features([feats[i] for i in positions],
                                          [speakers[i] for i in positions], 3,
                                          index=index[positions])
        for name in ("X", "lengths", "recording", "offset", "speaker", "n_frames"):
            np.testing.assert_array_equal(getattr(sub, name), getattr(ref, name), err_msg=name)
        assert sub.index.tolist() == ref.index.tolist()
    assert len(batch[1:3]) == 2
    assert batch[1:3].n_frames.tolist() == [2, 7]
