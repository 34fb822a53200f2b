"""Word-vector files, the vocabulary policy, the embedding matrix and the freezable embedding.

Files are written by the tests from a NumPy table, so the reader is checked against the values
that went in; the real GloVe file is used when `../shared/embeddings` exists (skipped otherwise).
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest

from shared.data.pretrained_embedding import PretrainedEmbedding, UnfreezeAfter
from shared.data.vectors import read_vectors
from shared.data.word_features import PAD, UNK
from shared.data.word_vocab import build_vocabulary, count_words, coverage, embedding_matrix
from shared.errors import DataError

WORDS = ["the", ",", "good", "bad", "n't", "(", "movie"]
TABLE = np.random.default_rng(0).normal(size=(len(WORDS), 5)).astype(np.float32).round(5)


def write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def rows(words=WORDS, table=TABLE) -> list[str]:
    return [w + " " + " ".join(repr(float(v)) for v in vec) for w, vec in zip(words, table)]


@pytest.mark.parametrize("fmt", ["glove", "word2vec"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("given", ["auto", "exact"])
def test_formats_read_back_exactly(tmp_path, fmt, gz, given):
    lines = rows() if fmt == "glove" else [f"{len(WORDS)} 5", *rows()]
    path = write(tmp_path / "vectors.txt", lines, gz)  # gzip recognised by content, not name
    vectors = read_vectors(path, format="auto" if given == "auto" else fmt, progress=False)
    assert vectors.words == WORDS and vectors.dim == 5 and vectors.rows_read == len(WORDS)
    np.testing.assert_array_equal(vectors.matrix, TABLE)
    assert vectors.matrix.dtype == np.float32


def test_fasttext_trailing_spaces_and_crlf(tmp_path):
    path = write(tmp_path / "v.vec", [f"{len(WORDS)} 5 "] + [r + " \r" for r in rows()])
    np.testing.assert_array_equal(read_vectors(path, progress=False).matrix, TABLE)


def test_word_with_spaces_takes_all_but_the_last_values(tmp_path):
    path = write(tmp_path / "v.txt", [*rows()[:2], "new york 1 2 3 4 5"])
    vectors = read_vectors(path, progress=False)
    np.testing.assert_array_equal(vectors.get("new york"), [1, 2, 3, 4, 5])


def test_limit_and_words(tmp_path):
    path = write(tmp_path / "v.txt", rows(), gz=True)
    first = read_vectors(path, limit=3, progress=False)
    assert first.words == WORDS[:3]
    np.testing.assert_array_equal(first.matrix, TABLE[:3])
    chosen = read_vectors(path, words=["movie", "good", "absent"], progress=False)
    assert chosen.words == ["good", "movie"]  # file order
    np.testing.assert_array_equal(chosen.matrix, TABLE[[2, 6]])
    both = read_vectors(path, words=["movie"], limit=2, progress=False)
    assert both.words == ["the", ",", "movie"]
    assert read_vectors(path, limit=0, progress=False).words == []


def test_duplicates_first_wins(tmp_path, caplog):
    other = np.full((1, 5), 9.0, np.float32)
    path = write(tmp_path / "v.txt", rows() + rows(["good"], other))
    vectors = read_vectors(path, progress=False)
    assert vectors.words == WORDS
    np.testing.assert_array_equal(vectors.get("good"), TABLE[2])
    assert "1 duplicated words ignored" in caplog.text


@pytest.mark.parametrize(
    "lines, fmt, message",
    [
        ([], "auto", r"v\.txt: the vector file is empty"),
        (["", "  "], "auto", "the vector file is empty"),
        (["3 5"], "auto", "has a header but no vectors"),
        (["the 1 2 3", "good 1 2"], "auto", r"v\.txt:2: expected a word and 3 values, found 2"),
        (["the 1 2 3", "good 1 2 3 4"], "auto", r"v\.txt:2: expected 3 values, found 4"),
        (["2 3", "the 1 2 3", "good 1 2 3 4"], "auto", r"v\.txt:3: expected 3 values"),
        (
            ["the 1 2 3", "good 1 x 3"],
            "auto",
            r"v\.txt:2: value 'x' of word 'good' is not a number",
        ),
        (["the 1 2 3", "good 1 nan 3"], "auto", r"v\.txt:2: word 'good' has a value that is not"),
        (["the 1 2 3"], "word2vec", r"v\.txt:1: expected a word2vec header"),
        (["the"], "auto", r"v\.txt:1: a row needs a word and at least one value"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "short",
        "long",
        "header-dim",
        "nan-text",
        "nan",
        "no-header",
        "no-values",
    ],
)
def test_malformed_files(tmp_path, lines, fmt, message):
    path = write(tmp_path / "v.txt", lines) if lines else tmp_path / "v.txt"
    if not lines:
        path.write_bytes(b"")
    with pytest.raises(DataError, match=message):
        read_vectors(path, format=fmt, progress=False)


def test_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(b"the 1 2\n\xff\xfe 1 2\n")
    with pytest.raises(DataError, match=r"v\.txt:2: not valid UTF-8"):
        read_vectors(path, progress=False)


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="vector file not found"):
        read_vectors(tmp_path / "absent.txt")
    path = write(tmp_path / "v.txt", rows())
    with pytest.raises(DataError, match="format must be one of"):
        read_vectors(path, format="fasttext-bin")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="limit must be >= 0"):
        read_vectors(path, limit=-1)


# --- vocabulary policy, embedding matrix, coverage -------------------------------------------


def test_vocabulary_policy():
    counts = Counter({"good": 3, "plot": 3, "zzz": 1, "the": 5})
    vocabulary = build_vocabulary(counts, vector_words=["the", ",", "bad"], min_count=2)
    assert vocabulary == [PAD, UNK, "the", "good", "plot", ",", "bad"]
    assert build_vocabulary(counts)[2:] == ["the", "good", "plot", "zzz"]
    with pytest.raises(ValueError, match="min_count"):
        build_vocabulary(counts, min_count=0)


def test_embedding_matrix_equals_file_vectors(tmp_path):
    vectors = read_vectors(write(tmp_path / "v.txt", rows()), progress=False)
    vocabulary = [PAD, UNK, "movie", "unseen", "good", "the"]
    matrix, known = embedding_matrix(vocabulary, vectors, seed=3)
    assert matrix.shape == (6, 5) and matrix.dtype == np.float32
    assert known.tolist() == [False, False, True, False, True, True]
    for row, word in enumerate(vocabulary):
        if known[row]:
            np.testing.assert_array_equal(matrix[row], vectors.get(word))
    np.testing.assert_array_equal(matrix[0], 0.0)
    assert not np.allclose(matrix[1], matrix[3])  # UNK and an unseen word: distinct draws
    again, _ = embedding_matrix(vocabulary, vectors, seed=3)
    np.testing.assert_array_equal(matrix, again)  # seeded


def test_random_rows_have_the_scale_of_the_vectors():
    from shared.data.vectors import WordVectors

    table = np.random.default_rng(1).normal(2.0, 0.5, size=(2000, 4)).astype(np.float32)
    vectors = WordVectors([f"w{i}" for i in range(2000)], table)
    vocabulary = [PAD, UNK] + [f"new{i}" for i in range(4000)]
    matrix, known = embedding_matrix(vocabulary, vectors)
    assert not known.any()
    np.testing.assert_allclose(matrix[1:].mean(0), table.mean(0), atol=0.05)
    np.testing.assert_allclose(matrix[1:].std(0), table.std(0), atol=0.05)


def test_coverage_counts_types_and_tokens():
    counts = count_words([["a", "b", "a"], ["c", "a"]])
    cov = coverage(counts, {"a", "z"})
    assert (cov.types, cov.types_covered, cov.tokens, cov.tokens_covered) == (3, 1, 5, 3)
    assert cov.type_rate == pytest.approx(1 / 3) and cov.token_rate == pytest.approx(0.6)
    assert str(cov) == "33.3% of 3 word types, 60.0% of 5 tokens"


# --- the freezable embedding -----------------------------------------------------------------


def _model(frozen: bool):
    matrix = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    known = np.array([False, False, True, True, False, True])
    ids = keras.Input((None,), dtype="int32")
    layer = PretrainedEmbedding(6, 4, vectors=matrix, has_vector=known, frozen=frozen)
    pooled = keras.layers.GlobalAveragePooling1D()(layer(ids))
    model = keras.Model(ids, keras.layers.Dense(1)(pooled))
    model.compile(keras.optimizers.Adam(0.1), loss="mse")
    return model, layer, matrix, known


def _step(model, epochs=1, callbacks=()):
    x = np.array([[1, 2, 3, 4, 5]] * 8, np.int32)
    model.fit(x, np.ones((8, 1)), epochs=epochs, verbose=0, callbacks=list(callbacks))


def test_frozen_rows_do_not_move_others_do():
    model, layer, matrix, known = _model(frozen=True)
    np.testing.assert_array_equal(layer.embeddings.numpy(), matrix)
    _step(model)
    after = layer.embeddings.numpy()
    np.testing.assert_array_equal(after[known], matrix[known])
    assert not np.allclose(after[[1, 4]], matrix[[1, 4]])  # UNK and a word without a vector
    np.testing.assert_array_equal(after[0], matrix[0])  # padding id never seen


def test_tuned_rows_move():
    model, layer, matrix, known = _model(frozen=False)
    _step(model)
    assert not np.allclose(layer.embeddings.numpy()[known], matrix[known])


def test_unfreeze_after_n_epochs():
    model, layer, matrix, known = _model(frozen=True)
    _step(model, epochs=2, callbacks=[UnfreezeAfter(2)])
    np.testing.assert_array_equal(layer.embeddings.numpy()[known], matrix[known])
    assert float(layer.frozen.numpy()) == 1.0
    _step(model, epochs=1, callbacks=[UnfreezeAfter(0)])
    assert float(layer.frozen.numpy()) == 0.0
    assert not np.allclose(layer.embeddings.numpy()[known], matrix[known])


def test_mask_and_serialisation(tmp_path):
    model, layer, matrix, _ = _model(frozen=True)
    mask = layer.compute_mask(np.array([[3, 0]]))
    assert np.asarray(mask).tolist() == [[True, False]]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.array([[1, 2, 0]], np.int32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    restored = next(lay for lay in loaded.layers if isinstance(lay, PretrainedEmbedding))
    np.testing.assert_array_equal(restored.has_vector.numpy(), layer.has_vector.numpy())
    assert restored.get_config()["frozen"] is True


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input_dim": 1, "output_dim": 4}, "input_dim"),
        ({"input_dim": 6, "output_dim": 4, "vectors": np.zeros((5, 4))}, "vectors must be"),
        ({"input_dim": 6, "output_dim": 4, "has_vector": np.zeros(5)}, "has_vector must be"),
    ],
)
def test_embedding_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PretrainedEmbedding(**kwargs)


# --- the real GloVe file ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def glove() -> Path:
    path = (
        Path(__file__).resolve().parents[2]
        / "shared"
        / "embeddings"
        / "glove.6B.50d.top200k.txt.gz"
    )
    if not path.is_file():
        pytest.skip("shared GloVe vectors not found: ../shared/embeddings is absent")
    return path


def test_real_glove_head_and_chosen_words(glove):
    vectors = read_vectors(glove, words=["movie", "n't", "("], limit=1000, progress=False)
    with gzip.open(glove, "rt", encoding="utf-8") as handle:
        first = [next(handle).split(" ") for _ in range(3)]
    assert vectors.words[:3] == [f[0] for f in first] and vectors.dim == 50
    np.testing.assert_array_equal(vectors.matrix[0], np.array(first[0][1:], np.float32))
    assert {"movie", "n't", "("} <= set(vectors.words)
    assert 1000 <= len(vectors) <= 1003
