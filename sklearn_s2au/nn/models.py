"""The paper's two network families (Table I), batched over ``n_models`` models.

``StackedNet``: two stacked BiLSTMs (sum merge) with optional intra-attention between
them (``intra_att_layers="between"``) or after each of them (``"each"``), then a
per-frame sigmoid unit. ``EncoderDecoderNet``: a BiLSTM encoder and the GRU-like decoder
of equations (8)-(10), with or without inter-attention, optionally followed by
intra-attention over the decoder states. Batch normalisation (masked) follows every
layer and dropout every normalised layer output.

Both take ``x`` of shape ``(B, T, F)`` and ``lengths`` ``(B,)`` and return logits of
shape ``(B, T, n_models * n_outputs)`` (model-major). Steps after the longest sequence
of a batch are never computed (their logits are 0); padded steps inside are masked.

Beyond the paper, ``encoder="transformer"`` or ``"tcn"`` replaces every BiLSTM by a
masked Transformer encoder layer (`TransformerEncoderLayer`) or a block of dilated
temporal convolutions (`TemporalConvEncoder`); the BiLSTM (``"lstm"``) is the default.
"""

import torch
from torch import nn

from .encoders import TemporalConvEncoder, TransformerEncoderLayer, check_encoder
from .layers import (AttentionDecoder, BiLSTM, IntraAttention, KModule, MaskedBatchNorm,
                     TimeDense, check_window, length_mask)

__all__ = ["StackedNet", "EncoderDecoderNet"]


class _SequenceNet(nn.Module):
    """Shared plumbing: seeding, trimming, output layout, penalties, attention maps."""

    def __init__(self, n_features, hidden_size, dropout, batch_norm, n_models, n_outputs,
                 seeds, backend):
        super().__init__()
        for name, value in [("n_features", n_features), ("hidden_size", hidden_size),
                            ("n_models", n_models), ("n_outputs", n_outputs)]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"module {name} must be a positive integer, got {value!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"module dropout must be in [0, 1), got {dropout!r}.")
        self.n_features = n_features
        self.hidden_size = hidden_size
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.n_models = n_models
        self.n_outputs = n_outputs
        self.seeds = seeds
        self.backend = backend

    def _active(self, models):
        """``active`` as a sorted index tensor on the parameters' device, or None (all)."""
        if models is None:
            return None
        if isinstance(models, torch.Tensor):
            models = models.tolist()
        models = sorted({int(m) for m in models})
        if not models or models[0] < 0 or models[-1] >= self.n_models:
            raise ValueError(f"active models must be a non-empty subset of "
                             f"0..{self.n_models - 1}, got {models}.")
        if len(models) == self.n_models:
            return None
        return torch.tensor(models, dtype=torch.long, device=next(self.parameters()).device)

    def _init_weights(self):
        seeds = self.seeds
        if seeds is None:
            seeds = torch.randint(0, 2 ** 31 - 1, (self.n_models,)).tolist()
        for module in self.children():
            if isinstance(module, KModule):
                module.reset_parameters(seeds)

    def _norm(self, name, h, mask, active):
        if self.batch_norm:
            h = getattr(self, name)(h, mask, active)
        if active is None or not self.training or self.dropout == 0.0:
            return nn.functional.dropout(h, self.dropout, self.training)
        # draw the masks of all models, as the full pass does, and keep the active ones:
        # the random stream, hence every active model's result, does not depend on
        # which models still run
        keep = 1.0 - self.dropout
        noise = h.new_empty((self.n_models,) + h.shape[1:]).bernoulli_(keep).div_(keep)
        return h * noise.index_select(0, active)

    def _bn(self, name, size):
        if self.batch_norm:
            setattr(self, name, MaskedBatchNorm(self.n_models, size))

    def _set_encoder_options(self, encoder, n_heads, tcn_kernel_size, tcn_levels,
                             tcn_causal):
        self.encoder_type = check_encoder(encoder)
        self.n_heads = n_heads
        self.tcn_kernel_size = tcn_kernel_size
        self.tcn_levels = tcn_levels
        self.tcn_causal = bool(tcn_causal)

    def _encoder_layer(self, input_size, first):
        """One sequence layer of the chosen encoder: (B|K, B, T, F) -> (K, B, T, H)."""
        k, h = self.n_models, self.hidden_size
        if self.encoder_type == "lstm":
            return BiLSTM(k, input_size, h, backend=self.backend)
        if self.encoder_type == "transformer":
            return TransformerEncoderLayer(k, input_size, h, n_heads=self.n_heads,
                                           positional=first)
        return TemporalConvEncoder(k, input_size, h, kernel_size=self.tcn_kernel_size,
                                   levels=self.tcn_levels, causal=self.tcn_causal)

    def forward(self, x, lengths, active=None, return_attention=False,
                return_penalty=False):
        """Logits ``(B, T, n_models * n_outputs)``; optionally attention maps and penalty.

        Parameters
        ----------
        x : Tensor (B, T, n_features)
        lengths : int Tensor (B,)
        active : sequence of int or None, default=None
            Run only these models (per-model early stopping skips stopped ones): their
            logits and gradients are exactly those of the full pass (every model has
            its own weights, and the dropout masks are drawn for all models); the
            others' logits are 0 and their parameters get no gradient.
        return_attention : bool, default=False
            Also return a dict of attention weights, each ``(n_models, B, T, T)``
            (query step × key step; rows of real steps sum to 1 over real keys, rows of
            padded steps are 0; zero for models not run).
        return_penalty : bool, default=False
            Also return the intra-attention regulariser of this pass, ``(n_run,)`` for
            the models run (zeros without intra-attention).

        Returns
        -------
        logits, or a tuple ``(logits, maps)``, ``(logits, penalty)`` or
        ``(logits, maps, penalty)``.
        """
        if x.dim() != 3 or x.shape[-1] != self.n_features:
            raise ValueError(f"expected x of shape (batch, time, {self.n_features}), got "
                             f"{tuple(x.shape)}.")
        active = self._active(active)
        lengths = lengths.to(torch.long)
        t_full = x.shape[1]
        t_len = int(lengths.max()) if len(lengths) else t_full
        x = x[:, :t_len]
        mask = length_mask(lengths, t_len)
        logits, weights = self._forward(x, lengths, mask, active)   # (K, B, T, O), dict
        outputs = [self._model_major(logits, active, t_full)]
        if return_attention:
            maps = {}
            for name in self.attention_layers():
                module, w = getattr(self, name), weights[name]
                if isinstance(module, IntraAttention):
                    w = module.dense_weights(w)
                # rows of padded query (decoder) steps are not attention over anything
                w = w.detach() * mask[None, :, :, None]
                if active is not None:
                    w = w.new_zeros((self.n_models,) + w.shape[1:]).index_copy(0, active, w)
                pad = t_full - t_len
                maps[name] = nn.functional.pad(w, (0, pad, 0, pad))
            outputs.append(maps)
        if return_penalty:
            n_run = self.n_models if active is None else len(active)
            penalty = logits.new_zeros(n_run)
            for name, w in weights.items():
                module = getattr(self, name)
                if isinstance(module, IntraAttention) and module.regularizer_weight:
                    penalty = penalty + module.penalty(w, lengths)
            outputs.append(penalty)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def attention_layers(self):
        """Names of the layers whose attention maps ``return_attention`` gives."""
        return [name for name, m in self.named_children()
                if isinstance(m, IntraAttention)
                or (isinstance(m, AttentionDecoder) and m.attention)]

    def _model_major(self, logits, active, t_full):
        """(K_run, B, T, O) -> (B, T_full, n_models * O): model-major, zeros elsewhere."""
        if active is not None:
            logits = logits.new_zeros((self.n_models,) + logits.shape[1:]).index_copy(
                0, active, logits)
        b, t_len = logits.shape[1:3]
        logits = logits.permute(1, 2, 0, 3).reshape(b, t_len, -1)
        if t_len < t_full:
            logits = nn.functional.pad(logits, (0, 0, 0, t_full - t_len))
        return logits

    def weight_penalty(self, l2_kernel, l1_bias):
        """Keras-style weight penalties per model: ``(n_models,)``."""
        total = next(self.parameters()).new_zeros(self.n_models)
        for module in self.modules():
            if isinstance(module, KModule):
                term = module.weight_penalty(l2_kernel, l1_bias)
                if term is not None:
                    total = total + term
        return total


class StackedNet(_SequenceNet):
    """Two stacked bidirectional LSTMs, optional intra-attention, per-frame sigmoid.

    Parameters
    ----------
    n_features : int
    hidden_size : int, default=20
    intra_att : None or ("bi" | "pa", int), default=None
        Intra-attention window; None gives Stacked-NoAtt.
    intra_att_layers : {"between", "each"}, default="between"
        "between": one intra-attention between the BiLSTMs (Stacked-IntraAtt);
        "each": one after each BiLSTM (2xStacked-IntraAtt).
    intra_att_units : int, default=32
    attention_regularizer : float, default=1e-4
    dropout : float, default=0.2
    batch_norm : bool, default=True
    n_models : int, default=1
        Independent models trained side by side (one per target).
    n_outputs : int, default=1
        Sigmoid units per model (several targets sharing one network).
    seeds : list of int or None
        Per-model initialisation seeds (drawn from torch's generator when None).
    backend : {"auto", "compiled", "torch"}, default="auto"
        The recurrences and attentions as compiled loops (numba, CPU, float32/64) or as
        torch operations with autograd (the specification, and the GPU path); "auto"
        is the compiled loops where they can run.
    encoder : {"lstm", "transformer", "tcn"}, default="lstm"
        The two stacked sequence layers: BiLSTMs (the paper), masked Transformer
        encoder layers (`~sklearn_s2au.nn.TransformerEncoderLayer`, sinusoidal
        positional encoding on the first) or blocks of dilated temporal convolutions
        (`~sklearn_s2au.nn.TemporalConvEncoder`). Extension, not in the paper.
    n_heads : int, default=4
        Attention heads of the Transformer layers (must divide ``hidden_size``).
    tcn_kernel_size, tcn_levels : int, default=3, 3
        Width and number of dilated convolutions (dilations 1, 2, 4...) per TCN block:
        with the defaults each block sees 15 frames (0.6 s at 25 Hz), the two together
        29.
    tcn_causal : bool, default=False
        Causal convolutions (past frames only) instead of centred ones.

    Examples
    --------
    >>> import torch
    >>> from sklearn_s2au.nn import StackedNet
    >>> net = StackedNet(n_features=3, hidden_size=4, intra_att=("bi", 5), seeds=[0])
    >>> net(torch.zeros(2, 7, 3), torch.tensor([7, 4])).shape
    torch.Size([2, 7, 1])
    >>> tcn = StackedNet(n_features=3, hidden_size=4, encoder="tcn", n_models=2, seeds=[0, 1])
    >>> tcn(torch.zeros(2, 7, 3), torch.tensor([7, 4])).shape
    torch.Size([2, 7, 2])
    """

    def __init__(self, n_features, hidden_size=20, intra_att=None, intra_att_layers="between",
                 intra_att_units=32, attention_regularizer=1e-4, dropout=0.2,
                 batch_norm=True, n_models=1, n_outputs=1, seeds=None, backend="auto",
                 encoder="lstm", n_heads=4, tcn_kernel_size=3, tcn_levels=3,
                 tcn_causal=False):
        super().__init__(n_features, hidden_size, dropout, batch_norm, n_models, n_outputs,
                         seeds, backend)
        self._set_encoder_options(encoder, n_heads, tcn_kernel_size, tcn_levels, tcn_causal)
        if intra_att_layers not in ("between", "each"):
            raise ValueError(f"module intra_att_layers must be 'between' or 'each', got "
                             f"{intra_att_layers!r}.")
        self.intra_att = None if intra_att is None else check_window(intra_att)
        self.intra_att_layers = intra_att_layers
        k, h = n_models, hidden_size
        # the paper's BiLSTMs keep their names (and saved weights); other encoders are
        # encoder1 / encoder2
        names = ("lstm1", "lstm2") if encoder == "lstm" else ("encoder1", "encoder2")
        self._layer_names = names
        setattr(self, names[0], self._encoder_layer(n_features, first=True))
        self._bn("bn1", h)
        if self.intra_att is not None:
            self.intra_att1 = IntraAttention(k, h, self.intra_att, intra_att_units,
                                             attention_regularizer, backend=backend)
            self._bn("bn_att1", h)
        setattr(self, names[1], self._encoder_layer(h, first=False))
        self._bn("bn2", h)
        if self.intra_att is not None and intra_att_layers == "each":
            self.intra_att2 = IntraAttention(k, h, self.intra_att, intra_att_units,
                                             attention_regularizer, backend=backend)
            self._bn("bn_att2", h)
        self.out = TimeDense(k, h, n_outputs)
        self._init_weights()

    def _forward(self, x, lengths, mask, active):
        """Logits (K_run, B, T, O) and the attention weights by module name."""
        first, second = (getattr(self, name) for name in self._layer_names)
        weights = {}
        h = self._norm("bn1", first(x, lengths, active), mask, active)
        if self.intra_att is not None:
            h, weights["intra_att1"] = self.intra_att1(h, lengths, active)
            h = self._norm("bn_att1", h, mask, active)
        h = self._norm("bn2", second(h, lengths, active), mask, active)
        if self.intra_att is not None and self.intra_att_layers == "each":
            h, weights["intra_att2"] = self.intra_att2(h, lengths, active)
            h = self._norm("bn_att2", h, mask, active)
        return self.out(h, active), weights


class EncoderDecoderNet(_SequenceNet):
    """BiLSTM encoder and recurrent decoder, with or without inter-/intra-attention.

    Parameters
    ----------
    n_features : int
    hidden_size : int, default=20
    inter_att : bool, default=True
        Additive (Bahdanau) attention over the encoder outputs (Enc-InterAtt-Dec);
        False feeds the decoder the aligned encoder output ``h_j`` (Enc-Dec-NoAtt).
    intra_att : None or ("bi" | "pa", int), default=None
        Intra-attention over the decoder states s_j, followed by batch norm and a
        per-frame sigmoid layer that gives the prediction
        (Enc-InterAtt-Dec-IntraAtt). The decoder's own equation-(10) output is still
        what it feeds back.
    aligned_input : bool, default=True
        Extension, not in the paper: with inter-attention, also feed the aligned encoder
        output h_j to the decoder's gates and output at step j (the attention decoder
        of equations (8)-(10) otherwise sees the input only through the attention).
    attention_window : float or None, default=8.0
        Extension, not in the paper: a Gaussian location prior (standard deviation in
        frames) on the inter-attention, centred on the decoder step (see
        `~sklearn_s2au.nn.layers.AttentionDecoder`). None: the paper's free attention.
        ``aligned_input=False, attention_window=None`` is the paper's decoder
        (`sklearn_s2au.classifiers.PAPER_DECODER`).
    intra_att_units : int, default=32
    attention_regularizer : float, default=1e-4
    dropout : float, default=0.2
    batch_norm : bool, default=True
    n_models, n_outputs, seeds, backend
        As in `StackedNet`.
    encoder : {"lstm", "transformer", "tcn"}, default="lstm"
        The encoder: a BiLSTM (the paper), one masked Transformer encoder layer or one
        block of dilated temporal convolutions (see `StackedNet`); the decoder is the
        same. Extension, not in the paper.
    n_heads, tcn_kernel_size, tcn_levels, tcn_causal
        As in `StackedNet`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_s2au.nn import EncoderDecoderNet
    >>> net = EncoderDecoderNet(n_features=3, hidden_size=4, n_models=2, seeds=[0, 1])
    >>> logits, maps = net(torch.zeros(2, 6, 3), torch.tensor([6, 3]), return_attention=True)
    >>> logits.shape, maps["decoder"].shape
    (torch.Size([2, 6, 2]), torch.Size([2, 2, 6, 6]))
    """

    def __init__(self, n_features, hidden_size=20, inter_att=True, intra_att=None,
                 aligned_input=True, attention_window=8.0, intra_att_units=32,
                 attention_regularizer=1e-4, dropout=0.2, batch_norm=True, n_models=1,
                 n_outputs=1, seeds=None, backend="auto", encoder="lstm", n_heads=4,
                 tcn_kernel_size=3, tcn_levels=3, tcn_causal=False):
        super().__init__(n_features, hidden_size, dropout, batch_norm, n_models, n_outputs,
                         seeds, backend)
        self._set_encoder_options(encoder, n_heads, tcn_kernel_size, tcn_levels, tcn_causal)
        self.inter_att = bool(inter_att)
        self.intra_att = None if intra_att is None else check_window(intra_att)
        k, h = n_models, hidden_size
        self.encoder = self._encoder_layer(n_features, first=True)
        self._bn("bn_enc", h)
        self.aligned_input = bool(aligned_input)
        self.attention_window = attention_window
        self.decoder = AttentionDecoder(k, h, h, n_outputs, attention=self.inter_att,
                                        aligned_input=aligned_input,
                                        attention_window=attention_window, backend=backend)
        if self.intra_att is not None:
            self.intra_att_dec = IntraAttention(k, h, self.intra_att, intra_att_units,
                                                attention_regularizer, backend=backend)
            self._bn("bn_att", h)
            self.out = TimeDense(k, h, n_outputs)
        self._init_weights()

    def _forward(self, x, lengths, mask, active):
        """Logits (K_run, B, T, O) and the attention weights by module name."""
        h = self._norm("bn_enc", self.encoder(x, lengths, active), mask, active)
        logits, states, alpha = self.decoder(h, lengths, active)
        weights = {"decoder": alpha}
        if self.intra_att is None:
            return logits, weights
        s, weights["intra_att_dec"] = self.intra_att_dec(states, lengths, active)
        return self.out(self._norm("bn_att", s, mask, active), active), weights
