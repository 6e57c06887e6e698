"""SVM baseline vs the corpus oracle on the demo corpus (AU17, leave-one-speaker-out).

Runs the DESIGN.md pipeline ``OpenSmileLLD -> SpeakerNormaliser ->
FrameClassifier(SVC(class_weight="balanced"))`` under
``cross_validate(..., groups=X["speaker"], cv=LeaveOneGroupOut(), scoring=uar_scorer)``
for both feature sets and prints the mean UAR next to the oracle of the generated
corpus. These are demo-corpus numbers, not the paper's (GEMEP).

Usage: python benchmarks/bench_corpus_svm.py [--au AU17] [--phases onset ...]
"""

import argparse
import time

import pandas as pd
from joblib import Memory
from sklearn.model_selection import LeaveOneGroupOut, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from sklearn_s2au import FrameClassifier, OpenSmileLLD, SpeakerNormaliser, uar_scorer
from sklearn_s2au.datasets import make_speech_au_corpus


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--au", default="AU17")
    parser.add_argument("--phases", nargs="+", default=["onset", "apex", "offset",
                                                         "occurrence"])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--cache", default=".cache/bench_corpus_svm")
    args = parser.parse_args()

    corpus = make_speech_au_corpus(random_state=0)
    X = corpus.X
    oracle = corpus.oracle(aus=[args.au])
    rows = {}
    for feature_set in ("ComParE_2016", "eGeMAPSv02"):
        for phase in args.phases:
            y = corpus.labels(args.au, phase)
            pipe = Pipeline([("lld", OpenSmileLLD(feature_set)),
                             ("norm", SpeakerNormaliser()),
                             ("clf", FrameClassifier(SVC(class_weight="balanced")))],
                            memory=Memory(args.cache, verbose=0))
            start = time.perf_counter()
            res = cross_validate(pipe, X, y, groups=X["speaker"], cv=LeaveOneGroupOut(),
                                 scoring=uar_scorer, n_jobs=args.n_jobs)
            rows[(feature_set, phase)] = 100 * res["test_score"].mean()
            print(f"{feature_set:13s} {args.au} {phase:10s} UAR {rows[(feature_set, phase)]:5.1f} %"
                  f"  ({time.perf_counter() - start:.0f} s, folds "
                  f"{', '.join(f'{100 * s:.0f}' for s in res['test_score'])})", flush=True)
    table = pd.Series(rows).unstack()[args.phases]
    table.loc["oracle"] = (100 * oracle.loc[args.au, args.phases]).to_numpy()
    print(f"\n{args.au}, demo corpus, LOSO UAR % (SVC(class_weight='balanced'), RBF):")
    print(table.round(1).to_string())


if __name__ == "__main__":
    main()
