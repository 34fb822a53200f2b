"""Test-time vocal tract length normalisation (`model.test_warps`).

A model trained on a few speakers meets a new voice whose formants sit higher or lower than any
it heard. Classic VTLN (Lee & Rose 1998) warps the new speaker's frequency axis by the factor
under which the model explains the audio best. Here every utterance is run through the model
once per factor in `test_warps` (the log-mel axis warped exactly as `layers.VTLP` does in
training, a factor of 1 leaving the features untouched), and the outputs of the factor whose
best CTC path is most probable are kept: `sum_t max_c log p_t(c)` over the valid output steps.
The choice needs no transcript or lexicon, so greedy, beam, lexicon and LM decoding all read the
chosen outputs, in `evaluate` and in the exported graph alike; the cost is one forward pass per
factor (run as one batch of `len(factors) * B` utterances).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from suites.speech.config import FeatureConfig
from suites.speech.layers import VTLP


def best_path_scores(logits: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
    """`sum_t max_c log_softmax(logits)[t, c]` over the first `lengths` steps.

    `logits [..., T, C]`, `lengths [...]` -> scores `[...]` (the best path's log-probability).
    """
    logp = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    best = tf.reduce_max(logp, axis=-1)
    valid = tf.sequence_mask(lengths, tf.shape(best)[-1], dtype=tf.float32)
    return tf.reduce_sum(best * valid, axis=-1)


class WarpSearch:
    """Runs a CTC model at several frequency warps per utterance and keeps the best-scoring one.

    Args:
        factors: warp factors (e.g. `[0.9, 0.95, 1.0, 1.05, 1.1]`); 1.0 = the features as they are.
        features: the model's input features (the warp moves their log-mel bands).
        boundary: `F_hi` of the piecewise-linear warp as a fraction of the Nyquist frequency
            (`model.vtlp_boundary`, the same warp as in training).
    """

    def __init__(self, factors: Sequence[float], features: FeatureConfig, boundary: float = 0.8):
        factors = [float(f) for f in factors]
        if not factors or any(not 0.5 <= f <= 2.0 for f in factors):
            raise ValueError(f"model.test_warps: need factors in [0.5, 2], got {factors}")
        self.factors = factors
        self.vtlp = VTLP(
            features.sample_rate, features.n_mels, features.fmin, features.fmax,
            min(factors), max(factors), boundary,
        )  # fmt: skip

    def __call__(self, model, features: tf.Tensor, lengths: tf.Tensor) -> dict[str, tf.Tensor]:
        """Outputs of `model` at each utterance's best warp.

        Args:
            model: maps `{"features" [B, T, F], "feature_lengths" [B]}` to
                `{"logits" [B, T', C], "logit_lengths" [B]}`.
            features, lengths: un-normalised log-mel frames and their valid lengths.

        Returns:
            `{"logits", "logit_lengths"}` as the model's, plus `"warp"` float32 `[B]`: the factor
            chosen for each utterance.
        """
        features = tf.convert_to_tensor(features, tf.float32)
        lengths = tf.cast(lengths, tf.int32)
        batch, count = tf.shape(features)[0], len(self.factors)
        tiled = tf.tile(features, [count, 1, 1])  # warp-major: row w * B + b
        alphas = tf.repeat(tf.constant(self.factors, tf.float32), batch)
        warped = tf.where(
            tf.equal(alphas, 1.0)[:, None, None], tiled, self.vtlp.warp(tiled, alphas)
        )
        out = model({"features": warped, "feature_lengths": tf.tile(lengths, [count])},
                    training=False)  # fmt: skip
        logits = tf.cast(out["logits"], tf.float32)
        logits = tf.reshape(logits, tf.concat([[count, batch], tf.shape(logits)[1:]], 0))
        out_lengths = tf.reshape(tf.cast(out["logit_lengths"], tf.int32), [count, batch])
        choice = tf.argmax(best_path_scores(logits, out_lengths), axis=0, output_type=tf.int32)
        pick = tf.stack([choice, tf.range(batch)], axis=1)
        return {
            "logits": tf.gather_nd(logits, pick),
            "logit_lengths": tf.gather_nd(out_lengths, pick),
            "warp": tf.gather(tf.constant(self.factors, tf.float32), choice),
        }
