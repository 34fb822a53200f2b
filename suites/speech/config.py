"""The speech task's `data` (with its `features`) and `model` config sections."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from shared.config import at_least, fraction, in_range, positive
from shared.errors import ConfigError
from suites.speech.text import DEFAULT_ALPHABET, CharVocab

Source = Literal["synthetic", "manifest", "fsdd", "speechocean762", "librispeech", "tfds"]
# Fields of FeatureConfig that act inside the model, not on the cached log-mel frames.
_MODEL_SIDE = ("kind", "n_mfcc")


@dataclass
class FeatureConfig:
    """How waveforms become feature frames (librosa's framing; the export computes the same)."""

    kind: Literal["logmel", "mfcc"] = "logmel"  # what the network reads: log-mel bands, or MFCCs
    # (the first n_mfcc orthonormal DCT-II coefficients of the log-mel bands, taken in the model
    # after VTLP and the per-band normalisation, so VTLP and test-time warps act on the mel axis)
    sample_rate: int = field(default=16000, metadata=positive())  # Hz; audio is resampled to it
    n_fft: int = field(default=400, metadata=positive())  # FFT size in samples (25 ms at 16 kHz)
    win_length: int | None = field(default=None, metadata=positive())  # Hann window length
    # (<= n_fft); None = n_fft
    hop_length: int = field(default=160, metadata=positive())  # frame shift (10 ms at 16 kHz)
    n_mels: int = field(default=80, metadata=at_least(2))  # mel bands (Slaney scale and norm)
    fmin: float = field(default=0.0, metadata=at_least(0))  # lowest mel band edge in Hz
    fmax: float | None = field(default=None, metadata=positive())  # highest mel band edge in
    # Hz; None = sample_rate / 2
    n_mfcc: int = field(default=13, metadata=at_least(1))  # MFCCs kept when kind is mfcc
    ref: float = field(default=1.0, metadata=positive())  # power_to_db reference power
    amin: float = field(default=1e-10, metadata=positive())  # power floor before the log
    top_db: float | None = field(default=80.0, metadata=positive())  # per-utterance floor at
    # (max - top_db) dB; None = no floor
    remove_dc: bool = False  # subtract each clip's mean sample value before framing (a DC
    # offset adds power to the lowest bands, which per-utterance CMN cannot remove)
    trim_db: float | None = field(default=None, metadata=positive())  # drop leading/trailing
    # frames whose mean-square amplitude (un-windowed n_fft frames, as librosa.effects.trim) is
    # more than this many dB below the utterance's loudest frame (energy VAD, also in the
    # export); None = keep every frame

    def __post_init__(self):
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ConfigError(f"features.win_length must be <= n_fft, got {self.win_length}")
        if self.kind == "mfcc" and self.n_mfcc > self.n_mels:
            raise ConfigError(f"features.n_mfcc must be <= n_mels, got {self.n_mfcc}")

    @property
    def dim(self) -> int:
        """Features per frame the network sees (after the in-model DCT for MFCCs)."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def num_frames(self, num_samples: int) -> int:
        """Frames librosa makes from `num_samples` samples with centred framing (untrimmed)."""
        return 1 + num_samples // self.hop_length

    def key(self) -> str:
        """A short hash of the fields that shape the cached log-mel frames."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in _MODEL_SIDE}
        return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class DataConfig:
    """Where the speech comes from, how it is split, screened, featurised and batched."""

    source: Source = "synthetic"  # corpus reader; synthetic = espeak-ng speech of synth_texts
    data_dir: str | None = None  # corpus root (fsdd, speechocean762, librispeech, tfds data_dir)
    # or the manifest TSV (or its folder holding manifest.tsv) for source: manifest
    tfds_name: str = "librispeech"  # TFDS dataset name (source: tfds; never downloads)
    tfds_splits: list[str] = field(  # TFDS splits used as train, validation, test
        default_factory=lambda: ["train_clean100", "dev_clean", "test_clean"]
    )
    # synthetic: the texts espeak-ng speaks (each in every voice, speed and pitch)
    synth_texts: list[str] = field(default_factory=lambda: ["yes", "no", "up", "down"])
    synth_voices: list[str] = field(  # espeak-ng voices (language+variant), or voices of any
        default_factory=lambda: ["en-us", "en+m3", "en+f3", "en+m1", "en+f2"]
    )  # engine as engine:voice (espeak:en-us, flite:slt, festival:ked, piper:joe; these use
    # synth_speeds and synth_semitones instead of synth_rates and synth_pitches)
    synth_speeds: list[float] = field(  # engine:voice styles: tempo factors (1 = the voice's own)
        default_factory=lambda: [1.0], metadata=in_range(0.5, 2.0)
    )
    synth_semitones: list[float] = field(  # engine:voice styles: pitch shifts in semitones
        default_factory=lambda: [0.0], metadata=in_range(-12.0, 12.0)
    )
    synth_rates: list[int] = field(  # speaking rates in words per minute
        default_factory=lambda: [130, 170, 210], metadata=in_range(80, 450)
    )
    synth_pitches: list[int] = field(  # base pitches, 0-100
        default_factory=lambda: [35, 50, 65], metadata=in_range(0, 100)
    )
    synth_augment: bool = False  # add espeak-ng speech of the training transcripts to train
    synth_styles_per_text: int = field(default=0, metadata=at_least(0))  # > 0: each text in
    # this many styles (round robin over voices x rates x pitches); 0: in every style
    speed_perturb: list[float] = field(  # extra training copies at these speeds, e.g.
        default_factory=list, metadata=in_range(0.5, 2.0)
    )  # [0.9, 1.1] (resampling: tempo and pitch change together, as in Kaldi)
    pitch_perturb: list[float] = field(  # extra training copies of the main corpus' training
        default_factory=list, metadata=in_range(-12.0, 12.0)
    )  # clips (not espeak-ng's) shifted by these semitones, tempo kept, e.g. [-3, 3]
    alphabet: str = DEFAULT_ALPHABET  # output characters (transcripts are lower-cased)
    bad_input: Literal["error", "skip"] = "error"  # bad audio/transcripts: raise or skip+report
    min_seconds: float = field(default=0.05, metadata=at_least(0))  # shorter clips are bad input
    silence_threshold: float = field(default=1e-4, metadata=at_least(0))  # clips with peak
    # |amplitude| <= this are bad input (silent)
    test_speakers: list[str] = field(default_factory=list)  # held out wholly as the test split;
    # ["*"] = every speaker (an evaluation-only corpus, e.g. a blind test set via --data-dir)
    validation_speakers: list[str] = field(default_factory=list)  # held out as validation
    validation_fraction: float = field(default=0.1, metadata=fraction())  # random fraction for
    # validation when no validation speakers are listed
    test_fraction: float = field(default=0.0, metadata=fraction())  # random fraction for test
    # when no test speakers are listed
    num_buckets: int = field(default=6, metadata=at_least(1))  # length buckets for batching
    # (quantiles of the training lengths)
    shuffle_buffer: int = field(default=4096, metadata=at_least(1))  # training shuffle buffer
    cache_dir: str | None = None  # feature caches; None = <run_dir>/cache
    features: FeatureConfig = field(default_factory=FeatureConfig)  # acoustic features

    def __post_init__(self):
        if 1.0 in self.speed_perturb:
            raise ConfigError(f"data.speed_perturb: 1 is the original, got {self.speed_perturb}")
        if 0.0 in self.pitch_perturb:
            raise ConfigError(f"data.pitch_perturb: 0 is the original, got {self.pitch_perturb}")
        self._check_synth_voices()
        if self.source not in ("synthetic", "tfds") and not self.data_dir:
            raise ConfigError(f"data.data_dir is required for data.source {self.source!r}")
        if self.source == "tfds" and len(self.tfds_splits) != 3:
            raise ConfigError("data.tfds_splits must list 3 splits: train, validation, test")
        try:
            CharVocab(self.alphabet)
        except ValueError as err:
            raise ConfigError(f"data.alphabet: {err}") from err

    @property
    def synth_engines(self) -> bool:
        """Whether `synth_voices` names engine:voice voices (spoken through `engines.speak`)."""
        return any(":" in v for v in self.synth_voices)

    def _check_synth_voices(self) -> None:
        from suites.speech.engines import parse_voice

        if not self.synth_engines:
            return
        for voice in self.synth_voices:
            try:
                parse_voice(voice)
            except ValueError as err:
                raise ConfigError(f"data.synth_voices: {err}") from err


@dataclass
class ModelConfig:
    """Acoustic model, its training-time augmentation and its decoders."""

    stride: int = field(default=3, metadata=at_least(1))  # frames stacked into one model step
    # (the output rate: 1 = every frame)
    lstm_units: int = field(default=128, metadata=at_least(1))  # units per direction of every
    # Bidirectional(PeepholeLSTM)
    lstm_layers: int = field(default=2, metadata=at_least(1))  # stacked bidirectional layers
    use_peepholes: bool = True  # peephole connections in the LSTM cells
    dropout: float = field(default=0.1, metadata=fraction())  # dropout between layers
    recurrent_dropout: float = field(default=0.0, metadata=fraction())  # LSTM recurrent dropout
    # (slow on CPU)
    utterance_norm: bool = False  # subtract each utterance's mean feature vector (CMN)
    utterance_var_norm: bool = False  # with utterance_norm: also divide by the utterance's
    # per-feature standard deviation (CMVN; removes gain/spread differences between voices)
    vtlp: bool = False  # vocal tract length perturbation of the log-mel axis in training
    # (nothing changes at inference or in the export)
    vtlp_min: float = field(default=0.9, metadata=positive())  # smallest VTLP warp factor
    # (drawn uniformly per utterance and step)
    vtlp_max: float = field(default=1.1, metadata=positive())  # largest VTLP warp factor
    vtlp_boundary: float = field(  # VTLP knee F_hi as a fraction of the Nyquist frequency
        default=0.8, metadata=in_range(0, 1, low_open=True, high_open=True)
    )
    test_warps: list[float] = field(  # test-time VTLN: decode each utterance at these log-mel
        default_factory=list, metadata=in_range(0.5, 2.0)
    )  # warp factors (VTLP's warp) and keep the one whose best CTC path scores highest, in
    # evaluate and in the export (one forward pass per factor); empty = off
    spec_augment: bool = True  # SpecAugment masks in training
    freq_masks: int = field(default=2, metadata=at_least(0))  # frequency masks per utterance
    freq_width: int = field(default=10, metadata=at_least(0))  # widest frequency mask (features)
    time_masks: int = field(default=2, metadata=at_least(0))  # time masks per utterance
    time_width: int = field(default=20, metadata=at_least(0))  # widest time mask (frames)
    beam_width: int = field(default=16, metadata=at_least(1))  # CTC beam width in evaluate
    export_beam_width: int = field(default=0, metadata=at_least(0))  # decoder of the export:
    # 0 = greedy, >= 1 = beam search of this width
    lexicon: list[str] = field(default_factory=list)  # closed vocabulary (e.g. the ten digit
    # words): evaluate also reports lexicon decoding (the entry of best CTC likelihood)
    export_lexicon: bool = False  # the export decodes with `lexicon` (needs a lexicon)
    lm_order: int = field(default=0, metadata=in_range(0, 12))  # > 0: evaluate also reports
    # "lm" (prefix beam search with a character n-gram LM of this order)
    # LM text besides the training transcripts: text/TSV/.zip files (1st column), under data_dir
    lm_texts: list[str] = field(default_factory=list)
    lm_weight: float = field(default=0.5, metadata=at_least(0))  # LM weight of the "lm"
    # decoder (tune: python -m suites.speech.lm_tune)
    lm_bonus: float = 1.0  # score per emitted character of the "lm" decoder
    word_lm: bool = False  # evaluate also reports "word_lm": CTC lexicon beam search with a word
    # trigram LM built from the training transcripts (flashlight-text + KenLM; not in the export)
    word_lm_weight: float = field(default=1.0, metadata=at_least(0))  # weight of the word LM's
    # log10 probabilities
    word_lm_word_score: float = 0.0  # added per word (> 0 counters the LM's short-output bias)
    word_lm_beam: int = field(default=64, metadata=at_least(1))  # hypotheses kept per frame
    word_lm_general: float = field(default=0.0, metadata=in_range(0, 1))  # share of
    # pocketsphinx's general US-English trigram (~72k words) interpolated with the transcripts'
    # trigram; > 0 also lets the word_lm decoder spell its words, 1 uses it alone

    def __post_init__(self):
        if self.vtlp_min > self.vtlp_max:
            raise ConfigError(
                f"model.vtlp_min/vtlp_max: need min <= max, got {self.vtlp_min}, {self.vtlp_max}"
            )
        if self.export_lexicon and not self.lexicon:
            raise ConfigError("model.export_lexicon needs a non-empty model.lexicon")
        if self.utterance_var_norm and not self.utterance_norm:
            raise ConfigError("model.utterance_var_norm needs model.utterance_norm: true")
