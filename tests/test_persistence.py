"""Persistence and safety: fitted pipelines on disk, weights without pickle, loaders
that never unpickle what a user gives them.

* Fitted pipelines (the SVM baseline and tiny paper networks, from the recordings table
  to the predictions) round-trip through ``joblib.dump``/``joblib.load`` with identical
  predictions.
* The networks' weights round-trip through skorch's safetensors route
  (``save_params(f_params=..., use_safetensors=True)``), which stores tensors only.
* ``read_openface_csv``, ``load_manifest`` and ``OpenSmileLLD`` read CSV text and audio
  only: a pickle renamed ``.csv`` or ``.wav`` is a clear error and never runs code.
"""

import json
import pickle
import struct

import joblib
import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from sklearn_s2au.baselines import FrameClassifier
from sklearn_s2au.classifiers import EncInterAttDecClassifier, StackedIntraAttClassifier
from sklearn_s2au.datasets import load_manifest, read_openface_csv
from sklearn_s2au.features import OpenSmileLLD
from sklearn_s2au.framing import frame_count
from sklearn_s2au.preprocessing import SequencePadder, SpeakerNormaliser

SR = 16000
TINY = dict(module__hidden_size=4, module__intra_att_units=4, batch_size=8, max_epochs=2,
            n_threads=1, random_state=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tone(duration, seed):
    rng = np.random.default_rng(seed)
    n = int(round(duration * SR))
    t = np.arange(n) / SR
    f0 = rng.uniform(110, 200) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    envelope = 0.3 + 0.7 * (np.sin(2 * np.pi * rng.uniform(1, 4) * t) > 0)
    x = envelope * sum(np.sin(k * phase) / k for k in range(1, 6))
    x += 0.02 * rng.standard_normal(n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    """Six short recordings of three speakers, with 0/1 labels on the 25 Hz grid."""
    durations = [0.6, 0.8, 0.7, 0.5, 0.9, 0.6]
    signals = [tone(d, seed) for seed, d in enumerate(durations)]
    X = pd.DataFrame({"speaker": ["a", "a", "b", "b", "c", "c"], "signal": signals,
                      "sampling_rate": SR}, index=[f"rec{i}" for i in range(6)])
    rng = np.random.RandomState(0)
    y = []
    for d in durations:
        lab = (rng.rand(frame_count(d, 25)) > 0.5).astype(int)
        lab[:2] = [0, 1]
        y.append(lab)
    return X, y


def _front(normaliser=True):
    steps = [("lld", OpenSmileLLD("eGeMAPSv02"))]
    return steps + ([("norm", SpeakerNormaliser())] if normaliser else [])


def _network_pipeline(cls):
    return Pipeline(_front() + [("pad", SequencePadder(max_len=10)),
                                ("clf", cls(**TINY))])


def _round_trip(estimator, path):
    joblib.dump(estimator, path)
    return joblib.load(path)


def _same(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.shape == q.shape
        np.testing.assert_array_equal(p, q)


# --------------------------------------------------------------------------------------
# joblib
# --------------------------------------------------------------------------------------

def test_svm_pipeline_joblib_round_trip(data, tmp_path):
    X, y = data
    pipe = Pipeline(_front() + [("clf", FrameClassifier(SVC(class_weight="balanced"),
                                                        context=1))]).fit(X, y)
    loaded = _round_trip(pipe, tmp_path / "svm.joblib")
    assert loaded is not pipe and loaded.get_params(deep=False).keys() == \
        pipe.get_params(deep=False).keys()
    pred = pipe.predict(X)
    assert [len(p) for p in pred] == [len(lab) for lab in y]
    _same(loaded.predict(X), pred)
    _same(loaded.decision_function(X), pipe.decision_function(X))
    # the fitted state travelled, not just the parameters
    np.testing.assert_array_equal(loaded[-1].estimator_.support_vectors_,
                                  pipe[-1].estimator_.support_vectors_)
    pd.testing.assert_frame_equal(loaded["norm"].mean_, pipe["norm"].mean_)
    assert loaded.score(X, y) == pipe.score(X, y)


@pytest.mark.parametrize("cls", [StackedIntraAttClassifier, EncInterAttDecClassifier])
def test_network_pipeline_joblib_round_trip(data, tmp_path, cls):
    X, y = data
    pipe = _network_pipeline(cls).fit(X, y)
    loaded = _round_trip(pipe, tmp_path / "net.joblib")
    proba = pipe.predict_proba(X)
    assert [p.shape for p in proba] == [(len(lab),) for lab in y]
    _same(loaded.predict_proba(X), proba)
    _same(loaded.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(loaded[-1].selected_epochs_, pipe[-1].selected_epochs_)
    # a loaded network is an estimator like any other: cloneable, refittable
    refit = clone(loaded).fit(X, y)
    _same(refit.predict_proba(X), proba)


# --------------------------------------------------------------------------------------
# safetensors: weights without pickle
# --------------------------------------------------------------------------------------

def _fitted_net(cls, data):
    X, y = data
    batch = Pipeline(_front() + [("pad", SequencePadder(max_len=10))]).fit_transform(X)
    return batch, y, cls(**TINY).fit(batch, y)


def _safetensors_header(path):
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON)."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length])


@pytest.mark.parametrize("cls", [StackedIntraAttClassifier, EncInterAttDecClassifier])
def test_safetensors_into_a_freshly_initialized_net(data, tmp_path, cls):
    pytest.importorskip("safetensors")
    batch, _, net = _fitted_net(cls, data)
    path = tmp_path / "weights.safetensors"
    net.save_params(f_params=path, use_safetensors=True)
    # skorch's route: a new net with the same parameters, initialize(), load_params;
    # the input size (and the number of targets, here 1) are module parameters
    fresh = cls(**TINY, module__n_features=batch.n_features)
    fresh.initialize()
    fresh.load_params(f_params=path, use_safetensors=True)
    _same(fresh.predict_proba(batch), net.predict_proba(batch))
    with pytest.raises(RuntimeError, match="set module__n_features"):
        cls(**TINY).initialize()
    with pytest.raises(ValueError, match="module__n_features must be a positive integer"):
        cls(**TINY, module__n_features=0).initialize()


@pytest.mark.parametrize("multi_target, size", [("shared", "module__n_outputs"),
                                               ("independent", "module__n_models")])
def test_safetensors_into_a_fresh_net_with_several_targets(data, tmp_path, multi_target,
                                                           size):
    pytest.importorskip("safetensors")
    X, y = data
    batch = Pipeline(_front() + [("pad", SequencePadder(max_len=10))]).fit_transform(X)
    y2 = [np.c_[labels, 1 - labels] for labels in y]
    net = EncInterAttDecClassifier(**TINY, multi_target=multi_target).fit(batch, y2)
    path = tmp_path / "weights.safetensors"
    net.save_params(f_params=path, use_safetensors=True)
    fresh = EncInterAttDecClassifier(**TINY, multi_target=multi_target,
                                     module__n_features=batch.n_features, **{size: 2})
    fresh.initialize()
    fresh.load_params(f_params=path, use_safetensors=True)
    _same(fresh.predict_proba(batch), net.predict_proba(batch))


@pytest.mark.parametrize("cls", [StackedIntraAttClassifier, EncInterAttDecClassifier])
def test_safetensors_weights_round_trip(data, tmp_path, cls):
    pytest.importorskip("safetensors")
    from safetensors.torch import load_file

    batch, _, net = _fitted_net(cls, data)
    path = tmp_path / "weights.safetensors"
    net.save_params(f_params=path, use_safetensors=True)
    # the file is tensors and a JSON header, nothing executable: not a pickle
    assert not path.read_bytes().startswith(b"\x80")
    state = net.module_.state_dict()
    header = _safetensors_header(path)
    assert set(header) - {"__metadata__"} == set(state)
    for name, tensor in load_file(path).items():
        assert torch.equal(tensor, state[name]), name
    # a new net with the same parameters; here the data-dependent attributes that fit
    # would set are copied over (the route through module__n_features is tested in
    # test_safetensors_into_a_freshly_initialized_net), then the weights are loaded
    fresh = cls(**TINY)
    for name in ("n_features_in_", "n_targets_", "y_ndim_", "random_seed_", "classes_"):
        setattr(fresh, name, getattr(net, name))
    fresh.initialize()
    before = np.concatenate(fresh.predict_proba(batch))
    fresh.load_params(f_params=path, use_safetensors=True)
    after = np.concatenate(fresh.predict_proba(batch))
    expected = np.concatenate(net.predict_proba(batch))
    np.testing.assert_array_equal(after, expected)
    assert not np.array_equal(before, expected)    # the trained weights did arrive
    # weights of another architecture do not load silently
    other = cls(**{**TINY, "module__hidden_size": 3})
    for name in ("n_features_in_", "n_targets_", "y_ndim_", "random_seed_", "classes_"):
        setattr(other, name, getattr(net, name))
    other.initialize()
    with pytest.raises(RuntimeError, match="size mismatch"):
        other.load_params(f_params=path, use_safetensors=True)


# --------------------------------------------------------------------------------------
# Loaders never unpickle
# --------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this creates the file ``marker``: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_pickle(path, marker, protocol):
    with open(path, "wb") as fh:
        pickle.dump(_Payload(marker), fh, protocol=protocol)
    return path


@pytest.fixture
def manifest(tmp_path):
    """A valid two-recording manifest with its audio and OpenFace CSVs."""
    rows = []
    for i in range(2):
        soundfile.write(tmp_path / f"r{i}.wav", tone(0.5, i), SR)
        n = frame_count(0.5, 25)
        pd.DataFrame({"frame": np.arange(1, n + 1), "face_id": 0,
                      "timestamp": np.arange(n) / 25, "confidence": 0.9, "success": 1,
                      "AU17_r": np.linspace(0, 2, n)}).to_csv(tmp_path / f"r{i}.csv",
                                                              index=False)
        rows.append({"file": f"r{i}.wav", "speaker": f"s{i}", "au_file": f"r{i}.csv"})
    path = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_renamed_csv_is_an_error_not_code(tmp_path, manifest, protocol):
    marker = tmp_path / "CODE_RAN"
    evil = _write_pickle(tmp_path / "evil.csv", marker, protocol)
    # protocol 0 is ASCII and parses as a (meaningless) CSV; later ones are binary
    fragment = r"no 'timestamp' column" if protocol == 0 else r"not a CSV text file"
    with pytest.raises(ValueError, match=r"evil\.csv: " + fragment):
        read_openface_csv(evil)
    fragment = r"the manifest lacks the column" if protocol == 0 else r"not a CSV text file"
    with pytest.raises(ValueError, match=r"evil\.csv: " + fragment):
        load_manifest(evil)
    # as the AU file of a manifest row: the error names the row and the file
    table = pd.read_csv(manifest)
    table.loc[1, "au_file"] = "evil.csv"
    table.to_csv(manifest, index=False)
    fragment = r"no 'timestamp' column" if protocol == 0 else r"not a CSV text file"
    with pytest.raises(ValueError, match=r"manifest\.csv: row 1: .*evil\.csv: " + fragment):
        load_manifest(manifest, aus=["AU17"])
    assert not marker.exists()


def test_a_pickle_renamed_wav_is_an_error_not_code(tmp_path):
    marker = tmp_path / "CODE_RAN"
    evil = _write_pickle(tmp_path / "evil.wav", marker, pickle.HIGHEST_PROTOCOL)
    X = pd.DataFrame({"speaker": ["s"], "file": [str(evil)]}, index=["r"])
    with pytest.raises(ValueError, match=r"cannot read the audio file '.*evil\.wav' of "
                                         r"recording 'r'"):
        OpenSmileLLD("eGeMAPSv02").fit_transform(X)
    assert not marker.exists()


def test_loaders_never_call_an_unpickler(manifest, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a loader tried to unpickle a file")

    class ForbiddenUnpickler:
        def __init__(self, *args, **kwargs):
            forbidden()

    for module, name in [(pickle, "load"), (pickle, "loads"), (pd, "read_pickle"),
                         (joblib, "load"), (torch, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(pickle, "Unpickler", ForbiddenUnpickler)
    corpus = load_manifest(manifest, aus=["AU17"])
    assert corpus.n_frames.tolist() == [13, 13]
    assert read_openface_csv(manifest.parent / "r0.csv")["AU17"].shape == (13,)
    frames = OpenSmileLLD("eGeMAPSv02").fit_transform(corpus.X)
    assert [f.shape for f in frames["features"]] == [(13, 25), (13, 25)]
