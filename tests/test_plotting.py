"""Figures: what is drawn matches the data given."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sklearn_s2au.plotting import plot_attention, plot_timeline, plot_uar  # noqa: E402


def test_plot_uar_bars_are_mean_uar_over_folds_in_percent():
    results = pd.DataFrame(dict(au=["AU17"] * 4 + ["AU12"] * 2,
                                phase=["onset", "onset", "apex", "apex", "onset", "apex"],
                                fold=["a", "b", "a", "b", "a", "a"],
                                uar=[0.6, 0.8, 0.5, 0.7, 0.9, 0.55]))
    ax = plot_uar(results)
    # bars in plot order: onset of AU12, AU17, then apex of AU12, AU17 (paper order of
    # the sub-classes, AUs sorted), each at its group's position
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [90.0, 70.0, 55.0, 60.0]
    centres = [round(p.get_x() + p.get_width() / 2, 6) for p in ax.patches]
    assert centres == [-0.2, 0.8, 0.2, 1.2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["AU12", "AU17"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["onset", "apex"]
    assert ax.get_ylim() == (0, 100)


def test_plot_attention_draws_the_weights():
    weights = np.eye(3) * 0.5 + 0.5 / 3
    ax = plot_attention(weights, frame_rate=25)
    np.testing.assert_allclose(ax.images[0].get_array(), weights)
    assert ax.images[0].get_extent() == [0, 3 / 25, 3 / 25, 0]
    with pytest.raises(ValueError, match="2-D"):
        plot_attention(np.ones(3))


def test_plot_timeline_one_row_per_target_and_checks_shapes():
    y_true = np.array([[0, 1], [1, 1], [0, 0]])
    ax = plot_timeline(y_true, y_true, target_names=["AU17_onset", "AU17_apex"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["AU17_apex", "AU17_onset"]
    assert ax.get_xlim() == (0, 3 / 25)
    with pytest.raises(ValueError, match="shape"):
        plot_timeline(y_true, y_true[:, :1])


def test_plot_learning_curves_draws_the_history():
    from sklearn_s2au import StackedIntraAttClassifier
    from sklearn_s2au.plotting import plot_learning_curves
    from sklearn_s2au.preprocessing import SequenceBatch

    rng = np.random.RandomState(0)
    feats = [rng.randn(n, 3).astype("float32") for n in (20, 25, 18, 30, 22, 27)]
    y = [np.c_[f[:, 0] > 0, f[:, 1] > 0].astype(int) for f in feats]
    X = SequenceBatch.from_features(feats, ["a", "a", "b", "b", "c", "c"], max_len=16)
    # independent models: a curve per target (model=k)
    clf = StackedIntraAttClassifier(module__hidden_size=3, max_epochs=4, random_state=0,
                                    multi_target="independent")
    clf.fit(X, y)
    left, right = plot_learning_curves(clf)
    train, valid, penalty = left.get_lines()[:3]
    np.testing.assert_allclose(train.get_ydata(), clf.history[:, "train_bce"])
    np.testing.assert_allclose(valid.get_ydata(), clf.history[:, "valid_loss"])
    np.testing.assert_allclose(penalty.get_ydata(), clf.history[:, "train_penalty"])
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(),
                               100 * np.array(clf.history[:, "valid_uar"]))
    # one model: its own per-model values
    left, _ = plot_learning_curves(clf, model=1)
    np.testing.assert_allclose(left.get_lines()[0].get_ydata(),
                               [row[1] for row in clf.history[:, "train_bce_per_model"]])
    # the kept epochs are marked
    marks = {line.get_xdata()[0] for line in left.get_lines()[3:]}
    assert marks == {clf.selected_epochs_[1]}
    with pytest.raises(ValueError, match="call fit first"):
        plot_learning_curves(StackedIntraAttClassifier())
    # one shared network (the default) has one model: model=1 names the parameter
    shared = StackedIntraAttClassifier(module__hidden_size=3, max_epochs=2,
                                       random_state=0).fit(X, y)
    left, _ = plot_learning_curves(shared, model=0)
    np.testing.assert_allclose(left.get_lines()[0].get_ydata(), shared.history[:, "train_bce"])
    with pytest.raises(ValueError, match=r"model=1 .* 1 model.*multi_target='shared'"):
        plot_learning_curves(shared, model=1)


def test_plot_intensity_timeline_draws_the_curves_of_every_model():
    from sklearn_s2au.plotting import plot_intensity_timeline

    t = np.arange(50)
    y_true = np.c_[2.5 + 2.5 * np.sin(t / 5), np.zeros(50)]
    preds = {"SVR": np.full((50, 2), 0.5), "BiLSTM": y_true * 0.8}
    ax = plot_intensity_timeline(y_true, preds, target_names=["AU12", "AU17"],
                                 frame_rate=25)
    # one band per AU, top to bottom; each curve scaled to 0.9 of its band for 0-5
    assert [t.get_text() for t in ax.get_yticklabels()] == ["AU17", "AU12"]
    svr, bilstm = [line for line in ax.get_lines() if line.get_label() in preds][:2]
    np.testing.assert_allclose(svr.get_ydata(), 1 + 0.18 * 0.5)
    np.testing.assert_allclose(bilstm.get_ydata(), 1 + 0.18 * 0.8 * y_true[:, 0])
    np.testing.assert_allclose(svr.get_xdata(), t / 25)
    lower = ax.get_lines()[2]                          # AU17's band starts at 0
    np.testing.assert_allclose(lower.get_ydata(), 0.18 * 0.5)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true", "SVR", "BiLSTM"]
    assert ax.get_xlim() == (0, 50 / 25) and ax.get_ylim() == (0, 2)
    # one model without a name; a 1-D recording of one AU
    ax = plot_intensity_timeline(y_true[:, 0], y_true[:, 0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true", "predicted"]
    with pytest.raises(ValueError, match="'SVR'"):
        plot_intensity_timeline(y_true, {"SVR": y_true[:, :1]})


def _intensity_results():
    rows = []
    for (arch, enc), cccs in {("Stacked-NoAtt", "tcn"): [0.4, 0.2, 0.6, 0.0],
                              ("SVR (frame-wise)", "-"): [0.1, 0.1, -0.2, 0.0]}.items():
        for (au, fold), ccc in zip([("AU17", "a"), ("AU17", "b"), ("AU01", "a"),
                                    ("AU01", "b")], cccs):
            rows.append(dict(architecture=arch, encoder=enc, feature_set="eGeMAPSv02",
                             au=au, fold=fold, ccc=ccc, r=ccc, epochs=1, seconds=1.0))
    return pd.DataFrame(rows)


def test_plot_ccc_bars_are_mean_ccc_over_folds_per_au_and_model():
    from sklearn_s2au.plotting import plot_ccc

    ax = plot_ccc(_intensity_results())
    # bars in plot order: the first model on AU17, AU01, then the SVR
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [0.3, 0.3, 0.1, -0.1]
    centres = [round(p.get_x() + p.get_width() / 2, 6) for p in ax.patches]
    assert centres == [-0.2, 0.8, 0.2, 1.2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["AU17", "AU01"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Stacked-NoAtt (tcn)", "SVR (frame-wise)"]
    assert ax.get_ylabel() == "CCC" and ax.get_ylim()[0] < -0.1
    assert plot_ccc(_intensity_results(), metric="r").get_ylabel() == "Pearson r"


def test_plotting_imports_no_estimator_or_protocol():
    # plotting draws what it is given; training belongs to experiments (issue 11)
    import ast
    import inspect

    from sklearn_s2au import plotting

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(plotting))):
        if isinstance(node, ast.ImportFrom):
            imported |= {node.module or ""} | {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    forbidden = {"experiments", "classifiers", "regressors", "baselines", "preprocessing",
                 "features", "pipeline"}
    assert not {name.split(".")[-1] for name in imported} & forbidden, imported


def test_protocol_figures_draw_what_they_are_given(tmp_path):
    from sklearn.utils import Bunch

    from sklearn_s2au import plotting

    results = pd.DataFrame(dict(architecture="net", feature_set="x", au="AU17",
                                phase=["onset", "apex"], fold="a", uar=[0.6, 0.7],
                                classes=2, epochs=1, seconds=1.0))
    assert [p.name for p in plotting.protocol_figures(results, tmp_path, name="t1")] == [
        "t1_uar.png"]
    y = np.array([[0, 1], [1, 1], [0, 0]])
    held_out = Bunch(recording="spk01_00", speaker="spk01", y_true=y, y_pred=y,
                     proba=y * 0.9, target_names=["AU17_onset", "AU17_apex"],
                     frame_rate=25, attention=np.eye(3), attention_layer="decoder",
                     model_name="Enc-InterAtt-Dec")
    paths = plotting.protocol_figures(results, tmp_path / "c", name="t1", held_out=held_out)
    assert [p.name for p in paths] == ["t1_uar.png", "t1_timeline.png", "t1_attention.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    intensity = Bunch(**dict(held_out, y_true=y * 2.0, y_pred=y * 1.5, proba=None,
                             attention=None, target_names=["AU12", "AU17"],
                             model_name="Stacked-NoAtt (tcn)"))
    paths = plotting.protocol_figures(_intensity_results(), tmp_path / "i", name="intensity",
                                      held_out=intensity)
    assert [p.name for p in paths] == ["intensity_ccc.png", "intensity_timeline.png"]
