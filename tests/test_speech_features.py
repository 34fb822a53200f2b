"""librosa features, their TF-native twin, feature caches, statistics, SpecAugment, espeak-ng."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
import soundfile as sf

from shared.errors import ConfigError
from suites.speech.config import FeatureConfig
from suites.speech.data import Screen, Utterance
from suites.speech.features import FeatureStats, compute_features
from suites.speech.layers import VTLP, Cepstra, FrameStack, SpecAugment, UtteranceMeanNorm
from suites.speech.synth import speak, synthesize_corpus
from suites.speech.tf_features import TFFeatureExtractor


def _waves(rate):
    rng = np.random.default_rng(0)
    t = np.arange(int(0.6 * rate)) / rate
    chirp = 0.4 * np.sin(2 * np.pi * (200 + 900 * t) * t) * np.exp(-t)
    noise = 0.05 * rng.standard_normal(int(0.23 * rate) + 7)
    speech, speech_rate = speak("seven", "en-us", 170, 50)
    import librosa

    return [
        chirp.astype(np.float32),
        noise.astype(np.float32),
        librosa.resample(speech, orig_sr=speech_rate, target_sr=rate),
        np.full(300, 0.01, np.float32),  # shorter than one FFT window
    ]


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(),  # 80 log-mel at 16 kHz, top_db=80
        FeatureConfig(n_fft=512, win_length=400, top_db=None),
        FeatureConfig(
            sample_rate=8000,
            n_fft=256,
            hop_length=80,
            n_mels=40,
            fmin=20.0,
            fmax=3800.0,
            ref=10.0,
            amin=1e-6,
        ),
        FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40, trim_db=30.0),
        FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40, remove_dc=True),
    ],  # fmt: skip
    ids=["logmel80", "win400-no-floor", "8k-40mel", "8k-trim", "8k-dc"],
)
def test_tf_features_match_librosa_on_padded_batch(cfg):
    waves = _waves(cfg.sample_rate)
    if cfg.trim_db is not None:  # silence and a faint hum around two clips: rows get trimmed
        hum = 1e-4 * np.sin(np.arange(cfg.sample_rate // 4, dtype=np.float32))
        waves += [
            np.concatenate([np.zeros(1234, np.float32), waves[0], hum]),
            np.concatenate([hum, waves[2], np.zeros(777, np.float32)]),
        ]
    if cfg.remove_dc:  # a different offset per row: each row's own mean must go
        waves = [w + 0.05 * (i + 1) for i, w in enumerate(waves)]
    batch = np.zeros((len(waves), max(map(len, waves)) + 123), np.float32)  # extra padding
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
    feats, lengths = TFFeatureExtractor(cfg)(batch, np.array([len(w) for w in waves], np.int32))
    for i, w in enumerate(waves):
        ref = compute_features(w, cfg)
        assert int(lengths[i]) == ref.shape[0]
        if cfg.trim_db is None:
            assert ref.shape[0] == cfg.num_frames(len(w))
        got = feats[i, : lengths[i]].numpy()
        rel = np.abs(got - ref).max() / np.abs(ref).max()
        assert rel <= 1e-3, f"utterance {i}: relative error {rel:.2e}"
        assert not np.any(feats[i, lengths[i] :].numpy())  # padding frames are zero


def test_feature_config_validation_and_key():
    with pytest.raises(ConfigError, match="features.win_length"):
        FeatureConfig(n_fft=256, win_length=400)
    with pytest.raises(ConfigError, match="features.n_mfcc"):
        FeatureConfig(kind="mfcc", n_mels=20, n_mfcc=21)
    assert FeatureConfig().key() == FeatureConfig().key() != FeatureConfig(n_mels=40).key()
    assert FeatureConfig(trim_db=40.0).key() != FeatureConfig().key()
    # the cache holds log-mel frames: the in-model DCT does not change its key
    assert FeatureConfig(kind="mfcc", n_mfcc=20).key() == FeatureConfig().key()
    assert FeatureConfig(kind="mfcc", n_mfcc=13).dim == 13 and FeatureConfig().dim == 80


def test_trim_matches_librosa_trim_and_removes_padding():
    import librosa

    from suites.speech.features import nonsilent_frames

    cfg = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40, trim_db=40.0)
    speech = _waves(8000)[2]
    rng = np.random.default_rng(3)
    for lead, tail, floor in ((0, 0, 0.0), (2000, 900, 0.0), (1500, 1500, 1e-4), (333, 0, 1e-3)):
        noise = floor * rng.standard_normal(lead + len(speech) + tail).astype(np.float32)
        wave = np.concatenate([np.zeros(lead), speech, np.zeros(tail)]).astype(np.float32) + noise
        start, stop = nonsilent_frames(wave, cfg)
        # librosa.effects.trim's own frame decision (RMS^2 in dB re the max) and its sample range
        mse = librosa.feature.rms(y=wave, frame_length=256, hop_length=80)[0] ** 2
        loud = np.flatnonzero(librosa.power_to_db(mse, ref=np.max, top_db=None) > -40.0)
        assert (start, stop) == (loud[0], loud[-1] + 1)
        _, (first, _) = librosa.effects.trim(wave, top_db=40.0, frame_length=256, hop_length=80)
        assert first == start * 80
        feats = compute_features(wave, cfg)
        untrimmed = compute_features(wave, FeatureConfig(**{**cfg.__dict__, "trim_db": None}))
        assert feats.shape[0] == stop - start and np.allclose(feats, untrimmed[start:stop])
        # the padding goes: about the same frames as the speech alone (+- the window overlap)
        assert abs(feats.shape[0] - compute_features(speech, cfg).shape[0]) <= 4


def test_remove_dc_makes_features_offset_invariant():
    cfg = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40, remove_dc=True)
    plain = FeatureConfig(sample_rate=8000, n_fft=256, hop_length=80, n_mels=40)
    speech = _waves(8000)[2]
    speech = speech - speech.mean()  # zero-mean reference
    shifted = speech + 0.1
    assert np.allclose(compute_features(shifted, cfg), compute_features(speech, plain), atol=1e-3)
    # without it the offset lands in the lowest mel band (0-57 Hz) of the quiet frames
    assert (
        np.abs(compute_features(shifted, plain)[:, 0] - compute_features(speech, plain)[:, 0]).max()
        > 10
    )
    assert plain.key() != cfg.key()


def test_feature_stats_match_numpy():
    rng = np.random.default_rng(1)
    chunks = [rng.normal(3.0, 2.0, (n, 4)) for n in (5, 17, 1)]
    stats = FeatureStats.from_frames(chunks)
    allx = np.concatenate(chunks)
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats.std, allx.std(0), rtol=1e-7)
    with pytest.raises(ValueError, match="zero frames"):
        FeatureStats.from_frames([])


def test_feature_cache_is_built_once_and_reports_bad_audio(tmp_path):
    from suites.speech.audio import load_audio
    from suites.speech.cache import build_cache, cache_path, iter_features

    cfg = FeatureConfig(n_mels=20)
    good = tmp_path / "good.wav"
    sf.write(good, _waves(16000)[0], 16000)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4000, np.float32), 16000)
    utts = [Utterance("g", "a", "s", str(good)), Utterance("z", "b", "s", str(silent))]
    path = cache_path(tmp_path / "cache", "train", utts, cfg)
    assert path.parent.name == cfg.key()
    screen = Screen("skip")
    meta = build_cache(path, utts, cfg, screen)
    assert meta["count"] == 1 and meta["ids"] == ["g"]
    assert [s for s, _ in screen.problems] == [str(silent)]
    with pytest.raises(ValueError, match="1 bad utterances"):
        screen.policy = "error"
        screen.finish("audio")
    (feats,) = list(iter_features(path, cfg.n_mels))
    expected = compute_features(load_audio(good, cfg.sample_rate), cfg)
    np.testing.assert_allclose(feats, expected, rtol=1e-6)
    good.unlink()  # a second build must not touch the audio
    again = Screen("skip")
    assert build_cache(path, utts, cfg, again) == meta and len(again.problems) == 1
    assert cache_path(tmp_path / "cache", "train", utts[:1], cfg) != path


def test_frame_stack_matches_numpy():
    x = np.arange(2 * 7 * 3, dtype=np.float32).reshape(2, 7, 3)
    stacked, lengths = FrameStack(3)((x, np.array([7, 4], np.int32)))
    padded = np.concatenate([x, np.zeros((2, 2, 3), np.float32)], axis=1)
    np.testing.assert_array_equal(stacked, padded.reshape(2, 3, 9))
    np.testing.assert_array_equal(lengths, [3, 2])
    with pytest.raises(ValueError, match="stride"):
        FrameStack(0)


def test_utterance_mean_norm_matches_numpy():
    x = np.random.default_rng(4).normal(2.0, 1.0, (3, 9, 5)).astype(np.float32)
    lengths = np.array([9, 4, 1], np.int32)
    y = np.asarray(UtteranceMeanNorm()((x, lengths)))
    for i, n in enumerate(lengths):
        np.testing.assert_allclose(y[i], x[i] - x[i, :n].mean(0), atol=1e-5)


def test_utterance_mean_variance_norm_matches_numpy():
    x = np.random.default_rng(5).normal(2.0, 3.0, (3, 9, 5)).astype(np.float32)
    lengths = np.array([9, 4, 2], np.int32)
    y = np.asarray(UtteranceMeanNorm(scale=True, epsilon=1e-3)((x, lengths)))
    for i, n in enumerate(lengths):
        valid = x[i, :n].astype(np.float64)
        expected = (x[i] - valid.mean(0)) / np.sqrt(valid.var(0) + 1e-3)
        np.testing.assert_allclose(y[i], expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="epsilon"):
        UtteranceMeanNorm(epsilon=0.0)


def _numpy_vtlp(x, alpha, sr, n_mels, fmax, boundary):
    """Reference VTLP: forward warp on a fine grid, inverted numerically, np.interp in mel."""
    import librosa

    nyq = sr / 2
    centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=fmax or nyq)[1:-1]
    f_hi = boundary * nyq
    grid = np.linspace(0.0, nyq, 200001)
    knee = f_hi * min(alpha, 1.0) / alpha
    fwd = np.where(
        grid <= knee,
        grid * alpha,
        nyq - (nyq - f_hi * min(alpha, 1.0)) / (nyq - knee) * (nyq - grid),
    )
    src = np.interp(centres, fwd, grid)  # warp^-1 at every band centre
    mel_c, mel_s = librosa.hz_to_mel(centres), librosa.hz_to_mel(src)
    return np.stack([np.interp(mel_s, mel_c, frame) for frame in x.reshape(-1, n_mels)]).reshape(
        x.shape
    )


@pytest.mark.parametrize("sr,n_mels,fmax", [(8000, 40, None), (16000, 80, 7600.0)])
def test_vtlp_warp_matches_numpy_reference(sr, n_mels, fmax):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 7, n_mels)).astype(np.float32).cumsum(-1)
    alphas = np.array([0.85, 0.95, 1.07, 1.15], np.float32)
    layer = VTLP(sr, n_mels, fmax=fmax, boundary=0.8)
    got = np.asarray(layer.warp(x, alphas))
    for i, a in enumerate(alphas):
        ref = _numpy_vtlp(x[i], float(a), sr, n_mels, fmax, 0.8)
        np.testing.assert_allclose(got[i], ref, atol=2e-3)
    # alpha = 1 is the identity; inference passes inputs through untouched.
    np.testing.assert_allclose(layer.warp(x, np.ones(4, np.float32)), x, atol=1e-4)
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_vtlp_training_draws_factors_in_range():
    layer = VTLP(8000, 40, min_factor=0.9, max_factor=1.1, seed=2)
    x = np.tile(np.linspace(0.0, 39.0, 40, dtype=np.float32), (64, 3, 1))  # x[..., k] = k
    y = np.asarray(layer(x, training=True))
    assert not np.allclose(y, x)
    # On a linear ramp the warped value at a low band is its source position in bands, which
    # lies between the positions for the extreme factors.
    lo = np.asarray(layer.warp(x[:1], np.array([1.1], np.float32)))[0, 0]
    hi = np.asarray(layer.warp(x[:1], np.array([0.9], np.float32)))[0, 0]
    assert np.all(y[:, 0, 5] >= lo[5] - 1e-4) and np.all(y[:, 0, 5] <= hi[5] + 1e-4)
    assert len(np.unique(np.round(y[:, 0, 5], 4))) > 10  # one factor per utterance
    with pytest.raises(ValueError, match="min_factor"):
        VTLP(8000, 40, min_factor=1.2, max_factor=1.1)
    with pytest.raises(ValueError, match="boundary"):
        VTLP(8000, 40, boundary=1.0)


def test_cepstra_match_librosa_mfcc():
    import librosa

    logmel = np.random.default_rng(7).normal(size=(2, 6, 40)).astype(np.float32)
    got = np.asarray(Cepstra(20)(logmel))
    for i in range(2):
        ref = librosa.feature.mfcc(S=logmel[i].T, n_mfcc=20, dct_type=2, norm="ortho").T
        np.testing.assert_allclose(got[i], ref, atol=1e-4)
    with pytest.raises(ValueError, match="exceeds"):
        Cepstra(41)(logmel)
    with pytest.raises(ValueError, match="num_coefficients"):
        Cepstra(0)


def test_spec_augment_masks_only_in_training():
    layer = SpecAugment(freq_masks=2, freq_width=5, time_masks=2, time_width=10, seed=3)
    x = np.random.default_rng(0).normal(size=(8, 60, 40)).astype(np.float32) + 5.0
    lengths = np.array([60, 50, 40, 30, 20, 60, 60, 60], np.int32)
    np.testing.assert_array_equal(layer(x, lengths, training=False), x)
    y = np.asarray(layer(x, lengths, training=True))
    masked = y == 0.0
    assert masked.any() and np.all(y[~masked] == x[~masked])
    for i in range(len(x)):
        full_freq = masked[i].all(axis=0)  # bins masked at every frame
        full_time = masked[i].all(axis=1)  # frames masked in every bin
        assert full_freq.sum() <= 2 * 5
        assert full_time.sum() <= 2 * min(10, int(lengths[i] * 0.2))
        assert not full_time[lengths[i] :].any()  # time masks stay inside the utterance
        assert np.all(masked[i] == (full_freq[None, :] | full_time[:, None]))
    with pytest.raises(ValueError, match="freq_width"):
        SpecAugment(freq_width=-1)


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (SpecAugment, dict(freq_masks=3, freq_width=7, time_masks=1, time_width=9,
                           max_time_ratio=0.3, fill=-1.0, seed=5)),
        (VTLP, dict(sample_rate=8000, n_mels=40, fmin=20.0, fmax=3800.0, min_factor=0.85,
                    max_factor=1.15, boundary=0.7, seed=3)),
        (UtteranceMeanNorm, dict(scale=True, epsilon=0.01)),
        (Cepstra, dict(num_coefficients=7)),
        (FrameStack, dict(stride=5)),
    ],
)  # fmt: skip
def test_layer_config_round_trip_keeps_non_default_arguments(cls, kwargs):
    defaults = inspect.signature(cls.__init__).parameters
    assert all(value != defaults[key].default for key, value in kwargs.items())
    layer = cls(**kwargs, name="custom_name")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls and restored.name == "custom_name"
    for key, value in kwargs.items():
        assert getattr(restored, key) == value, key


def test_espeak_voices_rates_and_corpus(tmp_path):
    base, rate = speak("four five six", "en-us", 175, 50)
    assert rate == 22050 and np.abs(base).max() > 0.1
    fast, _ = speak("four five six", "en-us", 350, 50)
    other, _ = speak("four five six", "en+f3", 175, 50)
    assert len(fast) < 0.75 * len(base)
    assert len(other) != len(base) or not np.allclose(other, base)
    with pytest.raises(ValueError, match="unknown espeak-ng voice"):
        speak("x", "no-such-voice")
    with pytest.raises(ValueError, match="rate"):
        speak("x", rate=10)
    manifest = synthesize_corpus(["yes", "no"], tmp_path, 16000, ["en-us", "en+m3"], [150], [50])
    rows = manifest.read_text().splitlines()
    assert rows[0] == "path\ttranscript\tspeaker" and len(rows) == 5
    wav, sr = sf.read(tmp_path / rows[1].split("\t")[0])
    assert sr == 16000 and 0.1 < len(wav) / sr < 2.0
    mtime = manifest.stat().st_mtime_ns
    synthesize_corpus(["yes", "no"], tmp_path, 16000, ["en-us", "en+m3"], [150], [50])
    assert manifest.stat().st_mtime_ns == mtime  # reused, not re-synthesised


def test_speed_perturbation_scales_tempo_and_pitch():
    from suites.speech.cache import speed_perturb

    t = np.arange(16000) / 16000
    wave = np.sin(2 * np.pi * 400 * t).astype(np.float32)
    for speed in (0.9, 1.1):
        out = speed_perturb(wave, 16000, speed)
        assert abs(len(out) - 16000 / speed) <= 2
        peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
        assert abs(peak_hz - 400 * speed) < 3


def test_pitch_shift_scales_frequencies_and_keeps_length():
    from suites.speech.cache import pitch_shift

    t = np.arange(8000) / 8000
    wave = (np.sin(2 * np.pi * 200 * t) + 0.5 * np.sin(2 * np.pi * 600 * t)).astype(np.float32)
    for semitones in (-3.0, 3.0):
        out = pitch_shift(wave, 8000, semitones)
        assert out.dtype == np.float32 and out.shape == wave.shape
        spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(6000)))
        hz = np.fft.rfftfreq(6000, 1 / 8000)
        ratio = 2 ** (semitones / 12)
        for f in (200, 600):  # each partial moves by the same ratio (envelope and F0 together)
            band = (hz > 0.8 * f * ratio) & (hz < 1.2 * f * ratio)
            assert abs(hz[band][np.argmax(spectrum[band])] - f * ratio) < 3
        assert spectrum[np.argmin(np.abs(hz - 200))] < 0.05 * spectrum.max()  # nothing left at 200


def test_espeak_corpus_styles_per_text_round_robin(tmp_path):
    from suites.speech.synth import styles

    texts, voices, rates = ["one", "two", "three"], ["en-us", "en+m3"], [140, 180]
    every = [s.name for s in styles(voices, rates, [50])]  # 4 styles
    manifest = synthesize_corpus(texts, tmp_path, 16000, voices, rates, [50], styles_per_text=3)
    rows = [r.split("\t") for r in manifest.read_text().splitlines()[1:]]
    # text i gets styles 3i, 3i+1, 3i+2 (mod 4): 9 clips, each style used 2 or 3 times
    expected = [(t, every[(3 * i + j) % 4]) for i, t in enumerate(texts) for j in range(3)]
    assert [(r[1], r[2]) for r in rows] == expected
    assert all((tmp_path / r[0]).is_file() for r in rows)
    full = synthesize_corpus(
        ["one"], tmp_path / "all", 16000, voices, rates, [50], styles_per_text=9
    )
    assert len(full.read_text().splitlines()) == 1 + 4  # k above the style count = every style
    with pytest.raises(ValueError, match="styles_per_text"):
        synthesize_corpus(["one"], tmp_path / "bad", 16000, voices, rates, [50], styles_per_text=-1)
