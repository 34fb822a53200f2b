"""The raw-string SavedModel: `serving_default(text) -> {probabilities, label}`.

The SentencePiece model and the text normalisation are part of the graph (see `inputs.encode`),
so the export needs nothing but `import tensorflow_text` before `tf.saved_model.load`. The class
names are in `assets/labels.txt`, one per line, line i = class id i.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from shared.data.tokenizer import SentencePieceTokenizer
from suites.sentiment.inputs import Normalization, encode

LABELS_ASSET = "labels.txt"


class SentimentServer(tf.Module):
    """Wraps tokenizer + classifier behind a `tf.string [None]` signature.

    Args:
        model: the trained classifier (ids -> probabilities).
        tokenizer: the SentencePiece tokenizer it was trained with.
        labels_file: text file with one class name per line (copied into the export's assets).
        max_length: tokens kept per text (as in training).
        normalization: text normalisation rule (as in training).
    """

    def __init__(
        self,
        model: keras.Model,
        tokenizer: SentencePieceTokenizer,
        labels_file: str | Path,
        max_length: int,
        normalization: Normalization,
    ):
        super().__init__(name="sentiment_server")
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tf.saved_model.Asset(str(labels_file))
        self.max_length = max_length
        self.normalization = normalization

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Classifies raw texts: `probabilities` float32 [batch, classes], `label` int64 [batch]."""
        ids = encode(self.tokenizer, text, self.max_length, self.normalization)
        probabilities = tf.cast(self.model(ids, training=False), tf.float32)
        return {"probabilities": probabilities, "label": tf.argmax(probabilities, axis=-1)}


def export_savedmodel(server: SentimentServer, out_dir: str | Path) -> Path:
    """Saves `server` to `out_dir` with `serving_default` = `server.serve`."""
    out_dir = Path(out_dir)
    tf.saved_model.save(server, str(out_dir), signatures={"serving_default": server.serve})
    return out_dir


def read_labels(export_dir: str | Path) -> list[str]:
    """The class names stored in an export."""
    path = Path(export_dir) / "assets" / LABELS_ASSET
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a sentiment export (no assets/{LABELS_ASSET})")
    return path.read_text(encoding="utf-8").splitlines()
