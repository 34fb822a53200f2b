"""The sentiment task's `data` and `model` config sections.

Every key is documented by its comment (the configuration reference is generated from them);
value ranges are declared in the field metadata and checked when a config is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shared.config import at_least, fraction, positive
from shared.data.sources import parse_format_entry
from shared.errors import ConfigError

Format = Literal["sst2", "rt_polarity", "csv", "tfds", "synthetic"]
Normalization = Literal["none", "ptb"]
Pooling = Literal["last", "max", "attention"]
Tokens = Literal["subword", "word"]
VectorFormat = Literal["auto", "glove", "word2vec"]
EXTRA_FORMATS = ("rt_polarity", "sst2", "csv")


@dataclass
class VocabularyConfig:
    """The word vocabulary of `data.tokens: word` (words.py)."""

    # the most frequent words of model.pretrained_vectors added after the training words, so a
    # test word never seen in training keeps its pretrained vector (0: training words only)
    vector_words: int = field(default=50_000, metadata=at_least(0))
    # training words seen fewer times are left out (-> the unknown word) unless they have a vector
    min_count: int = field(default=1, metadata=at_least(1))


@dataclass
class VectorsConfig:
    """A pretrained word-vector file (text; plain or gzip)."""

    path: str | None = None  # the file, relative to data.data_dir (or absolute); null: none
    format: VectorFormat = "auto"  # glove (no header), word2vec (`N D` header line) or auto


@dataclass
class LexiconConfig:
    """A word polarity lexicon, `word<TAB>rating...` per line (shared/data/lexicon.py)."""

    # "vader" (the VADER lexicon of the vaderSentiment package), a file relative to data_dir,
    # or null (no lexicon features)
    path: str | None = None
    scale: float = field(default=4.0, metadata=positive())  # largest |rating| (4 for VADER)


@dataclass
class DataConfig:
    """Where the labelled text comes from and how it becomes ids (formats: see data.py)."""

    format: Format = "sst2"  # sst2, rt_polarity, csv, tfds or synthetic (see data.py)
    data_dir: str | None = None  # base folder of the *_file keys (TFDS: its data directory)
    train_file: str = "stsa.binary.train"  # sst2/csv: training file
    validation_file: str | None = "stsa.binary.dev"  # sst2/csv: validation file (None: none)
    test_file: str | None = None  # sst2/csv: test file (None: none)
    positive_file: str = "rt-polarity.pos"  # rt_polarity: positive snippets, one per line
    negative_file: str = "rt-polarity.neg"  # rt_polarity: negative snippets, one per line
    # rt_polarity: share of each class held out for validation
    validation_fraction: float = field(default=0.1, metadata=fraction())
    # rt_polarity: share of each class held out for test
    test_fraction: float = field(default=0.1, metadata=fraction())
    split_seed: int = 1234  # rt_polarity: seed of the split (fixed, independent of `seed`)
    # rt_polarity: k-fold cross-validation instead of test_fraction: the snippets are dealt into
    # this many seeded stratified folds (split_seed), fold `cv_fold` is the test split and
    # validation_fraction of the other folds the validation split; 0: no folds (10 is the
    # standard MR protocol; train each fold k = 0..cv_folds-1 in its own run directory)
    cv_folds: int = field(default=0, metadata=at_least(0))
    cv_fold: int = field(default=0, metadata=at_least(0))  # rt_polarity: the test fold (from 0)
    # decode lines that are not UTF-8 with this codec (e.g. cp1252 for Cornell's original MR)
    encoding_fallback: str | None = None
    text_column: str = "text"  # csv: header of the text column
    label_column: str = "label"  # csv: header of the label column
    delimiter: str | None = None  # csv: field separator; None: tab for .tsv, else comma
    label_names: list[str] = field(default_factory=list)  # class names; []: format default
    tfds_name: str = "imdb_reviews"  # tfds: dataset name, e.g. imdb_reviews, glue/sst2
    tfds_train_split: str = "train"  # tfds: training split
    tfds_validation_split: str | None = "test"  # tfds: validation split (None: none)
    tfds_test_split: str | None = None  # tfds: test split (None: none)
    # synthetic: training examples of the generated negation set
    synthetic_train_size: int = field(default=800, metadata=at_least(1))
    # synthetic: validation and test examples each
    synthetic_eval_size: int = field(default=200, metadata=at_least(1))
    # subword: SentencePiece pieces of the normalised text; word: PTB words (as SST and GloVe
    # spell them), needed by model.pretrained_vectors and model.lexicon (words.py)
    tokens: Tokens = "subword"
    vocabulary: VocabularyConfig = field(default_factory=VocabularyConfig)  # tokens: word
    # SentencePiece vocabulary size (a soft limit: tiny corpora get fewer pieces)
    vocab_size: int = field(default=8000, metadata=at_least(8))
    tokenizer_type: Literal["unigram", "bpe"] = "unigram"  # SentencePiece model type
    normalization: Normalization = "ptb"  # in-graph text normalisation (text.py)
    # tokens (pieces or words) kept per text (the head); longer texts are truncated
    max_length: int = field(default=128, metadata=at_least(1))
    # training batches drawn from this many length buckets (less padding); 0: plain batches
    num_buckets: int = field(default=4, metadata=at_least(0))
    # extra labelled training data, each "<format>:<path>" with format rt_polarity (a folder),
    # sst2 or csv (a file), relative to data_dir; e.g. "rt_polarity:../rt-polarity" (extra.py)
    extra_train: list[str] = field(default_factory=list)
    # drop extra texts that equal, contain or are part of a validation or test sentence, so
    # the evaluation stays honest when both come from one source (overlap.py)
    extra_overlap_filter: bool = True
    # sentences and texts with fewer words are matched exactly only (not as contained words)
    extra_overlap_min_words: int = field(default=3, metadata=at_least(1))

    def __post_init__(self):
        if self.validation_fraction + self.test_fraction >= 1:
            raise ConfigError(
                "validation_fraction + test_fraction must be < 1, got "
                f"{self.validation_fraction} + {self.test_fraction}"
            )
        self._check_folds()
        for entry in self.extra_train:  # the format here; the path when it is read
            parse_format_entry(entry, EXTRA_FORMATS, None, "extra_train")

    def _check_folds(self) -> None:
        """`cv_folds` is 0 (off) or >= 2 with rt_polarity; `cv_fold` indexes the folds."""
        if self.cv_folds == 1:
            raise ConfigError("data.cv_folds: 1 fold leaves no training data; use 0 (off) or >= 2")
        if self.cv_folds and self.format != "rt_polarity":
            raise ConfigError(f"data.cv_folds: needs format rt_polarity, got {self.format!r}")
        if self.cv_folds and self.cv_fold >= self.cv_folds:
            raise ConfigError(
                f"data.cv_fold: must be < data.cv_folds = {self.cv_folds}, got {self.cv_fold}"
            )
        if not self.cv_folds and self.cv_fold:
            raise ConfigError(
                f"data.cv_fold: {self.cv_fold} needs data.cv_folds >= 2 (0: no folds)"
            )


@dataclass
class ModelConfig:
    """The classifier: Embedding -> BiPeepholeLSTM stack -> pooling -> softmax (model.py)."""

    # token embedding width (with pretrained_vectors: the vectors' dimension instead)
    embedding_dim: int = field(default=128, metadata=at_least(1))
    # word vectors to start the embedding from (needs data.tokens: word); no path: random start
    pretrained_vectors: VectorsConfig = field(default_factory=VectorsConfig)
    # pretrained rows: false = fine-tuned from the start, true = kept fixed, N = fixed for the
    # first N epochs, then fine-tuned (the unknown word and words without a vector always train)
    freeze_vectors: bool | int = field(default=False, metadata=at_least(0))
    # per-word polarity and has-entry features next to the embedding (needs data.tokens: word)
    lexicon: LexiconConfig = field(default_factory=LexiconConfig)
    # units per direction of each stacked bidirectional LSTM
    lstm_units: list[int] = field(default_factory=lambda: [128], metadata=at_least(1))
    pooling: Pooling = "max"  # sequence -> vector: last states, masked max or attention
    # attention pooling: hidden width of the scorer
    attention_units: int = field(default=64, metadata=at_least(1))
    embedding_dropout: float = field(default=0.2, metadata=fraction())  # on embedded tokens
    lstm_dropout: float = field(default=0.0, metadata=fraction())  # input dropout in the LSTMs
    # recurrent-state dropout inside the LSTMs
    recurrent_dropout: float = field(default=0.0, metadata=fraction())
    dropout: float = field(default=0.5, metadata=fraction())  # before the output layer
    use_peepholes: bool = True  # peephole connections in the LSTM cells

    def __post_init__(self):
        if not self.lstm_units:
            raise ConfigError("lstm_units: needs at least one layer, got []")

    @property
    def uses_vectors(self) -> bool:
        """Whether the embedding starts from `pretrained_vectors`."""
        return self.pretrained_vectors.path is not None

    @property
    def uses_lexicon(self) -> bool:
        """Whether lexicon features go next to the embedding."""
        return self.lexicon.path is not None
