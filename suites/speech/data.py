"""Speech corpora -> utterance splits -> feature caches -> batched tf.data pipelines.

Readers turn a corpus layout into `Utterance` lists. Structural problems (a missing corpus
folder, a manifest row with the wrong number of fields, an unparsable file name) raise
`DataError` naming the file, line and config key. Per-utterance problems (missing audio, empty
transcript, characters outside the alphabet, a transcript without audio or the reverse) are
collected by `Screen`: with `data.bad_input: error` they raise one `DataError` listing them,
with `skip` they are dropped and listed in the run's `artifacts/skipped.tsv`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tensorflow as tf

from shared.data import pipeline
from shared.errors import DataError
from shared.log import get_logger
from suites.speech.text import CharVocab

log = get_logger(__name__)

SPLITS = ("train", "validation", "test")
FSDD_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")


@dataclass
class Utterance:
    """One utterance: audio from `path` (or in-memory `audio` at `audio_rate`) + transcript."""

    id: str
    transcript: str
    speaker: str = ""
    path: str | None = None
    audio: np.ndarray | None = field(default=None, repr=False)
    audio_rate: int | None = None
    speed: float = 1.0  # speed perturbation applied when the audio is loaded (training copies)
    pitch: float = 0.0  # pitch shift in semitones applied when the audio is loaded (tempo kept)

    @property
    def source(self) -> str:
        """Where the audio comes from, for messages."""
        return self.path or f"<memory:{self.id}>"


@dataclass
class Screen:
    """Collects per-utterance problems and applies the bad-input policy once at the end."""

    policy: Literal["error", "skip"] = "error"
    problems: list[tuple[str, str]] = field(default_factory=list)  # (source, reason)

    def add(self, source: str, reason: str) -> None:
        self.problems.append((source, reason))

    def finish(self, what: str) -> None:
        """Raises DataError (policy "error") or logs a summary (policy "skip") of the problems."""
        if not self.problems:
            return
        counts = Counter(reason.split(":")[0] for _, reason in self.problems)
        summary = ", ".join(f"{n} {r}" for r, n in counts.most_common())
        listing = "\n".join(f"  {s}: {r}" for s, r in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        msg = f"{what}: {len(self.problems)} bad utterances ({summary})\n{listing}{more}"
        if self.policy == "error":
            raise DataError(msg + "\n(set data.bad_input: skip to drop them instead)")
        log.warning("skipping %s", msg)

    def write(self, path: str | Path) -> None:
        """Writes `source<TAB>reason` rows (the documented skip list) to `path`."""
        Path(path).write_text("".join(f"{s}\t{r}\n" for s, r in self.problems))


# -- readers ----------------------------------------------------------------------------------
def screen_transcripts(utts: Iterable[Utterance], vocab: CharVocab, screen: Screen):
    """Normalises transcripts; keeps utterances with a non-empty in-alphabet transcript."""
    kept = []
    for utt in utts:
        text = vocab.normalize(utt.transcript)
        bad = vocab.unknown_chars(text)
        if not text:
            screen.add(utt.source, "empty transcript")
        elif bad:
            screen.add(utt.source, f"characters outside the alphabet: {bad!r} in {text!r}")
        elif utt.path is not None and not Path(utt.path).is_file():
            screen.add(utt.source, "missing audio file")
        else:
            utt.transcript = text
            kept.append(utt)
    return kept


def read_manifest(path: str | Path) -> list[Utterance]:
    """Reads `path<TAB>transcript[<TAB>speaker]` rows (audio paths relative to the manifest).

    An optional header row starting with `path` is skipped; blank lines are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found (data.data_dir)")
    utts = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or (lineno == 1 and line.split("\t")[0] == "path"):
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            raise DataError(
                f"{path}:{lineno}: expected 2 or 3 tab-separated fields "
                f"(path, transcript[, speaker]), got {len(fields)}"
            )
        if not fields[0]:
            raise DataError(f"{path}:{lineno}: empty audio path")
        speaker = fields[2] if len(fields) == 3 else ""
        audio = str(path.parent / fields[0])
        utts.append(Utterance(Path(fields[0]).stem, fields[1], speaker, audio))
    return utts


def read_fsdd(root: str | Path) -> list[Utterance]:
    """FSDD: `recordings/<digit>_<speaker>_<index>.wav`; transcript = the digit's English word."""
    rec = Path(root) / "recordings"
    if not rec.is_dir():
        raise DataError(f"{rec}: FSDD recordings folder not found (data.data_dir)")
    utts = []
    for wav in sorted(rec.glob("*.wav")):
        m = _FSDD_NAME.match(wav.stem)
        if not m:
            raise DataError(f"{wav}: FSDD file name must be <digit>_<speaker>_<index>.wav")
        utts.append(Utterance(wav.stem, FSDD_WORDS[int(m.group(1))], m.group(2), str(wav)))
    if not utts:
        raise DataError(f"{rec}: no .wav files (data.data_dir)")
    return utts


def _kaldi_map(path: Path) -> dict[str, str]:
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(None, 1)
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno}: expected '<utt_id> <value>'")
        out[parts[0].strip()] = parts[1].strip()
    return out


def read_speechocean762(root: str | Path, screen: Screen) -> list[Utterance]:
    """speechocean762 in Kaldi style: `train/text`, `train/wav.scp`, `train/utt2spk`.

    Utterances with a transcript but no audio entry (or the reverse) are reported to `screen`.
    """
    root = Path(root)
    kdir = root / "train"
    for name in ("text", "wav.scp", "utt2spk"):
        if not (kdir / name).is_file():
            raise DataError(f"{kdir / name}: speechocean762 file not found (data.data_dir)")
    texts, wavs, spk = (_kaldi_map(kdir / n) for n in ("text", "wav.scp", "utt2spk"))
    for utt_id in sorted(set(wavs) - set(texts)):
        screen.add(str(root / wavs[utt_id]), "audio without transcript in train/text")
    utts = []
    for utt_id, text in texts.items():
        if utt_id not in wavs:
            screen.add(f"{kdir / 'text'}:{utt_id}", "transcript without audio in train/wav.scp")
            continue
        utts.append(Utterance(utt_id, text, spk.get(utt_id, ""), str(root / wavs[utt_id])))
    return utts


def read_librispeech(root: str | Path) -> list[Utterance]:
    """LibriSpeech layout: `<speaker>/<chapter>/<speaker>-<chapter>.trans.txt` + `<utt>.flac`."""
    root = Path(root)
    utts = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(" ", 1)
            if len(parts) != 2:
                raise DataError(f"{trans}:{lineno}: expected '<utt_id> <TRANSCRIPT>'")
            utt_id, text = parts
            speaker = utt_id.split("-")[0]
            utts.append(Utterance(utt_id, text, speaker, str(trans.parent / f"{utt_id}.flac")))
    if not utts:
        raise DataError(f"{root}: no *.trans.txt files (data.data_dir)")
    return utts


def read_tfds(name: str, split: str, data_dir: str | None = None) -> list[Utterance]:
    """A TFDS speech dataset with `speech`, `text` and `speaker_id` features (e.g. librispeech).

    Never downloads (`download=False`); audio stays in memory as float32.
    """
    import tensorflow_datasets as tfds

    ds, info = tfds.load(name, split=split, data_dir=data_dir, download=False, with_info=True)
    rate = int(info.features["speech"].sample_rate)
    utts = []
    for i, ex in enumerate(tfds.as_numpy(ds)):
        audio = np.asarray(ex["speech"])
        scale = 32768.0 if np.issubdtype(audio.dtype, np.integer) else 1.0
        utt_id = ex["id"].decode() if "id" in ex else f"{name}-{split}-{i}"
        speaker = str(ex.get("speaker_id", ""))
        text = ex["text"].decode("utf-8")
        utts.append(Utterance(utt_id, text, speaker, None, audio.astype(np.float32) / scale, rate))
    return utts


def synthetic_utterances(texts: list[str], cfg, cache_dir: Path) -> list[Utterance]:
    """Synthetic speech of `texts` in the configured styles (speaker = style name).

    Plain `synth_voices` are espeak-ng voices styled by `synth_rates` x `synth_pitches`;
    `engine:voice` voices go through `engines.speak`, styled by `synth_speeds` x `synth_semitones`.

    Raises:
        DataError: an `engine:voice` names an engine that is not installed.
    """
    if cfg.synth_engines:
        return read_manifest(_engine_corpus(texts, cfg, cache_dir))
    from suites.speech.synth import synthesize_corpus

    spec = [texts, cfg.synth_voices, cfg.synth_rates, cfg.synth_pitches, cfg.features.sample_rate,
            cfg.synth_styles_per_text]  # fmt: skip
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    manifest = synthesize_corpus(
        texts, cache_dir / f"synthetic-{digest}", cfg.features.sample_rate, cfg.synth_voices,
        cfg.synth_rates, cfg.synth_pitches, styles_per_text=cfg.synth_styles_per_text,
    )  # fmt: skip
    return read_manifest(manifest)


def _engine_corpus(texts: list[str], cfg, cache_dir: Path) -> Path:
    from suites.speech.engines import available_engines, parse_voice
    from suites.speech.synth import synthesize_engine_corpus

    for voice in cfg.synth_voices:
        reason = available_engines()[parse_voice(voice)[0]]
        if reason is not None:
            raise DataError(f"data.synth_voices: {voice!r} cannot be spoken: {reason}")
    spec = ["engines", texts, cfg.synth_voices, cfg.synth_speeds, cfg.synth_semitones,
            cfg.features.sample_rate, cfg.synth_styles_per_text]  # fmt: skip
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return synthesize_engine_corpus(
        texts, cache_dir / f"synthetic-{digest}", cfg.features.sample_rate, cfg.synth_voices,
        cfg.synth_speeds, cfg.synth_semitones, styles_per_text=cfg.synth_styles_per_text,
    )  # fmt: skip


def read_source(cfg, cache_dir: Path, screen: Screen) -> dict[str, list[Utterance]]:
    """Reads the configured corpus; returns the pre-split TFDS splits or {"all": utterances}."""
    if cfg.source == "tfds":
        return {n: read_tfds(cfg.tfds_name, s, cfg.data_dir)
                for n, s in zip(SPLITS, cfg.tfds_splits, strict=True)}  # fmt: skip
    if cfg.source == "synthetic":
        return {"all": synthetic_utterances(cfg.synth_texts, cfg, cache_dir)}
    root = Path(cfg.data_dir)
    if cfg.source == "manifest":
        return {"all": read_manifest(root / "manifest.tsv" if root.is_dir() else root)}
    if cfg.source == "fsdd":
        return {"all": read_fsdd(root)}
    if cfg.source == "speechocean762":
        return {"all": read_speechocean762(root, screen)}
    return {"all": read_librispeech(root)}


# -- splits -----------------------------------------------------------------------------------
def split_utterances(
    utts: Sequence[Utterance],
    seed: int,
    test_speakers: Sequence[str] = (),
    validation_speakers: Sequence[str] = (),
    validation_fraction: float = 0.0,
    test_fraction: float = 0.0,
) -> dict[str, list[Utterance]]:
    """Splits into train/validation/test.

    Listed speakers go wholly to their split (speaker-disjoint); a split without listed speakers
    gets a seeded random `*_fraction` of all utterances, drawn from the unlisted speakers.
    `test_speakers: ["*"]` puts every speaker not held out for validation into test (for an
    evaluation-only corpus). Unknown speaker names raise DataError naming the config key; an
    empty train split is allowed here (a trained run may evaluate on another corpus).
    """
    by_spk: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        by_spk[u.speaker].append(u)
    if list(test_speakers) == ["*"]:  # evaluation-only corpus: everything is test
        test_speakers = sorted(set(by_spk) - set(validation_speakers))
    for key, names in (("test_speakers", test_speakers),
                       ("validation_speakers", validation_speakers)):  # fmt: skip
        unknown = sorted(set(names) - set(by_spk))
        if unknown:
            known = ", ".join(sorted(by_spk)[:20])
            raise DataError(f"data.{key}: unknown speakers {unknown} (known: {known})")
    both = set(test_speakers) & set(validation_speakers)
    if both:
        raise DataError(f"data.test_speakers and data.validation_speakers overlap: {sorted(both)}")
    held = set(test_speakers) | set(validation_speakers)
    out = {
        "test": [u for s in test_speakers for u in by_spk[s]],
        "validation": [u for s in validation_speakers for u in by_spk[s]],
    }
    rest = [u for u in utts if u.speaker not in held]
    random.Random(seed).shuffle(rest)
    for split, frac, speakers in (
        ("test", test_fraction, test_speakers),
        ("validation", validation_fraction, validation_speakers),
    ):
        if not speakers and frac > 0:  # a fraction of all utterances, drawn from the rest
            n = min(len(rest), max(1, round(frac * len(utts))))
            out[split], rest = rest[:n], rest[n:]
    out["train"] = sorted(rest, key=lambda u: u.id)
    return out


def make_splits(cfg, seed: int, cache_dir: Path, screen: Screen) -> dict[str, list[Utterance]]:
    """Reads, screens and splits the corpus, then adds the training copies the config asks for.

    espeak-ng speech of the training transcripts (`synth_augment`, speaker `synth:<style>`),
    speed-perturbed copies of every training clip and pitch-shifted copies of the main
    corpus' training clips (the espeak-ng styles already span pitches).
    """
    vocab = CharVocab(cfg.alphabet)
    raw = read_source(cfg, cache_dir, screen)
    raw = {k: screen_transcripts(v, vocab, screen) for k, v in raw.items()}
    if "all" in raw:
        splits = split_utterances(
            raw["all"], seed, cfg.test_speakers, cfg.validation_speakers,
            cfg.validation_fraction, cfg.test_fraction,
        )  # fmt: skip
    else:
        splits = raw
    train = splits["train"]
    if cfg.synth_augment and train:
        extra = synthetic_utterances(sorted({u.transcript for u in train}), cfg, cache_dir)
        for u in extra:
            u.speaker = f"synth:{u.speaker}"
        train = train + screen_transcripts(extra, vocab, screen)
    main = [u for u in train if not u.speaker.startswith("synth:")]
    splits["train"] = (
        train
        + [dataclasses.replace(u, id=f"{u.id}@speed{s:g}", speed=s)
           for s in cfg.speed_perturb for u in train]
        + [dataclasses.replace(u, id=f"{u.id}@pitch{p:+g}", pitch=p)
           for p in cfg.pitch_perturb for u in main]
    )  # fmt: skip
    return splits


# -- tf.data ----------------------------------------------------------------------------------
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
    path: Path, meta: dict, cfg, batch_size: int, stride: int, seed: int | None = None
) -> tf.data.Dataset:
    """A batched dataset of one cached split; shuffled when `seed` is given (training).

    Utterances too short for their transcript under CTC are left out; batches come from
    `data.num_buckets` length buckets (quantiles of the split's frame counts).
    """
    from suites.speech.cache import read_cache

    pairs = zip(meta["frames"], meta["transcripts"], strict=True)
    keep = np.array([ctc_feasible(f, t, stride) for f, t in pairs], bool)
    ds = read_cache(path, cfg.features.n_mels)
    if not keep.all():
        mask = tf.constant(keep)
        ds = ds.enumerate().filter(lambda i, _: mask[i]).map(lambda _, ex: ex)
    ds = to_examples(ds, CharVocab(cfg.alphabet))
    frames = np.asarray(meta["frames"])[keep]
    boundaries = pipeline.quantile_boundaries(frames, cfg.num_buckets) if frames.size else []
    length = lambda inputs, _: inputs["feature_lengths"]  # noqa: E731
    shapes = ({"features": [None, cfg.features.n_mels], "feature_lengths": []}, [None])
    values = ({"features": 0.0, "feature_lengths": 0}, -1)
    if seed is None:
        ds = pipeline.bucket_by_length(ds.cache(), length, batch_size, boundaries,
                              padded_shapes=shapes, padding_values=values)  # fmt: skip
    else:
        ds = pipeline.shuffle_and_bucket(
            ds, length, batch_size, seed, cfg.shuffle_buffer, boundaries,
            padded_shapes=shapes, padding_values=values,
        )  # fmt: skip
    return pipeline.prefetch(ds)
