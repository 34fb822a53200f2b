"""An embedding initialised from pretrained vectors whose pretrained rows can be frozen.

`PretrainedEmbedding` holds one `[vocabulary, dim]` table and a has-vector flag per row. While
`frozen` is on, the rows that came from the vector file get no gradient; the other rows (UNK and
the vocabulary words the file lacks) always train, so the unknown word gets a learned vector even
when the pretrained ones stay fixed. Because the gradient is exactly zero, Adam-type optimizers
leave frozen rows untouched (their moments stay zero; decoupled weight decay would still shrink
them, so freeze with a plain Adam). `frozen` is a variable: `UnfreezeAfter(n)` turns it off at the
start of epoch `n` without recompiling ("frozen for n epochs, then fine-tuned").

>>> matrix, known = embedding_matrix(vocabulary, vectors)      # shared.data.word_vocab
>>> layer = PretrainedEmbedding(len(vocabulary), 50, vectors=matrix, has_vector=known)
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="lstm_suite")
class PretrainedEmbedding(keras.layers.Layer):
    """Word ids -> vectors; pretrained rows frozen while `frozen` is on.

    Args:
        input_dim: vocabulary size.
        output_dim: vector dimension.
        vectors: initial `[input_dim, output_dim]` table (e.g. `embedding_matrix`), or None for
            a uniform random start (as when the layer is rebuilt before its weights are loaded).
        has_vector: bool `[input_dim]`, True for rows taken from the vector file (None: none).
        frozen: whether the pretrained rows start frozen.
        mask_zero: id 0 is padding and masked.
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        vectors: np.ndarray | None = None,
        has_vector: np.ndarray | None = None,
        frozen: bool = False,
        mask_zero: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if input_dim < 2 or output_dim < 1:
            raise ValueError(
                f"need input_dim >= 2 and output_dim >= 1, got {input_dim}, {output_dim}"
            )
        if vectors is not None and tuple(np.shape(vectors)) != (input_dim, output_dim):
            raise ValueError(
                f"vectors must be [{input_dim}, {output_dim}], got {np.shape(vectors)}"
            )
        if has_vector is not None and tuple(np.shape(has_vector)) != (input_dim,):
            raise ValueError(f"has_vector must be [{input_dim}], got {np.shape(has_vector)}")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.initially_frozen = bool(frozen)
        self.mask_zero = bool(mask_zero)
        self._vectors = vectors
        self._has_vector = has_vector
        self.supports_masking = mask_zero

    def build(self, input_shape=None):
        vectors, flags = self._vectors, self._has_vector
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=(
                keras.initializers.Constant(np.asarray(vectors, np.float32))
                if vectors is not None
                else keras.initializers.RandomUniform(-0.05, 0.05)
            ),
            name="embeddings",
        )
        self.has_vector = self.add_weight(
            shape=(self.input_dim,),
            initializer=keras.initializers.Constant(
                np.zeros(self.input_dim, np.float32)
                if flags is None
                else np.asarray(flags, np.float32)
            ),
            trainable=False,
            name="has_vector",
        )
        self.frozen = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float(self.initially_frozen)),
            trainable=False,
            name="frozen",
        )
        self._vectors = self._has_vector = None  # held by the weights from here on

    def set_frozen(self, frozen: bool) -> None:
        """Freezes (True) or releases (False) the pretrained rows."""
        self.frozen.assign(1.0 if frozen else 0.0)

    def call(self, inputs):
        ids = ops.cast(inputs, "int32")
        vectors = ops.take(self.embeddings, ids, axis=0)
        trains = 1.0 - ops.take(self.has_vector, ids, axis=0) * self.frozen
        trains = ops.expand_dims(ops.cast(trains, vectors.dtype), -1)
        return vectors * trains + ops.stop_gradient(vectors) * (1.0 - trains)

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        """The layer's settings; the table and flags travel with the weights, not the config."""
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "frozen": self.initially_frozen,
            "mask_zero": self.mask_zero,
        }


class UnfreezeAfter(keras.callbacks.Callback):
    """Keeps the pretrained rows of `PretrainedEmbedding` layers frozen for `epochs` epochs.

    Args:
        epochs: epochs to train with the pretrained rows frozen (0: never frozen).
    """

    def __init__(self, epochs: int):
        super().__init__()
        if epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self.model._flatten_layers():
            if isinstance(layer, PretrainedEmbedding) and layer.built:
                layer.set_frozen(epoch < self.epochs)
