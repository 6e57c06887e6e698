"""The numba loops against the C loops they replaced, in one run.

Until commit e4a8d62 the recurrences and attentions ran in C compiled at first use with
the system compiler and loaded with ctypes (``sklearn_s2au/nn/_ckernels.py``). This
script checks that commit out into a temporary git worktree, then runs
``benchmarks/bench_networks.py`` there and in this tree, alternately, with the same
arguments (one thread each), and prints both tables and the first-call cost of each
tier: the seconds of a fresh process's first tiny fit, with the compiled code's cache
emptied (cold) and filled (warm).

Usage::

    python benchmarks/bench_backends.py [--old e4a8d62] [--rounds 2] -- [bench_networks args]

``--old`` can be any commit (e.g. ``--old HEAD`` to measure an uncommitted change in one
run against the last commit).

Each tree runs its own ``bench_networks.py``. Trees from after the shared default
(ca0effd) and before the like-for-like fix of that script time its K rows as one shared
network with K outputs at batch 16, so their K > 1 rows do not compare with a later
tree's (see the README); the Table I rows and K = 1 do, up to the batch size.

Needs git and, for the old tier, a C compiler.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_FIT = (
    "import time; t = time.perf_counter()\n"
    "import numpy as np\n"
    "from sklearn_s2au._sequence import SequenceBatch\n"
    "from sklearn_s2au.classifiers import EncInterAttDecClassifier, "
    "StackedIntraAttClassifier\n"
    "rng = np.random.RandomState(0)\n"
    "X = SequenceBatch.from_features([rng.randn(20, 5).astype(np.float32) for _ in "
    "range(6)], [f's{i % 3}' for i in range(6)], 20)\n"
    "y = [rng.randint(0, 2, 20) for _ in range(6)]\n"
    "kw = dict(max_epochs=1, valid_speakers=0, n_threads=1)\n"
    "EncInterAttDecClassifier(module__intra_att=('pa', 3), **kw).fit(X, y)\n"
    "StackedIntraAttClassifier(module__intra_att=('bi', 3), **kw).fit(X, y)\n"
    "print(f'{time.perf_counter() - t:.1f}')\n")


def run(tree, args, env):
    out = subprocess.run([sys.executable, str(tree / "benchmarks" / "bench_networks.py"),
                          *args], cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"bench_networks.py failed in {tree}:\n{out.stderr[-2000:]}")
    return out.stdout


def first_fit(tree, env, caches):
    """Seconds of a fresh process's first fit: cold (caches emptied), then warm."""
    times = []
    for cold in (True, False):
        if cold:
            for cache in caches:
                shutil.rmtree(cache, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", FIRST_FIT], cwd=tree, env=env, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="e4a8d62", help="commit with the C loops")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate old/new this many times (the faster run counts)")
    parser.add_argument("rest", nargs=argparse.REMAINDER,
                        help="arguments for bench_networks.py (after --)")
    args = parser.parse_args(argv)
    rest = [a for a in args.rest if a != "--"] or ["--epochs", "3", "--ks", "1", "8",
                                                     "--configs", "Stacked-NoAtt",
                                                     "Enc-InterAtt-Dec"]
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.old],
                       cwd=ROOT, check=True, capture_output=True)
        try:
            env_old = dict(os.environ, PYTHONPATH=str(old),
                           SKLEARN_S2AU_CACHE=str(Path(tmp) / "c-cache"),
                           NUMBA_CACHE_DIR=str(Path(tmp) / "numba-cache-old"))
            env_new = dict(os.environ, PYTHONPATH=str(ROOT),
                           NUMBA_CACHE_DIR=str(Path(tmp) / "numba-cache"))
            print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
                  f"bench_networks.py {' '.join(rest)}")
            for i in range(args.rounds):
                for label, tree, env in ((f"old tree ({args.old})", old, env_old),
                                         ("this tree", ROOT, env_new)):
                    print(f"\n## round {i + 1}: {label}")
                    print(run(tree, rest, env), end="")
            print("\n## first fit in a fresh process (s): cold cache, warm cache")
            for label, tree, env, caches in (
                    ("old tree", old, env_old, [Path(tmp) / "c-cache",
                                                Path(tmp) / "numba-cache-old"]),
                    ("this tree", ROOT, env_new, [Path(tmp) / "numba-cache"])):
                cold, warm = first_fit(tree, env, caches)
                print(f"{label:12s} {cold:6.1f} {warm:6.1f}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                           capture_output=True)


if __name__ == "__main__":
    main()
