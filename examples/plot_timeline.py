"""
Predicted vs true AU timelines
==============================

A UAR summarises a whole fold; a timeline shows what a model does along a recording.
Here two networks of Table I predict the four sub-classes of AU17 (onset, apex, offset,
occurrence) for a speaker they have never heard, each as four independent models
trained in one pass, and :func:`~sklearn_s2au.plotting.plot_timeline` draws the true
and predicted frames with the predicted probability. Small corpus (three training
speakers), at most 30 epochs, the package's default settings: demo-corpus behaviour,
not the paper's.
"""

# %%
# Train on three speakers, predict the fourth
# -------------------------------------------
import pandas as pd
from sklearn.pipeline import Pipeline

from sklearn_s2au import (EncInterAttDecClassifier, OpenSmileLLD, SequencePadder,
                          SpeakerNormaliser, StackedIntraAttClassifier, sequence_uar)
from sklearn_s2au.datasets import make_speech_au_corpus

corpus = make_speech_au_corpus(n_speakers=4, recordings_per_speaker=6, random_state=0)
frames = OpenSmileLLD("eGeMAPSv02").fit_transform(corpus.X)
targets = corpus.labels_frame(aus=["AU17"])        # (n_frames, 4) per recording
phases = [name.split("_")[1] for name in targets.target_names]
test = (frames["speaker"] == "spk01").to_numpy()
y_train = [labels for labels, held_out in zip(targets.y, test) if not held_out]
y_test = [labels for labels, held_out in zip(targets.y, test) if held_out]

networks = {
    "Stacked-NoAtt": StackedIntraAttClassifier(max_epochs=30, random_state=0),
    "Enc-InterAtt-Dec": EncInterAttDecClassifier(max_epochs=30, random_state=0),
}
pipes = {name: Pipeline([("norm", SpeakerNormaliser()),
                         ("pad", SequencePadder(max_len=100)),
                         ("clf", clf)]).fit(frames[~test], y_train)
         for name, clf in networks.items()}

# %%
# ``predict`` and ``predict_proba`` return one array per recording, one row per real
# frame and one column per target, in input order, so they line up with the labels.
y_pred = {name: pipe.predict(frames[test]) for name, pipe in pipes.items()}
proba = {name: pipe.predict_proba(frames[test]) for name, pipe in pipes.items()}
print([p.shape for p in y_pred["Stacked-NoAtt"][:3]], "...")
pd.DataFrame({name: 100 * sequence_uar(y_test, pred, targets=phases, return_per_target=True)
              for name, pred in y_pred.items()}).T.round(1)

# %%
# One held-out recording
# ----------------------
# The recording of the held-out speaker with the most AU17 activity. Top: the AU17
# intensity curve the labels come from. Below: true (blue) and predicted (orange)
# frames of each sub-class, with the predicted probability (red).
import matplotlib.pyplot as plt
import numpy as np

from sklearn_s2au.plotting import plot_timeline

i = int(np.argmax([labels[:, phases.index("occurrence")].sum() for labels in y_test]))
position = int(np.flatnonzero(test)[i])
t = np.arange(len(y_test[i])) / corpus.frame_rate
fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True,
                         gridspec_kw={"height_ratios": [1, 2.4, 2.4]})
axes[0].plot(t, corpus.intensity["AU17"][position], color="k")
axes[0].set(ylabel="AU17\nintensity", title=f"{frames.index[position]} (held-out speaker)")
for ax, name in zip(axes[1:], pipes):
    plot_timeline(y_test[i], y_pred[name][i], proba=proba[name][i], ax=ax,
                  target_names=phases, title=name)
axes[1].set_xlabel("")
fig.tight_layout()

# %%
# Both networks give every frame its own probability and pick up the large AU17 event
# near the end of the recording; with three training speakers (one of them held out
# for early stopping) neither finds the weaker activity at its start, and the
# probabilities stay close to the threshold. The encoder-decoder's attention follows
# the decoder step (see :ref:`sphx_glr_auto_examples_plot_attention.py`); with the
# paper's decoder (``set_params(**PAPER_DECODER)``) it settles on almost one
# probability per recording instead. Full-size comparisons:
# ``python -m sklearn_s2au demo`` and ``benchmarks/bench_learning.py``.
