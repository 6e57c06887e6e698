"""Training callbacks of the networks: the paper's early stopping and per-model scores.

Kept apart from the estimators (as skorch keeps ``callbacks/`` apart from ``net.py``):

* `paper_early_stopping` / `PaperEarlyStopping`: the paper's rule, one per model of a
  K-model network, restoring each model's selected epoch (or an average of its best
  epochs);
* ``_ValidScores``: per-model validation UAR and frame BCE from the predictions skorch
  already made;
* ``_TrainScores``: per-epoch training BCE and penalties apart, and the warning on
  non-finite losses.

The estimators in :mod:`sklearn_s2au.classifiers` install them by default.
"""

import warnings
from collections import deque

import numpy as np
import torch
from skorch.callbacks import Callback

from .nn.layers import length_mask

__all__ = ["PaperEarlyStopping", "paper_early_stopping"]


# --------------------------------------------------------------------------------------
# Early stopping as described in the paper
# --------------------------------------------------------------------------------------

class _StoppingRule:
    """The paper's stopping rule for one model, fed one score per epoch."""

    def __init__(self, patience, prev_rounds, last_top_results, lower_is_better):
        self.patience = patience
        self.prev_rounds = prev_rounds
        self.last_top_results = last_top_results
        self.lower_is_better = lower_is_better
        self.scores = []
        self.wait = 0
        self.stopped_epoch = None

    def update(self, score):
        """Add the score of the next epoch; True when training of this model stops."""
        score = float(score)
        self.scores.append(score)
        n = len(self.scores)
        if n <= self.prev_rounds:
            return False
        reference = float(np.mean(self.scores[-self.prev_rounds - 1:-1]))
        # equal up to rounding (a mean of equal scores) is no improvement
        if np.isnan(score) or np.isclose(score, reference, rtol=1e-9, atol=1e-12):
            improved = False
        elif self.lower_is_better:
            improved = score < reference
        else:
            improved = score > reference
        self.wait = 0 if improved else self.wait + 1
        if self.wait >= self.patience:
            self.stopped_epoch = n
            return True
        return False

    def selected_epoch(self):
        """Best epoch (1-based) among the last ``last_top_results``; ties: the latest."""
        return self.best_epochs(1)[0]

    def best_epochs(self, n):
        """The ``n`` best epochs (1-based) among the last ``last_top_results``, best first.

        Ties go to the later epoch.
        """
        window = np.asarray(self.scores[-self.last_top_results:], dtype=float)
        if self.lower_is_better:
            window = -window
        window = np.where(np.isnan(window), -np.inf, window)
        first = len(self.scores) - len(window) + 1
        # stable sort of the reversed window: among equal scores the later epoch first
        order = np.argsort(-window[::-1], kind="stable")[:n]
        return [first + len(window) - 1 - int(i) for i in order]


def paper_early_stopping(scores, *, patience=5, prev_rounds=15, last_top_results=10,
                         lower_is_better=False):
    """Apply the paper's early stopping rule to a sequence of per-epoch scores.

    Our reading of Stappen et al. (2019), Section II-C and IV-C:

    * during the first ``prev_rounds`` epochs nothing is checked;
    * from epoch ``prev_rounds + 1`` on, epoch ``n`` *improves* when its score is better
      than the mean score of the ``prev_rounds`` epochs before it
      (``n - prev_rounds .. n - 1``);
    * a counter of consecutive non-improving epochs is reset by every improving epoch;
      training stops at the epoch where it reaches ``patience`` — so the earliest stop is
      epoch ``prev_rounds + patience`` (20 with the paper's values), the "minimum number
      of epochs" of the paper;
    * when training stops (or ``max_epochs`` is reached) the best epoch among the last
      ``last_top_results`` epochs is selected and its weights are restored (ties go to
      the latest such epoch).

    Parameters
    ----------
    scores : sequence of float
        Validation score of every epoch that would be trained (e.g. 100 values).
    patience, prev_rounds, last_top_results : int
    lower_is_better : bool, default=False
        True for a loss, False for UAR.

    Returns
    -------
    stopped_epoch : int or None
        1-based epoch after which training stops, None when it runs to the end.
    selected_epoch : int
        1-based epoch whose weights are kept.

    Examples
    --------
    >>> from sklearn_s2au.callbacks import paper_early_stopping
    >>> scores = [0.5 + 0.01 * i for i in range(20)] + [0.6] * 10
    >>> paper_early_stopping(scores)
    (25, 20)
    """
    rule = _StoppingRule(patience, prev_rounds, last_top_results, lower_is_better)
    for score in scores:
        if rule.update(score):
            break
    if not rule.scores:
        raise ValueError("scores is empty; give one score per epoch.")
    return rule.stopped_epoch, rule.selected_epoch()


class PaperEarlyStopping(Callback):
    """Early stopping of the paper, per model, restoring the selected epoch's weights.

    Each of the network's ``n_models`` models has its own rule (`paper_early_stopping`)
    on its own validation score. A model that stops is frozen: the network skips it in
    later forward and backward passes (the net passes the running models to the module
    as its ``active`` argument), so it costs nothing, and after every later optimiser step its parameters
    and batch-norm statistics are put back, so Adam's momentum does not move it. Its
    validation scores are carried over from its last trained epoch (they would not
    change); ``train_loss`` and ``valid_loss`` from then on sum the running models
    only. The running models compute exactly what they would with every model running.
    Training ends when every model has stopped or at ``max_epochs``; each model then
    gets the weights of its selected epoch. The net gets ``selected_epochs_`` and
    ``stopped_epochs_`` (1-based, one per model).

    Parameters
    ----------
    monitor : str, default="valid_uar"
        History key; the per-model scores are read from ``monitor + "_per_model"``.
    patience : int, default=5
    prev_rounds : int, default=15
    last_top_results : int, default=10
    lower_is_better : bool, default=False
    average_epochs : int, default=1
        How many of the best epochs among the last ``last_top_results`` give the kept
        weights: 1 keeps the selected epoch's weights (the paper); more average the
        weights (and batch-norm statistics) of that many best epochs, as in stochastic
        weight averaging (Izmailov et al., 2018). ``selected_epochs_`` is the best one.
    """

    def __init__(self, monitor="valid_uar", patience=5, prev_rounds=15, last_top_results=10,
                 lower_is_better=False, average_epochs=1):
        self.monitor = monitor
        self.patience = patience
        self.prev_rounds = prev_rounds
        self.last_top_results = last_top_results
        self.lower_is_better = lower_is_better
        self.average_epochs = average_epochs

    def initialize(self):
        self.rules_ = None
        self.snapshots_ = None
        self.frozen_ = {}
        self.selected_ = {}
        return self

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        n_models = net.module_.n_models
        self.rules_ = [_StoppingRule(self.patience, self.prev_rounds, self.last_top_results,
                                     self.lower_is_better) for _ in range(n_models)]
        self.snapshots_ = deque(maxlen=self.last_top_results)
        self.frozen_ = {}
        self.frozen_stack_ = None
        self.selected_ = {}
        self.active_ = False
        # epochs of earlier runs (partial_fit): the rules count from this run's start
        self.offset_ = len(net.history)
        _set_active_models(net, None)

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.active_ = dataset_valid is not None

    def on_epoch_end(self, net, **kwargs):
        if not self.active_:
            return
        state = net.module_.state_dict()
        epoch = len(net.history)
        self.snapshots_.append((epoch, {name: t.detach().clone() for name, t in state.items()}))
        scores = np.atleast_1d(net.history[-1, self.monitor + "_per_model"])
        for k, rule in enumerate(self.rules_):
            if k in self.frozen_:
                continue
            if rule.update(scores[k]):
                self._select(k, rule)
                self.frozen_[k] = {name: t[k].detach().clone() for name, t in state.items()}
                self.frozen_stack_ = None
        net.history.record("models_running", len(self.rules_) - len(self.frozen_))
        if len(self.frozen_) == len(self.rules_):
            raise KeyboardInterrupt  # skorch's way to end fit_loop early
        if self.frozen_:
            _set_active_models(net, [k for k in range(len(self.rules_))
                                     if k not in self.frozen_])

    def _select(self, k, rule):
        epochs = [e + self.offset_ for e in rule.best_epochs(self.average_epochs)]
        snapshots = dict(self.snapshots_)
        state = {}
        for name, best in snapshots[epochs[0]].items():
            if best.is_floating_point() and len(epochs) > 1:
                state[name] = torch.stack([snapshots[e][name][k] for e in epochs]).mean(0)
            else:
                state[name] = best[k].clone()
        self.selected_[k] = (epochs[0], state)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training and self.frozen_:
            if self.frozen_stack_ is None:
                self.frozen_stack_ = _stack_model_slices(self.frozen_)
            _load_stacked_slices(net.module_, self.frozen_stack_)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        _set_active_models(net, None)
        n_epochs = len(net.history)
        n_models = net.module_.n_models
        if not self.active_ or n_epochs == 0:
            net.selected_epochs_ = np.full(n_models, n_epochs)
            net.stopped_epochs_ = np.full(n_models, n_epochs)
            return
        for k, rule in enumerate(self.rules_):
            if k not in self.selected_:
                self._select(k, rule)
        _load_model_slices(net.module_, {k: s for k, (_, s) in self.selected_.items()})
        net.selected_epochs_ = np.array([self.selected_[k][0] for k in range(n_models)])
        net.stopped_epochs_ = np.array([(r.stopped_epoch or len(r.scores)) + self.offset_
                                        for r in self.rules_])
        # keep the fitted estimator small: drop the epoch snapshots
        self.snapshots_ = None
        self.frozen_ = {}
        self.frozen_stack_ = None
        self.selected_ = {}


def _set_active_models(net, models):
    """Run only ``models`` (None: all) in the net's later passes (its ``infer``)."""
    net._active_models_ = None if models is None else sorted(int(m) for m in models)


def _stack_model_slices(slices):
    """``{k: {name: tensor}}`` as ``{name: (indices, stacked tensors)}``."""
    ks = sorted(slices)
    index = torch.tensor(ks, dtype=torch.long, device=slices[ks[0]][next(iter(
        slices[ks[0]]))].device)
    names = slices[ks[0]].keys()
    return {name: (index, torch.stack([slices[k][name] for k in ks])) for name in names}


def _load_stacked_slices(module, stacked):
    """Write ``{name: (indices, values)}`` into the model axis of ``module``'s state."""
    state = module.state_dict()
    with torch.no_grad():
        for name, (index, values) in stacked.items():
            state[name].index_copy_(0, index, values)


def _load_model_slices(module, slices):
    """Write per-model parameter/buffer slices ``{k: {name: tensor}}`` into ``module``."""
    if slices:
        _load_stacked_slices(module, _stack_model_slices(slices))


# --------------------------------------------------------------------------------------
# Validation scores per model
# --------------------------------------------------------------------------------------

def _frame_uar(pred, true, mask):
    """UAR per target over masked frames; pred/true/mask broadcast to (N, T, K)."""
    m = mask.unsqueeze(-1)
    pos = (true > 0.5) & m
    neg = (true < 0.5) & m
    n_pos = pos.sum((0, 1)).double()
    n_neg = neg.sum((0, 1)).double()
    rec_pos = (pred & pos).sum((0, 1)).double() / n_pos.clamp_min(1)
    rec_neg = (~pred & neg).sum((0, 1)).double() / n_neg.clamp_min(1)
    present = (n_pos > 0).double() + (n_neg > 0).double()
    # a class absent from the validation frames does not count (as balanced accuracy)
    total = rec_pos * (n_pos > 0) + rec_neg * (n_neg > 0)
    return (total / present.clamp_min(1)).cpu().numpy()


class _ValidScores(Callback):
    """Per-model validation score and frame loss from the cached predictions.

    The score is the UAR for the classifiers; subclasses override `frame_scores` and
    ``key`` (the regressors: CCC). Models the network skipped (stopped by early
    stopping, see `PaperEarlyStopping`) keep their scores of the previous epoch: their
    weights have not changed since.
    """

    #: history key of the score: ``valid_<key>`` and ``valid_<key>_per_model``
    key = "uar"

    def on_train_begin(self, net, **kwargs):
        self.last_ = None

    def on_epoch_begin(self, net, **kwargs):
        self.batches_ = []

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            X, y = batch
            # scored on the CPU whatever the module's device
            self.batches_.append((kwargs["y_pred"].detach().cpu(), y.cpu(),
                                  X["lengths"].cpu()))

    def frame_scores(self, net, logits, y, mask):
        """The score per target over the real frames (higher is better): ``(K,)``."""
        # "auto" tunes the cut after training: during it, validation UAR is at 0.5
        cut = 0.5 if isinstance(net.threshold, str) else float(net.threshold)
        threshold = torch.logit(torch.tensor(cut, dtype=torch.float64))
        return _frame_uar(logits > threshold.item(), y, mask)

    def on_epoch_end(self, net, **kwargs):
        if not self.batches_:
            return
        logits = torch.cat([b[0] for b in self.batches_])
        y = torch.cat([b[1] for b in self.batches_]).to(logits.dtype)
        lengths = torch.cat([b[2] for b in self.batches_])
        self.batches_ = []
        mask = length_mask(lengths, logits.shape[1])
        score = np.asarray(self.frame_scores(net, logits, y, mask), dtype=np.float64)
        loss = net.get_frame_loss(logits, y, mask).detach().double().cpu().numpy()
        n_models = net.module_.n_models
        active = net._running_models()
        last = getattr(self, "last_", None)
        if active is not None and last is not None:
            skipped = np.ones(n_models, dtype=bool)
            skipped[active] = False
            skipped = np.repeat(skipped, score.size // n_models)  # model-major targets
            score[skipped], loss[skipped] = last[0][skipped], last[1][skipped]
        self.last_ = (score.copy(), loss.copy())
        score_model = score.reshape(n_models, -1).mean(1)
        loss_model = loss.reshape(n_models, -1).sum(1)
        running = (np.ones(n_models, dtype=bool) if active is None
                   else np.isin(np.arange(n_models), active))
        net.history.record(f"valid_{self.key}", float(score.mean()))
        net.history.record(f"valid_{self.key}_per_model", score_model.tolist())
        # the frame loss of the running models, comparable with the training frame loss
        net.history.record("valid_loss", float(loss_model[running].sum()))
        net.history.record("valid_loss_per_model", loss_model.tolist())


class _TrainScores(Callback):
    """Per-epoch training BCE and penalties, apart, and a warning on non-finite losses.

    ``train_loss`` (skorch's) is what the optimiser minimises: the frame BCE plus the
    L2/L1 weight penalties and the intra-attention regulariser. ``train_bce`` is the
    class-weighted frame BCE alone (comparable with ``valid_loss``) and
    ``train_penalty`` the rest; both are sums over the running models, averaged over
    the epoch's batches, with ``*_per_model`` lists (NaN for a model early stopping
    has stopped).
    """

    def on_train_begin(self, net, **kwargs):
        self.warned_ = False

    def on_epoch_begin(self, net, **kwargs):
        n_models = net.module_.n_models
        self.sums_ = np.zeros((2, n_models))            # BCE, penalty: batch-size weighted
        self.running_ = np.zeros(n_models, dtype=bool)
        self.count_ = 0

    def on_batch_end(self, net, batch=None, training=False, bce=None, penalty=None,
                     **kwargs):
        if not training or bce is None:
            return
        n = len(batch[1])
        active = net._running_models()
        index = slice(None) if active is None else active
        self.sums_[0, index] += n * bce.cpu().numpy()
        self.sums_[1, index] += n * penalty.cpu().numpy()
        self.running_[index] = True
        self.count_ += n

    #: History key of the frame loss, and what the non-finite warning says to check
    #: (the regressors' subclass renames both).
    frame_key = "train_bce"
    inputs = "the features"

    def on_epoch_end(self, net, **kwargs):
        if not self.count_:
            return
        frame, penalty = self.sums_ / self.count_
        running = self.running_
        frame[~running] = np.nan
        penalty[~running] = np.nan
        net.history.record(self.frame_key, float(frame[running].sum()))
        net.history.record(self.frame_key + "_per_model", frame.tolist())
        net.history.record("train_penalty", float(penalty[running].sum()))
        net.history.record("train_penalty_per_model", penalty.tolist())
        bad = np.flatnonzero(running & ~(np.isfinite(frame) & np.isfinite(penalty)))
        if bad.size and not self.warned_:
            self.warned_ = True
            warnings.warn(
                f"{type(net).__name__}: the training loss became non-finite at epoch "
                f"{len(net.history)} (model(s) {bad.tolist()}); their weights are no longer "
                f"numbers and their predictions are meaningless. Lower lr (now "
                f"{net.lr!r}), or check {self.inputs} for inf/NaN values.",
                RuntimeWarning, stacklevel=2)
