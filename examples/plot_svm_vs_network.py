"""
SVM baseline vs Enc-InterAtt-Dec
================================

The paper compares its attention networks with the frame-wise SVM of Ringeval et al.
(2015). :class:`~sklearn_s2au.FrameClassifier` turns any scikit-learn classifier into a
drop-in replacement for the sequence classifiers: same input, same per-recording labels,
one prediction per real frame. Here both predict the four sub-classes of AU17 at once,
leave-one-speaker-out, next to the oracle of the generated corpus (a linear classifier
on the latent trajectories that drive audio and face: the ceiling for audio models).
Small corpus (four speakers), at most 30 epochs: demo-corpus numbers, not the paper's.
"""

# %%
# Features once, folds after
# --------------------------
# Feature extraction works on each recording alone and uses no labels, so extracting
# once and cross-validating the later steps leaks nothing between speakers (this is
# what :func:`sklearn_s2au.experiments.extract_features` does, with a disk cache).
from sklearn_s2au import OpenSmileLLD
from sklearn_s2au.datasets import make_speech_au_corpus

corpus = make_speech_au_corpus(n_speakers=4, recordings_per_speaker=6, random_state=0)
frames = OpenSmileLLD("eGeMAPSv02").fit_transform(corpus.X)
frames.head(3)

# %%
# Four targets at once: ``labels_frame`` gives one ``(n_frames, 4)`` array per
# recording. A scorer with ``per_target=True`` reports the UAR of every sub-class.
from sklearn_s2au import SequenceUARScorer

targets = corpus.labels_frame(aus=["AU17"])
y = targets.y
scorer = SequenceUARScorer(targets=targets.target_names, per_target=True)
print(targets.target_names, y[0].shape)

# %%
# The two pipelines
# -----------------
# The SVM sees single frames (no padding step); the network sees padded sequences and
# trains the four targets as one network with four outputs (``multi_target="shared"``,
# the default; ``"independent"`` gives the paper's one model per sub-class).
from sklearn.model_selection import LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from sklearn_s2au import (EncInterAttDecClassifier, FrameClassifier, SequencePadder,
                          SpeakerNormaliser)

pipelines = {
    "SVM (Ringeval 2015)": Pipeline([
        ("norm", SpeakerNormaliser()),
        ("clf", FrameClassifier(SVC(class_weight="balanced")))]),
    "Enc-InterAtt-Dec": Pipeline([
        ("norm", SpeakerNormaliser()), ("pad", SequencePadder(max_len=100)),
        ("clf", EncInterAttDecClassifier(max_epochs=30, random_state=0))]),
}
uar = {}
for name, pipe in pipelines.items():
    res = cross_validate(pipe, frames, y, groups=frames["speaker"], cv=LeaveOneGroupOut(),
                         scoring=scorer)
    uar[name] = {t: 100 * res[f"test_uar_{t}"].mean() for t in targets.target_names}

# %%
# The oracle of this corpus, for the same targets and the same speakers.
import pandas as pd

oracle = corpus.oracle(aus=["AU17"])
uar["corpus oracle"] = {f"AU17_{p}": 100 * oracle.loc["AU17", p] for p in oracle.columns}
table = pd.DataFrame(uar).T.round(1)
table.columns = [c.split("_", 1)[1] for c in table.columns]
table

# %%
# Mean UAR over the four held-out speakers
# ----------------------------------------
import matplotlib.pyplot as plt
import numpy as np

fig, ax = plt.subplots(figsize=(7, 3.5))
x = np.arange(table.shape[1])
width = 0.8 / len(table)
for i, (name, row) in enumerate(table.iterrows()):
    ax.bar(x + (i - (len(table) - 1) / 2) * width, row, width, label=name)
ax.axhline(50, color="0.3", linestyle="--", linewidth=1)
ax.set_xticks(x, table.columns)
ax.set(ylabel="UAR (%)", ylim=(0, 100),
       title="AU17, eGeMAPS, leave-one-speaker-out (demo corpus, 4 speakers)")
ax.legend(fontsize="small", loc="upper center", ncol=3)
fig.tight_layout()

# %%
# With three training speakers per fold (one of them held out for early stopping)
# both models see little data and four folds are noisy; ``python -m sklearn_s2au demo``
# and ``benchmarks/bench_learning.py`` run the full-size comparison on all ten
# speakers. The paper's numbers on GEMEP are in
# :data:`sklearn_s2au.experiments.PAPER_TABLE1`.
