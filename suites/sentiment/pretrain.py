"""Language-model pre-training of the classifier's encoder (Dai & Le 2015, bidirectional as ELMo).

The first `Bidirectional(PeepholeLSTM)` layer and the embedding of the classifier are trained as
two language models on unlabelled text: the forward direction's output at step t predicts token
t+1, the backward direction's predicts token t-1. The SentencePiece model is trained on the same
text. The output folder holds what `model.pretrained_encoder` needs:

    sentencepiece.model   tokenizer for pre-training and fine-tuning (replaces data.vocab_size)
    lm.weights.h5         the language model's weights (embedding, bilstm_0, two output layers)
    pretrain.json         settings, corpus statistics, per-epoch loss/perplexity

    python -m suites.sentiment.pretrain --out runs/sentiment/lm \\
        --sst2 ../shared/datasets/sst2/stsa.binary.train \\
        --text ../shared/datasets/rt-polarity/rt-polarity.pos \\
        --text ../shared/datasets/rt-polarity/rt-polarity.neg \\
        --text ../shared/datasets/multi30k/raw/train.en.gz \\
        --exclude-sst2 ../shared/datasets/sst2/stsa.binary.dev

`--exclude-sst2` drops every unlabelled line that contains one of those sentences or is part of
one (`overlap.OverlapFilter`), so text of the evaluation split never reaches pre-training.
`--max-minutes` ends training after the step that crosses the budget (that epoch is still
validated); the weights kept are those of the epoch with the lowest validation loss.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from shared.data.sources import resolve_under
from shared.data.tokenizer import SentencePieceTokenizer, train_sentencepiece
from shared.layers import Bidirectional, PeepholeLSTM
from suites.sentiment.data import LabeledTexts
from suites.sentiment.inputs import Normalization, make_dataset, normalize_texts
from suites.sentiment.lm_corpus import collect_texts, parse_sources

SPM_FILE = "sentencepiece.model"
WEIGHTS_FILE = "lm.weights.h5"
INFO_FILE = "pretrain.json"


def build_language_model(
    vocab_size: int,
    embedding_dim: int,
    units: int,
    use_peepholes: bool = True,
    dropout: float = 0.2,
) -> keras.Model:
    """Bidirectional LM with the classifier's layer names (`embedding`, `bilstm_0`).

    Returns a model mapping ids `[batch, time]` to logits
    `{"next_token": [batch, time, vocab], "previous_token": [batch, time, vocab]}`.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(ids)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    lstm = PeepholeLSTM(units, return_sequences=True, use_peepholes=use_peepholes, name="lstm_0")
    h = Bidirectional(lstm, merge_mode="concat", name="bilstm_0")(x)
    h = keras.layers.Dropout(dropout, name="output_dropout")(h)
    forward, backward = h[:, :, :units], h[:, :, units:]
    return keras.Model(
        ids,
        {
            "next_token": keras.layers.Dense(vocab_size, name="next_token")(forward),
            "previous_token": keras.layers.Dense(vocab_size, name="previous_token")(backward),
        },
        name="bidirectional_lm",
    )


@keras.saving.register_keras_serializable(package="lstm_suite")
class SampledSoftmaxLoss(keras.layers.Layer):
    """Adds one LM direction's mean cross-entropy per target token to the model's losses.

    Uses the kernel and bias of `output_layer` (the direction's `Dense(vocab)` logits layer, so the
    saved LM is the same as with a full softmax). In training, with `num_sampled > 0`, the loss is
    `tf.nn.sampled_softmax_loss` over `num_sampled` log-uniformly drawn classes (SentencePiece
    ids are roughly frequency-ordered) - the full `units x vocab` product dominated the cost of a
    step; in evaluation (and with `num_sampled == 0`) it is the exact softmax cross-entropy, so
    validation perplexities are exact. Steps whose target is 0 (padding) are ignored.

    Args:
        output_layer: a built or buildable `keras.layers.Dense` with `vocab_size` units.
        num_sampled: negative classes per step in training (0: full softmax).

    Call args:
        hidden: `[batch, time, units]` LSTM outputs.
        targets: `[batch, time]` int target ids, 0 = no target.

    Returns the scalar loss (also added with `add_loss`).
    """

    def __init__(self, output_layer: keras.layers.Dense, num_sampled: int = 0, **kwargs):
        super().__init__(**kwargs)
        if num_sampled < 0:
            raise ValueError(f"num_sampled must be >= 0, got {num_sampled}")
        self.output_layer = output_layer
        self.num_sampled = num_sampled

    def call(self, hidden, targets, training=None):
        # tf ops: TF-only training utility (sampled softmax has no keras.ops equivalent).
        if not self.output_layer.built:
            self.output_layer.build(hidden.shape)
        mask = targets != 0
        inputs = tf.boolean_mask(hidden, mask)
        labels = tf.cast(tf.boolean_mask(targets, mask), tf.int64)
        vocab = self.output_layer.units
        if training and 0 < self.num_sampled < vocab:
            losses = tf.nn.sampled_softmax_loss(
                weights=tf.transpose(self.output_layer.kernel),
                biases=self.output_layer.bias,
                labels=labels[:, None],
                inputs=inputs,
                num_sampled=self.num_sampled,
                num_classes=vocab,
            )
        else:
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels, self.output_layer(inputs)
            )
        loss = tf.math.divide_no_nan(tf.reduce_sum(losses), tf.cast(tf.size(losses), tf.float32))
        self.add_loss(loss)
        return loss

    def get_config(self):
        raise NotImplementedError("SampledSoftmaxLoss is a training-time layer; save the LM")


def build_training_model(language_model: keras.Model, num_sampled: int) -> keras.Model:
    """Wraps `build_language_model`'s model: ids -> the two directions' losses (shared weights)."""
    ids = language_model.input
    targets = lm_targets(ids)
    h = language_model.get_layer("output_dropout").output
    units = h.shape[-1] // 2
    losses = {}
    for name, part in (("next_token", h[:, :, :units]), ("previous_token", h[:, :, units:])):
        losses[name] = SampledSoftmaxLoss(
            language_model.get_layer(name), num_sampled, name=f"{name}_loss"
        )(part, targets[name])
    return keras.Model(ids, losses, name="bidirectional_lm_training")


def lm_targets(ids: tf.Tensor) -> dict[str, tf.Tensor]:
    """Next/previous-token targets of 0-padded ids; 0 (padding) marks steps without a target."""
    pad = keras.ops.zeros_like(ids[:, :1])
    valid = keras.ops.not_equal(ids, 0)  # no target at padding steps
    return {
        "next_token": keras.ops.where(valid, keras.ops.concatenate([ids[:, 1:], pad], axis=1), 0),
        "previous_token": keras.ops.where(
            valid, keras.ops.concatenate([pad, ids[:, :-1]], axis=1), 0
        ),
    }


def transfer_encoder(language_model: keras.Model, classifier: keras.Model) -> None:
    """Copies the `embedding` and `bilstm_0` weights of the LM into the classifier."""
    for name in ("embedding", "bilstm_0"):
        source, target = language_model.get_layer(name), classifier.get_layer(name)
        shapes = [w.shape for w in source.get_weights()]
        wanted = [w.shape for w in target.get_weights()]
        if shapes != wanted:
            raise ValueError(
                f"pretrained {name} weights {shapes} do not fit the classifier's {wanted}: "
                f"model.embedding_dim / lstm_units[0] / use_peepholes must match pre-training"
            )
        target.set_weights(source.get_weights())


def load_pretrained(folder: str | Path) -> tuple[dict, Path]:
    """The settings in `folder/pretrain.json` and the weights path; errors name what is missing."""
    folder = Path(folder)
    for name in (INFO_FILE, SPM_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"model.pretrained_encoder: {folder / name} missing (run suites.sentiment.pretrain)"
            )
    return json.loads((folder / INFO_FILE).read_text()), folder / WEIGHTS_FILE


def token_counts(batches: tf.data.Dataset, vocab_size: int) -> np.ndarray:
    """Occurrences of every id in 0-padded id batches (padding, id 0, is not counted)."""
    counts = np.zeros(vocab_size, np.int64)
    for ids in batches.as_numpy_iterator():
        counts += np.bincount(ids.ravel(), minlength=vocab_size)[:vocab_size]
    counts[0] = 0
    return counts


def unigram_log_probs(counts: np.ndarray, smoothing: float = 0.5) -> np.ndarray:
    """Add-`smoothing` unigram log-probabilities of ids 1..V-1 (id 0, padding: -inf)."""
    smoothed = counts.astype(np.float64) + smoothing
    smoothed[0] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(smoothed / smoothed.sum())


def unigram_perplexity(log_probs: np.ndarray, batches: tf.data.Dataset) -> float:
    """Geometric-mean perplexity of a unigram model over both directions' targets in `batches`.

    The targets are those of `lm_targets` (every token but the last / but the first of a text),
    so the figure is directly comparable with the LM's `val_perplexity`.
    """
    total, count = 0.0, 0
    for ids in batches.as_numpy_iterator():
        targets = lm_targets(tf.constant(ids))
        for direction in targets.values():
            direction = np.asarray(direction)
            picked = direction[direction != 0]
            total -= float(log_probs[picked].sum())
            count += picked.size
    return float(np.exp(total / max(count, 1)))


def init_output_bias(language_model: keras.Model, log_probs: np.ndarray) -> None:
    """Sets both output layers' biases to the unigram log-probabilities.

    With a zero bias the LM starts at the uniform distribution (perplexity = vocabulary size)
    and Adam moves a bias by about one learning rate per step, so for hundreds of steps the
    model spends its capacity on word frequencies; from this start it predicts the unigram
    distribution at step 0 and learns context from the first step. Id 0 (never a target) gets
    a large negative bias instead of -inf.
    """
    bias = np.maximum(log_probs, -30.0).astype("float32")
    for name in ("next_token", "previous_token"):
        language_model.get_layer(name).bias.assign(bias)


def pretrain(
    texts: list[str],
    out_dir: Path,
    vocab_size: int = 8000,
    normalization: Normalization = "ptb",
    max_length: int = 80,
    embedding_dim: int = 300,
    units: int = 150,
    use_peepholes: bool = True,
    dropout: float = 0.2,
    epochs: int = 3,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int = 42,
    num_buckets: int = 8,
    log_every: int = 50,
    max_minutes: float | None = None,
    num_sampled: int = 512,
    unigram_init: bool = True,
    steps_per_epoch: int | None = None,
) -> dict:
    """Trains tokenizer + bidirectional LM on `texts`; writes the files listed in the docstring.

    The weights written are those of the epoch with the lowest validation loss (`best_epoch` in
    pretrain.json). With `max_minutes`, training stops after the step that crosses the budget.
    `num_sampled` > 0 trains with a sampled softmax (`SampledSoftmaxLoss`); validation is exact.
    `unigram_init` starts both output biases at the training text's unigram log-probabilities
    (`init_output_bias`). With `steps_per_epoch`, the training stream repeats and an "epoch"
    (validation + checkpoint) is that many steps. pretrain.json records `unigram_val_perplexity`,
    the perplexity of that unigram model on the validation texts: the baseline an LM that learnt
    context must beat.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    normalized = normalize_texts(texts, normalization)
    train_sentencepiece(
        normalized,
        out_dir / SPM_FILE,
        vocab_size=vocab_size,
        normalization_rule_name="nmt_nfkc_cf",
        hard_vocab_limit=False,
        seed=seed,
    )
    tokenizer = SentencePieceTokenizer.from_file(out_dir / SPM_FILE)
    order = np.random.default_rng(seed).permutation(len(texts))
    held_out = max(1, len(texts) // 50)
    splits = {"validation": order[:held_out], "train": order[held_out:]}

    def dataset(indices, shuffle):
        # Length buckets on the training stream: far less padding for the LSTM and the softmax.
        part = LabeledTexts([texts[i] for i in indices], [0] * len(indices), ("text",))
        ds = make_dataset(
            part,
            tokenizer,
            batch_size,
            max_length,
            normalization,
            shuffle_seed=seed if shuffle else None,
            num_buckets=num_buckets if shuffle else 0,
        )
        return ds.map(lambda ids, _: ids)  # the training model derives its own targets

    model = build_language_model(tokenizer.vocab_size, embedding_dim, units, use_peepholes, dropout)
    log_probs = unigram_log_probs(
        token_counts(dataset(splits["train"], False), tokenizer.vocab_size)
    )
    unigram_val = unigram_perplexity(log_probs, dataset(splits["validation"], False))
    print(f"[pretrain] unigram validation perplexity {unigram_val:.1f}", flush=True)
    if unigram_init:
        init_output_bias(model, log_probs)
    trainer = build_training_model(model, num_sampled)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=5.0))
    started = time.time()
    info = {
        "settings": dict(
            vocab_size=tokenizer.vocab_size,
            normalization=normalization,
            max_length=max_length,
            embedding_dim=embedding_dim,
            units=units,
            use_peepholes=use_peepholes,
            dropout=dropout,
            batch_size=batch_size,
            learning_rate=learning_rate,
            num_sampled=num_sampled,
            seed=seed,
            unigram_init=unigram_init,
            steps_per_epoch=steps_per_epoch,
        ),
        "texts": len(texts),
        "train_texts": len(splits["train"]),
        "validation_texts": len(splits["validation"]),
        "unigram_val_perplexity": unigram_val,
        "history": [],
        "best_epoch": None,
    }
    best = {"val_loss": float("inf")}

    class Save(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if log_every and (batch + 1) % log_every == 0:
                minutes = (time.time() - started) / 60
                loss = float((logs or {}).get("loss", float("nan")))
                print(
                    f"[pretrain] step {batch + 1}: loss {loss:.3f}, {minutes:.1f} min", flush=True
                )
            if max_minutes is not None and time.time() - started > 60 * max_minutes:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            logs["minutes"] = (time.time() - started) / 60
            # loss = sum of both directions' mean cross-entropies: geometric-mean perplexity
            if "val_loss" in logs:
                logs["val_perplexity"] = float(np.exp(logs["val_loss"] / 2))
            info["history"].append(logs)
            val_loss = logs.get("val_loss", float("inf"))
            if info["best_epoch"] is None or val_loss < best["val_loss"]:
                best["val_loss"] = val_loss
                info["best_epoch"] = epoch + 1
                model.save_weights(out_dir / WEIGHTS_FILE)
            (out_dir / INFO_FILE).write_text(json.dumps(info, indent=2))
            print(f"[pretrain] epoch {epoch + 1}: {json.dumps(logs)}", flush=True)

    train_stream = dataset(splits["train"], True)
    if steps_per_epoch is not None:
        train_stream = train_stream.repeat()
    trainer.fit(
        train_stream,
        validation_data=dataset(splits["validation"], False),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[Save()],
        verbose=2,
    )
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder that relative --source / --text / --sst2 / --exclude-sst2 paths are under",
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        help="'<format>:<path>' with format sst2, text or tatoeba (lm_corpus.py); repeatable",
    )
    parser.add_argument(
        "--text", action="append", default=[], help="= --source text:<path>; repeatable"
    )
    parser.add_argument(
        "--sst2", action="append", default=[], help="= --source sst2:<path>; repeatable"
    )
    parser.add_argument(
        "--exclude-sst2",
        action="append",
        default=[],
        help="SST-format file whose sentences must not occur in the corpus; repeatable",
    )
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--embedding-dim", type=int, default=300)
    parser.add_argument("--units", type=int, default=150)
    parser.add_argument("--max-length", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dropout", type=float, default=0.2, help="LM dropout")
    parser.add_argument(
        "--num-sampled", type=int, default=512, help="sampled-softmax classes (0: full softmax)"
    )
    parser.add_argument(
        "--max-minutes", type=float, default=None, help="stop after this much training time"
    )
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="validate and checkpoint every this many steps (default: one pass over the text)",
    )
    parser.add_argument(
        "--no-unigram-init",
        dest="unigram_init",
        action="store_false",
        help="start the output biases at 0 instead of the unigram log-probabilities",
    )
    args = parser.parse_args(argv)
    entries = args.source + [f"sst2:{p}" for p in args.sst2] + [f"text:{p}" for p in args.text]
    if not entries:
        parser.error("no text: give --source, --sst2 or --text")
    exclude = [resolve_under(p, args.data_dir) for p in args.exclude_sst2]
    texts, stats = collect_texts(parse_sources(entries, args.data_dir), exclude)
    print(f"[pretrain] {len(texts)} texts: {json.dumps(stats)}", flush=True)
    info = pretrain(
        texts,
        args.out,
        vocab_size=args.vocab_size,
        max_length=args.max_length,
        embedding_dim=args.embedding_dim,
        units=args.units,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        dropout=args.dropout,
        max_minutes=args.max_minutes,
        num_sampled=args.num_sampled,
        unigram_init=args.unigram_init,
        steps_per_epoch=args.steps_per_epoch,
    )
    info["corpus"] = stats
    (args.out / INFO_FILE).write_text(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
