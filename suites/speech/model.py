"""The acoustic model: VTLP, normalisation, MFCC, SpecAugment, frame stacking, BiLSTMs, CTC.

Inputs are `features` `[B, T, n_mels]` (un-normalised log-mel frames, zero-padded) and
`feature_lengths` `[B]`; outputs are `logits` `[B, T', characters + 1]` (CTC blank last) and
`logit_lengths` `[B]` (`ceil(T / stride)`). `CTCModel.compute_loss` applies CTC itself, so
`compile(loss=None)`. Every layer is registered serializable: a checkpoint loads with
`keras.saving.load_model` once `suites.speech.model` is imported.
"""

from __future__ import annotations

import keras
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution

from shared.layers import Bidirectional, PeepholeLSTM
from suites.speech.config import FeatureConfig, ModelConfig
from suites.speech.layers import (
    VTLP,
    Cepstra,
    FrameStack,
    SequenceMask,
    SpecAugment,
    UtteranceMeanNorm,
    ZeroPadding,
)


@keras.saving.register_keras_serializable(package="lstm_suite")
class CTCModel(keras.Model):
    """A functional model with outputs `logits`/`logit_lengths` trained with CTC (blank last)."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        logits = ops.cast(y_pred["logits"], "float32")
        labels = ops.cast(y, "int32")
        label_lengths = ops.sum(ops.cast(labels >= 0, "int32"), axis=1)
        per_example = ops.ctc_loss(
            ops.maximum(labels, 0), logits, label_lengths,
            ops.cast(y_pred["logit_lengths"], "int32"), mask_index=logits.shape[-1] - 1,
        )  # fmt: skip
        # Per-replica mean scaled by 1/replicas, as Keras' own losses do (gradients are summed).
        loss = scale_loss_for_distribution(ops.mean(per_example))
        extra = self.losses
        return loss + ops.sum(ops.stack(extra)) if extra else loss


def build_model(
    cfg: ModelConfig,
    features: FeatureConfig,
    num_classes: int,
    mean: list[float] | None = None,
    variance: list[float] | None = None,
    seed: int | None = None,
) -> CTCModel:
    """Builds the acoustic model.

    Args:
        cfg: hyper-parameters.
        features: the input features (`n_mels` log-mel bands per frame; `kind: mfcc` adds the
            in-model DCT; VTLP needs the filterbank layout).
        num_classes: characters + 1 (the CTC blank, last).
        mean, variance: per-band statistics of the training set (None: no normalisation).
        seed: seed of the SpecAugment/VTLP random streams.
    """
    inputs = {
        "features": keras.Input((None, features.n_mels), name="features"),
        "feature_lengths": keras.Input((), dtype="int32", name="feature_lengths"),
    }
    lengths = inputs["feature_lengths"]
    x = _front(cfg, features, inputs["features"], lengths, mean, variance, seed)
    out_lengths = lengths
    if cfg.stride > 1:
        x, out_lengths = FrameStack(cfg.stride, name="frame_stack")((x, lengths))
    mask = SequenceMask(name="mask")((x, out_lengths))
    for i in range(cfg.lstm_layers):
        if cfg.dropout:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
        lstm = PeepholeLSTM(
            cfg.lstm_units, return_sequences=True, use_peepholes=cfg.use_peepholes,
            recurrent_dropout=cfg.recurrent_dropout,
        )  # fmt: skip
        x = Bidirectional(lstm, merge_mode="concat", name=f"bilstm_{i}")(x, mask=mask)
    if cfg.dropout:
        x = keras.layers.Dropout(cfg.dropout, name="dropout_out")(x)
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return CTCModel(inputs=inputs, outputs={"logits": logits, "logit_lengths": out_lengths},
                    name="ctc")  # fmt: skip


def _front(cfg: ModelConfig, fc: FeatureConfig, x, lengths, mean, variance, seed):
    """Log-mel frames -> VTLP -> normalisation -> MFCC -> CMN/CMVN -> SpecAugment -> zeroed pad."""
    if cfg.vtlp:
        x = VTLP(
            fc.sample_rate, fc.n_mels, fc.fmin, fc.fmax, cfg.vtlp_min, cfg.vtlp_max,
            cfg.vtlp_boundary, seed=None if seed is None else seed + 1, name="vtlp",
        )(x)  # fmt: skip
    if mean is not None:
        x = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(x)
    if fc.kind == "mfcc":
        x = Cepstra(fc.n_mfcc, name="cepstra")(x)
    if cfg.utterance_norm:
        x = UtteranceMeanNorm(cfg.utterance_var_norm, name="utterance_norm")((x, lengths))
    if cfg.spec_augment:
        x = SpecAugment(
            cfg.freq_masks, cfg.freq_width, cfg.time_masks, cfg.time_width, seed=seed,
            name="spec_augment",
        )(x, lengths)  # fmt: skip
    return ZeroPadding(name="zero_padding")((x, lengths))
