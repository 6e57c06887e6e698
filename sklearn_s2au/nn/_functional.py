"""Hand-written backward passes for the two recurrences that dominate training time.

Both recurrences run a Python loop over time steps. Under plain autograd every step
records a dozen graph nodes and keeps its intermediate tensors alive until backward; the
decoder's additive attention keeps a ``(K, B, T, A)`` tanh per step, i.e. ``T`` times
that for a sequence. The functions below run the forward loop without autograd, store
only what the backward loop needs (gate activations, attention weights), and recompute
the attention tanh in backward instead of storing it. Per step the backward loop does a
handful of fused ``bmm``/``addcmul`` calls, and every weight gradient is one batched
matrix product after the loop instead of one per step.

Shapes: ``N`` independent recurrences (models × directions), batch ``B``, time ``T``,
hidden ``H``. Everything is batched with ``torch.bmm`` over the leading model dimension.
"""

import ctypes

import torch
from torch.autograd.function import once_differentiable

from . import _ckernels

__all__ = ["lstm_recurrence", "bilstm_recurrence", "local_attention", "attention_decoder"]


# --------------------------------------------------------------------------------------
# LSTM recurrence
# --------------------------------------------------------------------------------------

class _LSTMRecurrence(torch.autograd.Function):
    """``h_t`` of N independent LSTMs given their input projections.

    Gate order inside the 4H axis is (input, forget, output, cell) so that the three
    sigmoid gates are one contiguous slice.
    """

    @staticmethod
    def forward(ctx, xw, w_hh):
        # xw: (N, B, T, 4H) input projections incl. bias; w_hh: (N, H, 4H)
        n, b, t_len, four_h = xw.shape
        h_size = four_h // 4
        xw_t = xw.permute(2, 0, 1, 3).contiguous()          # (T, N, B, 4H)
        acts = torch.empty_like(xw_t)                        # gate activations
        cells = xw.new_empty((t_len, n, b, h_size))
        tanh_cells = torch.empty_like(cells)
        hs = torch.empty_like(cells)
        h = xw.new_zeros((n, b, h_size))
        c = xw.new_zeros((n, b, h_size))
        three_h = 3 * h_size
        for t in range(t_len):
            gates = torch.baddbmm(xw_t[t], h, w_hh, out=acts[t])
            gates[..., :three_h].sigmoid_()
            gates[..., three_h:].tanh_()
            i, f, o, g = gates.split(h_size, dim=-1)
            c = torch.mul(f, c, out=cells[t]).addcmul_(i, g)
            torch.tanh(c, out=tanh_cells[t])
            h = torch.mul(o, tanh_cells[t], out=hs[t])
        ctx.save_for_backward(w_hh, acts, cells, tanh_cells, hs)
        return hs.permute(1, 2, 0, 3)                        # (N, B, T, H) view

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):
        w_hh, acts, cells, tanh_cells, hs = ctx.saved_tensors
        t_len, n, b, h_size = hs.shape
        grad_hs = grad_hs.permute(2, 0, 1, 3).contiguous()  # (T, N, B, H)
        i, f, o, g = acts.split(h_size, dim=-1)
        c_prev = torch.cat([cells.new_zeros((1, n, b, h_size)), cells[:-1]])
        # d c_t / d h_t and the per-gate factors, for all steps at once
        dc_from_dh = o * (1 - tanh_cells * tanh_cells)
        coef = torch.cat([g * i * (1 - i), c_prev * f * (1 - f),
                          tanh_cells * o * (1 - o), i * (1 - g * g)], dim=-1)
        w_hh_t = w_hh.transpose(1, 2)
        d_gates = torch.empty_like(acts)                     # (T, N, B, 4H)
        dc_next = hs.new_zeros((n, b, h_size))
        dh = grad_hs[t_len - 1]
        for t in range(t_len - 1, -1, -1):
            dc = torch.addcmul(dc_next, dh, dc_from_dh[t])
            torch.mul(torch.cat([dc, dc, dh, dc], dim=-1), coef[t], out=d_gates[t])
            if t > 0:
                dh = torch.baddbmm(grad_hs[t - 1], d_gates[t], w_hh_t)
                dc_next = dc * f[t]
        h_prev = torch.cat([hs.new_zeros((1, n, b, h_size)), hs[:-1]])
        # dW_hh = sum_t h_{t-1}^T dgates_t, as one batched product over (T*B)
        d_w_hh = torch.bmm(h_prev.permute(1, 3, 0, 2).reshape(n, h_size, t_len * b),
                           d_gates.permute(1, 0, 2, 3).reshape(n, t_len * b, 4 * h_size))
        return d_gates.permute(1, 2, 0, 3), d_w_hh


def lstm_recurrence(xw, w_hh):
    """Run N LSTMs over time given input projections, with a hand-written backward.

    Parameters
    ----------
    xw : Tensor of shape (N, B, T, 4H)
        ``x_t W_ih + b`` for every step, gate order (input, forget, output, cell).
    w_hh : Tensor of shape (N, H, 4H)
        Recurrent kernels.

    Returns
    -------
    hs : Tensor of shape (N, B, T, H)
        Hidden states; the initial state is zero.
    """
    return _LSTMRecurrence.apply(xw, w_hh)


def lstm_recurrence_reference(xw, w_hh):
    """Same as `lstm_recurrence` with plain autograd (for tests and double backward)."""
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


class _CompiledLSTM(torch.autograd.Function):
    """Bidirectional LSTM loops in C (`_ckernels`); padded steps stay zero."""

    @staticmethod
    def forward(ctx, xw, w_hh, lengths):
        lib = _ckernels.load()
        k, d, b, t_len, four_h = xw.shape
        h_size = four_h // 4
        if not _lstm_layout_ok(xw):
            xw = xw.contiguous()
        w_hh = w_hh.contiguous()
        lengths = lengths.to(torch.int64).contiguous()
        acts = xw.new_empty(xw.shape)                    # read at real steps only
        cells = xw.new_empty((k, d, b, t_len, h_size))
        hs = xw.new_zeros((k, d, b, t_len, h_size))
        dims = [ctypes.c_int64(v) for v in (k * d, d, b, t_len, h_size)]
        fn = lib.lstm_forward_f32 if xw.dtype == torch.float32 else lib.lstm_forward_f64
        fn(*dims, *_lstm_strides(xw), _ptr(lengths), _ptr(xw), _ptr(w_hh), _ptr(acts),
           _ptr(cells), _ptr(hs))
        ctx.xw_layout = (xw.shape, xw.stride())
        ctx.save_for_backward(lengths, w_hh, acts, cells, hs)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):
        lib = _ckernels.load()
        lengths, w_hh, acts, cells, hs = ctx.saved_tensors
        k, d, b, t_len, h_size = hs.shape
        # the gradient in the layout of xw: a projection computed as one (B*T, F) x
        # (F, K*2*4H) product takes it back without a copy
        d_xw = acts.new_empty_strided(*ctx.xw_layout).zero_()
        d_w_hh = torch.zeros_like(w_hh)
        dims = [ctypes.c_int64(v) for v in (k * d, d, b, t_len, h_size)]
        fn = lib.lstm_backward_f32 if hs.dtype == torch.float32 else lib.lstm_backward_f64
        fn(*dims, *_lstm_strides(d_xw), _ptr(lengths), _ptr(w_hh), _ptr(acts), _ptr(cells),
           _ptr(hs), _ptr(grad_hs.contiguous()), _ptr(d_xw), _ptr(d_w_hh))
        return d_xw, d_w_hh, None


def _lstm_layout_ok(xw):
    """Whether the C loops can read ``xw`` (K, 2, B, T, 4H) in place: gates contiguous,
    (K, 2) one model axis, dense without overlap (e.g. (K,2,B,T,4H) or (B,T,K,2,4H))."""
    k, d = xw.shape[:2]
    s_k, s_d = xw.stride()[:2]
    if xw.stride(-1) != 1 or not (k == 1 or d == 1 or s_k == d * s_d):
        return False
    # dense and non-overlapping: sorted strides are the running sizes
    expected = 1
    for stride, size in sorted((st, n) for st, n in zip(xw.stride(), xw.shape) if n > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _lstm_strides(xw):
    """Element strides (model-direction n, batch b, time t) of ``xw`` for the C loops."""
    s_n = xw.stride(1) if xw.shape[1] > 1 else xw.stride(0)
    return [ctypes.c_int64(v) for v in (s_n, xw.stride(2), xw.stride(3))]


def _reverse_within_lengths(x, lengths, time_dim):
    t_len = x.shape[time_dim]
    steps = torch.arange(t_len, device=lengths.device)[None, :]
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    shape = [1] * x.dim()
    shape[time_dim - 1], shape[time_dim] = index.shape
    return torch.gather(x, time_dim, index.view(shape).expand_as(x))


def bilstm_recurrence(xw, w_hh, lengths, fused=True):
    """Forward and backward LSTMs of K models given their input projections.

    Parameters
    ----------
    xw : Tensor (K, 2, B, T, 4H)
        ``x_t W_ih + b`` of the forward (index 0) and backward (index 1) direction, in
        the original time order; gate order (input, forget, output, cell).
    w_hh : Tensor (K, 2, H, 4H)
    lengths : int Tensor (B,)
        Real steps; the backward direction starts at each sequence's last real step.
    fused : bool, default=True
        Compiled loops when available, else the hand-written torch backward; False uses
        plain autograd.

    Returns
    -------
    hs : Tensor (K, 2, B, T, H)
        Hidden states of both directions in the original time order. Steps after a
        sequence's end are zero (compiled loops) or unspecified (torch paths).
    """
    if fused and xw.device.type == "cpu" and compiled_kernels_available(xw.dtype):
        return _CompiledLSTM.apply(xw, w_hh, lengths)
    k, d, b, t_len, four_h = xw.shape
    h_size = four_h // 4
    xw = torch.stack([xw[:, 0], _reverse_within_lengths(xw[:, 1], lengths, 2)], dim=1)
    run = lstm_recurrence if fused else lstm_recurrence_reference
    hs = run(xw.reshape(k * d, b, t_len, four_h), w_hh.reshape(k * d, h_size, four_h))
    hs = hs.reshape(k, d, b, t_len, h_size)
    return torch.stack([hs[:, 0], _reverse_within_lengths(hs[:, 1], lengths, 2)], dim=1)


# --------------------------------------------------------------------------------------
# Local additive intra-attention
# --------------------------------------------------------------------------------------

class _CompiledIntraAttention(torch.autograd.Function):
    """Windowed attention in C (`_ckernels`): scores, softmax and sum fused per frame."""

    @staticmethod
    def forward(ctx, query, key, x, w_a, b_a, lengths, lo, width):
        lib = _ckernels.load()
        k, b, t_len, u_size = query.shape
        f_size = x.shape[-1]
        query, key, x = query.contiguous(), key.contiguous(), x.contiguous()
        w_a, b_a = w_a.contiguous(), b_a.reshape(k).contiguous()
        lengths = lengths.to(torch.int64).contiguous()
        out = x.new_zeros((k, b, t_len, f_size))
        attn = x.new_zeros((k, b, t_len, width))
        sig = x.new_zeros((k, b, t_len, width))
        dims = [ctypes.c_int64(v) for v in (k, b, t_len, f_size, u_size, width, lo)]
        fn = lib.intra_forward_f32 if x.dtype == torch.float32 else lib.intra_forward_f64
        fn(*dims, _ptr(lengths), _ptr(query), _ptr(key), _ptr(x), _ptr(w_a), _ptr(b_a),
           _ptr(out), _ptr(attn), _ptr(sig))
        ctx.set_materialize_grads(False)
        ctx.lo, ctx.width = lo, width
        ctx.save_for_backward(query, key, x, w_a, lengths, attn, sig)
        return out, attn

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_attn):
        lib = _ckernels.load()
        query, key, x, w_a, lengths, attn, sig = ctx.saved_tensors
        k, b, t_len, u_size = query.shape
        d_q, d_k, d_x = torch.zeros_like(query), torch.zeros_like(key), torch.zeros_like(x)
        d_w_a, d_b_a = torch.zeros_like(w_a), w_a.new_zeros(k)
        dims = [ctypes.c_int64(v)
                for v in (k, b, t_len, x.shape[-1], u_size, ctx.width, ctx.lo)]
        fn = lib.intra_backward_f32 if x.dtype == torch.float32 else lib.intra_backward_f64
        fn(*dims, _ptr(lengths), _ptr(query), _ptr(key), _ptr(x), _ptr(w_a), _ptr(attn),
           _ptr(sig), _ptr(grad_out.contiguous() if grad_out is not None else None),
           _ptr(grad_attn.contiguous() if grad_attn is not None else None),
           _ptr(d_q), _ptr(d_k), _ptr(d_x), _ptr(d_w_a), _ptr(d_b_a))
        return d_q, d_k, d_x, d_w_a, d_b_a.view(k, 1), None, None, None


def _unfold_window(x, lo, hi):
    # (K, B, T, D) -> (K, B, T, D, w): the window of each step, zero beyond the ends
    padded = torch.nn.functional.pad(x, (0, 0, -lo, hi))
    return padded.unfold(2, hi - lo + 1, 1)


def local_attention(query, key, x, w_a, b_a, lengths, lo, width, fused=True):
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
    fused : bool, default=True
        Compiled C loops when available (no ``(K, B, T, width, U)`` tensor is stored);
        otherwise, or with False, torch operations and autograd.

    Returns
    -------
    out : Tensor (K, B, T, F)
        ``sum_i a_{t,i} x_{t+lo+i}``; zero on padded steps.
    weights : Tensor (K, B, T, width)
        ``a_t = softmax_i(sigmoid(e_{t,i}))`` over the valid keys; zero elsewhere and on
        padded steps.
    """
    if fused and x.device.type == "cpu" and compiled_kernels_available(x.dtype):
        return _CompiledIntraAttention.apply(query, key, x, w_a, b_a, lengths, lo, width)
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

def _decoder_forward(s, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y,
                     u_rz, u_p, u_o, store):
    """The decoder's time loop; ``store`` receives the per-step tensors (for backward).

    Attention mode (``enc`` given): c_j = sum_t alpha_jt h_t with
    alpha_j = softmax_t(v^T tanh(keys_t + s_{j-1} W_a)) over real steps, and the gate
    pre-activations from the context are ``c_j C + b`` (plus ``ctx_all[:, :, j]`` when
    given: an aligned input). Aligned mode (``enc`` None): ``ctx_all[:, :, j]`` already
    holds ``h_j C + b``.
    """
    k, b, h_size = s.shape
    n_out = w_y.shape[1]
    t_len = key_mask.shape[1]
    two_h = 2 * h_size
    three_h = 3 * h_size
    attend = enc is not None
    y = s.new_zeros((k, b, n_out))
    if attend:
        t_enc, a_size = keys.shape[2], keys.shape[3]
        e_size = enc.shape[-1]
        enc_kb = enc.reshape(k * b, t_enc, e_size)
        # tanh(u) = 2 sigmoid(2u) - 1, and softmax ignores the constant -sum(v): scores
        # from sigmoid(2 keys + 2 q) @ 2v are exact and avoid the (slow) CPU tanh
        keys2 = keys * 2
        v_col = (v_a * 2).unsqueeze(-1)                         # (K, A, 1)
        pad = ~key_mask                                         # (B, T)
    if ctx_all is not None:
        ctx_t = ctx_all.permute(2, 0, 1, 3)                     # (T, K, B, G) view
    for j in range(t_len):
        if attend:
            q = torch.bmm(s, w_a)                               # (K, B, A)
            sig = torch.add(keys2, q.unsqueeze(2), alpha=2).sigmoid_()   # (K, B, T, A)
            e = torch.bmm(sig.view(k, b * t_enc, a_size), v_col).view(k, b, t_enc)
            if prior is not None:
                e = e + prior[j]
            alpha = torch.softmax(e.masked_fill_(pad, float("-inf")), dim=-1)
            c = torch.bmm(alpha.view(k * b, 1, t_enc), enc_kb).view(k, b, e_size)
            if ctx_all is None:
                pre = torch.baddbmm(b_c.unsqueeze(1), c, w_c)   # (K, B, G)
            else:
                pre = torch.baddbmm(ctx_t[j], c, w_c)
        else:
            pre = ctx_t[j]
        pre = torch.baddbmm(pre, y, w_y)
        rz = torch.baddbmm(pre[..., :two_h], s, u_rz).sigmoid_()
        r = rz[..., :h_size]
        z = rz[..., h_size:]
        rs = r * s
        p = torch.baddbmm(pre[..., two_h:three_h], rs, u_p).tanh_()
        s_new = torch.lerp(s, p, z)
        logit = torch.baddbmm(pre[..., three_h:], s_new, u_o)
        y = torch.sigmoid(logit)
        store["rz"][j] = rz
        store["p"][j] = p
        store["s"][j] = s_new
        store["y"][j] = y
        store["logit"][j] = logit
        if attend:
            store["q"][j] = q
            store["alpha"][j] = alpha
            store["c"][j] = c
        s = s_new
    return s


class _AttentionDecoder(torch.autograd.Function):

    @staticmethod
    def forward(ctx, s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y, u_rz,
                u_p, u_o):
        attend = enc is not None
        k, b, h_size = s0.shape
        n_out = w_y.shape[1]
        t_len = key_mask.shape[1]
        store = {
            "rz": s0.new_empty((t_len, k, b, 2 * h_size)),
            "p": s0.new_empty((t_len, k, b, h_size)),
            "s": s0.new_empty((t_len, k, b, h_size)),
            "y": s0.new_empty((t_len, k, b, n_out)),
            "logit": s0.new_empty((t_len, k, b, n_out)),
        }
        if attend:
            store["q"] = s0.new_empty((t_len, k, b, keys.shape[-1]))
            store["alpha"] = s0.new_empty((t_len, k, b, t_len))
            store["c"] = s0.new_empty((t_len, k, b, enc.shape[-1]))
        _decoder_forward(s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y,
                         u_rz, u_p, u_o, store)
        ctx.attend = attend
        ctx.set_materialize_grads(False)
        saved = [s0, w_y, u_rz, u_p, u_o, store["rz"], store["p"], store["s"], store["y"]]
        if attend:
            saved += [enc, keys, key_mask, w_a, v_a, w_c, store["q"], store["alpha"],
                      store["c"]]
        ctx.save_for_backward(*saved)
        alpha = store["alpha"].permute(1, 2, 0, 3) if attend else s0.new_zeros(0)
        ctx.mark_non_differentiable(alpha)
        return (store["logit"].permute(1, 2, 0, 3), store["s"].permute(1, 2, 0, 3), alpha)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logit, grad_states, _grad_alpha):
        attend = ctx.attend
        saved = ctx.saved_tensors
        s0, w_y, u_rz, u_p, u_o, rz_all, p_all, s_all, y_all = saved[:9]
        t_len, k, b, h_size = s_all.shape
        n_out = y_all.shape[-1]
        two_h, three_h = 2 * h_size, 3 * h_size
        g_size = three_h + n_out
        if grad_logit is None:
            grad_logit = y_all.new_zeros((k, b, t_len, n_out))
        grad_logit = grad_logit.permute(2, 0, 1, 3)                 # (T, K, B, O) views
        grad_states = (grad_states.permute(2, 0, 1, 3) if grad_states is not None
                       else None)
        s_prev_all = torch.cat([s0.unsqueeze(0), s_all[:-1]])      # (T, K, B, H)
        y_prev_all = torch.cat([y_all.new_zeros((1, k, b, n_out)), y_all[:-1]])
        r_all = rz_all[..., :h_size]
        z_all = rz_all[..., h_size:]
        # step-independent factors, vectorised over time
        dsig_y = y_all * (1 - y_all)
        dsig_rz = rz_all * (1 - rz_all)
        dtanh_p = 1 - p_all * p_all
        p_minus_s = p_all - s_prev_all
        u_o_t = u_o.transpose(1, 2)
        u_p_t = u_p.transpose(1, 2)
        u_rz_t = u_rz.transpose(1, 2)
        w_y_t = w_y.transpose(1, 2)
        d_pre = s0.new_empty((t_len, k, b, g_size))
        if attend:
            enc, keys, key_mask, w_a, v_a, w_c, q_all, alpha_all, c_all = saved[9:]
            t_enc, a_size, e_size = keys.shape[2], keys.shape[3], enc.shape[3]
            w_c_t = w_c.transpose(1, 2)
            w_a_t = w_a.transpose(1, 2)
            enc_kb = enc.reshape(k * b, t_enc, e_size)
            keys2 = keys * 2
            # with sig = sigmoid(2u): tanh(u) = 2 sig - 1 and 1 - tanh(u)^2 = 4 sig (1 - sig)
            d_keys_raw = torch.zeros_like(keys)     # sum_j de_j sig_j (1 - sig_j)
            d_v = v_a.new_zeros((k, 1, a_size))     # sum_j de_j sig_j  (sum_t de = 0)
            d_c_all = s0.new_empty((t_len, k, b, e_size))
            d_q_all = s0.new_empty((t_len, k, b, a_size))
            v4 = (v_a * 4).unsqueeze(1)             # (K, 1, A)
        ds = s0.new_zeros((k, b, h_size))
        dy = s0.new_zeros((k, b, n_out))
        for j in range(t_len - 1, -1, -1):
            dlogit = torch.addcmul(grad_logit[j], dy, dsig_y[j])
            ds = torch.baddbmm(ds, dlogit, u_o_t)
            if grad_states is not None:
                ds = ds + grad_states[j]
            z = z_all[j]
            dz = ds * p_minus_s[j]
            dp = ds * z
            ds_prev = ds - dp
            g = d_pre[j]
            da_p = torch.mul(dp, dtanh_p[j], out=g[..., two_h:three_h])
            d_rs = torch.bmm(da_p, u_p_t)
            ds_prev.addcmul_(d_rs, r_all[j])
            torch.mul(torch.cat([d_rs * s_prev_all[j], dz], dim=-1), dsig_rz[j],
                      out=g[..., :two_h])
            g[..., three_h:] = dlogit
            ds_prev = torch.baddbmm(ds_prev, g[..., :two_h], u_rz_t)
            if attend:
                dc = torch.bmm(g, w_c_t, out=d_c_all[j])                  # (K, B, E)
                alpha = alpha_all[j]
                d_alpha = torch.bmm(enc_kb, dc.view(k * b, e_size, 1)).view(k, b, t_enc)
                de = alpha * (d_alpha - (alpha * d_alpha).sum(-1, keepdim=True))
                # recompute instead of storing a (K, B, T, A) tensor per step
                sig = torch.add(keys2, q_all[j].unsqueeze(2), alpha=2).sigmoid_()
                d_v.baddbmm_(de.view(k, 1, b * t_enc), sig.view(k, b * t_enc, a_size))
                sig_slope = torch.addcmul(sig, sig, sig, value=-1)          # sig (1 - sig)
                d_keys_raw.addcmul_(de.unsqueeze(-1), sig_slope)
                dq = torch.bmm(de.view(k * b, 1, t_enc),
                               sig_slope.view(k * b, t_enc, a_size)).view(k, b, a_size)
                dq = torch.mul(dq, v4, out=d_q_all[j])
                ds_prev = torch.baddbmm(ds_prev, dq, w_a_t)
            dy = torch.bmm(g, w_y_t)
            ds = ds_prev

        def outer(left, right):
            # sum over (T, B) of left^T right, per model: (K, L, R)
            return torch.bmm(left.permute(1, 3, 0, 2).reshape(k, left.shape[-1], -1),
                             right.permute(1, 0, 2, 3).reshape(k, -1, right.shape[-1]))

        d_u_o = outer(s_all, d_pre[..., three_h:])
        d_u_p = outer(r_all * s_prev_all, d_pre[..., two_h:three_h])
        d_u_rz = outer(s_prev_all, d_pre[..., :two_h])
        d_w_y = outer(y_prev_all, d_pre)
        d_s0 = ds
        grads = dict(s0=d_s0, w_y=d_w_y, u_rz=d_u_rz, u_p=d_u_p, u_o=d_u_o)
        if attend:
            grads["w_c"] = outer(c_all, d_pre)
            grads["b_c"] = d_pre.sum(dim=(0, 2)) if ctx.needs_input_grad[7] else None
            grads["w_a"] = outer(s_prev_all, d_q_all)
            grads["v_a"] = d_v.squeeze(1).mul_(2)
            grads["keys"] = d_keys_raw.mul_(v4.unsqueeze(1))
            # dh_t = sum_j alpha_jt dc_j: (K*B, T_enc, T_dec) @ (K*B, T_dec, E)
            alpha_kb = alpha_all.permute(1, 2, 3, 0).reshape(k * b, t_enc, t_len)
            d_c_kb = d_c_all.permute(1, 2, 0, 3).reshape(k * b, t_len, e_size)
            grads["enc"] = torch.bmm(alpha_kb, d_c_kb).view(k, b, t_enc, e_size)
        if ctx.needs_input_grad[8]:
            grads["ctx_all"] = d_pre.permute(1, 2, 0, 3)
        order = ["s0", "enc", "keys", "key_mask", "w_a", "v_a", "w_c", "b_c", "ctx_all",
                 "prior", "w_y", "u_rz", "u_p", "u_o"]
        return tuple(grads.get(name) for name in order)


def _ptr(t):
    return ctypes.c_void_p(t.data_ptr() if t is not None else None)


class _CompiledDecoder(torch.autograd.Function):
    """The decoder loop in C (`_ckernels`); steps after each sequence's end stay zero."""

    @staticmethod
    def forward(ctx, s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y, u_rz,
                u_p, u_o):
        lib = _ckernels.load()
        attend = enc is not None
        k, b, h_size = s0.shape
        n_out = w_y.shape[1]
        t_len = key_mask.shape[1]
        lengths = key_mask.sum(1).to(torch.int64).contiguous()
        enc_t = enc.transpose(2, 3).contiguous() if attend else None
        keys_t = keys.transpose(2, 3).contiguous() if attend else None
        e_size = enc.shape[-1] if attend else 0
        a_size = keys.shape[-1] if attend else 0
        weights = [w.contiguous() if w is not None else None
                   for w in (w_a, v_a, w_c, b_c, ctx_all, w_y, u_rz, u_p, u_o)]
        prior = (prior[:t_len, :t_len].to(s0.dtype).contiguous()
                 if attend and prior is not None else None)
        # returned tensors are zero after each sequence's end; the C code reads the
        # others only at real steps
        zeros, empty = s0.new_zeros, s0.new_empty
        out = dict(logits=zeros((k, b, t_len, n_out)), states=zeros((k, b, t_len, h_size)),
                   alpha=zeros((k, b, t_len, t_len if attend else 0)),
                   rz=empty((k, b, t_len, 2 * h_size)), p=empty((k, b, t_len, h_size)),
                   y=empty((k, b, t_len, n_out)), q=empty((k, b, t_len, a_size)),
                   c=empty((k, b, t_len, e_size)))
        s0 = s0.contiguous()
        dims = [ctypes.c_int64(v) for v in (k, b, t_len, e_size, a_size, h_size, n_out)]
        fn = lib.dec_forward_f32 if s0.dtype == torch.float32 else lib.dec_forward_f64
        fn(*dims, _ptr(lengths), _ptr(s0), _ptr(enc_t), _ptr(keys_t),
           *[_ptr(w) for w in weights[:5]], _ptr(prior), *[_ptr(w) for w in weights[5:]],
           *[_ptr(v) for v in out.values()])
        ctx.attend = attend
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(lengths, s0, enc_t, keys_t, *weights, *out.values())
        ctx.mark_non_differentiable(out["alpha"])
        return out["logits"], out["states"], out["alpha"]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits, grad_states, _grad_alpha):
        lib = _ckernels.load()
        (lengths, s0, enc_t, keys_t, w_a, v_a, w_c, b_c, ctx_all, w_y, u_rz, u_p, u_o,
         logits, states, alpha, rz, p, y, q, c) = ctx.saved_tensors
        need = ctx.needs_input_grad
        k, b, h_size = s0.shape
        t_len, n_out = logits.shape[2], logits.shape[3]
        e_size, a_size = c.shape[3], q.shape[3]

        def zeros_if(flag, like):
            return torch.zeros_like(like) if (flag and like is not None) else None

        grads = dict(s0=torch.zeros_like(s0), enc_t=zeros_if(need[1], enc_t),
                     keys_t=zeros_if(need[2], keys_t), w_a=zeros_if(need[4], w_a),
                     v_a=zeros_if(need[5], v_a), w_c=zeros_if(need[6], w_c),
                     b_c=zeros_if(need[7], b_c), ctx_all=zeros_if(need[8], ctx_all),
                     w_y=torch.zeros_like(w_y), u_rz=torch.zeros_like(u_rz),
                     u_p=torch.zeros_like(u_p), u_o=torch.zeros_like(u_o))
        grad_logits = grad_logits.contiguous() if grad_logits is not None else None
        grad_states = grad_states.contiguous() if grad_states is not None else None
        dims = [ctypes.c_int64(v) for v in (k, b, t_len, e_size, a_size, h_size, n_out)]
        fn = lib.dec_backward_f32 if s0.dtype == torch.float32 else lib.dec_backward_f64
        fn(*dims, _ptr(lengths), _ptr(s0), _ptr(enc_t), _ptr(keys_t),
           *[_ptr(w) for w in (w_a, v_a, w_c, b_c, ctx_all, w_y, u_rz, u_p, u_o)],
           *[_ptr(v) for v in (states, alpha, rz, p, y, q, c)],
           _ptr(grad_logits), _ptr(grad_states), *[_ptr(v) for v in grads.values()])
        d_enc = grads["enc_t"].transpose(2, 3) if grads["enc_t"] is not None else None
        d_keys = grads["keys_t"].transpose(2, 3) if grads["keys_t"] is not None else None
        return (grads["s0"], d_enc, d_keys, None, grads["w_a"], grads["v_a"], grads["w_c"],
                grads["b_c"], grads["ctx_all"], None, grads["w_y"], grads["u_rz"],
                grads["u_p"], grads["u_o"])


def compiled_kernels_available(dtype=torch.float32):
    """Whether the compiled C loops (`_ckernels`) can run tensors of ``dtype``."""
    return dtype in (torch.float32, torch.float64) and _ckernels.load() is not None


def attention_decoder(s0, w_y, u_rz, u_p, u_o, key_mask, *, enc=None, keys=None, w_a=None,
                      v_a=None, w_c=None, b_c=None, ctx_all=None, prior=None, fused=True):
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
    fused : bool, default=True
        Hand-written backward (fast, low memory): the compiled loops of `_ckernels`
        when available (CPU, float32/64), else torch loops. False uses plain autograd.
        The compiled loops leave the outputs of steps after a sequence's end at zero;
        the torch paths compute them (they never influence real steps).

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
    if fused and s0.device.type == "cpu" and compiled_kernels_available(s0.dtype):
        return _CompiledDecoder.apply(s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all,
                                      prior, w_y, u_rz, u_p, u_o)
    if fused:
        return _AttentionDecoder.apply(s0, enc, keys, key_mask, w_a, v_a, w_c, b_c,
                                       ctx_all, prior, w_y, u_rz, u_p, u_o)
    return _decoder_reference(s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior,
                              w_y, u_rz, u_p, u_o)


def _decoder_reference(s, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y, u_rz,
                       u_p, u_o):
    """Plain-autograd decoder: the specification the fused version is tested against."""
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
