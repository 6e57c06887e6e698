"""Tests of the frame grid: `frame_count`, `to_frame_grid` and its block-fed averager."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_s2au.framing import _GridAverager, frame_count, to_frame_grid


def _reference_grid(times, values, n_frames, frame_rate):
    """The grid written out independently: one bincount per column over all values, the
    means, and one np.interp per column over the whole grid for the empty frames."""
    index = np.minimum(np.floor(times * frame_rate + 1e-9).astype(int), n_frames - 1)
    counts = np.bincount(index, minlength=n_frames).astype(float)
    sums = np.stack([np.bincount(index, weights=values[:, j], minlength=n_frames)
                     for j in range(values.shape[1])], axis=1)
    filled = counts > 0
    sums[filled] /= counts[filled, None]
    where, missing = np.flatnonzero(filled), np.flatnonzero(~filled)
    for j in range(values.shape[1]):
        sums[missing, j] = np.interp(missing, where, sums[where, j])
    return sums


@settings(max_examples=60, deadline=None)
@given(n_values=st.integers(1, 400), rate=st.sampled_from([25, 30, 100, 230]),
       cuts=st.lists(st.integers(0, 400), max_size=12), seed=st.integers(0, 2**16))
def test_averager_fed_in_blocks_equals_one_call(n_values, rate, cuts, seed):
    """Any split of time-ordered values into blocks (empty ones, blocks inside one frame,
    a frame spread over several blocks, runs of empty frames across a block boundary at
    230 Hz) gives the grid of one pass over all values bit for bit."""
    rng = np.random.default_rng(seed)
    # 100 Hz window centres, as OpenSmileLLD gives them, and values of all magnitudes
    times = np.arange(n_values) * 0.01 + 0.03
    values = rng.standard_normal((n_values, 3)) * 10.0 ** rng.integers(-8, 8, (n_values, 3))
    n_frames = frame_count(times[-1] + 0.03, rate)
    expected = _reference_grid(times, values, n_frames, rate)
    assert np.array_equal(to_frame_grid(times, values, n_frames, rate), expected)
    for dtype in (np.float64, np.float32):
        grid = _GridAverager(n_frames, 3, rate, dtype=dtype)
        bounds = [0, *sorted(min(c, n_values) for c in cuts), n_values]
        for start, stop in zip(bounds[:-1], bounds[1:]):
            grid.add(times[start:stop], values[start:stop], final=False)
        out = grid.result()
        assert out.dtype == dtype
        assert np.array_equal(out, expected.astype(dtype))


def test_averager_rejects_values_out_of_time_order():
    grid = _GridAverager(10, 1, 25)
    grid.add([0.01, 0.05, 0.09], np.ones((3, 1)), final=False)
    with pytest.raises(ValueError, match="values must come in time order"):
        grid.add([0.02], np.ones((1, 1)), final=False)


def test_a_partial_last_frame_gets_the_last_values():
    # 0.1 s at 25 Hz: frames [0, 0.04), [0.04, 0.08), [0.08, 0.1); centres up to 0.095 s
    times = np.arange(10) * 0.01 + 0.005
    grid = to_frame_grid(times, np.arange(10.0)[:, None], frame_count(0.1, 25), 25)
    np.testing.assert_array_equal(grid.ravel(), [1.5, 5.5, 8.5])


def test_values_after_the_last_frame_are_an_error():
    with pytest.raises(ValueError, match=r"2 values have time stamps after the last of 2 "
                                         r"frames at 25 Hz"):
        to_frame_grid(np.array([0.01, 0.05, 0.13, 0.14]), np.ones((4, 1)), 2, 25)
