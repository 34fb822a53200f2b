"""Unlabelled pre-training text: Tatoeba zips, '<format>:<path>' sources, dedup and exclusion."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from suites.sentiment import lm_corpus
from suites.sentiment.data import DataFormatError


def _tatoeba_zip(path, lines):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("_about.txt", "Tatoeba export, CC BY 2.0\n")
        archive.writestr("fra.txt", "".join(f"{line}\n" for line in lines))


def test_tatoeba_reader_keeps_the_english_column(tmp_path):
    _tatoeba_zip(tmp_path / "fra-eng.zip", ["Go.\tVa !", "Hi.\tSalut !", "", "Go.\tMarche."])
    assert lm_corpus.read_tatoeba_english(tmp_path / "fra-eng.zip") == ["Go.", "Hi.", "Go."]


def test_tatoeba_reader_names_file_and_line_of_a_bad_pair(tmp_path):
    _tatoeba_zip(tmp_path / "bad.zip", ["Go.\tVa !", "no tab here"])
    with pytest.raises(DataFormatError, match=r"bad\.zip!fra\.txt:2: no 'English<TAB>"):
        lm_corpus.read_tatoeba_english(tmp_path / "bad.zip")


def test_sources_resolve_under_the_data_dir_and_bad_entries_are_named(tmp_path):
    got = lm_corpus.parse_sources(["tatoeba:t/fra-eng.zip", "text:/abs/x.txt"], tmp_path)
    assert got == [("tatoeba", tmp_path / "t" / "fra-eng.zip"), ("text", Path("/abs/x.txt"))]
    with pytest.raises(ValueError, match="--source"):
        lm_corpus.parse_sources(["imdb:reviews"], tmp_path)


def test_collect_texts_deduplicates_across_sources_and_excludes_dev(tmp_path):
    (tmp_path / "dev").write_text("1 a fine -lrb- dev -rrb- sentence here .\n0 bad .\n")
    (tmp_path / "train").write_text("0 a train sentence .\n1 another one .\n")
    with gzip.open(tmp_path / "u.txt.gz", "wt") as f:
        f.write("a train sentence .\nit has a fine (dev) sentence here. and more\nnew text\n")
    _tatoeba_zip(
        tmp_path / "fra-eng.zip",
        ["Bad.\tMauvais.", "Not bad at all.\tPas mal.", "new text\tnouveau", "A fine dev.\tx"],
    )
    sources = lm_corpus.parse_sources(
        ["sst2:train", "text:u.txt.gz", "tatoeba:fra-eng.zip"], tmp_path
    )
    texts, stats = lm_corpus.collect_texts(sources, [tmp_path / "dev"])
    # "Bad." equals the 1-word dev sentence "bad ."; "A fine dev." is part of a dev sentence;
    # "Not bad at all." only contains the short one (matched exactly only), so it stays.
    assert texts == ["a train sentence .", "another one .", "new text", "Not bad at all."]
    assert stats["dropped_for_containing_excluded_sentences"] == 3
    assert stats[f"tatoeba:{tmp_path / 'fra-eng.zip'}"] == 1
