"""The sentiment classifier: ids -> Embedding -> BiLSTM stack -> pooling -> class probabilities.

Input: int32 ids `[batch, time]`, 0 = padding (SentencePiece pieces or words), so the embedding
masks padding and the mask flows through every recurrent layer into the pooling. With pretrained
vectors the embedding is a `shared.data.pretrained_embedding.PretrainedEmbedding` (its vector
rows optionally frozen); with a lexicon the model takes `{"ids", "lexicon"}` and concatenates
the two lexicon features of each word to its embedding, before the embedding dropout.

The two mask-aware pooling layers are defined here; a row whose mask is all False (an empty text)
pools to zeros in both, never NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from shared.data.pretrained_embedding import PretrainedEmbedding
from shared.data.tokenizer import SentencePieceTokenizer
from shared.layers import Bidirectional, PeepholeLSTM
from suites.sentiment.config import Normalization, Pooling
from suites.sentiment.text import SubwordInputs

LEXICON_FEATURES = 2  # polarity, has-entry


@keras.saving.register_keras_serializable(package="lstm_suite")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Maximum over the valid time steps of each sequence.

    Keras' own `GlobalMaxPooling1D` ignores masks; this one excludes padded steps.

    >>> x = keras.ops.ones((2, 5, 3)); mask = keras.ops.arange(5) < 2
    >>> MaskedGlobalMaxPooling1D()(x, mask=keras.ops.stack([mask, mask])).shape
    (2, 3)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.max(inputs, axis=1)
        valid = ops.expand_dims(ops.cast(mask, "bool"), -1)
        lowest = ops.full_like(inputs, -1e9 if inputs.dtype != "float16" else -6e4)
        pooled = ops.max(ops.where(valid, inputs, lowest), axis=1)
        any_valid = ops.any(valid, axis=1)
        return ops.where(any_valid, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="lstm_suite")
class AttentionPooling1D(keras.layers.Layer):
    """Additive self-attention pooling (Yang et al. 2016): `sum_t softmax_t(v·tanh(W h_t + b)) h_t`.

    Args:
        units: width of the hidden scoring layer (`W` is `[features, units]`).
        kernel_initializer: initializer of `W` and `v`.

    Call arguments:
        inputs: `[batch, time, features]`.
        mask: optional boolean `[batch, time]`; padded steps get zero weight.
    """

    def __init__(self, units: int = 64, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(features, self.units), initializer=self.kernel_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.context = self.add_weight(
            name="context", shape=(self.units, 1), initializer=self.kernel_initializer
        )

    def attention_weights(self, inputs, mask=None):
        """The pooling weights `[batch, time]` (zero on padding; all zero for an empty row)."""
        scores = ops.squeeze(
            ops.matmul(ops.tanh(ops.matmul(inputs, self.kernel) + self.bias), self.context), -1
        )
        scores = ops.cast(scores, "float32")
        if mask is None:
            return ops.softmax(scores, axis=-1)
        valid = ops.cast(mask, "bool")
        scores = ops.where(valid, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1) * ops.cast(valid, "float32")
        # Rows without any valid step: the softmax above is uniform over padding; zero it.
        return weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-9)

    def call(self, inputs, mask=None):
        weights = ops.cast(self.attention_weights(inputs, mask), inputs.dtype)
        return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


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
    vectors: np.ndarray | None = None,
    has_vector: np.ndarray | None = None,
    freeze_vectors: bool = False,
    lexicon: bool = False,
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
        vectors: `[vocab_size, dim]` initial embedding (pretrained vectors; `dim` replaces
            `embedding_dim`), or None for a random start.
        has_vector: bool `[vocab_size]`, the rows of `vectors` that came from the vector file.
        freeze_vectors: start with those rows frozen (`UnfreezeAfter` releases them).
        lexicon: take `{"ids", "lexicon"}` inputs, the second float32 `[batch, time, 2]`.
        name: model name.

    Returns:
        A `keras.Model` mapping ids `[batch, time]` (or the dict above) to float32
        probabilities `[batch, classes]`.
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
    inputs = ids
    if vectors is not None:
        x = PretrainedEmbedding(
            vocab_size,
            int(np.shape(vectors)[1]),
            vectors=vectors,
            has_vector=has_vector,
            frozen=freeze_vectors,
            name="embedding",
        )(ids)
    else:
        x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(ids)
    if lexicon:
        features = keras.Input(shape=(None, LEXICON_FEATURES), dtype="float32", name="lexicon")
        inputs = {"ids": ids, "lexicon": features}
        x = keras.layers.Concatenate(name="with_lexicon")([x, features])
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
    return keras.Model(inputs, probabilities, name=name)


def predict_texts(
    model: keras.Model, inputs: Callable[[tf.Tensor], Any], texts: list[str], batch_size: int = 64
) -> np.ndarray:
    """Class probabilities `[len(texts), classes]` of raw texts, encoded by `inputs` as the
    export does (`text.SubwordInputs` or `words.WordInputs`)."""
    out = [
        np.asarray(model(inputs(tf.constant(texts[i : i + batch_size], tf.string)), training=False))
        for i in range(0, len(texts), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def predict_probabilities(
    model: keras.Model,
    tokenizer: SentencePieceTokenizer,
    texts: list[str],
    max_length: int,
    normalization: Normalization,
    batch_size: int = 64,
) -> np.ndarray:
    """`predict_texts` on SentencePiece ids (a model of `data.tokens: subword`)."""
    return predict_texts(
        model, SubwordInputs(tokenizer, max_length, normalization), texts, batch_size
    )
