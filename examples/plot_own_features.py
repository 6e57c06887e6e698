"""
Bringing your own features
==========================

Every step after :class:`~sklearn_s2au.OpenSmileLLD` takes a *frame table*: a DataFrame
with the index of the recordings table, a ``speaker`` column and a ``features`` column
holding one ``float32`` array ``(n_frames, n_features)`` per recording, on the frame
grid (frame ``k`` covers ``[k / rate, (k + 1) / rate)``, ``n_frames =
frame_count(duration, rate)``). So features from any source (an F0 tracker, OpenFace,
a neural embedding) plug into the same pipelines. Here: a pitch and energy track
computed with numpy alone, against openSMILE's eGeMAPS, on a small demo corpus.
"""

# %%
# A pitch and energy track in numpy
# ---------------------------------
# Each 25 Hz frame is one 40 ms slice of the signal. Per frame: the level in dB, its
# change, the zero-crossing rate, and from the normalised autocorrelation the voicing
# strength and the F0 (in semitones re 100 Hz, interpolated through unvoiced frames).
# Everything is vectorised over the frames of a recording.
import numpy as np

from sklearn_s2au import frame_count


def pitch_energy(signal, sampling_rate, frame_rate=25, fmin=70.0, fmax=400.0):
    """Frame features (n_frames, 6) of one recording on the frame grid."""
    signal = np.asarray(signal, dtype=np.float64)
    n_frames = frame_count(len(signal) / sampling_rate, frame_rate)
    length = int(round(sampling_rate / frame_rate))            # samples per frame
    starts = np.floor(np.arange(n_frames) * sampling_rate / frame_rate).astype(int)
    padded = np.concatenate([signal, np.zeros(length)])        # a partial last frame
    x = padded[starts[:, None] + np.arange(length)]            # (n_frames, length)
    level = 10 * np.log10(np.mean(x ** 2, axis=1) + 1e-10)
    zcr = np.mean(np.abs(np.diff(np.sign(x), axis=1)) > 0, axis=1)
    spectrum = np.fft.rfft((x - x.mean(axis=1, keepdims=True)) * np.hanning(length),
                           n=2 * length, axis=1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :length]
    acf /= np.maximum(acf[:, :1], 1e-12)
    low, high = int(sampling_rate / fmax), int(sampling_rate / fmin)
    lag = low + np.argmax(acf[:, low:high], axis=1)
    voicing = acf[np.arange(n_frames), lag]
    f0 = 12 * np.log2(sampling_rate / lag / 100.0)
    voiced = voicing > 0.5
    if voiced.any():
        f0 = np.interp(np.arange(n_frames), np.flatnonzero(voiced), f0[voiced])
    else:
        f0 = np.zeros(n_frames)
    features = np.column_stack([level, np.gradient(level), zcr, voicing, f0,
                                np.gradient(f0)])
    return features.astype(np.float32)


# %%
# The frame table
# ---------------
# Same index as the recordings table, the speaker, and the features: nothing else is
# needed. The number of frames matches the labels because both use ``frame_count``.
import pandas as pd

from sklearn_s2au.datasets import make_speech_au_corpus

corpus = make_speech_au_corpus(n_speakers=4, recordings_per_speaker=6, random_state=0)
X = corpus.X
own = pd.DataFrame({"speaker": X["speaker"],
                    "features": [pitch_energy(signal, rate) for signal, rate
                                 in zip(X["signal"], X["sampling_rate"])]},
                   index=X.index)
assert all(len(f) == n for f, n in zip(own["features"], corpus.n_frames))
own.head(3)

# %%
# How close is the numpy track to the generator's own F0 contour and speech level
# (:attr:`AUCorpus.latent <sklearn_s2au.datasets.AUCorpus>`), on one recording?
import matplotlib.pyplot as plt

name = "spk01_06"
position = X.index.get_loc(name)
latent = corpus.latent[position]
features = own["features"].iloc[position]
t = np.arange(len(features)) / corpus.frame_rate
voiced = features[:, 3] > 0.5

fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), sharex=True)
axes[0].plot(t, latent["f0"], color="0.6", label="generator f0 contour")
axes[0].plot(t[voiced], 100 * 2 ** (features[voiced, 4] / 12), ".", color="C0",
             label="numpy F0 (voiced frames)")
axes[0].set(ylabel="F0 (Hz)", title=f"{name}: own features vs the generator's latents")
axes[1].plot(t, latent["level_db"] - latent["level_db"].max(), color="0.6",
             label="generator speech level")
axes[1].plot(t, features[:, 0] - features[:, 0].max(), color="C0", label="numpy level")
axes[1].set(ylabel="dB re max")
axes[2].plot(t, corpus.intensity["AU17"][position], color="k", label="AU17 intensity")
axes[2].set(ylabel="intensity", xlabel="time (s)")
for ax in axes:
    ax.legend(loc="upper right", fontsize="small")
fig.tight_layout()

# %%
# The same pipeline on both feature sets
# --------------------------------------
# From here on nothing knows where the features came from: speaker normalisation,
# padding, the network and leave-one-speaker-out UAR for AU17 occurrence.
from sklearn.model_selection import LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline

from sklearn_s2au import (OpenSmileLLD, SequencePadder, SpeakerNormaliser,
                          StackedIntraAttClassifier, uar_scorer)

y = corpus.labels("AU17", "occurrence")
feature_sets = {"numpy pitch + energy (6)": own,
                "openSMILE eGeMAPS (25)": OpenSmileLLD("eGeMAPSv02").fit_transform(X)}
pipe = Pipeline([("norm", SpeakerNormaliser()), ("pad", SequencePadder(max_len=100)),
                 ("clf", StackedIntraAttClassifier(max_epochs=10, random_state=0))])
scores = {}
for label, frames in feature_sets.items():
    res = cross_validate(pipe, frames, y, groups=frames["speaker"], cv=LeaveOneGroupOut(),
                         scoring=uar_scorer)
    scores[label] = 100 * res["test_score"]
    print(f"{label}: UAR {scores[label].mean():.1f} % "
          f"(folds {', '.join(f'{s:.0f}' for s in scores[label])})")

# %%
fig, ax = plt.subplots(figsize=(7.5, 3))
ax.barh(list(scores), [s.mean() for s in scores.values()],
        xerr=[s.std() for s in scores.values()], color=["C0", "C1"])
ax.axvline(50, color="0.3", linestyle="--", linewidth=1)
ax.set(xlim=(0, 100), xlabel="LOSO UAR (%), mean ± sd over 4 speakers",
       title="AU17 occurrence, Stacked-NoAtt, 10 epochs (demo corpus)")
ax.title.set_fontsize(10)
fig.tight_layout()
