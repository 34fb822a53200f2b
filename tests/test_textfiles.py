"""shared.data.textfiles: UTF-8 line readers for plain, gzip and zipped pair files."""

from __future__ import annotations

import gzip
import zipfile

import pytest

from shared.data.textfiles import read_pair_file_lines, read_text_lines


def test_plain_gzip_and_crlf_files_give_the_same_lines(tmp_path):
    text = "eins\r\nzwei\n\ndrei"
    (tmp_path / "a.txt").write_bytes(text.encode())
    with gzip.open(tmp_path / "a.txt.gz", "wb") as handle:
        handle.write(text.encode())
    expected = ["eins", "zwei", "", "drei"]
    assert read_text_lines(tmp_path / "a.txt") == expected
    assert read_text_lines(tmp_path / "a.txt.gz") == expected


def test_errors_name_the_file_the_member_and_the_line(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"LM corpus not found: .*nope\.txt"):
        read_text_lines(tmp_path / "nope.txt", "LM corpus")
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xe4\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: not valid UTF-8"):
        read_text_lines(tmp_path / "bad.txt")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        archive.writestr("deu.txt", b"Go.\tGeh.\nHi.\tHallo.\n\xff\tx\n")
    with pytest.raises(ValueError, match=r"bad\.zip!deu\.txt:3: not valid UTF-8"):
        read_pair_file_lines(tmp_path / "bad.zip")


def test_zip_yields_its_one_pair_file_and_ignores_notes(tmp_path):
    path = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("_about.txt", "about this file\n")
        archive.writestr("fra.txt", "Go.\tVa !\nHi.\tSalut !\n")
    assert read_pair_file_lines(path) == (f"{path}!fra.txt", ["Go.\tVa !", "Hi.\tSalut !"])
    plain = tmp_path / "fra.txt"
    plain.write_text("Go.\tVa !\n", encoding="utf-8")
    assert read_pair_file_lines(plain) == (str(plain), ["Go.\tVa !"])
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.txt", "x\ty\n")
        archive.writestr("b.tsv", "x\ty\n")
    with pytest.raises(ValueError, match=r"two\.zip: expected one pair file.*a\.txt.*b\.tsv"):
        read_pair_file_lines(tmp_path / "two.zip")
    with pytest.raises(FileNotFoundError, match="Tatoeba file not found"):
        read_pair_file_lines(tmp_path / "missing.zip", "Tatoeba file")
