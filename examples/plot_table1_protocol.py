"""
The Table I protocol at small scale
===================================

Series 1 of the paper: the eight architectures of Table I on the four sub-classes of
AU17 with ComParE features, leave-one-speaker-out, plus the frame-wise SVM baseline.
:func:`sklearn_s2au.experiments.table1` runs it on any corpus (``python -m sklearn_s2au
table1`` is the same protocol as a command). Here it runs on a small demo corpus with
5 epochs and 8 units per layer instead of the paper's 100 epochs and 20 units, so the
numbers show the protocol's output, not what the networks can learn, and they are
**not** comparable with the paper's, which come from the GEMEP corpus.
"""

# %%
# Run the protocol
# ----------------
# One tidy row per architecture, AU sub-class and held-out speaker. The four
# sub-classes of a fold train as four independent models in one pass; folds run in
# parallel (``n_jobs``). ``network_params`` are passed to every network.
from sklearn_s2au import experiments
from sklearn_s2au.datasets import make_speech_au_corpus

corpus = make_speech_au_corpus(n_speakers=4, recordings_per_speaker=6, random_state=0)
results = experiments.table1(corpus, max_epochs=5, n_jobs=2, verbose=0,
                             network_params={"module__hidden_size": 8, "lr": 1e-3})
results.head()

# %%
# The paper-style table: mean UAR % over the held-out speakers, with the oracle of the
# generated corpus (a linear classifier on the latent trajectories that drive audio and
# face: the ceiling for audio models on this corpus).
demo = experiments.paper_table(results)
demo.loc["corpus oracle"] = (100 * corpus.oracle(aus=["AU17"]).loc["AU17"]).round(1)
demo

# %%
# Beside it, Table I of the paper (:data:`sklearn_s2au.experiments.PAPER_TABLE1`):
# GEMEP corpus, 10 speakers, up to 100 epochs with early stopping.
experiments.PAPER_TABLE1

# %%
# Side by side
# ------------
import matplotlib.pyplot as plt
import numpy as np

paper = experiments.PAPER_TABLE1.reindex(demo.index)     # no SVM or oracle row there
fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharey=True, layout="constrained")
panels = [(demo, "demo corpus: 4 speakers, 5 epochs, 8 units\n(this example)"),
          (paper, "paper, GEMEP corpus\n(Stappen et al. 2019, Table I)")]
for ax, (table, title) in zip(axes, panels):
    values = table.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="viridis", vmin=30, vmax=90, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns)
    ax.set_yticks(range(table.shape[0]), table.index)
    for (i, j), value in np.ndenumerate(values):
        if np.isnan(value):
            ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="0.5")
        else:
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                    color="w" if value < 70 else "k")
    ax.set_title(title, fontsize=10)
fig.colorbar(image, ax=axes, label="UAR (%), AU17, ComParE", shrink=0.8)

# %%
# For the full protocol on the demo corpus run ``python -m sklearn_s2au table1`` (see
# :doc:`/protocols`); for your own corpus pass ``--manifest``.
