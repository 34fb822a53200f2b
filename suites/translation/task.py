"""The translation task: parallel text -> SentencePiece -> attention seq2seq -> BLEU/chrF -> export.

Data sources (`data.format`): Multi30k raw files, Tatoeba/Anki TSV (zip or plain, seeded split),
generic line-aligned files (`data.file_pattern`), a TFDS dataset by name, `generated`: a
deterministic toy language (word-by-word transliteration with reversed word order) for tests, or
`numbers`: numbers, dates and amounts rendered in English/German/French by num2words and Babel
(`suites/translation/numbers.py`) for the offline demo. The direction is `data.source` ->
`data.target`.

`prepare` trains the SentencePiece model(s) on the training split into `artifacts/` (joint over
both languages or one per side). Training batches are `({"source", "target_in"}, target_out)` of
padded ids: source + eos, bos + target, target + eos; length-bucketed. `evaluate` decodes a split
greedily and with beam search, detokenizes, and scores against the raw references with sacreBLEU
(BLEU, chrF); hypotheses go to `eval/<split>.<decoder>.txt`.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np
import sentencepiece as spm
import tensorflow as tf

from shared.data import pipeline
from shared.data.tokenizer import BOS_ID, EOS_ID, SentencePieceTokenizer, train_sentencepiece
from shared.metrics.text import corpus_bleu, corpus_chrf
from shared.task import Task, register_task
from suites.translation import data as readers
from suites.translation.decoding import beam_search, greedy_decode
from suites.translation.model import (
    Attention,
    AttentionDecoder,
    MaskedTokenAccuracy,
    Seq2SeqAttention,
    SmoothedSequenceLoss,
)
from suites.translation.numbers import generate_number_pairs
from suites.translation.serving import Translator, save_translator, translate

SPLITS = ("train", "validation", "test")


@dataclass
class TranslationDataConfig:
    """Where the parallel text comes from and how it becomes subword ids."""

    data_dir: str | None = None  # dataset folder (multi30k/, tatoeba-anki/, ...); None: generated
    # generated: a toy language; numbers: numbers/dates/amounts in real languages (num2words, Babel)
    format: Literal["multi30k", "tatoeba", "parallel", "tfds", "generated", "numbers"] = "multi30k"
    source: str = "de"  # source language code
    target: str = "en"  # target language code
    train_split: str = "train"  # split names as the source knows them (multi30k: val, test2016)
    validation_split: str = "val"  # the source's name of the validation split
    test_split: str = "test2016"  # the source's name of the test split
    file_pattern: str = "{split}.{lang}"  # parallel: file name in data_dir from split and lang
    tatoeba_file: str = "deu-eng.zip"  # tatoeba: file in data_dir (zip or TSV)
    # tatoeba/generated/numbers: fractions of the train/validation/test splits
    split_fractions: list[float] = field(default_factory=lambda: [0.9, 0.05, 0.05])
    split_seed: int = 0  # tatoeba/generated/numbers: seed of the shuffle before splitting
    tfds_name: str = ""  # tfds: e.g. ted_hrlr_translate/pt_to_en (download=False)
    max_length: int = 64  # training/validation pairs with a side longer (subwords) are dropped
    vocab_size: int = 8000  # SentencePiece pieces (incl. pad/unk/bos/eos), per model
    spm_model_type: Literal["unigram", "bpe"] = "unigram"  # SentencePiece algorithm
    vocab_hard_limit: bool = True  # False: vocab_size is an upper bound (tiny corpora)
    joint_vocab: bool = True  # one model for both languages (else one per side)
    character_coverage: float = 1.0  # SentencePiece character coverage
    split_digits: bool = False  # SentencePiece: one piece per digit (numbers copied, not recalled)
    num_buckets: int = 8  # length buckets for batching
    shuffle_buffer: int = 30000  # training shuffle buffer (>= training pairs: full shuffle)
    generated_pairs: int = 2000  # generated/numbers: number of pairs in all splits together
    generated_words: int = 16  # generated: size of the toy lexicon
    generated_min_words: int = 3  # generated: shortest sentence (words)
    generated_max_words: int = 8  # generated: longest sentence (words)


@dataclass
class TranslationModelConfig:
    """Model shape, regularisation and decoding."""

    embedding_dim: int = 256  # source and target embedding width
    encoder_units: int = 256  # units per direction of each Bidirectional(PeepholeLSTM) layer
    encoder_layers: int = 2  # encoder depth
    decoder_units: int = 512  # decoder cell width (= attentional vector width)
    decoder_layers: int = 1  # decoder depth
    attention: Literal["dot", "general", "bahdanau"] = "general"  # score function
    attention_units: int = 256  # hidden width of bahdanau attention
    input_feeding: bool = True  # feed the previous attentional vector to the decoder
    dropout: float = 0.3  # embeddings, between layers, before the output projection
    label_smoothing: float = 0.1  # cross-entropy label smoothing
    tie_target_embedding: bool = False  # share target embeddings with the output projection
    beam_size: int = 5  # beams for evaluate and export (1: greedy)
    length_penalty: float = 0.6  # GNMT length-penalty exponent (0: none)
    max_length_ratio: float = 1.5  # output limit: ratio * source subwords + offset
    max_length_offset: int = 10  # added to the ratio-scaled source length
    eval_batch_size: int = 64  # sentences per decoding batch in evaluate


# -- generated toy language -----------------------------------------------------------------
_SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "ve", "wo", "ba", "di", "fo", "gu"]


def toy_lexicon(size: int) -> dict[str, str]:
    """A fixed source->target word map: source words are syllable pairs, targets their mirror."""
    words = [a + b for a in _SYLLABLES for b in _SYLLABLES if a != b][:size]
    return {w: w[::-1].capitalize() for w in words}


def generate_pairs(num: int, size: int, min_words: int, max_words: int, seed: int) -> list:
    """Toy parallel corpus: target = source words transliterated, in reverse order."""
    lexicon = toy_lexicon(size)
    words = sorted(lexicon)
    rng = random.Random(seed)
    pairs = []
    for _ in range(num):
        sentence = [rng.choice(words) for _ in range(rng.randint(min_words, max_words))]
        pairs.append((" ".join(sentence), " ".join(lexicon[w] for w in reversed(sentence))))
    return pairs


@register_task
class TranslationTask(Task):
    """Sentence translation with an attention LSTM encoder-decoder."""

    name = "translation"
    DataConfig = TranslationDataConfig
    ModelConfig = TranslationModelConfig

    # -- raw data ---------------------------------------------------------------------------
    def _split_name(self, split: str) -> str:
        d = self.config.data
        names = {"train": d.train_split, "validation": d.validation_split, "test": d.test_split}
        return names.get(split, split)

    def raw_pairs(self, split: str) -> list[tuple[str, str]]:
        """The uncleaned (source, target) pairs of `split` ("train", "validation", "test")."""
        d = self.config.data
        if d.format in ("tatoeba", "generated", "numbers"):
            if split not in SPLITS:
                raise ValueError(f"data.format {d.format} has splits {SPLITS}, not {split!r}")
            return self._random_splits()[split]
        if d.format == "tfds":
            if not d.tfds_name:
                raise ValueError("data.tfds_name must name a TFDS dataset for data.format=tfds")
            return readers.read_tfds_pairs(
                d.tfds_name, self._split_name(split), d.source, d.target, d.data_dir
            )
        root = self._data_dir()
        name = self._split_name(split)
        if d.format == "multi30k":
            return readers.read_multi30k(root, name, d.source, d.target)
        return readers.read_parallel_files(
            root / d.file_pattern.format(split=name, lang=d.source),
            root / d.file_pattern.format(split=name, lang=d.target),
        )

    def _data_dir(self) -> Path:
        d = self.config.data
        if d.data_dir is None:
            raise ValueError(f"data.data_dir is required for data.format={d.format}")
        path = Path(d.data_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"data.data_dir {path} is not a directory")
        return path

    def _random_splits(self) -> dict[str, list]:
        if not hasattr(self, "_splits_cache"):
            d = self.config.data
            if d.format == "generated":
                pairs = generate_pairs(
                    d.generated_pairs,
                    d.generated_words,
                    d.generated_min_words,
                    d.generated_max_words,
                    d.split_seed,
                )
            elif d.format == "numbers":
                pairs = generate_number_pairs(d.generated_pairs, d.source, d.target, d.split_seed)
            else:
                pairs = readers.read_tatoeba_pairs(
                    self._data_dir() / d.tatoeba_file, d.source, d.target
                )
            self._splits_cache = readers.split_pairs(pairs, d.split_fractions, d.split_seed)
        return self._splits_cache

    # -- tokenizers -------------------------------------------------------------------------
    def _spm_paths(self) -> tuple[Path, Path]:
        d = self.config.data
        if d.joint_vocab:
            joint = self.artifacts_dir / "spm.joint.model"
            return joint, joint
        return (
            self.artifacts_dir / f"spm.{d.source}.model",
            self.artifacts_dir / f"spm.{d.target}.model",
        )

    def prepare(self) -> None:
        """Trains the SentencePiece model(s) on the training split (skipped if present)."""
        d = self.config.data
        source_path, target_path = self._spm_paths()
        if source_path.exists() and target_path.exists():
            return
        pairs = [(s.strip(), t.strip()) for s, t in self.raw_pairs("train")]
        options = dict(
            vocab_size=d.vocab_size,
            model_type=d.spm_model_type,
            character_coverage=d.character_coverage,
            hard_vocab_limit=d.vocab_hard_limit,
            seed=self.config.seed,
            split_digits=d.split_digits,
        )
        started = time.time()
        if d.joint_vocab:
            texts = [s for s, _ in pairs] + [t for _, t in pairs]
            train_sentencepiece(texts, source_path, **options)
        else:
            train_sentencepiece([s for s, _ in pairs], source_path, **options)
            train_sentencepiece([t for _, t in pairs], target_path, **options)
        _log(f"translation: SentencePiece trained in {time.time() - started:.1f}s -> {source_path}")

    def tokenizers(self) -> tuple[SentencePieceTokenizer, SentencePieceTokenizer]:
        """(source, target) in-graph tokenizers from `artifacts/` (the same object if joint)."""
        if not hasattr(self, "_tokenizers"):
            source_path, target_path = self._spm_paths()
            if not source_path.exists():
                raise FileNotFoundError(f"{source_path} missing: run prepare() (or train) first")
            source = SentencePieceTokenizer.from_file(source_path)
            target = source if target_path == source_path else None
            target = target or SentencePieceTokenizer.from_file(target_path)
            self._tokenizers = (source, target)
        return self._tokenizers

    def _processors(self) -> tuple[spm.SentencePieceProcessor, spm.SentencePieceProcessor]:
        source, target = self.tokenizers()
        return (
            spm.SentencePieceProcessor(model_proto=source.model_proto),
            spm.SentencePieceProcessor(model_proto=target.model_proto),
        )

    # -- tf.data ----------------------------------------------------------------------------
    def encoded_split(self, split: str) -> tuple[list[list[int]], list[list[int]]]:
        """Cleaned, subword-encoded pairs of `split` (no bos/eos); logs what was dropped."""
        src_sp, tgt_sp = self._processors()
        pairs = [(s.strip(), t.strip()) for s, t in self.raw_pairs(split)]
        src_ids = src_sp.encode([s for s, _ in pairs])
        tgt_ids = tgt_sp.encode([t for _, t in pairs])
        src_len = {s: len(ids) for (s, _), ids in zip(pairs, src_ids, strict=True)}
        tgt_len = {t: len(ids) for (_, t), ids in zip(pairs, tgt_ids, strict=True)}
        _, report = readers.clean_pairs(
            pairs,
            self.config.data.max_length,
            length=src_len.__getitem__,
            target_length=tgt_len.__getitem__,
            name=split,
        )
        _log(f"translation: {report}")
        self._write_report(split, report)
        chosen = report.kept_indices
        return [src_ids[i] for i in chosen], [tgt_ids[i] for i in chosen]

    def _write_report(self, split: str, report: readers.CleanReport) -> None:
        path = self.artifacts_dir / "data_report.json"
        if not self.artifacts_dir.is_dir():
            return
        content = json.loads(path.read_text()) if path.exists() else {}
        content[split] = {
            "total": report.total,
            "empty": report.empty,
            "too_long": report.too_long,
            "kept": report.kept,
        }
        path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")

    def _dataset(self, split: str, batch_size: int, shuffle: bool) -> tf.data.Dataset:
        src, tgt = self.encoded_split(split)
        if not src:
            raise ValueError(f"translation: no {split} pairs left after cleaning")

        def ragged(rows: list[list[int]]) -> tf.RaggedTensor:
            flat = np.fromiter((i for row in rows for i in row), np.int32)
            return tf.RaggedTensor.from_row_lengths(flat, [len(r) for r in rows])

        ds = tf.data.Dataset.from_tensor_slices((ragged(src), ragged(tgt)))

        def to_example(s, t):
            eos, bos = tf.constant([EOS_ID], tf.int32), tf.constant([BOS_ID], tf.int32)
            inputs = {"source": tf.concat([s, eos], 0), "target_in": tf.concat([bos, t], 0)}
            return inputs, tf.concat([t, eos], 0)

        def length(x, y):
            return tf.maximum(tf.shape(x["source"])[0], tf.shape(y)[0])

        ds = ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
        d = self.config.data
        if shuffle:  # examples and their buckets cached; each epoch shuffles and batches
            seed, buffer = self.config.seed, d.shuffle_buffer
            ds = pipeline.shuffle_and_bucket(
                ds, length, batch_size, seed, buffer, num_buckets=d.num_buckets
            )
        else:
            ds = pipeline.bucket_by_length(ds, length, batch_size, num_buckets=d.num_buckets)
        return pipeline.prefetch(ds)

    def datasets(self, global_batch_size: int):
        return (
            self._dataset("train", global_batch_size, shuffle=True),
            self._dataset("validation", global_batch_size, shuffle=False),
        )

    # -- model ------------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        m = self.config.model
        source, target = self.tokenizers()
        model = Seq2SeqAttention(
            source.vocab_size,
            target.vocab_size,
            embedding_dim=m.embedding_dim,
            encoder_units=m.encoder_units,
            encoder_layers=m.encoder_layers,
            decoder_units=m.decoder_units,
            decoder_layers=m.decoder_layers,
            attention=m.attention,
            attention_units=m.attention_units,
            input_feeding=m.input_feeding,
            dropout=m.dropout,
            tie_target_embedding=m.tie_target_embedding,
            name="seq2seq_attention",
        )
        model.build()
        return model

    def loss(self) -> Any:
        return SmoothedSequenceLoss(self.config.model.label_smoothing)

    def metrics(self) -> list[Any]:
        return [MaskedTokenAccuracy()]

    def custom_objects(self) -> dict[str, Any]:
        return {
            cls.__name__: cls
            for cls in (
                Seq2SeqAttention,
                AttentionDecoder,
                Attention,
                SmoothedSequenceLoss,
                MaskedTokenAccuracy,
            )
        }

    # -- decoding and evaluation ------------------------------------------------------------
    def decoders(self, model: keras.Model) -> dict[str, Any]:
        """Graph-compiled decoders {"greedy", "beam"}: padded source ids -> (ids, scores)."""
        m = self.config.model
        spec = [tf.TensorSpec([None, None], tf.int32)]
        greedy = tf.function(
            lambda s: greedy_decode(model, s, m.max_length_ratio, m.max_length_offset),
            input_signature=spec,
        )
        beam = tf.function(
            lambda s: beam_search(
                model, s, m.beam_size, m.length_penalty, m.max_length_ratio, m.max_length_offset
            ),
            input_signature=spec,
        )
        return {"greedy": greedy, "beam": beam}

    def translate_texts(self, model: keras.Model, texts: list[str], decoder) -> list[str]:
        """Translates raw strings with a compiled decoder, in length-sorted batches."""
        source_tok, target_tok = self.tokenizers()
        src_sp = self._processors()[0]
        lengths = [len(ids) for ids in src_sp.encode([t.strip() for t in texts])]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        outputs: list[str] = [""] * len(texts)
        size = self.config.model.eval_batch_size
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            batch = tf.constant([texts[i] for i in chunk])
            ids = source_tok.tokenize(tf.strings.strip(batch), add_eos=True).to_tensor()
            hyp_ids, _ = decoder(ids)
            for i, text in zip(chunk, target_tok.detokenize(hyp_ids).numpy(), strict=True):
                outputs[i] = text.decode("utf-8")
        return outputs

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        pairs = self.raw_pairs(split)
        sources = [s for s, _ in pairs]
        references = [t.strip() for _, t in pairs]
        eval_dir = self.run_dir / "eval"
        eval_dir.mkdir(parents=True, exist_ok=True)
        results: dict[str, float] = {"sentences": float(len(pairs))}
        signatures = {}
        for name, decoder in self.decoders(model).items():
            decoder.get_concrete_function()  # trace now: the speed below is decoding only
            started = time.time()
            hypotheses = self.translate_texts(model, sources, decoder)
            seconds = time.time() - started
            (eval_dir / f"{split}.{name}.txt").write_text(
                "".join(h + "\n" for h in hypotheses), encoding="utf-8"
            )
            bleu, chrf = corpus_bleu(hypotheses, references), corpus_chrf(hypotheses, references)
            exact = np.mean([h == r for h, r in zip(hypotheses, references, strict=True)])
            results.update(
                {
                    f"bleu_{name}": bleu.score,
                    f"chrf_{name}": chrf.score,
                    f"exact_match_{name}": float(exact),
                    f"sentences_per_second_{name}": len(pairs) / max(seconds, 1e-9),
                }
            )
            signatures[name] = {"bleu": bleu.signature, "chrf": chrf.signature}
            _log(f"translation {split} {name}: {bleu.details}; chrF {chrf.score:.2f}")
        (eval_dir / f"{split}.signatures.json").write_text(json.dumps(signatures, indent=2) + "\n")
        (eval_dir / f"{split}.references.txt").write_text(
            "".join(r + "\n" for r in references), encoding="utf-8"
        )
        return results

    # -- export -----------------------------------------------------------------------------
    def translator(self, model: keras.Model) -> Translator:
        """The exportable module (tokenizers + model + beam search) for `model`."""
        m = self.config.model
        source, target = self.tokenizers()
        return Translator(
            model,
            source,
            target,
            beam_size=m.beam_size,
            length_penalty=m.length_penalty,
            max_length_ratio=m.max_length_ratio,
            max_length_offset=m.max_length_offset,
        )

    def export(self, model: keras.Model, out_dir: Path) -> None:
        save_translator(self.translator(model), out_dir, sorted(set(self._spm_paths())))

    @classmethod
    def predict(cls, export_dir: Path, inputs: list[str]) -> list[str]:
        return translate(export_dir, inputs)


def _log(message: str) -> None:
    from shared.training.loop import log

    log(message)
