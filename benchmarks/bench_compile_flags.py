"""Cost of building the compiled loops without ``-ffast-math``, and what it protects.

Linking with ``-ffast-math`` sets flush-to-zero / denormals-are-zero for the whole
process, so numpy's subnormal numbers become 0 after the first network fit. The package
builds its C loops with the parts of fast-math that do not (see
``sklearn_s2au.nn._ckernels._FLAGS``). This script times one epoch of three networks on
ComParE-sized random data (142 sequences of 50-100 frames, 130 features, batch 32, one
torch thread) with the package's flags or with the old ``-ffast-math`` ones, and prints
whether subnormals survive. Run it twice, once per flag set, and compare::

    python benchmarks/bench_compile_flags.py package
    python benchmarks/bench_compile_flags.py fastmath
"""

import sys

import numpy as np
import torch

from sklearn_s2au.nn import _ckernels

FAST_MATH = ["-O3", "-ffast-math", "-march=native", "-shared", "-fPIC"]


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "package"
    if which not in ("package", "fastmath"):
        sys.exit("usage: bench_compile_flags.py [package|fastmath]")
    if which == "fastmath":
        _ckernels._FLAGS = FAST_MATH
    torch.set_num_threads(1)
    from sklearn_s2au._sequence import SequenceBatch
    from sklearn_s2au.classifiers import (PAPER_DECODER, EncInterAttDecClassifier,
                                          StackedIntraAttClassifier)

    rng = np.random.RandomState(0)
    feats = [rng.randn(n, 130).astype("float32") for n in rng.randint(50, 101, 142)]
    y = [(f[:, 0] > 0).astype(int) for f in feats]
    X = SequenceBatch.from_features(feats, [f"s{i % 10}" for i in range(142)], 100)
    common = dict(max_epochs=6, valid_speakers=0, batch_size=32, random_state=0)
    for name, clf in [("Enc-InterAtt-Dec default", EncInterAttDecClassifier(**common)),
                      ("Enc-InterAtt-Dec paper decoder",
                       EncInterAttDecClassifier(**common, **PAPER_DECODER)),
                      ("Stacked-NoAtt", StackedIntraAttClassifier(**common))]:
        clf.fit(X, y)
        durations = sorted(clf.history[1:, "dur"])          # after a warm-up epoch
        print(f"{which:9s} {name:31s} min {durations[0]:.3f} "
              f"median {durations[len(durations) // 2]:.3f} s/epoch", flush=True)
    print("subnormals survive:", bool(np.finfo(np.float64).tiny / 4 > 0))


if __name__ == "__main__":
    main()
