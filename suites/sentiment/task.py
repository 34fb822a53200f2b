"""The `sentiment` task: text classification of raw strings with a BiPeepholeLSTM encoder.

Pipeline: readers/extra (data.py) -> SentencePiece on normalised text (text.py, trained in
`prepare`) -> Embedding -> BiPeepholeLSTM stack -> pooling -> softmax (model.py) -> accuracy,
macro-F1 and a confusion matrix (`evaluate`) -> a SavedModel on raw strings (serving.py).
"""

from __future__ import annotations

import functools
import json
from typing import ClassVar

import keras
import numpy as np

from shared.data.tokenizer import SentencePieceTokenizer
from shared.errors import UsageError
from shared.files import atomic_write_text
from shared.metrics.classification import classification_report, plot_confusion_matrix
from shared.task import Demo, Evaluation, Task
from suites.sentiment import data, text
from suites.sentiment.config import DataConfig, ModelConfig
from suites.sentiment.model import build_classifier, predict_probabilities
from suites.sentiment.readers import make_negation_examples
from suites.sentiment.serving import LABELS_ASSET, SentimentServer

SPM_FILE = "sentencepiece.model"
EXTRA_STATS_FILE = "extra_train.json"


def _demo_inputs(task: Task, scratch) -> list[str]:
    return list(make_negation_examples(3, seed=2024).texts)


class SentimentTask(Task):
    """Sentence/document polarity (or any label set) from raw text."""

    name: ClassVar[str] = "sentiment"
    DataConfig: ClassVar[type] = DataConfig
    ModelConfig: ClassVar[type] = ModelConfig
    demo: ClassVar[Demo] = Demo("sentiment/tiny.yaml", "accuracy", "test accuracy", _demo_inputs)

    @functools.cached_property
    def splits(self) -> data.Splits:
        """The labelled splits; "train" includes `data.extra_train` (after the overlap filter)."""
        splits, self.extra_stats = data.load_splits(self.config.data, self.config.seed)
        return splits

    @property
    def label_names(self) -> list[str]:
        """Class names, index = class id (from the artifacts once `prepare` wrote them)."""
        path = self.artifacts_dir / LABELS_ASSET
        if path.exists():
            return path.read_text(encoding="utf-8").splitlines()
        return list(self.splits["train"].label_names)

    def prepare(self) -> None:
        """Trains the SentencePiece model on the training texts and writes the label names."""
        labels, spm = self.artifacts_dir / LABELS_ASSET, self.artifacts_dir / SPM_FILE
        if labels.exists() and spm.exists():
            return
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        train = self.splits["train"]
        if self.extra_stats:
            atomic_write_text(
                self.artifacts_dir / EXTRA_STATS_FILE, json.dumps(self.extra_stats, indent=2)
            )
        text.train_tokenizer(train.texts, spm, self.config.data, self.config.seed)
        atomic_write_text(labels, "".join(f"{n}\n" for n in train.label_names))

    @functools.cached_property
    def tokenizer(self) -> SentencePieceTokenizer:
        self.prepare()
        return SentencePieceTokenizer.from_file(self.artifacts_dir / SPM_FILE)

    def datasets(self, global_batch_size: int):
        d = self.config.data
        make = functools.partial(
            data.make_dataset,
            tokenizer=self.tokenizer,
            batch_size=global_batch_size,
            max_length=d.max_length,
            normalization=d.normalization,
        )
        train = make(self.splits["train"], shuffle_seed=self.config.seed, num_buckets=d.num_buckets)
        validation = self.splits.get("validation")
        return train, make(validation) if validation is not None else None

    def build_model(self) -> keras.Model:
        m = self.config.model
        return build_classifier(
            vocab_size=self.tokenizer.vocab_size,
            num_classes=len(self.label_names),
            embedding_dim=m.embedding_dim,
            lstm_units=m.lstm_units,
            pooling=m.pooling,
            attention_units=m.attention_units,
            embedding_dropout=m.embedding_dropout,
            lstm_dropout=m.lstm_dropout,
            recurrent_dropout=m.recurrent_dropout,
            dropout=m.dropout,
            use_peepholes=m.use_peepholes,
        )

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model: keras.Model, split: str) -> Evaluation:
        """Accuracy and macro-F1; per-class F1 and the confusion matrix (details and a plot)."""
        if split not in self.splits:
            raise UsageError(f"no {split!r} split configured (have: {', '.join(self.splits)})")
        examples, names, d = self.splits[split], self.label_names, self.config.data
        probabilities = predict_probabilities(
            model, self.tokenizer, examples.texts, d.max_length, d.normalization
        )
        predicted = probabilities.argmax(axis=-1)
        report = classification_report(examples.labels, predicted, names)
        matrix, title = (
            np.array(report["confusion_matrix"]),
            f"{split}: accuracy {report['accuracy']:.3f}",
        )
        return Evaluation(
            metrics={
                "accuracy": report["accuracy"],
                "macro_f1": report["macro_f1"],
                "examples": len(examples),
            },
            ids=[str(i) for i in range(len(examples))],
            references=[names[y] for y in examples.labels],
            hypotheses={"predicted": [names[y] for y in predicted]},
            columns={
                "text": examples.texts,
                "probability": [f"{p:.4f}" for p in probabilities.max(axis=-1)],
            },
            details={key: report[key] for key in ("f1", "confusion_matrix", "label_names")},
            plots={"confusion.png": lambda path: plot_confusion_matrix(matrix, names, path, title)},
        )

    def serving_module(self, model: keras.Model) -> SentimentServer:
        d = self.config.data
        return SentimentServer(
            model, self.tokenizer, self.label_names, d.max_length, d.normalization
        )

    @classmethod
    def format_outputs(cls, inputs, outputs, export) -> list[str]:
        """`<label>\\t<probability>\\t<text>` per input."""
        names = export.asset(LABELS_ASSET).splitlines()
        return [
            f"{names[label]}\t{probabilities[label]:.4f}\t{sentence}"
            for sentence, label, probabilities in zip(
                inputs, outputs["label"], outputs["probabilities"], strict=True
            )
        ]
