"""SentencePiece subwords: training a model, and an in-graph tokenizer for tf.data and exports.

`train_sentencepiece` fits a unigram or BPE model on an iterable of raw sentences and writes it to a
`.model` file. `SentencePieceTokenizer` wraps `tensorflow_text.SentencepieceTokenizer` so the same
model runs inside `tf.data` pipelines and inside exported `tf.function`s (the serialized model is a
graph constant, so a SavedModel that uses it takes raw strings and needs no extra files; load it
after `import tensorflow_text`).

Id layout is fixed for every model trained here: 0 = padding, 1 = unknown, 2 = begin (bos),
3 = end (eos). Padding is 0 so padded id batches can be masked with `ids != 0`.

>>> path = train_sentencepiece(["a b c", "a c b"] * 50, "/tmp/tiny.model", vocab_size=8)
>>> tok = SentencePieceTokenizer.from_file(path)
>>> ids = tok.tokenize(tf.constant(["a b"]), add_eos=True)   # RaggedTensor [1, None] int32
>>> tok.detokenize(ids)                                       # tf.string [1]: [b"a b"]
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3


def train_sentencepiece(
    texts: Iterable[str],
    path: str | Path,
    vocab_size: int,
    model_type: Literal["unigram", "bpe", "char", "word"] = "unigram",
    character_coverage: float = 1.0,
    normalization_rule_name: str = "nmt_nfkc",
    hard_vocab_limit: bool = True,
    user_defined_symbols: list[str] | None = None,
    seed: int = 0,
    split_digits: bool = False,
) -> Path:
    """Trains a SentencePiece model on `texts` and writes it to `path` (deterministic).

    Training runs single-threaded on every sentence in the given order (no sampling, no shuffling)
    with a fixed random seed, so the same texts always give a byte-identical model.

    Args:
        texts: raw training sentences (empty strings are skipped).
        path: output file, conventionally ending in `.model`; parent folders are created.
        vocab_size: number of pieces including the four special ids (pad, unk, bos, eos).
        model_type: "unigram" (default) or "bpe"; "char"/"word" also work.
        character_coverage: fraction of characters the model must cover (1.0 for small alphabets).
        normalization_rule_name: SentencePiece normalizer; "nmt_nfkc" keeps case, "nmt_nfkc_cf"
            case-folds, "identity" leaves text untouched.
        hard_vocab_limit: if False, `vocab_size` is a soft limit (useful for tiny corpora).
        user_defined_symbols: pieces that are never split (e.g. tags).
        seed: seed of SentencePiece's random generator.
        split_digits: every digit is its own piece, so numbers are copied digit by digit
            instead of being memorised as whole pieces ("2021" -> 2 0 2 1).

    Returns:
        The path of the written model.

    Raises:
        ValueError: on a bad argument, or when `texts` holds no non-empty sentence.
    """
    if vocab_size < 5:
        raise ValueError(f"vocab_size must be >= 5 (4 special ids + 1 piece), got {vocab_size}")
    if model_type not in ("unigram", "bpe", "char", "word"):
        raise ValueError(f"model_type must be unigram, bpe, char or word, got {model_type!r}")
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage}")
    sentences = [t for t in texts if t and not t.isspace()]
    if not sentences:
        raise ValueError("train_sentencepiece: no non-empty training sentence given")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spm.set_random_generator_seed(seed)
    buffer = io.BytesIO()
    options = dict(
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        normalization_rule_name=normalization_rule_name,
        hard_vocab_limit=hard_vocab_limit,
        user_defined_symbols=user_defined_symbols or [],
        split_digits=split_digits,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        num_threads=1,  # single-threaded, unsampled, unshuffled: deterministic
        input_sentence_size=0,
        shuffle_input_sentence=False,
        max_sentence_length=1 << 16,
        minloglevel=2,
    )
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=buffer, **options
        )
    except RuntimeError as err:  # e.g. vocab_size smaller than the alphabet
        raise ValueError(f"SentencePiece training for {path} failed: {err}") from err
    path.write_bytes(buffer.getvalue())
    return path


class SentencePieceTokenizer(tf.Module):
    """In-graph SentencePiece tokenizer: raw `tf.string` -> int32 ids and back.

    Works eagerly, inside `tf.data.Dataset.map` and inside `tf.function`s of an exported module
    (attach it as an attribute of the `tf.Module` you save; the model proto is a graph constant).

    Args:
        model: the serialized SentencePiece model (the bytes of a `.model` file).
        name: module name.
    """

    def __init__(self, model: bytes, name: str | None = None):
        super().__init__(name=name)
        if not isinstance(model, bytes) or not model:
            raise ValueError("model must be the non-empty bytes of a SentencePiece .model file")
        self._model = model
        processor = spm.SentencePieceProcessor(model_proto=model)
        self.vocab_size = int(processor.get_piece_size())
        self.pad_id = int(processor.pad_id())
        self.unk_id = int(processor.unk_id())
        self.bos_id = int(processor.bos_id())
        self.eos_id = int(processor.eos_id())
        self._pieces = tuple(processor.id_to_piece(i) for i in range(self.vocab_size))
        # A name per model: the op's kernel-owned resource is otherwise shared by every
        # SentencePiece op of a loaded SavedModel, so a second model (e.g. the target side of a
        # seq2seq export) silently ran the first one after tf.saved_model.load.
        self._name = f"sentencepiece_{hashlib.sha256(model).hexdigest()[:16]}"
        self._sp = tf_text.SentencepieceTokenizer(model=model, name=self._name)

    def _run(self, method: str, *args: Any) -> Any:
        """`self._sp.<method>(*args)`; eagerly, after a lost resource, with a new tf-text model.

        `tf.random.set_seed` (and so `keras.utils.set_random_seed`) clears the eager kernel cache
        and with it the kernel-owned SentencePiece resource (tensorflow/text#570): the next eager
        call would fail with NotFoundError. A graph traced before the reset keeps the lost handle:
        trace (or export) after setting seeds.
        """
        try:
            return getattr(self._sp, method)(*args)
        except tf.errors.NotFoundError:
            if not tf.executing_eagerly():
                raise
            self._sp = tf_text.SentencepieceTokenizer(model=self._model, name=self._name)
            return getattr(self._sp, method)(*args)

    @classmethod
    def from_file(cls, path: str | Path) -> SentencePieceTokenizer:
        """Loads a tokenizer from a `.model` file written by `train_sentencepiece`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"SentencePiece model not found: {path}")
        return cls(path.read_bytes(), name=path.stem.replace("-", "_").replace(".", "_"))

    @property
    def model_proto(self) -> bytes:
        """The serialized SentencePiece model."""
        return self._model

    def id_to_piece(self, index: int) -> str:
        """The piece string of id `index` (for inspection and attention plots)."""
        return self._pieces[index]

    def tokenize(
        self, texts: tf.Tensor, add_bos: bool = False, add_eos: bool = False
    ) -> tf.RaggedTensor:
        """Splits raw strings into ids.

        Args:
            texts: `tf.string` tensor of any rank (typically a scalar or `[batch]`).
            add_bos: prepend the bos id to every sequence.
            add_eos: append the eos id to every sequence.

        Returns:
            int32 ids: a `tf.Tensor` [n] for a scalar input, else a `tf.RaggedTensor` with one
            more (ragged) dimension than `texts`.
        """
        ids = self._run("tokenize", texts)
        if add_bos or add_eos:
            ids = tf_text.pad_along_dimension(
                ids,
                axis=-1,
                left_pad=tf.constant([self.bos_id], tf.int32) if add_bos else None,
                right_pad=tf.constant([self.eos_id], tf.int32) if add_eos else None,
            )
        return ids

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor, stop_at_eos: bool = True) -> tf.Tensor:
        """Joins ids back into raw strings, dropping pad/bos/eos.

        Args:
            ids: int ids of shape `[batch, length]`, dense (padded with `pad_id`) or ragged, or a
                single sequence of shape `[length]`.
            stop_at_eos: ignore everything after the first eos of each sequence (decoder output).

        Returns:
            `tf.string` of shape `[batch]` (or a scalar for a single sequence).
        """
        if isinstance(ids, tf.RaggedTensor):
            if stop_at_eos:
                ids = _cut_at_eos(ids.to_tensor(default_value=self.pad_id), self.eos_id)
            return self._run("detokenize", tf.cast(ids, tf.int32))
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank == 1:
            return self.detokenize(ids[tf.newaxis], stop_at_eos=stop_at_eos)[0]
        if stop_at_eos:
            ids = _cut_at_eos(ids, self.eos_id)
        # Control pieces (pad, bos, eos) decode to nothing, so dense padding needs no stripping.
        return self._run("detokenize", tf.cast(ids, tf.int32))


def _cut_at_eos(ids: tf.Tensor, eos_id: int) -> tf.RaggedTensor:
    """Ragged copy of dense `ids` [batch, length] keeping the tokens before each row's first eos."""
    is_eos = tf.cast(tf.equal(ids, eos_id), tf.int32)
    before_eos = tf.equal(tf.cumsum(is_eos, axis=1), 0)
    lengths = tf.reduce_sum(tf.cast(before_eos, tf.int32), axis=1)
    return tf.RaggedTensor.from_tensor(ids, lengths=lengths)
