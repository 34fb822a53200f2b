"""The `speech` task: character CTC recognition with a Bidirectional(PeepholeLSTM) stack."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import keras
import numpy as np

from shared.errors import DataError, InputError, UsageError
from shared.serving import Prediction
from shared.task import Demo, Evaluation, Task
from suites.speech import data, transcribe
from suites.speech.config import DataConfig, ModelConfig
from suites.speech.features import FeatureStats
from suites.speech.model import build_model
from suites.speech.serving import SAMPLE_RATE_ASSET, SpeechServer, pad_batch
from suites.speech.text import CharVocab

PYTHON_DECODERS = ("lm", "word_lm")  # decoders that run in Python, outside the export


def _demo_inputs(task: Task, scratch: Path) -> list[str]:
    """Two words in voices and a pitch the tiny config never trained on, as WAV files."""
    import soundfile

    from suites.speech.synth import speak

    paths = []
    for word, voice in (("yes", "en+m2"), ("down", "en+f4")):
        wave, rate = speak(word, voice=voice, rate=160, pitch=45)
        path = scratch / f"{word}_{voice.replace('+', '_')}.wav"
        soundfile.write(path, wave, rate)
        paths.append(str(path))
    return paths


class SpeechTask(Task):
    """Speech -> characters: log-mel frames, a BiLSTM stack and CTC; four decoders."""

    name: ClassVar[str] = "speech"
    DataConfig: ClassVar[type] = DataConfig
    ModelConfig: ClassVar[type] = ModelConfig
    demo: ClassVar[Demo] = Demo("speech/tiny.yaml", "cer_greedy", "test CER (greedy)",
                                _demo_inputs, order=2)  # fmt: skip

    def __init__(self, config, run_dir):
        super().__init__(config, run_dir)
        self.vocab = CharVocab(config.data.alphabet)
        cache = config.data.cache_dir
        # Absolute: cache keys hash audio paths, which must not depend on the working directory.
        self.cache_dir = (Path(cache) if cache else self.run_dir / "cache").absolute()
        self.caches: dict[str, tuple[Path, dict]] = {}

    def prepare(self) -> None:
        from suites.speech.cache import prepare_caches

        self.caches = prepare_caches(
            self.config, self.cache_dir, self.artifacts_dir, self.config.model.stride
        )
        if self.config.model.word_lm:
            transcribe.build_word_lm(self.artifacts_dir)

    def split(self, split: str) -> tuple[Path, dict]:
        """(cache path, metadata) of a prepared split; DataError naming the keys if it is empty."""
        if not self.caches:
            self.prepare()
        if split not in self.caches:
            raise DataError(
                f"split {split!r} is empty (have {sorted(self.caches)}); hold data out with "
                f"data.{split}_speakers or data.{split}_fraction"
            )
        return self.caches[split]

    def datasets(self, global_batch_size: int):
        cfg, stride = self.config.data, self.config.model.stride
        train = data.batches(*self.split("train"), cfg, global_batch_size, stride, self.config.seed)
        if "validation" not in self.caches:
            return train, None
        return train, data.batches(*self.caches["validation"], cfg, global_batch_size, stride)

    def build_model(self) -> keras.Model:
        stats = FeatureStats.load(self.artifacts_dir / "feature_stats.json")
        return build_model(
            self.config.model, self.config.data.features, self.vocab.num_classes,
            mean=stats.mean, variance=[s * s for s in stats.std], seed=self.config.seed,
        )  # fmt: skip

    def evaluate(self, model: keras.Model, split: str) -> Evaluation:
        path, meta = self.split(split)
        m = self.config.model
        ids, refs, hyps, log_probs = transcribe.transcribe(model, path, self.config)
        for decoder in [name for name, on in (("lm", m.lm_order), ("word_lm", m.word_lm)) if on]:
            hyps[decoder] = transcribe.python_decode(
                log_probs, decoder, self.config, self.artifacts_dir
            )
        speaker_of = dict(zip(meta["ids"], meta["speakers"], strict=True))
        return transcribe.score(ids, refs, hyps, speaker_of)

    def decode_inputs(self, model: keras.Model, inputs: list[str], decoder: str) -> Prediction:
        """Audio files -> "path<TAB>transcript" lines with the `lm` or `word_lm` decoder.

        Silent or empty audio answers "", as the export does; unreadable files are reported.
        """
        from shared.serving import parse_all

        m, rate = self.config.model, self.config.data.features.sample_rate
        if decoder not in PYTHON_DECODERS:
            raise UsageError(
                f"--decoder {decoder}: speech decodes with lm or word_lm outside the export "
                "(greedy, beam and lexicon are in the export: predict without --decoder)"
            )
        if decoder == "lm" and not m.lm_order:
            raise UsageError("--decoder lm needs a character LM: --set model.lm_order=N (e.g. 7)")
        waves, kept, errors = parse_all(lambda path: _read_audio(path, rate), inputs)
        threshold = self.config.data.silence_threshold
        heard = [i for i, w in enumerate(waves) if w.size and np.abs(w).max() > threshold]
        log_probs = transcribe.waveform_log_probs(model, [waves[i] for i in heard], self.config)
        texts = [""] * len(waves)
        decoded = transcribe.python_decode(log_probs, decoder, self.config, self.artifacts_dir)
        for i, text in zip(heard, decoded, strict=True):
            texts[i] = text
        return Prediction([f"{p}\t{t}" for p, t in zip(kept, texts, strict=True)], errors)

    def serving_module(self, model: keras.Model) -> SpeechServer:
        m = self.config.model
        lexicon = [self.vocab.normalize(w) for w in m.lexicon] if m.export_lexicon else None
        return SpeechServer(
            model, self.config.data.features, self.vocab.alphabet, m.export_beam_width, lexicon,
            transcribe.warp_search(self.config), self.config.data.silence_threshold,
        )  # fmt: skip

    @classmethod
    def parse_input(cls, text: str, export):
        """An audio file -> its mono waveform at the export's rate (InputError if unusable)."""
        return _read_audio(text, _rate(export))

    @classmethod
    def request(cls, items, export) -> dict:
        import tensorflow as tf

        batch, lengths = pad_batch(items)
        return {"waveform": tf.constant(batch), "waveform_length": tf.constant(lengths)}

    @classmethod
    def format_outputs(cls, inputs, outputs, export) -> list[str]:
        return [f"{p}\t{t.decode('utf-8')}" for p, t in zip(inputs, outputs["transcript"],
                                                             strict=True)]  # fmt: skip

    @classmethod
    def item_seconds(cls, item, export) -> float:
        return len(item) / _rate(export)


def _read_audio(path: str, rate: int):
    """An audio file -> its mono waveform at `rate`; empty or silent is fine (it answers "")."""
    from suites.speech.audio import AudioError, load_audio

    try:
        return load_audio(path, rate, min_samples=0, silence_threshold=-1.0)
    except AudioError as err:
        raise InputError(err.reason) from err


def _rate(export) -> int:
    return int(export.asset(SAMPLE_RATE_ASSET).strip())
