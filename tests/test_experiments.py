"""The paper's protocols on a small generated corpus: tidy results, tables, no leakage."""

import sys

import numpy as np
import pandas as pd
import pytest

from sklearn_s2au import experiments
from sklearn_s2au.__main__ import main
from sklearn_s2au.datasets import make_speech_au_corpus

TINY_NET = dict(module__hidden_size=4, module__intra_att_units=4, batch_size=8)


@pytest.fixture(scope="module")
def corpus():
    return make_speech_au_corpus(n_speakers=3, recordings_per_speaker=3, random_state=0)


def test_table1_command_writes_tidy_and_markdown_tables(tmp_path, corpus, capsys):
    out = tmp_path / "res"
    archs = ["Stacked-NoAtt", "Enc-InterAtt-Dec"]
    assert main(["table1", "--corpus", "demo", "--epochs", "2", "--speakers", "3",
                 "--recordings-per-speaker", "3", "--out", str(out), "--n-jobs", "1",
                 "--no-figures", "--no-svm", "-q", "--architectures", *archs]) == 0
    tidy = pd.read_csv(out / "table1.csv")
    assert list(tidy.columns) == ["architecture", "feature_set", "au", "phase", "fold",
                                  "uar", "classes", "epochs", "seconds"]
    assert tidy.classes.isin([1, 2]).all()
    # 2 architectures x 4 sub-classes x 3 folds, AU17 and ComParE only
    assert len(tidy) == 2 * 4 * 3
    assert set(tidy.au) == {"AU17"} and set(tidy.feature_set) == {"ComParE_2016"}
    assert tidy.groupby(["architecture", "phase"]).size().eq(3).all()
    assert tidy.uar.between(0, 1).all()
    assert tidy.epochs.isin([1, 2]).all()     # the selected epoch of at most 2
    markdown = (out / "table1.md").read_text()
    ours, paper = markdown.split("The paper's numbers (GEMEP corpus)")
    for name in archs:
        assert sum(line.startswith(f"| {name} |") for line in ours.splitlines()) == 1
    assert "GENERATED demo corpus" in ours
    assert "| Enc-InterAtt-Dec | 80.5 | 77.6 | 89.2 | 73.3 |" in paper
    table = experiments.paper_table(tidy)
    assert table.shape == (2, 4)
    two_class = tidy[(tidy.architecture == "Enc-InterAtt-Dec") & (tidy.classes == 2)]
    expected = 100 * two_class.groupby("phase").uar.mean()
    np.testing.assert_allclose(table.loc["Enc-InterAtt-Dec", list(expected.index)],
                               expected.round(1), atol=0.051)
    assert "Enc-InterAtt-Dec" in capsys.readouterr().out


def test_uar_is_computed_on_the_held_out_speaker_real_frames(corpus):
    res = experiments.run_protocol(corpus, architectures=[], feature_sets=["eGeMAPSv02"],
                                   aus=["AU17"], phases=["occurrence"], svm=True,
                                   verbose=0, n_jobs=1)
    # recompute one fold by hand with the same steps
    from sklearn.svm import LinearSVC
    from sklearn_s2au import FrameClassifier, SpeakerNormaliser, sequence_uar
    frames = experiments.extract_features(corpus.X, "eGeMAPSv02")
    y = corpus.labels("AU17", "occurrence")
    speaker = corpus.X.speaker.to_numpy()
    test = speaker == "spk02"
    norm = SpeakerNormaliser()
    clf = FrameClassifier(LinearSVC(class_weight="balanced"), random_state=0)
    clf.fit(norm.fit_transform(frames[~test]), y[~test])
    expected = sequence_uar(y[test], clf.predict(norm.transform(frames[test])))
    got = res.loc[res.fold == "spk02", "uar"].item()
    assert got == pytest.approx(expected)


def test_no_test_speaker_frame_reaches_fit_normalisation_or_early_stopping(corpus,
                                                                           monkeypatch):
    from sklearn_s2au import classifiers, preprocessing

    seen = {"norm": [], "fit": [], "valid": []}
    norm_fit = preprocessing.SpeakerNormaliser.fit
    net_fit = classifiers._SequenceClassifier.fit
    split = classifiers._SequenceClassifier._split_recordings

    def spy_norm(self, X, y=None):
        seen["norm"].append(set(X["speaker"]))
        return norm_fit(self, X, y)

    def spy_fit(self, X, y, **kw):
        seen["fit"].append(set(X.speaker))
        return net_fit(self, X, y, **kw)

    def spy_split(self, X):
        train, valid = split(self, X)
        speakers = X.recording_speakers()
        seen["valid"].append(set(speakers[valid]) if valid is not None else set())
        return train, valid

    monkeypatch.setattr(preprocessing.SpeakerNormaliser, "fit", spy_norm)
    monkeypatch.setattr(classifiers._SequenceClassifier, "fit", spy_fit)
    monkeypatch.setattr(classifiers._SequenceClassifier, "_split_recordings", spy_split)
    res = experiments.run_protocol(corpus, architectures=["Enc-InterAtt-Dec"],
                                   feature_sets=["eGeMAPSv02"], aus=["AU17"], svm=False,
                                   max_epochs=1, network_params=TINY_NET, n_jobs=1,
                                   verbose=0)
    folds = list(pd.unique(corpus.X.speaker))
    assert list(pd.unique(res.fold)) == folds
    everyone = set(folds)
    # folds run in order with n_jobs=1: the i-th fit excludes the i-th speaker
    assert len(seen["norm"]) == len(seen["fit"]) == len(seen["valid"]) == len(folds)
    for test_speaker, norm, fit, valid in zip(folds, seen["norm"], seen["fit"],
                                              seen["valid"]):
        assert norm == fit == everyone - {test_speaker}
        assert valid and valid <= fit


def test_paper_table_averages_folds_then_aus_and_skips_single_class_folds():
    rows = []
    for au, uars in {"AU01": [0.6, 0.8, 0.1], "AU17": [0.7, 0.9, 0.8]}.items():
        for fold, uar in zip("abc", uars):
            classes = 1 if (au == "AU01" and fold == "c") else 2
            rows.append(dict(architecture="net", feature_set="x", au=au, phase="onset",
                             fold=fold, uar=uar, classes=classes, epochs=20, seconds=1.0))
    table = experiments.paper_table(pd.DataFrame(rows))
    # AU01: mean(0.6, 0.8) = 0.7 (fold c has one class); AU17: 0.8; mean over AUs 0.75
    assert table.loc["net", "onset"] == pytest.approx(75.0)
    assert list(table.columns) == ["onset"]
    markdown = experiments.to_markdown(table)
    assert markdown.splitlines()[2] == "| net | 75.0 |"


def test_targets_per_fit_splits_fits_without_changing_results(corpus):
    kwargs = dict(architectures=[], feature_sets=["eGeMAPSv02"], aus=["AU12", "AU17"],
                  svm=True, verbose=0, n_jobs=1)
    one_by_one = experiments.run_protocol(corpus, targets_per_fit=1, **kwargs)
    all_at_once = experiments.run_protocol(corpus, targets_per_fit=8, **kwargs)
    assert len(one_by_one) == 2 * 4 * 3
    pd.testing.assert_frame_equal(one_by_one.drop(columns="seconds"),
                                  all_at_once.drop(columns="seconds"))
    with pytest.raises(ValueError, match="targets_per_fit"):
        experiments.run_protocol(corpus, targets_per_fit=0, **kwargs)


@pytest.mark.parametrize("settings", ["default", "paper"])
def test_settings_reach_every_network_of_the_protocol(tmp_path, monkeypatch, settings):
    from sklearn_s2au.classifiers import PAPER_SETTINGS

    seen = {}
    original = experiments._fit_fold

    def spy(frames, y, target_names, train, test, estimator, max_len, meta):
        seen[meta["architecture"]] = estimator.get_params()
        return original(frames, y, target_names, train, test, estimator, max_len, meta)

    monkeypatch.setattr(experiments, "_fit_fold", spy)
    assert main(["table1", "--corpus", "demo", "--epochs", "1", "--speakers", "3",
                 "--recordings-per-speaker", "2", "--out", str(tmp_path), "--n-jobs", "1",
                 "--no-figures", "--no-svm", "-q", "--feature-set", "eGeMAPSv02",
                 "--settings", settings,
                 "--architectures", "Stacked-NoAtt", "Enc-InterAtt-Dec"]) == 0
    stacked, eid = seen["Stacked-NoAtt"], seen["Enc-InterAtt-Dec"]
    for params in (stacked, eid):
        assert params["max_epochs"] == 1                    # --epochs applies on top
        if settings == "paper":
            assert {k: params[k] for k in PAPER_SETTINGS if k != "max_epochs"} == {
                k: v for k, v in PAPER_SETTINGS.items() if k != "max_epochs"}
        else:
            assert (params["lr"], params["batch_size"], params["l2_kernel"]) == (1e-3, 16, 0.1)
    if settings == "paper":
        assert eid["module__aligned_input"] is False
        assert eid["module__attention_window"] is None
    else:
        assert "module__attention_window" not in eid       # the module's default: 8
    assert "module__aligned_input" not in stacked           # StackedNet has no decoder


def test_cli_n_seeds_makes_every_network_a_seed_ensemble(tmp_path, monkeypatch):
    from sklearn_s2au.ensemble import SeedEnsembleClassifier, SeedEnsembleRegressor

    seen = []
    for name in ("_fit_fold", "_fit_intensity_fold"):
        original = getattr(experiments, name)

        def spy(frames, y, target_names, train, test, estimator, max_len, meta,
                original=original):
            seen.append((meta["architecture"], estimator))
            return original(frames, y, target_names, train, test, estimator, max_len, meta)

        monkeypatch.setattr(experiments, name, spy)
    small = ["--corpus", "demo", "--epochs", "1", "--speakers", "3",
             "--recordings-per-speaker", "2", "--n-jobs", "1", "--no-figures", "-q",
             "--n-seeds", "2", "--random-state", "4"]
    assert main(["table1", *small, "--out", str(tmp_path / "t1"), "--feature-set",
                 "eGeMAPSv02", "--architectures", "Stacked-NoAtt"]) == 0
    assert main(["intensity", *small, "--out", str(tmp_path / "int"), "--aus", "AU12",
                 "--encoders", "tcn", "--no-svm"]) == 0
    kinds = {(arch, type(est).__name__) for arch, est in seen}
    assert kinds == {("Stacked-NoAtt", "SeedEnsembleClassifier"),
                     (experiments.SVM_NAME, "FrameClassifier"),
                     ("Stacked-NoAtt", "SeedEnsembleRegressor")}
    for _, est in seen:
        if isinstance(est, (SeedEnsembleClassifier, SeedEnsembleRegressor)):
            assert est.n_seeds == 2 and est.random_state == 4   # members 4, 5
            assert est.estimator.get_params()["max_epochs"] == 1


def test_n_seeds_trains_seed_ensembles_of_the_networks_only(corpus, monkeypatch):
    from sklearn_s2au.ensemble import SeedEnsembleClassifier

    fitted = []
    original = SeedEnsembleClassifier.fit

    def recording_fit(self, X, y, **fit_params):
        fitted.append(self)
        return original(self, X, y, **fit_params)

    monkeypatch.setattr(SeedEnsembleClassifier, "fit", recording_fit)
    kwargs = dict(architectures=["Stacked-NoAtt"], feature_sets=["eGeMAPSv02"],
                  aus=["AU17"], max_epochs=2, network_params=TINY_NET, verbose=0, n_jobs=1)
    single = experiments.run_protocol(corpus, **kwargs)
    ensemble = experiments.run_protocol(corpus, n_seeds=2, **kwargs)
    assert len(fitted) == 3                                 # one ensemble per fold
    assert [ens.random_states_ for ens in fitted] == [[0, 1]] * 3
    nets = (ensemble["architecture"] == "Stacked-NoAtt").to_numpy()
    svm = ~nets
    # the SVM rows do not change; the networks' rows come from the ensembles
    pd.testing.assert_frame_equal(single[svm].drop(columns="seconds"),
                                  ensemble[svm].drop(columns="seconds"))
    assert ensemble.loc[nets, "uar"].between(0, 1).all()
    members = [[int(e) for e in m.selected_epochs_] for ens in fitted
               for m in ens.estimators_]
    assert ensemble.loc[nets, "epochs"].between(min(map(min, members)),
                                                max(map(max, members))).all()
    with pytest.raises(ValueError, match="n_seeds must be an int >= 1"):
        experiments.run_protocol(corpus, n_seeds=0, **kwargs)


def test_unknown_settings_are_named(corpus):
    with pytest.raises(ValueError, match="settings must be one of"):
        experiments.run_protocol(corpus, architectures=["Stacked-NoAtt"], settings="fast")


# ---- the command line: errors before any work, in one line --------------------------

@pytest.mark.parametrize("command, args, message", [
    ("table1", ["--speakers", "0"], "--speakers must be >= 2, got 0"),
    ("table1", ["--speakers", "1"], "--speakers must be >= 2, got 1"),
    ("table1", ["--recordings-per-speaker", "0"],
     "--recordings-per-speaker must be >= 1, got 0"),
    ("table1", ["--epochs", "0"], "--epochs must be >= 1, got 0"),
    ("table1", ["--n-jobs", "0"], "--n-jobs must not be 0"),
    ("table1", ["--au", "AU99"], "argument --au: invalid choice: 'AU99'"),
    ("table1", ["--feature-set", "MFCC"], "argument --feature-set: invalid choice: 'MFCC'"),
    ("table1", ["--architectures", "Stacked"],
     "argument --architectures: invalid choice: 'Stacked'"),
    ("table1", ["--settings", "fast"], "argument --settings: invalid choice: 'fast'"),
    ("intensity", ["--aus", "AU99"], "the demo corpus has no AU99"),
    ("intensity", ["--aus", "all", "AU12"], "--aus all stands alone"),
    ("intensity", ["--aus", "smile"], "argument --aus: 'smile' is not an Action Unit"),
    ("intensity", ["--aus", "AU12", "12"], "an AU is given twice"),
    ("intensity", ["--encoders", "gru"], "argument --encoders: invalid choice: 'gru'"),
    ("intensity", ["--loss", "mae"], "argument --loss: invalid choice: 'mae'"),
    ("intensity", ["--architectures", "Stacked"],
     "argument --architectures: invalid choice: 'Stacked'"),
    ("intensity", ["--feature-sets", "MFCC"],
     "argument --feature-sets: invalid choice: 'MFCC'"),
    ("intensity", ["--epochs", "0"], "--epochs must be >= 1, got 0"),
    ("table2", ["--n-seeds", "0"], "--n-seeds must be >= 1, got 0"),
    ("intensity", ["--n-seeds", "-1"], "--n-seeds must be >= 1, got -1"),
])
def test_cli_rejects_bad_values_before_any_work(command, args, message, capsys,
                                                monkeypatch):
    import sklearn_s2au.datasets as datasets

    def fail(*a, **k):
        raise AssertionError("the corpus was generated before the arguments were checked")

    monkeypatch.setattr(datasets, "make_speech_au_corpus", fail)
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--no-figures", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err


def test_cli_data_errors_are_one_line(tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"file": ["a.wav"], "au_file": ["a.csv"]}).to_csv(manifest, index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["table1", "--manifest", str(manifest), "--no-figures", "-q"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m sklearn_s2au table1: error: ")
    assert "lacks the column(s) ['speaker']" in err and len(err.splitlines()) == 1


def test_cli_manifest_reads_only_the_aus_of_the_command(tmp_path, manifest_with_aus,
                                                        monkeypatch):
    from sklearn_s2au import plotting

    # OpenFace CSVs with AU12 and AU17 only: table1 --au AU17 must not ask for AU01
    manifest = manifest_with_aus(["AU12", "AU17"])
    out = tmp_path / "res"
    drawn = []
    draw = plotting.protocol_figures
    monkeypatch.setattr(plotting, "protocol_figures",
                        lambda *a, **k: drawn.append(k["held_out"]) or draw(*a, **k))
    assert main(["table1", "--manifest", str(manifest), "--au", "AU17", "--epochs", "1",
                 "--feature-set", "eGeMAPSv02", "--architectures", "Stacked-NoAtt",
                 "--n-jobs", "1", "--out", str(out), "-q"]) == 0
    tidy = pd.read_csv(out / "table1.csv")
    assert set(tidy.au) == {"AU17"} and len(tidy) == 2 * 4 * 3     # SVM + network
    # the figures show what ran: AU17, eGeMAPS (25 LLDs), Stacked-NoAtt (no attention
    # layer, so no attention figure)
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "table1_timeline.png", "table1_uar.png"]
    (held_out,) = drawn
    assert held_out.model_name == "Stacked-NoAtt" and held_out.attention is None
    assert list(held_out.target_names) == [f"AU17_{phase}" for phase in
                                           ("onset", "apex", "offset", "occurrence")]
    assert held_out.model[-1].module_.n_features == 25
    assert main(["table2", "--manifest", str(manifest), "--aus", "AU12", "--epochs", "1",
                 "--feature-sets", "eGeMAPSv02", "--no-svm", "--no-figures",
                 "--n-jobs", "1", "--out", str(out), "-q"]) == 0
    assert set(pd.read_csv(out / "table2.csv").au) == {"AU12"}


def test_cli_manifest_without_the_au_asked_for_names_the_option(tmp_path,
                                                                manifest_with_aus, capsys):
    manifest = manifest_with_aus(["AU12", "AU17"])
    with pytest.raises(SystemExit) as exit_info:
        main(["table1", "--manifest", str(manifest), "--au", "AU04", "--no-figures", "-q",
              "--out", str(tmp_path / "res")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("python -m sklearn_s2au table1: "
                                                         "error: ")
    assert "no intensity column for ['AU04']" in err and "--au or --aus" in err


def test_cli_every_option_has_help_text():
    import argparse

    from sklearn_s2au.__main__ import _parser

    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == {"demo", "table1", "table2", "intensity"}
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), (name, action.option_strings)
        text = command.format_help()
        for action in command._actions:
            for option in action.option_strings:
                assert option in text


def test_progress_bar_only_on_a_terminal(monkeypatch):
    """With the output redirected to a log the protocol draws no progress bar."""
    import io

    from sklearn_s2au._protocol import _progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, drawn in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        with _progress(3, verbose=1) as bar:
            bar.update(3)
        assert ("3/3" in stream.getvalue()) is drawn
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    with _progress(3, verbose=0) as bar:
        bar.update(3)
    assert quiet.getvalue() == ""


# ---- a protocol that survives being killed -----------------------------------------

def test_killed_protocol_resumes_to_the_same_table(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    def command(out, quiet=True):
        return [sys.executable, "-m", "sklearn_s2au", "table1", "--corpus", "demo",
                "--speakers", "3", "--recordings-per-speaker", "2", "--epochs", "3",
                "--feature-set", "eGeMAPSv02", "--architectures", "Stacked-NoAtt",
                "Enc-InterAtt-Dec", "--n-jobs", "1", "--no-figures", "--out",
                str(out)] + (["-q"] if quiet else [])

    env = dict(os.environ, OMP_NUM_THREADS="1")
    reference = tmp_path / "reference"
    subprocess.run(command(reference), check=True, env=env, capture_output=True)
    n_fits = len(list((reference / "fits").glob("fit_*.csv")))
    assert n_fits == 3 * 3                   # 2 networks and the SVM x 3 folds

    # SIGKILL (no clean-up at all) and SIGTERM (Python's default: the process ends
    # where it is); either way the resumed run gives the uninterrupted table
    for sig in (signal.SIGKILL, signal.SIGTERM):
        killed = tmp_path / f"killed_{sig.name}"
        proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while (time.time() < deadline
               and len(list((killed / "fits").glob("fit_*.csv"))) < 2):
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait() == -sig
        done = len(list((killed / "fits").glob("fit_*.csv")))
        assert 2 <= done < n_fits, (sig, done)            # killed part-way
        assert not (killed / "table1.csv").exists()
        assert not list((killed / "fits").glob(".*.tmp"))   # no half-written file left
        resumed = subprocess.run(command(killed, quiet=False), check=True, env=env,
                                 capture_output=True, text=True)
        assert f"{done} of {n_fits} fits already done" in resumed.stderr + resumed.stdout
        a = pd.read_csv(reference / "table1.csv").drop(columns="seconds")
        b = pd.read_csv(killed / "table1.csv").drop(columns="seconds")
        pd.testing.assert_frame_equal(a, b)


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    from sklearn_s2au._protocol import atomic_write

    path = tmp_path / "table.csv"
    path.write_text("old\n")

    def half_then_fail(tmp):
        tmp.write_text("half a ")
        raise KeyboardInterrupt          # killed mid-write, as far as Python can tell

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == [
        "table.csv"]
    atomic_write(path, lambda tmp: tmp.write_text("new\n"))
    assert path.read_text() == "new\n" and len(list(tmp_path.iterdir())) == 1


def test_write_results_writes_csv_and_parquet_that_read_back(tmp_path):
    results = pd.DataFrame({"au": ["AU12", "AU17"], "uar": [0.5, 0.75], "fold": [0, 1]})
    paths = experiments.write_results(results, tmp_path, "table1")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "table1.csv"), results)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert [p.name for p in paths] == ["table1.csv"]
        return
    assert [p.name for p in paths] == ["table1.csv", "table1.parquet"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "table1.parquet"), results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table1.csv", "table1.parquet"]


def test_held_out_speaker_data_cannot_reach_its_own_fold(corpus, monkeypatch):
    """Data-based leakage check: perturb the held-out speaker's features and labels;
    the models of its fold (network weights, SVM coefficients) must not change, while
    the folds that train on that speaker do change (the perturbation is real)."""
    from sklearn_s2au import baselines, classifiers

    held_out = "spk02"
    fitted = {}
    net_fit = classifiers._SequenceClassifier.fit
    svm_fit = baselines.FrameClassifier.fit
    split = classifiers._SequenceClassifier._split_recordings

    def spy_net(self, X, y, **kw):
        out = net_fit(self, X, y, **kw)
        fitted[("net", frozenset(X.speaker))] = [
            t.clone() for t in self.module_.state_dict().values()]
        return out

    def spy_svm(self, X, y):
        out = svm_fit(self, X, y)
        fitted[("svm", frozenset(X["speaker"]))] = [e.coef_.copy() for e in self.estimators_]
        return out

    def spy_split(self, X):
        train, valid = split(self, X)
        assert valid is not None and not set(train) & set(valid)
        speakers = X.recording_speakers()
        assert not set(speakers[train]) & set(speakers[valid])   # by speaker, too
        return train, valid

    monkeypatch.setattr(classifiers._SequenceClassifier, "fit", spy_net)
    monkeypatch.setattr(baselines.FrameClassifier, "fit", spy_svm)
    monkeypatch.setattr(classifiers._SequenceClassifier, "_split_recordings", spy_split)
    # the paper's independent models (4 early stoppings): where the perturbed speaker is
    # the validation speaker of a fit, its data reach the weights only through the
    # selected epoch; one shared network trained for 2 epochs can then keep the same
    # weights, so "the perturbation is real" would not hold for every fold
    kwargs = dict(architectures=["Enc-InterAtt-Dec"], feature_sets=["eGeMAPSv02"],
                  aus=["AU17"], svm=True, max_epochs=2,
                  network_params={**TINY_NET, "multi_target": "independent"},
                  n_jobs=1, verbose=0)
    experiments.run_protocol(corpus, **kwargs)
    clean = dict(fitted)
    fitted.clear()

    mine = (corpus.X["speaker"] == held_out).to_numpy()
    extract, stack = experiments.extract_features, experiments._stack_targets

    def perturbed_features(*args, **kw):
        frames = extract(*args, **kw).copy()
        rng = np.random.RandomState(0)
        frames["features"] = [rng.randn(*f.shape).astype(f.dtype) * 10 if m else f
                              for f, m in zip(frames["features"], mine)]
        return frames

    def perturbed_labels(*args, **kw):
        y, names = stack(*args, **kw)
        return [1 - lab if m else lab for lab, m in zip(y, mine)], names

    monkeypatch.setattr(experiments, "extract_features", perturbed_features)
    monkeypatch.setattr(experiments, "_stack_targets", perturbed_labels)
    experiments.run_protocol(corpus, **kwargs)
    everyone = frozenset(corpus.X["speaker"])
    assert set(clean) == set(fitted) and len(clean) == 2 * len(everyone)
    for key, before in clean.items():
        same = all(np.array_equal(np.asarray(a), np.asarray(b))
                   for a, b in zip(before, fitted[key]))
        assert same == (held_out not in key[1]), key


def test_protocol_workers_are_not_restarted_as_leaking(tmp_path):
    """Extraction and fits in loky workers (a fresh process, n_jobs=2): the fits get
    workers of their own, so loky does not take the memory a fit loads (torch, the
    compiled loops) for a leak of an extraction worker and restart it with a warning."""
    import subprocess

    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "from sklearn_s2au import experiments\n"
        "from sklearn_s2au.datasets import make_speech_au_corpus\n"
        "corpus = make_speech_au_corpus(n_speakers=3, recordings_per_speaker=4, "
        "random_state=0)\n"
        "res = experiments.run_protocol(corpus, architectures=['Enc-InterAtt-Dec'], "
        "feature_sets=['eGeMAPSv02'], aus=['AU17'], svm=True, max_epochs=3, n_jobs=2, "
        "verbose=0)\n"
        "print(len(res))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert out.stdout.split() == ["24"]          # 2 models x 3 folds x 4 sub-classes
    assert "A worker stopped" not in out.stderr, out.stderr[-2000:]
