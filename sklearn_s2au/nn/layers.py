"""Layers of the paper's networks, each batched over ``n_models`` independent models.

Every parameter and buffer carries a leading ``n_models`` (K) dimension, so K models with
disjoint weights train in one pass: the input ``x`` of shape ``(B, T, F)`` is shared,
hidden sequences are ``(K, B, T, H)`` and products are batched with ``torch.bmm`` over K.
K = 1 is the ordinary single model. Sequences are padded at the end; ``lengths`` (B,)
holds the real steps and no padded step ever influences a real output.

Parameters are initialised per model from a seed (`KModule.reset_parameters`), so model
k of a K-model stack is initialised exactly like a one-model stack with the same seed.
Initialisers follow Keras: Glorot-uniform kernels, orthogonal recurrent kernels, zero
biases (LSTM forget-gate bias 1).
"""

import math

import torch
from torch import nn

from ._functional import (_reverse_within_lengths, attention_decoder, bilstm_recurrence,
                          local_attention)

__all__ = [
    "KModule", "MaskedBatchNorm", "BiLSTM", "IntraAttention", "AttentionDecoder",
    "TimeDense", "length_mask", "reverse_within_lengths",
]


def length_mask(lengths, max_len):
    """Boolean ``(B, max_len)``: True on the real steps of each sequence."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def reverse_within_lengths(x, lengths, time_dim):
    """Reverse each sequence's real steps, leaving its padded tail in place.

    ``x`` has the batch on ``time_dim - 1`` and time on ``time_dim``; applying the
    function twice is the identity.
    """
    return _reverse_within_lengths(x, lengths, time_dim)


def _init_zeros(w, generator):
    return nn.init.zeros_(w)


def _init_ones(w, generator):
    return nn.init.ones_(w)


def _init_glorot(w, generator):
    # Keras glorot_uniform on a (fan_in, fan_out) kernel
    fan_in, fan_out = (w.shape[0], w.shape[-1]) if w.dim() > 1 else (w.shape[0], 1)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return nn.init.uniform_(w, -bound, bound, generator=generator)


def _init_orthogonal(w, generator):
    return nn.init.orthogonal_(w, generator=generator)


class KModule(nn.Module):
    """Base class: parameters with a leading model axis and per-model seeded init.

    Subclasses declare parameters with `_param`, giving the shape of one model's
    parameter, an initialiser and a regularisation kind: ``"kernel"`` (L2 in the loss),
    ``"bias"`` (L1) or ``None`` (recurrent kernels, batch-norm scale and shift).

    Every ``forward`` takes ``active`` (a sorted int tensor of model indices, or None
    for all), which restricts the pass to those models: `_w` hands out their parameter
    slices only, so a stopped model costs nothing and gets a zero gradient. The inputs
    and outputs of a layer then have ``len(active)`` on their model axis.
    """

    def __init__(self, n_models):
        super().__init__()
        self.n_models = int(n_models)
        self._inits = {}
        self._kinds = {}
        self._copies = {}

    def _param(self, name, shape, init, kind, n_copies=None):
        """Register a (n_models, [n_copies,] *shape) parameter.

        ``n_copies`` stacks independently initialised copies (the two directions of a
        bidirectional layer) on a second axis.
        """
        lead = (self.n_models,) if n_copies is None else (self.n_models, n_copies)
        setattr(self, name, nn.Parameter(torch.empty(lead + tuple(shape))))
        self._inits[name] = init
        self._kinds[name] = kind
        self._copies[name] = n_copies

    def _w(self, name, active=None):
        """Parameter or buffer ``name`` of the ``active`` models (all when None)."""
        value = getattr(self, name)
        return value if active is None else value.index_select(0, active)

    def reset_parameters(self, seeds):
        """Initialise model k's parameters from ``seeds[k]``, for every submodule.

        Model k draws from its own generator, in a fixed parameter order, so its
        initial weights do not depend on how many models are stacked.
        """
        seeds = list(seeds)
        if len(seeds) != self.n_models:
            raise ValueError(f"need one seed per model ({self.n_models}), got {len(seeds)}.")
        modules = [m for m in self.modules() if isinstance(m, KModule)]
        with torch.no_grad():
            for k, seed in enumerate(seeds):
                generator = torch.Generator().manual_seed(int(seed))
                for module in modules:
                    for name, init in module._inits.items():
                        weight = getattr(module, name)[k]
                        n_copies = module._copies[name]
                        for w in (weight.unbind(0) if n_copies else [weight]):
                            init(w, generator)
                    module._reset_buffers(k)

    def _reset_buffers(self, k):
        pass

    def weight_penalty(self, l2_kernel, l1_bias):
        """Keras-style penalty of this module's own parameters, per model: ``(K,)``.

        ``l2_kernel * sum(w ** 2)`` over kernels plus ``l1_bias * sum(|b|)`` over biases.
        """
        total = None
        for name, kind in self._kinds.items():
            p = getattr(self, name)
            flat = p.reshape(self.n_models, -1)
            if kind == "kernel" and l2_kernel:
                term = l2_kernel * flat.pow(2).sum(1)
            elif kind == "bias" and l1_bias:
                term = l1_bias * flat.abs().sum(1)
            else:
                continue
            total = term if total is None else total + term
        return total


class MaskedBatchNorm(KModule):
    """Batch normalisation over the real frames only, per model and feature.

    Statistics in training are the mean and (biased) variance over all real frames of
    the batch; padded frames neither enter them nor leave non-zero outputs. Running
    statistics use Keras' defaults (momentum 0.99, epsilon 1e-3) and are used in eval.

    Parameters
    ----------
    n_models : int
    n_features : int
    momentum : float, default=0.99
        Weight of the old running statistic (Keras convention).
    eps : float, default=1e-3
    """

    def __init__(self, n_models, n_features, momentum=0.99, eps=1e-3):
        super().__init__(n_models)
        self.momentum = momentum
        self.eps = eps
        self._param("gamma", (n_features,), _init_ones, None)
        self._param("beta", (n_features,), _init_zeros, None)
        self.register_buffer("running_mean", torch.zeros(n_models, n_features))
        self.register_buffer("running_var", torch.ones(n_models, n_features))

    def _reset_buffers(self, k):
        self.running_mean[k] = 0.0
        self.running_var[k] = 1.0

    def forward(self, x, mask, active=None):
        # x: (K, B, T, F); mask: (B, T)
        m = mask[None, :, :, None].to(x.dtype)
        if self.training:
            n = m.sum().clamp_min(1.0)
            mean = (x * m).sum(dim=(1, 2)) / n                       # (K, F)
            centred = x - mean[:, None, None, :]
            var = (centred * centred * m).sum(dim=(1, 2)) / n
            with torch.no_grad():
                if active is None:
                    self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mean)
                    self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var)
                else:
                    for running, new in ((self.running_mean, mean), (self.running_var, var)):
                        running.index_copy_(0, active, running[active]
                                            .mul_(self.momentum).add_((1 - self.momentum) * new))
        else:
            mean, var = self._w("running_mean", active), self._w("running_var", active)
            centred = x - mean[:, None, None, :]
        scale = self._w("gamma", active) * torch.rsqrt(var + self.eps)      # (K, F)
        out = (centred * scale[:, None, None, :]
               + self._w("beta", active)[:, None, None, :])
        return out * m


class BiLSTM(KModule):
    """Bidirectional LSTM whose two directions are summed (Keras ``merge_mode='sum'``).

    The backward direction reads each sequence from its last *real* step, so padding
    never reaches a real output in either direction.

    Parameters
    ----------
    n_models : int
    input_size : int
    hidden_size : int
    backend : {"auto", "compiled", "torch"}, default="auto"
        Compiled loops (numba, CPU) or torch operations with autograd; "auto" is the
        compiled loops where they can run (see `bilstm_recurrence`).

    Notes
    -----
    Input ``x`` is ``(B, T, F)`` (shared by all models) or ``(K, B, T, F)``; the output
    is ``(K, B, T, H)``. Kernels are L2-regularised, biases L1, recurrent kernels not
    (Keras' ``kernel_regularizer``/``bias_regularizer``).
    """

    def __init__(self, n_models, input_size, hidden_size, backend="auto"):
        super().__init__(n_models)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.backend = backend
        h = hidden_size
        self._param("kernel", (input_size, 4 * h), _init_glorot, "kernel", n_copies=2)
        self._param("recurrent_kernel", (h, 4 * h), _init_orthogonal, None, n_copies=2)
        self._param("bias", (4 * h,), self._init_bias, "bias", n_copies=2)

    def _init_bias(self, w, generator):
        # zeros, forget gate 1 (Keras unit_forget_bias); gate order (i, f, o, g)
        nn.init.zeros_(w)
        w[self.hidden_size:2 * self.hidden_size] = 1.0
        return w

    def forward(self, x, lengths, active=None):
        w = self._w("kernel", active)                                  # (K, 2, F, 4H)
        bias = self._w("bias", active)                                 # (K, 2, 4H)
        k, d, f, g = w.shape
        # the input projection is per frame, so both directions share x's time order
        if x.dim() == 3:
            # (B, T, F) shared by all models: a batched (B*T, F) x (F, 4H) product per
            # model and direction, with the bias, straight into the (K, 2, B, T, 4H)
            # layout the compiled loops read (a strided layout would make numba compile
            # loops that do not vectorise: 2-4x slower, measured)
            b, t_len = x.shape[:2]
            xw = torch.baddbmm(bias.reshape(k * d, 1, g),
                               x.reshape(1, b * t_len, f).expand(k * d, b * t_len, f),
                               w.reshape(k * d, f, g)).view(k, d, b, t_len, g)
        else:
            b, t_len = x.shape[1:3]
            xw = (torch.matmul(x.reshape(k, 1, b * t_len, f), w)
                  + bias[:, :, None, :]).view(k, d, b, t_len, g)
        hs = bilstm_recurrence(xw, self._w("recurrent_kernel", active), lengths,
                               backend=self.backend)
        return hs[:, 0] + hs[:, 1]


class TimeDense(KModule):
    """Per-frame dense layer (one weight matrix per model): (K, B, T, F) -> (K, B, T, O)."""

    def __init__(self, n_models, in_features, out_features):
        super().__init__(n_models)
        self._param("kernel", (in_features, out_features), _init_glorot, "kernel")
        self._param("bias", (out_features,), _init_zeros, "bias")

    def forward(self, x, active=None):
        return (torch.einsum("kbtf,kfo->kbto", x, self._w("kernel", active))
                + self._w("bias", active)[:, None, None, :])


def _window_offsets(window):
    mode, width = window
    if mode == "pa":
        return -(width - 1), 0
    start = -(width // 2)
    return start, start + width - 1


class IntraAttention(KModule):
    """Local additive self-attention with sigmoid scores (keras-self-attention).

    As ``SeqSelfAttention(attention_type='additive', attention_activation='sigmoid',
    attention_width=w, history_only=...)``:
    ``e_{t,t'} = W_a · tanh(x_t W_t + x_t' W_x + b_h) + b_a``,
    ``a_t = softmax_t'(sigmoid(e_{t,t'}))`` over the window, output ``sum_t' a_{t,t'} x_t'``.

    Windows: ``("bi", w)`` keeps ``t' in [t - w//2, t - w//2 + w - 1]``; ``("pa", w)``
    (history only) keeps ``t' in [t - w + 1, t]``. Scores are computed only inside the
    window (``(K, B, T, w, units)``), never for all T × T pairs.

    Deliberate difference from keras-self-attention: padded *keys* are masked, so a real
    frame never attends to padding (Keras only removes pairs where both are padded).
    Outputs and weights of padded query frames are zero.

    Parameters
    ----------
    n_models : int
    n_features : int
    window : tuple ("bi" | "pa", int)
    units : int, default=32
    regularizer_weight : float, default=1e-4
        Weight of ``sum((A A^T - I)^2) / batch_size`` over real frames, per model
        (`penalty`).
    backend : {"auto", "compiled", "torch"}, default="auto"
        Compiled loops (numba, CPU) or torch operations (`local_attention`).
    """

    def __init__(self, n_models, n_features, window=("bi", 15), units=32,
                 regularizer_weight=1e-4, backend="auto"):
        super().__init__(n_models)
        self.window = check_window(window)
        self.backend = backend
        self.units = units
        self.regularizer_weight = regularizer_weight
        self._param("w_t", (n_features, units), _init_glorot, "kernel")
        self._param("w_x", (n_features, units), _init_glorot, "kernel")
        self._param("b_h", (units,), _init_zeros, "bias")
        self._param("w_a", (units,), _init_glorot, "kernel")
        self._param("b_a", (1,), _init_zeros, "bias")

    def forward(self, x, lengths, active=None):
        k, b, t_len, f = x.shape
        lo, hi = _window_offsets(self.window)
        query = (torch.einsum("kbtf,kfu->kbtu", x, self._w("w_t", active))
                 + self._w("b_h", active)[:, None, None, :])
        key = torch.einsum("kbtf,kfu->kbtu", x, self._w("w_x", active))
        out, weights = local_attention(query, key, x, self._w("w_a", active),
                                       self._w("b_a", active),
                                       lengths, lo, hi - lo + 1, backend=self.backend)
        return out, weights

    def penalty(self, weights, lengths):
        """The regulariser of attention ``weights`` (`forward`'s second output): ``(K,)``.

        ``regularizer_weight * sum((A A^T - I)^2) / batch_size`` over real rows and
        columns (keras-self-attention's ``attention_regularizer_weight``).
        """
        lo, _ = _window_offsets(self.window)
        real = length_mask(lengths, weights.shape[2])
        return self.regularizer_weight * _banded_gram_penalty(weights, real, lo) / len(lengths)

    def dense_weights(self, weights):
        """`forward`'s banded weights ``(K, B, T, width)`` as ``(K, B, T, T)`` maps."""
        return banded_to_dense(weights, _window_offsets(self.window)[0])


def _banded_gram_penalty(weights, real, lo):
    """``sum((A A^T - I)^2)`` over real rows/columns, A given by its band ``(K,B,T,w)``.

    Rows of padded steps are zero, so ``||A A^T||^2 - 2 tr(A A^T) + n_real`` is the sum
    over real pairs only; one batched T x T product is cheaper than looping over the
    ``2w - 1`` diagonals.
    """
    dense = banded_to_dense(weights, lo)                                  # (K, B, T, T)
    gram = torch.matmul(dense, dense.transpose(-1, -2))
    trace = (weights * weights).sum(dim=(1, 2, 3))
    return (gram * gram).sum(dim=(1, 2, 3)) - 2 * trace + real.sum().to(weights.dtype)


def banded_to_dense(weights, lo):
    """Banded weights ``(K, B, T, w)`` (key offsets ``lo..lo+w-1``) to ``(K, B, T, T)``."""
    k, b, t_len, width = weights.shape
    # key t + lo + i goes to column t + lo + i, shifted by -lo so columns are >= 0;
    # differentiable (out-of-place scatter)
    cols = (torch.arange(t_len, device=weights.device)[:, None]
            + torch.arange(width, device=weights.device)[None, :])       # (T, w)
    dense = weights.new_zeros((k, b, t_len, t_len + width)).scatter(
        3, cols.expand(k, b, t_len, width), weights)
    return dense[..., -lo: -lo + t_len]


def check_window(window):
    """Validate an intra-attention window ``("bi" | "pa", width)``."""
    if (not isinstance(window, (tuple, list)) or len(window) != 2
            or window[0] not in ("bi", "pa") or isinstance(window[1], bool)
            or not isinstance(window[1], (int,)) or window[1] < 1):
        raise ValueError(f"intra-attention window must be ('bi', width) or ('pa', width) "
                         f"with an integer width >= 1, got {window!r}.")
    return (window[0], int(window[1]))


class AttentionDecoder(KModule):
    """GRU-like decoder fed back its own prediction, with optional inter-attention.

    Equations (5)-(10) of the paper (Bahdanau et al. 2014 attention):
    ``e_{j,t} = v^T tanh(W_a s_{j-1} + U_a h_t + b_a)``, ``alpha_j = softmax_t(e_j)`` over
    the real encoder steps, ``c_j = sum_t alpha_{j,t} h_t``;
    ``r_j, z_j = sigmoid(W ŷ_{j-1} + U s_{j-1} + C c_j + b)``,
    ``s~_j = tanh(W_p ŷ_{j-1} + U_p (r_j * s_{j-1}) + C_p c_j + b_p)``,
    ``s_j = (1 - z_j) s_{j-1} + z_j s~_j``,
    ``ŷ_j = sigmoid(W_o ŷ_{j-1} + U_o s_j + C_o c_j + b_o)``.
    ``ŷ_0 = 0`` and ``s_0 = tanh(h_1 W_s)`` (as in the Keras ``AttentionDecoder`` the
    paper builds on); the prediction is fed back in training and inference alike (no
    teacher forcing). Without attention (``attention=False``) the context is the
    aligned encoder output, ``c_j = h_j`` (equation 2, T_d = T_e).

    Parameters
    ----------
    n_models, input_size, hidden_size : int
    n_outputs : int, default=1
        Units of ŷ (targets per model).
    attention : bool, default=True
    aligned_input : bool, default=False
        With attention, also feed the aligned encoder output h_j to the gates and the
        output (``+ h_j X``); not in the paper's equations (an extension).
    attention_window : float or None, default=None
        With attention, a Gaussian location prior of standard deviation
        ``attention_window`` frames centred on the decoder step:
        ``e_{j,t} - (t - j)^2 / (2 sigma^2)`` before the softmax, i.e. the softmax
        weights are multiplied by the Gaussian and renormalised ("local-m" attention of
        Luong et al., 2015, for T_d = T_e). None is the paper's free attention, whose
        query ``s_{j-1} W_a`` carries no notion of which step it decodes.
    backend : {"auto", "compiled", "torch"}, default="auto"
        Compiled loops (numba, CPU) or torch operations with autograd
        (`attention_decoder`).

    Notes
    -----
    The keys ``U_a h + b_a`` are computed once per sequence. L2 applies to the
    attention kernels (W_s, W_a, U_a, v), L1 to all biases; the gate, proposal and
    output matrices are recurrent weights and not regularised, as in the Keras layer.
    """

    def __init__(self, n_models, input_size, hidden_size, n_outputs=1, attention=True,
                 aligned_input=False, attention_window=None, backend="auto"):
        super().__init__(n_models)
        if attention_window is not None and (isinstance(attention_window, bool)
                                             or not float(attention_window) > 0):
            raise ValueError(f"module attention_window must be None or a positive number "
                             f"of frames, got {attention_window!r}.")
        self.attention_window = (None if attention_window is None or not attention
                                 else float(attention_window))
        self.hidden_size = hidden_size
        self.n_outputs = n_outputs
        self.attention = attention
        self.aligned_input = bool(aligned_input) and attention
        self.backend = backend
        h, o = hidden_size, n_outputs
        g = 3 * h + o
        self._param("w_s", (input_size, h), _init_glorot, "kernel")
        if attention:
            self._param("u_a", (input_size, h), _init_glorot, "kernel")
            self._param("b_a", (h,), _init_zeros, "bias")
            self._param("w_a", (h, h), _init_glorot, "kernel")
            self._param("v_a", (h,), _init_glorot, "kernel")
        self._param("w_c", (input_size, g), _init_glorot, None)
        self._param("b_c", (g,), _init_zeros, "bias")
        if self.aligned_input:
            self._param("w_x", (input_size, g), _init_glorot, None)
        self._param("w_y", (o, g), _init_glorot, None)
        self._param("u_rz", (h, 2 * h), _init_orthogonal, None)
        self._param("u_p", (h, h), _init_orthogonal, None)
        self._param("u_o", (h, o), _init_glorot, None)

    def location_prior(self, t_len, like):
        """The Gaussian log-prior ``(T, T)`` on the attention scores, or None."""
        if self.attention_window is None:
            return None
        steps = torch.arange(t_len, device=like.device, dtype=like.dtype)
        offset = steps[None, :] - steps[:, None]                   # t - j
        return offset.pow(2).mul_(-0.5 / self.attention_window ** 2)

    def forward(self, h, lengths, active=None):
        """Decode ``h`` (K, B, T, E) of the ``active`` models (None: all).

        Returns logits (K, B, T, O), states (K, B, T, H) and the attention weights
        (K, B, T, T), empty without inter-attention.
        """
        mask = length_mask(lengths, h.shape[2])

        def w(name):
            return self._w(name, active)
        s0 = torch.tanh(torch.bmm(h[:, :, 0], w("w_s")))
        common = (s0, w("w_y"), w("u_rz"), w("u_p"), w("u_o"), mask)
        if self.attention:
            keys = torch.einsum("kbte,kea->kbta", h, w("u_a")) + w("b_a")[:, None, None, :]
            b_c = w("b_c")
            aligned = None
            if self.aligned_input:
                aligned = (torch.einsum("kbte,keg->kbtg", h, w("w_x"))
                           + b_c[:, None, None, :])
            logits, states, alpha = attention_decoder(
                *common, enc=h, keys=keys, w_a=w("w_a"), v_a=w("v_a"), w_c=w("w_c"),
                b_c=None if self.aligned_input else b_c, ctx_all=aligned,
                prior=self.location_prior(h.shape[2], h), backend=self.backend)
        else:
            ctx_all = (torch.einsum("kbte,keg->kbtg", h, w("w_c"))
                       + w("b_c")[:, None, None, :])
            logits, states, alpha = attention_decoder(*common, ctx_all=ctx_all,
                                                      backend=self.backend)
        return logits, states, alpha


_MOVED_TO_ENCODERS = {"ENCODERS", "TemporalConvEncoder", "TransformerEncoderLayer",
                      "check_encoder", "sinusoidal_positions"}


def __getattr__(name):
    # the encoders beyond the paper live in .encoders; their old import path still works
    if name in _MOVED_TO_ENCODERS:
        from . import encoders
        return getattr(encoders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
