"""Seed ensembles of ``multi_target="shared"`` networks against single seeds, LOSO.

For every leave-one-speaker-out fold and every group of ``--targets-per-fit`` targets
(all 8 AUs x 4 sub-classes, AU-major, as the protocols group them), trains the same
pipeline (speaker normalisation, padding, the network with ``multi_target="shared"``)
with ``--seeds`` values of ``random_state`` (each seed also draws its own validation
speaker for early stopping), and prints, in one run:

* the mean UAR % over folds and targets of each seed alone, and their mean;
* the mean UAR % of the ensemble: the seeds' frame probabilities averaged, cut at 0.5.

It measured whether averaging a few networks is worth its cost before the ensemble
became an estimator (`sklearn_s2au.ensemble.SeedEnsembleClassifier`, whose member
``i`` is the network with ``random_state=i`` here, so its averaged probabilities are
this script's ensemble); unlike ``bench_learning.py --n-seeds 3``, it also prints each
seed alone. UAR is computed per fold on the real
frames of the held-out speaker, then averaged over folds (as ``bench_learning.py``).
These are numbers of a GENERATED corpus, not of the paper's GEMEP corpus.

Usage::

    python benchmarks/bench_seed_ensemble.py [--corpus demo|second]
        [--feature-set eGeMAPSv02|ComParE_2016] [--architecture EID|Stacked]
        [--seeds 3] [--targets-per-fit 8] [--network-params JSON] [--n-jobs 2]
"""

import argparse
import json
import os
import time
import warnings

import numpy as np
from joblib import Parallel, delayed

from bench_learning import CORPORA
from sklearn_s2au import experiments
from sklearn_s2au._protocol import loso_folds, target_groups
from sklearn_s2au.classifiers import EncInterAttDecClassifier, StackedIntraAttClassifier
from sklearn_s2au.datasets import make_speech_au_corpus
from sklearn_s2au.experiments import _pipeline, _stack_targets
from sklearn_s2au.labels import AUS, PHASES
from sklearn_s2au.metrics import sequence_uar

ARCHITECTURES = {"EID": EncInterAttDecClassifier, "Stacked": StackedIntraAttClassifier}


def _fit(frames, y, folds, fold, group, seed, cls, params):
    _, train, test = folds[fold]
    estimator = cls(multi_target="shared", random_state=seed, verbose=0, **params)
    pipe = _pipeline(estimator, 100)
    labels = [yy[:, group] for yy in y]
    pipe.fit(frames.iloc[train], [labels[i] for i in train])
    return pipe.predict_proba(frames.iloc[test])


def _uar(y_true, proba):
    return sequence_uar(y_true, [(p > 0.5).astype(int) for p in proba],
                        return_per_target=True).to_numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="demo")
    parser.add_argument("--feature-set", default="eGeMAPSv02",
                        choices=["eGeMAPSv02", "ComParE_2016"])
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="EID")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets-per-fit", type=int, default=8)
    parser.add_argument("--network-params", type=json.loads, default={})
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--cache", default=os.path.join(".cache", "bench_learning"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    corpus = make_speech_au_corpus(**CORPORA[args.corpus])
    frames = experiments.extract_features(
        corpus.X, args.feature_set, memory=os.path.join(args.cache, args.corpus),
        n_jobs=args.n_jobs)
    y, names = _stack_targets(corpus, AUS, PHASES)
    folds = loso_folds(corpus)
    groups = [tuple(g) for g in target_groups(len(names), args.targets_per_fit)]
    cls = ARCHITECTURES[args.architecture]
    jobs = [(f, g, s) for f in range(len(folds)) for g in groups for s in range(args.seeds)]

    start = time.perf_counter()
    probas = Parallel(n_jobs=args.n_jobs)(
        delayed(_fit)(frames, y, folds, f, list(g), s, cls, args.network_params)
        for f, g, s in jobs)
    seconds = time.perf_counter() - start
    proba = dict(zip(jobs, probas))

    single = np.zeros((args.seeds, len(names)))
    ensemble = np.zeros(len(names))
    for f, (_, _, test) in enumerate(folds):
        for g in groups:
            y_true = [y[i][:, list(g)] for i in test]
            per_seed = [proba[f, g, s] for s in range(args.seeds)]
            for s in range(args.seeds):
                single[s, list(g)] += _uar(y_true, per_seed[s])
            mean = [np.mean([p[r] for p in per_seed], axis=0) for r in range(len(test))]
            ensemble[list(g)] += _uar(y_true, mean)
    single /= len(folds)
    ensemble /= len(folds)
    seeds = ", ".join(f"{100 * row.mean():.1f}" for row in single)
    print(f"{args.corpus} {args.feature_set} {args.architecture} shared, "
          f"{args.targets_per_fit} targets per fit, {args.network_params}: "
          f"single seeds {seeds} (mean {100 * single.mean():.1f}); "
          f"ensemble of {args.seeds}: {100 * ensemble.mean():.1f}; "
          f"{len(jobs)} fits in {seconds:.0f} s")


if __name__ == "__main__":
    main()
