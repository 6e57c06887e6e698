"""Figures: UAR and CCC per AU, AU timelines, attention heatmaps, learning curves.

Needs matplotlib (installed with the ``test`` and ``docs`` extras). The functions draw
what they are given (results, predictions, fitted models); they train nothing: the
models of a protocol's figures come from :mod:`sklearn_s2au.experiments`.
"""

import numbers
from pathlib import Path

import numpy as np

from .labels import PHASES

__all__ = ["plot_uar", "plot_ccc", "plot_timeline", "plot_intensity_timeline",
           "plot_attention", "plot_learning_curves", "protocol_figures"]


def _pyplot():
    # the backend is the user's choice (matplotlib falls back to Agg without a display)
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the figures need matplotlib: pip install matplotlib") from exc
    return plt


def plot_uar(results, *, ax=None, chance=True):
    """Bar chart of mean UAR (%) over folds per AU and sub-class.

    Parameters
    ----------
    results : DataFrame
        Tidy results of :func:`sklearn_s2au.experiments.run_protocol`. One group of bars
        per AU, one bar per sub-class; architectures and feature sets are averaged unless
        only one is present (filter the frame first to compare them).
    ax : matplotlib Axes, optional
    chance : bool, default=True
        Draw the 50 % chance line.

    Returns
    -------
    ax : matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    table = 100 * results.groupby(["au", "phase"])["uar"].mean().unstack("phase")
    phases = [p for p in PHASES if p in table.columns]
    width = 0.8 / len(phases)
    x = np.arange(len(table.index))
    for i, phase in enumerate(phases):
        ax.bar(x + (i - (len(phases) - 1) / 2) * width, table[phase], width, label=phase)
    if chance:
        ax.axhline(50, color="0.3", linestyle="--", linewidth=1)
    ax.set_xticks(x, table.index)
    ax.set_ylabel("UAR (%)")
    ax.set_ylim(0, 100)
    ax.legend(ncol=len(phases), fontsize="small", loc="upper right")
    return ax


def _model_labels(results):
    """``architecture (encoder)`` per row, or the architecture when it has no encoder."""
    names = results["architecture"].astype(str)
    if "encoder" not in results.columns:
        return names
    encoders = results["encoder"].astype(str)
    return names.where(encoders.isin(["-", "nan"]), names + " (" + encoders + ")")


def plot_ccc(results, *, metric="ccc", ax=None):
    """Bar chart of mean CCC (or Pearson r) over folds per AU, one bar per model.

    Parameters
    ----------
    results : DataFrame
        Tidy results of :func:`sklearn_s2au.experiments.intensity`. One group of bars
        per AU (in the results' order), one bar per model (architecture and encoder, in
        the results' order); feature sets are averaged unless only one is present.
    metric : {"ccc", "r"}, default="ccc"
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    models = _model_labels(results)
    table = (results.assign(model=models).groupby(["au", "model"], sort=False)[metric]
             .mean().unstack("model"))
    table = table.loc[list(dict.fromkeys(results["au"])), list(dict.fromkeys(models))]
    width = 0.8 / table.shape[1]
    x = np.arange(len(table.index))
    for i, model in enumerate(table.columns):
        ax.bar(x + (i - (table.shape[1] - 1) / 2) * width, table[model], width, label=model)
    ax.axhline(0, color="0.3", linewidth=1)
    ax.set_xticks(x, table.index)
    ax.set_ylabel("CCC" if metric == "ccc" else "Pearson r")
    ax.set_ylim(min(0.0, float(np.nanmin(table.to_numpy())) - 0.05), 1)
    ax.legend(ncol=min(4, table.shape[1]), fontsize="small", loc="upper right")
    return ax


def plot_timeline(y_true, y_pred, *, proba=None, target_names=None, frame_rate=25,
                  ax=None, title=None):
    """True vs predicted AU sub-class activity of one recording over time.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_frames,) or (n_frames, n_targets)
        Labels and predictions of one recording.
    proba : array-like of the same shape, optional
        Predicted probabilities, drawn as a line over the predicted activity.
    target_names : list of str, optional
    frame_rate : float, default=25
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    y_true, preds, names, ax, t = _timeline_setup(y_true, y_pred, target_names, frame_rate,
                                                  ax, row_height=0.7)
    y_pred, n_targets = preds["predicted"], y_true.shape[1]
    for k in range(n_targets):
        base = n_targets - 1 - k
        ax.fill_between(t, base, base + 0.4 * y_true[:, k], step="post", color="C0",
                        alpha=0.6, label="true" if k == 0 else None)
        ax.fill_between(t, base + 0.45, base + 0.45 + 0.4 * y_pred[:, k], step="post",
                        color="C1", alpha=0.6, label="predicted" if k == 0 else None)
        if proba is not None:
            p = np.asarray(proba, dtype=float).reshape(len(t), -1)[:, k]
            ax.plot(t, base + 0.45 + 0.4 * p, color="C3", linewidth=0.8,
                    label="probability" if k == 0 else None)
    ax.set_yticks(np.arange(n_targets) + 0.4, names[::-1])
    return _timeline_finish(ax, len(t) / frame_rate, title, n_legend=3)


def _timeline_setup(y_true, y_pred, target_names, frame_rate, ax, row_height):
    """2-D ``(n_frames, n_targets)`` truths and predictions (a dict by model name, one
    ``"predicted"`` model unless ``y_pred`` is a dict), the target names, the Axes (one
    row per target) and the frame times."""
    named = isinstance(y_pred, dict)
    y_true = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    y_pred = {name: np.asarray(p, dtype=float).reshape(len(p), -1)
              for name, p in (y_pred.items() if named else [("predicted", y_pred)])}
    for name, p in y_pred.items():
        if p.shape != y_true.shape:
            which = f"y_pred[{name!r}]" if named else "y_pred"
            raise ValueError(f"y_true has shape {y_true.shape} but {which} {p.shape}.")
    n_targets = y_true.shape[1]
    names = target_names or [f"target {k}" for k in range(n_targets)]
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(9, 0.9 + row_height * n_targets))
    return y_true, y_pred, names, ax, np.arange(len(y_true)) / frame_rate


def _timeline_finish(ax, duration, title, n_legend):
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, duration)
    ax.legend(loc="upper right", fontsize="small", ncol=n_legend)
    if title:
        ax.set_title(title)
    return ax


def plot_intensity_timeline(y_true, y_pred, *, target_names=None, frame_rate=25,
                            vmax=5.0, ax=None, title=None):
    """True vs predicted AU intensity curves of one recording over time.

    One band per AU, top to bottom: the true intensity (filled) and the prediction of
    each model (lines), on a common 0-``vmax`` scale.

    Parameters
    ----------
    y_true : array-like of shape (n_frames,) or (n_frames, n_aus)
        True intensities of one recording (e.g. ``corpus.intensity(aus=[...])[i]``).
    y_pred : array-like of the same shape, or dict of str to such arrays
        Predictions of one model, or of several by name (e.g. ``{"SVR": ...,
        "BiLSTM": ...}``).
    target_names : list of str, optional
        The AUs.
    frame_rate : float, default=25
    vmax : float, default=5.0
        Top of each band (OpenFace's intensities go from 0 to 5).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    y_true, preds, names, ax, t = _timeline_setup(y_true, y_pred, target_names, frame_rate,
                                                  ax, row_height=0.8)
    n_targets = y_true.shape[1]
    scale = 0.9 / vmax
    for k in range(n_targets):
        base = n_targets - 1 - k
        ax.fill_between(t, base, base + scale * y_true[:, k], color="C0", alpha=0.35,
                        linewidth=0, label="true" if k == 0 else None)
        for j, (name, p) in enumerate(preds.items()):
            ax.plot(t, base + scale * p[:, k], color=f"C{j + 1}", linewidth=1,
                    label=name if k == 0 else None)
    ax.set_yticks(np.arange(n_targets) + 0.45, names[::-1])
    ax.set_ylim(0, n_targets)
    ax.set_ylabel(f"intensity (0-{vmax:g} per AU)")
    return _timeline_finish(ax, len(t) / frame_rate, title, n_legend=1 + len(preds))


def plot_attention(weights, *, frame_rate=25, ax=None, title=None):
    """Heatmap of attention weights (decoder step or query frame × encoder frame).

    Parameters
    ----------
    weights : array-like of shape (n_queries, n_keys)
        Attention weights of one recording (rows sum to 1 over real frames).
    frame_rate : float, default=25
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    plt = _pyplot()
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2:
        raise ValueError(f"weights must be 2-D (n_queries, n_keys), got shape "
                         f"{weights.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    extent = (0, weights.shape[1] / frame_rate, weights.shape[0] / frame_rate, 0)
    image = ax.imshow(weights, aspect="auto", cmap="viridis", extent=extent,
                      interpolation="nearest")
    ax.set_xlabel("encoder frame (s)")
    ax.set_ylabel("decoder step (s)")
    ax.figure.colorbar(image, ax=ax, label="attention weight")
    if title:
        ax.set_title(title)
    return ax


def plot_learning_curves(net, *, model=None, axes=None):
    """Per-epoch training and validation curves of a fitted network.

    Left: the class-weighted frame BCE on the training chunks (``train_bce``) and on
    the validation speakers (``valid_loss``), comparable with each other, and the
    penalty terms (``train_penalty``: L2/L1 weights and attention regulariser) that
    ``train_loss`` adds. Right: the validation UAR that the paper's early stopping
    monitors. A dotted line marks the epoch whose weights were kept.

    Parameters
    ----------
    net : fitted StackedIntraAttClassifier or EncInterAttDecClassifier, or a Pipeline
        ending in one.
    model : int or None
        One model (target) of a ``multi_target="independent"`` network; None shows the
        sums over models (losses) and the mean (UAR).
    axes : two matplotlib Axes, optional

    Returns
    -------
    axes : ndarray of two Axes
    """
    plt = _pyplot()
    if hasattr(net, "steps"):
        net = net.steps[-1][1]
    history = getattr(net, "history_", None) or getattr(net, "history", None)
    if not history or "train_bce" not in history[0]:
        raise ValueError("plot_learning_curves needs a network fitted by this package "
                         "(its history records train_bce, valid_loss and valid_uar); call "
                         "fit first.")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes = np.asarray(axes)
    epochs = np.arange(1, len(history) + 1)
    if model is not None:
        n_models = len(history[0].get("train_bce_per_model", [None]))
        if not (isinstance(model, numbers.Integral) and 0 <= model < n_models):
            raise ValueError(
                f"model={model!r} is not a model of this network: it has {n_models} "
                f"model(s) (multi_target={getattr(net, 'multi_target', None)!r}); "
                f"give model=0..{n_models - 1}, or None for all targets.")

    def column(key):
        if model is None:
            return np.array([row.get(key, np.nan) for row in history], dtype=float)
        return np.array([row[key + "_per_model"][model] if key + "_per_model" in row
                         else np.nan for row in history], dtype=float)

    ax = axes[0]
    ax.plot(epochs, column("train_bce"), label="train BCE")
    if "valid_loss" in history[0]:
        ax.plot(epochs, column("valid_loss"), label="validation BCE")
    ax.plot(epochs, column("train_penalty"), linestyle="--", label="train penalties")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend(fontsize="small")
    ax = axes[1]
    if "valid_uar" in history[0]:
        uar = column("valid_uar")
        ax.plot(epochs, 100 * uar, color="C3", label="validation UAR")
    ax.axhline(50, color="0.3", linestyle="--", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("UAR (%)")
    selected = getattr(net, "selected_epochs_", None)
    if selected is not None:
        chosen = np.atleast_1d(selected)
        chosen = chosen if model is None else chosen[[model]]
        for a in axes:
            for e in np.unique(chosen):
                a.axvline(e, color="0.5", linestyle=":", linewidth=1)
    return axes


def _save(ax, path):
    """Write the figure of ``ax`` as a PNG, close it and return the path."""
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=120)
    _pyplot().close(ax.figure)
    return path


def protocol_figures(results, out_dir, *, name="results", held_out=None):
    """The figures of a protocol run, written as PNG files.

    1. ``{name}_uar.png``: mean UAR per AU and sub-class (:func:`plot_uar`), for the
       results of :func:`~sklearn_s2au.experiments.run_protocol`; or ``{name}_ccc.png``:
       mean CCC per AU and model (:func:`plot_ccc`), for those of
       :func:`~sklearn_s2au.experiments.intensity`.
    2. ``{name}_timeline.png``: true vs predicted sub-classes (:func:`plot_timeline`)
       or intensities (:func:`plot_intensity_timeline`) of ``held_out``.
    3. ``{name}_attention.png``: the first attention layer of ``held_out``'s network on
       that recording (:func:`plot_attention`), when it has one.

    Parameters
    ----------
    results : DataFrame
        Tidy results of a protocol.
    out_dir : str or Path
    name : str
        File name prefix.
    held_out : Bunch or None
        A model's predictions on a held-out recording:
        :func:`~sklearn_s2au.experiments.held_out_timeline` or
        :func:`~sklearn_s2au.experiments.held_out_intensity`. None: figure 1 only.

    Returns
    -------
    paths : list of Path

    Examples
    --------
    The figures of ``python -m sklearn_s2au table1``, from Python::

        from sklearn_s2au import experiments, plotting

        results = experiments.table1(corpus, au="AU17")
        held_out = experiments.held_out_timeline(corpus, au="AU17")
        plotting.protocol_figures(results, "figures/", name="table1", held_out=held_out)
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    regression = "ccc" in results.columns
    if regression:
        ax = plot_ccc(results)
        ax.set_title(f"{name}: mean CCC over leave-one-speaker-out folds")
        paths.append(_save(ax, out_dir / f"{name}_ccc.png"))
    else:
        ax = plot_uar(results)
        ax.set_title(f"{name}: mean UAR over leave-one-speaker-out folds")
        paths.append(_save(ax, out_dir / f"{name}_uar.png"))
    if held_out is None:
        return paths

    title = f"{held_out.recording} (held-out speaker {held_out.speaker})"
    if regression:
        ax = plot_intensity_timeline(held_out.y_true, {held_out.model_name: held_out.y_pred},
                                     target_names=held_out.target_names,
                                     frame_rate=held_out.frame_rate, title=title)
    else:
        ax = plot_timeline(held_out.y_true, held_out.y_pred, proba=held_out.proba,
                           target_names=held_out.target_names,
                           frame_rate=held_out.frame_rate, title=title)
    paths.append(_save(ax, out_dir / f"{name}_timeline.png"))

    if held_out.attention is not None:
        ax = plot_attention(held_out.attention, frame_rate=held_out.frame_rate,
                            title=f"{held_out.recording}: {held_out.target_names[0]}, "
                                  f"{held_out.model_name} ({held_out.attention_layer})")
        paths.append(_save(ax, out_dir / f"{name}_attention.png"))
    return paths
