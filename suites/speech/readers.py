"""Readers from corpus layouts to `Utterance` lists, screening, and speaker-disjoint splits.

Structural errors (a manifest row with the wrong number of fields, an unparsable file name) raise
ValueError naming the file and line. Per-utterance problems (missing audio, empty transcript,
characters outside the alphabet, a transcript without audio or audio without transcript) are
collected by `Screen`: with policy "error" they raise one ValueError listing them, with "skip"
they are dropped and counted, and the names are kept for the run's report.
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from suites.speech.text import CharVocab

log = logging.getLogger(__name__)

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
    noise_pad_db: float | None = None  # pad with 0.1-0.5 s of Gaussian noise at this RMS level
    # (dBFS) before and after the audio when it is loaded (training copies)

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
        """Raises (policy "error") or logs a summary (policy "skip") if problems were found."""
        if not self.problems:
            return
        counts = Counter(reason.split(":")[0] for _, reason in self.problems)
        summary = ", ".join(f"{n} {r}" for r, n in counts.most_common())
        listing = "\n".join(f"  {s}: {r}" for s, r in self.problems[:20])
        more = f"\n  ... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        msg = f"{what}: {len(self.problems)} bad utterances ({summary})\n{listing}{more}"
        if self.policy == "error":
            raise ValueError(msg + "\n(set data.bad_input: skip to drop them instead)")
        log.warning("skipping %s", msg)

    def write(self, path: str | Path) -> None:
        """Writes `source<TAB>reason` rows (the documented skip list) to `path`."""
        Path(path).write_text("".join(f"{s}\t{r}\n" for s, r in self.problems))


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


def read_manifest(path: str | Path, screen: Screen | None = None) -> list[Utterance]:
    """Reads `path<TAB>transcript[<TAB>speaker]` rows (audio paths relative to the manifest).

    An optional header row starting with `path` is skipped; blank lines are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest not found: {path}")
    utts = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or (lineno == 1 and line.split("\t")[0] == "path"):
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            raise ValueError(
                f"{path}:{lineno}: expected 2 or 3 tab-separated fields "
                f"(path, transcript[, speaker]), got {len(fields)}"
            )
        rel, text = fields[0], fields[1]
        if not rel:
            raise ValueError(f"{path}:{lineno}: empty audio path")
        speaker = fields[2] if len(fields) == 3 else ""
        utts.append(Utterance(Path(rel).stem, text, speaker, str(path.parent / rel)))
    return utts


def read_fsdd(root: str | Path) -> list[Utterance]:
    """FSDD: `recordings/<digit>_<speaker>_<index>.wav`; transcript = the digit's English word."""
    rec = Path(root) / "recordings"
    if not rec.is_dir():
        raise ValueError(f"FSDD recordings folder not found: {rec}")
    utts = []
    for wav in sorted(rec.glob("*.wav")):
        m = _FSDD_NAME.match(wav.stem)
        if not m:
            raise ValueError(f"{wav}: FSDD file name must be <digit>_<speaker>_<index>.wav")
        utts.append(Utterance(wav.stem, FSDD_WORDS[int(m.group(1))], m.group(2), str(wav)))
    if not utts:
        raise ValueError(f"no .wav files in {rec}")
    return utts


def _kaldi_map(path: Path, sep: str | None) -> dict[str, str]:
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().split(sep, 1)
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected '<utt_id> <value>'")
        out[parts[0].strip()] = parts[1].strip()
    return out


def read_speechocean762(root: str | Path, screen: Screen | None = None) -> list[Utterance]:
    """speechocean762 in Kaldi style: `train/text`, `train/wav.scp`, `train/utt2spk`.

    Utterances with a transcript but no audio entry (or the reverse) are reported to `screen`.
    """
    root = Path(root)
    kdir = root / "train"
    for name in ("text", "wav.scp", "utt2spk"):
        if not (kdir / name).is_file():
            raise ValueError(f"speechocean762: missing {kdir / name}")
    texts = _kaldi_map(kdir / "text", None)
    wavs = _kaldi_map(kdir / "wav.scp", None)
    spk = _kaldi_map(kdir / "utt2spk", None)
    screen = screen or Screen()
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
                raise ValueError(f"{trans}:{lineno}: expected '<utt_id> <TRANSCRIPT>'")
            utt_id, text = parts
            speaker = utt_id.split("-")[0]
            utts.append(Utterance(utt_id, text, speaker, str(trans.parent / f"{utt_id}.flac")))
    if not utts:
        raise ValueError(f"no *.trans.txt files under {root}")
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
    evaluation-only corpus). Unknown speaker names raise ValueError naming the config key; an
    empty train split is allowed here (a trained run may evaluate on another corpus).
    """
    by_spk: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        by_spk[u.speaker].append(u)
    if list(test_speakers) == ["*"]:  # evaluation-only corpus: everything is test
        test_speakers = sorted(set(by_spk) - set(validation_speakers))
    for key, names in (
        ("test_speakers", test_speakers),
        ("validation_speakers", validation_speakers),
    ):
        unknown = sorted(set(names) - set(by_spk))
        if unknown:
            known = ", ".join(sorted(by_spk)[:20])
            raise ValueError(f"data.{key}: unknown speakers {unknown} (known: {known})")
    both = set(test_speakers) & set(validation_speakers)
    if both:
        raise ValueError(f"data.test_speakers and data.validation_speakers overlap: {sorted(both)}")
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
