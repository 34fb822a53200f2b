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
    """Text encoders + classifiers behind a `tf.string [None]` signature.

    Args:
        members: one `(model, inputs)` pair per run: the trained classifier (model inputs ->
            probabilities) and the `tf.Module` that turns raw texts into its inputs, as in
            training (`text.SubwordInputs` or `words.WordInputs`); kept as attributes, so the
            tokenizers and tables are saved with the export. Several pairs are an ensemble:
            their probabilities are averaged.
        label_names: class names, index = class id (written as `assets/labels.txt`).
    """

    def __init__(self, members: list[tuple[keras.Model, tf.Module]], label_names: list[str]):
        super().__init__(name="sentiment_server")
        # the same layers without the optimizer (a compiled checkpoint's slots would triple
        # the export's size)
        self.models = [keras.Model(m.input, m.output, name=m.name) for m, _ in members]
        self.inputs = [inputs for _, inputs in members]
        self.add_asset(LABELS_ASSET, "".join(f"{name}\n" for name in label_names))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Classifies raw texts: `probabilities` float32 [batch, classes], `label` int64 [batch]."""
        each = [
            tf.cast(model(inputs(text), training=False), tf.float32)
            for model, inputs in zip(self.models, self.inputs, strict=True)
        ]
        probabilities = tf.add_n(each) / len(each)
        return {"probabilities": probabilities, "label": tf.argmax(probabilities, axis=-1)}
