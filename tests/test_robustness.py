"""Robustness: what every step does with awkward, broken or unusual input.

`test_row` is one table: each row builds an input, runs one public step on it and checks
the outcome, which is either the error (its class AND a message fragment naming the
recording, column or parameter) or the documented handling (with its values checked).
The property tests below check the two invariants of the data contract on random
shapes: one prediction per real frame, and padding that never changes a result.

Everything is tiny (signals of at most 1.3 s except one 60 s row, 3 features, networks
with 4 hidden units and 1 epoch), so the file runs in seconds.
"""

import dataclasses
import pickle
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from sklearn_s2au._sequence import SequenceBatch
from sklearn_s2au.baselines import FrameClassifier
from sklearn_s2au.classifiers import EncInterAttDecClassifier, StackedIntraAttClassifier
from sklearn_s2au.datasets import load_manifest, read_openface_csv
from sklearn_s2au.features import MIN_DURATION, OpenSmileLLD
from sklearn_s2au.framing import frame_count
from sklearn_s2au.metrics import sequence_uar, uar_scorer
from sklearn_s2au.preprocessing import SequencePadder, SpeakerNormaliser

SR = 16000
TINY = dict(module__hidden_size=4, module__intra_att_units=4, batch_size=8, max_epochs=1,
            n_threads=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

def tone(duration, sampling_rate=SR, seed=0, peak=0.5):
    """Harmonic series on a moving f0 plus a little noise: float32, voiced like speech."""
    rng = np.random.default_rng(seed)
    n = int(np.ceil(duration * sampling_rate - 1e-9))
    t = np.arange(n) / sampling_rate
    f0 = rng.uniform(120, 180) * (1 + 0.1 * np.sin(2 * np.pi * 1.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    x = sum(np.sin(k * phase) / k for k in range(1, 9)) + 0.05 * rng.standard_normal(n)
    return (peak * x / np.max(np.abs(x))).astype(np.float32)


def signal_table(signal, sampling_rate=SR, label="r1"):
    return pd.DataFrame({"speaker": ["s1"], "signal": [signal],
                         "sampling_rate": [sampling_rate]}, index=[label])


def file_table(path, label="r1"):
    return pd.DataFrame({"speaker": ["s1"], "file": [str(path)]}, index=[label])


def lld(X, **params):
    """eGeMAPS LLDs (the fast set) of a recordings table: the features of row 0."""
    return OpenSmileLLD("eGeMAPSv02", **params).fit_transform(X)["features"].iloc[0]


def frame_table(lengths=(12, 9, 15, 7), n_features=3, speakers=None, seed=0):
    """A frame table of random features; speakers a, a, b, c, a, a, b, c... by default."""
    speakers = speakers or ["aabc"[i % 4] for i in range(len(lengths))]
    rng = np.random.RandomState(seed)
    feats = [rng.randn(n, n_features).astype(np.float32) for n in lengths]
    return pd.DataFrame({"speaker": list(speakers), "features": feats},
                        index=[f"rec{i}" for i in range(len(lengths))])


def labels_for(table):
    """0/1 per frame from feature 0, with both classes in every recording."""
    out = []
    for f in table["features"]:
        lab = (f[:, 0] > 0).astype(int)
        lab[0], lab[-1] = 0, 1
        out.append(lab)
    return out


def with_features(table, label, features):
    table = table.copy()
    column = table["features"].to_numpy(dtype=object).copy()
    column[table.index.get_loc(label)] = features
    table["features"] = pd.Series(column, index=table.index, dtype=object)
    return table


def net_pipeline(cls=StackedIntraAttClassifier, max_len=5, **params):
    return Pipeline([("pad", SequencePadder(max_len=max_len)),
                     ("clf", cls(**{"random_state": 0, **TINY, **params}))])


def zscore(f):
    f = np.asarray(f, dtype=np.float64)
    return (f - f.mean(0)) / f.std(0)


def write_openface(path, n_rows, fps=25.0, au17=None):
    au17 = np.linspace(0, 3, n_rows) if au17 is None else au17
    pd.DataFrame({"frame": np.arange(1, n_rows + 1), "face_id": 0,
                  "timestamp": np.arange(n_rows) / fps, "confidence": 0.98,
                  "success": 1, "AU17_r": au17}).to_csv(path, index=False)


def write_manifest(folder, au_files):
    """A manifest of len(au_files) 0.5 s recordings; au_files[i] None → a real CSV."""
    rows = []
    for i, au_file in enumerate(au_files):
        wav = folder / f"rec{i}.wav"
        soundfile.write(wav, tone(0.5, seed=i), SR)
        if au_file is None:
            au_file = f"rec{i}.csv"
            write_openface(folder / au_file, frame_count(0.5, 25))
        rows.append({"file": wav.name, "speaker": "ab"[i % 2], "au_file": au_file})
    path = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Ctx:
    """What a row may use: a fresh folder and the log records of the run."""
    tmp_path: Any
    caplog: Any


@dataclasses.dataclass
class Raises:
    error: type
    match: str


@dataclasses.dataclass
class Handled:
    """The documented handling: ``check(result, ctx)`` asserts its values."""
    check: Callable
    warns: type = None
    warns_match: str = None


def row(id, run, outcome):
    return pytest.param(run, outcome, id=id)


# ---- audio ---------------------------------------------------------------------------

def _write_bytes(ctx, name, data):
    path = ctx.tmp_path / name
    path.write_bytes(data)
    return path


def _zero_sample_wav(ctx):
    path = ctx.tmp_path / "zero.wav"
    soundfile.write(path, np.zeros(0, np.int16), SR, subtype="PCM_16")
    return lld(file_table(path))


def _six_channel_wav(ctx):
    path = ctx.tmp_path / "6ch.wav"
    soundfile.write(path, np.tile(tone(0.5)[:, None], (1, 6)) * 0.5, SR)
    return lld(file_table(path))


def _check_silent_unnormalised(features, ctx):
    # openSMILE describes silence as constant frames; the normaliser maps them to 0
    assert features.shape == (frame_count(1.0, 25), 25) and np.isfinite(features).all()
    assert np.ptp(features, axis=0).max() == 0
    table = pd.DataFrame({"speaker": ["quiet"], "features": [features]})
    assert np.all(SpeakerNormaliser().fit_transform(table)["features"].iloc[0] == 0)


def _sampling_rate_row(sampling_rate):
    # 1.234 s at every rate: 124 frames at 100 Hz, whatever the hop's rounding
    n = int(round(1.234 * sampling_rate))

    def run(ctx):
        return n, lld(signal_table(tone(n / sampling_rate, sampling_rate)[:n], sampling_rate),
                      frame_rate=100)

    def check(result, ctx):
        n_samples, features = result
        assert features.shape == (frame_count(n_samples / sampling_rate, 100), 25)
        assert features.shape[0] == 124 and np.isfinite(features).all()

    return row(f"sampling-rate-{sampling_rate}", run, Handled(check))


def _stereo_row(layout):
    left, right = tone(0.6, seed=1), tone(0.6, seed=2)
    stereo = np.stack([left, right], axis=1 if layout == "(n,2)" else 0)

    def run(ctx):
        return lld(signal_table(stereo)), lld(signal_table((left + right) / 2))

    def check(result, ctx):
        mixed, mono = result
        assert mixed.shape == (15, 25)
        np.testing.assert_array_equal(mixed, mono)

    return row(f"stereo-{layout}-is-mixed-down", run, Handled(check))


def _stereo_file(ctx):
    left, right = tone(0.6, seed=1), tone(0.6, seed=2)
    path = ctx.tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    return lld(file_table(path)), lld(signal_table((left + right) / 2))


def _int16(ctx):
    pcm = np.round(tone(0.6) * 32767).astype(np.int16)
    return lld(signal_table(pcm)), lld(signal_table(pcm.astype(np.float32) / 32768))


def _float64(ctx):
    x = tone(0.6)
    return lld(signal_table(x.astype(np.float64))), lld(signal_table(x))


def _check_shape(shape):
    def check(features, ctx):
        assert features.shape == shape and np.isfinite(features).all()
    return check


def _check_same_features(shape):
    def check(result, ctx):
        a, b = result
        assert a.shape == shape and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    return check


def _unicode_path(ctx):
    folder = ctx.tmp_path / "é" / "ü" / "日本"
    folder.mkdir(parents=True)
    path = folder / "voix é ü 日本.wav"
    x = tone(0.6)
    soundfile.write(path, x, SR, subtype="FLOAT")
    by_file = OpenSmileLLD("eGeMAPSv02").fit_transform(file_table(path, label="récit-日本"))
    return by_file, lld(signal_table(x))


def _check_unicode(result, ctx):
    by_file, by_signal = result
    assert by_file.index.tolist() == ["récit-日本"]
    np.testing.assert_array_equal(by_file["features"].iloc[0], by_signal)


def _signal_with(value, at):
    x = tone(0.5)
    x[at] = value
    return x


AUDIO_ROWS = [
    row("missing-audio-file",
        lambda ctx: lld(file_table(ctx.tmp_path / "missing.wav")),
        Raises(FileNotFoundError, r"audio file '.*missing\.wav' of recording 'r1' does "
                                  r"not exist; fix the path in column 'file'")),
    row("corrupt-wav-random-bytes",
        lambda ctx: lld(file_table(_write_bytes(
            ctx, "corrupt.wav", np.random.RandomState(0).bytes(4000)))),
        Raises(ValueError, r"cannot read the audio file '.*corrupt\.wav' of recording 'r1'")),
    row("empty-file-0-bytes",
        lambda ctx: lld(file_table(_write_bytes(ctx, "empty.wav", b""))),
        Raises(ValueError, r"cannot read the audio file '.*empty\.wav' of recording 'r1'")),
    row("wav-file-with-0-samples", _zero_sample_wav,
        Raises(ValueError, r"recording 'r1' lasts 0 s \(0 samples at 16000 Hz\).*at least "
                           r"0\.1 s")),
    row("zero-length-signal", lambda ctx: lld(signal_table(np.zeros(0, np.float32))),
        Raises(ValueError, r"recording 'r1' lasts 0 s \(0 samples")),
    row("zero-length-stereo-signal", lambda ctx: lld(signal_table(np.zeros((0, 2)))),
        Raises(ValueError, r"recording 'r1' lasts 0 s \(0 samples")),
    row("silent-signal-with-peak-normalisation",
        lambda ctx: lld(signal_table(np.zeros(SR, np.float32))),
        Raises(ValueError, r"recording 'r1' is silent \(all samples are 0\).*"
                           r"normalise_peak=False")),
    row("silent-signal-without-peak-normalisation",
        lambda ctx: lld(signal_table(np.zeros(SR, np.float32)), normalise_peak=False),
        Handled(_check_silent_unnormalised)),
    row("shorter-than-MIN_DURATION",
        lambda ctx: lld(signal_table(tone(MIN_DURATION * 0.9))),
        Raises(ValueError, r"recording 'r1' lasts 0\.09 s \(1440 samples at 16000 Hz\); "
                           r"openSMILE needs at least 0\.1 s")),
    row("exactly-MIN_DURATION",
        lambda ctx: lld(signal_table(tone(MIN_DURATION))),
        Handled(_check_shape((frame_count(MIN_DURATION, 25), 25)))),
    row("60-s-recording-exact-frame-count",
        lambda ctx: lld(signal_table(np.tile(tone(1.0), 60))),
        Handled(_check_shape((1500, 25)))),
    *[_sampling_rate_row(rate) for rate in (8000, 16000, 22050, 44100, 48000)],
    _stereo_row("(n,2)"),
    _stereo_row("(2,n)"),
    row("stereo-file-is-mixed-down", _stereo_file, Handled(_check_same_features((15, 25)))),
    row("six-channel-file", _six_channel_wav,
        Raises(ValueError, r"audio file '.*6ch\.wav' of recording 'r1' has 6 channels; "
                           r"mono and stereo")),
    row("int16-signal-is-pcm", _int16, Handled(_check_same_features((15, 25)))),
    row("float64-signal", _float64, Handled(_check_same_features((15, 25)))),
    row("nan-in-signal", lambda ctx: lld(signal_table(_signal_with(np.nan, 100))),
        Raises(ValueError, r"signal of recording 'r1' has a non-finite sample \(NaN or inf\) "
                           r"at sample 100 \(0\.006 s\)")),
    row("inf-in-signal", lambda ctx: lld(signal_table(_signal_with(-np.inf, 0))),
        Raises(ValueError, r"signal of recording 'r1' has a non-finite sample .* at sample 0")),
    row("unicode-path-and-label", _unicode_path, Handled(_check_unicode)),
    row("recordings-table-without-speaker-column",
        lambda ctx: lld(signal_table(tone(0.5)).drop(columns="speaker")),
        Raises(ValueError, r"no speaker column 'speaker'.*set speaker_col")),
    row("signal-without-sampling-rate",
        lambda ctx: lld(signal_table(tone(0.5)).drop(columns="sampling_rate")),
        Raises(ValueError, r"'signal' column but no 'sampling_rate' column")),
]


# ---- frame tables --------------------------------------------------------------------

def _nan_table():
    f = frame_table()["features"].iloc[1].copy()
    f[3, 2] = np.nan
    return with_features(frame_table(), "rec1", f)


def _inf_at_predict(ctx):
    clf = FrameClassifier(SVC()).fit(frame_table(), labels_for(frame_table()))
    f = frame_table()["features"].iloc[2].copy()
    f[0, 0] = np.inf
    return clf.predict(with_features(frame_table(), "rec2", f))


def _one_recording_speaker(ctx):
    table = frame_table(speakers=("a", "a", "b", "solo"))
    return table, SpeakerNormaliser().fit_transform(table)


def _check_one_recording_speaker(result, ctx):
    table, out = result
    solo = out["features"].iloc[3]
    np.testing.assert_allclose(solo, zscore(table["features"].iloc[3]), atol=1e-5)
    np.testing.assert_allclose(solo.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(solo.std(0), 1, atol=1e-5)
    # the other speakers pool their recordings: "a" over rec0 + rec1
    pooled = np.concatenate(table["features"].iloc[:2].to_list())
    mean, std = pooled.mean(0), pooled.std(0)
    np.testing.assert_allclose(out["features"].iloc[1],
                               (table["features"].iloc[1] - mean) / std, atol=1e-5)


def _one_frame_speaker(ctx):
    table = frame_table(lengths=(12, 1), speakers=("a", "one-frame"))
    return SpeakerNormaliser().fit_transform(table)["features"].iloc[1]


def _unseen_speaker(ctx):
    train = frame_table(speakers=("a", "a", "b", "b"))
    test = frame_table(lengths=(10, 6), speakers=("new", "new"), seed=1)
    test["features"] = [f * 3 + 5 for f in test["features"]]   # its own level and spread
    norm = SpeakerNormaliser().fit(train)
    return test, norm, norm.transform(test)


def _check_unseen_speaker(result, ctx):
    test, norm, out = result
    assert "new" not in norm.mean_.index
    pooled = np.concatenate(test["features"].to_list()).astype(np.float64)
    mean, std = pooled.mean(0), pooled.std(0)
    for f, g in zip(test["features"], out["features"]):
        np.testing.assert_allclose(g, (f - mean) / std, atol=1e-5)
    # the training statistics would have given something else
    assert not np.allclose(out["features"].iloc[0],
                           (test["features"].iloc[0] - norm.global_mean_) / norm.global_scale_)


FRAME_ROWS = [
    row("nan-in-frame-table", lambda ctx: SpeakerNormaliser().fit(_nan_table()),
        Raises(ValueError, r"SpeakerNormaliser: recording 'rec1' has a non-finite value "
                           r"\(NaN or inf\) at frame 3, feature 2")),
    row("nan-in-frame-table-padder", lambda ctx: SequencePadder().fit_transform(_nan_table()),
        Raises(ValueError, r"SequencePadder: recording 'rec1' has a non-finite value")),
    row("inf-in-frame-table-at-predict", _inf_at_predict,
        Raises(ValueError, r"FrameClassifier: recording 'rec2' has a non-finite value \(NaN "
                           r"or inf\) at frame 0, feature 0")),
    row("frame-table-without-speaker-column",
        lambda ctx: SpeakerNormaliser().fit(frame_table().drop(columns="speaker")),
        Raises(ValueError, r"no speaker column 'speaker' \(columns: \['features'\]\).*"
                           r"set speaker_col")),
    row("missing-speaker-value",
        lambda ctx: SpeakerNormaliser().fit(frame_table(speakers=("a", "a", None, "c"))),
        Raises(ValueError, r"recording 'rec2' has no speaker \(missing value in column "
                           r"'speaker'\)")),
    row("speaker-with-one-recording", _one_recording_speaker,
        Handled(_check_one_recording_speaker)),
    row("speaker-with-one-frame", _one_frame_speaker,
        Handled(lambda f, ctx: np.testing.assert_array_equal(f, np.zeros((1, 3))))),
    row("test-speaker-absent-from-fit", _unseen_speaker, Handled(_check_unseen_speaker)),
    row("mismatched-feature-dimensions",
        lambda ctx: SequencePadder().fit_transform(
            with_features(frame_table(), "rec3", np.ones((7, 4), np.float32))),
        Raises(ValueError, r"recording 'rec3' has 4 features but the first recording has "
                           r"3")),
    row("feature-dimension-differs-from-fit-normaliser",
        lambda ctx: SpeakerNormaliser().fit(frame_table()).transform(
            frame_table(n_features=4)),
        Raises(ValueError, r"frames have 4 features but the normaliser was fitted on 3")),
    row("feature-dimension-differs-from-fit-network",
        lambda ctx: net_pipeline().fit(frame_table(), labels_for(frame_table())).predict(
            frame_table(n_features=4)),
        Raises(ValueError, r"X has 4 features but StackedIntraAttClassifier was fitted with "
                           r"3")),
    row("non-numeric-features",
        lambda ctx: SpeakerNormaliser().fit(
            with_features(frame_table(), "rec1", np.array([["a", "b", "c"]]))),
        Raises(ValueError, r"recording 'rec1' has non-numeric features \(dtype <U1\)")),
    row("complex-features",
        lambda ctx: SpeakerNormaliser().fit(
            with_features(frame_table(), "rec1", np.ones((4, 3), complex))),
        Raises(ValueError, r"recording 'rec1' has non-numeric features \(dtype complex128\)")),
    row("features-beyond-float32-range",
        lambda ctx: SpeakerNormaliser().fit(
            with_features(frame_table(), "rec1", np.full((4, 3), 1e300))),
        Raises(ValueError, r"recording 'rec1' has the value 1e\+300 at frame 0, feature 0, "
                           r"beyond the float32 range")),
    row("recording-with-0-frames",
        lambda ctx: SpeakerNormaliser().fit(
            with_features(frame_table(), "rec2", np.zeros((0, 3), np.float32))),
        Raises(ValueError, r"recording 'rec2' has 0 frames")),
    row("empty-frame-table", lambda ctx: SequencePadder().fit(frame_table().iloc[:0]),
        Raises(ValueError, r"SequencePadder: the frame table is empty \(0 recordings\)")),
    row("recordings-table-given-to-normaliser",
        lambda ctx: SpeakerNormaliser().fit(signal_table(tone(0.5))),
        Raises(ValueError, r"no 'features' column.*put OpenSmileLLD before this step")),
]


# ---- labels and classifiers ----------------------------------------------------------

def _off_by_one():
    y = labels_for(frame_table())
    y[2] = y[2][:-1]
    return y


def _intensities():
    rng = np.random.RandomState(0)
    return [rng.randint(0, 6, len(f)) for f in frame_table()["features"]]


def _single_class_frame_classifier(ctx):
    table = frame_table()
    clf = FrameClassifier(SVC()).fit(table, [np.zeros(len(f), int) for f in table["features"]])
    return clf.predict(table), table


def _check_constant_prediction(result, ctx):
    pred, table = result
    assert [len(p) for p in pred] == [len(f) for f in table["features"]]
    assert all(np.all(p == 0) for p in pred)


def _single_class_network(ctx):
    table = frame_table()
    pipe = net_pipeline(EncInterAttDecClassifier, valid_speakers=0)
    with pytest.warns(UserWarning, match="only one class in the training frames"):
        pipe.fit(table, [np.ones(len(f), int) for f in table["features"]])
    return pipe, table


def _check_single_class_network(result, ctx):
    pipe, table = result
    # documented handling: a UserWarning (checked in the run), the absent class gets
    # weight 0, training runs
    np.testing.assert_array_equal(pipe[-1].class_weight_, [[0.0, 0.5]])
    proba = pipe.predict_proba(table)
    assert [p.shape for p in proba] == [(len(f),) for f in table["features"]]
    assert all(np.all((p > 0) & (p < 1)) for p in proba)


def _long_recordings_network(ctx):
    table = frame_table(lengths=(50, 23, 8, 17), speakers=("a", "b", "a", "b"))
    pipe = net_pipeline(EncInterAttDecClassifier, max_len=8, valid_speakers=0)
    pipe.fit(table, labels_for(table))
    return pipe, table


def _check_long_recordings_network(result, ctx):
    pipe, table = result
    batch = pipe[0].transform(table)
    assert batch.n_chunks == 7 + 3 + 1 + 3
    pred, proba = pipe.predict(table), pipe.predict_proba(table)
    assert [len(p) for p in pred] == [50, 23, 8, 17]
    for p, q in zip(pred, proba):
        np.testing.assert_array_equal(p, (q > 0.5).astype(int))
    # every real frame of every chunk is in exactly one place of the stitched output
    logits = pipe[-1].forward(batch).numpy()[..., 0]
    stitched = batch.unpad(1 / (1 + np.exp(-logits.astype(np.float64))))
    for a, b in zip(stitched, proba):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def _long_recordings_frame_classifier(ctx):
    table = frame_table(lengths=(50, 23, 8))
    clf = FrameClassifier(SVC(), context=1).fit(table, labels_for(table))
    batch = SequencePadder(max_len=8).fit_transform(table)
    return clf.predict(batch), clf.predict(table)


def _check_same_predictions(result, ctx):
    a, b = result
    assert [len(p) for p in a] == [50, 23, 8]
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


class _Diverged(LogisticRegression):
    """A classifier whose training diverged (as an SGD with a huge step can)."""

    def fit(self, X, y):
        super().fit(X, y)
        self.coef_[:] = np.nan
        return self


CLASSIFIER_ROWS = [
    row("labels-off-by-one-frame-frame-classifier",
        lambda ctx: FrameClassifier(SVC()).fit(frame_table(), _off_by_one()),
        Raises(ValueError, r"recording 'rec2' has 15 feature frames but 14 labels.*nothing "
                           r"is re-aligned silently")),
    row("labels-off-by-one-frame-network",
        lambda ctx: net_pipeline().fit(frame_table(), _off_by_one()),
        Raises(ValueError, r"recording 'rec2' has 15 feature frames but 14 labels")),
    row("intensity-labels-0-5-frame-classifier",
        lambda ctx: FrameClassifier(SVC()).fit(frame_table(), _intensities()),
        Raises(ValueError, r"labels of recording 'rec0' contain \[2\.0, 3\.0, 4\.0, 5\.0\]; "
                           r"labels must be binary 0/1.*au_phases")),
    row("intensity-labels-0-5-network",
        lambda ctx: net_pipeline().fit(frame_table(), _intensities()),
        Raises(ValueError, r"labels of recording 'rec0' contain \[2\.0, 3\.0, 4\.0, 5\.0\]")),
    row("y-with-wrong-number-of-recordings-frame-classifier",
        lambda ctx: FrameClassifier(SVC()).fit(frame_table(), labels_for(frame_table())[:3]),
        Raises(ValueError, r"got labels for 3 recordings but features for 4")),
    row("y-with-wrong-number-of-recordings-network",
        lambda ctx: net_pipeline().fit(frame_table(), labels_for(frame_table())[:3]),
        Raises(ValueError, r"got labels for 3 recordings but features for 4")),
    row("y-none-network", lambda ctx: net_pipeline().fit(frame_table(), None),
        Raises(ValueError, r"requires y to be passed, but the target y is None")),
    row("training-fold-with-one-class-frame-classifier", _single_class_frame_classifier,
        Handled(_check_constant_prediction, warns=UserWarning,
                warns_match=r"hold a single class \(0\) in all 43 frames; fitting a "
                            r"constant predictor")),
    row("training-fold-with-one-class-network", _single_class_network,
        Handled(_check_single_class_network)),
    row("recordings-longer-than-max_len-network", _long_recordings_network,
        Handled(_check_long_recordings_network)),
    row("recordings-longer-than-max_len-frame-classifier", _long_recordings_frame_classifier,
        Handled(_check_same_predictions)),
    row("predictions-one-frame-short",
        lambda ctx: sequence_uar(pd.Series(labels_for(frame_table()), index=frame_table().index),
                                 [y[:-1] if i == 1 else y
                                  for i, y in enumerate(labels_for(frame_table()))]),
        Raises(ValueError, r"recording 'rec1' has true labels of shape \(9,\) but predictions "
                           r"of shape \(8,\)")),
    row("probabilities-given-to-uar",
        lambda ctx: sequence_uar([np.array([0, 1])], [np.array([0.2, 0.7])]),
        Raises(ValueError, r"non-label values such as 0\.2.*not probabilities")),
    row("regressor-in-frame-classifier",
        lambda ctx: FrameClassifier(Ridge()).fit(frame_table(), labels_for(frame_table())),
        Raises(TypeError, r"estimator must be a classifier .*got the Ridge regressor; use "
                          r"e\.g\. SVC")),
    row("diverged-estimator-in-frame-classifier",
        lambda ctx: FrameClassifier(_Diverged()).fit(frame_table(), labels_for(frame_table())),
        Handled(lambda clf, ctx: None, warns=RuntimeWarning,
                warns_match=r"fitted _Diverged of the target has non-finite values in "
                            r"\['coef_'\]; its training diverged")),
    row("mixed-label-shapes-network",
        lambda ctx: net_pipeline().fit(frame_table(), [y[:, None] if i == 0 else y for i, y
                                                       in enumerate(labels_for(frame_table()))]),
        Raises(ValueError, r"labels of recording 'rec1' have shape \(n_frames,\) but those "
                           r"of the first recording 'rec0' have shape \(n_frames, 1\)")),
    row("mixed-label-shapes-frame-classifier",
        lambda ctx: FrameClassifier(SVC()).fit(
            frame_table(), [y[:, None] if i == 2 else y
                            for i, y in enumerate(labels_for(frame_table()))]),
        Raises(ValueError, r"labels of recording 'rec2' have shape \(n_frames, 1\) but "
                           r"those of the first recording 'rec0' have shape \(n_frames,\)")),
    row("learning-rate-so-high-the-loss-is-nan-network",
        lambda ctx: net_pipeline(lr=1e30, valid_speakers=0).fit(frame_table(),
                                                               labels_for(frame_table())),
        Handled(lambda pipe, ctx: None, warns=RuntimeWarning,
                warns_match=r"training loss became non-finite at epoch 1.*Lower lr")),
    row("partial-fit-with-other-number-of-targets-network",
        lambda ctx: net_pipeline(cls=EncInterAttDecClassifier).fit(
            frame_table(), labels_for(frame_table()))[-1].partial_fit(
            SequencePadder(max_len=5).fit_transform(frame_table()),
            [np.c_[y, y] for y in labels_for(frame_table())]),
        Raises(ValueError, r"partial_fit: y has 2 target\(s\) per frame .*shape "
                           r"\(n_frames,\)")),
    row("single-class-test-fold-uar",
        lambda ctx: sequence_uar([np.zeros(4)], [np.array([0, 0, 1, 0])]),
        # the recall of the one class present: 3 of 4 frames right
        Handled(lambda uar, ctx: np.testing.assert_equal(uar, 0.75),
                warns=UndefinedMetricWarning, warns_match=r"target 0 hold a single class")),
]


# ---- loaders -------------------------------------------------------------------------

def _pickled_dataframe(ctx):
    path = ctx.tmp_path / "au.csv"
    with open(path, "wb") as fh:
        pickle.dump(pd.DataFrame({"timestamp": [0.0], "AU17_r": [1.0]}), fh, protocol=4)
    return read_openface_csv(path)


def _openface_too_long(ctx):
    path = ctx.tmp_path / "long.csv"
    write_openface(path, 50)                    # 2 s of video for a 0.5 s recording
    return read_openface_csv(path, n_frames=13)


def _duplicated_manifest_row(ctx):
    path = write_manifest(ctx.tmp_path, [None, None])
    table = pd.read_csv(path)
    pd.concat([table, table.iloc[[0]]]).to_csv(path, index=False)
    return load_manifest(path)


def _openface_intensity_outside(ctx):
    au17 = np.linspace(0, 3, 13)
    au17[3] = 7.5
    write_openface(ctx.tmp_path / "odd.csv", 13, au17=au17)
    return read_openface_csv(ctx.tmp_path / "odd.csv")


def _openface_repeated_timestamp(ctx):
    path = ctx.tmp_path / "twice.csv"
    write_openface(path, 13)
    table = pd.read_csv(path)
    table.loc[3, "timestamp"] = table.loc[2, "timestamp"]
    table.to_csv(path, index=False)
    return read_openface_csv(path)


LOADER_ROWS = [
    row("manifest-row-with-empty-au_file",
        lambda ctx: load_manifest(write_manifest(ctx.tmp_path, [None, ""])),
        Raises(ValueError, r"manifest\.csv: row 1 has an empty 'au_file'")),
    row("manifest-row-with-missing-au_file",
        lambda ctx: load_manifest(write_manifest(ctx.tmp_path, [None, "gone.csv"])),
        Raises(ValueError, r"manifest\.csv: row 1 \(speaker 'b'\): au_file 'gone\.csv' does "
                           r"not exist")),
    row("manifest-without-au_file-column",
        lambda ctx: load_manifest(_write_bytes(ctx, "m.csv", b"file,speaker\na.wav,s\n")),
        Raises(ValueError, r"m\.csv: the manifest lacks the column\(s\) \['au_file'\]")),
    row("pickle-renamed-csv", _pickled_dataframe,
        Raises(ValueError, r"au\.csv: not a CSV text file .*never unpickle")),
    row("empty-csv", lambda ctx: read_openface_csv(_write_bytes(ctx, "e.csv", b"")),
        Raises(ValueError, r"e\.csv: the file is empty")),
    row("manifest-with-a-duplicated-row", _duplicated_manifest_row,
        Raises(ValueError, r"manifest\.csv: file 'rec0\.wav' is listed in rows \[0, 2\].*"
                           r"counted twice")),
    row("openface-intensity-outside-0-5", _openface_intensity_outside,
        Raises(ValueError, r"odd\.csv: AU17_r is 7\.5 at row 3 \(timestamp 0\.12 s\); "
                           r"OpenFace AU intensities lie in 0\.\.5")),
    row("openface-duplicated-timestamps", _openface_repeated_timestamp,
        Raises(ValueError, r"twice\.csv: timestamp 0\.08 s appears more than once \(rows 2 "
                           r"and 3")),
    row("openface-track-longer-than-recording", _openface_too_long,
        Raises(ValueError, r"long\.csv: the AU track lasts 2\.000 s but the recording "
                           r"0\.520 s")),
]

ROWS = AUDIO_ROWS + FRAME_ROWS + CLASSIFIER_ROWS + LOADER_ROWS


@pytest.mark.parametrize("run, outcome", ROWS)
def test_row(run, outcome, tmp_path, caplog):
    ctx = Ctx(tmp_path, caplog)
    if isinstance(outcome, Raises):
        with pytest.raises(outcome.error, match=outcome.match):
            run(ctx)
        return
    if outcome.warns is not None:
        with pytest.warns(outcome.warns, match=outcome.warns_match):
            result = run(ctx)
    else:
        result = run(ctx)
    outcome.check(result, ctx)


def test_the_table_is_large_and_ids_are_unique():
    ids = [p.id for p in ROWS]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)


def test_network_warns_like_frame_classifier_on_single_class_fold():
    table = frame_table()
    y = [np.ones(len(f), int) for f in table["features"]]
    with pytest.warns(UserWarning, match="single class|one class"):
        net_pipeline(valid_speakers=0).fit(table, y)


# --------------------------------------------------------------------------------------
# Properties (hypothesis draws integers only: once torch is imported, hypothesis refuses
# float strategies because of the flush-to-zero check)
# --------------------------------------------------------------------------------------

lengths_st = st.lists(st.integers(1, 30), min_size=1, max_size=5)


def _random_features(lengths, seed, n_features=3):
    rng = np.random.RandomState(seed)
    return [rng.randn(n, n_features).astype(np.float32) for n in lengths]


def _alternating_labels(lengths):
    # both classes whenever there are 2 frames or more in all
    flat = np.arange(sum(lengths)) % 2
    return np.split(flat, np.cumsum(lengths)[:-1])


@settings(max_examples=25, deadline=None)
@given(lengths=lengths_st, max_len=st.integers(1, 12), seed=st.integers(0, 2 ** 16))
def test_property_one_prediction_per_real_frame_frame_classifier(lengths, max_len, seed):
    lengths = [max(lengths[0], 2)] + lengths[1:]
    feats = _random_features(lengths, seed)
    table = pd.DataFrame({"speaker": "s", "features": feats})
    batch = SequenceBatch.from_features(feats, ["s"] * len(feats), max_len)
    clf = FrameClassifier(LogisticRegression()).fit(batch, _alternating_labels(lengths))
    pred = clf.predict(batch)
    assert [p.shape for p in pred] == [(n,) for n in lengths]
    for p, q in zip(pred, clf.predict(table)):
        np.testing.assert_array_equal(p, q)


@settings(max_examples=12, deadline=None)
@given(lengths=st.lists(st.integers(1, 25), min_size=1, max_size=4),
       max_len=st.integers(1, 10), seed=st.integers(0, 2 ** 16),
       cls=st.sampled_from([StackedIntraAttClassifier, EncInterAttDecClassifier]))
def test_property_one_prediction_per_real_frame_network(lengths, max_len, seed, cls):
    feats = _random_features(lengths, seed)
    batch = SequenceBatch.from_features(feats, [f"s{i % 2}" for i in range(len(feats))],
                                        max_len)
    clf = cls(valid_speakers=0, random_state=seed, **TINY).fit(batch,
                                                               _alternating_labels(lengths))
    proba, pred = clf.predict_proba(batch), clf.predict(batch)
    assert [p.shape for p in proba] == [(n,) for n in lengths]
    assert [p.shape for p in pred] == [(n,) for n in lengths]
    for p, q in zip(pred, proba):
        assert np.all((q >= 0) & (q <= 1))
        np.testing.assert_array_equal(p, (q > 0.5).astype(int))


@settings(max_examples=25, deadline=None)
@given(lengths=lengths_st, max_lens=st.tuples(st.integers(1, 40), st.integers(1, 40)),
       seed=st.integers(0, 2 ** 16), context=st.integers(0, 2))
def test_property_padding_never_changes_frame_classifier(lengths, max_lens, seed, context):
    lengths = [max(lengths[0], 2)] + lengths[1:]
    feats = _random_features(lengths, seed)
    y = _alternating_labels(lengths)
    speakers = ["s"] * len(feats)
    a, b = (SequenceBatch.from_features(feats, speakers, m) for m in max_lens)
    # garbage in the padding of b: FrameClassifier must drop it, not learn from it
    b = dataclasses.replace(b, X=np.where(b.mask()[..., None], b.X, np.float32(1e6)))
    fit_a = FrameClassifier(LogisticRegression(), context=context).fit(a, y)
    fit_b = FrameClassifier(LogisticRegression(), context=context).fit(b, y)
    for p, q, r in zip(fit_a.decision_function(a), fit_a.decision_function(b),
                       fit_b.decision_function(a)):
        np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(p, r)


@pytest.fixture(scope="module")
def fitted_networks():
    """One tiny fitted network per architecture family, attention included."""
    torch.set_num_threads(1)
    feats = _random_features((13, 5, 22, 9), seed=0)
    batch = SequenceBatch.from_features(feats, ["a", "a", "b", "c"], max_len=8)
    y = [(f[:, 0] > 0).astype(int) for f in feats]
    nets = [StackedIntraAttClassifier(module__intra_att=("bi", 5), random_state=0, **TINY),
            StackedIntraAttClassifier(module__intra_att=("pa", 3),
                                      module__intra_att_layers="each", random_state=0, **TINY),
            EncInterAttDecClassifier(module__intra_att=("pa", 3), random_state=0, **TINY)]
    return [net.fit(batch, y) for net in nets]


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 25), min_size=1, max_size=4),
       max_len=st.integers(1, 12), seed=st.integers(0, 2 ** 16),
       scale=st.integers(-6, 6), which=st.integers(0, 2))
def test_property_padded_values_never_change_network_outputs(fitted_networks, lengths,
                                                             max_len, seed, scale, which):
    net = fitted_networks[which]
    feats = _random_features(lengths, seed)
    clean = SequenceBatch.from_features(feats, ["x"] * len(feats), max_len)
    rng = np.random.RandomState(seed + 1)
    garbage = (rng.randint(-1000, 1000, clean.X.shape) * 10.0 ** scale).astype(np.float32)
    dirty = dataclasses.replace(clean, X=np.where(clean.mask()[..., None], clean.X, garbage))
    for p, q in zip(net.predict_proba(clean), net.predict_proba(dirty)):
        assert p.shape == q.shape
        np.testing.assert_array_equal(p, q)


# --------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------

def _loso_data():
    table = frame_table(lengths=(14, 9, 20, 11, 16, 8), speakers=("a", "a", "b", "b", "c", "c"))
    return table, labels_for(table)


def test_same_random_state_same_predictions():
    table, y = _loso_data()
    runs = [np.concatenate(net_pipeline(EncInterAttDecClassifier, max_epochs=2)
                           .set_params(clf__random_state=seed).fit(table, y)
                           .predict_proba(table)) for seed in (5, 5, 6)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


def test_cross_validate_n_jobs_2_equals_n_jobs_1():
    table, y = _loso_data()
    pipe = net_pipeline(StackedIntraAttClassifier, max_epochs=2, random_state=3)
    results = [cross_validate(pipe, table, y, groups=table["speaker"], cv=LeaveOneGroupOut(),
                              scoring=uar_scorer, n_jobs=n_jobs, return_estimator=True)
               for n_jobs in (1, 2)]
    np.testing.assert_array_equal(results[0]["test_score"], results[1]["test_score"])
    for serial, parallel in zip(results[0]["estimator"], results[1]["estimator"]):
        np.testing.assert_array_equal(np.concatenate(serial.predict_proba(table)),
                                      np.concatenate(parallel.predict_proba(table)))
