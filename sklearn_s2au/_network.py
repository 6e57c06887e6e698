"""What the paper's sequence networks share as scikit-learn estimators (skorch).

`_SequenceEstimator` is the skorch ``NeuralNet`` behind the classifiers
(`~sklearn_s2au.classifiers`) and the regressors (`~sklearn_s2au.regressors`): it takes a
:class:`~sklearn_s2au.preprocessing.SequenceBatch` and one target sequence per
recording, builds the network for the data's size (one model per target in
``multi_target="independent"``, seeded per model), splits the training speakers into
training and early-stopping validation speakers, runs the paper's early stopping per
model (stopped models are skipped), masks padding everywhere, sums the per-model losses
and weight penalties, and returns one array per recording. Subclasses say what the
targets are (``_binary``), which validation score stops training (``_score``), the frame
loss (`get_frame_loss`) and the output.
"""

import logging
import numbers
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from threadpoolctl import threadpool_limits

from ._sequence import SequenceBatch
from ._utils import object_array, seed_from
from ._validation import check_option, check_positive_int, label_shape
from .callbacks import PaperEarlyStopping, _set_active_models
from .nn._ops import BACKENDS, loop_threads, resolve_backend, use_loop_threads
from .nn.layers import length_mask

logger = logging.getLogger(__name__)


class _ChunkDataset(torch.utils.data.Dataset):
    """Chunks of a SequenceBatch as ``({"x", "lengths"}, labels)`` items."""

    def __init__(self, batch, labels=None):
        self.x = torch.from_numpy(np.ascontiguousarray(batch.X, dtype=np.float32))
        self.lengths = torch.from_numpy(batch.lengths.astype(np.int64))
        self.labels = None if labels is None else torch.from_numpy(labels)

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        y = self.labels[i] if self.labels is not None else torch.zeros(())
        return {"x": self.x[i], "lengths": self.lengths[i]}, y


@contextmanager
def _thread_limit(n_threads):
    """``n_threads`` threads for the compiled loops, one for torch's own operations.

    None takes torch's thread count of the process: the cores in a notebook; joblib's
    worker processes and Dask's workers already limit it to their share. The compiled
    loops share the sequences of a batch out over these threads; torch's operations
    around them (projections, batch norm, the optimiser) are small, and torch's OpenMP
    threads keep spinning after each of them, stealing the cores from the loops, so
    they run on one thread (threadpoolctl; undone on exit, as is every change here).
    """
    n = torch.get_num_threads() if n_threads is None else int(n_threads)
    with threadpool_limits(limits=1, user_api="openmp"), use_loop_threads(n):
        previous = torch.get_num_threads()
        if previous > 1:                  # torch's OpenMP was not found by threadpoolctl
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)


_seed = seed_from          # one seed convention for the package (_utils.seed_from)


class _SequenceEstimator(NeuralNet):
    """Common skorch plumbing of the paper's sequence networks (see the module)."""

    #: 0/1 labels (classifiers) or real-valued targets (regressors)
    _binary = True
    #: validation score of early stopping (history ``valid_<score>``) and the callbacks
    #: that record it and the training loss terms
    _score = "uar"
    _train_scores = None
    _valid_scores = None
    #: how messages call the estimator and its targets
    _kind = "classifier"
    _what = "label"

    def __init__(self, module, *, criterion, optimizer=torch.optim.Adam, lr=1e-3,
                 max_epochs=100, batch_size=16, multi_target="independent",
                 valid_speakers=1, monitor, patience=5, prev_rounds=15,
                 last_top_results=10, average_epochs=1, l2_kernel=1e-1, l1_bias=1e-4,
                 n_threads=None, backend="auto", random_state=None, train_split=None,
                 verbose=0, **kwargs):
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size,
                         train_split=train_split, verbose=verbose, **kwargs)
        self.multi_target = multi_target
        self.valid_speakers = valid_speakers
        self.monitor = monitor
        self.patience = patience
        self.prev_rounds = prev_rounds
        self.last_top_results = last_top_results
        self.average_epochs = average_epochs
        self.l2_kernel = l2_kernel
        self.l1_bias = l1_bias
        self.n_threads = n_threads
        self.backend = backend
        self.random_state = random_state

    # ---- callbacks -------------------------------------------------------------------

    def get_default_callbacks(self):
        lower = self.monitor == "loss"
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("train_scores", self._train_scores()),
            ("valid_scores", self._valid_scores()),
            ("early_stopping", PaperEarlyStopping(
                monitor="valid_loss" if lower else f"valid_{self._score}",
                patience=self.patience, prev_rounds=self.prev_rounds,
                last_top_results=self.last_top_results, lower_is_better=lower,
                average_epochs=self.average_epochs)),
            ("print_log", PrintLog(keys_ignored=[
                f"valid_{self._score}_per_model", "valid_loss_per_model",
                f"{self._train_scores.frame_key}_per_model", "train_penalty_per_model"])),
        ]

    # ---- validation of parameters and data --------------------------------------------

    def _check_params(self):
        where = f"{type(self).__name__}: "
        check_option(self.multi_target, "multi_target", ("independent", "shared"), where)
        for name in ("patience", "prev_rounds", "last_top_results", "max_epochs",
                     "batch_size", "average_epochs"):
            check_positive_int(getattr(self, name), name, where)
        if self.average_epochs > self.last_top_results:
            raise ValueError(f"{where}average_epochs={self.average_epochs!r} must not exceed "
                             f"last_top_results={self.last_top_results!r}: the weights are "
                             f"averaged over the best epochs among the last "
                             f"last_top_results.")
        check_positive_int(self.n_threads, "n_threads", where, allow_none=True)
        check_option(self.backend, "backend", BACKENDS, where,
                     explain=f"one of {BACKENDS}")

    def _check_batch(self, X):
        if not isinstance(X, SequenceBatch):
            raise TypeError(
                f"{type(self).__name__} expects a SequenceBatch (the output of "
                f"SequencePadder): put SequencePadder(max_len=...) before the {self._kind} "
                f"in the Pipeline; got {type(X).__name__}.")
        return X

    def _model_layout(self):
        """(n_models, n_outputs) of the network for ``n_targets_`` targets."""
        if self.multi_target == "independent":
            return self.n_targets_, 1
        return 1, self.n_targets_

    def _seeds(self, n_models):
        return [int(self.random_seed_ + k) for k in range(n_models)]

    # ---- skorch hooks -----------------------------------------------------------------

    def initialize_module(self):
        """Build the module with n_features, the model layout and per-model seeds.

        ``fit`` takes the sizes from the data. Without data (``initialize()`` before
        ``load_params``), they come from ``module__n_features`` and the number of
        targets from ``module__n_models`` (``multi_target="independent"``) or
        ``module__n_outputs`` (``"shared"``), default 1.
        """
        if not hasattr(self, "n_features_in_"):
            self._sizes_from_params()
        kwargs = self.get_params_for("module")
        given = kwargs.get("n_features")
        if given is not None and given != self.n_features_in_:
            raise ValueError(f"module__n_features={given} but X has {self.n_features_in_} "
                             f"features; drop module__n_features (it is set from X).")
        if "backend" in kwargs:
            raise ValueError(f"{type(self).__name__}: set backend={kwargs['backend']!r} on "
                             f"the estimator, not module__backend.")
        n_models, n_outputs = self._model_layout()
        kwargs.update(n_features=self.n_features_in_, n_models=n_models, n_outputs=n_outputs,
                      seeds=self._seeds(n_models), backend=self.backend)
        self.module_ = self.initialized_instance(self.module, kwargs)
        # the loops that run for this device and dtype ("compiled" raises where it can't)
        self.backend_ = resolve_backend(self.backend, self.device,
                                        next(self.module_.parameters()).dtype)
        return self

    def _sizes_from_params(self):
        """What fit would set, from module__* parameters (the no-data initialize route)."""
        kwargs = self.get_params_for("module")
        name = type(self).__name__
        n_features = kwargs.get("n_features")
        if n_features is None:
            raise RuntimeError(
                f"{name}: the network's input size is unknown. Call fit(X, y), or, to "
                f"initialize() a net without data (e.g. before load_params), set "
                f"module__n_features (and module__n_models for several targets).")
        self._check_params()
        key = "n_models" if self.multi_target == "independent" else "n_outputs"
        n_targets = kwargs.get(key, 1)
        for label, value in (("module__n_features", n_features), (f"module__{key}", n_targets)):
            check_positive_int(value, label, where=f"{name}: ")
        self.n_features_in_ = int(n_features)
        self.n_targets_ = int(n_targets)
        self.y_ndim_ = 1 if self.n_targets_ == 1 else 2
        self.random_seed_ = _seed(self.random_state)
        self._sizes_set()

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training=False)
        kwargs = self.get_params_for("iterator_train")
        kwargs.setdefault("batch_size", self.batch_size)
        kwargs.setdefault("shuffle", True)
        if kwargs["shuffle"] and "generator" not in kwargs:
            # a local generator: repeatable with random_state, global RNG untouched
            kwargs["generator"] = torch.Generator().manual_seed(self.random_seed_)
        return self.iterator_train(dataset, **kwargs)

    def get_dataset(self, X, y=None):
        if isinstance(X, torch.utils.data.Dataset):
            return X
        X = self._check_batch(X)
        return _ChunkDataset(X, None if y is None else X.pad_labels(y, binary=self._binary))

    def _split_recordings(self, X):
        """Positions of the training and validation recordings (speaker-independent)."""
        n_rec = len(X)
        everything = np.arange(n_rec)
        vs = self.valid_speakers
        if vs is None or (isinstance(vs, numbers.Number) and not isinstance(vs, bool)
                          and vs == 0):
            return everything, None
        speakers = X.recording_speakers()
        if all(s is None for s in speakers):
            logger.warning("X carries no speakers; the early-stopping validation split is "
                           "made by recording instead of by speaker.")
            speakers = np.arange(n_rec).astype(object)
        unique = sorted(set(speakers.tolist()), key=str)
        if isinstance(vs, (list, tuple, np.ndarray)):
            chosen = list(vs)
            unknown = [s for s in chosen if s not in unique]
            if unknown:
                raise ValueError(f"valid_speakers {unknown} are not among the training "
                                 f"speakers {unique}.")
        else:
            if isinstance(vs, bool) or not isinstance(vs, numbers.Number) or vs < 0:
                raise ValueError(f"valid_speakers must be a count, a fraction in (0, 1), a "
                                 f"list of speakers, 0 or None; got {vs!r}.")
            n = int(np.ceil(vs * len(unique))) if vs < 1 else int(vs)
            if n >= len(unique):
                raise ValueError(
                    f"valid_speakers={vs!r} would hold out {n} of the {len(unique)} "
                    f"training speakers, leaving none to train on. Use fewer validation "
                    f"speakers, or valid_speakers=0 to train without early stopping.")
            rng = np.random.RandomState(self.random_seed_ % (2 ** 32))
            chosen = [unique[i] for i in sorted(rng.choice(len(unique), n, replace=False))]
        in_valid = np.isin(speakers, np.asarray(chosen, dtype=object))
        if in_valid.all():
            raise ValueError("valid_speakers covers every training speaker; leave at least "
                             "one speaker for training.")
        return np.flatnonzero(~in_valid), np.flatnonzero(in_valid)

    def get_split_datasets(self, X, y=None, **fit_params):
        """Speaker-independent train/validation split (`_split_recordings`)."""
        train, valid = self._split_recordings(X)
        y = list(y)
        train_batch = X.select(train)
        train_labels = self._labels_3d(train_batch, [y[i] for i in train])
        self._set_training_targets(train_batch, train_labels)
        self.validation_recordings_ = valid
        dataset_train = _ChunkDataset(train_batch, train_labels)
        if valid is None:
            return dataset_train, None
        valid_batch = X.select(valid)
        return dataset_train, _ChunkDataset(valid_batch,
                                            self._labels_3d(valid_batch, [y[i] for i in valid]))

    def _set_training_targets(self, batch, labels):
        """Hook: what the loss learns from the training targets (class weights)."""

    def _labels_3d(self, batch, y):
        labels = batch.pad_labels(y, binary=self._binary)
        return labels[..., None] if labels.ndim == 2 else labels

    def _loss_terms(self, y_pred, y_true, X, training, attention_penalty=None):
        """Frame loss and penalties of the running models: two ``(n_running,)`` tensors.

        ``attention_penalty`` is the intra-attention regulariser the module returned
        for this pass (running models only).
        """
        mask = length_mask(X["lengths"].to(y_pred.device), y_pred.shape[1])
        per_target = self.get_frame_loss(y_pred, y_true, mask)
        bce = per_target.view(self.module_.n_models, -1).sum(1)
        penalty = torch.zeros_like(bce)
        if training:
            penalty = self.module_.weight_penalty(self.l2_kernel, self.l1_bias)
        running = self._running_models()
        if running is not None:
            # models stopped by early stopping are not run: leave them out of the loss
            index = torch.as_tensor(running, device=bce.device)
            bce = bce.index_select(0, index)
            penalty = penalty.index_select(0, index)
        if attention_penalty is not None:
            penalty = penalty + attention_penalty
        return bce, penalty

    def _running_models(self):
        """Indices of the models still training (per-model early stopping), or None: all."""
        return getattr(self, "_active_models_", None)

    def infer(self, x, **fit_params):
        """skorch's ``infer``, passing the running models to the module (``active``)."""
        return super().infer(x, active=self._running_models(), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Sum over models of the masked class-weighted BCE and the penalties.

        Model k's loss only depends on model k's weights, so the sum trains the models
        independently (each gets exactly the gradient of its own loss).
        """
        bce, penalty = self._loss_terms(y_pred, y_true, X, training)
        return (bce + penalty).sum()

    def train_step_single(self, batch, **fit_params):
        """One backward pass; also returns the BCE and penalty terms (``_TrainScores``)."""
        self._set_training(True)
        Xi, yi = batch
        # the module returns the intra-attention regulariser of this pass with the logits
        y_pred, attention = self.infer(Xi, return_penalty=True, **fit_params)
        bce, penalty = self._loss_terms(y_pred, yi, Xi, training=True,
                                        attention_penalty=attention)
        loss = (bce + penalty).sum()
        loss.backward()
        return {"loss": loss, "y_pred": y_pred, "bce": bce.detach(),
                "penalty": penalty.detach()}

    # ---- sklearn API ------------------------------------------------------------------

    def _prepare_fit(self, X, y):
        self._check_params()
        X = self._check_batch(X)
        # checks lengths (and 0/1 values) per recording
        labels = X.pad_labels(y, binary=self._binary)
        self.n_features_in_ = X.n_features
        self.y_ndim_ = labels.ndim - 1
        self.n_targets_ = 1 if labels.ndim == 2 else labels.shape[-1]
        self.random_seed_ = _seed(self.random_state)
        self._sizes_set()
        return X

    def _sizes_set(self):
        """Hook: fitted attributes that follow from the sizes (``classes_``)."""

    def fit(self, X, y, **fit_params):
        """Train on the recordings of ``X`` with per-recording target sequences ``y``.

        Parameters
        ----------
        X : SequenceBatch
            Padded chunks of the recordings (``SequencePadder`` output).
        y : list or object array of n_recordings arrays
            ``(n_frames_i,)`` or ``(n_frames_i, n_targets)``: 0/1 labels for the
            classifiers, real values (AU intensities) for the regressors.

        Returns
        -------
        self
        """
        X = self._prepare_fit(X, y)
        with _thread_limit(self.n_threads), torch.random.fork_rng(devices=[]):
            self.n_threads_ = loop_threads()
            # dropout draws from torch's global generator: seed it inside a fork
            torch.manual_seed(self.random_seed_)
            try:
                super().fit(X, list(y), **fit_params)
            finally:
                _set_active_models(self, None)
            self._after_fit(X, y)
        return self

    def _after_fit(self, X, y, partial=False):
        """Hook run after ``fit`` and ``partial_fit`` (thresholds, warnings)."""

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training (one more ``max_epochs`` run with early stopping)."""
        if not self.initialized_:
            return self.fit(X, y, **fit_params)
        X = self._check_batch(X)
        name = type(self).__name__
        if X.n_features != self.n_features_in_:
            raise ValueError(f"partial_fit: X has {X.n_features} features but {name} was "
                             f"fitted with {self.n_features_in_}; call fit to train a new "
                             f"network on these features.")
        labels = X.pad_labels(y, binary=self._binary)
        n_targets = 1 if labels.ndim == 2 else labels.shape[-1]
        if n_targets != self.n_targets_ or labels.ndim - 1 != self.y_ndim_:
            shape = label_shape(() if self.y_ndim_ == 1 else (self.n_targets_,))
            raise ValueError(f"partial_fit: y has {n_targets} target(s) per frame "
                             f"(arrays of {labels.ndim - 1} dimension(s)) but {name} was "
                             f"fitted with {self._what} arrays of shape {shape}; give "
                             f"{self._what}s of "
                             f"that shape, or call fit to train a new network.")
        # as fit: dropout draws from a seeded fork of torch's generator (the seed moves
        # on with the epochs already trained, so each call draws new masks), and the
        # global generator is left as it was
        with _thread_limit(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_seed_ + len(self.history))
            try:
                super().partial_fit(X, list(y), classes=classes, **fit_params)
            finally:
                _set_active_models(self, None)
            self._after_fit(X, list(y), partial=True)
        return self

    def _logits(self, X, check=True):
        if check:
            check_is_fitted(self, "n_targets_")
        X = self._check_batch(X)
        if X.n_features != self.n_features_in_:
            raise ValueError(f"X has {X.n_features} features but {type(self).__name__} was "
                             f"fitted with {self.n_features_in_}; use the same feature set.")
        with _thread_limit(self.n_threads):
            logits = self.forward(_ChunkDataset(X), training=False)
        return X, logits.numpy()

    def _per_recording(self, X, values):
        out = X.unpad(values)
        if self.y_ndim_ == 1:
            out[:] = [v[:, 0] for v in out]
        return out

    def predict_attention(self, X, layer=None, model=0):
        """Attention weights of every chunk (decoder/query step × key step).

        Parameters
        ----------
        X : SequenceBatch
        layer : str or None
            ``"decoder"`` (inter-attention) or an intra-attention layer name
            (``"intra_att1"``, ``"intra_att2"``, ``"intra_att_dec"``); None takes the
            first attention layer of the network.
        model : int, default=0
            Which model (target) in ``multi_target="independent"`` mode.

        Returns
        -------
        weights : object ndarray of n_chunks arrays ``(len_c, len_c)``
            Rows are the real steps of chunk c and sum to 1 over its real steps. Map
            chunks to recordings with ``X.recording`` and ``X.offset``.
        """
        check_is_fitted(self, "n_targets_")
        X = self._check_batch(X)
        names = self.module_.attention_layers()
        if not names:
            raise ValueError(f"{type(self).__name__} with these module settings has no "
                             f"attention layer.")
        layer = names[0] if layer is None else layer
        if layer not in names:
            raise ValueError(f"layer must be one of {names}, got {layer!r}.")
        self.module_.eval()
        chunks = []
        with _thread_limit(self.n_threads), torch.no_grad():
            dataset = _ChunkDataset(X)
            for start in range(0, len(dataset), self.batch_size):
                x = dataset.x[start:start + self.batch_size].to(self.device)
                lengths = dataset.lengths[start:start + self.batch_size].to(self.device)
                _, maps = self.module_(x, lengths, return_attention=True)   # all models
                weights = maps[layer][model].cpu().numpy()
                chunks += [w[:n, :n] for w, n in zip(weights, lengths.tolist())]
        return object_array(chunks)

