"""Tests for the translation readers (suites/translation/data.py): bad inputs, TFDS mock."""

from __future__ import annotations

import gzip
import zipfile

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from shared.errors import DataError
from suites.translation import data

DE = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen.", "Eine Frau liest."]
EN = ["A man rides a bike.", "Two dogs play.", "A woman reads."]


def _write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))


def test_multi30k_reader_both_directions(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    _write_gz(raw / "train.de.gz", DE)
    _write_gz(raw / "train.en.gz", EN)
    assert data.read_multi30k(tmp_path, "train", "de", "en") == list(zip(DE, EN, strict=True))
    assert data.read_multi30k(raw, "train", "en", "de") == list(zip(EN, DE, strict=True))
    with pytest.raises(DataError, match="val.de.gz"):
        data.read_multi30k(tmp_path, "val", "de", "en")
    with pytest.raises(ValueError, match="unknown Multi30k split"):
        data.read_multi30k(tmp_path, "dev", "de", "en")


def test_mismatched_line_counts_name_both_files(tmp_path):
    (tmp_path / "a.de").write_text("\n".join(DE) + "\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("\n".join(EN[:2]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        data.read_parallel_files(tmp_path / "a.de", tmp_path / "a.en")
    message = str(info.value)
    assert "a.de has 3 lines" in message and "a.en has 2" in message


def test_non_utf8_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.de"
    bad.write_bytes(b"gut\nauch gut\n" + "schlecht \xe4\n".encode("latin-1"))
    (tmp_path / "ok.en").write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.de:3: not valid UTF-8"):
        data.read_parallel_files(bad, tmp_path / "ok.en")
    gz = tmp_path / "bad.de.gz"
    with gzip.open(gz, "wb") as handle:
        handle.write(b"\xff\xfe\n")
    with pytest.raises(DataError, match=r"bad\.de\.gz:1"):
        data.read_lines(gz)


def test_crlf_and_plain_generic_files(tmp_path):
    (tmp_path / "s.txt").write_bytes(b"eins\r\nzwei\r\n")
    (tmp_path / "t.txt").write_bytes(b"one\r\ntwo\r\n")
    assert data.read_parallel_files(tmp_path / "s.txt", tmp_path / "t.txt") == [
        ("eins", "one"),
        ("zwei", "two"),
    ]


def test_clean_pairs_counts_empty_and_too_long():
    pairs = [("a b", "c"), ("", "x"), ("y", "   "), ("a b c d", "e"), (" ok ", "fine ")]
    kept, report = data.clean_pairs(pairs, max_length=3, name="train")
    assert kept == [("a b", "c"), ("ok", "fine")]
    assert (report.total, report.empty, report.too_long, report.kept) == (5, 2, 1, 2)
    assert report.examples == [1, 2, 3] and report.kept_indices == [0, 4]
    assert "kept 2 of 5" in str(report) and "1 over the length limit" in str(report)
    kept, report = data.clean_pairs(pairs, max_length=None, length=len)
    assert report.too_long == 0 and len(kept) == 3
    kept, report = data.clean_pairs([("x", "abc"), ("abc", "x")], 2, length=len, target_length=len)
    assert report.too_long == 2
    kept, report = data.clean_pairs(
        [("x", "abc"), ("abc", "x")], 2, length=len, target_length=lambda s: 1
    )
    assert kept == [("x", "abc")] and report.kept_indices == [0]


def _tatoeba_zip(path, lines):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("_about.txt", "about")
        archive.writestr("deu.txt", "".join(line + "\n" for line in lines))


def test_tatoeba_zip_and_plain(tmp_path):
    lines = [f"{e}\t{d}" for e, d in zip(EN, DE, strict=True)]
    lines[1] += "\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (x) & #2 (y)"
    _tatoeba_zip(tmp_path / "deu-eng.zip", lines)
    (tmp_path / "deu.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_zip = data.read_tatoeba_pairs(tmp_path / "deu-eng.zip", "de", "en")
    assert from_zip == list(zip(DE, EN, strict=True))
    assert data.read_tatoeba_pairs(tmp_path / "deu.txt", "en", "de") == list(
        zip(EN, DE, strict=True)
    )
    with pytest.raises(ValueError, match="'en' as source or target"):
        data.read_tatoeba_pairs(tmp_path / "deu.txt", "de", "fr")


def test_tatoeba_bad_lines(tmp_path):
    (tmp_path / "x.txt").write_text("Go.\tGeh.\nno tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.txt:2: expected 'English<TAB>translation'"):
        data.read_tatoeba_pairs(tmp_path / "x.txt", "de", "en")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        archive.writestr("deu.txt", b"Go.\tGeh.\n\xff\tx\n")
    with pytest.raises(DataError, match=r"bad\.zip!deu\.txt:2: not valid UTF-8"):
        data.read_tatoeba_pairs(tmp_path / "bad.zip", "de", "en")


def test_split_pairs_is_seeded_and_partitions():
    pairs = [(str(i), str(-i)) for i in range(200)]
    first = data.split_pairs(pairs, [0.9, 0.05, 0.05], seed=3)
    again = data.split_pairs(pairs, [0.9, 0.05, 0.05], seed=3)
    other = data.split_pairs(pairs, [0.9, 0.05, 0.05], seed=4)
    assert first == again and first["train"] != other["train"]
    assert [len(first[k]) for k in ("train", "validation", "test")] == [180, 10, 10]
    joined = first["train"] + first["validation"] + first["test"]
    assert sorted(joined) == sorted(pairs) and joined != pairs  # a shuffled partition
    with pytest.raises(ValueError, match="fractions"):
        data.split_pairs(pairs, [0.9, 0.2, 0.05], seed=0)


def test_tfds_reader_with_mock_data():
    with tfds.testing.mock_data(num_examples=7, policy=tfds.testing.MockPolicy.USE_CODE):
        pairs = data.read_tfds_pairs("ted_hrlr_translate/pt_to_en", "train", "pt", "en")
        reverse = data.read_tfds_pairs("ted_hrlr_translate/pt_to_en", "train", "en", "pt")
        with pytest.raises(ValueError, match="not 'de'"):
            data.read_tfds_pairs("ted_hrlr_translate/pt_to_en", "train", "de", "en")
        dataset = tfds.load("ted_hrlr_translate/pt_to_en", split="train", download=False)
        expected = [(ex["pt"].decode(), ex["en"].decode()) for ex in tfds.as_numpy(dataset)]
    assert len(pairs) == 7 and pairs == expected  # the named features, in the asked direction
    assert reverse == [(t, s) for s, t in pairs]


@pytest.mark.realdata
def test_real_multi30k_and_tatoeba(real_data):
    train = data.read_multi30k(real_data / "multi30k", "train", "de", "en")
    test = data.read_multi30k(real_data / "multi30k", "test2016", "de", "en")
    assert len(train) == 29000 and len(test) == 1000  # counts from PROVENANCE.md
    assert test[0][0] and test[0][1] and test[0] != train[0]
    pairs = data.read_tatoeba_pairs(real_data / "tatoeba-anki" / "deu-eng.zip", "de", "en")
    assert len(pairs) == 169813
    with zipfile.ZipFile(real_data / "tatoeba-anki" / "deu-eng.zip") as archive:
        english, german = archive.read("deu.txt").decode().split("\n", 1)[0].split("\t")[:2]
    assert pairs[0] == (german, english)


def test_resample_repeats_and_samples_with_the_seed():
    pairs = [(f"s{i}", f"t{i}") for i in range(10)]
    assert data.resample(pairs, 2.0, seed=1) == pairs + pairs
    half = data.resample(pairs, 0.5, seed=1)
    assert len(half) == 5 and len(set(half)) == 5 and set(half) <= set(pairs)
    assert half == data.resample(pairs, 0.5, seed=1) != data.resample(pairs, 0.5, seed=2)
    more = data.resample(pairs, 1.3, seed=1)
    assert more[:10] == pairs and len(more) == 13 and set(more[10:]) <= set(pairs)


def _mixture_config(root, upsample, mixture):
    from shared.config import ExperimentConfig
    from suites.translation.task import TranslationTask

    raw = {
        "task": "translation",
        "data": {
            "format": "parallel",
            "data_dir": str(root / "main"),
            "source": "de",
            "target": "en",
            "validation_split": "val",
            "upsample": upsample,
            "mixture": mixture,
            "vocab_size": 60,
            "vocab_hard_limit": False,
        },
    }
    return ExperimentConfig.from_dict(raw, TranslationTask)


def test_mixture_of_sources_in_the_training_split(tmp_path):
    main = tmp_path / "main"
    main.mkdir()
    for split, n in (("train", 6), ("val", 2)):
        (main / f"{split}.de").write_text("".join(f"haus {i}\n" for i in range(n)))
        (main / f"{split}.en").write_text("".join(f"house {i}\n" for i in range(n)))
    (tmp_path / "anki").mkdir()
    lines = [f"Cat number {i}.\tKatze Nummer {i}." for i in range(40)]
    with zipfile.ZipFile(tmp_path / "anki" / "deu-eng.zip", "w") as archive:
        archive.writestr("deu.txt", "\n".join(lines) + "\n")
    extra = {"format": "tatoeba", "data_dir": "anki", "upsample": 0.5}  # beside data.data_dir
    config = _mixture_config(tmp_path, 2.0, [extra])
    corpus = data.Corpus(config.data)
    train = corpus.pairs("train")
    main_pairs = data.read_parallel_files(main / "train.de", main / "train.en")
    tatoeba = data.read_tatoeba_pairs(tmp_path / "anki" / "deu-eng.zip", "de", "en")
    tatoeba_train = data.split_pairs(tatoeba, [0.9, 0.05, 0.05], 0)["train"]  # 36 pairs
    assert train[:12] == main_pairs + main_pairs  # the main source twice
    assert len(train) == 12 + 18 and set(train[12:]) <= set(tatoeba_train)  # half of its cut
    assert corpus.pairs("validation") == [("haus 0", "house 0"), ("haus 1", "house 1")]

    from suites.translation.task import TranslationTask

    task = TranslationTask(config, tmp_path / "run")
    task.prepare()  # one SentencePiece model over the whole mixture
    source, _ = task.tokenizers()
    assert source.id_to_piece(1) == "<unk>"  # pieces of both sources, no unknown for either
    for text in ("Katze Nummer 3.", "haus 5", "Cat number 7."):
        assert 1 not in source.tokenize(tf.constant(text)).numpy().tolist()


def test_mixture_source_errors_name_the_key(tmp_path):
    from shared.config import ConfigError

    with pytest.raises(ConfigError, match=r"data.mixture\[0\].upsample: must be > 0"):
        _mixture_config(tmp_path, 1.0, [{"format": "tatoeba", "upsample": 0}])
    with pytest.raises(ConfigError, match=r"unknown key 'data.mixture\[0\].weight'"):
        _mixture_config(tmp_path, 1.0, [{"format": "tatoeba", "weight": 2}])
