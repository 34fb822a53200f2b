"""The sentiment export: `serving_default(text) -> {probabilities, label}` on raw strings.

The SentencePiece model and the text normalisation are part of the graph (`text.encode`), so
the export needs nothing but `import tensorflow_text` before `tf.saved_model.load`. The class
names are in `assets/labels.txt`, one per line, line i = class id i.

Edge inputs: an empty batch gives empty outputs (`[0, classes]` and `[0]`); an empty or blank
string is a fully masked row and gets a valid (near-prior) answer; a text longer than
`data.max_length` pieces is truncated to its head; bytes that are not UTF-8 become U+FFFD.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from shared.data.tokenizer import SentencePieceTokenizer
from shared.serving import ServingModule
from suites.sentiment.config import Normalization
from suites.sentiment.text import encode

LABELS_ASSET = "labels.txt"


class SentimentServer(ServingModule):
    """Tokenizer + classifier behind a `tf.string [None]` signature.

    Args:
        model: the trained classifier (ids -> probabilities).
        tokenizer: the SentencePiece tokenizer it was trained with.
        label_names: class names, index = class id (written as `assets/labels.txt`).
        max_length: tokens kept per text (as in training).
        normalization: text normalisation rule (as in training).
    """

    def __init__(
        self,
        model: keras.Model,
        tokenizer: SentencePieceTokenizer,
        label_names: list[str],
        max_length: int,
        normalization: Normalization,
    ):
        super().__init__(name="sentiment_server")
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.normalization = normalization
        self.add_asset(LABELS_ASSET, "".join(f"{name}\n" for name in label_names))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Classifies raw texts: `probabilities` float32 [batch, classes], `label` int64 [batch]."""
        ids = encode(self.tokenizer, text, self.max_length, self.normalization)
        probabilities = tf.cast(self.model(ids, training=False), tf.float32)
        return {"probabilities": probabilities, "label": tf.argmax(probabilities, axis=-1)}
