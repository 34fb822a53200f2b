"""A peer recogniser beside ours: pocketsphinx on the held-out speakers of FSDD and speechocean762.

pocketsphinx (CMU Sphinx, PyPI `pocketsphinx`) decodes with its own US English acoustic model,
CMUdict and its general trigram LM (`en-us.lm.bin`); on FSDD it also runs as a digit recogniser
would be set up, with a grammar that allows exactly one of the ten digit words. Our SavedModel
exports (`lstm-suite export`) run on the very same clips. Audio is read with soundfile and
resampled with librosa: to 16 kHz for pocketsphinx (its model's rate; FSDD is 8 kHz), to the
export's `assets/sample_rate.txt` for ours. Transcripts are compared lowercased, punctuation
other than apostrophes removed.

Rows: one per test set and system. Test sets: `fsdd:<speaker>` (all clips of one FSDD speaker,
the held-out speaker of that rotation) and `speechocean762` (the test speakers named by
`data.test_speakers` of configs/speech/speechocean762.yaml). Columns: CER and WER (jiwer, over
the whole set) and `utt_acc`, the share of clips transcribed exactly - on FSDD's one-word clips
that is the word accuracy.

    python benchmarks/peer_speech.py --fsdd <fsdd> --speechocean762 <speechocean762>
    python benchmarks/peer_speech.py --fsdd <fsdd> --fsdd-speakers george \
        --export fsdd:george=runs/fsdd_george/exports/<stamp>

`--export SET=DIR` adds our export's row to test set SET (repeatable; a bare DIR when only one
test set is run); `--out FILE` writes every clip's reference and hypotheses as TSV.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shared.errors import DataError, UsageError  # noqa: E402
from shared.log import configure, get_logger, quiet_tensorflow  # noqa: E402

log = get_logger(__name__)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_SPEAKERS = ("george", "jackson", "nicolas", "yweweler")
SPEECHOCEAN_CONFIG = REPO / "configs" / "speech" / "speechocean762.yaml"
PEER_RATE = 16000  # pocketsphinx's en-us acoustic model


@dataclass(frozen=True)
class Clip:
    """One test utterance."""

    uid: str
    path: Path
    reference: str


@dataclass
class TestSet:
    """Named clips, with each system's hypotheses (system -> one string per clip)."""

    name: str
    clips: list[Clip]
    hyps: dict[str, list[str]] = field(default_factory=dict)


def normalise(text: str) -> str:
    """Lowercase, letters/digits/apostrophes only, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def fsdd_clips(folder: Path, speaker: str) -> list[Clip]:
    """All `recordings/<digit>_<speaker>_<n>.wav` of one speaker; reference = the digit word."""
    recordings = folder / "recordings"
    paths = sorted(recordings.glob(f"[0-9]_{speaker}_*.wav"))
    if not paths:
        raise DataError(
            f"{recordings}: no clips of speaker {speaker!r} (<digit>_{speaker}_<n>.wav)"
        )
    return [Clip(p.stem, p, DIGITS[int(p.name[0])]) for p in paths]


def _table(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise DataError(f"{path}: missing (a speechocean762 folder has train/text, wav.scp, ...)")
    rows = {}
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            key, _, value = line.strip().replace("\t", " ").partition(" ")
            if not value.strip():
                raise DataError(f"{path}:{line_no}: expected '<id> <value>', got {line!r}")
            rows[key.strip()] = value.strip()
    return rows


def speechocean_clips(folder: Path, speakers: Sequence[str]) -> list[Clip]:
    """The utterances of `speakers` in `<folder>/train` (Kaldi text, wav.scp, utt2spk)."""
    text, wavs, owner = (_table(folder / "train" / n) for n in ("text", "wav.scp", "utt2spk"))
    unknown = sorted(set(speakers) - set(owner.values()))
    if unknown:
        raise DataError(f"{folder / 'train' / 'utt2spk'}: no utterances of speakers {unknown}")
    wanted = set(speakers)
    return [
        Clip(uid, folder / wavs[uid], normalise(text[uid]))
        for uid in sorted(owner)
        if owner[uid] in wanted
    ]


def speechocean_test_speakers(config: Path) -> list[str]:
    """`data.test_speakers` of a speech config file."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    speakers = (data.get("data") or {}).get("test_speakers")
    if not speakers:
        raise UsageError(f"{config}: no data.test_speakers to take the held-out speakers from")
    return [str(s) for s in speakers]


def load_wave(path: Path, rate: int) -> np.ndarray:
    """Mono float32 audio at `rate` (librosa's soxr resampling)."""
    import librosa
    import soundfile as sf

    try:
        wave, orig = sf.read(path, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as err:
        raise DataError(f"{path}: cannot read audio ({err})") from err
    wave = wave.mean(axis=1)
    if orig != rate:
        wave = librosa.resample(wave, orig_sr=orig, target_sr=rate, res_type="soxr_hq")
    return wave.astype(np.float32)


def sphinx_recogniser(grammar_words: Sequence[str] | None = None) -> Callable[[np.ndarray], str]:
    """pocketsphinx on 16 kHz audio: its trigram LM, or a one-word grammar over `grammar_words`."""
    try:
        from pocketsphinx import Decoder
    except ImportError as err:
        raise UsageError("pocketsphinx is not installed (pip install pocketsphinx)") from err
    decoder = Decoder(samprate=PEER_RATE, loglevel="FATAL")
    if grammar_words:
        jsgf = "#JSGF V1.0;\ngrammar words;\npublic <w> = " + " | ".join(grammar_words) + ";\n"
        decoder.add_jsgf_string("words", jsgf)
        decoder.activate_search("words")

    def recognise(wave: np.ndarray) -> str:
        pcm = (np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return normalise(hyp.hypstr) if hyp is not None else ""

    return recognise


def export_recogniser(export: Path, batch: int = 16) -> Callable[[list[Path]], list[str]]:
    """Our SavedModel's `serving_default` over lists of clip paths, `batch` clips per call."""
    quiet_tensorflow()
    import tensorflow as tf

    rate_file = export / "assets" / "sample_rate.txt"
    if not rate_file.is_file():
        raise UsageError(f"{export}: not a speech export (no assets/sample_rate.txt)")
    rate = int(rate_file.read_text().strip())
    serve = tf.saved_model.load(str(export)).signatures["serving_default"]

    def transcribe(paths: list[Path]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(paths), batch):
            waves = [load_wave(p, rate) for p in paths[start : start + batch]]
            lengths = np.array([w.size for w in waves], np.int32)
            padded = np.zeros((len(waves), int(lengths.max())), np.float32)
            for i, w in enumerate(waves):
                padded[i, : w.size] = w
            result = serve(waveform=tf.constant(padded), waveform_length=tf.constant(lengths))
            out += [normalise(t.decode("utf-8")) for t in result["transcript"].numpy()]
        return out

    return transcribe


def run_sphinx(sets: Sequence[TestSet]) -> None:
    """Fills `pocketsphinx` (and, on FSDD, `pocketsphinx+digits`) hypotheses, logging each row.

    Runs speechocean762 first, then the digit grammar on FSDD, then the open LM on FSDD (the
    slowest), so that a long run has its main figures early in the log.
    """
    open_lm, digits = sphinx_recogniser(), sphinx_recogniser(DIGITS)
    fsdd = [s for s in sets if s.name.startswith("fsdd:")]
    jobs = [(s, "pocketsphinx", open_lm) for s in sets if s not in fsdd]
    jobs += [(s, "pocketsphinx+digits", digits) for s in fsdd]
    jobs += [(s, "pocketsphinx", open_lm) for s in fsdd]
    for test_set, name, recognise in jobs:
        test_set.hyps[name] = [recognise(load_wave(c.path, PEER_RATE)) for c in test_set.clips]
        _log_row(test_set, name)


def _log_row(test_set: TestSet, system: str) -> None:
    refs = [c.reference for c in test_set.clips]
    got = scores(refs, test_set.hyps[system])
    log.info("%s on %s (%d clips): CER %.1f%%, WER %.1f%%, utt_acc %.1f%%", system,
             test_set.name, len(refs), got["cer"], got["wer"], got["utt_acc"])  # fmt: skip


def scores(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """CER and WER in percent over the whole set (jiwer) and the exact-match rate."""
    import jiwer

    refs = [r or "<empty>" for r in references]  # jiwer refuses empty references
    hyps = hypotheses
    return {
        "cer": 100.0 * jiwer.cer(refs, hyps),
        "wer": 100.0 * jiwer.wer(refs, hyps),
        "utt_acc": 100.0 * float(np.mean([r == h for r, h in zip(references, hyps)])),
    }


def table(sets: Iterable[TestSet]) -> list[dict[str, object]]:
    """One row per (test set, system)."""
    rows = []
    for test_set in sets:
        refs = [c.reference for c in test_set.clips]
        for system, hyps in test_set.hyps.items():
            row = {"set": test_set.name, "system": system, "clips": len(refs)}
            rows.append(row | scores(refs, hyps))
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| set | system | clips | CER % | WER % | utt_acc % |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['system']} | {r['clips']} | {r['cer']:.1f} | {r['wer']:.1f} "
            f"| {r['utt_acc']:.1f} |"
        )
    return "\n".join(lines)


def write_hypotheses(sets: Iterable[TestSet], out: Path) -> None:
    """Every clip's reference and each system's hypothesis, one TSV row per clip and system."""
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["set", "uid", "system", "reference", "hypothesis"])
        for test_set in sets:
            for system, hyps in test_set.hyps.items():
                for clip, hyp in zip(test_set.clips, hyps, strict=True):
                    writer.writerow([test_set.name, clip.uid, system, clip.reference, hyp])


def _exports(specs: Sequence[str], names: Sequence[str]) -> dict[str, Path]:
    """`SET=DIR` (or a bare DIR when exactly one test set runs) -> {set: dir}."""
    chosen: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.rpartition("=")
        if not sep:
            if len(names) != 1:
                raise UsageError(f"--export {spec}: say which test set, one of {list(names)}")
            name, path = names[0], spec
        if name not in names:
            raise UsageError(f"--export {spec}: no test set {name!r} (running {list(names)})")
        if not Path(path).is_dir():
            raise UsageError(f"--export {spec}: {path} is not a folder")
        chosen[name] = Path(path)
    return chosen


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fsdd", type=Path, help="the FSDD folder (recordings/)")
    parser.add_argument("--fsdd-speakers", nargs="+", default=list(FSDD_SPEAKERS))
    parser.add_argument("--speechocean762", type=Path, help="the speechocean762 folder")
    parser.add_argument(
        "--speechocean-config", type=Path, default=SPEECHOCEAN_CONFIG,
        help="config whose data.test_speakers are the held-out speakers",
    )  # fmt: skip
    parser.add_argument("--export", action="append", default=[], metavar="[SET=]DIR")
    parser.add_argument("--out", type=Path, help="TSV of every clip's hypotheses")
    parser.add_argument("--limit", type=int, default=0, help="first N clips per set (0 = all)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Runs the comparison; prints the Markdown table; returns its rows."""
    configure()
    args = parse_args(argv)
    if args.fsdd is None and args.speechocean762 is None:
        raise UsageError("give --fsdd and/or --speechocean762")
    sets = [TestSet(f"fsdd:{s}", fsdd_clips(args.fsdd, s)) for s in args.fsdd_speakers if args.fsdd]
    if args.speechocean762 is not None:
        speakers = speechocean_test_speakers(args.speechocean_config)
        sets.append(TestSet("speechocean762", speechocean_clips(args.speechocean762, speakers)))
    if args.limit > 0:
        for test_set in sets:
            test_set.clips = test_set.clips[: args.limit]
    exports = _exports(args.export, [s.name for s in sets])
    run_sphinx(sets)
    for test_set in sets:
        if test_set.name in exports:
            transcribe = export_recogniser(exports[test_set.name])
            test_set.hyps["ours"] = transcribe([c.path for c in test_set.clips])
            _log_row(test_set, "ours")
    rows = table(sets)
    print(markdown(rows))
    if args.out is not None:
        write_hypotheses(sets, args.out)
    return rows


if __name__ == "__main__":
    try:
        main()
    except UsageError as err:
        log.error("%s", err)
        sys.exit(2)
