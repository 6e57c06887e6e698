"""The oracle experiment behind ``AUCorpus.oracle``: the ceiling for models of the audio.

Leave-one-speaker-out UAR of a linear frame classifier on the latent trajectories of
the generated corpus.
"""

import warnings

import numpy as np
import pandas as pd


def _oracle_features(latent, speakers, context, history=12, lookahead=6):
    """Per-frame oracle inputs from the latent trajectories of all recordings.

    The trajectories are z-scored per speaker; each frame gets the values at
    ``-context .. +context`` frames, and the maximum and mean over the ``history``
    previous frames and the maximum over the ``lookahead`` next frames (the face lags and
    outlasts the gestures: an offset follows a gesture that has already ended). Frames
    beyond a recording's ends repeat its first or last frame.
    """
    frames = [np.asarray(df, dtype=float) for df in latent]
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    values = np.concatenate(frames)
    owner = np.repeat(np.asarray(speakers, dtype=object), lengths)
    for speaker in pd.unique(owner):
        rows = owner == speaker
        block = values[rows]
        values[rows] = (block - block.mean(axis=0)) / np.maximum(block.std(axis=0), 1e-9)
    ends = np.cumsum(lengths)
    first = np.repeat(ends - lengths, lengths)
    last = np.repeat(ends - 1, lengths)
    index = np.arange(len(values))

    def shifted(k):
        return values[np.clip(index + k, first, last)]

    past = np.stack([shifted(-k) for k in range(1, history + 1)])
    ahead = np.stack([shifted(k) for k in range(1, lookahead + 1)])
    columns = [shifted(k) for k in range(-context, context + 1)]
    columns += [past.max(axis=0), past.mean(axis=0), ahead.max(axis=0)]
    return np.hstack(columns), lengths


def _oracle_fold(features, targets, train, test):
    """UAR of every target on one held-out speaker (NaN where it has only one class)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import balanced_accuracy_score

    model = Ridge(alpha=100.0).fit(features[train], targets[train])
    # A least-squares fit of 0/1 targets averages to the class prior; thresholding at
    # the training prior weighs both classes equally, like balanced class weights.
    scores = model.predict(features[test]).reshape(len(test), -1)
    predicted = scores > targets[train].mean(axis=0)
    return [balanced_accuracy_score(targets[test, k], predicted[:, k])
            if len(np.unique(targets[test, k])) == 2 else np.nan
            for k in range(targets.shape[1])]


def _oracle(corpus, aus, phases, context):
    speakers = corpus["X"]["speaker"].to_numpy(dtype=object)
    folds = pd.unique(speakers)
    if len(folds) < 2:
        raise ValueError("the oracle is leave-one-speaker-out and needs at least 2 "
                         "speakers.")
    features, lengths = _oracle_features(corpus["latent"], speakers, context)
    targets = np.concatenate(list(corpus.labels_frame(aus=aus, phases=phases).y))
    frame_speaker = np.repeat(speakers, lengths)
    results = [_oracle_fold(features, targets, np.flatnonzero(frame_speaker != s),
                            np.flatnonzero(frame_speaker == s)) for s in folds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a target absent from every fold
        uar = np.nanmean(np.array(results, dtype=float), axis=0)
    return pd.DataFrame(uar.reshape(len(aus), len(phases)), index=pd.Index(aus, name="au"),
                        columns=pd.Index(phases, name="phase"))
