"""Encoders beyond the paper: a masked Transformer layer and dilated temporal convolutions.

Both are `~sklearn_s2au.nn.layers.KModule` layers batched over ``n_models`` models, take
``(B, T, F)`` (shared) or ``(K, B, T, F)`` inputs with ``lengths`` and return
``(K, B, T, H)``; padded steps never reach a real output. ``module__encoder`` selects
them in both network families (`~sklearn_s2au.nn.StackedNet`,
`~sklearn_s2au.nn.EncoderDecoderNet`).
"""

import math

import torch
from torch import nn

from .layers import KModule, _init_glorot, _init_ones, _init_zeros, length_mask

__all__ = ["TransformerEncoderLayer", "TemporalConvEncoder", "ENCODERS", "check_encoder",
           "sinusoidal_positions"]


def sinusoidal_positions(t_len, size, like):
    """Sinusoidal positional encoding ``(T, size)`` (Vaswani et al., 2017).

    Column ``2i`` is ``sin(t / 10000^(2i / size))``, column ``2i + 1`` the cosine, for
    frame ``t`` of the chunk. Computed on the fly (not a buffer), so that every state
    tensor of a network keeps its leading model axis.
    """
    steps = torch.arange(t_len, device=like.device, dtype=like.dtype)[:, None]
    pairs = torch.arange(0, size, 2, device=like.device, dtype=like.dtype)
    angles = steps * torch.exp(pairs * (-math.log(10000.0) / size))
    out = like.new_zeros((t_len, size))
    out[:, 0::2] = torch.sin(angles)
    out[:, 1::2] = torch.cos(angles[:, : size // 2])
    return out


def _layer_norm(h, gamma, beta, eps=1e-5):
    """Layer normalisation per frame and model: h (K, B, T, H), gamma/beta (K, H)."""
    mean = h.mean(-1, keepdim=True)
    var = (h - mean).pow(2).mean(-1, keepdim=True)
    return (h - mean) * torch.rsqrt(var + eps) * gamma[:, None, None, :] + beta[:, None, None, :]


def _dense(x, w, b=None):
    """Per-frame dense layer of every model: x (K, B, T, F) or shared (B, T, F)."""
    out = (torch.einsum("btf,kfo->kbto", x, w) if x.dim() == 3
           else torch.einsum("kbtf,kfo->kbto", x, w))
    return out if b is None else out + b[:, None, None, :]


class TransformerEncoderLayer(KModule):
    """Masked Transformer encoder layer (pre-norm), batched over ``n_models`` models.

    ``h = x W_in + PE`` (input projection and sinusoidal positional encoding, when
    ``input_size != hidden_size`` or ``positional``), then
    ``h = h + MHA(LN(h))`` and ``h = h + FFN(LN(h))`` with multi-head scaled dot-product
    self-attention over the **real frames only** (padded keys are masked out) and a
    two-layer ReLU feed-forward network. Padded frames are set to zero on the way in and
    on the way out, so no padded value ever reaches a real frame, and a chunk's real
    outputs do not depend on how much padding follows it.

    Parameters
    ----------
    n_models : int
    input_size : int
    hidden_size : int
        Model width; a multiple of ``n_heads``.
    n_heads : int, default=4
    ff_size : int or None, default=None
        Units of the feed-forward layer (default ``2 * hidden_size``).
    positional : bool, default=True
        Add the sinusoidal positional encoding (`sinusoidal_positions`) to the projected
        input (the first layer of an encoder; later layers already carry it).

    Notes
    -----
    Input ``x`` is ``(B, T, F)`` (shared by all models) or ``(K, B, T, F)``; the output
    is ``(K, B, T, H)``. Kernels are L2-regularised, biases L1, layer-norm scales not.

    References
    ----------
    A. Vaswani et al., "Attention is all you need", NeurIPS 2017.
    """

    def __init__(self, n_models, input_size, hidden_size, n_heads=4, ff_size=None,
                 positional=True):
        super().__init__(n_models)
        if (isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1
                or hidden_size % n_heads):
            raise ValueError(f"module n_heads must be a positive integer dividing "
                             f"hidden_size={hidden_size}, got {n_heads!r}; choose e.g. "
                             f"n_heads=1 or a hidden_size that is a multiple of it.")
        h = hidden_size
        ff = 2 * h if ff_size is None else int(ff_size)
        self.input_size = input_size
        self.hidden_size = h
        self.n_heads = n_heads
        self.positional = bool(positional)
        self.project = input_size != h
        if self.project:
            self._param("w_in", (input_size, h), _init_glorot, "kernel")
            self._param("b_in", (h,), _init_zeros, "bias")
        self._param("ln1_gamma", (h,), _init_ones, None)
        self._param("ln1_beta", (h,), _init_zeros, None)
        self._param("w_qkv", (h, 3 * h), _init_glorot, "kernel")
        self._param("b_qkv", (3 * h,), _init_zeros, "bias")
        self._param("w_o", (h, h), _init_glorot, "kernel")
        self._param("b_o", (h,), _init_zeros, "bias")
        self._param("ln2_gamma", (h,), _init_ones, None)
        self._param("ln2_beta", (h,), _init_zeros, None)
        self._param("w_ff1", (h, ff), _init_glorot, "kernel")
        self._param("b_ff1", (ff,), _init_zeros, "bias")
        self._param("w_ff2", (ff, h), _init_glorot, "kernel")
        self._param("b_ff2", (h,), _init_zeros, "bias")

    def forward(self, x, lengths, active=None):
        def w(name):
            return self._w(name, active)

        t_len = x.shape[-2]
        real = length_mask(lengths, t_len)                                 # (B, T)
        m = real[:, :, None].to(x.dtype)
        x = x * (m if x.dim() == 3 else m[None])
        if self.project:
            h = _dense(x, w("w_in"), w("b_in"))
        else:
            h = x if x.dim() == 4 else x.expand(w("w_o").shape[0], *x.shape)
        if self.positional:
            h = h + sinusoidal_positions(t_len, self.hidden_size, h)
        h = h * m[None]
        k, b = h.shape[:2]
        nh, dh = self.n_heads, self.hidden_size // self.n_heads
        qkv = _dense(_layer_norm(h, w("ln1_gamma"), w("ln1_beta")), w("w_qkv"), w("b_qkv"))
        # (K, B, T, 3, nh, dh) -> three (K, B, nh, T, dh)
        q, key, v = qkv.view(k, b, t_len, 3, nh, dh).permute(3, 0, 1, 4, 2, 5).unbind(0)
        attn = nn.functional.scaled_dot_product_attention(
            q, key, v, attn_mask=real[None, :, None, None, :])
        h = h + _dense(attn.permute(0, 1, 3, 2, 4).reshape(k, b, t_len, -1), w("w_o"),
                       w("b_o"))
        ff = torch.relu(_dense(_layer_norm(h, w("ln2_gamma"), w("ln2_beta")), w("w_ff1"),
                               w("b_ff1")))
        h = h + _dense(ff, w("w_ff2"), w("b_ff2"))
        # contiguous: dropout then draws its mask in the same order as for a BiLSTM's
        # output, whichever models run
        return (h * m[None]).contiguous()


def _init_conv_glorot(w, generator):
    # Keras glorot_uniform of a Conv1D kernel stored (in, taps, out): the fans count taps
    fan_in, fan_out = w.shape[0] * w.shape[1], w.shape[1] * w.shape[2]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return nn.init.uniform_(w, -bound, bound, generator=generator)


class TemporalConvEncoder(KModule):
    """Dilated temporal convolutions with residual connections, masked, per model.

    ``levels`` convolutions of width ``kernel_size`` with dilations 1, 2, 4, ... (a
    temporal convolutional network, Bai et al. 2018):
    ``h_i = h_{i-1} + ReLU(conv_{2^i}(h_{i-1}) + b_i)``, the first level projecting the
    input to ``hidden_size`` (and its residual through a 1×1 convolution). The
    receptive field is ``1 + (kernel_size - 1) (2^levels - 1)`` frames: centred on the
    frame (``causal=False``, the default: the face may follow or lead the voice) or
    ending at it (``causal=True``). Padded frames are set to zero before every
    convolution, so a real frame near the end of its chunk sees zeros beyond the
    chunk's end whatever the padding holds, and the outputs on real frames do not depend
    on the amount of padding.

    Parameters
    ----------
    n_models : int
    input_size : int
    hidden_size : int
    kernel_size : int, default=3
    levels : int, default=3
    causal : bool, default=False

    Notes
    -----
    Input ``x`` is ``(B, T, F)`` (shared by all models) or ``(K, B, T, F)``; the output
    is ``(K, B, T, H)``. The K models are one grouped convolution (``groups=K``).
    Kernels are L2-regularised, biases L1.

    References
    ----------
    S. Bai, J. Z. Kolter and V. Koltun, "An empirical evaluation of generic
    convolutional and recurrent networks for sequence modeling", arXiv:1803.01271, 2018.
    """

    def __init__(self, n_models, input_size, hidden_size, kernel_size=3, levels=3,
                 causal=False):
        super().__init__(n_models)
        for name, value in (("tcn_kernel_size", kernel_size), ("tcn_levels", levels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"module {name} must be a positive integer, got "
                                 f"{value!r}.")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.kernel_size = kernel_size
        self.levels = levels
        self.causal = bool(causal)
        h = hidden_size
        for i in range(levels):
            self._param(f"kernel_{i}", (input_size if i == 0 else h, kernel_size, h),
                        _init_conv_glorot, "kernel")
            self._param(f"bias_{i}", (h,), _init_zeros, "bias")
        self.project = input_size != h
        if self.project:
            self._param("res_kernel", (input_size, h), _init_glorot, "kernel")

    def receptive_field(self):
        """Frames that reach one output frame (past and future together)."""
        return 1 + (self.kernel_size - 1) * (2 ** self.levels - 1)

    def _conv(self, h, kernel, bias, dilation):
        """Dilated conv of every model: h (K, B, T, C) or shared (B, T, C)."""
        k, c_in, taps, c_out = kernel.shape
        total = dilation * (taps - 1)
        left = total if self.causal else total // 2
        if h.dim() == 3:           # shared input: one ordinary conv to K * c_out channels
            b, t_len = h.shape[:2]
            inp = h.transpose(1, 2)                                         # (B, C, T)
            weight = kernel.permute(0, 3, 1, 2).reshape(k * c_out, c_in, taps)
            groups = 1
        else:
            b, t_len = h.shape[1:3]
            inp = h.permute(1, 0, 3, 2).reshape(b, k * c_in, t_len)        # (B, K*C, T)
            weight = kernel.permute(0, 3, 1, 2).reshape(k * c_out, c_in, taps)
            groups = k
        inp = nn.functional.pad(inp, (left, total - left))
        out = nn.functional.conv1d(inp, weight, bias.reshape(-1), dilation=dilation,
                                   groups=groups)
        return out.view(b, k, c_out, t_len).permute(1, 0, 3, 2)             # (K, B, T, C)

    def forward(self, x, lengths, active=None):
        def w(name):
            return self._w(name, active)

        real = length_mask(lengths, x.shape[-2])
        m = real[:, :, None].to(x.dtype)
        h = x * (m if x.dim() == 3 else m[None])
        for i in range(self.levels):
            out = torch.relu(self._conv(h, w(f"kernel_{i}"), w(f"bias_{i}"), 2 ** i))
            if i == 0:
                residual = (_dense(h, w("res_kernel")) if self.project
                            else h if h.dim() == 4 else h.expand(out.shape[0], *h.shape))
            else:
                residual = h
            h = (residual + out) * m[None]
        return h.contiguous()        # see TransformerEncoderLayer.forward


ENCODERS = ("lstm", "transformer", "tcn")


def check_encoder(encoder):
    """Validate an encoder name: one of `ENCODERS`."""
    if not isinstance(encoder, str) or encoder not in ENCODERS:
        raise ValueError(f"module encoder must be one of {list(ENCODERS)}, got "
                         f"{encoder!r}.")
    return encoder
