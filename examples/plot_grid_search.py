"""
Grid search over hidden size and attention window
=================================================

The network settings are ``module__*`` parameters of the classifiers, so
:class:`~sklearn.model_selection.GridSearchCV` reaches them through the pipeline as
``clf__module__hidden_size`` and ``clf__module__intra_att``. Here: Stacked-IntraAtt
(two BiLSTMs with intra-attention between them) with a centred window of 5 or 15
frames, the two windows of Table I, and 4 or 16 units per BiLSTM, scored
leave-one-speaker-out with UAR. A small corpus and 5 epochs keep it short, so the
differences are mostly noise: the point is the mechanics.
"""

# %%
# Features and labels
# -------------------
from sklearn_s2au import OpenSmileLLD
from sklearn_s2au.datasets import make_speech_au_corpus

corpus = make_speech_au_corpus(n_speakers=4, recordings_per_speaker=6, random_state=0)
frames = OpenSmileLLD("eGeMAPSv02").fit_transform(corpus.X)
y = corpus.labels("AU17", "occurrence")

# %%
# The search
# ----------
# Attention windows are ``("bi", width)`` (centred) or ``("pa", width)`` (past only).
# ``groups`` is passed to ``fit`` so that every split holds out one whole speaker.
# ``max_epochs=10`` keeps the search short (the default is 100, with early stopping).
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut
from sklearn.pipeline import Pipeline

from sklearn_s2au import (SequencePadder, SpeakerNormaliser, StackedIntraAttClassifier,
                          uar_scorer)

pipe = Pipeline([("norm", SpeakerNormaliser()), ("pad", SequencePadder(max_len=100)),
                 ("clf", StackedIntraAttClassifier(max_epochs=10, random_state=0))])
grid = {"clf__module__hidden_size": [4, 20],
        "clf__module__intra_att": [("bi", 5), ("bi", 15)]}
search = GridSearchCV(pipe, grid, cv=LeaveOneGroupOut(), scoring=uar_scorer)
search.fit(frames, y, groups=frames["speaker"])
print("best:", search.best_params_, f"UAR {100 * search.best_score_:.1f} %")

# %%
# Every candidate's mean and spread over the held-out speakers:
import pandas as pd

results = pd.DataFrame(search.cv_results_)
results["window"] = results["param_clf__module__intra_att"].map(lambda w: f"{w[0]}={w[1]}")
results["hidden"] = results["param_clf__module__hidden_size"]
results["UAR %"] = (100 * results["mean_test_score"]).round(1)
results["std"] = (100 * results["std_test_score"]).round(1)
results[["hidden", "window", "UAR %", "std", "rank_test_score"]]

# %%
# The grid as a heatmap
# ---------------------
import matplotlib.pyplot as plt

table = results.pivot(index="hidden", columns="window", values="UAR %")
table = table[results["window"].unique()]          # the order of the grid
fig, ax = plt.subplots(figsize=(4.8, 3.6))
image = ax.imshow(table.to_numpy(), cmap="viridis", vmin=40, vmax=80)
ax.set_xticks(range(table.shape[1]), [f"IntraAtt {w}" for w in table.columns])
ax.set_yticks(range(table.shape[0]), table.index)
ax.set(xlabel="attention window", ylabel="module__hidden_size",
       title="AU17 occurrence, LOSO UAR % (demo corpus)")
for (i, j), value in pd.DataFrame(table.to_numpy()).stack().items():
    ax.text(j, i, f"{value:.1f}", ha="center", va="center", color="w")
fig.colorbar(image, ax=ax, label="mean UAR (%)")
fig.tight_layout()

# %%
# ``search.best_estimator_`` is the whole pipeline refitted on all four speakers with
# the best setting, ready for ``predict`` on new recordings' frame tables.
