"""The torch modules on tiny tensors: shapes, masking, windows, attention, backward passes."""

import numpy as np
import pytest
import torch

from sklearn_s2au.nn import (AttentionDecoder, BiLSTM, EncoderDecoderNet, IntraAttention,
                             MaskedBatchNorm, StackedNet, length_mask, reverse_within_lengths)
from sklearn_s2au.nn._functional import (attention_decoder, bilstm_recurrence,
                                         local_attention)
from sklearn_s2au.nn.layers import (TemporalConvEncoder, TransformerEncoderLayer,
                                    banded_to_dense, sinusoidal_positions)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


LENGTHS = torch.tensor([9, 6, 3, 1])

# the eight Table I networks (tiny)
CONFIGS = {
    "Stacked-NoAtt": (StackedNet, {}),
    "Stacked-IntraAtt bi=5": (StackedNet, {"intra_att": ("bi", 5)}),
    "Stacked-IntraAtt bi=15": (StackedNet, {"intra_att": ("bi", 15)}),
    "2xStacked-IntraAtt pa=15": (StackedNet, {"intra_att": ("pa", 15),
                                              "intra_att_layers": "each"}),
    "2xStacked-IntraAtt bi=15": (StackedNet, {"intra_att": ("bi", 15),
                                              "intra_att_layers": "each"}),
    "Enc-Dec-NoAtt": (EncoderDecoderNet, {"inter_att": False}),
    # the paper's decoder (free attention, no aligned input)
    "Enc-InterAtt-Dec": (EncoderDecoderNet, {"aligned_input": False,
                                             "attention_window": None}),
    "Enc-InterAtt-Dec-IntraAtt pa=15": (EncoderDecoderNet, {"intra_att": ("pa", 15)}),
    "Enc-InterAtt-Dec aligned": (EncoderDecoderNet, {"aligned_input": True,
                                                     "attention_window": None}),
    "Enc-InterAtt-Dec local": (EncoderDecoderNet, {"aligned_input": False,
                                                   "attention_window": 3.0}),
    # the package's default decoder: aligned input and a location prior
    "Enc-InterAtt-Dec default": (EncoderDecoderNet, {}),
}


@pytest.fixture(params=["compiled", "torch"])
def backend(request):
    """Run a test with the compiled loops (numba) and with torch operations."""
    return request.param


def _net(name, n_models=1, n_outputs=1, n_features=5, **extra):
    cls, kwargs = CONFIGS[name]
    return cls(n_features, hidden_size=6, n_models=n_models, n_outputs=n_outputs,
               seeds=list(range(n_models)), intra_att_units=4, **kwargs, **extra)


def _pad_garbage(x, lengths, value):
    x = x.clone()
    x[~length_mask(lengths, x.shape[1])] = value
    return x


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("training", [False, True])
def test_shapes_and_padding_never_reaches_real_frames(name, training, backend):
    torch.manual_seed(0)
    net = _net(name, n_models=2, n_outputs=3, backend=backend)
    net.train(training)
    x = torch.randn(4, 9, 5)
    outs = []
    for value in (0.0, 1e3):
        torch.manual_seed(1)          # same dropout masks
        outs.append(net(_pad_garbage(x, LENGTHS, value), LENGTHS, return_penalty=True))
    outs, penalties = [o[0] for o in outs], [o[1] for o in outs]
    assert outs[0].shape == (4, 9, 6)
    real = length_mask(LENGTHS, 9)
    assert torch.isfinite(outs[1]).all()
    assert torch.equal(outs[0][real], outs[1][real])
    if training:
        penalty = penalties[1]
        has_intra = "IntraAtt" in name and "NoAtt" not in name
        assert penalty.shape == (2,)
        assert torch.equal(penalty, penalties[0])       # padding changes nothing
        assert bool((penalty > 0).all()) if has_intra else bool((penalty == 0).all())


def test_trailing_padding_of_batch_is_not_computed():
    net = _net("Enc-InterAtt-Dec").eval()
    x = torch.randn(2, 12, 5)
    lengths = torch.tensor([7, 4])
    full = net(x, lengths)
    assert torch.equal(full[:, 7:], torch.zeros(2, 5, 1))
    assert torch.allclose(full[:, :7], net(x[:, :7], lengths), atol=1e-6)


def test_models_are_independent_and_seeded_per_model():
    three = _net("Enc-InterAtt-Dec-IntraAtt pa=15", n_models=3)       # seeds 0, 1, 2
    cls, kwargs = CONFIGS["Enc-InterAtt-Dec-IntraAtt pa=15"]
    one = cls(5, hidden_size=6, n_models=1, seeds=[2], intra_att_units=4, **kwargs)
    for (name, p3), (_, p1) in zip(three.named_parameters(), one.named_parameters()):
        assert torch.equal(p3[2], p1[0]), name
        if "bias" not in name and "b_" not in name and "gamma" not in name and "beta" not in name:
            assert not torch.equal(p3[0], p3[1]), name
    three.eval()
    one.eval()
    x = torch.randn(4, 9, 5)
    assert torch.allclose(three(x, LENGTHS)[..., 2], one(x, LENGTHS)[..., 0], atol=1e-5)
    # the loss of model 0 has no gradient on models 1 and 2
    three.train()
    three(x, LENGTHS)[..., 0].sum().backward()
    for name, p in three.named_parameters():
        assert p.grad[1:].abs().max() == 0, name


def test_bilstm_matches_torch_lstm_per_sequence(backend):
    torch.manual_seed(0)
    layer = BiLSTM(n_models=1, input_size=3, hidden_size=4, backend=backend)
    layer.reset_parameters([0])
    x = torch.randn(3, 7, 3)
    lengths = torch.tensor([7, 5, 2])
    out = layer(x, lengths)[0]
    # torch.nn.LSTM gate order is (i, f, g, o); ours is (i, f, o, g)
    order = torch.cat([torch.arange(0, 8), torch.arange(12, 16), torch.arange(8, 12)])
    ref = torch.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for d, suffix in enumerate(["", "_reverse"]):
            getattr(ref, "weight_ih_l0" + suffix).copy_(layer.kernel[0, d].T[order])
            getattr(ref, "weight_hh_l0" + suffix).copy_(layer.recurrent_kernel[0, d].T[order])
            getattr(ref, "bias_ih_l0" + suffix).copy_(layer.bias[0, d][order])
            getattr(ref, "bias_hh_l0" + suffix).zero_()
    for b, n in enumerate(lengths.tolist()):
        expected, _ = ref(x[b:b + 1, :n])
        expected = expected[0, :, :4] + expected[0, :, 4:]      # merge_mode="sum"
        assert torch.allclose(out[b, :n], expected, atol=1e-5)


def test_reverse_within_lengths_keeps_padding_and_is_an_involution():
    x = torch.arange(12.0).view(2, 6)
    rev = reverse_within_lengths(x, torch.tensor([6, 4]), 1)
    assert rev.tolist() == [[5, 4, 3, 2, 1, 0], [9, 8, 7, 6, 10, 11]]
    assert torch.equal(reverse_within_lengths(rev, torch.tensor([6, 4]), 1), x)


def test_bilstm_recurrence_matches_autograd(backend):
    torch.manual_seed(0)
    lengths = torch.tensor([5, 3, 1])
    xw = torch.randn(2, 2, 3, 5, 8, dtype=torch.float64, requires_grad=True)
    w_hh = (0.5 * torch.randn(2, 2, 2, 8, dtype=torch.float64)).requires_grad_()
    real = length_mask(lengths, 5)[None, None, :, :, None]
    fused = bilstm_recurrence(xw, w_hh, lengths, backend=backend)
    reference = bilstm_recurrence(xw, w_hh, lengths, backend="torch")
    assert torch.allclose(fused * real, reference * real)
    upstream = torch.randn_like(fused) * real
    for a, r in zip(torch.autograd.grad((fused * upstream).sum(), (xw, w_hh)),
                    torch.autograd.grad((reference * upstream).sum(), (xw, w_hh))):
        assert torch.allclose(a, r)
    assert torch.autograd.gradcheck(
        lambda a, b: bilstm_recurrence(a, b, lengths, backend=backend) * real, (xw, w_hh))


def _decoder_inputs(mode, k=2, b=3, t=5, e=4, h=3, o=2):
    torch.manual_seed(0)
    g = 3 * h + o

    def p(*shape):
        return (0.5 * torch.randn(*shape, dtype=torch.float64)).requires_grad_()

    mask = length_mask(torch.tensor([t, t - 2, 1][:b]), t)
    base = [p(k, b, h), p(k, o, g), p(k, h, 2 * h), p(k, h, h), p(k, h, o)]
    extra = {}
    if "attention" in mode:
        extra.update(enc=p(k, b, t, e), keys=p(k, b, t, h), w_a=p(k, h, h), v_a=p(k, h),
                     w_c=p(k, e, g))
        if "aligned" not in mode:
            extra["b_c"] = p(k, g)
    if "aligned" in mode:
        extra["ctx_all"] = p(k, b, t, g)
    names = list(extra)
    # a location prior (a constant, no gradient): Gaussian around the decoder step
    steps = torch.arange(t, dtype=torch.float64)
    prior = (-(steps[None, :] - steps[:, None]) ** 2 / 4.0) if "prior" in mode else None

    def run(backend, *tensors):
        kw = dict(zip(names, tensors[5:]))
        logits, states, _ = attention_decoder(*tensors[:5], mask, backend=backend,
                                              prior=prior, **kw)
        real = mask[None, :, :, None]
        return logits * real, states * real      # steps after the end are unspecified

    return run, tuple(base + list(extra.values()))


@pytest.mark.parametrize("mode", ["attention", "aligned", "attention+aligned",
                                  "attention+prior", "attention+aligned+prior"])
def test_fused_decoder_matches_autograd(mode, backend):
    run, inputs = _decoder_inputs(mode)
    fused, reference = run(backend, *inputs), run("torch", *inputs)
    upstream = [torch.randn_like(a) for a in fused]
    for a, r in zip(fused, reference):
        assert torch.allclose(a, r)
    for use_states in (True, False):        # the states output may be unused
        grads = [torch.autograd.grad(
            sum((o * u).sum() for o, u in zip(out[:1 + use_states], upstream)), inputs,
            retain_graph=True) for out in (fused, reference)]
        for a, r in zip(*grads):
            assert torch.allclose(a, r, atol=1e-10)


@pytest.mark.parametrize("mode", ["attention", "attention+prior"])
def test_fused_decoder_gradcheck(mode, backend):
    run, inputs = _decoder_inputs(mode, k=1, b=2, t=4, e=2, h=2, o=1)
    assert torch.autograd.gradcheck(lambda *ts: run(backend, *ts), inputs)


def test_location_prior_is_the_gaussian_reweighting_of_free_attention(backend):
    # alpha_prior[j, t] is proportional to alpha_free[j, t] * exp(-(t - j)^2 / (2 s^2))
    # when the decoder states agree, i.e. at the first decoder step
    torch.manual_seed(1)
    x, lengths = torch.randn(3, 8, 5), torch.tensor([8, 6, 3])
    free = _net("Enc-InterAtt-Dec", backend=backend).eval()
    local = _net("Enc-InterAtt-Dec local", backend=backend).eval()
    local.decoder.attention_window = 2.0
    local.load_state_dict(free.state_dict())
    a_free = free(x, lengths, return_attention=True)[1]["decoder"][0]
    a_local = local(x, lengths, return_attention=True)[1]["decoder"][0]
    gauss = torch.exp(-torch.arange(8.0) ** 2 / 8.0)
    for i, n in enumerate(lengths.tolist()):
        expected = a_free[i, 0, :n] * gauss[:n]
        torch.testing.assert_close(a_local[i, 0, :n], expected / expected.sum())
        assert float(a_local[i, 0, n:].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="attention_window"):
        _net("Enc-InterAtt-Dec default", attention_window=0)


def test_compiled_loops_match_torch_in_float32():
    x = torch.randn(4, 9, 5, requires_grad=True)
    real = length_mask(LENGTHS, 9)[..., None]
    results = []
    for backend in ("compiled", "torch"):
        net = EncoderDecoderNet(5, hidden_size=6, n_models=2, seeds=[0, 1],
                                intra_att=("pa", 3), intra_att_units=4,
                                backend=backend).eval()
        out = net(x, LENGTHS)
        (grad,) = torch.autograd.grad((out * real).sum(), x)
        results.append((out * real, grad))
    (compiled, grad_compiled), (loops, grad_loops) = results
    assert torch.allclose(compiled, loops, atol=1e-5)
    assert torch.allclose(grad_compiled, grad_loops, atol=1e-4)


def test_decoder_feeds_back_its_prediction():
    torch.manual_seed(0)
    dec = AttentionDecoder(n_models=1, input_size=4, hidden_size=5)
    dec.reset_parameters([0])
    h = torch.randn(1, 2, 6, 4)
    lengths = torch.tensor([6, 6])
    before, _, _ = dec(h, lengths)
    with torch.no_grad():
        dec.w_y.add_(1.0)            # weights of ŷ_{j-1} in gates, proposal and output
    after, _, _ = dec(h, lengths)
    # ŷ_0 = 0, so step 0 cannot see the change; every later step does
    assert torch.equal(before[:, :, 0], after[:, :, 0])
    assert ((before[:, :, 1:] - after[:, :, 1:]).abs() > 1e-4).all()


def test_decoder_attention_rows_sum_to_one_over_real_steps():
    net = _net("Enc-InterAtt-Dec").eval()
    _, maps = net(torch.randn(4, 9, 5), LENGTHS, return_attention=True)
    weights = maps["decoder"][0]                               # (B, T_dec, T_enc)
    real = length_mask(LENGTHS, 9)
    pair = real[:, :, None] & real[:, None, :]
    assert torch.allclose(weights.sum(-1)[real], torch.ones(int(real.sum())))
    assert weights[~pair].abs().max() == 0


def _dense_keras_intra_attention(layer, x, lengths):
    """keras-self-attention's additive SeqSelfAttention, all T x T pairs, keys masked."""
    k, b, t, f = x.shape
    q = x @ layer.w_t[:, None]                               # (K, B, T, U)
    kk = x @ layer.w_x[:, None]
    hidden = torch.tanh(q[:, :, :, None] + kk[:, :, None] + layer.b_h[:, None, None, None])
    e = (hidden * layer.w_a[:, None, None, None]).sum(-1) + layer.b_a[:, None, None]
    mode, w = layer.window
    lo = -(w - 1) if mode == "pa" else -(w // 2)
    offset = torch.arange(t)[None, :] - torch.arange(t)[:, None]
    in_window = (offset >= lo) & (offset <= lo + w - 1)
    real = length_mask(lengths, t)
    allowed = in_window[None] & real[:, None, :] & real[:, :, None]
    scores = torch.sigmoid(e).masked_fill(~allowed, -10000.0)
    a = torch.softmax(scores, -1) * real[:, :, None]
    return a @ x, a


@pytest.mark.parametrize("window", [("bi", 5), ("bi", 4), ("pa", 3), ("bi", 15)])
def test_intra_attention_equals_dense_keras_formula(window, backend):
    torch.manual_seed(0)
    layer = IntraAttention(n_models=2, n_features=3, window=window, units=4,
                           backend=backend)
    layer.reset_parameters([0, 1])
    with torch.no_grad():
        layer.b_h.normal_()
        layer.b_a.normal_()
    x = torch.randn(2, 4, 9, 3)
    out, band = layer(x, LENGTHS)
    expected, weights = _dense_keras_intra_attention(layer, x, LENGTHS)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(layer.dense_weights(band), weights, atol=1e-6)
    real = length_mask(LENGTHS, 9)
    assert torch.allclose(weights.sum(-1)[:, real], torch.ones(2, int(real.sum())))
    # regulariser: weight * sum((A A^T - I)^2) over real rows/columns / batch size
    gram = weights @ weights.transpose(-1, -2) - torch.eye(9)
    pair = (real[:, :, None] & real[:, None, :]).to(gram.dtype)
    expected_penalty = 1e-4 * (gram ** 2 * pair).sum((1, 2, 3)) / 4
    assert torch.allclose(layer.penalty(band, LENGTHS), expected_penalty, rtol=1e-4)


def test_local_attention_gradients_match_autograd(backend):
    torch.manual_seed(0)
    lengths = torch.tensor([6, 4])

    def p(*shape):
        return torch.randn(*shape, dtype=torch.float64).requires_grad_()

    inputs = (p(2, 2, 6, 3), p(2, 2, 6, 3), p(2, 2, 6, 4), p(2, 3), p(2, 1))
    fused = local_attention(*inputs, lengths, -2, 4, backend=backend)
    reference = local_attention(*inputs, lengths, -2, 4, backend="torch")
    upstream = [torch.randn_like(a) for a in fused]
    for a, r in zip(fused, reference):
        assert torch.allclose(a, r)
    grads = [torch.autograd.grad(sum((o * u).sum() for o, u in zip(out, upstream)), inputs)
             for out in (fused, reference)]
    for a, r in zip(*grads):
        assert torch.allclose(a, r)
    assert torch.autograd.gradcheck(
        lambda *ts: local_attention(*ts, lengths, -2, 4, backend=backend), inputs)


def test_past_window_never_looks_at_future_frames(backend):
    torch.manual_seed(0)
    layer = IntraAttention(n_models=1, n_features=3, window=("pa", 4), units=4,
                           backend=backend)
    layer.reset_parameters([0])
    x = torch.randn(1, 1, 10, 3, requires_grad=True)
    out, _ = layer(x, torch.tensor([10]))
    for t in range(10):
        (grad,) = torch.autograd.grad(out[0, 0, t].sum(), x, retain_graph=True)
        seen = grad[0, 0].abs().sum(-1) > 0
        assert not seen[t + 1:].any()                     # no future frame
        assert seen[max(0, t - 3): t + 1].all()           # the 4-frame past window


def test_banded_to_dense_places_offsets():
    band = torch.arange(1.0, 4.0).expand(1, 1, 4, 3)      # keys t-1, t, t+1
    dense = banded_to_dense(band, lo=-1)[0, 0]
    assert dense.tolist() == [[2, 3, 0, 0], [1, 2, 3, 0], [0, 1, 2, 3], [0, 0, 1, 2]]


def test_masked_batch_norm_uses_real_frames_only():
    torch.manual_seed(0)
    bn = MaskedBatchNorm(n_models=2, n_features=3)
    bn.reset_parameters([0, 1])
    x = torch.randn(2, 4, 9, 3)
    real = length_mask(LENGTHS, 9)
    garbage = x.clone()
    garbage[:, ~real] = 50.0
    out = bn(garbage, real)
    frames = x[:, real]                                      # (K, n_real, F)
    expected = (frames - frames.mean(1, keepdim=True)) / torch.sqrt(
        frames.var(1, unbiased=False, keepdim=True) + 1e-3)
    assert torch.allclose(out[:, real], expected, atol=1e-5)
    assert out[:, ~real].abs().max() == 0
    assert torch.allclose(bn.running_mean, 0.01 * frames.mean(1), atol=1e-6)
    bn.eval()
    eval_out = bn(x, real)
    assert torch.allclose(eval_out[:, real], (frames - bn.running_mean[:, None])
                          / torch.sqrt(bn.running_var[:, None] + 1e-3), atol=1e-5)


def test_weight_penalty_is_keras_l2_kernel_l1_bias():
    net = _net("Stacked-NoAtt")
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(0.5)
    # kernels: lstm1 (5x24)x2, lstm2 (6x24)x2, dense 6x1; biases: 24x2 x2 + 1
    n_kernel = 2 * 5 * 24 + 2 * 6 * 24 + 6
    n_bias = 2 * 24 * 2 + 1
    expected = 0.1 * n_kernel * 0.25 + 1e-4 * n_bias * 0.5
    assert net.weight_penalty(0.1, 1e-4).item() == pytest.approx(expected)


def test_invalid_module_settings_are_named():
    with pytest.raises(ValueError, match="window"):
        StackedNet(3, intra_att=("centre", 5))
    with pytest.raises(ValueError, match="intra_att_layers"):
        StackedNet(3, intra_att=("bi", 5), intra_att_layers="all")
    with pytest.raises(ValueError, match="hidden_size"):
        EncoderDecoderNet(3, hidden_size=0)
    with pytest.raises(ValueError, match=r"\(batch, time, 3\)"):
        StackedNet(3, seeds=[0])(torch.zeros(2, 4, 5), torch.tensor([4, 4]))


def test_dropout_is_drawn_per_model():
    torch.manual_seed(0)
    net = _net("Stacked-NoAtt", n_models=2, dropout=0.5)
    with torch.no_grad():       # identical weights for both models
        for p in net.parameters():
            p[1] = p[0]
    x = torch.randn(4, 9, 5)
    net.eval()
    out = net(x, LENGTHS)
    assert torch.allclose(out[..., 0], out[..., 1])
    net.train()
    out = net(x, LENGTHS)
    assert not torch.allclose(out[..., 0], out[..., 1])


def test_weights_float64_round_trip():
    # modules work in double precision as well (used by the gradient checks), and
    # float32 -> float64 -> float32 weights give back the float32 network
    net = _net("Enc-InterAtt-Dec-IntraAtt pa=15").eval()
    x = torch.randn(4, 9, 5)
    out32 = net(x, LENGTHS)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    out64 = net.double()(x.double(), LENGTHS)
    assert out64.dtype == torch.float64
    real = length_mask(LENGTHS, 9)[..., None]
    torch.testing.assert_close((out64 * real).float(), out32 * real, atol=1e-4, rtol=1e-4)
    net.float()
    for k, v in net.state_dict().items():
        assert v.dtype == state[k].dtype and torch.equal(v, state[k]), k
    torch.testing.assert_close(net(x, LENGTHS), out32)


@pytest.mark.parametrize("net_cls, kwargs", [
    (EncoderDecoderNet, {}),
    (EncoderDecoderNet, {"intra_att": ("pa", 3)}),
    (StackedNet, {"intra_att": ("bi", 3), "intra_att_layers": "each"}),
])
def test_active_models_compute_their_slice_only(net_cls, kwargs):
    """active=: the active models' logits/gradients as in the full pass, others 0."""
    torch.manual_seed(0)
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    lengths = torch.tensor([7, 4, 6])
    net = net_cls(n_features=4, hidden_size=3, intra_att_units=3, n_models=4, dropout=0.3,
                  seeds=[0, 1, 2, 3], **kwargs).double()
    active = [1, 3]
    results = []
    for models in (None, active):
        torch.manual_seed(1)                    # same dropout stream in both passes
        net.zero_grad()
        logits = net(x, lengths, active=models)
        logits.sum().backward()
        results.append((logits.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}))
    (full, full_grads), (part, part_grads) = results
    torch.testing.assert_close(part[..., active], full[..., active])
    assert torch.all(part[..., [0, 2]] == 0)
    for name, grad in part_grads.items():
        torch.testing.assert_close(grad[active], full_grads[name][active])
        assert torch.all(grad[[0, 2]] == 0), name
    with pytest.raises(ValueError, match="active models"):
        net(x, lengths, active=[4])


def test_compiled_results_do_not_depend_on_the_thread_count():
    # sequences are dealt to threads; weight gradients are summed per fixed group
    run, inputs = _decoder_inputs("attention+aligned+prior", k=2, b=3)
    lengths = torch.tensor([9, 6, 3])
    xw = torch.randn(2, 2, 3, 9, 8, dtype=torch.float64, requires_grad=True)
    w_hh = (0.5 * torch.randn(2, 2, 2, 8, dtype=torch.float64)).requires_grad_()
    upstream = torch.rand(2, 2, 3, 9, 2, dtype=torch.float64)
    results = []
    for n in (1, 2):
        torch.set_num_threads(n)
        out = run("compiled", *inputs)
        grads = torch.autograd.grad(sum(o.sum() for o in out), inputs)
        hs = bilstm_recurrence(xw, w_hh, lengths, backend="compiled")
        grads += torch.autograd.grad((hs * upstream).sum(), (xw, w_hh))
        results.append([o.detach() for o in out] + list(grads))
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("call, message", [
    (lambda t: bilstm_recurrence(t["xw"].float(), t["w_hh"], t["lengths"],
                                 backend="compiled"), "w_hh is torch.float64"),
    (lambda t: bilstm_recurrence(t["xw"][..., :7], t["w_hh"], t["lengths"],
                                 backend="compiled"),
     r"w_hh has shape \(1, 2, 2, 8\), but its axis 3 \(G\) must be 7"),
    (lambda t: bilstm_recurrence(t["xw"], t["w_hh"], t["lengths"] + 5,
                                 backend="compiled"), r"lengths must lie in \[0, 5\]"),
    (lambda t: bilstm_recurrence(t["xw"], t["w_hh"], t["lengths"].float(),
                                 backend="compiled"), "lengths must hold integers"),
    (lambda t: bilstm_recurrence(t["xw"].half(), t["w_hh"].half(), t["lengths"],
                                 backend="compiled"), "cannot run here"),
    (lambda t: local_attention(t["q"], t["q"][:, :, :4], t["v"], t["w_a"], t["b_a"],
                               t["lengths"], -1, 3, backend="compiled"),
     r"key has shape \(1, 3, 4, 2\)"),
    (lambda t: local_attention(t["q"], t["q"], t["v"], t["w_a"], t["b_a"], t["lengths"],
                               -1, 3, backend="numba"), "backend must be one of"),
])
def test_compiled_ops_check_their_inputs(call, message):
    """The typed boundary: wrong shapes, dtypes or lengths raise before compiled code runs."""
    t = dict(xw=torch.randn(1, 2, 3, 5, 8, dtype=torch.float64),
             w_hh=torch.randn(1, 2, 2, 8, dtype=torch.float64),
             lengths=torch.tensor([5, 3, 1]), q=torch.randn(1, 3, 5, 2),
             v=torch.randn(1, 3, 5, 4), w_a=torch.randn(1, 2), b_a=torch.randn(1, 1))
    with pytest.raises(ValueError, match=message):
        call(t)


def test_compiled_loops_leave_floating_point_state_alone():
    # linking with -ffast-math would set flush-to-zero / denormals-are-zero for the
    # whole process: numpy's subnormals would become 0 after the first compiled call
    import subprocess
    import sys

    code = (
        "import numpy as np, torch\n"
        "from sklearn_s2au.nn._ops import compiled_available\n"
        "tiny = np.finfo(np.float64).tiny\n"
        "assert tiny / 4 > 0 and np.float32(1e-40) > 0\n"
        "from sklearn_s2au._sequence import SequenceBatch\n"
        "from sklearn_s2au.classifiers import EncInterAttDecClassifier\n"
        "rng = np.random.RandomState(0)\n"
        "X = SequenceBatch.from_features([rng.randn(9, 3).astype(np.float32) for _ in "
        "range(4)], ['a', 'b', 'a', 'b'], 9)\n"
        "clf = EncInterAttDecClassifier(max_epochs=2, module__hidden_size=4,\n"
        "                               module__intra_att=('pa', 3), random_state=0)\n"
        "clf.fit(X, [rng.randint(0, 2, 9) for _ in range(4)])\n"
        "assert clf.backend_ == 'compiled', clf.backend_\n"
        "print(compiled_available(), tiny / 4 > 0, np.float32(1e-40) > 0,\n"
        "      float(torch.tensor(1e-40)) > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] != "True":
        pytest.skip("numba is not importable: the compiled loops are unavailable")
    assert out[1:] == ["True", "True", "True"], out


@pytest.mark.parametrize("mode", ["attention", "attention+prior", "attention+aligned+prior",
                                  "aligned"])
def test_fused_decoder_matches_an_independent_per_sequence_reference(mode, backend):
    """Equations (5)-(10) written out for one sequence at a time, in plain float64."""
    run, inputs = _decoder_inputs(mode)
    logits, states = (t.detach() for t in run(backend, *inputs))
    s0, w_y, u_rz, u_p, u_o = (t.detach().numpy() for t in inputs[:5])
    names = []
    if "attention" in mode:
        names = ["enc", "keys", "w_a", "v_a", "w_c"] + ([] if "aligned" in mode else ["b_c"])
    if "aligned" in mode:
        names.append("ctx_all")
    extra = {n: t.detach().numpy() for n, t in zip(names, inputs[5:])}
    k_models, b_size, h = s0.shape
    t_len = logits.shape[2]
    lengths = [t_len, t_len - 2, 1][:b_size]
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    for k in range(k_models):
        for b, n in enumerate(lengths):
            s, y = s0[k, b], np.zeros(w_y.shape[1])
            for j in range(n):
                if "attention" in mode:
                    e = np.array([extra["v_a"][k] @ np.tanh(extra["keys"][k, b, t]
                                                            + s @ extra["w_a"][k])
                                  for t in range(n)])
                    if "prior" in mode:
                        e = e - (np.arange(n) - j) ** 2 / 4.0
                    alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
                    c = alpha @ extra["enc"][k, b, :n]
                    pre = c @ extra["w_c"][k] + (extra["ctx_all"][k, b, j] if "aligned" in mode
                                                 else extra["b_c"][k])
                else:
                    pre = extra["ctx_all"][k, b, j].copy()
                pre = pre + y @ w_y[k]
                r = sig(pre[:h] + s @ u_rz[k][:, :h])
                z = sig(pre[h:2 * h] + s @ u_rz[k][:, h:])
                p = np.tanh(pre[2 * h:3 * h] + (r * s) @ u_p[k])
                s = (1 - z) * s + z * p
                logit = pre[3 * h:] + s @ u_o[k]
                y = sig(logit)
                np.testing.assert_allclose(logits[k, b, j].numpy(), logit, atol=1e-10)
                np.testing.assert_allclose(states[k, b, j].numpy(), s, atol=1e-10)


# --------------------------------------------------------------------------------------
# Transformer and TCN encoders
# --------------------------------------------------------------------------------------

ENCODER_NETS = {
    "Stacked": (StackedNet, {}),
    "2xStacked-IntraAtt bi=3": (StackedNet, {"intra_att": ("bi", 3),
                                             "intra_att_layers": "each"}),
    "Enc-InterAtt-Dec": (EncoderDecoderNet, {}),
    "Enc-InterAtt-Dec-IntraAtt pa=3": (EncoderDecoderNet, {"intra_att": ("pa", 3)}),
}
NEW_ENCODERS = [("transformer", {"n_heads": 2}), ("tcn", {}), ("tcn", {"tcn_causal": True})]


def _encoder_net(name, encoder, options, n_models=1, n_outputs=1, seeds=None, **extra):
    cls, kwargs = ENCODER_NETS[name]
    seeds = list(range(n_models)) if seeds is None else seeds
    return cls(5, hidden_size=6, n_models=n_models, n_outputs=n_outputs, seeds=seeds,
               intra_att_units=4, encoder=encoder, **options, **kwargs, **extra)


@pytest.mark.parametrize("name", list(ENCODER_NETS))
@pytest.mark.parametrize("encoder, options", NEW_ENCODERS)
@pytest.mark.parametrize("training", [False, True])
def test_new_encoders_padding_never_reaches_real_frames(name, encoder, options, training):
    torch.manual_seed(0)
    net = _encoder_net(name, encoder, options, n_models=2, n_outputs=3).train(training)
    x = torch.randn(4, 9, 5)
    outs = []
    for value in (0.0, 1e3):
        torch.manual_seed(1)          # same dropout masks
        outs.append(net(_pad_garbage(x, LENGTHS, value), LENGTHS))
    assert outs[0].shape == (4, 9, 6)
    real = length_mask(LENGTHS, 9)
    assert torch.isfinite(outs[1]).all()
    assert torch.equal(outs[0][real], outs[1][real])


@pytest.mark.parametrize("name", list(ENCODER_NETS))
@pytest.mark.parametrize("encoder, options", NEW_ENCODERS)
def test_new_encoders_extra_padding_changes_nothing(name, encoder, options):
    """A sequence alone, and padded to the length of a longer one: same real outputs."""
    net = _encoder_net(name, encoder, options, n_models=2).eval()
    torch.manual_seed(0)
    short, long = torch.randn(1, 5, 5), torch.randn(1, 12, 5)
    alone = net(short, torch.tensor([5]))
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 7), value=7.0), long])
    together = net(batch, torch.tensor([5, 12]))
    torch.testing.assert_close(together[0, :5], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together[1], net(long, torch.tensor([12]))[0], atol=1e-5,
                               rtol=1e-5)
    assert torch.all(together[0, 5:] == 0)


@pytest.mark.parametrize("name", ["Stacked", "Enc-InterAtt-Dec-IntraAtt pa=3"])
@pytest.mark.parametrize("encoder, options", NEW_ENCODERS)
def test_new_encoders_models_independent_and_gradients_flow(name, encoder, options):
    three = _encoder_net(name, encoder, options, n_models=3)            # seeds 0, 1, 2
    one = _encoder_net(name, encoder, options, n_models=1, seeds=[2])
    for (pname, p3), (_, p1) in zip(three.named_parameters(), one.named_parameters()):
        assert torch.equal(p3[2], p1[0]), pname
    three.eval()
    one.eval()
    x = torch.randn(4, 9, 5)
    torch.testing.assert_close(three(x, LENGTHS)[..., 2], one(x, LENGTHS)[..., 0],
                               atol=1e-5, rtol=1e-5)
    # model 0's loss moves every parameter of model 0, and none of models 1 and 2
    three.train()
    real = length_mask(LENGTHS, 9)
    (three(x, LENGTHS)[..., 0][real] ** 2).sum().backward()
    for pname, p in three.named_parameters():
        assert p.grad[1:].abs().max() == 0, pname
        assert p.grad[0].abs().max() > 0, pname


@pytest.mark.parametrize("encoder, options", NEW_ENCODERS)
def test_new_encoders_active_models_compute_their_slice_only(encoder, options):
    torch.manual_seed(0)
    x = torch.randn(3, 7, 5, dtype=torch.float64)
    lengths = torch.tensor([7, 4, 6])
    net = _encoder_net("Enc-InterAtt-Dec-IntraAtt pa=3", encoder, options, n_models=4,
                       dropout=0.3).double()
    active = [1, 3]
    results = []
    for models in (None, active):
        torch.manual_seed(1)
        net.zero_grad()
        logits = net(x, lengths, active=models)
        logits.sum().backward()
        results.append((logits.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}))
    (full, full_grads), (part, part_grads) = results
    torch.testing.assert_close(part[..., active], full[..., active])
    assert torch.all(part[..., [0, 2]] == 0)
    for pname, grad in part_grads.items():
        torch.testing.assert_close(grad[active], full_grads[pname][active])
        assert torch.all(grad[[0, 2]] == 0), pname


def test_tcn_receptive_field_centred_and_causal():
    torch.manual_seed(0)
    x = torch.randn(1, 40, 3, dtype=torch.float64)
    lengths = torch.tensor([40])
    for causal in (False, True):
        layer = TemporalConvEncoder(1, 3, 4, kernel_size=3, levels=3, causal=causal).double()
        layer.reset_parameters([0])
        with torch.no_grad():              # every ReLU open: the reach is the field
            for i in range(3):
                getattr(layer, f"bias_{i}").fill_(100.0)
        assert layer.receptive_field() == 15
        base = layer(x, lengths)[0, 0]
        t = 20
        changed = {}
        for s in range(40):
            y = x.clone()
            y[0, s] += 1.0
            changed[s] = not torch.allclose(layer(y, lengths)[0, 0, t], base[t])
        reach = [s for s, c in changed.items() if c]
        # centred: frames t-7..t+7 reach frame t; causal: t-14..t
        expected = list(range(t - 14, t + 1)) if causal else list(range(t - 7, t + 8))
        assert reach == expected


def test_transformer_attends_to_every_real_frame_and_no_padded_one():
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(1, 3, 4, n_heads=2).double()
    layer.reset_parameters([0])
    x = torch.randn(1, 10, 3, dtype=torch.float64)
    lengths = torch.tensor([8])
    base = layer(x, lengths)
    for s in range(10):
        y = x.clone()
        y[0, s] += 1.0
        moved = not torch.allclose(layer(y, lengths)[0, 0, 0], base[0, 0, 0])
        assert moved == (s < 8), s
    assert torch.all(base[0, 0, 8:] == 0)


def test_sinusoidal_positions():
    pe = sinusoidal_positions(5, 6, torch.zeros((), dtype=torch.float64))
    assert pe.shape == (5, 6)
    t = torch.arange(5, dtype=torch.float64)
    for i in range(3):
        rate = 10000.0 ** (-2 * i / 6)
        torch.testing.assert_close(pe[:, 2 * i], torch.sin(t * rate))
        torch.testing.assert_close(pe[:, 2 * i + 1], torch.cos(t * rate))
    assert sinusoidal_positions(4, 5, torch.zeros(())).shape == (4, 5)     # odd width


def test_default_encoder_is_the_bilstm():
    net = StackedNet(5, hidden_size=6, seeds=[0])
    assert net.encoder_type == "lstm"
    assert isinstance(net.lstm1, BiLSTM) and isinstance(net.lstm2, BiLSTM)
    assert isinstance(EncoderDecoderNet(5, hidden_size=6, seeds=[0]).encoder, BiLSTM)
    tcn = StackedNet(5, hidden_size=6, seeds=[0], encoder="tcn")
    assert not hasattr(tcn, "lstm1") and isinstance(tcn.encoder2, TemporalConvEncoder)
    # the default net's weights are those of a net built before the encoders existed:
    # the same parameters, in the same order, with the same values
    assert [n for n, _ in net.named_parameters()][:3] == ["lstm1.kernel",
                                                          "lstm1.recurrent_kernel",
                                                          "lstm1.bias"]


def test_invalid_encoder_settings_are_named():
    with pytest.raises(ValueError, match=r"module encoder must be one of \['lstm', "
                                         r"'transformer', 'tcn'\], got 'gru'"):
        StackedNet(5, encoder="gru")
    with pytest.raises(ValueError, match="module n_heads must be a positive integer dividing "
                                         "hidden_size=6, got 4"):
        EncoderDecoderNet(5, hidden_size=6, encoder="transformer", n_heads=4)
    with pytest.raises(ValueError, match="module tcn_levels must be a positive integer"):
        StackedNet(5, encoder="tcn", tcn_levels=0)
