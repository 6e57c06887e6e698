"""Wall time of the Table II protocol: one model per target vs. independent models.

Runs, in one process and on one torch thread, a subset of the paper's Table II protocol
(Enc-InterAtt-Dec, leave-one-speaker-out on the demo corpus, the paper's 100 epochs
and early stopping) twice, fold by fold, through the protocol's own per-fold function
(speaker normalisation, padding, training, prediction, UAR):

(a) reference: a plain loop of one skorch model per target (``n_targets = 1`` fits of
    ``EncInterAttDecClassifier``; target k uses ``random_state + k``, the seed of model
    k in (b));
(b) vectorised: one fit per fold of K independent models
    (``multi_target="independent"``), which skips models once they stopped early.

It prints the per-fold wall times, the speed-up, the epochs at which the models
stopped and the mean UAR of both, and extrapolates to the full protocol: 2 feature
sets × 10 folds × 32 targets = 640 models, with 2 folds in parallel on 2 cores. With
``--full-k`` it also times the protocol's real unit, one K = 32 fit per fold, for the
extrapolation of (b). Timings are wall-clock: on a shared machine, note the load
(``uptime``) next to them.

Usage::

    python benchmarks/bench_protocol.py [--feature-set ComParE_2016] [--folds 2]
        [--targets 8] [--max-epochs 100] [--full-k] [--cache DIR]
"""

import argparse
import logging
import os
import time

import numpy as np

from sklearn_s2au.datasets import make_speech_au_corpus
from sklearn_s2au.experiments import _fit_fold, _network, _stack_targets, extract_features
from sklearn_s2au.labels import AUS, PHASES

ARCHITECTURE = "Enc-InterAtt-Dec"
FULL_MODELS = 2 * 10 * len(AUS) * len(PHASES)     # 640
FULL_FOLD_FITS = 2 * 10                            # (feature set, fold) pairs
N_CORES = 2


def _folds(corpus, n_folds):
    speakers = corpus.X["speaker"].to_numpy(dtype=object)
    names = list(dict.fromkeys(speakers))[:n_folds]
    return [(s, np.flatnonzero(speakers != s), np.flatnonzero(speakers == s))
            for s in names]


def _run(frames, y, names, fold, estimator):
    speaker, train, test = fold
    start = time.perf_counter()
    rows = _fit_fold(frames, y, names, train, test, estimator, 100, {"fold": speaker})
    return time.perf_counter() - start, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feature-set", default="ComParE_2016")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--targets", type=int, default=8,
                        help="first targets in AU-major order (AU x sub-class)")
    parser.add_argument("--max-epochs", type=int, default=100)
    parser.add_argument("--full-k", action="store_true",
                        help="also time one K=32 fit per fold (the protocol's unit)")
    parser.add_argument("--cache", default=os.path.join(
        os.path.expanduser("~"), ".cache", "sklearn_s2au", "bench_features"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

    corpus = make_speech_au_corpus(random_state=0)
    frames = extract_features(corpus.X, args.feature_set, memory=args.cache)
    y_all, names_all = _stack_targets(corpus, AUS, PHASES)
    k = args.targets
    y = [lab[:, :k] for lab in y_all]
    names = names_all[:k]
    folds = _folds(corpus, args.folds)
    print(f"{ARCHITECTURE}, {args.feature_set}, {len(folds)} folds, {k} targets "
          f"({', '.join(names)}), max_epochs={args.max_epochs}, 1 torch thread; "
          f"load average at start: {os.getloadavg()[0]:.2f}")

    # warm-up (compiled loops, lazy imports) outside the timings
    _run(frames, y, names, folds[0], _network(ARCHITECTURE, 1, 0, None))

    ref_times, vec_times, full_times = [], [], []
    ref_uar, vec_uar, stops = [], [], []
    for fold in folds:
        seconds = 0.0
        for j in range(k):
            estimator = _network(ARCHITECTURE, args.max_epochs, j, None)
            t, rows = _run(frames, [lab[:, [j]] for lab in y], [names[j]], fold, estimator)
            seconds += t
            ref_uar.append(rows[0]["uar"])
        ref_times.append(seconds)
        estimator = _network(ARCHITECTURE, args.max_epochs, 0, None)
        t, rows = _run(frames, y, names, fold, estimator)
        vec_times.append(t)
        vec_uar += [r["uar"] for r in rows]
        line = (f"fold {fold[0]}: (a) {k} one-target fits {ref_times[-1]:7.1f} s   "
                f"(b) one K={k} fit {t:7.1f} s   speed-up {ref_times[-1] / t:5.2f}x")
        if args.full_k:
            estimator = _network(ARCHITECTURE, args.max_epochs, 0, None)
            t32, rows32 = _run(frames, y_all, names_all, fold, estimator)
            full_times.append(t32)
            line += f"   K=32 fit {t32:7.1f} s"
        print(line, flush=True)

    per_model_ref = sum(ref_times) / (len(folds) * k)
    per_model_vec = sum(vec_times) / (len(folds) * k)
    print(f"per model: (a) {per_model_ref:.2f} s   (b) {per_model_vec:.2f} s   "
          f"speed-up {per_model_ref / per_model_vec:.2f}x")
    print(f"mean UAR over folds and targets: (a) {np.nanmean(ref_uar):.3f}   "
          f"(b) {np.nanmean(vec_uar):.3f}")
    full_ref = FULL_MODELS * per_model_ref / N_CORES
    print(f"extrapolated full protocol ({FULL_MODELS} models, {N_CORES} folds in parallel "
          f"on {N_CORES} cores, {args.feature_set} timings for both feature sets):")
    print(f"  (a) one model per target: {full_ref / 60:6.1f} min")
    print(f"  (b) K={k} per fit, scaled per model: "
          f"{FULL_MODELS * per_model_vec / N_CORES / 60:6.1f} min")
    if full_times:
        print(f"  (b) one K=32 fit per (feature set, fold): "
              f"{FULL_FOLD_FITS * np.mean(full_times) / N_CORES / 60:6.1f} min "
              f"(mean K=32 fold fit {np.mean(full_times):.1f} s)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
