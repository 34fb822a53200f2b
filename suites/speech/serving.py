"""The speech export: raw waveforms in, transcripts out, features and decoding in the graph.

    serving_default(waveform float32 [B, N], waveform_length int32 [B]) -> {transcript: string [B]}

Waveforms are mono at the export's sample rate (`assets/sample_rate.txt`), zero-padded to the
longest; `waveform_length` gives each one's samples. What it does with unusual input:

- an empty batch (B = 0) gives an empty result;
- a 0-sample or silent waveform (peak |amplitude| <= `data.silence_threshold`) gives "";
- non-finite samples (NaN, Inf) or a length that is negative or larger than N raise
  `InvalidArgumentError` saying which.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from shared.serving import ServingModule
from suites.speech.config import FeatureConfig
from suites.speech.decoding import ctc_decode, ids_to_strings, lexicon_decode
from suites.speech.tf_features import TFFeatureExtractor
from suites.speech.warps import WarpSearch

SAMPLE_RATE_ASSET = "sample_rate.txt"


class SpeechServer(ServingModule):
    """The acoustic model behind the TF feature extractor, with a CTC decoder after it.

    Args:
        model: the trained CTC model (log-mel frames in).
        features: the feature config the model was trained with.
        alphabet: the output characters (class i = alphabet[i], blank last).
        beam_width: 0 = greedy decoding, >= 1 = beam search of this width.
        lexicon: if given, the answer is the entry of best CTC likelihood (closed vocabulary).
        warps: test-time VTLN: decode at each utterance's best-scoring frequency warp.
        silence_threshold: waveforms whose peak |amplitude| is at most this answer "".
    """

    def __init__(
        self,
        model: keras.Model,
        features: FeatureConfig,
        alphabet: str,
        beam_width: int = 0,
        lexicon: list[str] | None = None,
        warps: WarpSearch | None = None,
        silence_threshold: float = 1e-4,
    ):
        super().__init__(name="speech_server")
        self.add_asset(SAMPLE_RATE_ASSET, f"{features.sample_rate}\n")
        self.model = model
        self.extractor = TFFeatureExtractor(features)
        self.alphabet = alphabet
        self.beam_width = beam_width
        self.warps = warps
        self.silence_threshold = float(silence_threshold)
        self.lexicon = list(lexicon or [])
        ids = {c: i for i, c in enumerate(alphabet)}
        self._lexicon_ids = [[ids[c] for c in word] for word in self.lexicon]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="waveform"),
            tf.TensorSpec([None], tf.int32, name="waveform_length"),
        ]
    )
    def serve(self, waveform: tf.Tensor, waveform_length: tf.Tensor) -> dict[str, tf.Tensor]:
        """`transcript` string [B] (see the module docstring for unusual input)."""
        checks = _input_checks(waveform, waveform_length)
        with tf.control_dependencies(checks):
            batch = tf.shape(waveform)[0]
        transcript = tf.cond(
            batch > 0,
            lambda: self._transcribe(waveform, waveform_length),
            lambda: tf.zeros([0], tf.string),
        )
        return {"transcript": transcript}

    def _transcribe(self, waveform: tf.Tensor, waveform_length: tf.Tensor) -> tf.Tensor:
        feats, lengths = self.extractor(waveform, waveform_length)
        if self.warps is not None:
            out = self.warps(self.model, feats, lengths)
        else:
            out = self.model({"features": feats, "feature_lengths": lengths}, training=False)
        if self.lexicon:
            best = lexicon_decode(out["logits"], out["logit_lengths"], self._lexicon_ids)
            text = tf.gather(tf.constant(self.lexicon), best)
        else:
            sparse = ctc_decode(out["logits"], out["logit_lengths"], self.beam_width)
            text = ids_to_strings(sparse, self.alphabet, tf.shape(waveform)[0])
        valid = tf.sequence_mask(waveform_length, tf.shape(waveform)[1])
        peak = tf.reduce_max(tf.where(valid, tf.abs(waveform), 0.0), axis=1)
        return tf.where(peak > self.silence_threshold, text, "")


def _input_checks(waveform: tf.Tensor, waveform_length: tf.Tensor) -> list[tf.Operation]:
    """Graph assertions with messages that say what is wrong with a request."""
    samples = tf.shape(waveform)[1]
    return [
        tf.debugging.assert_equal(
            tf.size(waveform_length), tf.shape(waveform)[0],
            message="waveform_length needs one length per waveform (row)",
        ),
        tf.debugging.assert_non_negative(
            waveform_length, message="waveform_length must not be negative"
        ),
        tf.debugging.assert_less_equal(
            waveform_length, samples,
            message="waveform_length is larger than the number of samples in waveform",
        ),
        tf.debugging.Assert(
            tf.reduce_all(tf.math.is_finite(waveform)),
            ["waveform has non-finite samples (NaN or Inf)"],
        ),
    ]  # fmt: skip


def pad_batch(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pads mono waveforms into `[B, max_len]` float32 + int32 lengths."""
    lengths = np.array([len(w) for w in waves], np.int32)
    batch = np.zeros((len(waves), int(lengths.max(initial=0))), np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return batch, lengths
