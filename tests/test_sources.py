"""`shared.data.sources`: config paths relative to data.data_dir and "<format>:<path>" entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.data.sources import parse_format_entry, resolve_under


def test_resolve_under_folder_file_and_absolute(tmp_path):
    tsv = tmp_path / "manifest.tsv"
    tsv.write_text("")
    assert resolve_under("a/b.wav", tmp_path) == tmp_path / "a/b.wav"
    assert resolve_under("../x", tsv) == tmp_path / "../x"  # a file's folder is the base
    assert resolve_under("/abs/y", tmp_path) == Path("/abs/y")
    assert resolve_under("rel", None) == Path("rel")


def test_parse_format_entry_names_the_key():
    assert parse_format_entry("csv:f.csv", ("csv",), "/d", "data.k") == ("csv", Path("/d/f.csv"))
    for bad in ("f.csv", "tsv:f.csv", "csv:"):
        with pytest.raises(ValueError, match="data.k: .* format one of"):
            parse_format_entry(bad, ("csv",), "/d", "data.k")
