"""The `sentiment` task: text classification of raw strings with a BiPeepholeLSTM encoder.

Pipeline: readers/extra (data.py) -> SentencePiece on normalised text (text.py) or PTB words
with an optional polarity lexicon (words.py; vocabulary built in `prepare`) -> Embedding
(optionally from pretrained vectors) -> BiPeepholeLSTM stack -> pooling -> softmax (model.py)
-> accuracy, macro-F1 and a confusion matrix (`evaluate`) -> a SavedModel on raw strings
(serving.py).
"""

from __future__ import annotations

import functools
import json
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from shared.data.pretrained_embedding import UnfreezeAfter
from shared.data.tokenizer import SentencePieceTokenizer
from shared.data.vectors import read_vectors
from shared.data.word_vocab import embedding_matrix
from shared.errors import UsageError
from shared.files import atomic_write_text
from shared.metrics.classification import classification_report, plot_confusion_matrix
from shared.task import Demo, Evaluation, Task
from suites.sentiment import data, text, words
from suites.sentiment.config import DataConfig, ModelConfig
from suites.sentiment.ensemble import Ensemble, Member, probabilities
from suites.sentiment.model import build_classifier
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

    @property
    def _token_file(self):
        """The artifact that maps text to ids: the SentencePiece model or the word vocabulary."""
        name = SPM_FILE if self.config.data.tokens == "subword" else words.VOCABULARY_FILE
        return self.artifacts_dir / name

    def prepare(self) -> None:
        """Trains SentencePiece or builds the word vocabulary; writes them and the label names."""
        d, m = self.config.data, self.config.model
        words.check_settings(d, m)
        labels, tokens = self.artifacts_dir / LABELS_ASSET, self._token_file
        if labels.exists() and tokens.exists():
            return
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        train = self.splits["train"]
        if self.extra_stats:
            atomic_write_text(
                self.artifacts_dir / EXTRA_STATS_FILE, json.dumps(self.extra_stats, indent=2)
            )
        if d.tokens == "subword":
            text.train_tokenizer(train.texts, tokens, d, self.config.seed)
        else:
            validation = self.splits.get("validation")
            self.__dict__["word_vocabulary"] = vocabulary = words.build(
                train.texts,
                d,
                m,
                self.config.seed,
                validation.texts if validation is not None else None,
            )
            words.write_vocabulary(vocabulary.words, tokens)
        atomic_write_text(labels, "".join(f"{n}\n" for n in train.label_names))

    @functools.cached_property
    def tokenizer(self) -> SentencePieceTokenizer:
        self.prepare()
        return SentencePieceTokenizer.from_file(self.artifacts_dir / SPM_FILE)

    @functools.cached_property
    def word_vocabulary(self) -> words.WordVocabulary:
        """The saved word vocabulary and, with pretrained vectors, its initial embedding."""
        self.prepare()
        vocabulary = words.read_vocabulary(self.artifacts_dir / words.VOCABULARY_FILE)
        d, m = self.config.data, self.config.model
        if not m.uses_vectors:
            return words.WordVocabulary(vocabulary)
        vectors = read_vectors(
            words.vector_path(d, m),
            m.pretrained_vectors.format,
            words=set(vocabulary),
            progress=words.progress(),
        )
        matrix, known = embedding_matrix(vocabulary, vectors, self.config.seed)
        return words.WordVocabulary(vocabulary, matrix, known)

    @functools.cached_property
    def inputs(self) -> tf.Module:
        """Raw texts -> model inputs (`text.SubwordInputs` or `words.WordInputs`)."""
        d = self.config.data
        if d.tokens == "subword":
            return text.SubwordInputs(self.tokenizer, d.max_length, d.normalization)
        self.prepare()
        if "word_vocabulary" in self.__dict__:
            vocabulary = self.word_vocabulary.words
        else:  # the saved words suffice: no need to read the vector file
            vocabulary = words.read_vocabulary(self.artifacts_dir / words.VOCABULARY_FILE)
        return words.WordInputs(vocabulary, words.lexicon(d, self.config.model), d.max_length)

    @property
    def vocab_size(self) -> int:
        if self.config.data.tokens == "subword":
            return self.tokenizer.vocab_size
        return self.inputs.encoder.vocabulary_size

    def datasets(self, global_batch_size: int):
        make = functools.partial(
            data.make_inputs_dataset, inputs=self.inputs, batch_size=global_batch_size
        )
        train = make(
            self.splits["train"],
            shuffle_seed=self.config.seed,
            num_buckets=self.config.data.num_buckets,
        )
        validation = self.splits.get("validation")
        return train, make(validation) if validation is not None else None

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """`UnfreezeAfter(N)` for `model.freeze_vectors: N` (frozen for the first N epochs)."""
        freeze = self.config.model.freeze_vectors
        if isinstance(freeze, bool) or not self.config.model.uses_vectors:
            return []
        return [UnfreezeAfter(freeze)]

    def build_model(self) -> keras.Model:
        m = self.config.model
        vectors = has_vector = None
        if self.config.data.tokens == "word":
            vectors, has_vector = self.word_vocabulary.matrix, self.word_vocabulary.has_vector
        return build_classifier(
            vocab_size=self.vocab_size,
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
            vectors=vectors,
            has_vector=has_vector,
            freeze_vectors=bool(m.freeze_vectors),
            lexicon=m.uses_lexicon,
        )

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, model: keras.Model | Ensemble, split: str) -> Evaluation:
        """Accuracy and macro-F1; per-class F1 and the confusion matrix (details and a plot)."""
        if split not in self.splits:
            raise UsageError(f"no {split!r} split configured (have: {', '.join(self.splits)})")
        examples, names = self.splits[split], self.label_names
        scores = probabilities(self.classifier(model), examples.texts)
        predicted = scores.argmax(axis=-1)
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
                "probability": [f"{p:.4f}" for p in scores.max(axis=-1)],
            },
            details={key: report[key] for key in ("f1", "confusion_matrix", "label_names")},
            plots={"confusion.png": lambda path: plot_confusion_matrix(matrix, names, path, title)},
        )

    def serving_module(self, model: keras.Model | Ensemble) -> SentimentServer:
        members = [(m.model, m.inputs) for m in self.classifier(model).members]
        return SentimentServer(members, self.label_names)

    def combine(self, model: keras.Model, others: list[tuple[Task, keras.Model]]) -> Ensemble:
        """This run's model and the other runs' models as one `Ensemble` (same labels)."""
        members = [Member(model, self.inputs), *(Member(m, t.inputs) for t, m in others)]
        labels = [self.label_names, *(t.label_names for t, _ in others)]
        return Ensemble.of(members, labels)

    def classifier(self, model: keras.Model | Ensemble) -> Ensemble:
        """`model` with this run's text inputs (a one-member ensemble), or `model` itself."""
        return model if isinstance(model, Ensemble) else Ensemble((Member(model, self.inputs),))

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
