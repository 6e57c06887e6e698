"""Tests of OpenSmileLLD: real openSMILE on short synthetic harmonic tones."""

import pickle
import threading
import warnings

import numpy as np
import opensmile
import pandas as pd
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import config_context
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from sklearn_s2au import _smile as smile_module
from sklearn_s2au import features as features_module
from sklearn_s2au.features import MIN_DURATION, OpenSmileLLD
from sklearn_s2au.framing import frame_count


def tone(duration, sampling_rate=16000, seed=0, peak=0.5):
    """Harmonic series on a slowly moving f0 plus a little noise, float32."""
    rng = np.random.default_rng(seed)
    n = int(np.ceil(duration * sampling_rate - 1e-9))
    t = np.arange(n) / sampling_rate
    f0 = rng.uniform(120, 180) * (1 + 0.1 * np.sin(2 * np.pi * 1.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    x = sum(np.sin(k * phase) / k for k in range(1, 9)) + 0.05 * rng.standard_normal(n)
    return (peak * x / np.max(np.abs(x))).astype(np.float32)


def recordings(signals, sampling_rate=16000, labels=None):
    labels = labels if labels is not None else [f"rec_{i}" for i in range(len(signals))]
    return pd.DataFrame({"speaker": [f"spk{i % 2}" for i in range(len(signals))],
                         "signal": list(signals), "sampling_rate": sampling_rate},
                        index=pd.Index(labels, name="recording"))


def one(frames, i=0):
    return frames["features"].iloc[i]


@pytest.fixture(scope="module")
def direct_levels():
    """The two ComParE levels as openSMILE gives them, for a 1.2 s tone at 16 kHz."""
    x = tone(1.2)
    lld = opensmile.Smile("ComParE_2016", "lld").process_signal(x, 16000)
    deltas = opensmile.Smile("ComParE_2016", "lld_de").process_signal(x, 16000)
    return x, lld, deltas


# --- feature sets and names --------------------------------------------------------------

def test_compare_is_65_lld_then_65_deltas(direct_levels):
    x, lld, deltas = direct_levels
    est = OpenSmileLLD().fit(recordings([x]))
    names = est.get_feature_names_out()
    assert len(names) == 130 and est.n_features_ == 130
    assert names[0] == "F0final_sma" and names[64] == "mfcc_sma[14]"
    assert names[65] == "F0final_sma_de" and names[-1] == "mfcc_sma_de[14]"
    assert list(names) == list(lld.columns) + list(deltas.columns)
    assert list(est.feature_names_) == list(names)


def test_egemaps_has_25_lld_names():
    est = OpenSmileLLD("eGeMAPSv02").fit(recordings([tone(0.5)]))
    names = est.get_feature_names_out()
    assert len(names) == 25
    assert names[0] == "Loudness_sma3" and names[-1] == "F3amplitudeLogRelF0_sma3nz"
    assert one(est.transform(recordings([tone(0.5)]))).shape == (13, 25)


@pytest.mark.parametrize("feature_set", [opensmile.FeatureSet.eGeMAPSv02, "egemapsv02"])
def test_feature_set_accepts_enum_and_any_case(feature_set):
    assert len(OpenSmileLLD(feature_set).get_feature_names_out()) == 25


def test_lld_and_delta_levels_are_joined_by_frame_index(direct_levels):
    """At 100 Hz grid frame k holds LLD frame k - 3 (60 ms window centred 30 ms in)."""
    x, lld, deltas = direct_levels
    n_lld = len(lld)
    # Run separately, openSMILE's delta level has two more (end-of-input) rows.
    assert len(deltas) == n_lld + 2
    grid = one(OpenSmileLLD(frame_rate=100, normalise_peak=False).transform(recordings([x])))
    assert grid.shape == (frame_count(1.2, 100), 130) == (120, 130)
    expected = np.hstack([lld.to_numpy(), deltas.to_numpy()[:n_lld]]).astype(np.float32)
    np.testing.assert_array_equal(grid[3:3 + n_lld], expected)
    # frames before the first and after the last window centre: the nearest LLD frame
    np.testing.assert_array_equal(grid[:3], np.repeat(expected[:1], 3, axis=0))
    np.testing.assert_array_equal(grid[3 + n_lld:], np.repeat(expected[-1:], 120 - 3 - n_lld,
                                                              axis=0))


def test_25_hz_grid_averages_lld_frames_by_window_centre(direct_levels):
    x, lld, deltas = direct_levels
    values = np.hstack([lld.to_numpy(), deltas.to_numpy()[:len(lld)]])
    grid = one(OpenSmileLLD(normalise_peak=False).transform(recordings([x])))
    assert grid.shape == (30, 130)
    # centres i * 10 ms + 30 ms: grid frame k = [40k, 40k + 40) ms gets i = 4k - 3 ... 4k
    np.testing.assert_allclose(grid[0], values[0], rtol=1e-6)
    for k in (1, 10, 20):
        np.testing.assert_allclose(grid[k], values[4 * k - 3:4 * k + 1].mean(axis=0),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sampling_rate, hop_samples", [(16000, 160), (22050, 221)])
def test_frame_start_times_are_frame_index_times_hop(sampling_rate, hop_samples):
    """Reported start times equal i * hop except the end-of-input rows, which repeat."""
    lld = opensmile.Smile("ComParE_2016", "lld").process_signal(
        tone(1.0, sampling_rate), sampling_rate)
    starts = lld.index.get_level_values("start").total_seconds().to_numpy()
    hop = starts[1]
    # the hop is a whole number of samples: 221 (10.02 ms) at 22.05 kHz
    assert hop * sampling_rate == pytest.approx(hop_samples)
    np.testing.assert_allclose(starts[:-1], np.arange(len(starts) - 1) * hop, atol=1e-6)
    assert starts[-1] == pytest.approx(starts[-2])


# --- frame counts on the grid ---------------------------------------------------------

@pytest.mark.parametrize("sampling_rate", [8000, 11025, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("frame_rate", [25, 100])
def test_rows_equal_frame_count(sampling_rate, frame_rate):
    durations = [MIN_DURATION, 0.5, 1.0, 1.234, 1.5]
    signals = [tone(d, sampling_rate, seed=i) for i, d in enumerate(durations)]
    frames = OpenSmileLLD(frame_rate=frame_rate).transform(recordings(signals, sampling_rate))
    for signal, arr in zip(signals, frames["features"]):
        assert arr.shape == (frame_count(len(signal) / sampling_rate, frame_rate), 130)
        assert arr.dtype == np.float32 and np.isfinite(arr).all()


@settings(max_examples=15, deadline=None)
@given(n_samples=st.integers(1600, 24000), sampling_rate=st.sampled_from([8000, 16000, 22050]),
       frame_rate=st.sampled_from([10, 25, 29.97, 50, 100, 200]))
def test_rows_equal_frame_count_property(n_samples, sampling_rate, frame_rate):
    n_samples = max(n_samples, int(np.ceil(MIN_DURATION * sampling_rate)))
    signal = tone(n_samples / sampling_rate, sampling_rate)[:n_samples]
    frames = OpenSmileLLD(frame_rate=frame_rate).transform(recordings([signal], sampling_rate))
    assert one(frames).shape == (frame_count(n_samples / sampling_rate, frame_rate), 130)
    assert np.isfinite(one(frames)).all()


def test_output_is_a_frame_table_with_the_input_index():
    X = recordings([tone(0.6), tone(0.9, seed=1)], labels=["b", "a"])
    X["extra"] = 1
    frames = OpenSmileLLD(speaker_col="speaker").fit_transform(X)
    assert list(frames.columns) == ["speaker", "features"]
    assert frames.index.equals(X.index)
    assert frames["speaker"].tolist() == ["spk0", "spk1"]
    assert [a.shape for a in frames["features"]] == [(15, 130), (23, 130)]


def test_custom_speaker_col_is_passed_through():
    X = recordings([tone(0.5)]).rename(columns={"speaker": "actor"})
    frames = OpenSmileLLD(speaker_col="actor").fit_transform(X)
    assert list(frames.columns) == ["actor", "features"] and frames["actor"].iloc[0] == "spk0"


# --- audio input: files, stereo, integer samples ---------------------------------------

def test_file_route_equals_signal_route_int16(tmp_path):
    pcm = np.round(tone(1.1) * 32767).astype(np.int16)
    path = tmp_path / "int16.wav"
    soundfile.write(path, pcm, 16000, subtype="PCM_16")
    by_file = OpenSmileLLD().transform(pd.DataFrame({"speaker": ["s"], "file": [str(path)]}))
    by_int16 = OpenSmileLLD().transform(recordings([pcm]))
    by_float = OpenSmileLLD().transform(recordings([pcm / 32768.0]))  # float64 accepted
    np.testing.assert_array_equal(one(by_file), one(by_int16))
    np.testing.assert_array_equal(one(by_file), one(by_float))
    assert one(by_file).shape == (28, 130)


@pytest.mark.parametrize("sampling_rate", [16000, 48000])
def test_stereo_file_and_arrays_are_mixed_down(tmp_path, sampling_rate):
    left, right = tone(0.8, sampling_rate, seed=1), tone(0.8, sampling_rate, seed=2)
    stereo = np.stack([left, right], axis=1)  # (n, 2)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, sampling_rate, subtype="FLOAT")
    est = OpenSmileLLD(normalise_peak=False)
    by_file = one(est.transform(pd.DataFrame({"speaker": ["s"], "file": [path]})))
    mono = (left + right) / 2
    for signal in (stereo, stereo.T, mono):
        np.testing.assert_array_equal(
            one(est.transform(recordings([signal], sampling_rate))), by_file)
    other = one(est.transform(recordings([left], sampling_rate)))
    assert not np.allclose(by_file, other)


# --- peak normalisation ------------------------------------------------------------------

def test_peak_normalisation_makes_level_irrelevant():
    x = tone(1.0, peak=0.5)
    quiet, loud = x * np.float32(0.25), x  # powers of two: scaling is exact
    norm = OpenSmileLLD().transform(recordings([quiet, loud]))
    np.testing.assert_array_equal(one(norm, 0), one(norm, 1))
    # normalised = the signal scaled to full scale (the largest 16-bit sample)
    full = x * np.float32((32767 / 32768) / np.abs(x).max())
    raw = OpenSmileLLD(normalise_peak=False).transform(recordings([quiet, loud, full]))
    np.testing.assert_array_equal(one(norm, 0), one(raw, 2))
    # without it, the RMS energy follows the level: 4x the amplitude, 4x the RMS
    rms = list(OpenSmileLLD().get_feature_names_out()).index("pcm_RMSenergy_sma")
    ratio = one(raw, 1)[:, rms].mean() / one(raw, 0)[:, rms].mean()
    assert ratio == pytest.approx(4.0, rel=0.01)
    assert one(norm, 0)[:, rms].mean() == pytest.approx(2 * one(raw, 1)[:, rms].mean(),
                                                        rel=0.01)


def test_full_scale_float_is_saturated_not_wrapped():
    x = tone(0.5)
    x[100] = 1.0  # openSMILE's int16(x * 32768) would turn this into -32768
    capped = x.copy()
    capped[100] = 32767 / 32768
    est = OpenSmileLLD(normalise_peak=False)
    np.testing.assert_array_equal(one(est.transform(recordings([x]))),
                                  one(est.transform(recordings([capped]))))


# --- parallel extraction, cloning, pickling ----------------------------------------------

def test_n_jobs_2_equals_n_jobs_1():
    signals = [tone(d, seed=i) for i, d in enumerate([0.4, 1.3, 0.7, 1.0, 0.5, 1.5, 0.9])]
    X = recordings(signals, labels=list("gfedcba"))
    sequential = OpenSmileLLD(n_jobs=1).transform(X)
    parallel = OpenSmileLLD(n_jobs=2, verbose=1).transform(X)
    assert parallel.index.equals(X.index)
    assert parallel["speaker"].tolist() == sequential["speaker"].tolist()
    for a, b in zip(sequential["features"], parallel["features"]):
        np.testing.assert_array_equal(a, b)


def test_error_in_a_worker_names_the_recording():
    signals = [tone(0.5, seed=i) for i in range(4)]
    signals[2][10] = np.nan
    with pytest.raises(ValueError, match=r"recording 'rec_2'.*non-finite"):
        OpenSmileLLD(n_jobs=2).transform(recordings(signals))


def test_clone_and_pickle_before_and_after_fit():
    X = recordings([tone(0.5)])
    est = OpenSmileLLD("eGeMAPSv02", frame_rate=100, n_jobs=2)
    assert clone(est).get_params() == est.get_params()
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params() == est.get_params()
    expected = one(est.fit_transform(X))
    # fitted state is only the names: no openSMILE object rides along
    assert set(vars(est)) == set(est.get_params()) | {"feature_names_", "n_features_"}
    for copy in (pickle.loads(pickle.dumps(est)), clone(est).fit(X)):
        np.testing.assert_array_equal(copy.feature_names_, est.feature_names_)
        np.testing.assert_array_equal(one(copy.transform(X)), expected)
    assert not hasattr(clone(est), "feature_names_")


@pytest.mark.parametrize("check", [
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    estimator_checks.check_mixin_order,
    estimator_checks.check_valid_tag_types,
])
def test_sklearn_api_checks(check):
    check("OpenSmileLLD", OpenSmileLLD())


def test_tags_and_pipeline_and_pandas_output():
    tags = OpenSmileLLD().__sklearn_tags__()
    assert not tags.input_tags.two_d_array and not tags.requires_fit
    X = recordings([tone(0.5)])
    pipe = Pipeline([("lld", OpenSmileLLD("eGeMAPSv02"))]).fit(X)
    assert len(pipe.get_feature_names_out()) == 25
    with config_context(transform_output="pandas"):  # must not relabel the frame table
        frames = pipe.transform(X)
    assert list(frames.columns) == ["speaker", "features"] and one(frames).shape == (13, 25)


# --- errors: each names the recording and the fix ----------------------------------------

def _bad_signal(label, signal, **params):
    X = recordings([tone(0.5), signal], labels=["ok", label])
    return lambda: OpenSmileLLD(**params).transform(X)


@pytest.mark.parametrize("make, match", [
    (lambda: _bad_signal("short", tone(MIN_DURATION * 0.9)),
     r"recording 'short' lasts 0\.09 s.*at least 0\.1 s"),
    (lambda: _bad_signal("empty", np.zeros(0, np.float32)), r"recording 'empty' lasts 0 s"),
    (lambda: _bad_signal("nan", np.r_[tone(0.5)[:-1], np.nan]),
     r"signal of recording 'nan' has a non-finite sample .*at sample 7999"),
    (lambda: _bad_signal("inf", np.r_[np.inf, tone(0.5)]),
     r"signal of recording 'inf' has a non-finite sample"),
    (lambda: _bad_signal("silent", np.zeros(8000, np.float32)),
     r"recording 'silent' is silent.*normalise_peak=False"),
    (lambda: _bad_signal("loud", 3 * tone(0.5), normalise_peak=False),
     r"recording 'loud' reaches 1\.5.*outside \[-1, 1\].*normalise_peak=True"),
    (lambda: _bad_signal("3ch", np.zeros((3, 8000), np.float32)),
     r"recording '3ch' has shape \(3, 8000\).*\(n_samples, 2\)"),
    (lambda: _bad_signal("3d", np.zeros((2, 2, 8000), np.float32)),
     r"recording '3d' has shape \(2, 2, 8000\)"),
    (lambda: _bad_signal("int64", np.zeros(8000, np.int64)),
     r"recording 'int64' has dtype int64.*int16"),
])
def test_bad_signal_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()()


def test_bad_table_errors():
    X = recordings([tone(0.5)], labels=["r1"])
    with pytest.raises(TypeError, match="recordings table"):
        OpenSmileLLD().transform(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="empty"):
        OpenSmileLLD().fit(X.iloc[:0])
    with pytest.raises(ValueError, match=r"no speaker column 'speaker'.*speaker_col"):
        OpenSmileLLD().fit(X.drop(columns="speaker"))
    with pytest.raises(ValueError, match=r"recording 'r1' has no speaker"):
        OpenSmileLLD().fit(X.assign(speaker=None))
    with pytest.raises(ValueError, match=r"neither a 'file' column.*'signal'"):
        OpenSmileLLD().fit(X.drop(columns=["signal", "sampling_rate"]))
    with pytest.raises(ValueError, match=r"no 'sampling_rate' column"):
        OpenSmileLLD().transform(X.drop(columns="sampling_rate"))
    with pytest.raises(ValueError, match=r"recording 'r1' has sampling_rate 16000\.5"):
        OpenSmileLLD().transform(X.assign(sampling_rate=16000.5))
    with pytest.raises(ValueError, match=r"recording 'r1' has sampling_rate 0"):
        OpenSmileLLD().transform(X.assign(sampling_rate=0))
    with pytest.raises(ValueError, match=r"recording 'r1' has no signal"):
        OpenSmileLLD().transform(X.assign(signal=[None]))


def test_file_errors(tmp_path):
    missing = pd.DataFrame({"speaker": ["s"], "file": [str(tmp_path / "nope.wav")]},
                           index=["gone"])
    with pytest.raises(FileNotFoundError, match=r"nope\.wav' of recording 'gone' does not"):
        OpenSmileLLD().fit(missing)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio" * 10)
    with pytest.raises(ValueError, match=r"cannot read the audio file .*garbage\.wav' of "
                                         r"recording 'junk'"):
        OpenSmileLLD().transform(pd.DataFrame({"speaker": ["s"], "file": [str(garbage)]},
                                              index=["junk"]))
    with pytest.raises(ValueError, match=r"recording 'nofile' has file nan"):
        OpenSmileLLD().transform(pd.DataFrame({"speaker": ["s"], "file": [np.nan]},
                                              index=["nofile"]))


def test_non_finite_features_from_opensmile_are_caught(monkeypatch):
    smile = smile_module._smile("eGeMAPSv02")

    class NaNSmile:
        feature_names = smile.feature_names

        def process_signal(self, signal, sampling_rate):
            lld = smile.process_signal(signal, sampling_rate)
            lld.iloc[5, 2] = np.nan
            return lld

    monkeypatch.setattr(smile_module, "_smile", lambda feature_set: NaNSmile())
    with pytest.raises(ValueError, match=r"non-finite value for recording 'rec_0' \(LLD "
                                         r"frame 5, feature 'hammarbergIndex_sma3'\)"):
        OpenSmileLLD("eGeMAPSv02").transform(recordings([tone(0.5)]))


@pytest.mark.parametrize("params, match", [
    ({"feature_set": "GeMAPSv01b"}, r"\['ComParE_2016', 'eGeMAPSv02'\]"),
    ({"feature_set": opensmile.FeatureSet.IS09}, r"\['ComParE_2016', 'eGeMAPSv02'\]"),
    ({"frame_rate": 0}, "frame_rate must be a positive number"),
    ({"frame_rate": np.inf}, "frame_rate must be a positive number"),
    ({"normalise_peak": "yes"}, "normalise_peak must be True or False"),
    ({"n_jobs": 0}, "n_jobs must be None or a non-zero integer"),
    ({"speaker_col": 3}, "speaker_col must be a column name"),
    ({"segment_seconds": 0.5}, r"segment_seconds must be None \(one pass\) or a number"),
    ({"segment_seconds": "60"}, r"segment_seconds must be None \(one pass\) or a number"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        OpenSmileLLD(**params).fit(recordings([tone(0.5)]))


# --- long recordings: streamed through one openSMILE run ------------------------------

@pytest.fixture(scope="module")
def long_speech():
    """About 50 s of the generated corpus's speech, one signal (several segments)."""
    from sklearn_s2au.datasets import make_speech_au_corpus

    corpus = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=8, random_state=3)
    signal = np.concatenate([np.asarray(s, dtype=np.float32) for s in corpus.X["signal"]])
    return signal, int(corpus.X["sampling_rate"].iloc[0])


class _CountingSmile:
    """openSMILE extractor that records the length of every signal given to it whole."""

    def __init__(self, inner, calls):
        self.inner, self.calls = inner, calls

    def __getattr__(self, name):  # feature names, config folder, log settings
        return getattr(self.inner, name)

    def process_signal(self, x, sampling_rate):
        self.calls.append(x.size)
        return self.inner.process_signal(x, sampling_rate)


@pytest.fixture
def counted(monkeypatch):
    """``(calls, blocks)``: sizes of the signals openSMILE gets whole, and of the blocks
    it gets streamed."""
    calls, blocks = [], []
    smile = smile_module._smile
    monkeypatch.setattr(smile_module, "_smile",
                        lambda feature_set: _CountingSmile(smile(feature_set), calls))
    pcm16 = smile_module._pcm16
    monkeypatch.setattr(smile_module, "_pcm16", lambda x: blocks.append(len(x)) or pcm16(x))
    return calls, blocks


@pytest.mark.parametrize("feature_set", ["eGeMAPSv02", "ComParE_2016"])
def test_segmented_extraction_equals_one_pass(long_speech, feature_set, counted):
    signal, sampling_rate = long_speech
    assert signal.size / sampling_rate > 40
    X = pd.DataFrame({"speaker": ["s1"], "signal": [signal], "sampling_rate": [sampling_rate]})
    calls, blocks = counted
    one_pass = OpenSmileLLD(feature_set, segment_seconds=None).fit_transform(X)
    assert calls == [signal.size] and blocks == []
    calls.clear()
    segmented = OpenSmileLLD(feature_set, segment_seconds=8).fit_transform(X)
    # really streamed in blocks of 8 s, openSMILE never given the whole signal
    assert calls == [] and blocks[:-1] == [8 * sampling_rate] * (len(blocks) - 1)
    assert sum(blocks) == signal.size and len(blocks) >= 5
    a, b = one_pass["features"].iloc[0], segmented["features"].iloc[0]
    assert a.shape == b.shape == (frame_count(signal.size / sampling_rate, 25), a.shape[1])
    np.testing.assert_array_equal(a, b)      # bit for bit, every feature, every frame
    # at openSMILE's own rate too (no averaging that could hide a shifted frame)
    a100 = OpenSmileLLD(feature_set, frame_rate=100, segment_seconds=None).fit_transform(X)
    b100 = OpenSmileLLD(feature_set, frame_rate=100, segment_seconds=8).fit_transform(X)
    np.testing.assert_array_equal(a100["features"].iloc[0], b100["features"].iloc[0])


def _prepared(signal, rate, label):
    """The samples of a signal and the function giving openSMILE's input for a span."""
    x = features_module._as_mono(signal, label)
    return x, features_module._prepare(features_module._ArrayReader(x, rate), label, True)


@pytest.mark.parametrize("feature_set", ["eGeMAPSv02", "ComParE_2016"])
def test_segmented_lld_frames_and_times_equal_one_pass(long_speech, feature_set):
    """openSMILE's own 100 Hz frames, before the grid: values, indices and times."""
    signal, rate = long_speech
    x, samples = _prepared(signal, rate, "rec")

    def frames(segment_seconds):
        blocks = list(smile_module._lld_blocks(feature_set, samples, x.size, rate,
                                               segment_seconds, "rec"))
        firsts = [first for first, *_ in blocks]
        values = np.concatenate([v for _, v, _, _ in blocks])
        # blocks are consecutive frame ranges from frame 0, with one hop and window
        assert firsts == list(np.cumsum([0] + [len(v) for _, v, _, _ in blocks[:-1]]))
        assert len({(hop, window) for *_, hop, window in blocks}) == 1
        hop, window = blocks[0][2:]
        return len(blocks), values, np.arange(len(values)) * hop + window / 2, (hop, window)

    n1, values1, times1, timing1 = frames(None)
    n8, values8, times8, timing8 = frames(8)
    assert n1 == 1 and n8 >= 2      # frames come out while the audio is being fed
    assert values8.shape == values1.shape and values1.shape[0] > 4000
    np.testing.assert_array_equal(values8, values1)
    np.testing.assert_array_equal(times8, times1)
    assert timing8 == timing1 == (0.01, 0.06 if feature_set == "ComParE_2016" else 0.02)


def test_restarted_opensmile_gives_other_f0_group_deltas(long_speech):
    """Why long recordings are streamed rather than cut into segments: openSMILE run on
    the same audio from a later start (with 10 s of it before the frames compared) gives
    other F0-group deltas, whose normaliser it counts from the start of its input."""
    signal, rate = long_speech
    x, samples = _prepared(signal, rate, "rec")
    smile = smile_module._smile("ComParE_2016")
    whole = smile.process_signal(samples(0, 40 * rate), rate).to_numpy(np.float32)
    late = smile.process_signal(samples(20 * rate, 40 * rate), rate).to_numpy(np.float32)
    names = list(OpenSmileLLD().get_feature_names_out())
    lld, delta = names.index("F0final_sma"), names.index("F0final_sma_de")
    # frames 30-35 s: LLDs equal, their deltas not
    np.testing.assert_array_equal(late[1000:1500, lld], whole[3000:3500, lld])
    assert not np.array_equal(late[1000:1500, delta], whole[3000:3500, delta])


def test_segmented_file_route_equals_one_pass(long_speech, tmp_path):
    signal, rate = long_speech
    n = 25 * rate
    stereo = np.stack([signal[:n], signal[n // 2:n // 2 + n]], axis=1)  # (n, 2)
    path = tmp_path / "long_stereo.wav"
    soundfile.write(path, stereo, rate, subtype="PCM_16")
    X = pd.DataFrame({"speaker": ["s"], "file": [str(path)]}, index=["long"])
    one_pass = OpenSmileLLD("eGeMAPSv02", segment_seconds=None).transform(X)
    segmented = OpenSmileLLD("eGeMAPSv02", segment_seconds=10).transform(X)
    assert one(one_pass).shape == (625, 25)
    np.testing.assert_array_equal(one(segmented), one(one_pass))


@pytest.mark.parametrize("name, subtype, channels", [("long.flac", "PCM_16", 1),
                                                     ("long.wav", "FLOAT", 2)])
def test_streamed_file_is_read_span_by_span(long_speech, tmp_path, monkeypatch, name,
                                            subtype, channels):
    """A long file is never read whole: the checks (non-finite samples, peak) read it in
    blocks, openSMILE's input comes a segment at a time, and the frames equal those of
    the samples audiofile.read gives, passed as a signal."""
    import audiofile

    signal, rate = long_speech
    n = 21 * rate
    audio = signal[:n] if channels == 1 else np.stack([signal[:n], signal[n:2 * n]], 1)
    path = tmp_path / name
    soundfile.write(path, audio, rate, subtype=subtype)
    spans = []
    call = features_module._SoundFileReader.__call__

    def recorded(self, start, stop):
        spans.append(stop - start)
        return call(self, start, stop)

    monkeypatch.setattr(features_module._SoundFileReader, "__call__", recorded)
    monkeypatch.setattr(features_module, "_BLOCK", 3 * rate)
    X = pd.DataFrame({"speaker": ["s"], "file": [str(path)]}, index=["long"])
    streamed = one(OpenSmileLLD("eGeMAPSv02", segment_seconds=5).transform(X))
    assert max(spans) == 5 * rate and sum(spans) == 2 * n   # two passes, in spans
    samples, file_rate = audiofile.read(str(path), always_2d=True)
    mono = samples[0] if channels == 1 else samples.mean(axis=0, dtype=np.float32)
    as_signal = one(OpenSmileLLD("eGeMAPSv02", segment_seconds=None).transform(
        recordings([mono], file_rate)))
    np.testing.assert_array_equal(streamed, as_signal)


@pytest.mark.parametrize("value", [0, 0.99, -5, np.inf, np.nan, True, "60", [60]])
def test_bad_segment_seconds(value):
    with pytest.raises(ValueError, match=r"segment_seconds must be None \(one pass\) or a "
                                         r"number of seconds >= 1, got "):
        OpenSmileLLD(segment_seconds=value).fit(recordings([tone(0.5)]))


def test_streamed_only_above_segment_seconds(long_speech, counted):
    assert OpenSmileLLD().get_params()["segment_seconds"] == 60.0
    signal, rate = long_speech
    X = recordings([signal[:10 * rate]], rate)
    calls, blocks = counted
    # 10 s: not above segment_seconds, one call on the whole signal
    OpenSmileLLD("eGeMAPSv02", segment_seconds=10).transform(X)
    assert calls == [10 * rate] and blocks == []
    calls.clear()
    # 4 s blocks: [0, 4), [4, 8) and [8, 10) s, each once
    OpenSmileLLD("eGeMAPSv02", segment_seconds=4).transform(X)
    assert calls == [] and blocks == [4 * rate, 4 * rate, 2 * rate]


@pytest.mark.parametrize("feature_set", ["eGeMAPSv02", "ComParE_2016"])
def test_streamed_configuration_has_the_feature_names(feature_set):
    from opensmile.core.config import config
    from opensmile.core.lib import OpenSMILE

    smile = OpenSMILE()
    smile.initialize(smile_module._stream_config(feature_set),
                     smile_module._stream_options(feature_set, 16000, 32000))
    sink = config.EXTERNAL_OUTPUT_COMPONENT
    names = [smile.external_sink_get_element_name(sink, i)
             for i in range(smile.external_sink_get_num_elements(sink))]
    smile.free()
    assert names == list(OpenSmileLLD(feature_set).get_feature_names_out())


@pytest.mark.parametrize("sampling_rate", [22050, 44100])
def test_streamed_frame_times_at_other_rates(sampling_rate):
    """The hop is 221 or 441 samples, not exactly 10 ms: the streamed run reports the
    same hop and window as one pass, to the nanosecond."""
    x, samples = _prepared(tone(3.0, sampling_rate), sampling_rate, "r")

    def blocks(segment_seconds):
        return list(smile_module._lld_blocks("eGeMAPSv02", samples, x.size, sampling_rate,
                                             segment_seconds, "r"))

    whole, streamed = blocks(None), blocks(1)
    assert {b[2:] for b in streamed} == {whole[0][2:]}
    hop_samples = {22050: 221, 44100: 441}[sampling_rate]
    assert whole[0][2] == pytest.approx(hop_samples / sampling_rate, abs=1e-9)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in streamed]), whole[0][1])


def _opensmile_threads():
    return [t for t in threading.enumerate() if t.name.startswith("openSMILE")]


def test_stream_closed_early_stops_opensmile(long_speech):
    """A consumer that stops reading (an error on the way) leaves no openSMILE run."""
    signal, rate = long_speech
    x, samples = _prepared(signal[:30 * rate], rate, "r")
    stream = smile_module._lld_blocks("ComParE_2016", samples, x.size, rate, 2, "r")
    first, values, *_ = next(stream)
    assert first == 0 and len(values) > 0 and len(_opensmile_threads()) == 1
    stream.close()
    assert _opensmile_threads() == []


def test_stream_that_takes_no_audio_is_an_error_not_a_hang(long_speech, monkeypatch):
    from opensmile.core.lib import OpenSMILE

    signal, rate = long_speech
    monkeypatch.setattr(smile_module, "_STALL_SECONDS", 0.5)
    monkeypatch.setattr(OpenSMILE, "external_audio_source_write_data",
                        lambda self, component, data: False)
    with pytest.raises(RuntimeError, match=r"openSMILE took no audio of recording 'rec_0' "
                                           r"and gave no frames for 0.5 s"):
        OpenSmileLLD("eGeMAPSv02", segment_seconds=2).transform(
            recordings([signal[:5 * rate]], rate))
    assert _opensmile_threads() == []


def _one_pass_and_segmented(X, feature_set, segment_seconds, frame_rate):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning that frames may differ
        a = OpenSmileLLD(feature_set, frame_rate=frame_rate,
                         segment_seconds=None).transform(X)["features"].iloc[0]
        b = OpenSmileLLD(feature_set, frame_rate=frame_rate,
                         segment_seconds=segment_seconds).transform(X)["features"].iloc[0]
    return a, b


@pytest.mark.parametrize("feature_set, n_samples, sampling_rate, segment_seconds", [
    # 27.979 s: ends mid-hop where openSMILE's end-of-input flush of the ComParE F0-group
    # deltas followed none of the end rules the former segment stitching tried
    ("ComParE_2016", 447665, 16000, 4),
    ("ComParE_2016", 20 * 16000 + 1, 16000, 3),     # one sample into a hop
    ("eGeMAPSv02", 447665, 16000, 4),
    ("eGeMAPSv02", 20 * 22050 + 300, 22050, 3),     # hop of 221 samples, mid-hop end
])
def test_segmented_end_equals_one_pass(long_speech, feature_set, n_samples,
                                       sampling_rate, segment_seconds):
    """Several segments and an end in the middle of a hop and of a grid frame: every
    frame identical, the last ones included, at openSMILE's rate and on the grid."""
    signal, _ = long_speech
    X = recordings([signal[:n_samples]], sampling_rate)
    duration = n_samples / sampling_rate
    for frame_rate in (100, 25):
        a, b = _one_pass_and_segmented(X, feature_set, segment_seconds, frame_rate)
        assert a.shape == b.shape == (frame_count(duration, frame_rate), a.shape[1])
        assert np.array_equal(a, b), np.flatnonzero((a != b).any(axis=1)) - len(a)


@pytest.mark.parametrize("feature_set, duration", [("eGeMAPSv02", 60.0),
                                                   ("ComParE_2016", 100.0)])
def test_segmented_sustained_tone_equals_one_pass(feature_set, duration):
    """A tone voiced from start to end: openSMILE's jitter and shimmer follow its pitch
    periods from the first frame on, so only a run that saw the whole recording gives
    one-pass values; segmented extraction must still give them, without a warning."""
    X = recordings([tone(duration, seed=2)])
    a, b = _one_pass_and_segmented(X, feature_set, 10, 100)
    assert a.shape == b.shape == (frame_count(duration, 100), a.shape[1])
    assert np.array_equal(a, b), np.flatnonzero((a != b).any(axis=1))
