"""rt-polarity (MR) k-fold cross-validation: this suite's recipe vs a Kim-style CNN, per fold.

For each fold k, the suite's recipe is trained through the product API (`shared.training.loop.
train` on the config with `data.cv_folds` / `data.cv_fold: k`, as `lstm-suite train` does) and
scored on the fold's test split (`shared.runs.evaluate`, as `lstm-suite evaluate --split test`
does). Then a Kim (2014) CNN (filter widths 3, 4, 5 x 100 feature maps, ReLU, max over time,
dropout 0.5, max-norm 3 on the output weights) is trained on the same inputs: the ids the suite's
run made (its SentencePiece pieces, or its words with their vectors and lexicon features), the
same train/validation/test splits, its best epoch chosen by validation accuracy.

Variants: `rand` = configs/sentiment/rt_polarity.yaml (no pretrained vectors; Kim's CNN-rand:
76.1), `vectors` = configs/sentiment/rt_polarity_glove.yaml (GloVe words + lexicon; Kim's
CNN-static 81.0, non-static 81.5, with 300-d word2vec).

    python benchmarks/sentiment_cv.py --data-dir ../shared/datasets/rt-polarity \\
        --variants rand --folds 0-9 --runs runs/sentiment/cv --out runs/sentiment/cv/rand.json

Per fold, `<runs>/<variant>/fold<k>/` is the suite's run directory (checkpoints, eval/test/), its
`cnn/` folder holds the CNN's metrics.json and predictions.tsv, and `cv_result.json` both
accuracies; a fold with a `cv_result.json` of the same config is reused, so an interrupted
command continues where it stopped. `--quick` shrinks models and epochs (for tests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

from shared.log import configure, get_logger, quiet_tensorflow

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {
    "rand": REPO / "configs" / "sentiment" / "rt_polarity.yaml",
    "vectors": REPO / "configs" / "sentiment" / "rt_polarity_glove.yaml",
}
KIM = {"rand": "Kim 2014 CNN-rand 76.1", "vectors": "Kim 2014 CNN-static 81.0 / non-static 81.5"}
QUICK = [
    "training.epochs=1",
    "data.vocab_size=60",
    "model.embedding_dim=8",
    "model.lstm_units=[4]",
    "data.max_length=12",
]
RESULT_FILE = "cv_result.json"
log = get_logger("benchmarks.sentiment_cv")


def parse_folds(text: str, total: int) -> list[int]:
    """`"0,2,5-7"` -> [0, 2, 5, 6, 7]; each must be a fold of `total`."""
    folds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            folds += range(int(low), int(high or low) + 1)
    except ValueError:
        folds = []
    if not folds or any(not 0 <= k < total for k in folds):
        raise SystemExit(f"--folds {text}: expected folds in 0..{total - 1}, e.g. 0,1 or 0-9")
    return folds


def fold_config(variant: str, fold: int, args: argparse.Namespace):
    """The variant's config with fold `fold` of `args.total` as the test split."""
    from shared.config import load_config

    overrides = [
        f"data.cv_folds={args.total}",
        f"data.cv_fold={fold}",
        "training.progress=epoch",
        "training.tensorboard=false",
        *(QUICK if args.quick else []),
        *args.set,
    ]
    return load_config(CONFIGS[variant], overrides, data_dir=args.data_dir, task="sentiment")


def build_cnn(vocab_size: int, dim: int, vectors=None, lexicon: bool = False, filters: int = 100):
    """Kim's CNN: embedding (+ lexicon channels) -> Conv1D 3/4/5 -> max over time -> softmax."""
    import keras
    from keras import layers, ops

    ids = keras.Input((None,), dtype="int32", name="ids")
    init = "uniform" if vectors is None else keras.initializers.Constant(vectors)
    x = layers.Embedding(vocab_size, dim, embeddings_initializer=init, name="embedding")(ids)
    inputs = ids
    if lexicon:
        features = keras.Input((None, 2), name="lexicon")
        inputs = {"ids": ids, "lexicon": features}
        x = layers.Concatenate()([x, features])
    valid = ops.expand_dims(ops.cast(ops.not_equal(ids, 0), x.dtype), -1)
    # ReLU outputs are >= 0, so zeroing the padding steps leaves the max over real tokens.
    pooled = [
        layers.GlobalMaxPooling1D()(
            layers.Conv1D(filters, width, padding="same", activation="relu")(x) * valid
        )
        for width in (3, 4, 5)
    ]
    x = layers.Dropout(0.5)(layers.Concatenate()(pooled))
    outputs = layers.Dense(2, activation="softmax", kernel_constraint=keras.constraints.MaxNorm(3))
    model = keras.Model(inputs, outputs(x))
    model.compile(
        keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def run_cnn(task, out_dir: Path, epochs: int, filters: int) -> float:
    """Trains the CNN on `task`'s splits and inputs; writes `out_dir`; returns test accuracy."""
    import keras
    import numpy as np

    from shared.files import atomic_write_json, atomic_write_text
    from suites.sentiment.data import make_inputs_dataset
    from suites.sentiment.model import predict_texts

    keras.utils.set_random_seed(task.config.seed)
    d, m = task.config.data, task.config.model
    vectors = task.word_vocabulary.matrix if m.uses_vectors else None
    dim = vectors.shape[1] if vectors is not None else m.embedding_dim
    model = build_cnn(task.vocab_size, dim, vectors, m.uses_lexicon, filters)
    train = make_inputs_dataset(
        task.splits["train"], task.inputs, 50, task.config.seed, d.num_buckets
    )
    validation = make_inputs_dataset(task.splits["validation"], task.inputs, 50)
    stop = keras.callbacks.EarlyStopping(
        "val_accuracy", patience=3, mode="max", restore_best_weights=True
    )
    model.fit(train, validation_data=validation, epochs=epochs, callbacks=[stop], verbose=2)
    test = task.splits["test"]
    predicted = predict_texts(model, task.inputs, test.texts).argmax(axis=-1)
    accuracy = float(np.mean(predicted == np.asarray(test.labels)))
    names = task.label_names
    rows = ["text\treference\tpredicted"] + [
        f"{t}\t{names[y]}\t{names[p]}" for t, y, p in zip(test.texts, test.labels, predicted)
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "predictions.tsv", "\n".join(rows) + "\n")
    atomic_write_json(out_dir / "metrics.json", {"accuracy": accuracy, "examples": len(test)})
    return accuracy


def run_fold(variant: str, fold: int, args: argparse.Namespace) -> dict:
    """Suite recipe then CNN on fold `fold`; reuses a finished fold of the same config."""
    from shared import runs
    from shared.errors import UsageError
    from shared.files import atomic_write_json
    from shared.training import loop
    from suites.sentiment.task import SentimentTask

    config = fold_config(variant, fold, args)
    run_dir = args.runs / variant / f"fold{fold}"
    record_path = run_dir / RESULT_FILE
    settings = {"config": config.to_dict(), "cnn_epochs": args.cnn_epochs, "filters": args.filters}
    if record_path.exists():
        record = json.loads(record_path.read_text())
        if record["settings"] != json.loads(json.dumps(settings)):
            raise UsageError(f"{record_path}: a result of other settings; use another --runs")
        log.info("%s fold %d: reusing %s", variant, fold, record_path)
        return record
    start = time.time()
    with contextlib.redirect_stdout(sys.stderr):  # Keras' epoch lines: stdout keeps the table
        loop.train(SentimentTask, config, run_dir)
        lstm = runs.evaluate(SentimentTask, config, run_dir, ("test",))["test"]["accuracy"]
        middle = time.time()
        task = SentimentTask(config, run_dir)
        cnn = run_cnn(task, run_dir / "cnn", args.cnn_epochs, args.filters)
    record = {
        "variant": variant,
        "fold": fold,
        "lstm": lstm,
        "cnn": cnn,
        "lstm_seconds": round(middle - start, 1),
        "cnn_seconds": round(time.time() - middle, 1),
        "settings": settings,
    }
    atomic_write_json(record_path, record)
    return record


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), in percent."""
    percent = [100 * v for v in values]
    sd = statistics.stdev(percent) if len(percent) > 1 else 0.0
    return statistics.fmean(percent), sd


def report(variant: str, records: list[dict], total: int) -> list[str]:
    """The printed table of one variant: a row per fold, then mean ± s.d."""
    folds = ",".join(str(r["fold"]) for r in records)
    lines = [
        f"{variant}: folds {folds} of {total}, test accuracy %",
        "fold  lstm    cnn     lstm_min  cnn_min",
    ]
    for r in records:
        lines.append(
            f"{r['fold']:>4}  {100 * r['lstm']:6.2f}  {100 * r['cnn']:6.2f}  "
            f"{r['lstm_seconds'] / 60:8.1f}  {r['cnn_seconds'] / 60:7.1f}"
        )
    (lm, ls), (cm, cs) = (mean_sd([r[k] for r in records]) for k in ("lstm", "cnn"))
    lines.append(f"mean  lstm {lm:.2f} ± {ls:.2f}  cnn {cm:.2f} ± {cs:.2f}  ({KIM[variant]})")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder of rt-polarity.pos/.neg")
    parser.add_argument("--variants", default="rand", help="rand, vectors or rand,vectors")
    parser.add_argument("--total", type=int, default=10, help="number of folds (data.cv_folds)")
    parser.add_argument("--folds", default=None, help="folds to run, e.g. 0,1 or 0-9 (all)")
    parser.add_argument("--runs", type=Path, default=Path("runs/sentiment/cv"))
    parser.add_argument("--out", type=Path, default=None, help="write all records as JSON")
    parser.add_argument("--cnn-epochs", type=int, default=10, help="CNN epochs (early stop: 3)")
    parser.add_argument("--filters", type=int, default=100, help="CNN feature maps per width")
    parser.add_argument("--quick", action="store_true", help="tiny models, 1 epoch (tests)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    args.variants = args.variants.split(",")
    if any(v not in CONFIGS for v in args.variants):
        parser.error(f"--variants: each of {', '.join(CONFIGS)}")
    args.folds = parse_folds(args.folds or f"0-{args.total - 1}", args.total)
    if args.quick:
        args.cnn_epochs, args.filters = 1, 4
    return args


def main(argv: list[str] | None = None) -> int:
    from shared.errors import UsageError

    args = parse_args(argv)
    quiet_tensorflow()
    configure()
    try:
        results = run_all(args)
    except UsageError as err:  # a bad config value, data folder or --runs: one line
        print(f"sentiment_cv: error: {err}", file=sys.stderr)
        return 2
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def run_all(args: argparse.Namespace) -> dict[str, list[dict]]:
    """Every fold of every variant; prints each variant's table when its folds are done."""
    results = {}
    for variant in args.variants:
        records = []
        for fold in args.folds:
            records.append(run_fold(variant, fold, args))
            done = records[-1]
            log.info("%s fold %d: lstm %.4f, cnn %.4f", variant, fold, done["lstm"], done["cnn"])
        results[variant] = records
        print("\n".join(report(variant, records, args.total)), flush=True)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
