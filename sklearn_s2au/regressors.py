"""AU intensity regressors: the paper's networks predicting intensity on every real frame.

The paper's outlook, "we intend to predict FACS regression scores instead of performing
binary classification", as scikit-learn regressors with the classifiers' I/O:
`StackedIntraAttRegressor` and `EncInterAttDecRegressor` take a
:class:`~sklearn_s2au.preprocessing.SequenceBatch` (from ``SequencePadder``) and one
real-valued target sequence per recording (AU intensities 0-5, e.g.
``corpus.intensity(aus=[...])``) and return one float prediction per real frame of every
recording. They share the classifiers' networks and training machinery
(``sklearn_s2au._network``) and add a linear output and a regression policy:

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

import numpy as np
import torch
from sklearn.base import RegressorMixin

from ._network import _SequenceEstimator
from ._validation import check_clip, check_option
from .callbacks import _TrainScores, _ValidScores
from .metrics import sequence_ccc
from .nn import EncoderDecoderNet, StackedNet

__all__ = ["StackedIntraAttRegressor", "EncInterAttDecRegressor", "masked_ccc"]

LOSSES = ("mse", "ccc")


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


class _ValidRegressionScores(_ValidScores):
    """Per-model validation CCC and frame loss (see `~sklearn_s2au.callbacks`)."""

    key = "ccc"

    def frame_scores(self, net, pred, y, mask):
        return masked_ccc(pred.double(), y.double(), mask).numpy()


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


class _SequenceRegressor(RegressorMixin, _SequenceEstimator):
    """The sequence networks as regressors: real-valued targets, MSE or 1 - CCC, CCC.

    The classifiers' data plumbing, speaker-independent validation split, per-model
    early stopping, model skipping and threading (`_SequenceEstimator`), with what is
    specific to real-valued targets.
    """

    _binary = False
    _score = "ccc"
    _train_scores = _TrainRegressionScores
    _valid_scores = _ValidRegressionScores
    _kind = "regressor"
    _what = "target"

    def __init__(self, module, *, criterion=_FrameSquaredError, loss="mse", monitor="ccc",
                 clip=(0.0, 5.0), **kwargs):
        # the shared parameters and their defaults: _SequenceEstimator
        super().__init__(module, criterion=criterion, monitor=monitor, **kwargs)
        self.loss = loss
        self.clip = clip

    def _check_params(self):
        super()._check_params()
        where = f"{type(self).__name__}: "
        check_option(self.loss, "loss", LOSSES, where,
                     explain="'mse' (mean squared error over real frames) or 'ccc' (1 - CCC)")
        check_option(self.monitor, "monitor", ("ccc", "loss"), where,
                     explain="'ccc' (validation CCC) or 'loss'")
        check_clip(self.clip, "clip", where)

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
    __doc__ = ("""AU intensity from two stacked BiLSTMs, by default without intra-attention.

    The network of `~sklearn_s2au.classifiers.StackedIntraAttClassifier` (Table I, rows
    1-5) with a linear output per frame, trained on real-valued targets.
""" + _REGRESSOR_DOC_COMMON.format(module="StackedNet",
                                   classifier="StackedIntraAttClassifier") + """
    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_s2au.preprocessing import SequenceBatch
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
    >>> from sklearn_s2au.preprocessing import SequenceBatch
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
