"""Compiled loops (numba) for the recurrences and attentions, forward and backward.

The decoder's and the LSTMs' time loops are sequential and their per-step tensors are
small, so under torch every step costs dozens of dispatched operations, and the decoder's
additive attention streams a ``(K, B, T, A)`` tensor several times per step. Here the
loops run one sequence ``(k, b)`` at a time, so that its keys and encoder outputs stay in
the CPU cache, with the attention scores, softmax, context and all gates fused; the
windowed intra-attention likewise never builds its ``(K, B, T, w, units)`` tensor. Steps
after a sequence's real end are not computed (their outputs stay zero) and padded keys
are never read.

Every kernel takes ``items``, an ``(n, 2)`` array of the ``(k, b)`` sequences it
handles: `_ops` gives each thread its own items (the kernels release the GIL), and in
backward each group of items its own weight-gradient buffers, summed afterwards in a
fixed order, so that results do not depend on the number of threads.

numba compiles each kernel for float32 and float64 at first use and caches the machine
code on disk (``cache=True``); no C compiler is needed. The fast-math flags used are
those that allow vectorised reductions (reassociation, reciprocals, contraction, no
signed zeros); none of them changes the process's floating-point state (no
flush-to-zero), and NaN/inf propagate as usual.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

__all__ = ["dec_forward", "dec_backward", "lstm_forward", "lstm_backward",
           "intra_forward", "intra_backward"]

_FASTMATH = {"reassoc", "arcp", "contract", "nsz"}
_jit = njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")


def _tanh(x):      # pragma: no cover - replaced by the overload in compiled code
    return math.tanh(x)


def _sigmoid(x):   # pragma: no cover - replaced by the overload in compiled code
    return 1.0 / (1.0 + math.exp(-x))


@overload(_tanh, jit_options={"fastmath": _FASTMATH})
def _tanh_impl(x):
    if x == types.float32:
        # odd 13/6 rational approximation on [-7.9053, 7.9053] (the minimax fit of
        # Eigen's fast float tanh); max error 2.6e-7 (absolute and relative), about 2
        # float ulp. Branch-free, no libm call, so the attention loops vectorise.
        c = np.float32(7.90531110763549805)
        p0, p1 = np.float32(-2.76076847742355e-16), np.float32(2.00018790482477e-13)
        p2, p3 = np.float32(-8.60467152213735e-11), np.float32(5.12229709037114e-08)
        p4, p5 = np.float32(1.48572235717979e-05), np.float32(6.37261928875436e-04)
        p6 = np.float32(4.89352455891786e-03)
        q0, q1 = np.float32(1.19825839466702e-06), np.float32(1.18534705686654e-04)
        q2, q3 = np.float32(2.26843463243900e-03), np.float32(4.89352518554385e-03)

        def impl(x):
            x = min(max(x, -c), c)
            x2 = x * x
            p = x2 * p0 + p1
            p = p * x2 + p2
            p = p * x2 + p3
            p = p * x2 + p4
            p = p * x2 + p5
            p = p * x2 + p6
            q = x2 * q0 + q1
            q = q * x2 + q2
            q = q * x2 + q3
            return x * p / q
        return impl
    if x == types.float64:
        return lambda x: math.tanh(x)
    return None


@overload(_sigmoid, jit_options={"fastmath": _FASTMATH})
def _sigmoid_impl(x):
    if isinstance(x, types.Float):
        lim, one = (np.float32(40.0), np.float32(1.0)) if x == types.float32 else (40.0, 1.0)

        def impl(x):
            x = min(max(x, -lim), lim)
            return one / (one + math.exp(-x))
        return impl
    return None


# ---------------------------------------------------------------------------------------
# GRU-like decoder with additive inter-attention, equations (5)-(10)
# ---------------------------------------------------------------------------------------

@_jit
def dec_forward(items, lengths, s0, enc_t, keys_t, w_a, v_a, w_c, b_c, ctx, prior, w_y,
                u_rz, u_p, u_o, attend, has_ctx, has_prior,
                logits, states, alpha, rz, p, y, q, c):
    """Decoder forward for the ``items`` sequences; see ``_ops.attention_decoder``.

    Layouts: s0 (K,B,H); enc_t (K,B,E,T); keys_t (K,B,A,T); w_a (K,H,A); v_a (K,A);
    w_c (K,E,G); b_c (K,G); ctx (K,B,T,G); prior (T,T); w_y (K,O,G); u_rz (K,H,2H);
    u_p (K,H,H); u_o (K,H,O). Outputs (zero-initialised where returned): logits, y
    (K,B,T,O); states, p (K,B,T,H); rz (K,B,T,2H); alpha (K,B,T,T); q (K,B,T,A);
    c (K,B,T,E). Without attention (``attend`` False) the gate inputs are ``ctx``;
    with it, ``c_j w_c`` plus ``ctx`` (``has_ctx``) or ``b_c``.
    """
    h_size, n_out = s0.shape[2], w_y.shape[1]
    e_size, a_size = enc_t.shape[2], keys_t.shape[2]
    g_size, h2 = 3 * h_size + n_out, 2 * h_size
    zero = s0.dtype.type(0)
    pre = np.empty(g_size, s0.dtype)
    e = np.empty(alpha.shape[3], s0.dtype)
    rs = np.empty(h_size, s0.dtype)
    yprev = np.empty(n_out, s0.dtype)
    for it in range(items.shape[0]):
        k, b = items[it, 0], items[it, 1]
        length = lengths[b]
        s = s0[k, b]
        yprev[:] = zero
        for j in range(length):
            if attend:
                for a in range(a_size):
                    acc = zero
                    for h in range(h_size):
                        acc += s[h] * w_a[k, h, a]
                    q[k, b, j, a] = acc
                for t in range(length):
                    e[t] = prior[j, t] if has_prior else zero
                for a in range(a_size):
                    qa, va = q[k, b, j, a], v_a[k, a]
                    for t in range(length):
                        e[t] += va * _tanh(keys_t[k, b, a, t] + qa)
                m = e[0]
                for t in range(1, length):
                    m = max(m, e[t])
                z = zero
                for t in range(length):
                    w = math.exp(e[t] - m)
                    alpha[k, b, j, t] = w
                    z += w
                for t in range(length):
                    alpha[k, b, j, t] /= z
                for ee in range(e_size):
                    acc = zero
                    for t in range(length):
                        acc += alpha[k, b, j, t] * enc_t[k, b, ee, t]
                    c[k, b, j, ee] = acc
                for g in range(g_size):
                    pre[g] = ctx[k, b, j, g] if has_ctx else b_c[k, g]
                for ee in range(e_size):
                    ce = c[k, b, j, ee]
                    for g in range(g_size):
                        pre[g] += ce * w_c[k, ee, g]
            else:
                for g in range(g_size):
                    pre[g] = ctx[k, b, j, g]
            for o in range(n_out):
                yo = yprev[o]
                for g in range(g_size):
                    pre[g] += yo * w_y[k, o, g]
            for i in range(h2):
                rz[k, b, j, i] = pre[i]
            for h in range(h_size):
                sh = s[h]
                for i in range(h2):
                    rz[k, b, j, i] += sh * u_rz[k, h, i]
            for i in range(h2):
                rz[k, b, j, i] = _sigmoid(rz[k, b, j, i])
            for h in range(h_size):
                rs[h] = rz[k, b, j, h] * s[h]
                p[k, b, j, h] = pre[h2 + h]
            for h in range(h_size):
                r = rs[h]
                for i in range(h_size):
                    p[k, b, j, i] += r * u_p[k, h, i]
            for h in range(h_size):
                ph = _tanh(p[k, b, j, h])
                p[k, b, j, h] = ph
                states[k, b, j, h] = s[h] + rz[k, b, j, h_size + h] * (ph - s[h])
            s = states[k, b, j]
            for o in range(n_out):
                logits[k, b, j, o] = pre[3 * h_size + o]
            for h in range(h_size):
                sh = s[h]
                for o in range(n_out):
                    logits[k, b, j, o] += sh * u_o[k, h, o]
            for o in range(n_out):
                yo = _sigmoid(logits[k, b, j, o])
                y[k, b, j, o] = yo
                yprev[o] = yo


@_jit
def dec_backward(items, lengths, s0, enc_t, keys_t, w_a, v_a, w_c, w_y, u_rz, u_p, u_o,
                 states, alpha, rz, p, y, q, c, g_logits, g_states,
                 attend, has_g_logits, has_g_states, need_ctx,
                 d_s0, d_enc_t, d_keys_t, d_ctx, d_w_a, d_v_a, d_w_c, d_b_c, d_w_y,
                 d_u_rz, d_u_p, d_u_o):
    """Backward of `dec_forward` for the ``items`` sequences.

    ``d_s0``, ``d_enc_t``, ``d_keys_t`` and ``d_ctx`` are per sequence (shared by all
    groups of items); the weight gradients ``d_w_a`` .. ``d_u_o`` are this group's own
    buffers (K, ...). All are zero-initialised by the caller and accumulated into.
    ``d_ctx`` receives the gradient of the gate inputs when ``need_ctx``.
    """
    h_size, n_out = s0.shape[2], w_y.shape[1]
    e_size, a_size = enc_t.shape[2], keys_t.shape[2]
    g_size, h2, h3 = 3 * h_size + n_out, 2 * h_size, 3 * h_size
    zero, one = s0.dtype.type(0), s0.dtype.type(1)
    dpre = np.empty(g_size, s0.dtype)
    ds = np.empty(h_size, s0.dtype)
    dsp = np.empty(h_size, s0.dtype)
    drs = np.empty(h_size, s0.dtype)
    dy = np.empty(n_out, s0.dtype)
    dyp = np.empty(n_out, s0.dtype)
    zero_o = np.zeros(n_out, s0.dtype)
    t_max = alpha.shape[3]
    dal = np.empty(t_max, s0.dtype)
    de = np.empty(t_max, s0.dtype)
    dc = np.empty(e_size, s0.dtype)
    dq = np.empty(a_size, s0.dtype)
    for it in range(items.shape[0]):
        k, b = items[it, 0], items[it, 1]
        length = lengths[b]
        ds[:] = zero
        dy[:] = zero
        for j in range(length - 1, -1, -1):
            sp = states[k, b, j - 1] if j > 0 else s0[k, b]
            yp = y[k, b, j - 1] if j > 0 else zero_o
            for o in range(n_out):
                yo = y[k, b, j, o]
                dlg = dy[o] * yo * (one - yo)
                if has_g_logits:
                    dlg += g_logits[k, b, j, o]
                dpre[h3 + o] = dlg
            for h in range(h_size):
                acc = ds[h]
                if has_g_states:
                    acc += g_states[k, b, j, h]
                sh = states[k, b, j, h]
                for o in range(n_out):
                    acc += u_o[k, h, o] * dpre[h3 + o]
                    d_u_o[k, h, o] += sh * dpre[h3 + o]
                ds[h] = acc
            # s_j = s + z (p - s); p = tanh(.); r, z = sigmoid(.)
            for h in range(h_size):
                z = rz[k, b, j, h_size + h]
                ph = p[k, b, j, h]
                dz = ds[h] * (ph - sp[h])
                dp = ds[h] * z
                dsp[h] = ds[h] - dp
                dpre[h2 + h] = dp * (one - ph * ph)
                dpre[h_size + h] = dz * z * (one - z)
            for h in range(h_size):
                rsh = rz[k, b, j, h] * sp[h]
                acc = zero
                for i in range(h_size):
                    acc += u_p[k, h, i] * dpre[h2 + i]
                    d_u_p[k, h, i] += rsh * dpre[h2 + i]
                drs[h] = acc
            for h in range(h_size):
                r = rz[k, b, j, h]
                dsp[h] += drs[h] * r
                dpre[h] = drs[h] * sp[h] * r * (one - r)
            for h in range(h_size):
                sh = sp[h]
                acc = zero
                for i in range(h2):
                    acc += u_rz[k, h, i] * dpre[i]
                    d_u_rz[k, h, i] += sh * dpre[i]
                dsp[h] += acc
            for o in range(n_out):
                acc = zero
                ypo = yp[o]
                for g in range(g_size):
                    acc += w_y[k, o, g] * dpre[g]
                    d_w_y[k, o, g] += ypo * dpre[g]
                dyp[o] = acc
            if need_ctx:
                for g in range(g_size):
                    d_ctx[k, b, j, g] = dpre[g]
            if attend:
                for g in range(g_size):
                    d_b_c[k, g] += dpre[g]
                for ee in range(e_size):
                    ce = c[k, b, j, ee]
                    wc, dwc = w_c[k, ee], d_w_c[k, ee]
                    acc = zero
                    for g in range(g_size):
                        acc += wc[g] * dpre[g]
                        dwc[g] += ce * dpre[g]
                    dc[ee] = acc
                al = alpha[k, b, j]
                for t in range(length):
                    dal[t] = zero
                for ee in range(e_size):
                    dce = dc[ee]
                    er, der = enc_t[k, b, ee], d_enc_t[k, b, ee]
                    for t in range(length):
                        dal[t] += er[t] * dce
                        der[t] += al[t] * dce
                dot = zero
                for t in range(length):
                    dot += al[t] * dal[t]
                for t in range(length):
                    de[t] = al[t] * (dal[t] - dot)
                for a in range(a_size):
                    qa, va = q[k, b, j, a], v_a[k, a]
                    kr, dkr = keys_t[k, b, a], d_keys_t[k, b, a]
                    accv = zero
                    accq = zero
                    for t in range(length):
                        th = _tanh(kr[t] + qa)                       # recomputed
                        gt = de[t] * (one - th * th)
                        accv += de[t] * th
                        accq += gt
                        dkr[t] += va * gt
                    d_v_a[k, a] += accv
                    dq[a] = va * accq
                for h in range(h_size):
                    sh = sp[h]
                    acc = zero
                    for a in range(a_size):
                        acc += w_a[k, h, a] * dq[a]
                        d_w_a[k, h, a] += sh * dq[a]
                    dsp[h] += acc
            ds[:] = dsp
            dy[:] = dyp
        for h in range(h_size):
            d_s0[k, b, h] = ds[h]


# ---------------------------------------------------------------------------------------
# Bidirectional LSTM recurrence
# ---------------------------------------------------------------------------------------

@_jit
def lstm_forward(items, lengths, xw, w_hh, acts, cells, hs):
    """LSTM recurrences of the ``items`` (n, b), n = (model, direction) pairs.

    xw (K,2,B,T,4H) input projections incl. bias in the original time order (any
    strides), gate order (i, f, o, g); w_hh (K,2,H,4H). Direction 1 reads each sequence
    backwards from its last real step. Outputs (K,2,B,T,·): acts (4H, gate
    activations), cells and hs (H, zero-initialised), in the original time order.
    ``items`` holds (k * 2 + d, b).
    """
    h_size = w_hh.shape[2]
    h3, h4 = 3 * h_size, 4 * h_size
    zeros = np.zeros(h_size, w_hh.dtype)
    for it in range(items.shape[0]):
        n, b = items[it, 0], items[it, 1]
        k, d = n // 2, n % 2
        length = lengths[b]
        h, c = zeros, zeros
        for i in range(length):
            t = length - 1 - i if d == 1 else i
            g = acts[k, d, b, t]
            for u in range(h4):
                g[u] = xw[k, d, b, t, u]
            for v in range(h_size):
                hv = h[v]
                for u in range(h4):
                    g[u] += hv * w_hh[k, d, v, u]
            for u in range(h3):
                g[u] = _sigmoid(g[u])
            for u in range(h3, h4):
                g[u] = _tanh(g[u])
            cell, out = cells[k, d, b, t], hs[k, d, b, t]
            for v in range(h_size):
                cv = g[h_size + v] * c[v] + g[v] * g[h3 + v]
                cell[v] = cv
                out[v] = g[2 * h_size + v] * _tanh(cv)
            h, c = out, cell


@_jit
def lstm_backward(items, lengths, w_hh, acts, cells, hs, g_hs, d_xw, d_w_hh):
    """Backward through time of `lstm_forward`: d_xw (as xw, per sequence) and this
    group's own d_w_hh (K,2,H,4H), both zero-initialised by the caller."""
    h_size = w_hh.shape[2]
    zero, one = w_hh.dtype.type(0), w_hh.dtype.type(1)
    dh = np.empty(h_size, w_hh.dtype)
    dc = np.empty(h_size, w_hh.dtype)
    zeros = np.zeros(h_size, w_hh.dtype)
    for it in range(items.shape[0]):
        n, b = items[it, 0], items[it, 1]
        k, d = n // 2, n % 2
        length = lengths[b]
        dh[:] = zero
        dc[:] = zero
        for i in range(length - 1, -1, -1):
            t = length - 1 - i if d == 1 else i
            tp = t + 1 if d == 1 else t - 1
            g = acts[k, d, b, t]
            hp = hs[k, d, b, tp] if i > 0 else zeros
            cp = cells[k, d, b, tp] if i > 0 else zeros
            dg = d_xw[k, d, b, t]
            for v in range(h_size):
                ig, fg, og, gg = g[v], g[h_size + v], g[2 * h_size + v], g[3 * h_size + v]
                tc = _tanh(cells[k, d, b, t, v])
                dhv = dh[v] + g_hs[k, d, b, t, v]
                dcv = dc[v] + dhv * og * (one - tc * tc)
                dg[v] = dcv * gg * ig * (one - ig)
                dg[h_size + v] = dcv * cp[v] * fg * (one - fg)
                dg[2 * h_size + v] = dhv * tc * og * (one - og)
                dg[3 * h_size + v] = dcv * ig * (one - gg * gg)
                dc[v] = dcv * fg
            for v in range(h_size):
                hv = hp[v]
                acc = zero
                for u in range(4 * h_size):
                    acc += w_hh[k, d, v, u] * dg[u]
                    d_w_hh[k, d, v, u] += hv * dg[u]
                dh[v] = acc


# ---------------------------------------------------------------------------------------
# Local additive intra-attention (keras-self-attention, sigmoid scores)
# ---------------------------------------------------------------------------------------

@_jit
def intra_forward(items, lengths, lo, query, key, x, w_a, b_a, out, attn, sig):
    """e_{t,i} = w_a . tanh(q_t + kx_{t+lo+i}) + b_a over the window i < W, keys inside
    the sequence only; a_t = softmax_i(sigmoid(e_{t,i})); out_t = sum_i a_{t,i}
    x_{t+lo+i}. query, key (K,B,T,U) (query includes b_h); x (K,B,T,F); w_a (K,U);
    b_a (K,). Outputs (zero-initialised): out (K,B,T,F), attn and sig (K,B,T,W)."""
    u_size, f_size, width = query.shape[3], x.shape[3], attn.shape[3]
    zero = x.dtype.type(0)
    for it in range(items.shape[0]):
        k, b = items[it, 0], items[it, 1]
        length = lengths[b]
        for t in range(length):
            z = zero
            for i in range(width):
                tp = t + lo + i
                if tp < 0 or tp >= length:
                    continue
                e = b_a[k]
                for u in range(u_size):
                    e += w_a[k, u] * _tanh(query[k, b, t, u] + key[k, b, tp, u])
                sg = _sigmoid(e)
                sig[k, b, t, i] = sg
                a = math.exp(sg)             # sigmoid in (0, 1): no overflow
                attn[k, b, t, i] = a
                z += a
            for i in range(width):
                tp = t + lo + i
                if tp < 0 or tp >= length:
                    continue
                a = attn[k, b, t, i] / z
                attn[k, b, t, i] = a
                for f in range(f_size):
                    out[k, b, t, f] += a * x[k, b, tp, f]


@_jit
def intra_backward(items, lengths, lo, query, key, x, w_a, attn, sig, g_out, g_attn,
                   has_g_out, has_g_attn, d_q, d_k, d_x, d_w_a, d_b_a):
    """Backward of `intra_forward`: d_q, d_k (K,B,T,U) and d_x (K,B,T,F) per sequence,
    this group's own d_w_a (K,U) and d_b_a (K,); all zero-initialised by the caller."""
    u_size, f_size, width = query.shape[3], x.shape[3], attn.shape[3]
    zero, one = x.dtype.type(0), x.dtype.type(1)
    da = np.empty(width, x.dtype)
    th = np.empty(u_size, x.dtype)
    for it in range(items.shape[0]):
        k, b = items[it, 0], items[it, 1]
        length = lengths[b]
        for t in range(length):
            dot = zero
            for i in range(width):
                da[i] = zero
                tp = t + lo + i
                if tp < 0 or tp >= length:
                    continue
                acc = g_attn[k, b, t, i] if has_g_attn else zero
                if has_g_out:
                    ai = attn[k, b, t, i]
                    for f in range(f_size):
                        acc += g_out[k, b, t, f] * x[k, b, tp, f]
                        d_x[k, b, tp, f] += ai * g_out[k, b, t, f]
                da[i] = acc
                dot += attn[k, b, t, i] * acc
            for i in range(width):
                tp = t + lo + i
                if tp < 0 or tp >= length:
                    continue
                sg = sig[k, b, t, i]
                # softmax, then sigmoid, backward
                de = attn[k, b, t, i] * (da[i] - dot) * sg * (one - sg)
                d_b_a[k] += de
                for u in range(u_size):                 # recomputed, not stored
                    th[u] = _tanh(query[k, b, t, u] + key[k, b, tp, u])
                for u in range(u_size):
                    gu = de * w_a[k, u] * (one - th[u] * th[u])
                    d_w_a[k, u] += de * th[u]
                    d_q[k, b, t, u] += gu
                    d_k[k, b, tp, u] += gu
