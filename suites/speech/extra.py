"""Extra real-speech training corpora (`data.extra_train`), optionally limited to a word list.

Each entry of `data.extra_train` is `"<format>:<path>"`; a relative path is taken under
`data.data_dir`, so `speechocean762:../speechocean762` next to `--data-dir .../fsdd` works:

    manifest:<tsv or folder>     `path<TAB>transcript[<TAB>speaker]` rows
    fsdd:<folder>                `recordings/<digit>_<speaker>_<n>.wav`
    speechocean762:<folder>      Kaldi-style `train/text` + `train/wav.scp` (+ `utt2spk`)
    librispeech:<folder>         `*.trans.txt` + flac

Why: a speaker-disjoint model is limited by how many voices it has heard (FSDD: three training
speakers). Another corpus brings new voices even if only a few of its utterances fit the task;
`data.extra_train_words` keeps just the utterances whose every word is in that list (e.g. the
digit strings of speechocean762 for FSDD's ten words). The extra utterances join the training
split only (never validation or test), after the transcript screening of the main corpus, with
`extra:` prefixed to their ids and speakers so that they stay distinct from the main corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from shared.data.sources import parse_format_entry
from suites.speech import readers
from suites.speech.readers import Screen, Utterance
from suites.speech.text import CharVocab

log = logging.getLogger(__name__)

FORMATS = ("manifest", "fsdd", "speechocean762", "librispeech")


def parse_entry(entry: str, data_dir: str | None) -> tuple[str, Path]:
    """`"<format>:<path>"` -> (format, existing path, resolved under `data_dir` if relative)."""
    fmt, path = parse_format_entry(entry, FORMATS, data_dir, "data.extra_train")
    if not path.exists():
        raise ValueError(f"data.extra_train: {entry!r}: {path} does not exist")
    return fmt, path


def _read(fmt: str, path: Path, screen: Screen) -> list[Utterance]:
    if fmt == "manifest":
        return readers.read_manifest(path / "manifest.tsv" if path.is_dir() else path)
    if fmt == "fsdd":
        return readers.read_fsdd(path)
    if fmt == "speechocean762":
        return readers.read_speechocean762(path, screen)
    return readers.read_librispeech(path)


def extra_utterances(
    entries: Sequence[str],
    data_dir: str | None,
    words: Sequence[str],
    vocab: CharVocab,
    screen: Screen,
) -> tuple[list[Utterance], list[dict]]:
    """Reads every entry, screens transcripts, keeps those made of `words` (all if empty).

    Returns the kept utterances and one report per entry (entry, read, kept, speakers).
    """
    allowed = {vocab.normalize(w) for w in words}
    kept_all: list[Utterance] = []
    reports = []
    for entry in entries:
        fmt, path = parse_entry(entry, data_dir)
        utts = readers.screen_transcripts(_read(fmt, path, screen), vocab, screen)
        kept = [u for u in utts if not allowed or set(u.transcript.split()) <= allowed]
        for u in kept:
            u.id = f"extra:{fmt}:{u.id}"
            u.speaker = f"extra:{fmt}:{u.speaker}"
        reports.append(
            {
                "entry": entry,
                "read": len(utts),
                "kept": len(kept),
                "speakers": len({u.speaker for u in kept}),
            }
        )
        log.info(
            "data.extra_train %s: kept %d of %d utterances (%d speakers)",
            entry, len(kept), len(utts), reports[-1]["speakers"],
        )  # fmt: skip
        kept_all.extend(kept)
    return kept_all, reports
