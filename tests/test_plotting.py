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
    clf = StackedIntraAttClassifier(module__hidden_size=3, max_epochs=4, random_state=0)
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
