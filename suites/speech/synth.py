"""Offline synthetic speech with espeak-ng (bundled by the PyPI package `espeakng-loader`).

The espeak-ng C API is driven with ctypes: `espeak_Initialize` in synchronous retrieval mode, a
synth callback that collects the 16-bit samples, `espeak_SetVoiceByName` for the voice (e.g.
`en-us+f3`: language `en-us`, variant `f3`) and `espeak_SetParameter` for rate (words per minute)
and pitch (0-100). The library holds global state, so all calls go through one lock.

    >>> wave, rate = speak("seven", voice="en+m3", rate=160, pitch=50)  # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Constants from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_lock = threading.Lock()
_state: dict[str, object] = {}


def _engine() -> tuple[ctypes.CDLL, int, list[np.ndarray]]:
    """Loads and initialises the library once; returns (lib, output sample rate, sample sink)."""
    if "lib" not in _state:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (data path {data_path.decode()})")
        sink: list[np.ndarray] = []

        def collect(samples, count, _events):
            if samples and count > 0:
                sink.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
            return 0  # 0 = continue synthesis

        callback = _CALLBACK(collect)
        lib.espeak_SetSynthCallback(callback)
        _state.update(lib=lib, rate=rate, sink=sink, callback=callback)  # keep callback alive
    return _state["lib"], _state["rate"], _state["sink"]  # type: ignore[return-value]


def speak(
    text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50
) -> tuple[np.ndarray, int]:
    """Synthesises `text`; returns (float32 waveform in [-1, 1], espeak's sample rate, 22050 Hz).

    Args:
        text: UTF-8 text to speak.
        voice: an espeak-ng voice name, optionally with a variant (`en+f3`, `en-us+klatt2`).
        rate: speaking rate in words per minute (80-450).
        pitch: base pitch, 0-100 (50 is the voice's default).

    Raises:
        ValueError: an unknown voice or an out-of-range rate/pitch.
        RuntimeError: the synthesis itself fails.
    """
    if not 80 <= rate <= 450:
        raise ValueError(f"rate must be in [80, 450] words per minute, got {rate}")
    if not 0 <= pitch <= 100:
        raise ValueError(f"pitch must be in [0, 100], got {pitch}")
    with _lock:
        lib, out_rate, sink = _engine()
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"unknown espeak-ng voice {voice!r}")
        lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
        lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
        sink.clear()
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with code {err} for text {text!r}")
        samples = np.concatenate(sink) if sink else np.zeros(0, np.int16)
        sink.clear()
    return samples.astype(np.float32) / 32768.0, int(out_rate)


@dataclass(frozen=True)
class SynthStyle:
    """One speaking style; its `name` serves as the speaker id of the utterances it makes."""

    voice: str
    rate: int
    pitch: int

    @property
    def name(self) -> str:
        return f"{self.voice.replace('+', '_')}_r{self.rate}_p{self.pitch}"


def styles(voices: Sequence[str], rates: Sequence[int], pitches: Sequence[int]) -> list[SynthStyle]:
    """All combinations of voices x rates x pitches."""
    return [SynthStyle(v, r, p) for v, r, p in itertools.product(voices, rates, pitches)]


def synthesize_corpus(
    texts: Iterable[str],
    out_dir: str | Path,
    sample_rate: int,
    voices: Sequence[str] = ("en-us", "en+m3", "en+f3"),
    rates: Sequence[int] = (140, 175),
    pitches: Sequence[int] = (40, 60),
    trim_db: float = 40.0,
    styles_per_text: int = 0,
) -> Path:
    """Speaks every text in every style (or in `styles_per_text` of them); returns the manifest.

    Writes WAVs and `manifest.tsv` with a header and columns `path, transcript, speaker` (path
    relative to `out_dir`, speaker = style name). Leading/trailing silence quieter than `trim_db`
    below peak is trimmed. Existing complete output (same manifest rows) is reused.
    `styles_per_text` > 0 gives text i the styles i*k, i*k+1, ..., i*k+k-1 (modulo the number of
    styles) of the voices x rates x pitches list: every style is used about equally often and the
    corpus grows with k, not with the number of styles.
    """

    def say(text: str, style: SynthStyle) -> tuple[np.ndarray, int]:
        return speak(text, style.voice, style.rate, style.pitch)

    every = styles(voices, rates, pitches)
    return write_corpus(texts, every, out_dir, sample_rate, say, trim_db, styles_per_text)


def synthesize_engine_corpus(
    texts: Iterable[str],
    out_dir: str | Path,
    sample_rate: int,
    voices: Sequence[str],
    speeds: Sequence[float] = (1.0,),
    semitones: Sequence[float] = (0.0,),
    trim_db: float = 40.0,
    styles_per_text: int = 0,
) -> Path:
    """`synthesize_corpus` with `engine:voice` voices spoken by `suites.speech.engines.speak`.

    The styles are voices x speeds x semitones (`engines.styles`); speaker = style name.
    """
    from suites.speech import engines

    def say(text: str, style: engines.Style) -> tuple[np.ndarray, int]:
        return engines.speak(
            text, style.voice, sample_rate, style.speed, style.semitones
        ), sample_rate

    every = engines.styles(voices, speeds, semitones)
    return write_corpus(texts, every, out_dir, sample_rate, say, trim_db, styles_per_text)


def write_corpus(
    texts: Iterable[str],
    every: Sequence,
    out_dir: str | Path,
    sample_rate: int,
    say,
    trim_db: float = 40.0,
    styles_per_text: int = 0,
) -> Path:
    """Speaks the texts in `every`'s styles with `say(text, style) -> (wave, rate)`.

    Writes the WAVs (trimmed, resampled to `sample_rate`) and the manifest as
    `synthesize_corpus` describes; existing complete output is reused.
    """
    import librosa
    import soundfile as sf
    from tqdm import tqdm

    from suites.speech.audio import resample

    out_dir = Path(out_dir)
    wav_dir = out_dir / "wavs"
    manifest = out_dir / "manifest.tsv"
    if styles_per_text < 0:
        raise ValueError(f"styles_per_text must be >= 0, got {styles_per_text}")
    k = min(styles_per_text, len(every)) or len(every)
    jobs = [(t, every[(i * k + j) % len(every)]) for i, t in enumerate(texts) for j in range(k)]
    rows = ["path\ttranscript\tspeaker"]
    for i, (text, style) in enumerate(jobs):
        rows.append(f"wavs/{i:05d}_{style.name}.wav\t{text}\t{style.name}")
    content = "\n".join(rows) + "\n"
    if manifest.is_file() and manifest.read_text() == content:
        return manifest
    wav_dir.mkdir(parents=True, exist_ok=True)
    for row, (text, style) in tqdm(
        zip(rows[1:], jobs, strict=True), total=len(jobs), desc="synthetic speech", leave=False
    ):
        wave, rate = say(text, style)
        wave, _ = librosa.effects.trim(wave, top_db=trim_db)
        sf.write(out_dir / row.split("\t")[0], resample(wave, rate, sample_rate), sample_rate)
    manifest.write_text(content)
    return manifest
