"""The translation task's `data` and `model` config sections.

The direction is `data.source` -> `data.target`. Every key is documented next to its default;
`docs/configuration.md` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shared.config import at_least, fraction, in_range, positive

FORMATS = ("multi30k", "tatoeba", "parallel", "tfds", "generated", "numbers")
Format = Literal["multi30k", "tatoeba", "parallel", "tfds", "generated", "numbers"]
# Formats without named splits: one list of pairs cut into train/validation/test by
# `split_fractions` after a shuffle with `split_seed`.
RANDOM_SPLIT_FORMATS = ("tatoeba", "generated", "numbers")


@dataclass
class MixtureSource:
    """A further training corpus mixed into the training split (same languages as the main one).

    Validation and test stay the main source's; SentencePiece trains over the whole mixture.
    """

    format: Literal["multi30k", "tatoeba", "parallel"] = "tatoeba"  # as data.format
    data_dir: str | None = None  # its folder; a relative one is taken beside data.data_dir
    tatoeba_file: str = "deu-eng.zip"  # tatoeba: file in data_dir; its train cut is used
    file_pattern: str = "{split}.{lang}"  # parallel: file name in data_dir from split and lang
    train_split: str = "train"  # multi30k/parallel: the split to train on
    # copies per epoch: 2.0 repeats it twice, 0.5 keeps a seeded half
    upsample: float = field(default=1.0, metadata=positive())


@dataclass
class DataConfig:
    """Where the parallel text comes from and how it becomes subword ids."""

    data_dir: str | None = None  # dataset folder (multi30k/, tatoeba-anki/, ...); None: generated
    # multi30k: <split>.<lang>.gz files; tatoeba: an Anki TSV (zip or plain); parallel: two
    # line-aligned files per split (file_pattern); tfds: a TFDS dataset; generated: a toy language
    # (tests); numbers: numbers, dates and amounts rendered by num2words/Babel (the offline demo)
    format: Format = "multi30k"
    source: str = "de"  # source language code
    target: str = "en"  # target language code
    train_split: str = "train"  # split names as the source knows them (multi30k: val, test2016)
    validation_split: str = "val"  # the source's name of the validation split
    test_split: str = "test2016"  # the source's name of the test split
    file_pattern: str = "{split}.{lang}"  # parallel: file name in data_dir from split and lang
    tatoeba_file: str = "deu-eng.zip"  # tatoeba: file in data_dir (zip or TSV)
    # tatoeba/generated/numbers: fractions of the train/validation/test splits
    split_fractions: list[float] = field(
        default_factory=lambda: [0.9, 0.05, 0.05], metadata=in_range(0, 1)
    )
    split_seed: int = field(default=0, metadata=at_least(0))  # seed of the shuffle before splitting
    tfds_name: str = ""  # tfds: e.g. ted_hrlr_translate/pt_to_en (download=False)
    # training/validation pairs with a side longer than this (in subwords) are dropped
    max_length: int = field(default=64, metadata=at_least(1))
    vocab_size: int = field(default=8000, metadata=at_least(5))  # pieces incl. pad/unk/bos/eos
    spm_model_type: Literal["unigram", "bpe"] = "unigram"  # SentencePiece algorithm
    vocab_hard_limit: bool = True  # False: vocab_size is an upper bound (tiny corpora)
    joint_vocab: bool = True  # one SentencePiece model for both languages (else one per side)
    # share of characters SentencePiece must cover (1.0: all, for small alphabets)
    character_coverage: float = field(default=1.0, metadata=in_range(0, 1, low_open=True))
    split_digits: bool = False  # one piece per digit: numbers are copied, not recalled
    # copies per epoch of the training split (with `mixture`: its weight against the others)
    upsample: float = field(default=1.0, metadata=positive())
    # further training corpora (e.g. Tatoeba next to Multi30k), each with its upsample factor
    mixture: list[MixtureSource] = field(default_factory=list)
    num_buckets: int = field(default=8, metadata=at_least(1))  # length buckets for batching
    # training shuffle buffer (>= the number of training pairs: a full shuffle)
    shuffle_buffer: int = field(default=30000, metadata=at_least(1))
    generated_pairs: int = field(default=2000, metadata=at_least(3))  # generated/numbers: pairs
    generated_words: int = field(default=16, metadata=at_least(1))  # generated: lexicon size
    generated_min_words: int = field(default=3, metadata=at_least(1))  # generated: shortest
    generated_max_words: int = field(default=8, metadata=at_least(1))  # generated: longest

    def __post_init__(self):
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-6:
            raise ValueError(
                "data.split_fractions must be 3 numbers (train, validation, test) summing to 1, "
                f"got {self.split_fractions}"
            )
        if self.generated_min_words > self.generated_max_words:
            raise ValueError(
                "data.generated_min_words must be <= data.generated_max_words, got "
                f"{self.generated_min_words} > {self.generated_max_words}"
            )


@dataclass
class ModelConfig:
    """Model shape, regularisation and decoding."""

    embedding_dim: int = field(default=256, metadata=at_least(1))  # source and target embeddings
    # units per direction of each Bidirectional(PeepholeLSTM) encoder layer
    encoder_units: int = field(default=256, metadata=at_least(1))
    encoder_layers: int = field(default=2, metadata=at_least(1))  # encoder depth
    # decoder cell width (= the attentional vector's width)
    decoder_units: int = field(default=512, metadata=at_least(1))
    decoder_layers: int = field(default=1, metadata=at_least(1))  # decoder depth
    attention: Literal["dot", "general", "bahdanau"] = "general"  # score function
    attention_units: int = field(default=256, metadata=at_least(1))  # bahdanau's hidden width
    input_feeding: bool = True  # feed the previous attentional vector to the decoder
    dropout: float = field(default=0.3, metadata=fraction())  # embeddings, between layers, output
    label_smoothing: float = field(default=0.1, metadata=fraction())  # cross-entropy smoothing
    tie_target_embedding: bool = False  # share target embeddings with the output projection
    beam_size: int = field(default=5, metadata=at_least(1))  # beams of evaluate/export (1: greedy)
    length_penalty: float = field(default=0.6, metadata=at_least(0))  # GNMT exponent (0: none)
    # output limit per sentence: ceil(ratio * source subwords) + offset
    max_length_ratio: float = field(default=1.5, metadata=positive())
    # added to the ratio-scaled source length in the output limit
    max_length_offset: int = field(default=10, metadata=at_least(1))
    eval_batch_size: int = field(default=64, metadata=at_least(1))  # sentences per decoding batch

    def __post_init__(self):
        if self.attention == "dot" and self.decoder_units != 2 * self.encoder_units:
            raise ValueError(
                "model.attention=dot needs model.decoder_units == 2 * model.encoder_units, got "
                f"{self.decoder_units} and {self.encoder_units} (or use attention: general)"
            )
