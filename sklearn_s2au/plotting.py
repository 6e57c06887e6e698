"""Figures: UAR per AU and sub-class, AU timelines, attention heatmaps.

Needs matplotlib (installed with the ``test`` and ``docs`` extras).
"""

import numpy as np

from .labels import PHASES

__all__ = ["plot_uar", "plot_timeline", "plot_attention"]


def _pyplot():
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline."
                                                    "backend_inline"):
            matplotlib.use("Agg", force=False)
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
