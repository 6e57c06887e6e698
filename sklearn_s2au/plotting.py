"""Figures: UAR per AU and sub-class, AU timelines, attention heatmaps, learning curves.

Needs matplotlib (installed with the ``test`` and ``docs`` extras).
"""

import numpy as np

from .labels import PHASES

__all__ = ["plot_uar", "plot_timeline", "plot_attention", "plot_learning_curves",
           "protocol_figures"]


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
    plt = _pyplot()
    y_true = np.asarray(y_true, dtype=float).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=float).reshape(len(y_pred), -1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred {y_pred.shape}.")
    n_targets = y_true.shape[1]
    names = target_names or [f"target {k}" for k in range(n_targets)]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.9 + 0.7 * n_targets))
    t = np.arange(len(y_true)) / frame_rate
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
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, len(t) / frame_rate)
    ax.legend(loc="upper right", fontsize="small", ncol=3)
    if title:
        ax.set_title(title)
    return ax


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


def protocol_figures(corpus, results, out_dir, *, name="results", au="AU17",
                     feature_set="eGeMAPSv02", architecture="Enc-InterAtt-Dec",
                     test_speaker=None, max_epochs=None, settings="default", memory=None,
                     random_state=0):
    """The figures of a protocol run, written as PNG files.

    1. ``{name}_uar.png``: mean UAR per AU and sub-class (:func:`plot_uar`).
    2. ``{name}_timeline.png``: true vs predicted onset/apex/offset/occurrence of ``au``
       for the held-out recording where the AU is active longest, from a network of
       ``architecture`` trained (as independent models) on all other speakers.
    3. ``{name}_attention.png``: that network's first attention layer on the same
       recording (:func:`plot_attention`), when it has one.

    Parameters
    ----------
    corpus : AUCorpus
    results : DataFrame
        Tidy results of :func:`sklearn_s2au.experiments.run_protocol`.
    out_dir : str or Path
    name : str
        File name prefix.
    au : str, default="AU17"
    feature_set : str, default="eGeMAPSv02"
    architecture : str, default="Enc-InterAtt-Dec"
        A key of :data:`~sklearn_s2au.classifiers.TABLE1_CONFIGS`.
    test_speaker : str or None
        Held-out speaker (default: the last one).
    max_epochs : int or None
        Epoch cap of the network trained for figures 2 and 3 (default: 100).
    settings : {"default", "paper"}, default="default"
        Training settings of that network (see
        :func:`~sklearn_s2au.classifiers.paper_settings`).
    memory : str, Path, joblib.Memory or None
        Feature cache, as in :func:`~sklearn_s2au.experiments.extract_features`.
    random_state : int, default=0

    Returns
    -------
    paths : list of Path
    """
    from pathlib import Path

    from sklearn.pipeline import Pipeline

    from .classifiers import TABLE1_CONFIGS
    from .experiments import _network, extract_features
    from .preprocessing import SequencePadder, SpeakerNormaliser

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    ax = plot_uar(results)
    ax.set_title(f"{name}: mean UAR over leave-one-speaker-out folds")
    paths.append(_save(ax, out_dir / f"{name}_uar.png"))

    speakers = corpus.X["speaker"].to_numpy(dtype=object)
    test_speaker = speakers[-1] if test_speaker is None else test_speaker
    test = speakers == test_speaker
    frames = extract_features(corpus.X, feature_set, memory=memory)
    bunch = corpus.labels_frame(aus=[au])
    if architecture not in TABLE1_CONFIGS:
        raise ValueError(f"architecture must be one of {list(TABLE1_CONFIGS)}, got "
                         f"{architecture!r}.")
    network = _network(architecture, max_epochs, random_state, None, settings)
    pipe = Pipeline([("norm", SpeakerNormaliser()), ("pad", SequencePadder(max_len=100)),
                     ("clf", network)])
    pipe.fit(frames[~test], [y for y, t in zip(bunch.y, test) if not t])
    positions = np.flatnonzero(test)
    # the held-out recording where the AU is active longest shows most of its phases
    longest = positions[np.argmax([bunch.y[i][:, -1].sum() for i in positions])]
    one = frames.iloc[[longest]]
    proba = pipe.predict_proba(one)[0]
    pred = pipe.predict(one)[0]
    ax = plot_timeline(bunch.y[longest], pred, proba=proba, target_names=bunch.target_names,
                       title=f"{one.index[0]} (held-out speaker {test_speaker})")
    paths.append(_save(ax, out_dir / f"{name}_timeline.png"))

    layers = list(pipe[-1].module_._attention_modules())
    if layers:
        batch = pipe[:-1].transform(one)
        weights = pipe[-1].predict_attention(batch, layer=layers[0])[0]
        ax = plot_attention(weights, title=f"{one.index[0]}: {bunch.target_names[0]}, "
                                           f"{architecture} ({layers[0]})")
        paths.append(_save(ax, out_dir / f"{name}_attention.png"))
    return paths
