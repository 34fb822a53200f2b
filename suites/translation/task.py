"""The `translation` task: parallel text -> SentencePiece -> seq2seq -> BLEU/chrF -> export.

`prepare` trains the SentencePiece model(s) on the training split into `artifacts/` (joint over
both languages or one per side); `datasets` are the teacher-forcing batches of `data.py`;
`evaluate` decodes a split greedily and with beam search, detokenizes, and scores against the raw
references with sacreBLEU (BLEU, chrF) and exact match; `evaluate_files` does the same for any
pair of line-aligned files; the export is `serving.Translator`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import sentencepiece as spm

from shared.data.tokenizer import SentencePieceTokenizer, train_sentencepiece
from shared.errors import DataError, UsageError
from shared.log import get_logger
from shared.metrics.text import corpus_bleu, corpus_chrf
from shared.task import Demo, Evaluation, Task
from suites.translation import data
from suites.translation.config import DataConfig, ModelConfig
from suites.translation.decoding import compiled_decoders, translate_texts
from suites.translation.ensemble import Ensemble
from suites.translation.model import MaskedTokenAccuracy, Seq2SeqAttention, SmoothedSequenceLoss
from suites.translation.serving import Translator

log = get_logger(__name__)


def _demo_inputs(task: Task, scratch: Path) -> list[str]:
    return [source for source, _ in task.raw_pairs("test")[:3]]


class TranslationTask(Task):
    """Sentence translation with an attention LSTM encoder-decoder."""

    name: ClassVar[str] = "translation"
    DataConfig: ClassVar[type] = DataConfig
    ModelConfig: ClassVar[type] = ModelConfig
    demo: ClassVar[Demo] = Demo(
        "translation/demo.yaml", "bleu_beam", "test BLEU (beam)", _demo_inputs, order=1
    )

    def __init__(self, config: Any, run_dir: str | Path):
        super().__init__(config, run_dir)
        self.corpus = data.Corpus(config.data)

    def raw_pairs(self, split: str) -> list[data.Pair]:
        """The uncleaned (source, target) pairs of `split` ("train", "validation", "test")."""
        return self.corpus.pairs(split)

    # -- vocabularies -----------------------------------------------------------------------
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
        sources, targets = [s for s, _ in pairs], [t for _, t in pairs]
        if d.joint_vocab:
            train_sentencepiece(sources + targets, source_path, **options)
        else:
            train_sentencepiece(sources, source_path, **options)
            train_sentencepiece(targets, target_path, **options)
        log.info("SentencePiece trained in %.1fs -> %s", time.time() - started, source_path)

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

    # -- training data ----------------------------------------------------------------------
    def encoded_split(self, split: str) -> tuple[list[list[int]], list[list[int]]]:
        """Cleaned, subword-encoded pairs of `split` (no bos/eos); logs what was dropped."""
        source_sp, target_sp = self.processors()
        pairs = self.raw_pairs(split)
        src, tgt, report = data.encode_pairs(
            pairs, source_sp, target_sp, self.config.data.max_length, split
        )
        log.info("%s", report)
        self._write_report(split, report)
        return src, tgt

    def _write_report(self, split: str, report: data.CleanReport) -> None:
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

    def _dataset(self, split: str, batch_size: int, shuffle: bool):
        src, tgt = self.encoded_split(split)
        if not src:
            raise DataError(f"translation: no {split} pairs left after cleaning")
        d = self.config.data
        seed = self.config.seed if shuffle else None
        return data.make_dataset(src, tgt, batch_size, d.num_buckets, seed, d.shuffle_buffer)

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

    # -- evaluation -------------------------------------------------------------------------
    def processors(self) -> tuple[spm.SentencePieceProcessor, spm.SentencePieceProcessor]:
        """(source, target) Python SentencePiece processors of the run's models."""
        source, target = self.tokenizers()
        return (
            spm.SentencePieceProcessor(model_proto=source.model_proto),
            spm.SentencePieceProcessor(model_proto=target.model_proto),
        )

    def translate(self, model: keras.Model, texts: list[str], decoder: str = "beam") -> list[str]:
        """Translates raw strings with the checkpoint's "greedy" or "beam" decoder."""
        decode = compiled_decoders(model, self.config.model)[decoder]
        return translate_texts(texts, decode, *self.processors(), self.config.model.eval_batch_size)

    def evaluate(self, model: keras.Model, split: str) -> Evaluation:
        return self._evaluate_pairs(model, self.raw_pairs(split))

    def evaluate_files(self, model: keras.Model, src_path: str | Path, ref_path: str | Path):
        """Scores `model` on any two line-aligned files (sources, references) like a split."""
        return self._evaluate_pairs(model, data.read_parallel_files(src_path, ref_path))

    def _evaluate_pairs(self, model: keras.Model, pairs: list[data.Pair]) -> Evaluation:
        if not pairs:
            raise DataError("nothing to evaluate: no sentence pairs")
        sources = [s for s, _ in pairs]
        references = [t.strip() for _, t in pairs]
        source_sp, target_sp = self.processors()
        result = Evaluation(
            metrics={"sentences": len(pairs)},
            ids=[str(i) for i in range(1, len(pairs) + 1)],
            references=references,
            columns={"source": [s.strip() for s in sources]},
        )
        for name, decoder in compiled_decoders(model, self.config.model).items():
            decoder.get_concrete_function()  # trace now: the speed below is decoding only
            started = time.time()
            hypotheses = translate_texts(
                sources, decoder, source_sp, target_sp, self.config.model.eval_batch_size
            )
            seconds = time.time() - started
            result.hypotheses[name] = hypotheses
            result.metrics.update(_scores(name, hypotheses, references, seconds, result.details))
        return result

    def combine(self, model: keras.Model, others: list[tuple[Task, keras.Model]]) -> Ensemble:
        """This run's model and other runs' as one decoder (`Ensemble`: mean probabilities).

        Raises:
            UsageError: another run's SentencePiece models differ from this run's.
        """
        protos = [t.model_proto for t in self.tokenizers()]
        for task, _ in others:
            if [t.model_proto for t in task.tokenizers()] != protos:
                raise UsageError(
                    f"--with-run {task.run_dir}: its SentencePiece models differ from "
                    f"{self.run_dir}'s; ensembled runs must share them (train the second run "
                    "from a copy of the first run's artifacts/)"
                )
        return Ensemble([model, *(other for _, other in others)])

    # -- export -----------------------------------------------------------------------------
    def serving_module(self, model: keras.Model) -> Translator:
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

    @classmethod
    def format_outputs(cls, inputs, outputs, export) -> list[str]:
        return [t.decode("utf-8") for t in outputs["translation"]]


def _scores(
    decoder: str, hypotheses: list[str], references: list[str], seconds: float, details: dict
) -> dict[str, float]:
    """BLEU, chrF, exact match and speed of one decoder; sacreBLEU's signatures into `details`."""
    bleu, chrf = corpus_bleu(hypotheses, references), corpus_chrf(hypotheses, references)
    exact = np.mean([h == r for h, r in zip(hypotheses, references, strict=True)])
    details[decoder] = {
        "bleu_signature": bleu.signature,
        "bleu": bleu.details,
        "chrf_signature": chrf.signature,
    }
    log.info("%s: %s; chrF %.2f", decoder, bleu.details, chrf.score)
    return {
        f"bleu_{decoder}": bleu.score,
        f"chrf_{decoder}": chrf.score,
        f"exact_match_{decoder}": float(exact),
        f"sentences_per_second_{decoder}": len(hypotheses) / max(seconds, 1e-9),
    }
