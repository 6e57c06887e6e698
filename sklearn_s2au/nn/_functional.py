"""The recurrences and attentions as functions, on two backends.

``backend="compiled"`` runs the loops of `_kernels` (numba, CPU, float32/float64; see
`_ops` for the typed boundary and the threads); ``backend="torch"`` runs plain torch
operations with autograd, which are the specification the compiled loops are tested
against, the fallback, and the GPU path. ``"auto"`` (the default) is the compiled loops
where they can run and torch elsewhere (`_ops.resolve_backend`).

Shapes: ``K`` independent models, batch ``B``, time ``T``, hidden ``H``; everything is
batched over the leading model dimension.
"""

import torch

from . import _ops
from ._ops import resolve_backend

__all__ = ["bilstm_recurrence", "local_attention", "attention_decoder",
           "lstm_recurrence_reference"]


def _compiled(backend, tensor):
    return resolve_backend(backend, tensor.device, tensor.dtype) == "compiled"


# --------------------------------------------------------------------------------------
# LSTM recurrence
# --------------------------------------------------------------------------------------

def lstm_recurrence_reference(xw, w_hh):
    """``h_t`` of N independent LSTMs given their input projections (plain autograd).

    ``xw`` (N, B, T, 4H) holds ``x_t W_ih + b`` for every step, gate order (input,
    forget, output, cell); ``w_hh`` (N, H, 4H). Returns the hidden states (N, B, T, H);
    the initial state is zero.
    """
    n, b, t_len, four_h = xw.shape
    h_size = four_h // 4
    h = xw.new_zeros((n, b, h_size))
    c = xw.new_zeros((n, b, h_size))
    out = []
    for t in range(t_len):
        gates = xw[:, :, t] + torch.bmm(h, w_hh)
        i, f, o = torch.sigmoid(gates[..., :3 * h_size]).split(h_size, dim=-1)
        g = torch.tanh(gates[..., 3 * h_size:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=2)


def _reverse_within_lengths(x, lengths, time_dim):
    t_len = x.shape[time_dim]
    steps = torch.arange(t_len, device=lengths.device)[None, :]
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    shape = [1] * x.dim()
    shape[time_dim - 1], shape[time_dim] = index.shape
    return torch.gather(x, time_dim, index.view(shape).expand_as(x))


def bilstm_recurrence(xw, w_hh, lengths, backend="auto"):
    """Forward and backward LSTMs of K models given their input projections.

    Parameters
    ----------
    xw : Tensor (K, 2, B, T, 4H)
        ``x_t W_ih + b`` of the forward (index 0) and backward (index 1) direction, in
        the original time order; gate order (input, forget, output, cell).
    w_hh : Tensor (K, 2, H, 4H)
    lengths : int Tensor (B,)
        Real steps; the backward direction starts at each sequence's last real step.
    backend : {"auto", "compiled", "torch"}, default="auto"
        The compiled loops or torch operations with autograd (see the module).

    Returns
    -------
    hs : Tensor (K, 2, B, T, H)
        Hidden states of both directions in the original time order. Steps after a
        sequence's end are zero (compiled loops) or unspecified (torch).
    """
    if _compiled(backend, xw):
        return _ops.bilstm(xw, w_hh, lengths)
    k, d, b, t_len, four_h = xw.shape
    h_size = four_h // 4
    xw = torch.stack([xw[:, 0], _reverse_within_lengths(xw[:, 1], lengths, 2)], dim=1)
    hs = lstm_recurrence_reference(xw.reshape(k * d, b, t_len, four_h),
                                   w_hh.reshape(k * d, h_size, four_h))
    hs = hs.reshape(k, d, b, t_len, h_size)
    return torch.stack([hs[:, 0], _reverse_within_lengths(hs[:, 1], lengths, 2)], dim=1)


# --------------------------------------------------------------------------------------
# Local additive intra-attention
# --------------------------------------------------------------------------------------

def _unfold_window(x, lo, hi):
    # (K, B, T, D) -> (K, B, T, D, w): the window of each step, zero beyond the ends
    padded = torch.nn.functional.pad(x, (0, 0, -lo, hi))
    return padded.unfold(2, hi - lo + 1, 1)


def local_attention(query, key, x, w_a, b_a, lengths, lo, width, backend="auto"):
    """Windowed additive attention with sigmoid scores, keys masked beyond each length.

    Parameters
    ----------
    query : Tensor (K, B, T, U)
        ``x_t W_t + b_h``.
    key : Tensor (K, B, T, U)
        ``x_t W_x``.
    x : Tensor (K, B, T, F)
        The values.
    w_a, b_a : Tensor (K, U), (K, 1)
    lengths : int Tensor (B,)
    lo, width : int
        Keys of step t are ``t + lo .. t + lo + width - 1``.
    backend : {"auto", "compiled", "torch"}, default="auto"
        The compiled loops (no ``(K, B, T, width, U)`` tensor is stored) or torch
        operations with autograd.

    Returns
    -------
    out : Tensor (K, B, T, F)
        ``sum_i a_{t,i} x_{t+lo+i}``; zero on padded steps.
    weights : Tensor (K, B, T, width)
        ``a_t = softmax_i(sigmoid(e_{t,i}))`` over the valid keys; zero elsewhere and on
        padded steps.
    """
    if _compiled(backend, x):
        return _ops.intra_attention(query, key, x, w_a, b_a, lengths, lo, width)
    t_len = x.shape[2]
    hi = lo + width - 1
    steps = torch.arange(t_len, device=x.device)
    keys_at = steps[:, None] + torch.arange(lo, hi + 1, device=x.device)[None, :]
    real = steps[None, :] < lengths[:, None]                                 # (B, T)
    valid = ((keys_at[None] >= 0) & (keys_at[None] < lengths[:, None, None])
             & real[:, :, None])                                             # (B, T, w)
    # tanh(u) = 2 sigmoid(2u) - 1 (CPU sigmoid is several times faster than tanh):
    # e = w_a . tanh(u) + b_a = 2 w_a . sigmoid(2u) + b_a - sum(w_a), exactly
    key_win = _unfold_window(2 * key, lo, hi)                                # (K,B,T,U,w)
    hidden = torch.sigmoid((2 * query).unsqueeze(-1) + key_win)
    bias = b_a - w_a.sum(1, keepdim=True)                                    # (K, 1)
    e = torch.einsum("kbtuw,ku->kbtw", hidden, 2 * w_a) + bias[:, None, None, :]
    # softmax over the window of sigmoid(e) in (0, 1): no overflow, no max needed
    weights = torch.exp(torch.sigmoid(e)) * valid
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)
    out = torch.einsum("kbtw,kbtfw->kbtf", weights, _unfold_window(x, lo, hi))
    return out, weights


# --------------------------------------------------------------------------------------
# GRU-like decoder with (optional) additive inter-attention, equations (5)-(10)
# --------------------------------------------------------------------------------------

def attention_decoder(s0, w_y, u_rz, u_p, u_o, key_mask, *, enc=None, keys=None, w_a=None,
                      v_a=None, w_c=None, b_c=None, ctx_all=None, prior=None, backend="auto"):
    """The decoder of equations (8)-(10), fed back its own prediction, for K models.

    Parameters
    ----------
    s0 : Tensor (K, B, H)
        Initial decoder state.
    w_y : Tensor (K, O, 3H + O)
        Weights of the previous prediction ŷ_{j-1} into (reset, update, proposal, output).
    u_rz, u_p, u_o : Tensor (K, H, 2H), (K, H, H), (K, H, O)
        Recurrent weights of the gates, the proposal and the output.
    key_mask : bool Tensor (B, T)
        True on real encoder steps; attention never reaches padded steps.
    enc, keys : Tensor (K, B, T, E), (K, B, T, A)
        Attention mode: encoder outputs and their precomputed keys ``h U_a + b_a``.
    w_a, v_a : Tensor (K, H, A), (K, A)
        Attention query weights and scoring vector.
    w_c, b_c : Tensor (K, E, 3H + O), (K, 3H + O)
        Context weights (C_r, C_z, C_p, C_o) and the gate biases.
    ctx_all : Tensor (K, B, T, 3H + O)
        Aligned input ``h_j X (+ b)`` of every step, precomputed: the whole context in
        aligned mode (no attention), an extra input to the gates in attention mode.
    prior : Tensor (T, T) or None
        Attention mode: a fixed log-prior added to the scores, ``e_{j,t} + prior[j, t]``
        before the softmax (location-aware attention, see ``AttentionDecoder``); it is
        a constant (no gradient).
    backend : {"auto", "compiled", "torch"}, default="auto"
        The compiled loops (`_ops.decoder`: no per-step tensors kept, the attention's
        tanh recomputed in backward) or torch operations with autograd. The compiled
        loops leave the outputs of steps after a sequence's end at zero; torch computes
        them (they never influence real steps).

    Returns
    -------
    logits : Tensor (K, B, T, O)
        Pre-sigmoid outputs of equation (10).
    states : Tensor (K, B, T, H)
        Decoder states s_j.
    alpha : Tensor (K, B, T_dec, T_enc) or empty
        Attention weights (rows sum to 1 over real encoder steps).
    """
    if prior is not None:
        prior = prior.detach().to(s0.dtype)
    if _compiled(backend, s0):
        return _ops.decoder(s0, w_y, u_rz, u_p, u_o, key_mask, enc=enc, keys=keys, w_a=w_a,
                            v_a=v_a, w_c=w_c, b_c=b_c, ctx_all=ctx_all, prior=prior)
    return _decoder_reference(s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior,
                              w_y, u_rz, u_p, u_o)


def _decoder_reference(s, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y, u_rz,
                       u_p, u_o):
    """Plain-autograd decoder: the specification the compiled loops are tested against."""
    k, b, h_size = s.shape
    n_out = w_y.shape[1]
    attend = enc is not None
    t_len = key_mask.shape[1]
    y = s.new_zeros((k, b, n_out))
    logits, states, alphas = [], [], []
    for j in range(t_len):
        if attend:
            q = torch.einsum("kbh,kha->kba", s, w_a)
            e = torch.einsum("kbta,ka->kbt", torch.tanh(keys + q.unsqueeze(2)), v_a)
            if prior is not None:
                e = e + prior[j, :e.shape[-1]]
            alpha = torch.softmax(e.masked_fill(~key_mask, float("-inf")), dim=-1)
            c = torch.einsum("kbt,kbte->kbe", alpha, enc)
            pre = torch.einsum("kbe,keg->kbg", c, w_c)
            pre = pre + (b_c.unsqueeze(1) if ctx_all is None else ctx_all[:, :, j])
            alphas.append(alpha)
        else:
            pre = ctx_all[:, :, j]
        pre = pre + torch.bmm(y, w_y)
        r, z = torch.sigmoid(pre[..., :2 * h_size] + torch.bmm(s, u_rz)).split(h_size, -1)
        p = torch.tanh(pre[..., 2 * h_size:3 * h_size] + torch.bmm(r * s, u_p))
        s = (1 - z) * s + z * p
        logit = pre[..., 3 * h_size:] + torch.bmm(s, u_o)
        y = torch.sigmoid(logit)
        logits.append(logit)
        states.append(s)
    alpha = torch.stack(alphas, dim=2) if attend else s.new_zeros(0)
    return torch.stack(logits, dim=2), torch.stack(states, dim=2), alpha
