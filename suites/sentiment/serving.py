"""The sentiment export: `serving_default(text) -> {probabilities, label}` on raw strings.

The text -> model-input step is part of the graph: SentencePiece and the text normalisation
(`text.SubwordInputs`) or the PTB word split with the vocabulary and lexicon tables
(`words.WordInputs`), so the export needs nothing but `import tensorflow_text` before
`tf.saved_model.load`. The class names are in `assets/labels.txt`, one per line, line i =
class id i.

Edge inputs: an empty batch gives empty outputs (`[0, classes]` and `[0]`); an empty or blank
string is a fully masked row and gets a valid (near-prior) answer; a text longer than
`data.max_length` tokens is truncated to its head; bytes that are not UTF-8 become U+FFFD.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from shared.serving import ServingModule

LABELS_ASSET = "labels.txt"


class SentimentServer(ServingModule):
    """Text encoder + classifier behind a `tf.string [None]` signature.

    Args:
        model: the trained classifier (model inputs -> probabilities).
        inputs: the `tf.Module` that turns raw texts into its inputs, as in training
            (`text.SubwordInputs` or `words.WordInputs`); kept as an attribute, so its
            tokenizer or tables are saved with the export.
        label_names: class names, index = class id (written as `assets/labels.txt`).
    """

    def __init__(self, model: keras.Model, inputs: tf.Module, label_names: list[str]):
        super().__init__(name="sentiment_server")
        # the same layers without the optimizer (a compiled checkpoint's slots would triple
        # the export's size)
        self.model = keras.Model(model.input, model.output, name=model.name)
        self.inputs = inputs
        self.add_asset(LABELS_ASSET, "".join(f"{name}\n" for name in label_names))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Classifies raw texts: `probabilities` float32 [batch, classes], `label` int64 [batch]."""
        probabilities = tf.cast(self.model(self.inputs(text), training=False), tf.float32)
        return {"probabilities": probabilities, "label": tf.argmax(probabilities, axis=-1)}
