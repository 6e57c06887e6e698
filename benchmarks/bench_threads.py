"""Where one fit's second thread goes: compiled loops against torch's own operations.

Times forward + backward of one default `EncoderDecoderNet` batch (hidden 20, 130
features, T = 100) with the estimators' thread setting (``_thread_limit(n)``: the
compiled loops on ``n`` threads, torch's operations on one) and splits each pass into

* the compiled loops: every parallel section of `sklearn_s2au.nn._ops` (BiLSTM and
  decoder, forward and backward), timed around the sections themselves, and
* the rest: torch's projections, batch norm, dropout, loss and autograd bookkeeping,

for ``n_threads`` 1 and 2, alternated twice in one run, at two batch sizes. It tells
whether a missing 2-core speed-up of a fit (``bench_networks.py --scaling``) comes from
the loops not scaling or from the part that runs on one thread (issue 10).

Usage::

    python benchmarks/bench_threads.py [--batches 32 128] [--reps 10]
"""

import argparse
import os
import time

import torch

import sklearn_s2au.nn._ops as ops
from sklearn_s2au._network import _thread_limit
from sklearn_s2au.nn import EncoderDecoderNet

SECTION_NAMES = ["BiLSTM forward", "decoder forward", "decoder backward", "BiLSTM backward"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()

    original = ops._run
    sections = []

    def timed_run(tasks):
        start = time.perf_counter()
        original(tasks)
        sections.append(time.perf_counter() - start)

    ops._run = timed_run
    try:
        measure(args, sections)
    finally:
        ops._run = original


def measure(args, sections):
    torch.manual_seed(0)
    net = EncoderDecoderNet(n_features=130, hidden_size=20, seeds=[0])
    print(f"# default EncoderDecoderNet, one batch forward + backward, T=100, 130 features; "
          f"load average {os.getloadavg()[0]:.1f}; ms per pass, mean of {args.reps}")
    print(f"{'batch':>5s} {'threads':>7s} {'total':>7s} {'loops':>7s} {'rest':>7s}  "
          + "  ".join(SECTION_NAMES))
    for batch in args.batches:
        x = torch.randn(batch, 100, 130)
        lengths = torch.full((batch,), 100)
        for n in (1, 2, 1, 2):
            with _thread_limit(n):
                for _ in range(3):                            # warm-up
                    net(x, lengths).sum().backward()
                sections.clear()
                start = time.perf_counter()
                for _ in range(args.reps):
                    net(x, lengths).sum().backward()
                total = (time.perf_counter() - start) / args.reps
            per_pass = len(sections) // args.reps
            means = [sum(sections[i::per_pass]) / args.reps for i in range(per_pass)]
            loops = sum(means)
            print(f"{batch:5d} {n:7d} {1e3 * total:7.1f} {1e3 * loops:7.1f} "
                  f"{1e3 * (total - loops):7.1f}  "
                  + "  ".join(f"{1e3 * m:.1f}" for m in means))


if __name__ == "__main__":
    main()
