"""SST-2 probe: what pretrained vectors, a polarity lexicon and model changes buy, rung by rung.

Plain Keras models on the project's word pieces (`shared.data.vectors`, `word_vocab`,
`word_features`, `lexicon`, `pretrained_embedding`), trained on SST-2 train (optionally plus
rt-polarity with every line that contains an SST-2 dev sentence removed) and scored on SST-2 dev
after a fixed number of epochs (the best epoch is printed too, for information only).

    python benchmarks/sentiment_probe.py --data DIR --vectors FILE.gz --rung A,B [--seed 1,2,3]
    python benchmarks/sentiment_probe.py ... --list        # the rungs

`DIR` holds `sst2/` and `rt-polarity/`. One JSON line per run is appended to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from shared.data.lexicon import read_lexicon  # noqa: E402
from shared.data.pipeline import shuffle_and_bucket  # noqa: E402
from shared.data.pretrained_embedding import PretrainedEmbedding, UnfreezeAfter  # noqa: E402
from shared.data.vectors import read_vectors  # noqa: E402
from shared.data.word_features import WordEncoder, ptb_words_py  # noqa: E402
from shared.data.word_vocab import (  # noqa: E402
    build_vocabulary,
    count_words,
    coverage,
    embedding_matrix,
)


@dataclass(frozen=True)
class Rung:
    """One model/input setting of the ladder."""

    vectors: bool = True
    freeze: int = 0  # epochs with the pretrained rows frozen (0: tuned from the start; 99: frozen)
    lexicon: bool = False
    arch: str = "bilstm"  # bilstm | dan | cnn
    pooling: str = "last"  # last | max (bilstm)
    units: int = 150
    embed_dropout: float = 0.0
    dropout: float = 0.5
    rt: bool = False
    epochs: int = 6
    vector_words: int = 50_000
    dim: int = 50  # embedding size without vectors


RUNGS = {
    # the ladder on a BiLSTM(150) with last states (the starting point)
    "rand": Rung(vectors=False),
    "tuned": Rung(),
    "frozen": Rung(freeze=99),
    # the ladder on a DAN (cheap: every rung in minutes)
    "dan_rand": Rung(arch="dan", vectors=False, epochs=5),
    "dan_frozen": Rung(arch="dan", freeze=99, epochs=5),
    "dan_tuned": Rung(arch="dan", epochs=5),
    "dan_f3": Rung(arch="dan", freeze=3, epochs=5),
    "dan_lex": Rung(arch="dan", lexicon=True, epochs=5),
    "dan_frozen_lex": Rung(arch="dan", freeze=99, lexicon=True, epochs=5),
    "dan_f3_lex": Rung(arch="dan", freeze=3, lexicon=True, epochs=5),
    # Kim-style CNN on the same inputs (cnn_rand: Kim's CNN-rand, 300-d random embeddings)
    "cnn_rand": Rung(arch="cnn", vectors=False, dim=300, epochs=4),
    "cnn_rand_rt": Rung(arch="cnn", vectors=False, dim=300, rt=True, epochs=4),
    "cnn_lex": Rung(arch="cnn", lexicon=True, embed_dropout=0.3, epochs=4),
    "cnn_f2_lex": Rung(arch="cnn", lexicon=True, embed_dropout=0.3, freeze=2, epochs=4),
    # model changes on the BiLSTM: max pooling, embedding dropout, lexicon
    "max_edrop": Rung(pooling="max", embed_dropout=0.3, units=100, epochs=4),
    "max_lex_edrop": Rung(pooling="max", lexicon=True, embed_dropout=0.3, units=100, epochs=4),
    "max_lex_edrop_f2": Rung(
        pooling="max", lexicon=True, embed_dropout=0.3, units=100, epochs=4, freeze=2
    ),
    "max_lex_edrop_rt": Rung(
        pooling="max", lexicon=True, embed_dropout=0.3, units=100, rt=True, epochs=3
    ),
}


def letters(text: str) -> str:
    """Lower-case letters only (PTB brackets undone), for overlap matching."""
    text = text.lower().replace("-lrb-", "").replace("-rrb-", "")
    return re.sub(r"[^a-z]", "", text)


def read_data(data: Path) -> dict:
    """SST-2 train/dev and dev-filtered rt-polarity as texts and labels."""

    def sst(name):
        lines = (data / "sst2" / name).read_text(encoding="utf-8").splitlines()
        rows = [line.split(" ", 1) for line in lines]
        return [t for _, t in rows], [int(label) for label, _ in rows]

    train, dev = sst("stsa.binary.train"), sst("stsa.binary.dev")
    dev_keys = [letters(t) for t in dev[0]]
    exact = set(dev_keys)
    long_keys = [k for k in dev_keys if len(k) >= 15]
    rt_texts, rt_labels = [], []
    for name, label in (("rt-polarity.neg", 0), ("rt-polarity.pos", 1)):
        text = (data / "rt-polarity" / name).read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            key = letters(line)
            if key in exact or any(k in key for k in long_keys):
                continue
            rt_texts.append(line.strip())
            rt_labels.append(label)
    return {"train": train, "dev": dev, "rt": (rt_texts, rt_labels)}


def prepared(args) -> dict:
    """Tokens, vectors and lexicon, cached in `--cache` between runs."""
    cache = Path(args.cache)
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    data = read_data(Path(args.data))
    words = {k: ptb_words_py(v[0]) for k, v in data.items()}
    vectors = read_vectors(args.vectors, progress=False)
    out = {"data": data, "words": words, "vectors": vectors, "lexicon": read_lexicon()}
    cache.write_bytes(pickle.dumps(out))
    return out


class MaskedMax(layers.Layer):
    """Max over time of the unmasked steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is not None:
            x = ops.where(ops.expand_dims(mask, -1), x, -1e9)
        return ops.max(x, axis=1)

    def compute_mask(self, x, mask=None):
        return None


class MaskedMean(layers.Layer):
    """Mean over time of the unmasked steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        m = ops.expand_dims(ops.cast(mask, x.dtype), -1)
        return ops.sum(x * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)

    def compute_mask(self, x, mask=None):
        return None


def build_model(rung: Rung, vocab_size: int, matrix, known) -> keras.Model:
    """ids (+ lexicon features) -> embedding -> encoder -> 2-class softmax."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    inputs = {"ids": ids}
    dim = matrix.shape[1] if rung.vectors else rung.dim
    embed = PretrainedEmbedding(
        vocab_size,
        dim,
        vectors=matrix if rung.vectors else None,
        has_vector=known if rung.vectors else None,
        frozen=rung.freeze > 0,
    )
    x = embed(ids)
    if rung.lexicon:
        lex = keras.Input((None, 2), name="lexicon")
        inputs["lexicon"] = lex
        x = layers.Concatenate()([x, lex])
    if rung.embed_dropout:
        x = layers.Dropout(rung.embed_dropout)(x)
    if rung.arch == "bilstm":
        seq = rung.pooling == "max"
        x = layers.Bidirectional(layers.LSTM(rung.units, return_sequences=seq))(x)
        x = MaskedMax()(x) if seq else x
    elif rung.arch == "dan":
        x = MaskedMean()(x)
        for _ in range(2):
            x = layers.Dropout(rung.dropout)(layers.Dense(300, activation="relu")(x))
    else:  # Kim-style CNN; padding rows are zero-masked by hand (Conv1D ignores masks)
        pad = ops.cast(ops.expand_dims(ops.not_equal(ids, 0), -1), x.dtype)
        x = layers.Lambda(lambda t: t[0] * t[1])([x, pad])
        x = layers.Concatenate()(
            [
                layers.GlobalMaxPooling1D()(
                    layers.Conv1D(100, k, padding="same", activation="relu")(x)
                )
                for k in (3, 4, 5)
            ]
        )
    x = layers.Dropout(rung.dropout)(x)
    out = layers.Dense(2, activation="softmax")(x)
    model = keras.Model(inputs, out)
    model.compile(
        keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def encode(encoder: WordEncoder, texts: list[str], max_length: int = 60):
    ids, lex = encoder.encode(tf.constant(texts), max_length)
    return ids.numpy(), lex.numpy()


def batches(ids, lex, labels, lexicon: bool, seed: int | None) -> tf.data.Dataset:
    """Length-bucketed batches of 50 (shuffled when `seed` is given), padded per batch."""
    lengths = np.maximum((ids != 0).sum(axis=1), 1).astype(np.int32)
    features = {"ids": ids, "lexicon": lex} if lexicon else {"ids": ids}
    ds = tf.data.Dataset.from_tensor_slices((features, lengths, np.asarray(labels, np.int32)))
    ds = ds.map(lambda f, n, y: ({k: v[:n] for k, v in f.items()}, y))
    if seed is None:
        return ds.padded_batch(50).prefetch(2)
    return shuffle_and_bucket(ds, lambda x, y: tf.shape(x["ids"])[0], 50, seed).prefetch(2)


def run(args, rung: Rung) -> dict:
    keras.utils.set_random_seed(args.seed)
    p = prepared(args)
    data, words, vectors = p["data"], p["words"], p["vectors"]
    train_texts, train_labels = list(data["train"][0]), list(data["train"][1])
    train_words = list(words["train"])
    if rung.rt:
        train_texts += data["rt"][0]
        train_labels += data["rt"][1]
        train_words += words["rt"]
    counts = count_words(train_words)
    extra = vectors.words[: rung.vector_words] if rung.vectors else []
    vocabulary = build_vocabulary(counts, extra)
    matrix, known = embedding_matrix(vocabulary, vectors, seed=args.seed)
    dev_counts = count_words(words["dev"])
    cov = {
        "train_vectors": str(coverage(counts, vectors.index)),
        "dev_vocab": str(coverage(dev_counts, set(vocabulary))),
    }
    encoder = WordEncoder(vocabulary, p["lexicon"])
    x_ids, x_lex = encode(encoder, train_texts)
    d_ids, d_lex = encode(encoder, data["dev"][0])
    model = build_model(rung, len(vocabulary), matrix, known)
    callbacks = [UnfreezeAfter(rung.freeze)] if rung.vectors and rung.freeze else []
    start = time.time()
    hist = model.fit(
        batches(x_ids, x_lex, train_labels, rung.lexicon, args.seed),
        epochs=rung.epochs,
        verbose=0,
        validation_data=batches(d_ids, d_lex, data["dev"][1], rung.lexicon, None),
        callbacks=callbacks,
    )
    accs = [round(100 * a, 2) for a in hist.history["val_accuracy"]]
    return {
        "rung": args.rung,
        "seed": args.seed,
        "dev_acc": accs[-1],
        "best": max(accs),
        "best_epoch": int(np.argmax(accs)) + 1,
        "per_epoch": accs,
        "train_s": round(time.time() - start),
        "vocab": len(vocabulary),
        "train_size": len(train_texts),
        "coverage": cov,
        "settings": asdict(rung),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets")
    parser.add_argument("--vectors", default="../shared/embeddings/glove.6B.50d.top200k.txt.gz")
    parser.add_argument("--rung", default="tuned", help="rung names, comma-separated")
    parser.add_argument("--seed", default="1", help="seeds, comma-separated")
    parser.add_argument(
        "--cache", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "sentiment_probe.pkl")
    )
    parser.add_argument("--out", default="sentiment_probe.jsonl")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, rung in RUNGS.items():
            print(name, rung)
        return
    names, seeds = args.rung.split(","), [int(v) for v in args.seed.split(",")]
    for name in names:
        for seed in seeds:
            args.rung, args.seed = name, seed
            result = run(args, RUNGS[name])
            line = json.dumps(result)
            print(line, flush=True)
            with open(args.out, "a") as handle:
                handle.write(line + "\n")


if __name__ == "__main__":
    main()
