"""The AU intensity protocol (issue 13): CCC and r per AU, leave-one-speaker-out, CLI."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sklearn_s2au import experiments  # noqa: E402
from sklearn_s2au.__main__ import main  # noqa: E402
from sklearn_s2au.datasets import make_speech_au_corpus  # noqa: E402

TINY_NET = dict(module__hidden_size=4, batch_size=8)
AUS2 = ["AU12", "AU17"]
COLUMNS = ["architecture", "encoder", "feature_set", "au", "fold", "ccc", "r", "epochs",
           "seconds"]


@pytest.fixture(scope="module")
def corpus():
    return make_speech_au_corpus(n_speakers=3, recordings_per_speaker=2, random_state=0)


def _fake_fit(seen):
    """A fit that records its estimator and scores nothing (no training)."""
    def fit(frames, y, target_names, train, test, estimator, max_len, meta):
        seen.append((dict(meta), estimator.get_params(), list(train), list(test)))
        return [dict(meta, au=name, ccc=0.5, r=0.6, epochs=1, seconds=0.0)
                for name in target_names]
    return fit


def test_intensity_rows_are_ccc_and_r_of_the_held_out_speaker(corpus):
    from sklearn.svm import SVR

    from sklearn_s2au import FrameRegressor, SpeakerNormaliser
    from sklearn_s2au.metrics import sequence_ccc, sequence_pearson

    res = experiments.intensity(corpus, encoders=["tcn"], aus=AUS2, max_epochs=1,
                                network_params=TINY_NET, n_jobs=1, verbose=0)
    assert list(res.columns) == COLUMNS
    # networks first, then the SVR; AUs, then folds, in order
    assert list(pd.unique(res.architecture)) == ["Stacked-NoAtt", experiments.SVR_NAME]
    assert list(pd.unique(res.encoder)) == ["tcn", "-"]
    assert len(res) == 2 * 2 * 3
    assert list(res.au[:6]) == ["AU12"] * 3 + ["AU17"] * 3
    assert list(res.fold[:3]) == list(pd.unique(corpus.X.speaker))
    assert res.epochs[:6].eq(1).all() and res.epochs[6:].isna().all()
    assert res.ccc.between(-1, 1).all()

    # one SVR fold by hand, with the protocol's steps
    frames = experiments.extract_features(corpus.X, "eGeMAPSv02")
    y = corpus.intensity(aus=AUS2)
    test = (corpus.X.speaker == "spk02").to_numpy()
    norm = SpeakerNormaliser()
    svr = FrameRegressor(SVR(), random_state=0).fit(norm.fit_transform(frames[~test]),
                                                    list(y[~test]))
    pred = svr.predict(norm.transform(frames[test]))
    mine = res[(res.architecture == experiments.SVR_NAME) & (res.fold == "spk02")]
    expected_ccc = sequence_ccc(list(y[test]), pred, targets=AUS2, return_per_target=True)
    expected_r = sequence_pearson(list(y[test]), pred, targets=AUS2, return_per_target=True)
    np.testing.assert_allclose(mine.ccc, expected_ccc[AUS2])
    np.testing.assert_allclose(mine.r, expected_r[AUS2])


def test_intensity_table_means_over_folds_then_aus_skipping_undefined_r():
    rows = []
    for model, values in {("net", "tcn"): {"AU17": [0.4, 0.6], "AU01": [0.1, 0.3]},
                          (experiments.SVR_NAME, "-"): {"AU17": [0.2, 0.0],
                                                        "AU01": [0.1, 0.1]}}.items():
        for au, cccs in values.items():
            for fold, ccc in zip("ab", cccs):
                r = np.nan if (model[0] == "net" and au == "AU01" and fold == "b") else ccc
                rows.append(dict(architecture=model[0], encoder=model[1],
                                 feature_set="x", au=au, fold=fold, ccc=ccc, r=r,
                                 epochs=1, seconds=1.0))
    results = pd.DataFrame(rows)
    table = experiments.intensity_table(results)
    # the results' order of models and AUs, not sorted
    assert list(table.index) == [("net", "tcn"), (experiments.SVR_NAME, "-")]
    assert list(table.columns) == ["AU17", "AU01", "mean"]
    np.testing.assert_allclose(table.loc[("net", "tcn")], [0.5, 0.2, 0.35])
    np.testing.assert_allclose(table.loc[(experiments.SVR_NAME, "-")], [0.1, 0.1, 0.1])
    r = experiments.intensity_table(results, metric="r")
    assert r.loc[("net", "tcn"), "AU01"] == pytest.approx(0.1)      # NaN fold left out
    assert experiments.to_markdown(table, "{:.3f}").splitlines()[2] == (
        "| net / tcn | 0.500 | 0.200 | 0.350 |")
    with pytest.raises(ValueError, match="metric"):
        experiments.intensity_table(results, metric="uar")


@pytest.mark.parametrize("settings", ["default", "paper"])
def test_every_architecture_and_encoder_runs_as_a_regressor(corpus, monkeypatch, settings):
    from sklearn_s2au.classifiers import PAPER_SETTINGS
    from sklearn_s2au.regressors import EncInterAttDecRegressor, StackedIntraAttRegressor

    seen = []
    monkeypatch.setattr(experiments, "_fit_intensity_fold", _fake_fit(seen))
    res = experiments.intensity(corpus, architectures=["Stacked-IntraAtt bi=5",
                                                       "Enc-InterAtt-Dec"],
                                encoders=["lstm", "transformer"], aus=AUS2, loss="ccc",
                                settings=settings, max_epochs=3, n_jobs=1, verbose=0)
    models = {(m["architecture"], m["encoder"]) for m, *_ in seen}
    assert models == {(a, e) for a in ("Stacked-IntraAtt bi=5", "Enc-InterAtt-Dec")
                      for e in ("lstm", "transformer")} | {(experiments.SVR_NAME, "-")}
    assert len(res) == 5 * 2 * 3
    for meta, params, train, test in seen:
        assert not set(train) & set(test)
        if meta["architecture"] == experiments.SVR_NAME:
            assert type(params["estimator"]).__name__ == "SVR"
            continue
        assert params["module__encoder"] == meta["encoder"]
        assert params["loss"] == "ccc" and params["max_epochs"] == 3
        assert params["multi_target"] == "independent"
        if meta["architecture"] == "Enc-InterAtt-Dec":
            assert "module__inter_att" in params and params["module__inter_att"]
        else:
            assert params["module__intra_att"] == ("bi", 5)
        if settings == "paper":
            assert params["lr"] == PAPER_SETTINGS["lr"]
            if meta["architecture"] == "Enc-InterAtt-Dec":       # the paper's decoder too
                assert params["module__attention_window"] is None
        else:
            assert params["lr"] == 1e-3
    estimators = experiments._network("Enc-InterAtt-Dec", 1, 0, None, regressor=True), \
        experiments._network("Stacked-NoAtt", 1, 0, None, regressor=True)
    assert [type(e) for e in estimators] == [EncInterAttDecRegressor, StackedIntraAttRegressor]


def test_intensity_rejects_bad_arguments_before_any_work(corpus, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("features were extracted before the arguments were checked")

    monkeypatch.setattr(experiments, "extract_features", fail)
    with pytest.raises(ValueError, match="encoders must be"):
        experiments.intensity(corpus, encoders=["gru"])
    with pytest.raises(ValueError, match="unknown architectures"):
        experiments.intensity(corpus, architectures=["Stacked"])
    with pytest.raises(ValueError, match="settings must be one of"):
        experiments.intensity(corpus, settings="fast")
    with pytest.raises(ValueError, match="targets_per_fit"):
        experiments.intensity(corpus, targets_per_fit=0)
    with pytest.raises(ValueError, match="AU99"):
        experiments.intensity(corpus, aus=["AU99"])


def test_intensity_checkpoint_resumes_and_is_apart_from_classification(corpus, tmp_path,
                                                                       monkeypatch):
    kwargs = dict(architectures=[], aus=AUS2, n_jobs=1, verbose=0,
                  checkpoint=tmp_path / "fits")
    first = experiments.intensity(corpus, **kwargs)
    assert len(list((tmp_path / "fits").glob("fit_*.csv"))) == 3      # SVR x 3 folds
    seen = []
    monkeypatch.setattr(experiments, "_fit_intensity_fold", _fake_fit(seen))
    again = experiments.intensity(corpus, **kwargs)
    assert seen == []                                    # every fit read back
    pd.testing.assert_frame_equal(first, again)
    # the same folder serves a classification run without mixing the two up
    classification = experiments.run_protocol(corpus, architectures=[], aus=["AU17"],
                                              phases=["occurrence"],
                                              feature_sets=["eGeMAPSv02"], n_jobs=1,
                                              verbose=0, checkpoint=tmp_path / "fits")
    assert "uar" in classification.columns and len(classification) == 3
    assert len(list((tmp_path / "fits").glob("fit_*.csv"))) == 6


def test_checkpoint_made_by_other_code_is_not_reused(corpus, tmp_path, monkeypatch):
    from sklearn_s2au import _protocol

    kwargs = dict(architectures=[], aus=AUS2, n_jobs=1, verbose=0,
                  checkpoint=tmp_path / "fits")
    experiments.intensity(corpus, **kwargs)
    seen = []
    monkeypatch.setattr(experiments, "_fit_intensity_fold", _fake_fit(seen))
    experiments.intensity(corpus, **kwargs)
    assert seen == []                                    # same code: read back
    # the package's sources changed (same version, same parameters): fitted again
    monkeypatch.setattr(_protocol, "source_fingerprint", lambda: "edited sources")
    again = experiments.intensity(corpus, **kwargs)
    assert len(seen) == 3 and set(again["ccc"]) == {0.5}
    assert len(list((tmp_path / "fits").glob("fit_*.csv"))) == 6


def test_sources_hash_follows_names_and_contents(tmp_path):
    from sklearn_s2au._protocol import sources_hash

    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not a source")
    first = sources_hash(tmp_path)
    assert sources_hash(tmp_path) == first
    (tmp_path / "notes.txt").write_text("changed, still not a source")
    assert sources_hash(tmp_path) == first
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")          # contents
    changed = sources_hash(tmp_path)
    assert changed != first
    (tmp_path / "sub" / "b.py").rename(tmp_path / "sub" / "c.py")   # names
    assert sources_hash(tmp_path) not in (first, changed)


def test_no_held_out_speaker_frame_reaches_the_regressors_fit(corpus, monkeypatch):
    from sklearn_s2au import baselines, preprocessing

    seen = {"norm": [], "fit": []}
    norm_fit = preprocessing.SpeakerNormaliser.fit
    svr_fit = baselines.FrameRegressor.fit

    def spy_norm(self, X, y=None):
        seen["norm"].append(set(X["speaker"]))
        return norm_fit(self, X, y)

    def spy_fit(self, X, y):
        seen["fit"].append(set(X["speaker"]))
        return svr_fit(self, X, y)

    monkeypatch.setattr(preprocessing.SpeakerNormaliser, "fit", spy_norm)
    monkeypatch.setattr(baselines.FrameRegressor, "fit", spy_fit)
    res = experiments.intensity(corpus, architectures=[], aus=["AU17"], n_jobs=1,
                                verbose=0)
    folds = list(pd.unique(corpus.X.speaker))
    assert list(res.fold) == folds
    for speaker, norm, fit in zip(folds, seen["norm"], seen["fit"]):
        assert norm == fit == set(folds) - {speaker}


def test_held_out_intensity_predicts_the_most_active_held_out_recording(corpus):
    held_out = experiments.held_out_intensity(corpus, aus=AUS2, encoder="tcn",
                                              max_epochs=1, test_speaker="spk01")
    y = corpus.intensity(aus=AUS2)
    mine = np.flatnonzero((corpus.X.speaker == "spk01").to_numpy())
    chosen = mine[np.argmax([y[i].sum() for i in mine])]
    assert held_out.recording == corpus.X.index[chosen] and held_out.speaker == "spk01"
    np.testing.assert_array_equal(held_out.y_true, y[chosen])
    assert held_out.y_pred.shape == y[chosen].shape and held_out.proba is None
    assert held_out.target_names == AUS2 and held_out.model_name == "Stacked-NoAtt (tcn)"
    assert held_out.attention is None                # Stacked-NoAtt has no attention
    # the model is the fitted pipeline: it gives the same prediction again
    frames = experiments.extract_features(corpus.X.iloc[[chosen]], "eGeMAPSv02")
    np.testing.assert_allclose(held_out.model.predict(frames)[0], held_out.y_pred)
    with pytest.raises(ValueError, match="test_speaker 'nobody'"):
        experiments.held_out_intensity(corpus, test_speaker="nobody")


# ---- the command line ----------------------------------------------------------------

def test_intensity_command_writes_tables_and_figures(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["intensity", "--speakers", "3", "--recordings-per-speaker", "2",
                 "--epochs", "1", "--encoders", "tcn", "--aus", "12", "AU17",
                 "--n-jobs", "1", "--out", str(out), "-q"]) == 0
    tidy = pd.read_csv(out / "intensity.csv")
    assert list(tidy.columns) == COLUMNS
    assert set(tidy.au) == set(AUS2) and set(tidy.feature_set) == {"eGeMAPSv02"}
    assert len(tidy) == 2 * 2 * 3                          # TCN and SVR x 2 AUs x 3 folds
    markdown = (out / "intensity.md").read_text()
    assert "## intensity: mean CCC" in markdown and "## intensity: mean Pearson r" in markdown
    assert "GENERATED demo corpus" in markdown
    table = experiments.intensity_table(tidy)
    assert f"| Stacked-NoAtt / tcn | {table.iloc[0, 0]:.3f} |" in markdown
    assert "| SVR (frame-wise) / - |" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "intensity_ccc.png", "intensity_timeline.png"]


def test_intensity_cli_reads_the_manifest_intensities(tmp_path, manifest_with_aus):
    # OpenFace CSVs with AU12 and AU17 only: --aus all reads exactly those
    manifest = manifest_with_aus(AUS2)
    out = tmp_path / "res"
    assert main(["intensity", "--manifest", str(manifest), "--aus", "all", "--no-figures",
                 "--architectures", "Stacked-NoAtt", "--encoders", "tcn", "--epochs", "1",
                 "--n-jobs", "1", "--out", str(out), "-q"]) == 0
    tidy = pd.read_csv(out / "intensity.csv")
    assert set(tidy.au) == set(AUS2) and len(tidy) == 2 * 2 * 3
    assert "GENERATED" not in (out / "intensity.md").read_text()
    assert tidy.ccc.between(-1, 1).all() and tidy.ccc.std() > 0
