"""Sentiment on words: pretrained vectors, the unknown word, freezing, lexicon features, export.

References are independent of the code under test: the vector file and the lexicon are written
here and parsed back with plain string splitting, the words of the probe sentences are listed by
hand, and the export is compared with the Keras model fed those hand-made inputs.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401 - registers the ops an export may need
from sentiment_reference import reference_probabilities

from shared import runs, serving
from shared.config import load_config
from shared.data.pretrained_embedding import UnfreezeAfter
from shared.errors import ConfigError, DataError
from shared.task import get_task
from shared.training import loop
from suites.sentiment import words
from suites.sentiment.model import build_classifier

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "sentiment" / "tiny.yaml"
GLOVE = "glove.6B.50d.top200k.txt.gz"
DIM = 6
# Words of the generated negation set that get a vector, and file-only words (never in training).
WITH_VECTOR = ["the", "plot", "was", "not", "dull", "and", "clumsy", "bright"]
FILE_ONLY = ["superb", "awful"]
LEXICON = {"dull": -1.7, "clumsy": -1.9, "bright": 1.9, "superb": 3.1, "awful": -3.9, "(": 0.2}


def _write_vectors(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    lines = [
        w + " " + " ".join(f"{v:.5f}" for v in rng.normal(size=DIM))
        for w in WITH_VECTOR + FILE_ONLY
    ]
    path = folder / "vectors.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _file_vectors(path: Path) -> dict[str, np.ndarray]:
    """The test's own reading of the vector file."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [line.split() for line in handle if line.strip()]
    return {r[0]: np.array([float(v) for v in r[1:]], np.float32) for r in rows}


def _write_lexicon(folder: Path) -> Path:
    path = folder / "lexicon.txt"
    path.write_text("".join(f"{w}\t{v}\t0.5\t[1, 2]\n" for w, v in LEXICON.items()), "utf-8")
    return path


def _config(folder: Path, *extra: str):
    return load_config(
        TINY,
        overrides=[
            "data.tokens=word",
            f"model.pretrained_vectors.path={_write_vectors(folder)}",
            f"model.lexicon.path={_write_lexicon(folder)}",
            "model.lexicon.scale=2.0",
            "training.epochs=3",
            "training.progress=none",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def word_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sentiment_words")
    config = _config(folder)
    task_cls = get_task("sentiment")
    loop.train(task_cls, config, folder / "run")
    return task_cls, config, folder


def test_embedding_rows_are_the_file_vectors(tmp_path):
    config = _config(tmp_path)
    task = get_task("sentiment")(config, tmp_path / "run")
    task.prepare()
    vocabulary = words.read_vocabulary(task.artifacts_dir / words.VOCABULARY_FILE)
    table = task.build_model().get_layer("embedding").embeddings.numpy()
    expected = _file_vectors(tmp_path / "vectors.txt.gz")
    assert vocabulary[:2] == ["<pad>", "<unk>"]
    for word in FILE_ONLY:  # never seen in training, kept for its vector
        assert word in vocabulary
    for word, vector in expected.items():
        np.testing.assert_array_equal(table[vocabulary.index(word)], vector)
    others = [i for i, w in enumerate(vocabulary) if w not in expected and i > 0]
    assert others and 1 in others  # UNK and the training words without a vector
    has_vector = task.build_model().get_layer("embedding").has_vector.numpy()
    assert has_vector.tolist() == [float(w in expected) for w in vocabulary]
    np.testing.assert_array_equal(table[0], 0.0)


def test_unknown_words_map_to_unk(tmp_path):
    task = get_task("sentiment")(_config(tmp_path), tmp_path / "run")
    vocabulary = task.word_vocabulary.words
    inputs = task.inputs(tf.constant(["Zyxwv the PLOT, qqq!", ""]))
    ids = inputs["ids"].numpy()
    assert ids[0].tolist() == [1, vocabulary.index("the"), vocabulary.index("plot"), 1, 1, 1]
    assert ids[1].tolist() == [0] * 6


def _small_model(frozen: bool):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 4)).astype(np.float32)
    has_vector = np.array([False, False, True, True, True, False])
    model = build_classifier(
        6, 2, lstm_units=[4], vectors=vectors, has_vector=has_vector, freeze_vectors=frozen
    )
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    x = np.array([[2, 3, 4, 5, 1], [1, 4, 3, 2, 5]], np.int32)
    return model, x, np.array([0, 1]), has_vector


def test_frozen_rows_stay_then_move_after_unfreeze():
    model, x, y, has_vector = _small_model(frozen=True)
    table = model.get_layer("embedding").embeddings
    before = table.numpy().copy()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[UnfreezeAfter(1)])
    after_one = table.numpy().copy()
    np.testing.assert_array_equal(after_one[has_vector], before[has_vector])
    assert not np.allclose(after_one[[1, 5]], before[[1, 5]])  # UNK and no-vector rows train
    model.fit(x, y, initial_epoch=1, epochs=2, verbose=0, callbacks=[UnfreezeAfter(1)])
    assert not np.allclose(table.numpy()[has_vector], after_one[has_vector])


def test_unfrozen_rows_train_from_the_start():
    model, x, y, has_vector = _small_model(frozen=False)
    before = model.get_layer("embedding").embeddings.numpy().copy()
    model.fit(x, y, epochs=1, verbose=0)
    after = model.get_layer("embedding").embeddings.numpy()
    assert not np.allclose(after[has_vector], before[has_vector])


PROBES = ["The plot was not dull (and) superb!", "AWFUL, clumsy plot", "", "bright"]
PROBE_WORDS = [
    ["the", "plot", "was", "not", "dull", "(", "and", ")", "superb", "!"],
    ["awful", ",", "clumsy", "plot"],
    [],
    ["bright"],
]


def _reference_inputs(vocabulary: list[str], max_length: int) -> dict[str, np.ndarray]:
    """Ids and (polarity, has-entry) of PROBE_WORDS from the test's own lexicon (scale 2)."""
    width = max(1, max(len(w) for w in PROBE_WORDS))
    ids = np.zeros((len(PROBES), width), np.int32)
    features = np.zeros((len(PROBES), width, 2), np.float32)
    index = {w: i for i, w in enumerate(vocabulary)}
    for row, sentence in enumerate(PROBE_WORDS):
        for col, word in enumerate(sentence[:max_length]):
            ids[row, col] = index.get(word, 1)
            if word in LEXICON:
                features[row, col] = [max(-1.0, min(1.0, LEXICON[word] / 2.0)), 1.0]
    return {"ids": ids, "lexicon": features}


def test_export_equals_keras_model_on_reference_inputs(word_run):
    task_cls, config, folder = word_run
    run_dir = folder / "run"
    export = serving.load_export(runs.export(task_cls, config, run_dir))
    outputs = export(text=tf.constant(PROBES))
    model = runs.load_checkpoint(run_dir)
    vocabulary = words.read_vocabulary(run_dir / "artifacts" / words.VOCABULARY_FILE)
    reference = _reference_inputs(vocabulary, config.data.max_length)
    graph = task_cls(config, run_dir).inputs(tf.constant(PROBES))  # what tf.data and export run
    np.testing.assert_array_equal(graph["ids"], reference["ids"])
    np.testing.assert_allclose(graph["lexicon"], reference["lexicon"], rtol=1e-6)
    expected = np.asarray(model(reference, training=False))
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["label"], expected.argmax(-1))
    # the lexicon channel matters: without it the answers differ
    blank = dict(reference, lexicon=np.zeros_like(reference["lexicon"]))
    assert not np.allclose(np.asarray(model(blank, training=False)), expected, atol=1e-5)
    assert export(text=tf.constant([], tf.string))["probabilities"].shape == (0, 2)


def test_word_run_learns_and_evaluates(word_run):
    task_cls, config, folder = word_run
    metrics = runs.evaluate(task_cls, config, folder / "run", ("validation",))["validation"]
    assert metrics["accuracy"] > 0.8


def test_word_run_without_vectors_or_lexicon(tmp_path):
    config = load_config(TINY, overrides=["data.tokens=word", "training.progress=none"])
    task = get_task("sentiment")(config, tmp_path / "run")
    model = task.build_model()
    assert model.get_layer("embedding").__class__.__name__ == "Embedding"
    ids = task.inputs(tf.constant(["the plot"]))
    assert ids.dtype == tf.int32 and model(ids).shape == (1, 2)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["model.lexicon.path=vader"], ConfigError, "model.lexicon: needs data.tokens: word"),
        (
            ["model.pretrained_vectors.path=v.txt"],
            ConfigError,
            "model.pretrained_vectors: needs data.tokens: word",
        ),
        (["data.tokens=letters"], ConfigError, "data.tokens"),
        (["model.freeze_vectors=-1"], ConfigError, "model.freeze_vectors"),
        (["data.vocabulary.min_count=0"], ConfigError, "data.vocabulary.min_count"),
        (["model.lexicon.scale=0"], ConfigError, "model.lexicon.scale"),
        (
            ["data.tokens=word", "model.pretrained_vectors.path=missing.txt"],
            DataError,
            "model.pretrained_vectors.path",
        ),
        (
            ["data.tokens=word", "model.lexicon.path=missing.tsv"],
            DataError,
            "model.lexicon.path",
        ),
    ],
)
def test_bad_settings_name_the_key(tmp_path, overrides, error, message):
    with pytest.raises(error, match=message.replace(".", r"\.")):
        config = load_config(TINY, overrides=[f"data.data_dir={tmp_path}", *overrides])
        get_task("sentiment")(config, tmp_path / "run").prepare()


def test_shipped_glove_recipe_loads():
    config = load_config(REPO / "configs" / "sentiment" / "sst2_glove.yaml")
    assert config.data.tokens == "word" and config.model.lexicon.path == "vader"
    assert config.model.pretrained_vectors.path.endswith(GLOVE)
    assert config.data.extra_train  # the base's rt-polarity data


@pytest.mark.realdata
def test_real_glove_rows_and_coverage(tmp_path):
    embeddings = REPO.parent / "shared" / "embeddings"
    datasets = REPO.parent / "shared" / "datasets"
    if not (embeddings / GLOVE).is_file() or not (datasets / "sst2").is_dir():
        pytest.skip(f"real vectors not found: {GLOVE} in <repo>/../shared/embeddings")
    config = load_config(
        REPO / "configs" / "sentiment" / "sst2_glove.yaml",
        overrides=[
            f"data.data_dir={datasets / 'sst2'}",
            "data.extra_train=[]",
            "data.vocabulary.vector_words=1000",
        ],
    )
    task = get_task("sentiment")(config, tmp_path / "run")
    task.prepare()
    vocabulary = task.word_vocabulary.words
    matrix, known = task.word_vocabulary.matrix, task.word_vocabulary.has_vector
    wanted = {"good", "(", "n't", "bad"}
    found = {}
    with gzip.open(embeddings / GLOVE, "rt", encoding="utf-8") as handle:
        for line in handle:
            word, rest = line.split(" ", 1)
            if word in wanted:
                found[word] = np.array(rest.split(), np.float32)
            if len(found) == len(wanted):
                break
    for word, vector in found.items():
        np.testing.assert_array_equal(matrix[vocabulary.index(word)], vector)
    # SST's "-lrb-" is the vectors' "(": the brackets of raw and SST text reach the same row
    ids = task.inputs(tf.constant(["-lrb- good -rrb-", "(good)"]))["ids"].numpy()
    assert ids[0].tolist() == ids[1].tolist() and ids[0, 0] == vocabulary.index("(")
    assert known.mean() > 0.85  # most vocabulary rows start from GloVe (~90% of SST-2 types)


def test_freeze_for_n_epochs_is_an_unfreeze_callback(tmp_path):
    task = get_task("sentiment")(_config(tmp_path, "model.freeze_vectors=2"), tmp_path / "run")
    (callback,) = task.callbacks()
    assert isinstance(callback, UnfreezeAfter) and callback.epochs == 2
    assert task.build_model().get_layer("embedding").initially_frozen
    for setting in ("true", "false"):
        (tmp_path / setting).mkdir()
        config = _config(tmp_path / setting, f"model.freeze_vectors={setting}")
        assert get_task("sentiment")(config, tmp_path / setting / "run").callbacks() == []


def test_word_and_subword_runs_export_as_one_classifier(word_run, tiny_run, tmp_path):
    """`--with-run` across tokenizations: one SavedModel holds both inputs and averages them."""
    task_cls, config, folder = word_run
    word_dir = folder / "run"
    subword_dir = tiny_run("sentiment", tmp_path / "subword")
    out = runs.export(task_cls, config, word_dir, tmp_path / "both", with_runs=(subword_dir,))
    both = serving.load_export(out)(text=tf.constant(PROBES))
    vocabulary = words.read_vocabulary(word_dir / "artifacts" / words.VOCABULARY_FILE)
    reference = _reference_inputs(vocabulary, config.data.max_length)
    by_words = np.asarray(runs.load_checkpoint(word_dir)(reference, training=False))
    subword_config = load_config(subword_dir / "config.yaml")
    by_pieces = reference_probabilities(
        subword_dir, subword_config, runs.load_checkpoint(subword_dir), PROBES
    )
    assert np.abs(by_words - by_pieces).max() > 0.01  # two different classifiers
    np.testing.assert_allclose(both["probabilities"], (by_words + by_pieces) / 2, atol=1e-5)
    np.testing.assert_array_equal(both["label"], ((by_words + by_pieces) / 2).argmax(-1))
    assert (out / "assets" / "labels.txt").read_text().splitlines() == ["negative", "positive"]
