"""AU phase derivation (onset, apex, offset, occurrence) from intensity curves."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_s2au.labels import AUS, PHASES, au_name, au_phases, phase_name


def _code(curve, **params):
    """One letter per frame: O onset, A apex, F offset, . none."""
    p = au_phases(np.asarray(curve, dtype=float), **params)
    letters = np.full(len(curve), ".")
    letters[p.onset == 1] = "O"
    letters[p.apex == 1] = "A"
    letters[p.offset == 1] = "F"
    return "".join(letters)


def test_constants():
    assert PHASES == ("onset", "apex", "offset", "occurrence")
    assert AUS == ("AU01", "AU02", "AU04", "AU06", "AU07", "AU10", "AU12", "AU17")


def test_single_rise_plateau_fall():
    x = [0, 0, 1, 2, 3, 3, 3, 2, 1, 0, 0]
    p = au_phases(np.array(x, dtype=float))
    np.testing.assert_array_equal(p.onset, [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(p.apex, [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(p.offset, [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(p.occurrence, [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0])
    assert all(p[name].dtype == np.uint8 for name in PHASES)
    assert list(p) == list(PHASES)


def test_sharp_peak_is_a_one_frame_apex():
    assert _code([0, 1, 2, 3, 2, 1, 0]) == ".OOAFF."


def test_two_overlapping_events_fall_then_new_rise_before_zero():
    # The first event falls to 1.5 (offset), a new onset starts at the first rise after
    # that low point, climbs to a higher apex and falls to zero.
    x = [0, 1, 2, 3, 3, 2, 1.5, 2, 3, 4, 4, 3, 2, 1, 0]
    assert _code(x) == ".OOAAFFOOAAFFF."


def test_small_bump_during_offset_stays_offset():
    # +0.15 after the low point is below plateau_tolerance: not a new onset.
    assert _code([0, 2, 3, 3, 2, 1.9, 2.05, 1.5, 1, 0.6, 0]) == ".OAAFFFFFF."


def test_noisy_plateau_is_one_apex():
    rng = np.random.default_rng(0)
    plateau = 3 + rng.uniform(-0.12, 0.12, 30)
    x = np.concatenate([[0, 0, 1, 2], plateau, [2, 1, 0, 0]])
    code = _code(x)
    assert code == "..OO" + "A" * 30 + "FF.."


def test_single_dip_of_one_frame_does_not_start_an_offset():
    # One falling frame is not "at least two consecutive" falls.
    assert _code([0, 1, 2, 3, 2.5, 2.5, 2.5, 1.5, 0.8, 0]) == ".OOAAAAFF."


def test_long_hold_is_a_plateau_short_hold_stays_onset():
    # 7 frames without a rise (> max_hold=5): apex, then a new onset.
    assert _code([0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 2, 1, 0]) == ".AAAAAAAAOAAFF."
    # 2 frames of little change inside a granular rise: onset.
    assert _code([0, 1, 1, 1, 2, 3, 3, 2, 1, 0]) == ".OOOOAAFF."
    assert _code([0, 1, 1, 1, 2, 3, 3, 2, 1, 0], max_hold=1) == ".AAAOAAFF."


def test_curve_starting_mid_event_and_threshold():
    assert _code([3, 3, 2, 1, 0]) == "AAFF."
    # Values at or below the threshold are "zero": never labelled.
    assert _code([0.2, 0.4, 0.5, 0.45, 0.3]) == "....."
    assert _code([0.2, 0.4, 0.5, 0.45, 0.3], threshold=0.3) == ".AAA."
    assert _code([0.2, 0.4, 0.5, 0.45, 0.3], threshold=0.3, plateau_tolerance=0.05) == ".OAA."


def test_all_zero_curve():
    p = au_phases(np.zeros(20))
    for name in PHASES:
        np.testing.assert_array_equal(p[name], np.zeros(20, dtype=np.uint8))


def test_layouts_2d_and_ragged_match_single_curves():
    curves = [np.array([0, 1, 2, 3, 3, 2, 1, 0.0]), np.array([3, 3, 2, 1, 0, 0, 1, 2.0]),
              np.zeros(8)]
    singles = [au_phases(c) for c in curves]
    two_d = au_phases(np.stack(curves))
    ragged = au_phases([curves[0], curves[1][:5], np.zeros(0), curves[2]])
    for name in PHASES:
        assert two_d[name].shape == (3, 8)
        assert ragged[name].dtype == object and len(ragged[name]) == 4
        for i, single in enumerate(singles):
            np.testing.assert_array_equal(two_d[name][i], single[name])
        np.testing.assert_array_equal(ragged[name][0], singles[0][name])
        np.testing.assert_array_equal(ragged[name][1], au_phases(curves[1][:5])[name])
        assert len(ragged[name][2]) == 0
    # A plain list of numbers is one curve.
    np.testing.assert_array_equal(au_phases([0, 1, 2, 1, 0]).offset, [0, 0, 0, 1, 0])


def test_curves_do_not_leak_into_each_other():
    # Curve 0 ends high, curve 1 starts at zero: no fall across the boundary.
    a, b = np.array([0, 1, 2, 3, 3.0]), np.array([0, 0, 1, 2, 2.0])
    joint = au_phases([a, b])
    for name in PHASES:
        np.testing.assert_array_equal(joint[name][0], au_phases(a)[name])
        np.testing.assert_array_equal(joint[name][1], au_phases(b)[name])


def test_smooth_removes_frame_jitter():
    x = np.array([0, 0, 1, 2, 3.5, 3.2, 2.9, 3.5, 3.2, 2.9, 3.5, 3.2, 2.9, 2, 1, 0, 0])
    # Unsmoothed, each 3.5 -> 2.9 double fall starts an offset inside the plateau.
    assert _code(x) == "..OOAFFAFFAFFFF.."
    assert _code(x, smooth=3) == "..OOOAAAAAAAFFF.."


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 500).map(lambda v: v / 100), max_size=40), min_size=1,
                max_size=5))
def test_phases_are_exclusive_and_occurrence_is_their_union(curves):
    p = au_phases([np.array(c) for c in curves])
    for i, c in enumerate(curves):
        onset, apex, offset = p.onset[i], p.apex[i], p.offset[i]
        assert np.all(onset.astype(int) + apex + offset <= 1)
        np.testing.assert_array_equal(p.occurrence[i], onset | apex | offset)
        # Occurrence is exactly the active frames.
        np.testing.assert_array_equal(p.occurrence[i], (np.array(c) > 0.5).astype(np.uint8))


def test_nan_is_an_error_naming_curve_and_frame():
    with pytest.raises(ValueError, match="curve 1 .* frame 2"):
        au_phases([np.zeros(3), np.array([0, 1, np.nan, 1])])


@pytest.mark.parametrize("params, message", [
    (dict(threshold=np.nan), r"threshold must be a finite number, got nan"),
    (dict(min_change=-1), r"min_change and plateau_tolerance must be >= 0, got -1"),
    (dict(min_fall_frames=0), r"min_fall_frames must be an integer >= 1, got 0"),
    (dict(max_hold=1.5), r"max_hold must be an integer >= 0, got 1\.5"),
    (dict(smooth=0), r"smooth must be an integer >= 1, got 0"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        au_phases(np.zeros(3), **params)


def test_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        au_phases(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="curve 1"):
        au_phases([np.zeros(3), np.zeros((2, 2))])


@pytest.mark.parametrize("spelling", [1, "AU1", "AU01", "au01", " AU1 ", "1", "AU01_r"])
def test_au_name_spellings(spelling):
    assert au_name(spelling) == "AU01"


@pytest.mark.parametrize("bad", ["brow", "AU", 0, "AU100", 1.5, True])
def test_au_name_rejects(bad):
    with pytest.raises(ValueError, match="Action Unit"):
        au_name(bad)


def test_phase_name():
    assert phase_name("Apex") == "apex"
    with pytest.raises(ValueError, match="onset"):
        phase_name("peak")
