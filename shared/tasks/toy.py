"""The toy task: does a random 0/1 sequence have more ones in its first half than in its second?

Offline and tiny, it exercises every part of the spine (variable lengths, bucketing, masking,
an LSTM, a SavedModel on raw string inputs with a labels asset) in seconds on a CPU.
Data is generated from `data.data_seed`; tokens are 1 (for "0") and 2 (for "1"), 0 pads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from shared.data import pipeline
from shared.export import write_asset
from shared.layers import PeepholeLSTM as RecurrentLayer  # the ONE recurrent-layer choice
from shared.task import Task, register_task

LABELS = ["no", "yes"]  # index = label


@dataclass
class ToyDataConfig:
    """Generated data."""

    data_dir: str | None = None  # unused (the data is generated); present like every task's
    data_seed: int = 1234  # seed of the generator (independent of the training seed)
    num_train: int = 512  # training sequences
    num_validation: int = 128  # validation sequences
    num_test: int = 128  # test sequences
    min_length: int = 8  # shortest sequence (even lengths only are generated)
    max_length: int = 16  # longest sequence
    num_buckets: int = 2  # length buckets (boundaries from the data's length quantiles)
    shuffle_buffer: int = 1024  # shuffle buffer (>= num_train: a full shuffle)

    def __post_init__(self):
        if not 2 <= self.min_length <= self.max_length:
            raise ValueError(
                f"need 2 <= min_length <= max_length, got {self.min_length}, {self.max_length}"
            )


@dataclass
class ToyModelConfig:
    """A one-layer LSTM classifier."""

    embedding_dim: int = 8  # token embedding size
    units: int = 16  # LSTM units
    dropout: float = 0.0  # dropout on the LSTM output


def generate(num: int, min_length: int, max_length: int, seed: int):
    """(tokens [num, max_length] int32 zero-padded, lengths [num], labels [num]) from `seed`."""
    rng = np.random.default_rng(seed)
    lengths = 2 * rng.integers(min_length // 2 or 1, max_length // 2 + 1, size=num)
    lengths = np.clip(lengths, min_length, max_length)
    tokens = np.zeros((num, max_length), np.int32)
    labels = np.zeros(num, np.int32)
    for i, n in enumerate(lengths):
        bits = rng.integers(0, 2, size=n)
        tokens[i, :n] = bits + 1
        labels[i] = int(bits[: n // 2].sum() > bits[n // 2 :].sum())
    return tokens, lengths.astype(np.int32), labels


@register_task
class ToyTask(Task):
    """More ones in the first half? (binary classification of 0/1 strings)."""

    name = "toy"
    DataConfig = ToyDataConfig
    ModelConfig = ToyModelConfig

    def _split(self, split: str) -> tf.data.Dataset:
        d = self.config.data
        sizes = {"train": d.num_train, "validation": d.num_validation, "test": d.num_test}
        if split not in sizes:
            raise ValueError(f"unknown split {split!r} (train, validation, test)")
        offset = {"train": 0, "validation": 1, "test": 2}[split]
        tokens, lengths, labels = generate(
            sizes[split], d.min_length, d.max_length, d.data_seed * 3 + offset
        )
        ds = tf.data.Dataset.from_tensor_slices((tokens, lengths, labels))
        return ds.map(lambda t, n, y: (t[:n], y))

    def _boundaries(self) -> list[int]:
        d = self.config.data
        lo, hi = d.min_length, d.max_length
        edges = np.linspace(lo, hi, d.num_buckets + 1)[1:-1]
        return sorted({int(b) for b in edges if lo < b <= hi})

    def datasets(self, global_batch_size: int):
        train = pipeline.shuffle_and_bucket(
            self._split("train"),
            lambda t, y: tf.shape(t)[0],
            global_batch_size,
            seed=self.config.seed,
            buffer_size=self.config.data.shuffle_buffer,
            boundaries=self._boundaries(),
        )
        return pipeline.prefetch(train), self._batched(self._split("validation"), global_batch_size)

    def _batched(self, ds: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
        ds = pipeline.bucket_by_length(
            ds, lambda t, y: tf.shape(t)[0], batch_size, boundaries=self._boundaries()
        )
        return pipeline.prefetch(ds)

    def build_model(self) -> keras.Model:
        m = self.config.model
        tokens = keras.Input((None,), dtype="int32", name="tokens")
        x = keras.layers.Embedding(3, m.embedding_dim, mask_zero=True, name="embedding")(tokens)
        x = RecurrentLayer(m.units, name="lstm")(x)
        x = keras.layers.Dropout(m.dropout, name="dropout")(x)
        logits = keras.layers.Dense(2, name="logits", dtype="float32")(x)
        return keras.Model(tokens, logits, name="toy_classifier")

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        ds = self._batched(self._split(split), self.config.training.global_batch_size)
        correct = total = 0
        for tokens, labels in ds:
            predicted = np.argmax(model(tokens, training=False), axis=-1)
            correct += int((predicted == labels.numpy()).sum())
            total += len(labels)
        return {"accuracy": correct / total, "examples": float(total)}

    def export(self, model: keras.Model, out_dir: Path) -> None:
        module = tf.Module()
        module.model = model
        asset = write_asset(module, "labels.txt", LABELS)
        module.labels = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                asset.asset_path,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="?",
        )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            chars = tf.strings.bytes_split(tf.strings.strip(text))
            bits = tf.strings.to_number(chars, tf.int32)
            tokens = (bits + 1).to_tensor(default_value=0)
            probs = tf.nn.softmax(module.model(tokens, training=False), axis=-1)
            index = tf.argmax(probs, axis=-1)
            return {
                "label": module.labels.lookup(index),
                "probability": tf.reduce_max(probs, axis=-1),
            }

        module.serve = serve
        tf.saved_model.save(module, str(out_dir), signatures={"serving_default": serve})

    @classmethod
    def predict(cls, export_dir: Path, inputs: list[str]) -> list[str]:
        for text in inputs:
            if not text or set(text) - {"0", "1"}:
                raise ValueError(f"toy inputs are strings of 0/1, got {text!r}")
        serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
        out = serve(text=tf.constant(inputs))
        return [
            f"{text}\t{label.decode()}\t{prob:.3f}"
            for text, label, prob in zip(
                inputs, out["label"].numpy(), out["probability"].numpy(), strict=True
            )
        ]
