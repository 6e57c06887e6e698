"""The generated corpus, AUCorpus, and the OpenFace / manifest loaders."""

import pickle

import audiofile
import numpy as np
import pandas as pd
import pytest

from sklearn_s2au.datasets import (EMOTIONS, LATENT_COLUMNS, AUCorpus, AUIntensity,
                                   load_manifest, make_speech_au_corpus, read_openface_csv)
from sklearn_s2au.framing import frame_count
from sklearn_s2au.labels import AUS, PHASES, au_phases


@pytest.fixture(scope="module")
def corpus():
    """The default corpus (a couple of seconds to generate)."""
    return make_speech_au_corpus(random_state=0)


@pytest.fixture(scope="module")
def small():
    return make_speech_au_corpus(n_speakers=2, recordings_per_speaker=2, random_state=3)


def test_default_corpus_layout(corpus):
    X = corpus.X
    assert isinstance(corpus, AUCorpus)
    assert len(X) == 160
    assert list(X.columns) == ["signal", "sampling_rate", "speaker", "sex", "emotion"]
    counts = X["speaker"].value_counts()
    assert len(counts) == 10 and set(counts) == {16}
    assert X.groupby("speaker")["sex"].first().value_counts().to_dict() == {"f": 5, "m": 5}
    assert X.index[0] == "spk01_01" and X.index.is_unique
    # Each emotion twice per speaker.
    assert set(X.groupby("speaker")["emotion"].value_counts()) == {2}
    assert set(X["emotion"]) == set(EMOTIONS)
    durations = np.array([len(s) / sr for s, sr in zip(X["signal"], X["sampling_rate"])])
    assert durations.min() >= 1.0 - 1e-3 and durations.max() <= 4.0 + 1e-3
    for signal in X["signal"]:
        assert signal.dtype == np.float32 and signal.ndim == 1
        assert np.isfinite(signal).all() and 0.001 < np.abs(signal).max() <= 0.99


def test_label_lengths_match_the_frame_grid(corpus):
    expected = [frame_count(len(s) / sr, 25) for s, sr in
                zip(corpus.X["signal"], corpus.X["sampling_rate"])]
    np.testing.assert_array_equal(corpus.n_frames, expected)
    for au in AUS:
        assert [len(c) for c in corpus.intensity[au]] == expected
        for phase in PHASES:
            y = corpus.labels(au, phase)
            assert y.dtype == object and len(y) == len(corpus.X)
            assert [len(s) for s in y] == expected
            assert all(s.dtype == np.uint8 for s in y)
    assert [len(df) for df in corpus.latent] == expected
    assert list(corpus.latent[0].columns) == list(LATENT_COLUMNS)


def test_every_target_has_both_classes_and_sensible_balance(corpus):
    bunch = corpus.labels_frame()
    Y = np.concatenate(list(bunch.y))
    rate = pd.Series(Y.mean(axis=0), index=bunch.target_names)
    assert (rate > 0.005).all() and (rate < 0.5).all(), rate
    for au in AUS:
        # Occurrence is the union of the three phases, so it is the most frequent.
        assert rate[f"{au}_occurrence"] == pytest.approx(
            rate[f"{au}_onset"] + rate[f"{au}_apex"] + rate[f"{au}_offset"])


def test_intensity_values(corpus):
    for au in AUS:
        values = np.concatenate(list(corpus.intensity[au]))
        assert values.min() >= 0 and values.max() <= 5
        np.testing.assert_array_equal(values, np.round(values, 2))   # OpenFace precision
        assert values.max() > 3     # strong events exist
        # Resting noise stays below the activity threshold.
        assert np.median(values) < 0.5


def test_labels_follow_au_phases_and_spellings(small):
    curves = list(small.intensity["AU17"])
    expected = au_phases(curves)["offset"]
    for spelling in ("AU17", "au17", 17):
        y = small.labels(spelling, "Offset")
        for a, b in zip(y, expected):
            np.testing.assert_array_equal(a, b)
    # Returned arrays are copies: editing them does not change the corpus.
    y[0][:] = 1
    np.testing.assert_array_equal(small.labels("AU17", "offset")[0], expected[0])
    with pytest.raises(ValueError, match="no intensity for 'AU05'"):
        small.labels("AU05", "onset")
    with pytest.raises(ValueError, match="unknown AU sub-class"):
        small.labels("AU17", "peak")


def test_labels_frame_is_au_major(small):
    bunch = small.labels_frame(aus=["AU1", "AU17"], phases=["onset", "offset"])
    assert bunch.target_names == ["AU01_onset", "AU01_offset", "AU17_onset", "AU17_offset"]
    for i, y in enumerate(bunch.y):
        assert y.shape == (small.n_frames[i], 4) and y.dtype == np.uint8
        np.testing.assert_array_equal(y[:, 2], small.labels("AU17", "onset")[i])
        np.testing.assert_array_equal(y[:, 1], small.labels("AU01", "offset")[i])
    everything = small.labels_frame()
    assert len(everything.target_names) == 32
    assert everything.target_names[:4] == [f"AU01_{p}" for p in PHASES]


def test_phase_params_are_used():
    strict = make_speech_au_corpus(n_speakers=1, recordings_per_speaker=2,
                                   phase_params={"threshold": 2.0})
    loose = make_speech_au_corpus(n_speakers=1, recordings_per_speaker=2)
    occ_strict = np.concatenate(list(strict.labels("AU12", "occurrence")))
    occ_loose = np.concatenate(list(loose.labels("AU12", "occurrence")))
    assert occ_strict.sum() < occ_loose.sum()
    with pytest.raises(ValueError, match="threshold"):
        make_speech_au_corpus(n_speakers=1, recordings_per_speaker=1,
                              phase_params={"threshold": "high"})


def _same(a, b):
    if not a.X.drop(columns="signal").equals(b.X.drop(columns="signal")):
        return False
    if not all(np.array_equal(x, y) for x, y in zip(a.X["signal"], b.X["signal"])):
        return False
    return all(np.array_equal(x, y) for au in AUS
               for x, y in zip(a.intensity[au], b.intensity[au]))


def test_deterministic_for_a_seed(small):
    again = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=2, random_state=3)
    assert _same(small, again)
    other = make_speech_au_corpus(n_speakers=2, recordings_per_speaker=2, random_state=4)
    assert not any(np.array_equal(x, y) for x, y in zip(small.X["signal"], other.X["signal"]))
    # A smaller corpus is the beginning of a larger one.
    first = make_speech_au_corpus(n_speakers=1, recordings_per_speaker=2, random_state=3)
    assert np.array_equal(first.X["signal"].iloc[1], small.X["signal"].iloc[1])
    np.testing.assert_array_equal(first.intensity["AU12"][0], small.intensity["AU12"][0])


def test_other_sampling_rate():
    c = make_speech_au_corpus(n_speakers=1, recordings_per_speaker=2, sampling_rate=22050)
    for signal, n in zip(c.X["signal"], c.n_frames):
        assert n == frame_count(len(signal) / 22050, 25)
        assert c.X["sampling_rate"].iloc[0] == 22050


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_speakers=0), r"n_speakers must be an integer >= 1, got 0"),
    (dict(recordings_per_speaker=1.5), r"recordings_per_speaker must be an integer >= 1, "
                                       r"got 1\.5"),
    (dict(sampling_rate=4000), r"sampling_rate must be an integer >= 8000, got 4000"),
    (dict(random_state="x"), r"random_state must be None, an int, .* got 'x'"),
    (dict(min_duration=3.0, max_duration=2.0), r"need 0 < min_duration <= max_duration, "
                                               r"got 3\.0 and 2\.0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_speech_au_corpus(**kwargs)


def _frame_energy_db(signal, n_frames, sampling_rate):
    hop = sampling_rate // 25
    padded = np.zeros(n_frames * hop)
    padded[:len(signal)] = signal
    return 10 * np.log10(np.mean(padded.reshape(n_frames, hop) ** 2, axis=1) + 1e-12)


def test_audio_carries_the_latent_gestures(corpus):
    """Lip gestures (AU17) and pitch accents (AU01/02) leave measurable traces."""
    energy, lip, f0_change, accent = [], [], [], []
    for i, (signal, lat) in enumerate(zip(corpus.X["signal"], corpus.latent)):
        e = _frame_energy_db(signal, corpus.n_frames[i], 16000)
        speech = lat["pause"].to_numpy() == 0
        energy.append(e[speech] - e[speech].mean())
        lip.append(lat["lip"].to_numpy()[speech])
        accent.append(lat["accent"].to_numpy())
        f0_change.append(np.log(lat["f0"].to_numpy()))
    energy, lip = np.concatenate(energy), np.concatenate(lip)
    assert np.corrcoef(energy, lip)[0, 1] < -0.2
    assert np.corrcoef(np.concatenate(accent), np.concatenate(f0_change))[0, 1] > 0.2
    # AU17 follows the lip gesture (with a lag), but not perfectly.
    au17 = np.concatenate(list(corpus.intensity["AU17"]))
    gesture = np.concatenate([lat["lip"].to_numpy() for lat in corpus.latent])
    assert 0.4 < np.corrcoef(au17, gesture)[0, 1] < 0.95


def test_oracle_is_a_high_but_imperfect_ceiling(corpus):
    table = corpus.oracle()
    assert table.shape == (8, 4)
    assert list(table.index) == list(AUS) and list(table.columns) == list(PHASES)
    assert (table > 0.55).all().all() and (table < 0.97).all().all(), table
    assert table.loc["AU17", "onset"] > 0.7
    # Cached: the same numbers without recomputation; a copy is returned.
    table.iloc[0, 0] = 0
    assert corpus.oracle().iloc[0, 0] > 0.6
    sub = corpus.oracle(aus=["AU17"], phases=["onset"])
    assert sub.iloc[0, 0] == pytest.approx(corpus.oracle().loc["AU17", "onset"])


def test_oracle_needs_latents_and_speakers(small, tmp_path):
    one = make_speech_au_corpus(n_speakers=1, recordings_per_speaker=2)
    with pytest.raises(ValueError, match="2 speakers"):
        one.oracle()
    loaded = load_manifest(small.to_wav(tmp_path))
    with pytest.raises(ValueError, match="latent"):
        loaded.oracle()


def test_repr_and_dir_are_short(small):
    text = repr(small)
    assert text.startswith("AUCorpus(4 recordings, 2 speakers, AUs ['AU01'")
    assert len(text) < 300
    assert {"labels", "labels_frame", "oracle", "to_wav", "X", "intensity"} <= set(dir(small))


def test_pickle_round_trip(small):
    small.labels("AU17", "onset")          # fill the cache
    copy = pickle.loads(pickle.dumps(small))
    assert isinstance(copy, AUCorpus) and set(copy) == set(small)
    for a, b in zip(copy.labels("AU17", "onset"), small.labels("AU17", "onset")):
        np.testing.assert_array_equal(a, b)


def test_to_wav_and_load_manifest_round_trip(small, tmp_path):
    manifest = small.to_wav(tmp_path / "corpus")
    assert manifest == tmp_path / "corpus" / "manifest.csv"
    table = pd.read_csv(manifest)
    assert list(table.columns[:3]) == ["file", "speaker", "au_file"]
    assert {"sex", "emotion", "recording"} <= set(table.columns)
    header = (tmp_path / "corpus" / table["au_file"][0]).read_text().splitlines()[0]
    assert header.startswith("frame, face_id, timestamp, confidence, success, AU01_r")

    loaded = load_manifest(manifest)
    assert isinstance(loaded, AUCorpus) and loaded.latent is None
    assert list(loaded.X["speaker"]) == list(small.X["speaker"])
    assert list(loaded.X["emotion"]) == list(small.X["emotion"])
    np.testing.assert_array_equal(loaded.n_frames, small.n_frames)
    for au in AUS:
        for a, b in zip(loaded.intensity[au], small.intensity[au]):
            np.testing.assert_allclose(a, b, atol=1e-12)
    ours = small.labels_frame()
    theirs = loaded.labels_frame()
    assert theirs.target_names == ours.target_names
    for a, b in zip(theirs.y, ours.y):
        np.testing.assert_array_equal(a, b)
    signal, sr = audiofile.read(loaded.X["file"][0])
    assert sr == 16000
    np.testing.assert_allclose(signal, small.X["signal"].iloc[0], atol=2 / 32768)


OPENFACE = """frame, face_id, timestamp, confidence, success, AU01_r, AU17_r, AU01_c, AU17_c
1, 0, 0.000, 0.98, 1, 0.10, 1.00, 0, 1
2, 0, 0.040, 0.98, 1, 0.20, 2.00, 0, 1
3, 0, 0.080, 0.02, 0, 0.00, 0.00, 0, 0
4, 0, 0.120, 0.98, 1, 0.40, 4.00, 0, 1
5, 0, 0.160, 0.98, 1, 0.50, 5.00, 0, 1
"""


def test_read_openface_csv(tmp_path):
    path = tmp_path / "au.csv"
    path.write_text(OPENFACE)
    table = read_openface_csv(path)
    assert list(table.columns) == ["AU01", "AU17"] and table.index.name == "frame"
    # The failed frame (success=0) is interpolated between its neighbours.
    np.testing.assert_allclose(table["AU17"], [1, 2, 3, 4, 5])
    np.testing.assert_allclose(table["AU01"], [0.1, 0.2, 0.3, 0.4, 0.5])
    only = read_openface_csv(path, aus=[17])
    assert list(only.columns) == ["AU17"]
    # On a 50 Hz grid each 25 Hz row covers two frames; the gaps are interpolated.
    fine = read_openface_csv(path, frame_rate=50)
    assert len(fine) == 10
    np.testing.assert_allclose(fine["AU17"].to_numpy()[::2], [1, 2, 3, 4, 5])
    # Aligned to an audio of 6 frames (within tolerance): the last value is repeated.
    longer = read_openface_csv(path, n_frames=6)
    np.testing.assert_allclose(longer["AU17"], [1, 2, 3, 4, 5, 5])
    # A CSV a frame longer than the audio: the extra row is left out.
    shorter = read_openface_csv(path, n_frames=4)
    np.testing.assert_allclose(shorter["AU17"], [1, 2, 3, 4])


def test_read_openface_csv_errors(tmp_path):
    path = tmp_path / "au.csv"
    path.write_text(OPENFACE)
    with pytest.raises(ValueError, match=r"AU12.*aus="):
        read_openface_csv(path, aus=["AU12"])
    with pytest.raises(ValueError, match="differ by more than tolerance"):
        read_openface_csv(path, n_frames=100)
    with pytest.raises(ValueError, match="differ by more than tolerance"):
        read_openface_csv(path, n_frames=1, tolerance=0.05)
    failed = tmp_path / "failed.csv"
    failed.write_text(OPENFACE.replace(", 1, 0.", ", 0, 0."))
    with pytest.raises(ValueError, match="no row with success=1"):
        read_openface_csv(failed)
    faces = tmp_path / "faces.csv"
    faces.write_text(OPENFACE.replace("2, 0, 0.040", "2, 1, 0.040"))
    with pytest.raises(ValueError, match="2 faces"):
        read_openface_csv(faces)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="timestamp"):
        read_openface_csv(other)


def test_load_manifest_errors(small, tmp_path):
    manifest = small.to_wav(tmp_path)
    table = pd.read_csv(manifest)

    def write(frame):
        path = tmp_path / "edited.csv"
        frame.to_csv(path, index=False)
        return path

    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['au_file'\]"):
        load_manifest(write(table.drop(columns="au_file")))
    gone = table.copy()
    gone.loc[2, "file"] = "missing.wav"
    with pytest.raises(ValueError, match="row 2 .*'missing.wav' does not exist"):
        load_manifest(write(gone))
    nobody = table.copy()
    nobody.loc[1, "speaker"] = None
    with pytest.raises(ValueError, match=r"row\(s\) \[1\].*no speaker"):
        load_manifest(write(nobody))
    (tmp_path / "short.csv").write_text(OPENFACE)
    short = table.copy()
    short.loc[0, "au_file"] = "short.csv"     # 0.2 s of AUs for a 1-4 s recording
    with pytest.raises(ValueError, match="row 0: .*short.csv.*differ by more than"):
        load_manifest(write(short), aus=["AU01", "AU17"])
    with pytest.raises(ValueError, match="no intensity column for \\['AU05'\\]"):
        load_manifest(manifest, aus=["AU05"])


def test_intensity_targets_on_the_frame_grid(small):
    y = small.intensity(aus=["AU17", "AU01"])
    assert isinstance(small.intensity, AUIntensity) and y.dtype == object
    assert len(y) == len(small.X)
    for i, arr in enumerate(y):
        assert arr.shape == (small.n_frames[i], 2) and arr.dtype == np.float64
        np.testing.assert_array_equal(arr[:, 0], small.intensity["AU17"][i])
        np.testing.assert_array_equal(arr[:, 1], small.intensity["AU01"][i])
    # the default: every AU, in the corpus' order; one AU alone: 1-D arrays
    every = small.intensity()
    assert every[0].shape == (small.n_frames[0], len(AUS))
    np.testing.assert_array_equal(every[0][:, AUS.index("AU12")], small.intensity["AU12"][0])
    one = small.intensity(aus=17)
    assert one[1].shape == (small.n_frames[1],)
    # copies: editing the targets leaves the corpus alone
    one[1][:] = -1.0
    assert (small.intensity["AU17"][1] >= 0).all()
    # the same grid as the labels
    labels = small.labels("AU17", "occurrence")
    assert [len(a) for a in y] == [len(b) for b in labels]
    with pytest.raises(ValueError, match=r"no intensity for 'AU05'; it has \['AU01'"):
        small.intensity(aus=["AU12", "AU05"])
    with pytest.raises(ValueError, match="needs at least one AU"):
        small.intensity(aus=[])
    copy = pickle.loads(pickle.dumps(small))
    assert isinstance(copy.intensity, AUIntensity)
    np.testing.assert_array_equal(copy.intensity(aus=["AU17"])[0], y[0][:, :1])


def test_corpus_made_from_a_plain_dict_gets_callable_intensity(small):
    corpus = AUCorpus(X=small.X, intensity={"AU17": small.intensity["AU17"]},
                      n_frames=small.n_frames, frame_rate=25, latent=None,
                      phase_params={})
    assert isinstance(corpus.intensity, AUIntensity)
    corpus.intensity = {"AU12": small.intensity["AU12"]}
    np.testing.assert_array_equal(corpus.intensity("AU12")[0], small.intensity["AU12"][0])


def test_load_manifest_reads_every_openface_intensity(small, tmp_path):
    manifest = small.to_wav(tmp_path)
    table = pd.read_csv(manifest)
    # OpenFace writes AUs beyond the paper's 8: add AU25_r (lips part) to every CSV
    for i, name in enumerate(table["au_file"]):
        path = tmp_path / name
        frame = pd.read_csv(path, skipinitialspace=True)
        frame.insert(frame.columns.get_loc("AU01_c"), "AU25_r",
                     np.round(small.intensity["AU12"][i] / 2, 2))
        frame.to_csv(path, index=False, float_format="%.2f")
    loaded = load_manifest(manifest, aus="all")
    assert list(loaded.intensity) == list(AUS) + ["AU25"]
    y = loaded.intensity(aus=["AU25", "AU17"])
    for i, arr in enumerate(y):
        assert arr.shape == (small.n_frames[i], 2)
        np.testing.assert_allclose(arr[:, 0], np.round(small.intensity["AU12"][i] / 2, 2))
        np.testing.assert_allclose(arr[:, 1], small.intensity["AU17"][i], atol=1e-12)
    assert load_manifest(manifest).intensity.keys() == set(AUS)
    frame = pd.read_csv(tmp_path / table["au_file"][1], skipinitialspace=True)
    frame.drop(columns="AU25_r").to_csv(tmp_path / table["au_file"][1], index=False)
    with pytest.raises(ValueError, match=r"row 1: .*no intensity column for \['AU25'\]"):
        load_manifest(manifest, aus="all")
