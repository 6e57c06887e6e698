"""AU intensity regression: LOSO CCC per AU of the SVR baseline and the networks.

Leave-one-speaker-out on the generated demo corpus (``make_speech_au_corpus(
random_state=0)``: 10 speakers), one fold per held-out speaker, with the package's
protocol steps: features extracted once per recording (``experiments.extract_features``,
cached), then inside each fold speaker normalisation, (for the networks) padding to
``max_len`` frames, training on the other nine speakers (the networks' early stopping
uses one of them as validation speaker) and prediction on the held-out one. Targets are
the AU intensity curves (0-5, ``corpus.intensity(aus=...)``); all AUs of a fold are
trained at once (one SVR per AU; K independent models in one vectorised network).

Models (``--models``):

* ``svr``: ``FrameRegressor(SVR())`` (RBF kernel, C=1, epsilon=0.1), or ``linearsvr``
  (``LinearSVR``), frame by frame, optionally on a random subsample of
  ``--max-frames`` training frames (kernel SVR costs grow quadratically with the
  frames);
* ``lstm``, ``transformer``, ``tcn``: ``StackedIntraAttRegressor(module__encoder=...)``
  with the package defaults (``loss`` from ``--loss``);
* ``encdec-lstm``, ``encdec-transformer``, ``encdec-tcn``: ``EncInterAttDecRegressor``.

Prints the CCC of every AU (mean over the held-out speakers, as the paper averages UAR
over folds), the mean over AUs, the CCC of the pooled predictions of all folds, and the
fit time per fold (training and prediction of all AUs, one process, one torch thread).

These are numbers of a GENERATED corpus, not of a real one.

Usage::

    python benchmarks/bench_intensity.py [--aus AU12 AU17 | all] [--models svr lstm tcn]
        [--loss mse ccc] [--feature-set eGeMAPSv02] [--max-epochs N] [--l2-kernel X]
        [--max-frames N] [--n-jobs 1] [--out results.csv]

``python -m sklearn_s2au intensity`` runs the same protocol (folds, steps, models) as a
command, with checkpoints and figures; this script adds the pooled CCC and the options
for measuring (``--max-frames``, ``--folds``, ``--l2-kernel``).
"""

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from sklearn_s2au import experiments
from sklearn_s2au.baselines import FrameRegressor
from sklearn_s2au.datasets import make_speech_au_corpus
from sklearn_s2au.labels import AUS
from sklearn_s2au.metrics import sequence_ccc, sequence_pearson
from sklearn_s2au.regressors import EncInterAttDecRegressor, StackedIntraAttRegressor

NETWORKS = {
    "lstm": (StackedIntraAttRegressor, "lstm"),
    "transformer": (StackedIntraAttRegressor, "transformer"),
    "tcn": (StackedIntraAttRegressor, "tcn"),
    "encdec-lstm": (EncInterAttDecRegressor, "lstm"),
    "encdec-transformer": (EncInterAttDecRegressor, "transformer"),
    "encdec-tcn": (EncInterAttDecRegressor, "tcn"),
}


def make_model(name, args, loss):
    if name in ("svr", "linearsvr"):
        from sklearn.svm import SVR, LinearSVR

        estimator = SVR() if name == "svr" else LinearSVR(dual="auto", random_state=0,
                                                         max_iter=5000)
        return FrameRegressor(estimator, max_frames=args.max_frames, random_state=0)
    cls, encoder = NETWORKS[name]
    kwargs = dict(module__encoder=encoder, loss=loss, random_state=0, n_threads=1)
    if args.max_epochs is not None:
        kwargs["max_epochs"] = args.max_epochs
    if args.l2_kernel is not None:
        kwargs["l2_kernel"] = args.l2_kernel
    return cls(**kwargs)


def fit_fold(frames, y, train, test, estimator, max_len):
    """The protocol's fit of one fold (normalisation, padding, model; see
    ``experiments.intensity``): predictions, wall time, selected epochs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe, _, pred, seconds = experiments._fit_predict(frames, y, train, test,
                                                          estimator, max_len)
    return pred, seconds, getattr(pipe[-1], "selected_epochs_", None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--aus", nargs="+", default=["all"], help="AUs, or 'all' for the 8")
    parser.add_argument("--models", nargs="+",
                        default=["svr", "lstm", "transformer", "tcn"],
                        choices=["svr", "linearsvr"] + list(NETWORKS))
    parser.add_argument("--loss", nargs="+", default=["mse"], choices=["mse", "ccc"])
    parser.add_argument("--feature-set", default="eGeMAPSv02",
                        choices=list(experiments.FEATURE_SETS))
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--l2-kernel", type=float, default=None,
                        help="the networks' L2 kernel penalty (default: theirs, 0.1)")
    parser.add_argument("--max-len", type=int, default=100)
    parser.add_argument("--max-frames", type=int, default=None,
                        help="SVR training frames per fold (random subsample)")
    parser.add_argument("--folds", type=int, default=None, help="only the first N folds")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--cache", default=".cache/bench_learning/demo")
    parser.add_argument("--out", default=None, help="write the per-fold CCC table here")
    args = parser.parse_args()
    aus = list(AUS) if args.aus == ["all"] else args.aus

    corpus = make_speech_au_corpus(random_state=0)
    y = corpus.intensity(aus=aus)
    frames = experiments.extract_features(corpus.X, args.feature_set, memory=args.cache,
                                          n_jobs=args.n_jobs)
    speakers = corpus.X["speaker"].to_numpy(dtype=object)
    folds = [(s, np.flatnonzero(speakers != s), np.flatnonzero(speakers == s))
             for s in pd.unique(speakers)][:args.folds]
    print(f"demo corpus: {len(corpus.X)} recordings, {len(folds)} LOSO folds, "
          f"{args.feature_set}, AUs {aus}", flush=True)

    rows, pooled, times = [], {}, {}
    for name in args.models:
        for loss in (["-"] if name in ("svr", "linearsvr") else args.loss):
            label = name if loss == "-" else f"{name} ({loss})"
            estimator = make_model(name, args, loss)
            start = time.perf_counter()
            results = Parallel(n_jobs=args.n_jobs)(
                delayed(fit_fold)(frames, y, train, test, estimator, args.max_len)
                for _, train, test in folds)
            preds = []
            for (speaker, _, test), (pred, seconds, epochs) in zip(folds, results):
                truth = [y[i] for i in test]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ccc = sequence_ccc(truth, pred, targets=aus, return_per_target=True)
                    r = sequence_pearson(truth, pred, targets=aus, return_per_target=True)
                for au in aus:
                    rows.append(dict(model=label, fold=speaker, au=au, ccc=ccc[au],
                                     r=r[au], seconds=seconds,
                                     epochs=np.nan if epochs is None else
                                     float(np.median(epochs))))
                preds.extend(pred)
            truth_all = [y[i] for _, _, test in folds for i in test]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pooled[label] = sequence_ccc(truth_all, preds, targets=aus,
                                             return_per_target=True).mean()
            times[label] = time.perf_counter() - start
            table = pd.DataFrame(rows)
            mine = table[table["model"] == label]
            print(f"{label}: mean CCC {mine.groupby('au')['ccc'].mean().mean():.3f}, "
                  f"{mine.groupby('fold')['seconds'].first().mean():.1f} s per fold, "
                  f"{times[label]:.0f} s in all", flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    per_au = table.groupby(["model", "au"], sort=False)["ccc"].mean().unstack("au")[aus]
    per_au["mean"] = per_au.mean(axis=1)
    per_au["pooled"] = pd.Series(pooled)
    per_au["r (mean)"] = table.groupby(["model", "au"], sort=False)["r"].mean() \
        .unstack("au").mean(axis=1)
    fold_times = table.groupby(["model", "fold"], sort=False)["seconds"].first()
    per_au["s / fold"] = fold_times.groupby("model", sort=False).mean()
    per_au["epochs"] = table.groupby("model", sort=False)["epochs"].median()
    print(f"\nLOSO CCC per AU on the generated demo corpus (not a real corpus), mean over "
          f"{len(folds)} held-out speakers; 'pooled' is the CCC of all folds' predictions "
          f"together; fit time per fold (all AUs, one process):\n")
    print(experiments.to_markdown(per_au, float_format="{:.3f}"))


if __name__ == "__main__":
    main()
