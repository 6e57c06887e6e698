"""Compiled loops for the recurrences and attentions (optional; pure-torch fallback).

The decoder's and the LSTMs' time loops are sequential and their per-step tensors are
small, so under torch every step costs dozens of dispatched operations, and the decoder's
additive attention streams a ``(K, B, T, A)`` tensor several times per step. Here the
loops, forward and backward, run in C one sequence ``(k, b)`` at a time, so that its keys
and encoder outputs stay in the CPU cache, with the attention scores, softmax, context
and all gates fused; the windowed intra-attention likewise never builds its
``(K, B, T, w, units)`` tensor. Steps after a sequence's real end are not computed (their
outputs stay zero) and padded keys are never read.

The C source below is compiled on first use with the system C compiler (``cc``, or
``$CC``) into a cache folder (``$SKLEARN_S2AU_CACHE``, else ``~/.cache/sklearn_s2au``,
else the temporary folder) and loaded with ctypes; no torch headers are needed, so the
build takes a few seconds, once per machine. When no compiler is available or the build
fails, or ``SKLEARN_S2AU_NO_CKERNELS=1`` is set, `load` returns None and the torch
implementations in ``_functional`` are used: same results up to float rounding. The
loops are single-threaded (parallelise over folds or models with joblib instead).
"""

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

_TEMPLATE = r"""
/* ---- REAL = @REAL@ ---------------------------------------------------------------- */
static inline @REAL@ sigm_@SUF@(@REAL@ x) {
    x = x < -40 ? -40 : (x > 40 ? 40 : x);
    return 1 / (1 + exp(-x));
}
static inline @REAL@ tanh_@SUF@(@REAL@ x) {
@TANH@
}

/* Forward pass of the decoder for all (k, b); see _functional.attention_decoder.
   Layouts (row-major): s0 (K,B,H); encT (K,B,E,T); keysT (K,B,A,T); w_a (K,H,A);
   v_a (K,A); w_c (K,E,G); b_c (K,G) or NULL; ctx (K,B,T,G) or NULL; prior (T,T)
   or NULL (a fixed log-prior added to the attention scores e_{j,t}); w_y (K,O,G);
   u_rz (K,H,2H); u_p (K,H,H); u_o (K,H,O). Outputs, zero-initialised by the caller:
   logits, y (K,B,T,O); states, p (K,B,T,H); rz (K,B,T,2H); alpha (K,B,T,T);
   q (K,B,T,A); c (K,B,T,E). attend = encT != NULL. */
void dec_forward_@SUF@(
    int64_t K, int64_t B, int64_t T, int64_t E, int64_t A, int64_t H, int64_t O,
    const int64_t *lengths, const @REAL@ *s0, const @REAL@ *encT, const @REAL@ *keysT,
    const @REAL@ *w_a, const @REAL@ *v_a, const @REAL@ *w_c, const @REAL@ *b_c,
    const @REAL@ *ctx, const @REAL@ *prior, const @REAL@ *w_y, const @REAL@ *u_rz,
    const @REAL@ *u_p, const @REAL@ *u_o, @REAL@ *logits, @REAL@ *states, @REAL@ *alpha,
    @REAL@ *rz,
    @REAL@ *p, @REAL@ *y, @REAL@ *q, @REAL@ *c)
{
    const int64_t G = 3 * H + O, H2 = 2 * H;
    const int attend = encT != 0;
    @REAL@ *pre = malloc(sizeof(@REAL@) * (G + T + H + O + A));
    @REAL@ *e = pre + G, *rs = e + T, *yprev = rs + H, *q2 = yprev + O;
    for (int64_t k = 0; k < K; k++) {
        const @REAL@ *Wa = w_a + k * H * A, *Va = v_a + k * A, *Wc = w_c + k * E * G;
        const @REAL@ *Bc = b_c ? b_c + k * G : 0, *Wy = w_y + k * O * G;
        const @REAL@ *Urz = u_rz + k * H * H2, *Up = u_p + k * H * H, *Uo = u_o + k * H * O;
        for (int64_t b = 0; b < B; b++) {
            const int64_t kb = k * B + b, L = lengths[b];
            const @REAL@ *enc = attend ? encT + kb * E * T : 0;
            const @REAL@ *keys = attend ? keysT + kb * A * T : 0;
            const @REAL@ *s = s0 + kb * H;
            for (int64_t o = 0; o < O; o++) yprev[o] = 0;
            for (int64_t j = 0; j < L; j++) {
                const int64_t kbj = kb * T + j;
                @REAL@ *S = states + kbj * H, *P = p + kbj * H, *RZ = rz + kbj * H2;
                @REAL@ *Y = y + kbj * O, *LG = logits + kbj * O;
                if (attend) {
                    @REAL@ *Q = q + kbj * A, *C = c + kbj * E, *AL = alpha + kbj * T;
                    for (int64_t a = 0; a < A; a++) {
                        @REAL@ acc = 0;
                        for (int64_t h = 0; h < H; h++) acc += s[h] * Wa[h * A + a];
                        Q[a] = acc;
                    }
                    if (prior) for (int64_t t = 0; t < L; t++) e[t] = prior[j * T + t];
                    else for (int64_t t = 0; t < L; t++) e[t] = 0;
                    for (int64_t a = 0; a < A; a++) {
                        const @REAL@ *kr = keys + a * T, qa = Q[a], va = Va[a];
                        for (int64_t t = 0; t < L; t++) e[t] += va * tanh_@SUF@(kr[t] + qa);
                    }
                    @REAL@ m = e[0], z = 0;
                    for (int64_t t = 1; t < L; t++) m = e[t] > m ? e[t] : m;
                    for (int64_t t = 0; t < L; t++) { AL[t] = exp(e[t] - m); z += AL[t]; }
                    for (int64_t t = 0; t < L; t++) AL[t] /= z;
                    for (int64_t ee = 0; ee < E; ee++) {
                        const @REAL@ *er = enc + ee * T;
                        @REAL@ acc = 0;
                        for (int64_t t = 0; t < L; t++) acc += AL[t] * er[t];
                        C[ee] = acc;
                    }
                    if (ctx) for (int64_t g = 0; g < G; g++) pre[g] = ctx[kbj * G + g];
                    else for (int64_t g = 0; g < G; g++) pre[g] = Bc[g];
                    for (int64_t ee = 0; ee < E; ee++) {
                        const @REAL@ ce = C[ee], *wr = Wc + ee * G;
                        for (int64_t g = 0; g < G; g++) pre[g] += ce * wr[g];
                    }
                } else {
                    for (int64_t g = 0; g < G; g++) pre[g] = ctx[kbj * G + g];
                }
                for (int64_t o = 0; o < O; o++) {
                    const @REAL@ yo = yprev[o], *wr = Wy + o * G;
                    for (int64_t g = 0; g < G; g++) pre[g] += yo * wr[g];
                }
                for (int64_t i = 0; i < H2; i++) RZ[i] = pre[i];
                for (int64_t h = 0; h < H; h++) {
                    const @REAL@ sh = s[h], *ur = Urz + h * H2;
                    for (int64_t i = 0; i < H2; i++) RZ[i] += sh * ur[i];
                }
                for (int64_t i = 0; i < H2; i++) RZ[i] = sigm_@SUF@(RZ[i]);
                for (int64_t h = 0; h < H; h++) { rs[h] = RZ[h] * s[h]; P[h] = pre[H2 + h]; }
                for (int64_t h = 0; h < H; h++) {
                    const @REAL@ r = rs[h], *ur = Up + h * H;
                    for (int64_t i = 0; i < H; i++) P[i] += r * ur[i];
                }
                for (int64_t h = 0; h < H; h++) {
                    P[h] = tanh_@SUF@(P[h]);
                    S[h] = s[h] + RZ[H + h] * (P[h] - s[h]);
                }
                for (int64_t o = 0; o < O; o++) LG[o] = pre[3 * H + o];
                for (int64_t h = 0; h < H; h++) {
                    const @REAL@ sh = S[h], *ur = Uo + h * O;
                    for (int64_t o = 0; o < O; o++) LG[o] += sh * ur[o];
                }
                for (int64_t o = 0; o < O; o++) { Y[o] = sigm_@SUF@(LG[o]); yprev[o] = Y[o]; }
                s = S;
            }
        }
    }
    free(pre);
}

/* Backward pass: gradients w.r.t. every input given those of logits and states (either
   may be NULL). Gradient outputs are zero-initialised by the caller; NULL ones (d_encT,
   d_keysT, d_w_a, d_v_a, d_w_c, d_b_c, d_ctx) are skipped. */
void dec_backward_@SUF@(
    int64_t K, int64_t B, int64_t T, int64_t E, int64_t A, int64_t H, int64_t O,
    const int64_t *lengths, const @REAL@ *s0, const @REAL@ *encT, const @REAL@ *keysT,
    const @REAL@ *w_a, const @REAL@ *v_a, const @REAL@ *w_c, const @REAL@ *b_c,
    const @REAL@ *ctx, const @REAL@ *w_y, const @REAL@ *u_rz, const @REAL@ *u_p,
    const @REAL@ *u_o, const @REAL@ *states, const @REAL@ *alpha, const @REAL@ *rz,
    const @REAL@ *p, const @REAL@ *y, const @REAL@ *q, const @REAL@ *c,
    const @REAL@ *g_logits, const @REAL@ *g_states,
    @REAL@ *d_s0, @REAL@ *d_encT, @REAL@ *d_keysT, @REAL@ *d_w_a, @REAL@ *d_v_a,
    @REAL@ *d_w_c, @REAL@ *d_b_c, @REAL@ *d_ctx, @REAL@ *d_w_y, @REAL@ *d_u_rz,
    @REAL@ *d_u_p, @REAL@ *d_u_o)
{
    const int64_t G = 3 * H + O, H2 = 2 * H;
    const int attend = encT != 0;
    @REAL@ *buf = malloc(sizeof(@REAL@) * (G + 4 * H + 3 * O + 2 * T + E + A));
    @REAL@ *dpre = buf, *ds = dpre + G, *dsp = ds + H, *drs = dsp + H, *zero_h = drs + H;
    @REAL@ *dy = zero_h + H, *dyp = dy + O, *zero_o = dyp + O;
    @REAL@ *dal = zero_o + O, *de = dal + T, *dc = de + T, *dq = dc + E;
    for (int64_t h = 0; h < H; h++) zero_h[h] = 0;
    for (int64_t o = 0; o < O; o++) zero_o[o] = 0;
    (void)b_c;
    for (int64_t k = 0; k < K; k++) {
        const @REAL@ *Wa = w_a + k * H * A, *Va = v_a + k * A, *Wc = w_c + k * E * G;
        const @REAL@ *Wy = w_y + k * O * G;
        const @REAL@ *Urz = u_rz + k * H * H2, *Up = u_p + k * H * H, *Uo = u_o + k * H * O;
        @REAL@ *dWa = d_w_a ? d_w_a + k * H * A : 0, *dVa = d_v_a ? d_v_a + k * A : 0;
        @REAL@ *dWc = d_w_c ? d_w_c + k * E * G : 0, *dBc = d_b_c ? d_b_c + k * G : 0;
        @REAL@ *dWy = d_w_y + k * O * G, *dUrz = d_u_rz + k * H * H2;
        @REAL@ *dUp = d_u_p + k * H * H, *dUo = d_u_o + k * H * O;
        for (int64_t b = 0; b < B; b++) {
            const int64_t kb = k * B + b, L = lengths[b];
            const @REAL@ *enc = attend ? encT + kb * E * T : 0;
            const @REAL@ *keys = attend ? keysT + kb * A * T : 0;
            @REAL@ *denc = (attend && d_encT) ? d_encT + kb * E * T : 0;
            @REAL@ *dkeys = (attend && d_keysT) ? d_keysT + kb * A * T : 0;
            for (int64_t h = 0; h < H; h++) ds[h] = 0;
            for (int64_t o = 0; o < O; o++) dy[o] = 0;
            for (int64_t j = L - 1; j >= 0; j--) {
                const int64_t kbj = kb * T + j;
                const @REAL@ *S = states + kbj * H, *P = p + kbj * H, *RZ = rz + kbj * H2;
                const @REAL@ *Y = y + kbj * O;
                const @REAL@ *sp = j > 0 ? states + (kbj - 1) * H : s0 + kb * H;
                const @REAL@ *yp = j > 0 ? y + (kbj - 1) * O : zero_o;
                @REAL@ *dlg = dpre + 3 * H;
                for (int64_t o = 0; o < O; o++)
                    dlg[o] = (g_logits ? g_logits[kbj * O + o] : 0) + dy[o] * Y[o] * (1 - Y[o]);
                for (int64_t h = 0; h < H; h++) {
                    @REAL@ acc = ds[h] + (g_states ? g_states[kbj * H + h] : 0);
                    const @REAL@ *ur = Uo + h * O;
                    for (int64_t o = 0; o < O; o++) {
                        acc += ur[o] * dlg[o];
                        dUo[h * O + o] += S[h] * dlg[o];
                    }
                    ds[h] = acc;
                }
                /* s_j = s + z (p - s); p = tanh(.); r, z = sigmoid(.) */
                for (int64_t h = 0; h < H; h++) {
                    const @REAL@ z = RZ[H + h], dz = ds[h] * (P[h] - sp[h]), dp = ds[h] * z;
                    dsp[h] = ds[h] - dp;
                    dpre[H2 + h] = dp * (1 - P[h] * P[h]);
                    dpre[H + h] = dz * z * (1 - z);
                }
                for (int64_t h = 0; h < H; h++) {
                    const @REAL@ *ur = Up + h * H, rsh = RZ[h] * sp[h];
                    @REAL@ acc = 0;
                    for (int64_t i = 0; i < H; i++) {
                        acc += ur[i] * dpre[H2 + i];
                        dUp[h * H + i] += rsh * dpre[H2 + i];
                    }
                    drs[h] = acc;
                }
                for (int64_t h = 0; h < H; h++) {
                    const @REAL@ r = RZ[h];
                    dsp[h] += drs[h] * r;
                    dpre[h] = drs[h] * sp[h] * r * (1 - r);
                }
                for (int64_t h = 0; h < H; h++) {
                    const @REAL@ *ur = Urz + h * H2, sh = sp[h];
                    @REAL@ acc = 0;
                    for (int64_t i = 0; i < H2; i++) {
                        acc += ur[i] * dpre[i];
                        dUrz[h * H2 + i] += sh * dpre[i];
                    }
                    dsp[h] += acc;
                }
                for (int64_t o = 0; o < O; o++) {
                    const @REAL@ *wr = Wy + o * G;
                    @REAL@ acc = 0;
                    for (int64_t g = 0; g < G; g++) {
                        acc += wr[g] * dpre[g];
                        dWy[o * G + g] += yp[o] * dpre[g];
                    }
                    dyp[o] = acc;
                }
                if (d_ctx) for (int64_t g = 0; g < G; g++) d_ctx[kbj * G + g] = dpre[g];
                if (attend) {
                    const @REAL@ *Q = q + kbj * A, *C = c + kbj * E, *AL = alpha + kbj * T;
                    if (dBc) for (int64_t g = 0; g < G; g++) dBc[g] += dpre[g];
                    for (int64_t ee = 0; ee < E; ee++) {
                        const @REAL@ *wr = Wc + ee * G, ce = C[ee];
                        @REAL@ acc = 0;
                        for (int64_t g = 0; g < G; g++) {
                            acc += wr[g] * dpre[g];
                            dWc[ee * G + g] += ce * dpre[g];
                        }
                        dc[ee] = acc;
                    }
                    for (int64_t t = 0; t < L; t++) dal[t] = 0;
                    for (int64_t ee = 0; ee < E; ee++) {
                        const @REAL@ *er = enc + ee * T, dce = dc[ee];
                        for (int64_t t = 0; t < L; t++) dal[t] += er[t] * dce;
                        if (denc) {
                            @REAL@ *dr = denc + ee * T;
                            for (int64_t t = 0; t < L; t++) dr[t] += AL[t] * dce;
                        }
                    }
                    @REAL@ dot = 0;
                    for (int64_t t = 0; t < L; t++) dot += AL[t] * dal[t];
                    for (int64_t t = 0; t < L; t++) de[t] = AL[t] * (dal[t] - dot);
                    for (int64_t a = 0; a < A; a++) {
                        const @REAL@ *kr = keys + a * T, qa = Q[a], va = Va[a];
                        @REAL@ *dkr = dkeys ? dkeys + a * T : 0;
                        @REAL@ accv = 0, accq = 0;
                        if (dkr) for (int64_t t = 0; t < L; t++) {
                            const @REAL@ th = tanh_@SUF@(kr[t] + qa);   /* recomputed */
                            const @REAL@ g = de[t] * (1 - th * th);
                            accv += de[t] * th;
                            accq += g;
                            dkr[t] += va * g;
                        } else for (int64_t t = 0; t < L; t++) {
                            const @REAL@ th = tanh_@SUF@(kr[t] + qa);
                            accv += de[t] * th;
                            accq += de[t] * (1 - th * th);
                        }
                        if (dVa) dVa[a] += accv;
                        dq[a] = va * accq;
                    }
                    for (int64_t h = 0; h < H; h++) {
                        const @REAL@ *wr = Wa + h * A, sh = sp[h];
                        @REAL@ acc = 0;
                        for (int64_t a = 0; a < A; a++) {
                            acc += wr[a] * dq[a];
                            if (dWa) dWa[h * A + a] += sh * dq[a];
                        }
                        dsp[h] += acc;
                    }
                }
                for (int64_t h = 0; h < H; h++) ds[h] = dsp[h];
                for (int64_t o = 0; o < O; o++) dy[o] = dyp[o];
            }
            for (int64_t h = 0; h < H; h++) d_s0[kb * H + h] = ds[h];
        }
    }
    free(buf);
}

/* LSTM recurrence of N = K * D independent LSTMs (D = 2: even n forward, odd n reading
   each sequence backwards from its last real step). xw: input projections incl. bias,
   gate order (i, f, o, g), step (n, b, t) at xw + n*sn + b*sb + t*st (element strides;
   the 4H gates contiguous), e.g. (N,B,T,4H) or (B,T,N,4H); w_hh (N,H,4H). Outputs
   (zero-initialised): acts (N,B,T,4H) gate activations, cells and hs (N,B,T,H), in
   original time order; steps t >= lengths[b] are not computed. */
void lstm_forward_@SUF@(int64_t N, int64_t D, int64_t B, int64_t T, int64_t H,
    int64_t sn, int64_t sb, int64_t st,
    const int64_t *lengths, const @REAL@ *xw, const @REAL@ *w_hh,
    @REAL@ *acts, @REAL@ *cells, @REAL@ *hs)
{
    const int64_t H4 = 4 * H, H3 = 3 * H;
    @REAL@ *zero = calloc(2 * H, sizeof(@REAL@));
    for (int64_t n = 0; n < N; n++) {
        const @REAL@ *W = w_hh + n * H * H4;
        const int backward = (n % D) == 1;
        for (int64_t b = 0; b < B; b++) {
            const int64_t nb = n * B + b, L = lengths[b];
            const @REAL@ *h = zero, *c = zero + H;
            for (int64_t i = 0; i < L; i++) {
                const int64_t t = backward ? L - 1 - i : i, nbt = nb * T + t;
                @REAL@ *g = acts + nbt * H4, *C = cells + nbt * H, *Hh = hs + nbt * H;
                const @REAL@ *x = xw + n * sn + b * sb + t * st;
                for (int64_t u = 0; u < H4; u++) g[u] = x[u];
                for (int64_t v = 0; v < H; v++) {
                    const @REAL@ hv = h[v], *wr = W + v * H4;
                    for (int64_t u = 0; u < H4; u++) g[u] += hv * wr[u];
                }
                for (int64_t u = 0; u < H3; u++) g[u] = sigm_@SUF@(g[u]);
                for (int64_t u = H3; u < H4; u++) g[u] = tanh_@SUF@(g[u]);
                for (int64_t v = 0; v < H; v++) {
                    C[v] = g[H + v] * c[v] + g[v] * g[H3 + v];
                    Hh[v] = g[2 * H + v] * tanh_@SUF@(C[v]);
                }
                h = Hh;
                c = C;
            }
        }
    }
    free(zero);
}

/* Backward through time: d_xw (strides sn, sb, st as xw) and d_w_hh (N,H,4H),
   zero-initialised. */
void lstm_backward_@SUF@(int64_t N, int64_t D, int64_t B, int64_t T, int64_t H,
    int64_t sn, int64_t sb, int64_t st, const int64_t *lengths, const @REAL@ *w_hh,
    const @REAL@ *acts, const @REAL@ *cells, const @REAL@ *hs, const @REAL@ *g_hs,
    @REAL@ *d_xw, @REAL@ *d_w_hh)
{
    const int64_t H4 = 4 * H;
    @REAL@ *buf = calloc(4 * H, sizeof(@REAL@));
    @REAL@ *dh = buf, *dc = buf + H, *zero = buf + 2 * H;
    for (int64_t n = 0; n < N; n++) {
        const @REAL@ *W = w_hh + n * H * H4;
        @REAL@ *dW = d_w_hh + n * H * H4;
        const int backward = (n % D) == 1;
        for (int64_t b = 0; b < B; b++) {
            const int64_t nb = n * B + b, L = lengths[b];
            for (int64_t v = 0; v < H; v++) { dh[v] = 0; dc[v] = 0; }
            for (int64_t i = L - 1; i >= 0; i--) {
                const int64_t t = backward ? L - 1 - i : i, nbt = nb * T + t;
                const int64_t tp = backward ? t + 1 : t - 1;
                const @REAL@ *g = acts + nbt * H4, *C = cells + nbt * H;
                const @REAL@ *hp = i > 0 ? hs + (nb * T + tp) * H : zero;
                const @REAL@ *cp = i > 0 ? cells + (nb * T + tp) * H : zero;
                const @REAL@ *gh = g_hs + nbt * H;
                @REAL@ *dg = d_xw + n * sn + b * sb + t * st;
                for (int64_t v = 0; v < H; v++) {
                    const @REAL@ ig = g[v], fg = g[H + v], og = g[2 * H + v];
                    const @REAL@ gg = g[3 * H + v], tc = tanh_@SUF@(C[v]);
                    const @REAL@ dhv = dh[v] + gh[v];
                    const @REAL@ dcv = dc[v] + dhv * og * (1 - tc * tc);
                    dg[v] = dcv * gg * ig * (1 - ig);
                    dg[H + v] = dcv * cp[v] * fg * (1 - fg);
                    dg[2 * H + v] = dhv * tc * og * (1 - og);
                    dg[3 * H + v] = dcv * ig * (1 - gg * gg);
                    dc[v] = dcv * fg;
                }
                for (int64_t v = 0; v < H; v++) {
                    const @REAL@ *wr = W + v * H4, hv = hp[v];
                    @REAL@ *dwr = dW + v * H4;
                    @REAL@ acc = 0;
                    for (int64_t u = 0; u < H4; u++) {
                        acc += wr[u] * dg[u];
                        dwr[u] += hv * dg[u];
                    }
                    dh[v] = acc;
                }
            }
        }
    }
    free(buf);
}

/* Local additive intra-attention (keras-self-attention, sigmoid scores) for all (k, b):
   e_{t,i} = w_a . tanh(q_t + kx_{t+lo+i}) + b_a over the window i < W, keys inside the
   sequence only; a_t = softmax_i(sigmoid(e_{t,i})); out_t = sum_i a_{t,i} x_{t+lo+i}.
   q, kx (K,B,T,U) (q includes b_h); x (K,B,T,F); w_a (K,U); b_a (K). Outputs
   (zero-initialised): out (K,B,T,F), attn (K,B,T,W), sig (K,B,T,W). */
void intra_forward_@SUF@(int64_t K, int64_t B, int64_t T, int64_t F, int64_t U,
    int64_t W, int64_t lo, const int64_t *lengths, const @REAL@ *q, const @REAL@ *kx,
    const @REAL@ *x, const @REAL@ *w_a, const @REAL@ *b_a, @REAL@ *out, @REAL@ *attn,
    @REAL@ *sig)
{
    for (int64_t k = 0; k < K; k++) {
        const @REAL@ *wa = w_a + k * U, ba = b_a[k];
        for (int64_t b = 0; b < B; b++) {
            const int64_t kb = k * B + b, L = lengths[b];
            for (int64_t t = 0; t < L; t++) {
                const int64_t kbt = kb * T + t;
                const @REAL@ *qt = q + kbt * U;
                @REAL@ *A = attn + kbt * W, *SG = sig + kbt * W, *o = out + kbt * F;
                @REAL@ z = 0;
                for (int64_t i = 0; i < W; i++) {
                    const int64_t tp = t + lo + i;
                    if (tp < 0 || tp >= L) continue;
                    const @REAL@ *kt = kx + (kb * T + tp) * U;
                    @REAL@ e = ba;
                    for (int64_t u = 0; u < U; u++) e += wa[u] * tanh_@SUF@(qt[u] + kt[u]);
                    SG[i] = sigm_@SUF@(e);
                    A[i] = exp(SG[i]);        /* sigmoid in (0, 1): no overflow */
                    z += A[i];
                }
                for (int64_t i = 0; i < W; i++) {
                    const int64_t tp = t + lo + i;
                    if (tp < 0 || tp >= L) continue;
                    A[i] /= z;
                    const @REAL@ *xv = x + (kb * T + tp) * F, ai = A[i];
                    for (int64_t f = 0; f < F; f++) o[f] += ai * xv[f];
                }
            }
        }
    }
}

/* Backward of intra_forward given d_out (K,B,T,F) and d_attn (K,B,T,W) (may be NULL).
   Gradients (zero-initialised): d_q, d_kx (K,B,T,U), d_x (K,B,T,F), d_w_a (K,U),
   d_b_a (K). */
void intra_backward_@SUF@(int64_t K, int64_t B, int64_t T, int64_t F, int64_t U,
    int64_t W, int64_t lo, const int64_t *lengths, const @REAL@ *q, const @REAL@ *kx,
    const @REAL@ *x, const @REAL@ *w_a, const @REAL@ *attn, const @REAL@ *sig,
    const @REAL@ *d_out, const @REAL@ *d_attn, @REAL@ *d_q, @REAL@ *d_kx, @REAL@ *d_x,
    @REAL@ *d_w_a, @REAL@ *d_b_a)
{
    @REAL@ *da = malloc(sizeof(@REAL@) * (W + U)), *th = da + W;
    for (int64_t k = 0; k < K; k++) {
        const @REAL@ *wa = w_a + k * U;
        @REAL@ *dwa = d_w_a + k * U;
        for (int64_t b = 0; b < B; b++) {
            const int64_t kb = k * B + b, L = lengths[b];
            for (int64_t t = 0; t < L; t++) {
                const int64_t kbt = kb * T + t;
                const @REAL@ *qt = q + kbt * U, *A = attn + kbt * W, *SG = sig + kbt * W;
                const @REAL@ *go = d_out ? d_out + kbt * F : 0;
                @REAL@ *dqt = d_q + kbt * U, dot = 0;
                for (int64_t i = 0; i < W; i++) {
                    const int64_t tp = t + lo + i;
                    da[i] = 0;
                    if (tp < 0 || tp >= L) continue;
                    @REAL@ acc = d_attn ? d_attn[kbt * W + i] : 0;
                    if (go) {
                        const @REAL@ *xv = x + (kb * T + tp) * F;
                        @REAL@ *dxv = d_x + (kb * T + tp) * F;
                        const @REAL@ ai = A[i];
                        for (int64_t f = 0; f < F; f++) {
                            acc += go[f] * xv[f];
                            dxv[f] += ai * go[f];
                        }
                    }
                    da[i] = acc;
                    dot += A[i] * acc;
                }
                for (int64_t i = 0; i < W; i++) {
                    const int64_t tp = t + lo + i;
                    if (tp < 0 || tp >= L) continue;
                    /* softmax, then sigmoid, backward */
                    const @REAL@ de = A[i] * (da[i] - dot) * SG[i] * (1 - SG[i]);
                    const @REAL@ *kt = kx + (kb * T + tp) * U;
                    @REAL@ *dkt = d_kx + (kb * T + tp) * U;
                    d_b_a[k] += de;
                    for (int64_t u = 0; u < U; u++)       /* recomputed, not stored */
                        th[u] = tanh_@SUF@(qt[u] + kt[u]);
                    for (int64_t u = 0; u < U; u++) {
                        const @REAL@ g = de * wa[u] * (1 - th[u] * th[u]);
                        dwa[u] += de * th[u];
                        dqt[u] += g;
                        dkt[u] += g;
                    }
                }
            }
        }
    }
    free(da);
}
"""

_HEADER = "#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n"

# float32 tanh: odd 13/6 rational approximation on [-7.9053, 7.9053] (the minimax fit of
# Eigen's fast float tanh); max error 2.6e-7 (absolute and relative) over the reals,
# about 2 float ulp. Branch-free, no libm call: the attention loops over t vectorise
# into straight FMAs (the attention loop runs 1.5x faster than through expf).
_TANH_F32 = """\
    const float c = 7.90531110763549805f;
    x = x < -c ? -c : (x > c ? c : x);
    const float x2 = x * x;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return x * p / q;"""

# float64 keeps an exp-based tanh (gradient checks run in float64)
_TANH_F64 = """\
    x = x < -20 ? -20 : (x > 20 ? 20 : x);
    double e = exp(2 * x);
    return (e - 1) / (e + 1);"""


def _source():
    body = [_TEMPLATE.replace("@TANH@", _TANH_F32).replace("@REAL@", "float")
            .replace("@SUF@", "f32").replace("exp(", "expf("),
            _TEMPLATE.replace("@TANH@", _TANH_F64).replace("@REAL@", "double")
            .replace("@SUF@", "f64")]
    return _HEADER + "\n".join(body)


# The parts of fast-math that speed up these loops (vectorised reductions, no errno),
# without -ffast-math itself: linking with it sets flush-to-zero / denormals-are-zero
# for the whole process (gcc's crtfastmath.o), changing numpy and torch results elsewhere.
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math",
          "-fno-signed-zeros", "-fassociative-math", "-freciprocal-math", "-shared", "-fPIC"]
_lock = threading.Lock()
_state = {"lib": None, "tried": False}


def _cpu_signature():
    # -march=native code must not be loaded on another CPU sharing the cache folder
    parts = [platform.machine(), platform.processor(), sys.platform]
    try:
        with open("/proc/cpuinfo") as f:
            parts += sorted({line for line in f if line.startswith(("flags", "model name"))})
    except OSError:
        pass
    return "".join(parts)


def _cache_dir():
    base = os.environ.get("SKLEARN_S2AU_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "sklearn_s2au"


def _build():
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        logger.info("no C compiler (%s) found: the networks use torch loops", compiler)
        return None
    source = _source()
    key = hashlib.sha256((source + " ".join(_FLAGS) + compiler + _cpu_signature())
                         .encode()).hexdigest()[:16]
    for folder in (_cache_dir(), Path(tempfile.gettempdir()) / "sklearn_s2au"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"kernels_{key}.so"
            if not target.exists():
                with tempfile.TemporaryDirectory(dir=folder) as tmp:
                    src = Path(tmp) / "kernels.c"
                    src.write_text(source)
                    out = Path(tmp) / "kernels.so"
                    subprocess.run([compiler, *_FLAGS, "-o", str(out), str(src), "-lm"],
                                   check=True, capture_output=True, timeout=300)
                    os.replace(out, target)       # atomic: safe with parallel workers
            return ctypes.CDLL(str(target))
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            logger.info("could not build the compiled loops in %s: %s %s",
                        folder, exc, detail.decode(errors="replace")[:500])
    return None


def load():
    """The compiled library, or None (no compiler, build failure, or disabled)."""
    if os.environ.get("SKLEARN_S2AU_NO_CKERNELS", "") not in ("", "0"):
        return None
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            try:
                _state["lib"] = _build()
            except Exception as exc:  # never let an optional speed-up break training
                logger.warning("compiled loops unavailable (%s); using torch loops", exc)
                _state["lib"] = None
        return _state["lib"]
