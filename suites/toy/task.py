"""The registered `toy` task: the contract of `shared/task.py` at its smallest.

Offline and tiny, it exercises every part of the spine (variable lengths, bucketing, masking,
an LSTM, a SavedModel on raw string inputs with an asset) in seconds on a CPU.
"""

from __future__ import annotations

from typing import ClassVar

import keras
import numpy as np

from shared.errors import InputError
from shared.task import Demo, Evaluation, Task
from suites.toy import data
from suites.toy.config import DataConfig, ModelConfig
from suites.toy.model import build_classifier
from suites.toy.serving import LABELS, ToyServer


def _demo_inputs(task: Task, scratch) -> list[str]:
    return ["110000", "000011", "1011000010", "0000101101"]


class ToyTask(Task):
    """More ones in the first half? (binary classification of 0/1 strings)."""

    name: ClassVar[str] = "toy"
    DataConfig: ClassVar[type] = DataConfig
    ModelConfig: ClassVar[type] = ModelConfig
    demo: ClassVar[Demo] = Demo("toy/tiny.yaml", "accuracy", "test accuracy", _demo_inputs, False)

    def datasets(self, global_batch_size: int):
        d = self.config.data
        train = data.dataset(d, "train", global_batch_size, seed=self.config.seed)
        return train, data.dataset(d, "validation", global_batch_size)

    def build_model(self) -> keras.Model:
        m = self.config.model
        return build_classifier(m.embedding_dim, m.units, m.dropout)

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model: keras.Model, split: str) -> Evaluation:
        tokens, lengths, labels = data.split_arrays(self.config.data, split)
        predicted = np.argmax(model.predict(tokens, verbose=0), axis=-1)
        texts = ["".join(str(t - 1) for t in row[:n]) for row, n in zip(tokens, lengths)]
        return Evaluation(
            metrics={"accuracy": float(np.mean(predicted == labels)), "examples": len(labels)},
            ids=[str(i) for i in range(len(labels))],
            references=[LABELS[y] for y in labels],
            hypotheses={"predicted": [LABELS[y] for y in predicted]},
            columns={"text": texts},
        )

    def serving_module(self, model: keras.Model) -> ToyServer:
        return ToyServer(model)

    @classmethod
    def parse_input(cls, text: str, export) -> str:
        if not text or set(text) - {"0", "1"}:
            raise InputError(f"toy inputs are strings of 0/1, got {text!r}")
        return text

    @classmethod
    def format_outputs(cls, inputs, outputs, export) -> list[str]:
        return [
            f"{text}\t{label.decode()}\t{prob:.3f}"
            for text, label, prob in zip(
                inputs, outputs["label"], outputs["probability"], strict=True
            )
        ]
