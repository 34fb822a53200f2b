"""The sentiment classifier: ids -> Embedding -> BiLSTM stack -> pooling -> class probabilities.

Input: int32 ids `[batch, time]`, 0 = padding (the SentencePiece id layout of
`shared.data.tokenizer`), so `Embedding(mask_zero=True)` masks padding and the mask flows through
every recurrent layer into the pooling.
"""

from __future__ import annotations

from typing import Literal

import keras

from shared.layers import Bidirectional, PeepholeLSTM
from suites.sentiment.pooling import AttentionPooling1D, MaskedGlobalMaxPooling1D

Pooling = Literal["last", "max", "attention"]


def build_classifier(
    vocab_size: int,
    num_classes: int,
    embedding_dim: int = 128,
    lstm_units: list[int] | tuple[int, ...] = (128,),
    pooling: Pooling = "max",
    attention_units: int = 64,
    embedding_dropout: float = 0.0,
    lstm_dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    dropout: float = 0.5,
    use_peepholes: bool = True,
    name: str = "sentiment_classifier",
) -> keras.Model:
    """Builds the (uncompiled) classifier.

    Args:
        vocab_size: number of token ids (including padding id 0).
        num_classes: number of output classes.
        embedding_dim: width of the token embeddings.
        lstm_units: units per direction of each stacked bidirectional layer.
        pooling: "last" (final forward state + final backward state), "max" (masked max over
            time) or "attention" (additive attention pooling).
        attention_units: hidden width of the attention scorer.
        embedding_dropout: dropout rate on the embedded tokens (each unit independently).
        lstm_dropout: input dropout rate inside each LSTM.
        recurrent_dropout: recurrent-state dropout rate inside each LSTM.
        dropout: dropout rate before the output layer.
        use_peepholes: peephole connections in the LSTM cells.
        name: model name.

    Returns:
        A `keras.Model` mapping ids `[batch, time]` to float32 probabilities `[batch, classes]`.
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if not lstm_units or any(u <= 0 for u in lstm_units):
        raise ValueError(f"lstm_units must be a non-empty list of positive ints, got {lstm_units}")
    if pooling not in ("last", "max", "attention"):
        raise ValueError(f"pooling must be 'last', 'max' or 'attention', got {pooling!r}")
    for arg, rate in (
        ("embedding_dropout", embedding_dropout),
        ("lstm_dropout", lstm_dropout),
        ("recurrent_dropout", recurrent_dropout),
        ("dropout", dropout),
    ):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{arg} must be in [0, 1), got {rate}")

    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(ids)
    if embedding_dropout:
        x = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")(x)
    for depth, units in enumerate(lstm_units):
        keep_sequence = pooling != "last" or depth < len(lstm_units) - 1
        lstm = PeepholeLSTM(
            units,
            return_sequences=keep_sequence,
            dropout=lstm_dropout,
            recurrent_dropout=recurrent_dropout,
            name=f"lstm_{depth}",
            use_peepholes=use_peepholes,
        )
        x = Bidirectional(lstm, merge_mode="concat", name=f"bilstm_{depth}")(x)
    if pooling == "max":
        x = MaskedGlobalMaxPooling1D(name="max_pooling")(x)
    elif pooling == "attention":
        x = AttentionPooling1D(attention_units, name="attention_pooling")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    probabilities = keras.layers.Dense(
        num_classes,
        activation="softmax",
        dtype="float32",
        name="probabilities",
    )(x)
    return keras.Model(ids, probabilities, name=name)
