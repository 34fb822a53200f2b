"""The acoustic model: normalisation, SpecAugment, optional front end, BiLSTM stack, CTC head.

Inputs are `features` `[B, T, F]` (un-normalised log-mel/MFCC frames, zero-padded) and
`feature_lengths` `[B]`; outputs are `logits` `[B, T', characters + 1]` (CTC blank last) and
`logit_lengths` `[B]`. `CTCModel.compute_loss` applies CTC itself, so `compile(loss=None)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import keras
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution

from shared.layers import Bidirectional, PeepholeLSTM
from suites.speech.features import FeatureConfig
from suites.speech.layers import (
    VTLP,
    Cepstra,
    FrameStack,
    SequenceMask,
    SpecAugment,
    UtteranceMeanNorm,
    ZeroPadding,
)
from suites.speech.warps import check_factors


@dataclass
class ModelConfig:
    """Acoustic model hyper-parameters."""

    frontend: Literal["none", "stack", "conv"] = "stack"  # how sequences are shortened
    stride: int = 3  # time reduction of the front end (frames stacked / conv stride)
    conv_filters: int = 128  # channels of the strided Conv1D front end (frontend: conv)
    conv_kernel: int = 5  # kernel width of the Conv1D front end
    lstm_units: int = 128  # units per direction of every Bidirectional(PeepholeLSTM)
    lstm_layers: int = 2  # stacked bidirectional layers
    use_peepholes: bool = True  # peephole connections in the LSTM cells
    dropout: float = 0.1  # dropout between layers
    recurrent_dropout: float = 0.0  # LSTM recurrent dropout (slow on CPU; keep 0)
    utterance_norm: bool = False  # subtract each utterance's mean feature vector (CMN)
    utterance_var_norm: bool = False  # with utterance_norm: also divide by the utterance's
    # per-feature standard deviation (CMVN; removes gain/spread differences between voices)
    vtlp: bool = False  # vocal tract length perturbation of the log-mel axis in training
    # (log-mel features only; nothing changes at inference or in the export)
    vtlp_min: float = 0.9  # smallest VTLP warp factor (drawn uniformly per utterance and step)
    vtlp_max: float = 1.1  # largest VTLP warp factor
    vtlp_boundary: float = 0.8  # VTLP knee F_hi as a fraction of the Nyquist frequency
    test_warps: list[float] = field(default_factory=list)  # test-time VTLN: decode each
    # utterance at these log-mel warp factors (as VTLP's) and keep the one whose best CTC path
    # scores highest, in evaluate and in the export (one forward pass per factor), e.g.
    # [0.9, 0.95, 1.0, 1.05, 1.1]; empty = off (suites/speech/warps.py)
    feature_noise: float = 0.0  # std of Gaussian noise added to normalised features in training
    cepstra: int = 0  # > 0: the model keeps this many DCT-II coefficients of the normalised
    # log-mel frames (MFCC-style, after VTLP, before per-utterance norm); 0 = features as they are
    spec_augment: bool = True  # SpecAugment masks in training
    freq_masks: int = 2  # SpecAugment frequency masks per utterance
    freq_width: int = 10  # maximum frequency-mask width in features
    time_masks: int = 2  # SpecAugment time masks per utterance
    time_width: int = 20  # maximum time-mask width in frames
    beam_width: int = 16  # CTC beam width for beam-search decoding in evaluate
    export_beam_width: int = 0  # decoder of the SavedModel: 0 = greedy, >= 1 = beam width
    lexicon: list[str] = field(default_factory=list)  # closed vocabulary (e.g. the ten digit
    # words): evaluate also reports lexicon-constrained decoding (best CTC likelihood entry)
    export_lexicon: bool = False  # the SavedModel decodes with `lexicon` (needs a lexicon)
    word_correction: bool = False  # evaluate also reports "vocab": beam output with each unknown
    # word snapped to the nearest training-transcript word (edit distance <= a third of its length)

    lm_order: int = 0  # > 0: evaluate reports "lm" (beam search + char n-gram LM of this order)
    # LM text besides the training transcripts: text/TSV/.zip files (1st column), under data_dir
    lm_texts: list[str] = field(default_factory=list)
    lm_weight: float = 0.5  # LM weight of the "lm" decoder (tune: python -m suites.speech.lm_tune)
    lm_bonus: float = 1.0  # score per emitted character of the "lm" decoder

    def __post_init__(self):
        positive = ("stride", "conv_filters", "conv_kernel", "lstm_units", "lstm_layers")
        for key in positive:
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.export_lexicon and not self.lexicon:
            raise ValueError("model.export_lexicon needs a non-empty model.lexicon")
        if self.beam_width < 1:
            raise ValueError(f"model.beam_width must be >= 1, got {self.beam_width}")
        if not 0.0 < self.vtlp_min <= self.vtlp_max:
            raise ValueError(
                f"model.vtlp_min/vtlp_max: need 0 < min <= max, got "
                f"{self.vtlp_min}, {self.vtlp_max}"
            )
        if not 0.0 < self.vtlp_boundary < 1.0:
            raise ValueError(f"model.vtlp_boundary must be in (0, 1), got {self.vtlp_boundary}")
        check_factors(self.test_warps)
        if self.cepstra < 0:
            raise ValueError(f"model.cepstra must be >= 0, got {self.cepstra}")
        if not 0 <= self.lm_order <= 12:
            raise ValueError(f"model.lm_order must be in [0, 12], got {self.lm_order}")
        if self.lm_weight < 0:
            raise ValueError(f"model.lm_weight must be >= 0, got {self.lm_weight}")
        if self.feature_noise < 0:
            raise ValueError(f"model.feature_noise must be >= 0, got {self.feature_noise}")
        if self.utterance_var_norm and not self.utterance_norm:
            raise ValueError("model.utterance_var_norm needs model.utterance_norm: true")


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
    feature_dim: int,
    num_classes: int,
    mean: list[float] | None = None,
    variance: list[float] | None = None,
    seed: int | None = None,
    features_config: FeatureConfig | None = None,
) -> CTCModel:
    """Builds the acoustic model.

    Args:
        cfg: hyper-parameters.
        feature_dim: features per input frame.
        num_classes: characters + 1 (the CTC blank, last).
        mean, variance: per-feature statistics of the training set (None: no normalisation).
        seed: seed of the SpecAugment/VTLP random streams.
        features_config: the input features (needed by `cfg.vtlp`: log-mel filterbank layout).
    """
    features = keras.Input((None, feature_dim), name="features")
    lengths = keras.Input((), dtype="int32", name="feature_lengths")
    x = features
    if cfg.vtlp:
        fc = features_config
        if fc is None or fc.kind != "logmel" or fc.n_mels != feature_dim:
            raise ValueError("model.vtlp needs log-mel features (data.features.kind: logmel)")
        x = VTLP(
            fc.sample_rate, fc.n_mels, fc.fmin, fc.fmax, cfg.vtlp_min, cfg.vtlp_max,
            cfg.vtlp_boundary, seed=None if seed is None else seed + 1, name="vtlp",
        )(x)  # fmt: skip
    if mean is not None:
        x = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(x)
    if cfg.cepstra:
        x = Cepstra(cfg.cepstra, name="cepstra")(x)
    if cfg.utterance_norm:
        x = UtteranceMeanNorm(cfg.utterance_var_norm, name="utterance_norm")((x, lengths))
    if cfg.feature_noise:
        x = keras.layers.GaussianNoise(cfg.feature_noise, seed=seed, name="feature_noise")(x)
    if cfg.spec_augment:
        x = SpecAugment(
            cfg.freq_masks, cfg.freq_width, cfg.time_masks, cfg.time_width, seed=seed,
            name="spec_augment",
        )(x, lengths)  # fmt: skip
    x = ZeroPadding(name="zero_padding")((x, lengths))
    out_lengths = lengths
    if cfg.frontend == "stack" and cfg.stride > 1:
        x, out_lengths = FrameStack(cfg.stride, name="frame_stack")((x, lengths))
    elif cfg.frontend == "conv":
        # Explicit padding: output j always sees inputs [j*stride - left, ... + kernel), whatever
        # the padded batch length ("same" padding would shift with it); ceil(T / stride) outputs.
        left = (cfg.conv_kernel - 1) // 2
        x = keras.layers.ZeroPadding1D((left, cfg.conv_kernel - 1 - left), name="conv_pad")(x)
        x = keras.layers.Conv1D(
            cfg.conv_filters, cfg.conv_kernel, strides=cfg.stride, padding="valid",
            activation="relu", name="conv_frontend",
        )(x)  # fmt: skip
        _, out_lengths = FrameStack(cfg.stride, name="conv_lengths")((features, lengths))
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
    outputs = {"logits": logits, "logit_lengths": out_lengths}
    return CTCModel(
        inputs={"features": features, "feature_lengths": lengths}, outputs=outputs, name="ctc"
    )
