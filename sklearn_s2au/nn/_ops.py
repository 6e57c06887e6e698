"""The compiled tier as torch operations: a typed boundary, threads, autograd.

Each operation checks the devices, dtypes and shapes of its inputs and raises a
ValueError naming the argument before any compiled code runs (the kernels do not check
bounds), runs the `_kernels` loops on the sequences of the batch split over threads,
and registers its backward with autograd (``torch.autograd.Function``; once
differentiable: double backward needs the ``"torch"`` backend).

Threads: the sequences ``(k, b)`` of a call are dealt to `loop_threads` threads (the
kernels release the GIL): the count `use_loop_threads` sets (the estimators do, from
``n_threads``), else ``torch.get_num_threads()``, so a limit on torch's threads
(``OMP_NUM_THREADS``, joblib's workers) limits these loops too.
The backward loops accumulate the weight gradients of a fixed number of groups of
sequences in their own buffers and sum them in a fixed order: results do not depend on
the number of threads.
"""

import contextvars
import os
import threading
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.autograd.function import once_differentiable

try:
    from . import _kernels
except ImportError as exc:          # pragma: no cover - numba is a dependency
    _kernels = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None

__all__ = ["BACKENDS", "resolve_backend", "compiled_available", "decoder", "bilstm",
           "intra_attention"]

BACKENDS = ("auto", "compiled", "torch")
_GROUPS = 8            # weight-gradient groups in backward (fixed: thread-independent sums)
_pool = {"executor": None}
_pool_lock = threading.Lock()


def compiled_available():
    """Whether the compiled loops (numba) can be imported."""
    return _kernels is not None


def resolve_backend(backend, device, dtype):
    """The backend that runs for tensors on ``device`` of ``dtype``: 'compiled' or 'torch'.

    ``"auto"`` is the compiled loops for float32/float64 CPU tensors and torch
    otherwise (e.g. CUDA); ``"compiled"`` raises where they cannot run.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    device = torch.device(device)
    runnable = (device.type == "cpu" and dtype in (torch.float32, torch.float64)
                and compiled_available())
    if backend == "torch" or (backend == "auto" and not runnable):
        return "torch"
    if not runnable:
        why = (f"numba could not be imported ({_IMPORT_ERROR})" if not compiled_available()
               else f"they run float32/float64 tensors on the CPU, got {dtype} on {device}")
        raise ValueError(f"backend='compiled' cannot run here: {why}. Use backend='auto' "
                         f"(torch where the compiled loops cannot run) or 'torch'.")
    return "compiled"


# ---- the typed boundary ------------------------------------------------------------------

def _check(op, args, dims):
    """Check devices, dtypes and shapes; ``args`` maps name -> (tensor or None, spec).

    A spec is a tuple of dimension names (letters shared between arguments must agree)
    or ints; ``dims`` gets the sizes found. Returns the common dtype.
    """
    dtype = None
    for name, (tensor, spec) in args.items():
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got "
                            f"{type(tensor).__name__}.")
        if tensor.device.type != "cpu":
            raise ValueError(f"{op}: the compiled loops run on the CPU, but {name} is on "
                             f"{tensor.device}; use backend='torch' (or 'auto') there.")
        if name == "lengths":
            if tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
                raise ValueError(f"{op}: lengths must hold integers, got {tensor.dtype}.")
        else:
            if tensor.dtype not in (torch.float32, torch.float64):
                raise ValueError(f"{op}: {name} must be float32 or float64, got "
                                 f"{tensor.dtype}.")
            if dtype is None:
                dtype = tensor.dtype
            elif tensor.dtype != dtype:
                raise ValueError(f"{op}: {name} is {tensor.dtype} but the other inputs are "
                                 f"{dtype}; pass tensors of one dtype.")
        if tensor.dim() != len(spec):
            raise ValueError(f"{op}: {name} must have {len(spec)} dimensions "
                             f"{tuple(spec)}, got shape {tuple(tensor.shape)}.")
        for axis, (size, want) in enumerate(zip(tensor.shape, spec)):
            expected = want if isinstance(want, int) else dims.setdefault(want, size)
            if size != expected:
                raise ValueError(f"{op}: {name} has shape {tuple(tensor.shape)}, but its "
                                 f"axis {axis} ({want}) must be {expected} to match the "
                                 f"other inputs.")
    return dtype


def _lengths(op, lengths, t_len):
    lengths = lengths.detach().to(torch.int64).contiguous()
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > t_len):
        raise ValueError(f"{op}: lengths must lie in [0, {t_len}], got "
                         f"{lengths.min().item()}..{lengths.max().item()}.")
    return lengths


def _np(tensor):
    return tensor.detach().numpy()


def _dummy(dtype, ndim):
    return np.zeros((0,) * ndim, dtype=dtype)


# ---- threads -----------------------------------------------------------------------------

_loop_threads = contextvars.ContextVar("sklearn_s2au_loop_threads", default=None)


def loop_threads():
    """Threads of the compiled loops: `use_loop_threads`' count, else torch's."""
    n = _loop_threads.get()
    return torch.get_num_threads() if n is None else n


@contextmanager
def use_loop_threads(n):
    """Run the compiled loops on ``n`` threads inside the block (this context only)."""
    token = _loop_threads.set(int(n))
    try:
        yield
    finally:
        _loop_threads.reset(token)


def _executor():
    with _pool_lock:
        if _pool["executor"] is None:
            _pool["executor"] = ThreadPoolExecutor(
                max_workers=max(os.cpu_count() or 1, 1), thread_name_prefix="sklearn_s2au")
        return _pool["executor"]


def _items(n_models, lengths):
    """The (model, batch) pairs with a real step, longest first (balances the threads)."""
    lens = lengths.numpy()
    b_idx = np.flatnonzero(lens > 0)
    b_idx = b_idx[np.argsort(-lens[b_idx], kind="stable")]
    k_idx = np.arange(n_models)
    items = np.stack(np.broadcast_arrays(k_idx[None, :], b_idx[:, None]), -1)
    return np.ascontiguousarray(items.reshape(-1, 2).astype(np.int64))


def _run(tasks):
    """Run the callables, spread over `loop_threads` threads; the caller runs one."""
    n_threads = max(1, min(loop_threads(), len(tasks)))
    if n_threads == 1:
        for task in tasks:
            task()
        return
    shares = [tasks[i::n_threads] for i in range(n_threads)]

    def run_share(share):
        for task in share:
            task()

    futures = [_executor().submit(run_share, share) for share in shares[1:]]
    try:
        run_share(shares[0])
    finally:
        for future in futures:
            future.result()


def _forward(kernel, items, *args):
    n = max(1, min(loop_threads(), len(items)))
    _run([lambda part=part: kernel(part, *args) for part in _deal(items, n)])


def _deal(items, n):
    """``items`` dealt round-robin into ``n`` parts, each C-contiguous (strided parts
    would make numba compile every kernel a second time, for a strided layout)."""
    return [np.ascontiguousarray(items[i::n]) for i in range(n)]


def _groups(items):
    return _deal(items, max(1, min(_GROUPS, len(items))))


# ---- decoder -----------------------------------------------------------------------------

class _Decoder(torch.autograd.Function):

    @staticmethod
    def forward(ctx, s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y,
                u_rz, u_p, u_o):
        attend = enc is not None
        k, b, h_size = s0.shape
        n_out = w_y.shape[1]
        t_len = key_mask.shape[1]
        dtype = s0.dtype
        npd = np.float32 if dtype == torch.float32 else np.float64
        lengths = key_mask.sum(1).to(torch.int64)
        enc_t = enc.transpose(2, 3).contiguous() if attend else None
        keys_t = keys.transpose(2, 3).contiguous() if attend else None
        e_size = enc.shape[-1] if attend else 0
        a_size = keys.shape[-1] if attend else 0
        weights = {n: (w.contiguous() if w is not None else None)
                   for n, w in dict(s0=s0, w_a=w_a, v_a=v_a, w_c=w_c, b_c=b_c,
                                    ctx_all=ctx_all, w_y=w_y, u_rz=u_rz, u_p=u_p,
                                    u_o=u_o).items()}
        prior = (prior[:t_len, :t_len].to(dtype).contiguous()
                 if attend and prior is not None else None)
        zeros, empty = s0.new_zeros, s0.new_empty
        out = dict(logits=zeros((k, b, t_len, n_out)), states=zeros((k, b, t_len, h_size)),
                   alpha=zeros((k, b, t_len, t_len if attend else 0)),
                   rz=empty((k, b, t_len, 2 * h_size)), p=empty((k, b, t_len, h_size)),
                   y=empty((k, b, t_len, n_out)), q=empty((k, b, t_len, a_size)),
                   c=empty((k, b, t_len, e_size)))

        def arr(t, ndim):
            return _np(t) if t is not None else _dummy(npd, ndim)

        _forward(_kernels.dec_forward, _items(k, lengths), lengths.numpy(), _np(weights["s0"]),
                 arr(enc_t, 4), arr(keys_t, 4), arr(weights["w_a"], 3), arr(weights["v_a"], 2),
                 arr(weights["w_c"], 3), arr(weights["b_c"], 2), arr(weights["ctx_all"], 4),
                 arr(prior, 2), _np(weights["w_y"]), _np(weights["u_rz"]),
                 _np(weights["u_p"]), _np(weights["u_o"]), attend,
                 weights["ctx_all"] is not None, prior is not None,
                 *[_np(v) for v in out.values()])
        ctx.attend = attend
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(lengths, weights["s0"], enc_t, keys_t, weights["w_a"],
                              weights["v_a"], weights["w_c"], weights["w_y"], weights["u_rz"],
                              weights["u_p"], weights["u_o"], out["states"], out["alpha"],
                              out["rz"], out["p"], out["y"], out["q"], out["c"])
        ctx.has_b_c = b_c is not None
        ctx.g_size = w_y.shape[2]
        ctx.mark_non_differentiable(out["alpha"])
        return out["logits"], out["states"], out["alpha"]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_logits, grad_states, _grad_alpha):
        (lengths, s0, enc_t, keys_t, w_a, v_a, w_c, w_y, u_rz, u_p, u_o, states, alpha, rz,
         p, y, q, c) = ctx.saved_tensors
        need = ctx.needs_input_grad
        attend = ctx.attend
        k, b, h_size = s0.shape
        t_len, g_size = states.shape[2], ctx.g_size
        npd = np.float32 if s0.dtype == torch.float32 else np.float64
        items = _items(k, lengths)
        groups = _groups(items)
        n_groups = len(groups)

        d_s0 = torch.zeros_like(s0)
        d_enc_t = torch.zeros_like(enc_t) if attend else None
        d_keys_t = torch.zeros_like(keys_t) if attend else None
        need_ctx = bool(need[8])
        d_ctx = s0.new_zeros((k, b, t_len, g_size)) if need_ctx else None
        # this group's own weight gradients (zero-size where there is no attention)
        shapes = dict(w_a=(3, w_a), v_a=(2, v_a), w_c=(3, w_c), b_c=(2, None), w_y=(3, w_y),
                      u_rz=(3, u_rz), u_p=(3, u_p), u_o=(3, u_o))
        names = list(shapes)
        bufs = {n: s0.new_zeros((n_groups,) + (like.shape if like is not None else
                                               (k, g_size) if attend else (0,) * nd))
                for n, (nd, like) in shapes.items()}
        dummy4 = _dummy(npd, 4)
        g_logits = grad_logits.contiguous() if grad_logits is not None else None
        g_states = grad_states.contiguous() if grad_states is not None else None
        shared = [lengths.numpy(), _np(s0), _np(enc_t) if attend else dummy4,
                  _np(keys_t) if attend else dummy4,
                  *[(_np(w) if w is not None else _dummy(npd, nd))
                    for w, nd in ((w_a, 3), (v_a, 2), (w_c, 3))],
                  _np(w_y), _np(u_rz), _np(u_p), _np(u_o),
                  *[_np(v) for v in (states, alpha, rz, p, y, q, c)],
                  _np(g_logits) if g_logits is not None else dummy4,
                  _np(g_states) if g_states is not None else dummy4,
                  attend, g_logits is not None, g_states is not None, need_ctx,
                  _np(d_s0), _np(d_enc_t) if attend else dummy4,
                  _np(d_keys_t) if attend else dummy4,
                  _np(d_ctx) if need_ctx else dummy4]

        _run([lambda g=g: _kernels.dec_backward(groups[g], *shared,
                                                *[_np(bufs[n][g]) for n in names])
              for g in range(n_groups)])
        grads = {n: bufs[n].sum(0) for n in names}
        d_enc = d_enc_t.transpose(2, 3) if attend and need[1] else None
        d_keys = d_keys_t.transpose(2, 3) if attend and need[2] else None
        return (d_s0, d_enc, d_keys, None,
                grads["w_a"] if attend and need[4] else None,
                grads["v_a"] if attend and need[5] else None,
                grads["w_c"] if attend and need[6] else None,
                grads["b_c"] if attend and ctx.has_b_c and need[7] else None,
                d_ctx, None, grads["w_y"], grads["u_rz"], grads["u_p"], grads["u_o"])


def decoder(s0, w_y, u_rz, u_p, u_o, key_mask, enc=None, keys=None, w_a=None, v_a=None,
            w_c=None, b_c=None, ctx_all=None, prior=None):
    """The compiled decoder; arguments and returns as `_functional.attention_decoder`."""
    op = "attention_decoder"
    dims = {}
    _check(op, dict(s0=(s0, "KBH"), w_y=(w_y, "KOG"), u_rz=(u_rz, ("K", "H", "H2")),
                    u_p=(u_p, "KHH"), u_o=(u_o, "KHO")), dims)
    h, o, g = dims["H"], dims["O"], dims["G"]
    if dims["H2"] != 2 * h or g != 3 * h + o:
        raise ValueError(f"{op}: u_rz must be (K, H, 2H) and w_y (K, O, 3H + O) for H={h}, "
                         f"O={o}; got {tuple(u_rz.shape)} and {tuple(w_y.shape)}.")
    if not isinstance(key_mask, torch.Tensor) or key_mask.dim() != 2 \
            or key_mask.shape[0] != dims["B"]:
        raise ValueError(f"{op}: key_mask must be a (B, T) tensor with B={dims['B']}, got "
                         f"{getattr(key_mask, 'shape', type(key_mask).__name__)}.")
    dims["T"] = key_mask.shape[1]
    attend = enc is not None
    if attend and any(v is None for v in (keys, w_a, v_a, w_c)):
        raise ValueError(f"{op}: attention needs enc, keys, w_a, v_a and w_c.")
    if attend and b_c is None and ctx_all is None:
        raise ValueError(f"{op}: attention needs b_c or ctx_all (the gate biases).")
    if not attend and ctx_all is None:
        raise ValueError(f"{op}: without enc (attention), ctx_all is required.")
    _check(op, dict(s0=(s0, "KBH"), enc=(enc, "KBTE"), keys=(keys, "KBTA"),
                    w_a=(w_a, "KHA"), v_a=(v_a, "KA"), w_c=(w_c, "KEG"), b_c=(b_c, "KG"),
                    ctx_all=(ctx_all, "KBTG")), dims)
    if prior is not None and (prior.dim() != 2 or min(prior.shape) < dims["T"]):
        raise ValueError(f"{op}: prior must be (T, T) with T >= {dims['T']}, got "
                         f"{tuple(prior.shape)}.")
    return _Decoder.apply(s0, enc, keys, key_mask, w_a, v_a, w_c, b_c, ctx_all, prior, w_y,
                          u_rz, u_p, u_o)


# ---- BiLSTM ------------------------------------------------------------------------------

class _BiLSTM(torch.autograd.Function):

    @staticmethod
    def forward(ctx, xw, w_hh, lengths):
        k, d, b, t_len, four_h = xw.shape
        h_size = four_h // 4
        w_hh = w_hh.contiguous()
        acts = xw.new_empty(xw.shape)                 # read at real steps only
        cells = xw.new_empty((k, d, b, t_len, h_size))
        hs = xw.new_zeros((k, d, b, t_len, h_size))
        _forward(_kernels.lstm_forward, _items(k * d, lengths), lengths.numpy(), _np(xw),
                 _np(w_hh), _np(acts), _np(cells), _np(hs))
        ctx.save_for_backward(lengths, w_hh, acts, cells, hs)
        return hs

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):
        lengths, w_hh, acts, cells, hs = ctx.saved_tensors
        k, d = hs.shape[:2]
        # C-contiguous, as acts: numba compiles its loops for that layout (vectorised);
        # for strided arrays it compiles slower, scalar ones
        d_xw = torch.zeros_like(acts)
        groups = _groups(_items(k * d, lengths))
        d_w = w_hh.new_zeros((len(groups),) + w_hh.shape)
        args = (lengths.numpy(), _np(w_hh), _np(acts), _np(cells), _np(hs),
                _np(grad_hs.contiguous()), _np(d_xw))
        _run([lambda g=g: _kernels.lstm_backward(groups[g], *args, _np(d_w[g]))
              for g in range(len(groups))])
        return d_xw, d_w.sum(0), None


def bilstm(xw, w_hh, lengths):
    """The compiled BiLSTM recurrence; arguments and returns as
    `_functional.bilstm_recurrence` (steps after a sequence's end are zero)."""
    dims = {}
    _check("bilstm_recurrence", dict(xw=(xw, ("K", 2, "B", "T", "G")),
                                     w_hh=(w_hh, ("K", 2, "H", "G")),
                                     lengths=(lengths, "B")), dims)
    if dims["G"] != 4 * dims["H"]:
        raise ValueError(f"bilstm_recurrence: w_hh must be (K, 2, H, 4H), got "
                         f"{tuple(w_hh.shape)}.")
    lengths = _lengths("bilstm_recurrence", lengths, dims["T"])
    # C-contiguous: the layout numba's vectorised loops are compiled for
    return _BiLSTM.apply(xw.contiguous(), w_hh, lengths)


# ---- intra-attention ---------------------------------------------------------------------

class _IntraAttention(torch.autograd.Function):

    @staticmethod
    def forward(ctx, query, key, x, w_a, b_a, lengths, lo, width):
        k, b, t_len, u_size = query.shape
        query, key, x = query.contiguous(), key.contiguous(), x.contiguous()
        w_a, b_a = w_a.contiguous(), b_a.reshape(k).contiguous()
        out = x.new_zeros((k, b, t_len, x.shape[-1]))
        attn = x.new_zeros((k, b, t_len, width))
        sig = x.new_zeros((k, b, t_len, width))
        _forward(_kernels.intra_forward, _items(k, lengths), lengths.numpy(), lo, _np(query),
                 _np(key), _np(x), _np(w_a), _np(b_a), _np(out), _np(attn), _np(sig))
        ctx.set_materialize_grads(False)
        ctx.lo = lo
        ctx.save_for_backward(query, key, x, w_a, lengths, attn, sig)
        return out, attn

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_attn):
        query, key, x, w_a, lengths, attn, sig = ctx.saved_tensors
        k = query.shape[0]
        npd = np.float32 if x.dtype == torch.float32 else np.float64
        d_q, d_k, d_x = torch.zeros_like(query), torch.zeros_like(key), torch.zeros_like(x)
        groups = _groups(_items(k, lengths))
        d_w_a = w_a.new_zeros((len(groups),) + w_a.shape)
        d_b_a = w_a.new_zeros((len(groups), k))
        g_out = grad_out.contiguous() if grad_out is not None else None
        g_attn = grad_attn.contiguous() if grad_attn is not None else None
        args = (lengths.numpy(), ctx.lo, _np(query), _np(key), _np(x), _np(w_a), _np(attn),
                _np(sig), _np(g_out) if g_out is not None else _dummy(npd, 4),
                _np(g_attn) if g_attn is not None else _dummy(npd, 4),
                g_out is not None, g_attn is not None, _np(d_q), _np(d_k), _np(d_x))
        _run([lambda g=g: _kernels.intra_backward(groups[g], *args, _np(d_w_a[g]),
                                                  _np(d_b_a[g]))
              for g in range(len(groups))])
        return d_q, d_k, d_x, d_w_a.sum(0), d_b_a.sum(0).view(k, 1), None, None, None


def intra_attention(query, key, x, w_a, b_a, lengths, lo, width):
    """The compiled windowed intra-attention; arguments and returns as
    `_functional.local_attention`."""
    op = "local_attention"
    dims = {}
    _check(op, dict(query=(query, "KBTU"), key=(key, "KBTU"), x=(x, "KBTF"),
                    w_a=(w_a, "KU"), b_a=(b_a, ("K", 1)), lengths=(lengths, "B")), dims)
    if int(width) < 1:
        raise ValueError(f"{op}: width must be >= 1, got {width!r}.")
    lengths = _lengths(op, lengths, dims["T"])
    return _IntraAttention.apply(query, key, x, w_a, b_a, lengths, int(lo), int(width))
