"""Do the networks learn? LOSO UAR of the SVM, Stacked-NoAtt and Enc-InterAtt-Dec.

Runs, in one process, the leave-one-speaker-out protocol of the package
(``experiments.run_protocol``: speaker normalisation, padding, training with the
paper's early stopping on a held-out training speaker, UAR on the real frames of the
test speaker) for

* the frame-wise SVM baseline (``FrameClassifier(LinearSVC(class_weight="balanced"))``,
  the protocol's SVM row),
* Stacked-NoAtt and Enc-InterAtt-Dec under the package defaults (``--settings
  default``) and under the paper's exact settings (``--settings paper``:
  ``classifiers.paper_settings``),

on both feature sets, and prints one paper-style table (mean UAR % over folds, then
over AUs) with the corpus oracle beneath. ``--corpus second`` uses another generated
corpus (other seed, 8 speakers × 20 longer recordings, other AU phase settings), so
that defaults chosen on the demo corpus are checked on data they were not chosen on.

These are numbers of a GENERATED corpus, not of the paper's GEMEP corpus.

Usage::

    python benchmarks/bench_learning.py [--corpus demo|second] [--aus AU12 AU17 | all]
        [--feature-sets eGeMAPSv02 ComParE_2016] [--settings default paper]
        [--max-epochs N] [--n-jobs 2] [--out DIR] [--network-params JSON] [--no-svm]
        [--n-seeds 1]

``--network-params '{"valid_speakers": 2}'`` sets constructor arguments of the
networks on top of the settings (to measure a change to the defaults); ``--no-svm``
skips the SVM rows (when a sweep of network options already has them from a run
beside it). ``--n-seeds 3`` trains every network as a seed ensemble of 3
(``run_protocol(n_seeds=3)``, `sklearn_s2au.ensemble.SeedEnsembleClassifier`; seeds 0,
1, 2, the first the single network's), at three times the networks' cost. ``--cache`` holds the extracted features only (joblib ``memory``); every
fit runs afresh.
"""

import argparse
import json
import time
import warnings

import pandas as pd

from sklearn_s2au import experiments
from sklearn_s2au.datasets import make_speech_au_corpus
from sklearn_s2au.labels import AUS

#: The corpora of this benchmark: the demo corpus and a second one made differently.
CORPORA = {
    "demo": dict(random_state=0),
    "second": dict(random_state=7, n_speakers=8, recordings_per_speaker=20,
                   min_duration=1.5, max_duration=5.0),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="demo")
    parser.add_argument("--aus", nargs="+", default=["AU12", "AU17"],
                        help="AUs, or 'all' for the 8 AUs")
    parser.add_argument("--feature-sets", nargs="+", default=list(experiments.FEATURE_SETS))
    parser.add_argument("--settings", nargs="+", default=["default", "paper"],
                        choices=["default", "paper"])
    parser.add_argument("--architectures", nargs="+",
                        default=["Stacked-NoAtt", "Enc-InterAtt-Dec"])
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--targets-per-fit", type=int, default=8)
    parser.add_argument("--out", default=None, help="write the tidy results CSV here")
    parser.add_argument("--cache", default=".cache/bench_learning")
    parser.add_argument("--network-params", type=json.loads, default=None,
                        help="JSON object of network constructor arguments")
    parser.add_argument("--no-svm", action="store_true", help="skip the SVM rows")
    parser.add_argument("--n-seeds", type=int, default=1,
                        help="seed ensembles of this many networks (run_protocol n_seeds)")
    args = parser.parse_args()
    aus = list(AUS) if args.aus == ["all"] else args.aus

    corpus = make_speech_au_corpus(**CORPORA[args.corpus])
    print(f"corpus {args.corpus} {CORPORA[args.corpus]}: {len(corpus.X)} recordings, "
          f"{corpus.X['speaker'].nunique()} speakers; AUs {aus}", flush=True)
    warnings.filterwarnings("ignore", module="sklearn_s2au")
    tables, parts = [], []
    common = dict(aus=aus, memory=f"{args.cache}/{args.corpus}", n_jobs=args.n_jobs,
                  max_epochs=args.max_epochs, targets_per_fit=args.targets_per_fit,
                  verbose=0)
    for feature_set in args.feature_sets:
        if not args.no_svm:
            start = time.perf_counter()
            res = experiments.run_protocol(corpus, architectures=(), svm=True,
                                           feature_sets=(feature_set,), **common)
            res["settings"] = "-"
            parts.append(res)
            print(f"{feature_set} SVM: {time.perf_counter() - start:.0f} s", flush=True)
        for settings in args.settings:
            start = time.perf_counter()
            res = experiments.run_protocol(corpus, architectures=args.architectures,
                                           svm=False, feature_sets=(feature_set,),
                                           settings=settings, n_seeds=args.n_seeds,
                                           network_params=args.network_params, **common)
            res["settings"] = settings
            parts.append(res)
            epochs = res.groupby("architecture")["epochs"].median().to_dict()
            print(f"{feature_set} networks, {settings} settings: "
                  f"{time.perf_counter() - start:.0f} s, median selected epoch {epochs}",
                  flush=True)
    results = pd.concat(parts, ignore_index=True)
    if args.out:
        results.to_csv(args.out, index=False)
    table = experiments.paper_table(results, rows=["feature_set", "architecture", "settings"])
    table["mean"] = table.mean(axis=1).round(1)
    print(f"\nLOSO UAR % on the generated '{args.corpus}' corpus (not GEMEP), mean over "
          f"folds and {len(aus)} AU(s):\n")
    print(experiments.to_markdown(table))
    oracle = 100 * corpus.oracle(aus=aus)
    oracle = oracle.mean().to_frame("corpus oracle").T
    oracle["mean"] = oracle.mean(axis=1)
    print("\n" + experiments.to_markdown(oracle.round(1)))


if __name__ == "__main__":
    main()
