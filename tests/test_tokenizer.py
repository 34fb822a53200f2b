"""Tests for shared.data.tokenizer against the sentencepiece library's own processor."""

from __future__ import annotations

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from shared.data.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SentencePieceTokenizer,
    train_sentencepiece,
)

CORPUS = [
    "Ein Mann fährt Fahrrad.",
    "Eine Frau liest ein Buch im Park.",
    "Zwei Hunde spielen im Schnee.",
    "A man rides a bicycle.",
    "A woman reads a book in the park.",
    "Two dogs play in the snow.",
    "Kinder spielen Fußball auf der Straße.",
    "Children play football in the street.",
] * 20

SENTENCES = ["Ein Mann liest.", "Two dogs ride a bicycle in the park.", "Fußball!"]


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def model_path(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("spm") / f"{request.param}.model"
    return train_sentencepiece(
        CORPUS, path, vocab_size=60, model_type=request.param, hard_vocab_limit=False
    )


def test_special_ids_and_vocab(model_path):
    tok = SentencePieceTokenizer.from_file(model_path)
    reference = spm.SentencePieceProcessor(model_file=str(model_path))
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
    assert tok.vocab_size == reference.get_piece_size()
    assert [tok.id_to_piece(i) for i in range(tok.vocab_size)] == [
        reference.id_to_piece(i) for i in range(tok.vocab_size)
    ]


def test_tokenize_matches_sentencepiece(model_path):
    tok = SentencePieceTokenizer.from_file(model_path)
    reference = spm.SentencePieceProcessor(model_file=str(model_path))
    ids = tok.tokenize(tf.constant(SENTENCES), add_bos=True, add_eos=True)
    expected = [[BOS_ID, *reference.encode(s), EOS_ID] for s in SENTENCES]
    assert ids.to_list() == expected
    plain = tok.tokenize(tf.constant(SENTENCES))
    assert plain.to_list() == [reference.encode(s) for s in SENTENCES]
    single = tok.tokenize(tf.constant(SENTENCES[0]), add_eos=True)
    assert single.numpy().tolist() == reference.encode(SENTENCES[0]) + [EOS_ID]


def test_detokenize_ragged_dense_and_eos_cut(model_path):
    tok = SentencePieceTokenizer.from_file(model_path)
    reference = spm.SentencePieceProcessor(model_file=str(model_path))
    ids = tok.tokenize(tf.constant(SENTENCES), add_bos=True, add_eos=True)
    expected = [reference.decode(reference.encode(s)) for s in SENTENCES]
    assert [s.decode() for s in tok.detokenize(ids).numpy()] == expected
    # Dense, padded, with garbage after eos (as a decoder emits it): cut at the first eos.
    dense = ids.to_tensor(default_value=PAD_ID).numpy()
    garbage = np.concatenate([dense, np.full((len(SENTENCES), 3), 7, dense.dtype)], axis=1)
    for row, length in zip(garbage, ids.row_lengths().numpy(), strict=True):
        row[length : length + 3] = 7
    assert [s.decode() for s in tok.detokenize(garbage).numpy()] == expected
    kept = tok.detokenize(garbage, stop_at_eos=False).numpy()
    assert kept[0].decode() != expected[0]  # the garbage tokens are decoded when not cut
    assert tok.detokenize(ids[0]).numpy().decode() == expected[0]


def test_training_is_deterministic(tmp_path):
    first = train_sentencepiece(CORPUS, tmp_path / "a.model", vocab_size=50, hard_vocab_limit=False)
    second = train_sentencepiece(
        CORPUS, tmp_path / "b.model", vocab_size=50, hard_vocab_limit=False
    )
    assert first.read_bytes() == second.read_bytes()


def test_case_folding_normalizer(tmp_path):
    path = train_sentencepiece(
        CORPUS,
        tmp_path / "cf.model",
        vocab_size=50,
        normalization_rule_name="nmt_nfkc_cf",
        hard_vocab_limit=False,
    )
    tok = SentencePieceTokenizer.from_file(path)
    upper, lower = tok.tokenize(tf.constant(["EIN MANN", "ein mann"])).to_list()
    assert upper == lower


def test_inside_tf_data_and_saved_model(model_path, tmp_path):
    tok = SentencePieceTokenizer.from_file(model_path)
    reference = spm.SentencePieceProcessor(model_file=str(model_path))
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES).map(lambda s: tok.tokenize(s, add_eos=True))
    assert [x.numpy().tolist() for x in ds] == [reference.encode(s) + [EOS_ID] for s in SENTENCES]

    class RoundTrip(tf.Module):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, text):
            ids = self.tokenizer.tokenize(text, add_bos=True, add_eos=True)
            return {"ids": ids.to_tensor(), "text": self.tokenizer.detokenize(ids.to_tensor())}

    tf.saved_model.save(RoundTrip(tok), str(tmp_path / "export"))
    loaded = tf.saved_model.load(str(tmp_path / "export"))  # the model proto travels in the graph
    out = loaded(tf.constant(SENTENCES))
    expected = [[BOS_ID, *reference.encode(s), EOS_ID] for s in SENTENCES]
    width = max(map(len, expected))
    assert out["ids"].numpy().tolist() == [e + [PAD_ID] * (width - len(e)) for e in expected]
    assert [s.decode() for s in out["text"].numpy()] == [
        reference.decode(reference.encode(s)) for s in SENTENCES
    ]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="vocab_size"):
        train_sentencepiece(CORPUS, tmp_path / "x.model", vocab_size=3)
    with pytest.raises(ValueError, match="model_type"):
        train_sentencepiece(CORPUS, tmp_path / "x.model", vocab_size=50, model_type="wordpiece")
    with pytest.raises(ValueError, match="no non-empty"):
        train_sentencepiece(["", "  "], tmp_path / "x.model", vocab_size=50)
    with pytest.raises(ValueError, match="x.model"):  # alphabet larger than the vocabulary
        train_sentencepiece(CORPUS, tmp_path / "x.model", vocab_size=8)
    with pytest.raises(FileNotFoundError, match="missing.model"):
        SentencePieceTokenizer.from_file(tmp_path / "missing.model")
    with pytest.raises(ValueError, match="model"):
        SentencePieceTokenizer(b"")


def test_split_digits_makes_one_piece_per_digit(tmp_path):
    # Numbers repeated often enough that, without split_digits, they become whole pieces.
    corpus = [f"am {n} und {n + 1}" for n in (2021, 1999, 2021, 350, 2021)] * 40
    whole = train_sentencepiece(corpus, tmp_path / "w.model", vocab_size=40, hard_vocab_limit=False)
    split = train_sentencepiece(
        corpus, tmp_path / "s.model", vocab_size=40, hard_vocab_limit=False, split_digits=True
    )
    pieces = {
        name: spm.SentencePieceProcessor(model_file=str(path)).encode("2021", out_type=str)
        for name, path in (("whole", whole), ("split", split))
    }
    assert [p.lstrip("▁") for p in pieces["split"] if p.lstrip("▁")] == ["2", "0", "2", "1"]
    assert len(pieces["whole"]) < len(pieces["split"])  # the option is what made the difference


def test_two_models_in_one_saved_model_stay_apart(tmp_path):
    # tf-text's SentencePiece op keeps its model in a kernel-owned resource; without a name per
    # model, a loaded SavedModel ran the first model for both (a translation export with
    # separate vocabularies detokenized English ids with the German model).
    german = train_sentencepiece(CORPUS[:3], tmp_path / "de.model", 40, hard_vocab_limit=False)
    english = train_sentencepiece(CORPUS[3:6], tmp_path / "en.model", 40, hard_vocab_limit=False)
    module = tf.Module()
    module.de = SentencePieceTokenizer.from_file(german)
    module.en = SentencePieceTokenizer.from_file(english)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def both(text):
        return {
            "de": module.de.tokenize(text).to_tensor(default_value=-1),
            "en": module.en.tokenize(text).to_tensor(default_value=-1),
        }

    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": both})
    loaded = tf.saved_model.load(str(tmp_path / "sm")).signatures["serving_default"]
    out = loaded(text=tf.constant(["Two dogs play in the park."]))
    for lang, path in (("de", german), ("en", english)):
        expected = spm.SentencePieceProcessor(model_file=str(path)).encode(
            "Two dogs play in the park."
        )
        assert [i for i in out[lang].numpy()[0] if i >= 0] == expected, lang


def test_eager_calls_survive_a_seed_reset(model_path):
    """`keras.utils.set_random_seed` drops tf-text's kernel-owned resource (tensorflow/text#570);
    the tokenizer makes a new one instead of failing with NotFoundError."""
    import keras

    tok = SentencePieceTokenizer.from_file(model_path)
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    text = "the quick brown fox"
    before = tok.tokenize(tf.constant([text]))
    keras.utils.set_random_seed(1)
    assert tok.tokenize(tf.constant([text])).to_list() == before.to_list() == [sp.encode(text)]
    keras.utils.set_random_seed(2)
    assert tok.detokenize(before).numpy().tolist() == [sp.decode(sp.encode(text)).encode()]
