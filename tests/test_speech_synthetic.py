"""Synthetic speech from the configured engines: espeak-only configs keep their caches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shared.config import load_config
from shared.errors import ConfigError, DataError
from suites.speech import data, engines

REPO = Path(__file__).resolve().parents[1]


def _config(*overrides: str):
    return load_config(REPO / "configs/speech/tiny.yaml", overrides=list(overrides)).data


def test_espeak_only_configs_keep_their_synthetic_cache_folder(tmp_path, monkeypatch):
    """The folder name is the hash of the fields the espeak-ng corpus has always been keyed by."""
    cfg = _config()
    seen = {}

    def fake_corpus(texts, out_dir, *args, **kwargs):
        seen["dir"] = Path(out_dir).name
        raise RuntimeError("stop")

    monkeypatch.setattr("suites.speech.synth.synthesize_corpus", fake_corpus)
    with pytest.raises(RuntimeError, match="stop"):
        data.synthetic_utterances(cfg.synth_texts, cfg, tmp_path)
    assert not cfg.synth_engines
    assert seen["dir"] == "synthetic-ecaf4442f494"  # the shipped tiny.yaml's folder, unchanged
    spec = [cfg.synth_texts, cfg.synth_voices, cfg.synth_rates, cfg.synth_pitches, 16000, 0]
    assert hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12] in seen["dir"]


def test_engine_voices_speak_every_style_through_engines(tmp_path):
    cfg = _config(
        "data.synth_voices=['espeak:en-us']", "data.synth_speeds=[1.0, 1.5]",
        "data.synth_semitones=[0, 3]",
    )  # fmt: skip
    utts = data.synthetic_utterances(["seven", "three"], cfg, tmp_path)
    names = [s.name for s in engines.styles(["espeak:en-us"], [1.0, 1.5], [0.0, 3.0])]
    assert len(utts) == 8 and sorted({u.speaker for u in utts}) == sorted(names)
    assert {u.transcript for u in utts} == {"seven", "three"}
    lengths = {}
    for u in utts:
        wave, rate = sf.read(u.path, dtype="float32")
        assert rate == cfg.features.sample_rate and np.abs(wave).max() > 0.05
        lengths[u.transcript, u.speaker] = len(wave)
    slow = engines.Style("espeak:en-us", 1.0, 0.0).name
    fast = engines.Style("espeak:en-us", 1.5, 0.0).name
    assert lengths["seven", fast] < 0.85 * lengths["seven", slow]  # speed 1.5 is shorter
    other = data.synthetic_utterances(["seven", "three"], _config(), tmp_path / "plain")
    assert {u.speaker for u in other}.isdisjoint(names)


@pytest.mark.parametrize(
    "voices",
    [["espeak:en-us", "en+m3"], ["flite:nobody"], ["nope:x"]],
)
def test_bad_engine_voices_are_config_errors(voices):
    with pytest.raises(ConfigError, match="data.synth_voices"):
        _config(f"data.synth_voices={voices}")


def test_a_missing_engine_is_a_data_error_with_its_install_hint(tmp_path, monkeypatch):
    cfg = _config("data.synth_voices=['espeak:en-us', 'flite:slt']")
    absent = {"espeak": None, "flite": "no `flite` program (apt-get install flite)"}
    monkeypatch.setattr(engines, "available_engines", lambda: absent)
    with pytest.raises(DataError, match=r"data.synth_voices: 'flite:slt'.*apt-get install flite"):
        data.synthetic_utterances(["seven"], cfg, tmp_path)


def test_flite_voice_in_a_config(tmp_path):
    reason = engines.available_engines()["flite"]
    if reason is not None:
        pytest.skip(f"flite: {reason}")
    cfg = _config("data.synth_voices=['flite:slt']", "data.synth_speeds=[0.8, 1.2]")
    utts = data.synthetic_utterances(["seven"], cfg, tmp_path)
    assert len(utts) == 2
    waves = {u.speaker: sf.read(u.path, dtype="float32")[0] for u in utts}
    slow, fast = (waves[engines.Style("flite:slt", s).name] for s in (0.8, 1.2))
    assert len(fast) < 0.85 * len(slow) and np.abs(fast).max() > 0.05
