"""From a DataConfig to utterance splits, feature caches and batched tf.data pipelines."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tensorflow as tf

from shared.data.pipeline import bucket_by_length, prefetch, shuffle
from suites.speech import readers
from suites.speech.cache import read_cache
from suites.speech.extra import extra_utterances
from suites.speech.features import FeatureConfig
from suites.speech.readers import Screen, Utterance
from suites.speech.text import DEFAULT_ALPHABET, CharVocab

log = logging.getLogger(__name__)

Source = Literal["synthetic", "manifest", "fsdd", "speechocean762", "librispeech", "tfds"]


@dataclass
class DataConfig:
    """Where the speech comes from, how it is split, screened, featurised and batched."""

    source: Source = "synthetic"  # corpus reader; synthetic = espeak-ng speech of synth_texts
    data_dir: str | None = None  # corpus root (fsdd, speechocean762, librispeech, tfds data_dir)
    # or the manifest TSV (or its folder holding manifest.tsv) for source: manifest
    tfds_name: str = "librispeech"  # TFDS dataset name (source: tfds; never downloads)
    tfds_splits: list[str] = field(  # TFDS splits used as train, validation, test
        default_factory=lambda: ["train_clean100", "dev_clean", "test_clean"]
    )
    # synthetic: the texts espeak-ng speaks (each in every voice, speed and pitch)
    synth_texts: list[str] = field(default_factory=lambda: ["yes", "no", "up", "down"])
    synth_voices: list[str] = field(  # espeak-ng voices (language+variant) of synthetic speech
        default_factory=lambda: ["en-us", "en+m3", "en+f3", "en+m1", "en+f2"]
    )
    synth_rates: list[int] = field(default_factory=lambda: [130, 170, 210])  # words per minute
    synth_pitches: list[int] = field(default_factory=lambda: [35, 50, 65])  # 0-100
    synth_augment: bool = False  # add espeak-ng speech of the training transcripts to train
    synth_styles_per_text: int = 0  # > 0: each text in this many styles (round robin); 0: all
    extra_train: list[str] = field(default_factory=list)  # more real speech for training only:
    # "<format>:<path>" (manifest/fsdd/speechocean762/librispeech; relative to data_dir)
    extra_train_words: list[str] = field(default_factory=list)  # keep only extra utterances made
    # of these words (empty: all), e.g. the digit words for FSDD
    speed_perturb: list[float] = field(default_factory=list)  # extra training copies at these
    # speeds, e.g. [0.9, 1.1] (resampling: tempo and pitch change together, as in Kaldi)
    pitch_perturb: list[float] = field(default_factory=list)  # extra training copies of the main
    # corpus' training clips (not espeak-ng, not extra_train) shifted by these semitones, tempo
    # kept, e.g. [-3, 3] (F0 and formants scale together; covers voices pitched above/below the
    # training speakers)
    noise_pad: list[float] = field(default_factory=list)  # extra training copies of the main
    # corpus' clips padded before and after with 0.1-0.5 s of Gaussian noise at these RMS levels
    # (dBFS), e.g. [-50]: robustness to untrimmed recordings whose noise floor trim_db leaves
    alphabet: str = DEFAULT_ALPHABET  # output characters (transcripts are lower-cased)
    bad_input: Literal["error", "skip"] = "error"  # bad audio/transcripts: raise or skip+report
    min_seconds: float = 0.05  # shorter clips count as bad input
    silence_threshold: float = 1e-4  # clips with peak |amplitude| <= this count as silent
    test_speakers: list[str] = field(default_factory=list)  # held out wholly as the test split;
    # ["*"] = every speaker (an evaluation-only corpus, e.g. a blind test set via --data-dir)
    validation_speakers: list[str] = field(default_factory=list)  # held out as validation
    validation_fraction: float = 0.1  # random fraction for validation when no speakers listed
    test_fraction: float = 0.0  # random fraction for test when no test speakers listed
    num_buckets: int = 6  # length buckets for batching (quantiles of training lengths)
    shuffle_buffer: int = 4096  # training shuffle buffer (utterances)
    cache_dir: str | None = None  # feature caches; None = <run_dir>/cache
    features: FeatureConfig = field(default_factory=FeatureConfig)  # acoustic features

    def __post_init__(self):
        if any(not 0.5 <= s <= 2.0 or s == 1.0 for s in self.speed_perturb):
            raise ValueError(f"data.speed_perturb: speeds must be in [0.5, 2] and not 1, got "
                             f"{self.speed_perturb}")  # fmt: skip
        if any(not -12.0 <= p <= 12.0 or p == 0.0 for p in self.pitch_perturb):
            raise ValueError(f"data.pitch_perturb: semitones must be in [-12, 12] and not 0, got "
                             f"{self.pitch_perturb}")  # fmt: skip
        if any(not -100.0 <= db <= -10.0 for db in self.noise_pad):
            raise ValueError(f"data.noise_pad: levels must be in [-100, -10] dBFS, got "
                             f"{self.noise_pad}")  # fmt: skip
        for key in ("validation_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"data.{key} must be in [0, 1), got {getattr(self, key)}")
        if self.source in ("manifest", "fsdd", "speechocean762", "librispeech") and not (
            self.data_dir
        ):
            raise ValueError(f"data.data_dir is required for data.source {self.source!r}")
        if self.synth_styles_per_text < 0:
            raise ValueError(
                f"data.synth_styles_per_text must be >= 0, got {self.synth_styles_per_text}"
            )
        if self.source == "tfds" and len(self.tfds_splits) != 3:
            raise ValueError("data.tfds_splits must list 3 splits: train, validation, test")
        CharVocab(self.alphabet)  # validates the alphabet


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def synthetic_utterances(texts: list[str], cfg: DataConfig, cache_dir: Path) -> list[Utterance]:
    """espeak-ng speech of `texts` in every configured style (speaker = style name)."""
    from suites.speech.synth import synthesize_corpus

    spec = [texts, cfg.synth_voices, cfg.synth_rates, cfg.synth_pitches, cfg.features.sample_rate]
    if cfg.synth_styles_per_text:  # (appended only when set: older caches keep their keys)
        spec.append(cfg.synth_styles_per_text)
    out = cache_dir / f"synthetic-{_digest(spec)}"
    manifest = synthesize_corpus(
        texts, out, cfg.features.sample_rate, cfg.synth_voices, cfg.synth_rates,
        cfg.synth_pitches, styles_per_text=cfg.synth_styles_per_text,
    )  # fmt: skip
    return readers.read_manifest(manifest)


def read_source(cfg: DataConfig, cache_dir: Path, screen: Screen) -> dict[str, list[Utterance]]:
    """Reads the configured corpus; returns the pre-split TFDS splits or {"all": utterances}."""
    if cfg.source == "tfds":
        names = ("train", "validation", "test")
        return {
            n: readers.read_tfds(cfg.tfds_name, s, cfg.data_dir)
            for n, s in zip(names, cfg.tfds_splits, strict=True)
        }
    if cfg.source == "synthetic":
        return {"all": synthetic_utterances(cfg.synth_texts, cfg, cache_dir)}
    root = Path(cfg.data_dir)
    if cfg.source == "manifest":
        return {"all": readers.read_manifest(root / "manifest.tsv" if root.is_dir() else root)}
    if cfg.source == "fsdd":
        return {"all": readers.read_fsdd(root)}
    if cfg.source == "speechocean762":
        return {"all": readers.read_speechocean762(root, screen)}
    return {"all": readers.read_librispeech(root)}


def make_splits(cfg: DataConfig, seed: int, cache_dir: Path, screen: Screen):
    """Reads, screens transcripts and splits; returns {"train", "validation", "test"} lists."""
    vocab = CharVocab(cfg.alphabet)
    raw = read_source(cfg, cache_dir, screen)
    raw = {k: readers.screen_transcripts(v, vocab, screen) for k, v in raw.items()}
    if "all" in raw:
        splits = readers.split_utterances(
            raw["all"], seed, cfg.test_speakers, cfg.validation_speakers,
            cfg.validation_fraction, cfg.test_fraction,
        )  # fmt: skip
    else:
        splits = raw
    if cfg.synth_augment and splits["train"]:
        texts = sorted({u.transcript for u in splits["train"]})
        extra = synthetic_utterances(texts, cfg, cache_dir)
        for u in extra:
            u.speaker = f"synth:{u.speaker}"
        splits["train"] = splits["train"] + readers.screen_transcripts(extra, vocab, screen)
    if cfg.extra_train and splits["train"]:
        extra, _ = extra_utterances(
            cfg.extra_train, cfg.data_dir, cfg.extra_train_words, vocab, screen
        )
        splits["train"] = splits["train"] + extra
    copies = [
        dataclasses.replace(u, id=f"{u.id}@speed{speed:g}", speed=speed)
        for speed in cfg.speed_perturb
        for u in splits["train"]
    ]
    # Pitch and noise copies of the main corpus' clips only: the espeak-ng styles already span
    # pitches, and an extra corpus brings its own voices (copies would multiply the epoch cost).
    main = [u for u in splits["train"] if not u.speaker.startswith(("synth:", "extra:"))]
    copies += [
        dataclasses.replace(u, id=f"{u.id}@pitch{semitones:+g}", pitch=semitones)
        for semitones in cfg.pitch_perturb
        for u in main
    ]
    copies += [
        dataclasses.replace(u, id=f"{u.id}@noise{db:g}", noise_pad_db=float(db))
        for db in cfg.noise_pad
        for u in main
    ]
    splits["train"] = splits["train"] + copies
    return splits


def ctc_feasible(num_frames: int, text: str, stride: int) -> bool:
    """Whether CTC can align `text` to `ceil(num_frames / stride)` outputs (repeats need blanks)."""
    repeats = sum(a == b for a, b in zip(text, text[1:], strict=False))
    return -(-num_frames // stride) >= len(text) + repeats


def to_examples(ds: tf.data.Dataset, vocab: CharVocab) -> tf.data.Dataset:
    """Cache records -> `({"features", "feature_lengths"}, labels)` with label ids."""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(vocab.alphabet)), tf.range(len(vocab.alphabet), dtype=tf.int32)
        ),
        default_value=-1,
    )

    def convert(ex):
        labels = table.lookup(tf.strings.unicode_split(ex["transcript"], "UTF-8"))
        inputs = {"features": ex["features"], "feature_lengths": tf.shape(ex["features"])[0]}
        return inputs, labels

    return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def batches(
    path: Path,
    meta: dict,
    cfg: DataConfig,
    batch_size: int,
    stride: int,
    seed: int | None = None,
) -> tf.data.Dataset:
    """A batched dataset of one cached split; shuffled when `seed` is given (training)."""
    vocab = CharVocab(cfg.alphabet)
    keep = np.array(
        [
            ctc_feasible(f, t, stride)
            for f, t in zip(meta["frames"], meta["transcripts"], strict=True)
        ],
        dtype=bool,
    )
    ds = read_cache(path, cfg.features.dim)
    if not keep.all():
        mask = tf.constant(keep)
        ds = ds.enumerate().filter(lambda i, _: mask[i]).map(lambda _, ex: ex)
    ds = to_examples(ds, vocab).cache()
    if seed is not None:
        ds = shuffle(ds, seed, cfg.shuffle_buffer)
    frames = np.asarray(meta["frames"])[keep]
    qs = np.quantile(frames, np.linspace(0, 1, cfg.num_buckets + 1)[1:-1]) if frames.size else []
    boundaries = sorted({int(q) for q in qs if frames.min() < q <= frames.max()})
    ds = bucket_by_length(
        ds, lambda inputs, _: inputs["feature_lengths"], batch_size, boundaries,
        padded_shapes=({"features": [None, cfg.features.dim], "feature_lengths": []}, [None]),
        padding_values=({"features": 0.0, "feature_lengths": 0}, -1),
    )  # fmt: skip
    return prefetch(ds)
