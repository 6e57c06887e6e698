"""AU intensity regressors: the paper's networks predicting intensity on every real frame.

The paper's outlook, "we intend to predict FACS regression scores instead of performing
binary classification", as scikit-learn regressors with the classifiers' I/O:
`StackedIntraAttRegressor` and `EncInterAttDecRegressor` take a
:class:`~sklearn_s2au.preprocessing.SequenceBatch` (from ``SequencePadder``) and one
real-valued target sequence per recording (AU intensities 0-5, e.g.
``corpus.intensity(aus=[...])``) and return one float prediction per real frame of every
recording. They are the classifiers' networks and training machinery (they subclass
them) with a linear output and a regression policy:

* the loss is the mean squared error over the real frames of every target (``loss="mse"``,
  the default), or ``1 - CCC`` over the real frames of each batch (``loss="ccc"``), plus
  the same Keras-style weight penalties and intra-attention regulariser;
* early stopping follows the paper's rule (`~sklearn_s2au.callbacks.PaperEarlyStopping`)
  per model on the concordance correlation coefficient of the validation speakers
  (``monitor="ccc"``) or on the validation loss (``monitor="loss"``);
* several AUs (``y`` of shape ``(n_frames, K)``) train as K independent models in one
  vectorised pass (``multi_target="independent"``) or as one network with K outputs.

Every ``module__*`` setting of the classifiers applies, including the encoders
(``module__encoder="lstm" | "transformer" | "tcn"``).
"""

import numbers

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog

from ._sequence import SequenceBatch
from ._validation import label_shape
from .callbacks import PaperEarlyStopping, _set_active_models, _TrainScores
from .classifiers import (_check_threads_and_backend, _ChunkDataset, _require_positive_int,
                          _seed, _SequenceClassifier, _thread_limit)
from .metrics import sequence_ccc
from .nn import EncoderDecoderNet, StackedNet
from .nn.layers import length_mask

__all__ = ["StackedIntraAttRegressor", "EncInterAttDecRegressor", "masked_ccc"]

LOSSES = ("mse", "ccc")


def _check_batch(X, step):
    if not isinstance(X, SequenceBatch):
        raise TypeError(
            f"{step} expects a SequenceBatch (the output of SequencePadder): put "
            f"SequencePadder(max_len=...) before the regressor in the Pipeline; got "
            f"{type(X).__name__}.")
    return X


def masked_ccc(pred, true, mask, eps=0.0):
    """Concordance correlation coefficient per target over the real frames.

    Parameters
    ----------
    pred, true : Tensor (B, T, K)
        Predictions and targets.
    mask : bool Tensor (B, T)
        True on real frames; padding never enters a moment.
    eps : float, default=0.0
        Added to the denominator (the CCC loss uses a small value so that a batch of
        constant targets and predictions has a gradient, not 0 / 0).

    Returns
    -------
    ccc : Tensor (K,)
        ``2 cov / (var_t + var_p + (mean_t - mean_p) ** 2)`` with population moments, as
        :func:`sklearn_s2au.metrics.sequence_ccc`; NaN where the denominator is 0.

    Examples
    --------
    >>> import torch
    >>> from sklearn_s2au.regressors import masked_ccc
    >>> true = torch.tensor([[[0.0], [1.0], [2.0], [9.0]]])
    >>> mask = torch.tensor([[True, True, True, False]])      # the last frame is padding
    >>> masked_ccc(true + 1.0, true, mask)                      # 2 var / (2 var + 1)
    tensor([0.5714])
    """
    m = mask.unsqueeze(-1).to(pred.dtype)
    n = m.sum((0, 1)).clamp_min(1.0)
    mean_p = (pred * m).sum((0, 1)) / n
    mean_t = (true * m).sum((0, 1)) / n
    dp = (pred - mean_p) * m
    dt = (true - mean_t) * m
    var_p = (dp * dp).sum((0, 1)) / n
    var_t = (dt * dt).sum((0, 1)) / n
    cov = (dp * dt).sum((0, 1)) / n
    return 2 * cov / (var_p + var_t + (mean_p - mean_t) ** 2 + eps)


class _ValidRegressionScores(Callback):
    """Per-model validation CCC and frame loss from the cached predictions.

    Models the network skipped (stopped by early stopping) keep the scores of the
    previous epoch: their weights have not changed since.
    """

    def on_train_begin(self, net, **kwargs):
        self.last_ = None

    def on_epoch_begin(self, net, **kwargs):
        self.batches_ = []

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if not training:
            X, y = batch
            self.batches_.append((kwargs["y_pred"].detach(), y, X["lengths"]))

    def on_epoch_end(self, net, **kwargs):
        if not self.batches_:
            return
        pred = torch.cat([b[0] for b in self.batches_])
        y = torch.cat([b[1] for b in self.batches_]).to(pred.dtype)
        lengths = torch.cat([b[2] for b in self.batches_])
        self.batches_ = []
        mask = length_mask(lengths, pred.shape[1])
        ccc = masked_ccc(pred.double(), y.double(), mask).numpy()
        loss = net.get_frame_loss(pred, y, mask).detach().double().numpy()
        n_models = net.module_.n_models
        active = net._running_models()
        if active is not None and self.last_ is not None:
            skipped = np.ones(n_models, dtype=bool)
            skipped[active] = False
            skipped = np.repeat(skipped, ccc.size // n_models)    # model-major targets
            ccc[skipped], loss[skipped] = self.last_[0][skipped], self.last_[1][skipped]
        self.last_ = (ccc.copy(), loss.copy())
        ccc_model = ccc.reshape(n_models, -1).mean(1)
        loss_model = loss.reshape(n_models, -1).sum(1)
        running = (np.ones(n_models, dtype=bool) if active is None
                   else np.isin(np.arange(n_models), active))
        net.history.record("valid_ccc", float(np.mean(ccc)))
        net.history.record("valid_ccc_per_model", ccc_model.tolist())
        net.history.record("valid_loss", float(loss_model[running].sum()))
        net.history.record("valid_loss_per_model", loss_model.tolist())


class _TrainRegressionScores(_TrainScores):
    """`_TrainScores` with the regression names: ``train_frame_loss``, ``train_penalty``.

    The classifiers' loss plumbing hands the frame loss over as ``bce``.
    """

    frame_key = "train_frame_loss"
    inputs = "the features and targets"


class _FrameSquaredError(torch.nn.Module):
    """Element-wise squared error (masked and averaged in ``get_frame_loss``)."""

    def forward(self, pred, target):
        return (pred - target) ** 2


class _SequenceRegressor(RegressorMixin, _SequenceClassifier):
    """The classifiers' skorch plumbing with a regression loss, scores and output.

    Subclasses `_SequenceClassifier` for its data plumbing, speaker-independent
    validation split, per-model early stopping, model skipping and threading, and
    replaces what is specific to 0/1 labels (class weights, BCE, UAR, thresholds).
    """

    def __init__(self, module, *, criterion=_FrameSquaredError, optimizer=torch.optim.Adam,
                 lr=1e-3, max_epochs=100, batch_size=16, multi_target="independent",
                 valid_speakers=1, loss="mse", monitor="ccc", patience=5, prev_rounds=15,
                 last_top_results=10, average_epochs=1, l2_kernel=1e-1, l1_bias=1e-4,
                 clip=(0.0, 5.0), n_threads=None, backend="auto", random_state=None,
                 train_split=None, verbose=0, **kwargs):
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size,
                         multi_target=multi_target, valid_speakers=valid_speakers,
                         monitor=monitor, patience=patience, prev_rounds=prev_rounds,
                         last_top_results=last_top_results, average_epochs=average_epochs,
                         l2_kernel=l2_kernel, l1_bias=l1_bias, n_threads=n_threads,
                         backend=backend, random_state=random_state,
                         train_split=train_split, verbose=verbose, **kwargs)
        # skorch counts every public attribute as a parameter: the classifiers' class
        # weights and threshold have no meaning here
        del self.class_weight, self.threshold
        self.loss = loss
        self.clip = clip

    # ---- callbacks -------------------------------------------------------------------

    def get_default_callbacks(self):
        lower = self.monitor == "loss"
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("train_scores", _TrainRegressionScores()),
            ("valid_scores", _ValidRegressionScores()),
            ("early_stopping", PaperEarlyStopping(
                monitor="valid_loss" if lower else "valid_ccc", patience=self.patience,
                prev_rounds=self.prev_rounds, last_top_results=self.last_top_results,
                lower_is_better=lower, average_epochs=self.average_epochs)),
            ("print_log", PrintLog(keys_ignored=[
                "valid_ccc_per_model", "valid_loss_per_model",
                "train_frame_loss_per_model", "train_penalty_per_model"])),
        ]

    # ---- validation of parameters and data --------------------------------------------

    def _check_params(self):
        name = type(self).__name__
        if self.multi_target not in ("independent", "shared"):
            raise ValueError(f"{name}: multi_target must be 'independent' or 'shared', got "
                             f"{self.multi_target!r}.")
        if self.loss not in LOSSES:
            raise ValueError(f"{name}: loss must be 'mse' (mean squared error over real "
                             f"frames) or 'ccc' (1 - CCC), got {self.loss!r}.")
        if self.monitor not in ("ccc", "loss"):
            raise ValueError(f"{name}: monitor must be 'ccc' (validation CCC) or 'loss', "
                             f"got {self.monitor!r}.")
        for param in ("patience", "prev_rounds", "last_top_results", "max_epochs",
                      "batch_size", "average_epochs"):
            _require_positive_int(param, getattr(self, param), where=f"{name}: ")
        if self.average_epochs > self.last_top_results:
            raise ValueError(f"{name}: average_epochs={self.average_epochs!r} must not "
                             f"exceed last_top_results={self.last_top_results!r}.")
        if self.clip is not None:
            ok = (isinstance(self.clip, (tuple, list)) and len(self.clip) == 2
                  and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                          for v in self.clip) and self.clip[0] < self.clip[1])
            if not ok:
                raise ValueError(f"{name}: clip must be None or a range (low, high) with "
                                 f"low < high, e.g. (0, 5) for AU intensities; got "
                                 f"{self.clip!r}.")
        _check_threads_and_backend(self)

    def _sizes_from_params(self):
        super()._sizes_from_params()
        del self.classes_

    # ---- skorch hooks -----------------------------------------------------------------

    def get_dataset(self, X, y=None):
        if isinstance(X, torch.utils.data.Dataset):
            return X
        X = _check_batch(X, type(self).__name__)
        return _ChunkDataset(X, None if y is None else X.pad_labels(y, binary=False))

    @staticmethod
    def _labels_3d(batch, y):
        labels = batch.pad_labels(y, binary=False)
        return labels[..., None] if labels.ndim == 2 else labels

    def get_split_datasets(self, X, y=None, **fit_params):
        """Speaker-independent train/validation split (no class weights)."""
        train, valid = self._split_recordings(X)
        y = list(y)
        train_batch = X.select(train)
        self.validation_recordings_ = valid
        dataset_train = _ChunkDataset(train_batch,
                                      self._labels_3d(train_batch, [y[i] for i in train]))
        if valid is None:
            return dataset_train, None
        valid_batch = X.select(valid)
        return dataset_train, _ChunkDataset(valid_batch,
                                            self._labels_3d(valid_batch, [y[i] for i in valid]))

    def get_frame_loss(self, pred, y, mask):
        """Frame loss per target over the real frames: ``(K,)``.

        MSE: the squared error averaged over the real frames. CCC: ``1 - CCC`` of the
        real frames of the batch.
        """
        y = y.to(pred.dtype)
        if self.loss == "ccc":
            return 1.0 - masked_ccc(pred, y, mask, eps=1e-6)
        error = self.criterion_(pred, y) * mask.unsqueeze(-1)
        return error.sum((0, 1)) / mask.sum().clamp_min(1)


    # ---- sklearn API ------------------------------------------------------------------

    def _prepare_fit(self, X, y):
        self._check_params()
        X = _check_batch(X, type(self).__name__)
        targets = X.pad_labels(y, binary=False)     # lengths and finite values per recording
        self.n_features_in_ = X.n_features
        self.y_ndim_ = targets.ndim - 1
        self.n_targets_ = 1 if targets.ndim == 2 else targets.shape[-1]
        self.random_seed_ = _seed(self.random_state)
        return X

    def fit(self, X, y, **fit_params):
        """Train on the recordings of ``X`` with per-recording target sequences ``y``.

        Parameters
        ----------
        X : SequenceBatch
            Padded chunks of the recordings (``SequencePadder`` output).
        y : list or object array of n_recordings arrays
            Real-valued targets (AU intensities), ``(n_frames_i,)`` or
            ``(n_frames_i, n_targets)``, e.g. ``corpus.intensity(aus=[...])``.

        Returns
        -------
        self
        """
        X = self._prepare_fit(X, y)
        with _thread_limit(self.n_threads), torch.random.fork_rng(devices=[]):
            self.n_threads_ = torch.get_num_threads()
            # dropout draws from torch's global generator: seed it inside a fork
            torch.manual_seed(self.random_seed_)
            try:
                NeuralNet.fit(self, X, list(y), **fit_params)
            finally:
                _set_active_models(self, None)
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Continue training (one more ``max_epochs`` run with early stopping)."""
        if not self.initialized_:
            return self.fit(X, y, **fit_params)
        X = _check_batch(X, type(self).__name__)
        name = type(self).__name__
        if X.n_features != self.n_features_in_:
            raise ValueError(f"partial_fit: X has {X.n_features} features but {name} was "
                             f"fitted with {self.n_features_in_}; call fit to train a new "
                             f"network on these features.")
        targets = X.pad_labels(y, binary=False)
        n_targets = 1 if targets.ndim == 2 else targets.shape[-1]
        if n_targets != self.n_targets_ or targets.ndim - 1 != self.y_ndim_:
            shape = label_shape(() if self.y_ndim_ == 1 else (self.n_targets_,))
            raise ValueError(f"partial_fit: y has {n_targets} target(s) per frame "
                             f"(arrays of {targets.ndim - 1} dimension(s)) but {name} was "
                             f"fitted with target arrays of shape {shape}; give targets of "
                             f"that shape, or call fit to train a new network.")
        with _thread_limit(self.n_threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_seed_ + len(self.history))
            try:
                NeuralNet.partial_fit(self, X, list(y), **fit_params)
            finally:
                _set_active_models(self, None)
        return self

    def _logits(self, X, check=True):
        if check:
            check_is_fitted(self, "n_targets_")
        X = _check_batch(X, type(self).__name__)
        if X.n_features != self.n_features_in_:
            raise ValueError(f"X has {X.n_features} features but {type(self).__name__} was "
                             f"fitted with {self.n_features_in_}; use the same feature set.")
        with _thread_limit(self.n_threads):
            out = self.forward(_ChunkDataset(X), training=False)
        return X, out.numpy()

    def predict(self, X):
        """Predicted target (AU intensity) of every real frame, one array per recording.

        Parameters
        ----------
        X : SequenceBatch

        Returns
        -------
        y_pred : object ndarray of n_recordings arrays
            float32 ``(n_frames_i,)`` (one target) or ``(n_frames_i, n_targets)``, in input
            order, clipped to ``clip``.
        """
        X, out = self._logits(X)
        if self.clip is not None:
            out = np.clip(out, float(self.clip[0]), float(self.clip[1]))
        return self._per_recording(X, out)

    @property
    def predict_proba(self):
        raise AttributeError(f"{type(self).__name__} is a regressor and has no "
                             f"predict_proba; use predict.")

    def score(self, X, y, sample_weight=None):
        """CCC over all real frames (averaged over targets), as ``ccc_scorer``; not R²."""
        return sequence_ccc(y, self.predict(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags = None
        tags.input_tags.two_d_array = False
        tags.target_tags.required = True
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags


_REGRESSOR_DOC_COMMON = """
    Parameters
    ----------
    module : torch module class, default={module}
        Network; its settings are ``module__*`` parameters, exactly as for
        `~sklearn_s2au.classifiers.{classifier}` (``module__hidden_size``,
        ``module__dropout``, ``module__intra_att``...). ``module__encoder`` chooses the
        sequence layers: ``"lstm"`` (the paper's BiLSTM, default), ``"transformer"``
        (masked self-attention with sinusoidal positions; ``module__n_heads``) or
        ``"tcn"`` (dilated temporal convolutions; ``module__tcn_levels``,
        ``module__tcn_kernel_size``, ``module__tcn_causal``).
    lr : float, default=1e-3
        Adam learning rate.
    max_epochs : int, default=100
    batch_size : int, default=16
    multi_target : {{"independent", "shared"}}, default="independent"
        For ``y`` with K columns (K AUs): K independent models with separate weights and
        early stopping trained in one vectorised pass, or one network with K outputs.
    valid_speakers : int, float, list or None, default=1
        Speakers of the training data held out for early stopping, as for the
        classifiers (0/None: no validation, all ``max_epochs`` are trained and kept).
    loss : {{"mse", "ccc"}}, default="mse"
        Training loss per target: the mean squared error over the real frames, or
        ``1 - CCC`` over the real frames of each batch (scale-free; fits the shape and
        the level of the curves rather than their squared distance).
    monitor : {{"ccc", "loss"}}, default="ccc"
        Validation score for early stopping: the CCC over the validation speakers' real
        frames, or the validation value of ``loss``.
    patience, prev_rounds, last_top_results : int, default=5, 15, 10
        The paper's early stopping (see `~sklearn_s2au.callbacks.paper_early_stopping`).
    average_epochs : int, default=1
        Average the weights of this many best epochs (see
        `~sklearn_s2au.callbacks.PaperEarlyStopping`).
    l2_kernel : float, default=0.1
    l1_bias : float, default=1e-4
        Keras-style weight penalties, as for the classifiers.
    clip : (float, float) or None, default=(0.0, 5.0)
        Range the predictions are clipped to (OpenFace's 0-5 intensity scale); None
        leaves them as the network outputs them. Training sees the unclipped outputs.
    n_threads : int or None, default=None
    backend : {{"auto", "compiled", "torch"}}, default="auto"
        Threads, and where the recurrences and attentions run, as for the classifiers
        (`~sklearn_s2au.classifiers.EncInterAttDecClassifier`); the backend used is
        ``backend_``.
    random_state : int, RandomState or None
        Seeds model k's initialisation with ``random_state + k``, the batch order, the
        validation split and dropout.
    verbose : int, default=0
    **kwargs
        Further skorch parameters (``optimizer``, ``callbacks``, ``iterator_train__*``...).

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (weights of the selected epoch of each model).
    n_features_in_ : int
    n_targets_ : int
    n_threads_ : int
    backend_ : {{"compiled", "torch"}}
    selected_epochs_, stopped_epochs_ : ndarray (n_models,)
        1-based epoch whose weights are kept, and epoch at which training stopped.
    history_ : skorch History
        Per epoch: ``train_loss`` (the minimised total), ``train_frame_loss`` (MSE or
        1 - CCC alone) and ``train_penalty``, ``valid_loss`` (the validation frame loss),
        ``valid_ccc``, their ``*_per_model`` lists, ``models_running``.

    See Also
    --------
    sklearn_s2au.classifiers.{classifier} : The same network for 0/1 AU sub-classes.
    sklearn_s2au.baselines.FrameRegressor : The frame-wise SVR baseline.
    sklearn_s2au.metrics.sequence_ccc : The evaluation metric (also ``score``).

    Notes
    -----
    The network's output unit is linear: the classifiers' logit is the predicted
    intensity. In `EncInterAttDecRegressor` the decoder feeds back the sigmoid of its
    previous output, as it does for the classifier (a squashed intensity).

    References
    ----------
    L. Stappen et al., "From speech to facial activity: towards cross-modal
    sequence-to-sequence attention networks", MMSP 2019 (outlook: FACS regression).
"""


class StackedIntraAttRegressor(_SequenceRegressor):
    __doc__ = ("""AU intensity from two stacked sequence layers (BiLSTM by default).

    The network of `~sklearn_s2au.classifiers.StackedIntraAttClassifier` (Table I, rows
    1-5) with a linear output per frame, trained on real-valued targets.
""" + _REGRESSOR_DOC_COMMON.format(module="StackedNet",
                                   classifier="StackedIntraAttClassifier") + """
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au._sequence import SequenceBatch
    >>> from sklearn_s2au.regressors import StackedIntraAttRegressor
    >>> rng = np.random.RandomState(0)
    >>> feats = [rng.randn(n, 4).astype("float32") for n in (30, 25, 40, 20)]
    >>> y = [np.clip(2 * f[:, :2] + 1, 0, 5) for f in feats]     # two AU intensities
    >>> X = SequenceBatch.from_features(feats, ["a", "a", "b", "c"], max_len=16)
    >>> reg = StackedIntraAttRegressor(module__hidden_size=4, max_epochs=2,
    ...                                random_state=0).fit(X, y)
    >>> [p.shape for p in reg.predict(X)]
    [(30, 2), (25, 2), (40, 2), (20, 2)]
    """)

    def __init__(self, module=StackedNet, **kwargs):
        super().__init__(module, **kwargs)


class EncInterAttDecRegressor(_SequenceRegressor):
    __doc__ = ("""AU intensity from an encoder and the paper's attention decoder.

    The network of `~sklearn_s2au.classifiers.EncInterAttDecClassifier` (Table I, rows
    6-8, with the package's default decoder) with a linear output per frame, trained on
    real-valued targets.
""" + _REGRESSOR_DOC_COMMON.format(module="EncoderDecoderNet",
                                   classifier="EncInterAttDecClassifier") + """
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au._sequence import SequenceBatch
    >>> from sklearn_s2au.regressors import EncInterAttDecRegressor
    >>> rng = np.random.RandomState(0)
    >>> feats = [rng.randn(n, 4).astype("float32") for n in (30, 25, 40, 20)]
    >>> y = [np.clip(2 * f[:, 0] + 1, 0, 5) for f in feats]
    >>> X = SequenceBatch.from_features(feats, ["a", "a", "b", "c"], max_len=16)
    >>> reg = EncInterAttDecRegressor(module__hidden_size=4, module__encoder="tcn",
    ...                               max_epochs=2, random_state=0).fit(X, y)
    >>> reg.predict(X)[2].shape
    (40,)
    """)

    def __init__(self, module=EncoderDecoderNet, **kwargs):
        super().__init__(module, **kwargs)
