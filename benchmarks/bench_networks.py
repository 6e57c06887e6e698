"""Training time per epoch of the paper's networks on ComParE-sized random data.

Prints, for one thread (``--threads 1``, the default):

* seconds per epoch of each Table I configuration (``TABLE1_CONFIGS``, trained through
  the scikit-learn estimators, early stopping off so every epoch is timed),
* the same for a straightforward per-step reference implementation of Enc-InterAtt-Dec
  (plain autograd, ``torch.nn.LSTM`` encoder, one model; written here, not in the
  package),
* seconds per *model*-epoch of ``multi_target="independent"`` Enc-InterAtt-Dec with
  K = 1, 8 and 32 targets trained in one vectorised pass, and its speed-up over the
  reference (the reference is timed at the start and at the end of the run and the
  faster of the two is used, so that a busy machine does not inflate the speed-up).
  These rows train the reference's own model and batches: the paper's decoder
  (``PAPER_DECODER``: free attention, no aligned input) and batch 32; a last row gives
  the package's default decoder (aligned input, location prior) at the same batch,
* with ``--scaling 1 2``: seconds per epoch of one default Enc-InterAtt-Dec fit (one
  target, ``n_jobs=1`` as in a notebook) with ``n_threads=1`` and ``n_threads=2`` in the
  same run, and the ratio.

``--backend compiled|torch`` chooses the estimators' ``backend`` (default "auto").

Data: 142 recordings of 50..100 frames (one chunk each, T = 100), 130 features,
batch 32 for every timed fit (the reference's, and the paper's; the estimators' default
is 16, whose twice as many optimiser steps per epoch would not compare like with like):
the size of the paper's ComParE setting. The scaling rows keep the estimator's defaults
(batch 16), as a notebook fit would. Each timing is one epoch of a few timed after a
warm-up epoch: the fastest (``--stat min``, the default: the least disturbed by other
processes on a shared machine) or the median (``--stat median``).

Usage::

    python benchmarks/bench_networks.py [--epochs 3] [--ks 1 8 32] [--configs ...]
        [--backend auto] [--threads 1] [--scaling 1 2]
"""

import argparse
import os
import statistics
import time

import numpy as np
import torch
from torch import nn

from sklearn_s2au._sequence import SequenceBatch
from sklearn_s2au.classifiers import (PAPER_DECODER, TABLE1_CONFIGS,
                                      EncInterAttDecClassifier)
from sklearn_s2au.nn._ops import compiled_available

N_RECORDINGS, N_FEATURES, MAX_LEN, BATCH = 142, 130, 100, 32
STAT = min
OPTIONS = {"backend": "auto", "n_threads": 1}


def make_data(n_targets=1, seed=0):
    rng = np.random.RandomState(seed)
    lengths = rng.randint(50, MAX_LEN + 1, size=N_RECORDINGS)
    feats = [rng.randn(n, N_FEATURES).astype(np.float32) for n in lengths]
    labels = [(rng.rand(n, n_targets) < 0.3).astype(int) for n in lengths]
    if n_targets == 1:
        labels = [y[:, 0] for y in labels]
    speakers = [f"s{i % 10}" for i in range(N_RECORDINGS)]
    return SequenceBatch.from_features(feats, speakers, MAX_LEN), labels


def time_estimator(cls, kwargs, X, y, epochs, **extra):
    options = {"batch_size": BATCH, **OPTIONS, **extra}
    clf = cls(**kwargs, max_epochs=epochs + 1, valid_speakers=0, random_state=0, **options)
    clf.fit(X, y)
    durations = [row["dur"] for row in clf.history][1:]     # drop the warm-up epoch
    return STAT(durations)


# ---- the reference: straightforward per-step Enc-InterAtt-Dec, plain autograd ----------

class _MaskedBN(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.bn = nn.BatchNorm1d(n, eps=1e-3, momentum=0.01)

    def forward(self, h, mask):
        out = torch.zeros_like(h)
        out[mask] = self.bn(h[mask])
        return out


class ReferenceEncInterAttDec(nn.Module):
    """Enc-InterAtt-Dec written the obvious way: one model, autograd through every step."""

    def __init__(self, n_features, hidden=20, dropout=0.2):
        super().__init__()
        self.encoder = nn.LSTM(n_features, hidden, batch_first=True, bidirectional=True)
        self.bn = _MaskedBN(hidden)
        self.dropout = nn.Dropout(dropout)
        self.hidden = hidden
        self.w_s = nn.Linear(hidden, hidden, bias=False)
        self.u_a = nn.Linear(hidden, hidden)
        self.w_a = nn.Linear(hidden, hidden, bias=False)
        self.v_a = nn.Linear(hidden, 1, bias=False)
        self.gates_y = nn.Linear(1, 3 * hidden, bias=False)
        self.gates_c = nn.Linear(hidden, 3 * hidden)
        self.u_r = nn.Linear(hidden, hidden, bias=False)
        self.u_z = nn.Linear(hidden, hidden, bias=False)
        self.u_p = nn.Linear(hidden, hidden, bias=False)
        self.out_y = nn.Linear(1, 1, bias=False)
        self.out_s = nn.Linear(hidden, 1, bias=False)
        self.out_c = nn.Linear(hidden, 1)

    def forward(self, x, lengths):
        b, t_len, _ = x.shape
        mask = torch.arange(t_len)[None, :] < lengths[:, None]
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, _ = self.encoder(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t_len)
        h = h[..., :self.hidden] + h[..., self.hidden:]
        h = self.dropout(self.bn(h, mask))
        keys = self.u_a(h)                                    # (B, T, H), once
        s = torch.tanh(self.w_s(h[:, 0]))
        y = h.new_zeros(b, 1)
        logits = []
        for _ in range(t_len):
            e = self.v_a(torch.tanh(keys + self.w_a(s)[:, None])).squeeze(-1)
            alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)
            c = torch.bmm(alpha[:, None], h).squeeze(1)
            g = self.gates_y(y) + self.gates_c(c)
            r = torch.sigmoid(g[:, :self.hidden] + self.u_r(s))
            z = torch.sigmoid(g[:, self.hidden:2 * self.hidden] + self.u_z(s))
            p = torch.tanh(g[:, 2 * self.hidden:] + self.u_p(r * s))
            s = (1 - z) * s + z * p
            logit = self.out_y(y) + self.out_s(s) + self.out_c(c)
            y = torch.sigmoid(logit)
            logits.append(logit)
        return torch.stack(logits, 1)


def time_reference(X, y, epochs):
    torch.manual_seed(0)
    model = ReferenceEncInterAttDec(N_FEATURES)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    x_all = torch.from_numpy(X.X)
    len_all = torch.from_numpy(X.lengths)
    y_all = torch.from_numpy(X.pad_labels(y))[..., None]
    mask_all = torch.arange(MAX_LEN)[None, :] < len_all[:, None]
    pos = y_all[mask_all].mean()
    weights = torch.stack([0.5 / (1 - pos), 0.5 / pos])
    durations = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for idx in torch.randperm(len(x_all)).split(BATCH):
            mask = mask_all[idx]
            logits = model(x_all[idx], len_all[idx])
            target = y_all[idx]
            frame_w = weights[target.long()]
            bce = nn.functional.binary_cross_entropy_with_logits(logits, target,
                                                                 reduction="none")
            loss = (bce * frame_w)[mask].mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        durations.append(time.perf_counter() - start)
    return STAT(durations[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per model")
    parser.add_argument("--ks", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--configs", nargs="*", default=list(TABLE1_CONFIGS))
    parser.add_argument("--stat", choices=["min", "median"], default="min")
    parser.add_argument("--backend", choices=["auto", "compiled", "torch"], default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="n_threads of the timed fits (the reference: torch threads)")
    parser.add_argument("--scaling", type=int, nargs="*", default=[],
                        help="also time one fit with each of these n_threads")
    args = parser.parse_args(argv)
    global STAT
    STAT = min if args.stat == "min" else statistics.median
    OPTIONS.update(backend=args.backend, n_threads=args.threads)
    torch.set_num_threads(args.threads)
    if not args.ks and not args.configs:
        return scaling(args)
    X, y = make_data()
    print(f"# {N_RECORDINGS} sequences, T={MAX_LEN}, {N_FEATURES} features, batch {BATCH}, "
          f"1 torch thread, torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, {args.stat} of {args.epochs} epochs, backend "
          f"{args.backend} (numba importable: {compiled_available()}), n_threads "
          f"{args.threads}")
    reference = time_reference(X, y, args.epochs)
    print(f"{'configuration':40s} {'s/epoch':>8s}")
    print(f"{'reference Enc-InterAtt-Dec (autograd)':40s} {reference:8.3f}")
    for name in args.configs:
        cls, kwargs = TABLE1_CONFIGS[name]
        print(f"{name:40s} {time_estimator(cls, kwargs, X, y, args.epochs):8.3f}")
    rows = []
    independent = {"multi_target": "independent", **PAPER_DECODER}
    for k in args.ks:
        Xk, yk = make_data(n_targets=k)
        if k == 1:
            yk = [lab[:, None] for lab in yk]
        rows.append((f"K = {k}", k, time_estimator(EncInterAttDecClassifier, independent,
                                                   Xk, yk, args.epochs)))
    if args.ks:
        rows.append(("K = 1, default decoder", 1,
                     time_estimator(EncInterAttDecClassifier, {}, X, y, args.epochs)))
    again = time_reference(X, y, args.epochs)
    print(f"{'reference Enc-InterAtt-Dec, timed again':40s} {again:8.3f}")
    reference = min(reference, again)
    print(f"\n{'independent Enc-InterAtt-Dec, batch 32':40s} {'s/epoch':>8s} "
          f"{'s/model-epoch':>14s} {'speed-up vs reference':>22s}")
    for label, k, seconds in rows:
        print(f"{label:40s} {seconds:8.3f} {seconds / k:14.4f} "
              f"{reference / (seconds / k):21.1f}x")
    if args.scaling:
        scaling(args)


def scaling(args):
    X, y = make_data()
    print(f"\n{'one default Enc-InterAtt-Dec fit':40s} {'s/epoch':>8s} {'vs first':>9s} "
          f"(load average {os.getloadavg()[0]:.1f})")
    first = None
    for n in args.scaling:
        seconds = time_estimator(EncInterAttDecClassifier, {}, X, y, args.epochs,
                                 n_threads=n,
                                 batch_size=EncInterAttDecClassifier().batch_size)
        first = first or seconds
        print(f"{'n_threads = ' + str(n):40s} {seconds:8.3f} {first / seconds:8.2f}x")

if __name__ == "__main__":
    main()
