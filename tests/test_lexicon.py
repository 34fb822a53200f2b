"""Polarity lexicons (shared/data/lexicon.py) and their features in the graph on raw strings.

The VADER file is checked against vaderSentiment's own parse of it (`SentimentIntensityAnalyzer
().lexicon`); the in-graph features against a Python lookup over the reference tokenizer of
tests/test_word_features.py.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import tensorflow as tf
from test_word_features import reference_words

from shared.data.lexicon import read_lexicon, vader_lexicon_path
from shared.data.word_features import PAD, UNK, WordEncoder
from shared.errors import DataError

vader = pytest.importorskip("vaderSentiment.vaderSentiment", reason="vaderSentiment not installed")


def test_vader_equals_the_package_parse_scaled():
    lexicon = read_lexicon("vader")
    original = vader.SentimentIntensityAnalyzer().lexicon  # word -> mean rating in [-4, 4]
    # Words written once, in lower case (VADER keeps a repeat's last rating, we the first).
    lines = vader_lexicon_path().read_text(encoding="utf-8").splitlines()
    folded = Counter(line.split("\t")[0].lower() for line in lines if line.strip())
    lowered = [w for w in original if w == w.lower() and folded[w] == 1]
    assert len(lowered) > 7000 and len(lexicon) == len(folded)
    for word in lowered:
        assert lexicon[word] == pytest.approx(original[word] / 4.0), word
    assert all(-1.0 <= v <= 1.0 for v in lexicon.values())
    assert lexicon["good"] > 0 > lexicon["bad"]
    assert vader_lexicon_path().name == "vader_lexicon.txt"


def test_other_files_scale_clip_and_first_wins(tmp_path):
    path = tmp_path / "lex.tsv"
    path.write_text("Great\t3\nawful\t-9\n\ngreat\t-1\nmeh\t0.5\textra\n", encoding="utf-8")
    assert read_lexicon(path, scale=3) == {"great": 1.0, "awful": -1.0, "meh": 0.5 / 3}


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r"lex\.tsv: the lexicon file has no entries"),
        ("good\t1\nbad -1\n", r"lex\.tsv:2: expected 'word<TAB>rating'"),
        ("good\tvery\n", r"lex\.tsv:1: rating 'very' is not a number"),
        ("good\tinf\n", r"lex\.tsv:1: rating 'inf' is not finite"),
        ("\t1\n", r"lex\.tsv:1: expected 'word<TAB>rating'"),
    ],
    ids=["empty", "no-tab", "not-number", "inf", "no-word"],
)
def test_malformed_lexicon(tmp_path, text, match):
    path = tmp_path / "lex.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        read_lexicon(path)


def test_missing_file_and_bad_scale(tmp_path):
    with pytest.raises(DataError, match="lexicon file not found"):
        read_lexicon(tmp_path / "absent.tsv")
    with pytest.raises(DataError, match="scale must be > 0"):
        read_lexicon("vader", scale=0)


RAW = [
    "I didn't like it (at all).",
    "A great, funny film :) but the ending is awful...",
    "It's not BAD; it's just boring -- and I hate that!",
    "",
]


def test_graph_features_equal_python_reference_on_raw_strings():
    lexicon = read_lexicon("vader")
    vocabulary = [PAD, UNK, "i", "like", "it", "great", "film", "bad"]
    encoder = WordEncoder(vocabulary, lexicon)
    ids, features = encoder.encode(tf.constant(RAW), max_length=12)
    index = {w: i for i, w in enumerate(vocabulary)}
    width = ids.shape[1]
    for row, text in enumerate(RAW):
        words = reference_words(text)[:12]
        pad = [0.0] * (width - len(words))
        polarity = [lexicon.get(w, 0.0) for w in words] + pad
        found = [float(w in lexicon) for w in words] + pad
        np.testing.assert_allclose(features.numpy()[row], np.stack([polarity, found], -1), atol=0)
        np.testing.assert_array_equal(
            ids.numpy()[row], [index.get(w, 1) for w in words] + [0] * (width - len(words))
        )
    assert features.numpy()[1, :, 1].sum() >= 3  # great, funny, awful have entries
