"""The registered `sentiment` task: text classification with a BiPeepholeLSTM encoder.

Data formats (`data.format`):
    sst2         `<label> <sentence>` lines: `train_file`, `validation_file`, `test_file`.
    rt_polarity  `positive_file` / `negative_file`, split with `split_seed` into train/validation/
                 test by `validation_fraction` / `test_fraction` (stratified).
    csv          CSV/TSV with a header (`text_column`, `label_column`): the three *_file keys.
    tfds         `tfds_name` with `tfds_train_split` / `tfds_validation_split` / `tfds_test_split`
                 (prepared data only, no download; `data_dir` is the TFDS data directory).
    synthetic    generated negation set (`data.make_negation_examples`), no files needed.
File names are relative to `data_dir` (absolute names are used as they are).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import keras
import numpy as np
import tensorflow as tf

from shared.data.sources import resolve_under
from shared.data.tokenizer import SentencePieceTokenizer, train_sentencepiece
from shared.metrics.classification import classification_report, plot_confusion_matrix
from shared.task import Task, register_task
from suites.sentiment import data as readers
from suites.sentiment import extra
from suites.sentiment.inputs import encode, make_dataset, normalize_texts
from suites.sentiment.model import build_classifier
from suites.sentiment.pooling import AttentionPooling1D, MaskedGlobalMaxPooling1D
from suites.sentiment.serving import (
    LABELS_ASSET,
    SentimentServer,
    export_savedmodel,
    read_labels,
)

logger = logging.getLogger(__name__)

SPM_FILE = "sentencepiece.model"
EXTRA_STATS_FILE = "extra_train.json"


@dataclass
class SentimentDataConfig:
    """Where the labelled text comes from and how it becomes ids."""

    format: Literal["sst2", "rt_polarity", "csv", "tfds", "synthetic"] = "sst2"  # see task.py
    data_dir: str | None = None  # base folder of the *_file keys (TFDS: its data directory)
    train_file: str = "stsa.binary.train"  # sst2/csv: training file
    validation_file: str | None = "stsa.binary.dev"  # sst2/csv: validation file (None: none)
    test_file: str | None = None  # sst2/csv: test file (None: none)
    positive_file: str = "rt-polarity.pos"  # rt_polarity: positive snippets, one per line
    negative_file: str = "rt-polarity.neg"  # rt_polarity: negative snippets, one per line
    validation_fraction: float = 0.1  # rt_polarity: share of each class held out for validation
    test_fraction: float = 0.1  # rt_polarity: share of each class held out for test
    split_seed: int = 1234  # rt_polarity: seed of the split (fixed, independent of `seed`)
    encoding_fallback: str | None = None  # decode non-UTF-8 lines with this (e.g. cp1252)
    text_column: str = "text"  # csv: header of the text column
    label_column: str = "label"  # csv: header of the label column
    delimiter: str | None = None  # csv: field separator; None: tab for .tsv, else comma
    label_names: list[str] = field(default_factory=list)  # class names; []: format default
    tfds_name: str = "imdb_reviews"  # tfds: dataset name, e.g. imdb_reviews, glue/sst2
    tfds_train_split: str = "train"  # tfds: training split
    tfds_validation_split: str | None = "test"  # tfds: validation split (None: none)
    tfds_test_split: str | None = None  # tfds: test split (None: none)
    synthetic_train_size: int = 800  # synthetic: training examples
    synthetic_eval_size: int = 200  # synthetic: validation and test examples each
    vocab_size: int = 8000  # SentencePiece vocabulary size (soft limit for tiny corpora)
    tokenizer_type: Literal["unigram", "bpe"] = "unigram"  # SentencePiece model type
    normalization: Literal["none", "ptb"] = "ptb"  # in-graph text normalisation (inputs.py)
    max_length: int = 128  # tokens kept per text (head); longer texts are truncated
    num_buckets: int = 4  # training batches from this many length buckets; 0: plain batches
    extra_train: list[str] = field(default_factory=list)  # extra labelled training data, each
    # "<format>:<path>" with format rt_polarity (folder), sst2 or csv (file); relative paths are
    # under data_dir, e.g. "rt_polarity:../rt-polarity" (see extra.py)
    extra_overlap_filter: bool = True  # drop extra texts that equal/contain/are part of a
    # validation or test sentence (keeps the validation figure honest; see overlap.py)
    extra_overlap_min_words: int = 3  # shorter sentences/texts are matched exactly only

    def __post_init__(self):
        if self.max_length <= 0:
            raise ValueError(f"max_length must be > 0, got {self.max_length}")
        if self.num_buckets < 0:
            raise ValueError(f"num_buckets must be >= 0, got {self.num_buckets}")
        if self.vocab_size < 8:
            raise ValueError(f"vocab_size must be >= 8, got {self.vocab_size}")
        if self.extra_overlap_min_words < 1:
            raise ValueError(
                f"extra_overlap_min_words must be >= 1, got {self.extra_overlap_min_words}"
            )
        for entry in self.extra_train:
            extra.parse_entry(entry, None)  # format check; the path is checked when read


@dataclass
class SentimentModelConfig:
    """The classifier (see model.build_classifier)."""

    embedding_dim: int = 128  # token embedding width
    lstm_units: list[int] = field(default_factory=lambda: [128])  # units/direction per BiLSTM
    pooling: Literal["last", "max", "attention"] = "max"  # sequence -> vector
    attention_units: int = 64  # attention pooling: hidden width of the scorer
    embedding_dropout: float = 0.2  # dropout on embedded tokens
    lstm_dropout: float = 0.0  # input dropout inside the LSTMs
    recurrent_dropout: float = 0.0  # recurrent dropout inside the LSTMs
    dropout: float = 0.5  # dropout before the output layer
    use_peepholes: bool = True  # peephole connections in the LSTM cells


@register_task
class SentimentTask(Task):
    """Sentence/document polarity (or any label set) from raw text."""

    name: ClassVar[str] = "sentiment"
    DataConfig: ClassVar[type] = SentimentDataConfig
    ModelConfig: ClassVar[type] = SentimentModelConfig

    # -- data -------------------------------------------------------------------------------
    @functools.cached_property
    def splits(self) -> dict[str, readers.LabeledTexts]:
        """The labelled splits ("train", and "validation"/"test" when configured).

        `data.extra_train` examples are in "train" (after the overlap filter); their counts are
        in `self.extra_stats`.
        """
        d = self.config.data
        splits = load_splits(d, self.config.seed)
        splits, self.extra_stats = extra.add_extra_train(
            splits,
            d.extra_train,
            d.data_dir,
            d.extra_overlap_filter,
            d.extra_overlap_min_words,
            text_column=d.text_column,
            label_column=d.label_column,
            delimiter=d.delimiter,
            encoding_fallback=d.encoding_fallback,
        )
        return splits

    @property
    def label_names(self) -> list[str]:
        return list(self.splits["train"].label_names)

    def prepare(self) -> None:
        """Trains the SentencePiece model on the training texts and writes the label names."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        labels = self.artifacts_dir / LABELS_ASSET
        if not labels.exists():
            labels.write_text("".join(f"{n}\n" for n in self.label_names), encoding="utf-8")
        _ = self.splits  # sets self.extra_stats
        if self.extra_stats:
            (self.artifacts_dir / EXTRA_STATS_FILE).write_text(
                json.dumps(self.extra_stats, indent=2)
            )
        spm_path = self.artifacts_dir / SPM_FILE
        if not spm_path.exists():
            d = self.config.data
            texts = self.splits["train"].texts
            normalized = normalize_texts(texts, d.normalization)
            logger.info("training SentencePiece (%d texts, vocab %d)", len(texts), d.vocab_size)
            train_sentencepiece(
                normalized,
                spm_path,
                vocab_size=d.vocab_size,
                model_type=d.tokenizer_type,
                normalization_rule_name="nmt_nfkc_cf",  # case folding: any input case works
                hard_vocab_limit=False,
                seed=self.config.seed,
            )

    @functools.cached_property
    def tokenizer(self) -> SentencePieceTokenizer:
        path = self.artifacts_dir / SPM_FILE
        if not path.exists():
            self.prepare()
        return SentencePieceTokenizer.from_file(path)

    def _dataset(self, split: str, batch_size: int, shuffle: bool) -> tf.data.Dataset:
        d = self.config.data
        return make_dataset(
            self.splits[split],
            self.tokenizer,
            batch_size,
            d.max_length,
            d.normalization,
            shuffle_seed=self.config.seed if shuffle else None,
            num_buckets=d.num_buckets if shuffle else 0,
        )

    def datasets(self, global_batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
        train = self._dataset("train", global_batch_size, shuffle=True)
        validation = None
        if "validation" in self.splits:
            validation = self._dataset("validation", global_batch_size, shuffle=False)
        return train, validation

    # -- model ------------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        m = self.config.model
        model = build_classifier(
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
        return model

    def loss(self) -> Any:
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self) -> list[Any]:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def custom_objects(self) -> dict[str, Any]:
        return {
            "MaskedGlobalMaxPooling1D": MaskedGlobalMaxPooling1D,
            "AttentionPooling1D": AttentionPooling1D,
        }

    # -- after training ---------------------------------------------------------------------
    def predict_probabilities(self, model: keras.Model, texts: list[str]) -> np.ndarray:
        """Class probabilities `[len(texts), classes]` for raw texts (the export's encoding)."""
        d = self.config.data
        out = []
        for start in range(0, len(texts), 64):
            ids = encode(
                self.tokenizer,
                tf.constant(texts[start : start + 64], tf.string),
                d.max_length,
                d.normalization,
            )
            out.append(np.asarray(model(ids, training=False)))
        return np.concatenate(out) if out else np.zeros((0, len(self.label_names)), np.float32)

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """Accuracy and macro-F1 on `split`; writes report JSON, confusion PNG, predictions TSV."""
        if split not in self.splits:
            raise ValueError(f"no {split!r} split configured (have: {sorted(self.splits)})")
        data = self.splits[split]
        probabilities = self.predict_probabilities(model, data.texts)
        predicted = probabilities.argmax(axis=-1)
        report = classification_report(data.labels, predicted, self.label_names)
        report["num_examples"] = len(data)
        eval_dir = self.run_dir / "eval"
        eval_dir.mkdir(parents=True, exist_ok=True)
        (eval_dir / f"{split}_report.json").write_text(json.dumps(report, indent=2))
        plot_confusion_matrix(
            np.array(report["confusion_matrix"]),
            self.label_names,
            eval_dir / f"{split}_confusion.png",
            title=f"{split}: accuracy {report['accuracy']:.3f}",
        )
        with open(eval_dir / f"{split}_predictions.tsv", "w", encoding="utf-8") as f:
            f.write("label\tpredicted\tprobability\ttext\n")
            for text, label, guess, probs in zip(
                data.texts, data.labels, predicted, probabilities, strict=True
            ):
                names = self.label_names
                f.write(f"{names[label]}\t{names[guess]}\t{probs[guess]:.4f}\t{text}\n")
        return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}

    def export(self, model: keras.Model, out_dir: Path) -> None:
        d = self.config.data
        self.prepare()
        server = SentimentServer(
            model, self.tokenizer, self.artifacts_dir / LABELS_ASSET, d.max_length, d.normalization
        )
        export_savedmodel(server, out_dir)

    @classmethod
    def predict(cls, export_dir: Path, inputs: list[str]) -> list[str]:
        """`<label>\\t<probability>\\t<text>` per input, using only the SavedModel."""
        import tensorflow_text  # noqa: F401  (registers the SentencePiece op)

        names = read_labels(export_dir)
        serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
        outputs = serve(text=tf.constant(inputs, tf.string))
        probabilities = outputs["probabilities"].numpy()
        labels = outputs["label"].numpy()
        return [
            f"{names[label]}\t{probabilities[i, label]:.4f}\t{text}"
            for i, (label, text) in enumerate(zip(labels, inputs, strict=True))
        ]


def _path(config: SentimentDataConfig, key: str) -> Path:
    """The file named by `data.<key>`, relative to `data.data_dir`; must exist."""
    path = resolve_under(getattr(config, key), config.data_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.{key}: {path} not found (data.data_dir={config.data_dir!r}; "
            f"set it in the config or with --data-dir)"
        )
    return path


def load_splits(config: SentimentDataConfig, seed: int) -> dict[str, readers.LabeledTexts]:
    """Reads the configured data into {"train", "validation"?, "test"?} `LabeledTexts`."""
    names = tuple(config.label_names) or None
    fmt = config.format
    if fmt == "synthetic":
        return {
            "train": readers.make_negation_examples(config.synthetic_train_size, seed),
            "validation": readers.make_negation_examples(config.synthetic_eval_size, seed + 1),
            "test": readers.make_negation_examples(config.synthetic_eval_size, seed + 2),
        }
    if fmt == "rt_polarity":
        pair = readers.read_polarity_pair(
            _path(config, "positive_file"),
            _path(config, "negative_file"),
            config.encoding_fallback,
        )
        fractions = {"validation": config.validation_fraction, "test": config.test_fraction}
        fractions = {k: v for k, v in fractions.items() if v > 0}
        return readers.split_seeded(pair, fractions, config.split_seed)
    if fmt == "tfds":
        split_names = {
            "train": config.tfds_train_split,
            "validation": config.tfds_validation_split,
            "test": config.tfds_test_split,
        }
        return {
            key: readers.load_tfds(config.tfds_name, split, config.data_dir, label_names=names)
            for key, split in split_names.items()
            if split is not None
        }
    files = {"train": "train_file", "validation": "validation_file", "test": "test_file"}
    splits: dict[str, readers.LabeledTexts] = {}
    for key, name in files.items():
        if getattr(config, name) is None:
            continue
        if fmt == "sst2":
            splits[key] = readers.read_sst2(
                _path(config, name), names or readers.BINARY_LABELS, config.encoding_fallback
            )
        elif fmt == "csv":
            train_names = splits["train"].label_names if "train" in splits else names
            splits[key] = readers.read_delimited(
                _path(config, name),
                config.text_column,
                config.label_column,
                train_names,
                config.delimiter,
            )
        else:
            raise ValueError(f"data.format: unknown format {fmt!r}")
    return splits
