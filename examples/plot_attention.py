"""
Where the networks attend
=========================

Two kinds of attention are in the paper. The **inter-attention** of Enc-InterAtt-Dec
lets every decoder step weigh all encoder frames of the sequence (Bahdanau attention,
softmax over the real frames; by default with a location prior around the decoder
step). The **intra-attention** of Stacked-IntraAtt is local:
each frame attends to a window of frames around it (``("bi", 15)``: 7 before, itself and
7 after) with sigmoid scores normalised by a softmax, as in the keras-self-attention
layer the paper used; padded frames are masked as keys (a deliberate difference from
that layer). ``predict_attention`` returns the weights of every chunk of a
:class:`~sklearn_s2au.SequenceBatch`, and :func:`~sklearn_s2au.plotting.plot_attention`
draws them.
"""

# %%
# Train both networks on three speakers
# -------------------------------------
# At most 30 epochs with the package's defaults, on three training speakers.
import numpy as np
from sklearn.pipeline import Pipeline

from sklearn_s2au import (EncInterAttDecClassifier, OpenSmileLLD, SequencePadder,
                          SpeakerNormaliser, StackedIntraAttClassifier)
from sklearn_s2au.classifiers import PAPER_DECODER
from sklearn_s2au.datasets import make_speech_au_corpus

corpus = make_speech_au_corpus(n_speakers=4, recordings_per_speaker=6, random_state=0)
frames = OpenSmileLLD("eGeMAPSv02").fit_transform(corpus.X)
y = corpus.labels("AU17", "onset")
test = (frames["speaker"] == "spk04").to_numpy()
y_train = [labels for labels, held_out in zip(y, test) if not held_out]

networks = {
    "Enc-InterAtt-Dec": EncInterAttDecClassifier(max_epochs=30, random_state=0),
    "Enc-InterAtt-Dec, paper's decoder": EncInterAttDecClassifier(
        max_epochs=30, random_state=0, **PAPER_DECODER),
    "Stacked-IntraAtt bi=15": StackedIntraAttClassifier(
        module__intra_att=("bi", 15), max_epochs=30, random_state=0),
}
pipes = {name: Pipeline([("norm", SpeakerNormaliser()),
                         ("pad", SequencePadder(max_len=100)),
                         ("clf", clf)]).fit(frames[~test], y_train)
         for name, clf in networks.items()}

# %%
# Attention weights of a held-out recording
# -----------------------------------------
# The steps before the classifier turn the frame table into a padded batch; each chunk
# of at most ``max_len`` frames gets a ``(length, length)`` matrix whose rows sum to 1.
# ``batch.recording`` and ``batch.offset`` place the chunks in their recordings.
position = int(np.flatnonzero(test)[np.argmax(corpus.n_frames[test])])
one = frames.iloc[[position]]
maps = {}
for name, pipe in pipes.items():
    batch = pipe[:-1].transform(one)
    weights = pipe[-1].predict_attention(batch)       # first attention layer
    maps[name] = weights[0]
    # how far from its own step does each query step look, on average?
    steps = np.arange(len(weights[0]))
    distance = np.abs(weights[0] @ steps - steps).mean()
    print(f"{name}: {len(weights)} chunk(s), first {weights[0].shape}, "
          f"rows sum to {weights[0].sum(axis=1).min():.3f}..{weights[0].sum(axis=1).max():.3f}, "
          f"attention centre {distance:.1f} frames from the query step on average")

# %%
# Inter-attention may look anywhere in the chunk. With the package's default decoder
# (aligned input and a Gaussian location prior of 8 frames on the attention scores,
# see :doc:`/architectures`) it follows the decoder step: a band along the diagonal
# whose weights still vary with the content. The paper's decoder computes its query
# from its previous state alone and never learns where it is in the sequence; its
# weights are nearly the same at every step. Intra-attention stays within its
# 15-frame band (0.6 s at 25 Hz), and its sigmoid-then-softmax scores keep the weights
# close to uniform inside the window. Near the ends of the chunk the window holds
# fewer real frames, so each of them weighs more: frames outside the recording are
# masked, never attended to.
import matplotlib.pyplot as plt

from sklearn_s2au.plotting import plot_attention

fig, axes = plt.subplots(1, 3, figsize=(14, 4.4))
for ax, (name, weights) in zip(axes, maps.items()):
    plot_attention(weights, ax=ax, title=f"{name}\n{one.index[0]} (held-out speaker)")
axes[2].set_ylabel("query frame (s)")
axes[2].set_xlabel("key frame (s)")
fig.tight_layout()
