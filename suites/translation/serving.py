"""The raw-text SavedModel: `serving_default(text) -> {translation, score}`.

Tokenization (SentencePiece, as graph ops), beam search and detokenization all run inside the
graph, so the export needs nothing but `import tensorflow_text` before `tf.saved_model.load`.
A second signature, `greedy`, decodes greedily. The SentencePiece models are also copied into
`assets/` for inspection; the graph does not read them (the model protos are graph constants).
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from shared.data.tokenizer import SentencePieceTokenizer
from suites.translation.decoding import beam_search, greedy_decode


def encode_source(tokenizer: SentencePieceTokenizer, text: tf.Tensor) -> tf.Tensor:
    """Raw source strings [B] -> padded ids [B, S] ending in eos (as in training)."""
    ids = tokenizer.tokenize(tf.strings.strip(text), add_eos=True)
    return ids.to_tensor(default_value=tokenizer.pad_id)


class Translator(tf.Module):
    """Tokenizers + model + decoders behind `tf.string [None]` signatures.

    Args:
        model: the trained `Seq2SeqAttention`.
        source_tokenizer: SentencePiece tokenizer of the source side.
        target_tokenizer: SentencePiece tokenizer of the target side (may be the same object).
        beam_size: beams of `serving_default` (1 = greedy).
        length_penalty: GNMT length-penalty exponent of beam search.
        max_length_ratio, max_length_offset: output limit `ceil(ratio * source tokens) + offset`.
    """

    def __init__(
        self,
        model: keras.Model,
        source_tokenizer: SentencePieceTokenizer,
        target_tokenizer: SentencePieceTokenizer,
        beam_size: int = 5,
        length_penalty: float = 0.6,
        max_length_ratio: float = 1.5,
        max_length_offset: int = 5,
    ):
        super().__init__(name="translator")
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.max_length_ratio = max_length_ratio
        self.max_length_offset = max_length_offset

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Beam search: `translation` tf.string [B], `score` (log-probability) float32 [B]."""
        source = encode_source(self.source_tokenizer, text)
        ids, scores = beam_search(
            self.model,
            source,
            beam_size=self.beam_size,
            length_penalty=self.length_penalty,
            max_length_ratio=self.max_length_ratio,
            max_length_offset=self.max_length_offset,
        )
        return {"translation": self.target_tokenizer.detokenize(ids), "score": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def greedy(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Greedy decoding: `translation` tf.string [B], `score` float32 [B]."""
        source = encode_source(self.source_tokenizer, text)
        ids, scores = greedy_decode(
            self.model, source, self.max_length_ratio, self.max_length_offset
        )
        return {"translation": self.target_tokenizer.detokenize(ids), "score": scores}


def save_translator(
    translator: Translator, out_dir: str | Path, asset_files: list[Path] | None = None
) -> Path:
    """Writes `translator` as a SavedModel (`serving_default` = beam search, `greedy`)."""
    out_dir = Path(out_dir)
    translator.asset_files = [tf.saved_model.Asset(str(p)) for p in asset_files or []]
    tf.saved_model.save(
        translator,
        str(out_dir),
        signatures={"serving_default": translator.serve, "greedy": translator.greedy},
    )
    return out_dir


def translate(export_dir: str | Path, texts: list[str], signature: str = "serving_default"):
    """Loads an export with `tf.saved_model.load` alone and translates `texts` -> list[str]."""
    import tensorflow_text  # noqa: F401 - registers the SentencePiece ops before loading

    loaded = tf.saved_model.load(str(export_dir))
    if signature not in loaded.signatures:
        raise ValueError(f"{export_dir} has no signature {signature!r}: {list(loaded.signatures)}")
    out = loaded.signatures[signature](text=tf.constant(texts, tf.string))
    return [t.decode("utf-8") for t in out["translation"].numpy()]
