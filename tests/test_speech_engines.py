"""suites.speech.engines: every installed engine speaks the requested words at the requested rate.

Engines that are not installed are skipped with the reason `available_engines()` gives. What is
spoken is checked by ear-independent means: durations, the median F0 (librosa's pYIN) of the
same voice at two output rates and two pitches, and - where pocketsphinx is installed - a digit
recogniser restricted to the ten digit words hearing the digit that was asked for.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from shared.errors import UsageError
from suites.speech import engines
from suites.speech.engines import Style, available_engines, parse_voice, speak, styles

VOICES = [
    "espeak:en-us", "flite:kal", "flite:kal16", "flite:awb", "flite:rms",
    "flite:slt", "festival:ked", "piper:joe",
]  # fmt: skip
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _speak_many(voice: str, requests: list[tuple]) -> list[np.ndarray]:
    """`speak(text, voice, rate, **kwargs)` for each `(text, rate, kwargs)`.

    espeak-ng keeps state from the voices spoken before in the same process (even across
    `espeak_Terminate`/`espeak_Initialize`), so its checks run in a fresh process: the test
    then hears the voice itself, whatever other tests spoke first.
    """
    if not voice.startswith("espeak:"):
        return [speak(text, voice, rate, **kw) for text, rate, kw in requests]
    code = (
        "import io, json, sys, numpy as np\n"
        "from suites.speech.engines import speak\n"
        "voice, requests = json.loads(sys.argv[1])\n"
        "waves = [speak(t, voice, r, **kw) for t, r, kw in requests]\n"
        "buffer = io.BytesIO(); np.savez(buffer, *waves)\n"
        "sys.stdout.buffer.write(buffer.getvalue())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps([voice, requests])],
        capture_output=True,
        check=True,
        timeout=300,
    ).stdout
    import io

    with np.load(io.BytesIO(out)) as data:
        return [data[f"arr_{i}"] for i in range(len(requests))]


def _need(voice: str) -> None:
    engine, _ = parse_voice(voice)
    reason = available_engines()[engine]
    if reason is not None:
        pytest.skip(f"{engine}: {reason}")


def _median_f0(wave: np.ndarray, rate: int) -> float:
    """Median pYIN F0 over loud frames (within 20 dB of the loudest), voiced ones if >= 5."""
    import librosa

    f0, _, prob = librosa.pyin(wave, fmin=60, fmax=500, sr=rate, fill_na=None)
    rms = librosa.feature.rms(y=wave, frame_length=2048, hop_length=512)[0]
    n = min(rms.size, f0.size)
    f0, prob, loud = f0[:n], prob[:n], rms[:n] >= rms.max() * 0.1
    voiced = loud & (prob > 0.3)
    return float(np.median(f0[voiced] if voiced.sum() >= 5 else f0[loud]))


@pytest.fixture(scope="module")
def digit_recogniser():
    """pocketsphinx with a one-word grammar over the ten digits; None when not installed."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        return None
    grammar = "#JSGF V1.0;\ngrammar digit;\npublic <d> = " + " | ".join(DIGITS) + ";\n"

    def recognise(wave: np.ndarray) -> str:
        # a fresh decoder per clip: no adaptation state carried over from earlier clips
        decoder = Decoder(samprate=16000, loglevel="FATAL")
        decoder.add_jsgf_string("digit", grammar)
        decoder.activate_search("digit")
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        return decoder.hyp().hypstr if decoder.hyp() else ""

    return recognise


def test_available_engines_names_every_engine_with_a_reason_or_none():
    found = available_engines()
    assert set(found) == set(engines.ENGINES)
    for engine, reason in found.items():
        assert reason is None or (isinstance(reason, str) and "install" in reason), engine


def test_a_missing_engine_is_refused_with_its_reason(monkeypatch):
    monkeypatch.setattr(
        engines,
        "available_engines",
        lambda: {e: "not here (apt-get install x)" for e in engines.ENGINES},
    )
    with pytest.raises(UsageError, match="'flite' is not available: not here"):
        speak("seven", "flite:slt", 16000)


@pytest.mark.parametrize(
    ("voice", "message"),
    [
        ("slt", "must be 'engine:voice'"),
        ("flite:", "must be 'engine:voice'"),
        ("sapi:david", "unknown speech engine 'sapi'"),
        ("flite:bob", "unknown flite voice 'bob'"),
        ("piper:amy", "unknown piper voice 'amy'"),
    ],
)
def test_bad_voice_names_are_refused(voice, message):
    with pytest.raises(ValueError, match=message):
        speak("seven", voice, 16000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "  "}, "text to speak is empty"),
        ({"speed": 0.2}, "speed must be in"),
        ({"speed": float("nan")}, "speed must be in"),
        ({"semitones": 13}, "semitones must be in"),
        ({"sample_rate": 0}, "sample_rate must be positive"),
    ],
)
def test_bad_style_values_are_refused(kwargs, message):
    args = {"text": "seven", "voice": "espeak:en-us", "sample_rate": 16000, **kwargs}
    with pytest.raises(ValueError, match=message):
        speak(**args)


def test_styles_are_the_product_with_distinct_names():
    every = styles(["flite:slt", "espeak:en+m3"], speeds=[0.9, 1.1], semitones=[-2, 0, 2])
    assert len(every) == 12
    assert len({s.name for s in every}) == 12
    assert Style("espeak:en+m3", 0.9, -2).name == "espeak_en_m3_s0.9_p-2"
    with pytest.raises(ValueError, match="unknown flite voice"):
        styles(["flite:nobody"])


@pytest.mark.parametrize("voice", VOICES)
def test_voice_speaks_the_word_at_the_requested_rate(voice, digit_recogniser):
    _need(voice)
    text, digits = "seven three nine", ("three", "seven", "nine")
    word, sentence, low, high, *spoken = _speak_many(
        voice,
        [("seven", 16000, {}), ("one two three four five six seven eight nine", 16000, {})]
        + [(text, r, {}) for r in (8000, 22050)]
        + [(d, 16000, {}) for d in digits],
    )
    assert word.dtype == np.float32 and word.ndim == 1
    assert 0.3 <= word.size / 16000 <= 1.5, "one word lasts 0.3-1.5 s"
    assert 0.05 < np.abs(word).max() <= 1.0, "not silent, not clipped beyond full scale"
    assert sentence.size > 3 * word.size, "nine words last far longer than one"
    # The output rate is honoured: the same text lasts as long in seconds at 8 and 22.05 kHz (a
    # wrong rate would scale it by their ratio, 2.76; a pitch track of 8 kHz audio is too fragile).
    assert abs(np.log2((high.size / 22050) / (low.size / 8000))) < 0.3
    if digit_recogniser is not None:
        assert [digit_recogniser(wave) for wave in spoken] == list(digits)


@pytest.mark.parametrize("voice", VOICES)
def test_speed_and_pitch_change_duration_and_f0(voice):
    _need(voice)
    text = "seven three nine"
    # piper draws new noise on every call: the median of five utterances per pitch steadies its
    # F0 (one take's pitch track can land far off)
    takes = 5 if voice.startswith("piper:") else 1
    slow, fast, *pitched = _speak_many(
        voice,
        [(text, 16000, {"speed": s}) for s in (0.8, 1.25)]
        + [(text, 16000, {"semitones": p}) for p in (0, 4) for _ in range(takes)],
    )
    assert slow.size / fast.size > 1.15, "speed 0.8 lasts longer than speed 1.25 (ideal 1.56)"
    base = np.median([_median_f0(wave, 16000) for wave in pitched[:takes]])
    up = np.median([_median_f0(wave, 16000) for wave in pitched[takes:]])
    # ~4 up: the band allows for pitch-tracking noise, not for a wrong sign or a double shift
    assert 2 < 12 * np.log2(up / base) < 7, "+4 semitones raises the median F0 by ~4"
