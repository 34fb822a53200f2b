"""The toy export: `serving_default(text) -> {label, probability}` on raw 0/1 strings."""

from __future__ import annotations

import keras
import tensorflow as tf

from shared.serving import ServingModule

LABELS = ["no", "yes"]  # index = label
LABELS_ASSET = "labels.txt"


class ToyServer(ServingModule):
    """Strings of 0/1 in, the label ("yes": more ones in the first half) and its probability out.

    Args:
        model: the trained classifier.
    """

    def __init__(self, model: keras.Model):
        super().__init__(name="toy_server")
        self.model = model
        asset = self.add_asset(LABELS_ASSET, "".join(f"{n}\n" for n in LABELS))
        self.labels = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                asset.asset_path,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="?",
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """`label` string [B] and `probability` float32 [B]; an empty batch gives empty outputs."""
        chars = tf.strings.bytes_split(tf.strings.strip(text))
        bits = tf.strings.to_number(chars, tf.int32)
        tokens = (bits + 1).to_tensor(default_value=0)
        probs = tf.nn.softmax(self.model(tokens, training=False), axis=-1)
        return {
            "label": self.labels.lookup(tf.argmax(probs, axis=-1)),
            "probability": tf.reduce_max(probs, axis=-1),
        }
