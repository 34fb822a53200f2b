"""The exported SavedModel: raw waveforms in, transcripts out, features computed in the graph.

`serving_default(waveform float32 [B, N], waveform_length int32 [B]) -> {"transcript": string [B]}`;
the waveforms are mono at the model's sample rate, zero-padded; the rate is stored in
`assets/sample_rate.txt`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from suites.speech.decoding import ctc_decode, ids_to_strings, lexicon_decode
from suites.speech.features import FeatureConfig
from suites.speech.tf_features import TFFeatureExtractor
from suites.speech.warps import WarpSearch

SAMPLE_RATE_ASSET = "sample_rate.txt"


class SpeechServer(tf.Module):
    """Wraps the Keras acoustic model with the TF feature extractor and a CTC decoder."""

    def __init__(
        self,
        model,
        features: FeatureConfig,
        alphabet: str,
        beam_width: int = 0,
        lexicon: list[str] | None = None,
        warps: WarpSearch | None = None,
    ):
        super().__init__(name="speech_server")
        self.warps = warps
        self.model = model
        self.extractor = TFFeatureExtractor(features)
        self.alphabet = alphabet
        self.beam_width = beam_width
        self.lexicon = list(lexicon or [])
        ids = {c: i for i, c in enumerate(alphabet)}
        self._lexicon_ids = [[ids[c] for c in word] for word in self.lexicon]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="waveform"),
            tf.TensorSpec([None], tf.int32, name="waveform_length"),
        ]
    )
    def serve(self, waveform, waveform_length):
        feats, lengths = self.extractor(waveform, waveform_length)
        if self.warps is not None:
            out = self.warps(self.model, feats, lengths)
        else:
            out = self.model({"features": feats, "feature_lengths": lengths}, training=False)
        if self.lexicon:
            best = lexicon_decode(out["logits"], out["logit_lengths"], self._lexicon_ids)
            return {"transcript": tf.gather(tf.constant(self.lexicon), best)}
        sparse = ctc_decode(out["logits"], out["logit_lengths"], self.beam_width)
        return {"transcript": ids_to_strings(sparse, self.alphabet, tf.shape(waveform)[0])}


def export_server(
    model,
    features: FeatureConfig,
    alphabet: str,
    out_dir: str | Path,
    beam_width: int = 0,
    lexicon: list[str] | None = None,
    warps: WarpSearch | None = None,
) -> None:
    """Saves a `SpeechServer` as a SavedModel with `assets/sample_rate.txt`.

    The decoder is greedy, beam search (`beam_width` >= 1) or, given a `lexicon`, the entry with
    the highest CTC likelihood; given `warps`, it reads the outputs at each utterance's best
    test-time warp (`suites/speech/warps.py`).
    """
    server = SpeechServer(model, features, alphabet, beam_width, lexicon, warps)
    with tempfile.TemporaryDirectory() as tmp:
        rate_file = Path(tmp) / SAMPLE_RATE_ASSET
        rate_file.write_text(f"{features.sample_rate}\n")
        server.sample_rate_file = tf.saved_model.Asset(str(rate_file))
        tf.saved_model.save(server, str(out_dir), signatures={"serving_default": server.serve})


def read_sample_rate(export_dir: str | Path) -> int:
    """The sample rate an export expects."""
    path = Path(export_dir) / "assets" / SAMPLE_RATE_ASSET
    if not path.is_file():
        raise ValueError(f"{export_dir} is not a speech export: {path} is missing")
    return int(path.read_text().strip())


def pad_batch(waves: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pads mono waveforms into `[B, max_len]` float32 + int32 lengths."""
    lengths = np.array([len(w) for w in waves], np.int32)
    batch = np.zeros((len(waves), max(int(lengths.max()), 1)), np.float32)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    return batch, lengths
