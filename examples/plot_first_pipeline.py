"""
A first pipeline: leave-one-speaker-out UAR
===========================================

From speech to one facial Action Unit sub-class, frame by frame: openSMILE low-level
descriptors, speaker normalisation, padding into sequences and the paper's best network
(Enc-InterAtt-Dec), evaluated leave-one-speaker-out with the unweighted average recall
(UAR, chance 50 %). This is the notebook code of the design document on a small demo
corpus and with few epochs; the numbers are those of the generated corpus, not the
paper's (GEMEP).
"""

# %%
# A small demo corpus
# -------------------
# :func:`~sklearn_s2au.datasets.make_speech_au_corpus` generates speech and AU intensity
# curves driven by the same latent trajectories. ``X`` is the recordings table: one row
# per recording, with the signal, its sampling rate and the speaker.
from sklearn_s2au.datasets import make_speech_au_corpus

corpus = make_speech_au_corpus(n_speakers=4, recordings_per_speaker=6, random_state=0)
X = corpus.X
X[["sampling_rate", "speaker", "sex", "emotion"]].head()

# %%
# The labels: one 0/1 sequence per recording on the 25 Hz frame grid, here the onset
# of AU17 (chin raiser). A recording of ``d`` seconds has ``frame_count(d, 25)`` frames,
# the same number the feature extractor will give it.
from sklearn_s2au import frame_count

y = corpus.labels("AU17", "onset")
first = X.iloc[0]
print(len(y), "recordings;", len(y[0]), "frames in the first,",
      frame_count(len(first["signal"]) / first["sampling_rate"], 25), "by frame_count")

# %%
# The pipeline, cross-validated by speaker
# ----------------------------------------
# Every step is a scikit-learn estimator, and the speakers travel with ``X``, so the
# literal ``cross_validate(..., groups=X["speaker"], cv=LeaveOneGroupOut())`` call
# works. ``max_epochs=10`` instead of the paper's 100 keeps this example short;
# ``n_jobs=2`` would run two folds at a time.
from sklearn.model_selection import LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline

from sklearn_s2au import (EncInterAttDecClassifier, OpenSmileLLD, SequencePadder,
                          SpeakerNormaliser, uar_scorer)

pipe = Pipeline([("lld", OpenSmileLLD("eGeMAPSv02")),
                 ("norm", SpeakerNormaliser()),
                 ("pad", SequencePadder(max_len=100)),
                 ("clf", EncInterAttDecClassifier(max_epochs=10, random_state=0))])
res = cross_validate(pipe, X, y, groups=X["speaker"], cv=LeaveOneGroupOut(),
                     scoring=uar_scorer)
speakers = sorted(X["speaker"].unique())   # LeaveOneGroupOut's fold order
for speaker, score in zip(speakers, res["test_score"]):
    print(f"held-out {speaker}: UAR {100 * score:.1f} %")
print(f"mean UAR {100 * res['test_score'].mean():.1f} %")

# %%
# What the model saw and how it did
# ---------------------------------
# Top: the AU17 intensity of one recording and its onset frames, the target. Bottom:
# the UAR of every held-out speaker.
import matplotlib.pyplot as plt
import numpy as np

fig, (ax_curve, ax_uar) = plt.subplots(2, 1, figsize=(7, 5.5))
t = np.arange(len(y[0])) / corpus.frame_rate
ax_curve.plot(t, corpus.intensity["AU17"][0], color="k", label="AU17 intensity")
ax_curve.fill_between(t, 0, 5 * y[0], step="post", alpha=0.3, label="onset frames")
ax_curve.set(xlabel="time (s)", ylabel="intensity (0-5)", title=X.index[0])
ax_curve.legend(loc="upper right", fontsize="small")

ax_uar.bar(speakers, 100 * res["test_score"], color="C1")
ax_uar.axhline(50, color="0.3", linestyle="--", linewidth=1, label="chance")
ax_uar.set(ylabel="UAR (%)", ylim=(0, 100), xlabel="held-out speaker",
           title="AU17 onset, Enc-InterAtt-Dec, 10 epochs (demo corpus)")
ax_uar.legend(loc="upper right", fontsize="small")
fig.tight_layout()
