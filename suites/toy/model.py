"""The toy classifier: embedding -> PeepholeLSTM -> logits."""

from __future__ import annotations

import keras

from shared.layers import PeepholeLSTM

NUM_TOKENS = 3  # pad, "0", "1"


def build_classifier(embedding_dim: int, units: int, dropout: float) -> keras.Model:
    """tokens int32 [batch, time] (0 = padding) -> logits float32 [batch, 2]."""
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(NUM_TOKENS, embedding_dim, mask_zero=True, name="embedding")(tokens)
    x = PeepholeLSTM(units, name="lstm")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logits = keras.layers.Dense(2, name="logits", dtype="float32")(x)
    return keras.Model(tokens, logits, name="toy_classifier")
