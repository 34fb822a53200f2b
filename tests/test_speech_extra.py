"""`data.extra_train`: extra real speech joins the training split only, filtered by words."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf

from suites.speech.data import DataConfig, make_splits
from suites.speech.extra import extra_utterances, parse_entry
from suites.speech.readers import Screen
from suites.speech.text import CharVocab


def _wav(path, seconds=0.3, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)


def _corpus(root, rows):
    """A manifest corpus: rows of (file, transcript, speaker)."""
    for name, _, _ in rows:
        _wav(root / name)
    (root / "manifest.tsv").write_text("".join(f"{n}\t{t}\t{s}\n" for n, t, s in rows))
    return root


def test_extra_train_joins_training_split_only_with_word_filter(tmp_path):
    main = _corpus(
        tmp_path / "main",
        [(f"{i}.wav", ["zero", "one"][i % 2], "ab"[i % 2]) for i in range(8)],
    )
    _corpus(
        tmp_path / "other",
        [("x.wav", "ONE TWO", "p1"), ("y.wav", "hello there", "p2"), ("z.wav", "two", "p3"),
         ("q.wav", "one, two!", "p4")],
    )  # fmt: skip
    cfg = DataConfig(
        source="manifest", data_dir=str(main), test_speakers=["b"], validation_fraction=0.0,
        extra_train=["manifest:../other"], extra_train_words=["zero", "One", "two"],
    )  # fmt: skip
    splits = make_splits(cfg, 0, tmp_path / "cache", Screen("skip"))
    extra = [u for u in splits["train"] if u.speaker.startswith("extra:")]
    # "one, two!" has characters outside the alphabet (screened), "hello there" other words.
    assert sorted(u.transcript for u in extra) == ["one two", "two"]
    assert {u.speaker for u in extra} == {"extra:manifest:p1", "extra:manifest:p3"}
    assert len(splits["train"]) == 4 + 2 and not any(
        u.speaker.startswith("extra:") for u in splits["test"] + splits["validation"]
    )
    assert len({u.id for u in splits["train"]}) == len(splits["train"])

    # No word list: every screened utterance is kept.
    kept, reports = extra_utterances(
        ["manifest:other"], str(tmp_path), [], CharVocab(), Screen("skip")
    )
    assert len(kept) == 3 and reports == [
        {"entry": "manifest:other", "read": 3, "kept": 3, "speakers": 3}
    ]


def test_extra_train_bad_entries_name_the_key(tmp_path):
    with pytest.raises(ValueError, match="data.extra_train.*format one of"):
        parse_entry("wav:somewhere", str(tmp_path))
    with pytest.raises(ValueError, match="data.extra_train.*does not exist"):
        parse_entry("fsdd:missing", str(tmp_path))


@pytest.mark.realdata
def test_speechocean762_digit_strings_for_fsdd(real_data):
    """The speechocean762 utterances made only of digit words, counted from its MANIFEST.tsv."""
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    with open(real_data / "speechocean762" / "MANIFEST.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t")
                if set(r["transcript"].lower().split()) <= set(words)]  # fmt: skip
    kept, reports = extra_utterances(
        ["speechocean762:../speechocean762"], str(real_data / "fsdd"), words, CharVocab(),
        Screen("error"),
    )  # fmt: skip
    assert len(rows) > 50
    assert sorted(u.transcript for u in kept) == sorted(r["transcript"].lower() for r in rows)
    assert reports[0]["speakers"] == len({r["speaker"] for r in rows})
