"""Torch modules of the paper's networks, batched over independent models.

Every module carries a leading ``n_models`` axis on its parameters so that K models with
disjoint weights (one per target, as in the paper) train in one vectorised pass.
"""

from .encoders import (ENCODERS, TemporalConvEncoder, TransformerEncoderLayer,
                       sinusoidal_positions)
from .layers import (AttentionDecoder, BiLSTM, IntraAttention, MaskedBatchNorm, TimeDense,
                     length_mask, reverse_within_lengths)
from .models import EncoderDecoderNet, StackedNet

__all__ = [
    "StackedNet", "EncoderDecoderNet", "BiLSTM", "MaskedBatchNorm", "IntraAttention",
    "AttentionDecoder", "TimeDense", "TransformerEncoderLayer", "TemporalConvEncoder",
    "ENCODERS", "sinusoidal_positions", "length_mask", "reverse_within_lengths",
]
