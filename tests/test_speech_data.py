"""Speech readers, audio loading, bad-input screening and speaker-disjoint splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shared.config import load_config
from shared.errors import ConfigError, DataError
from suites.speech import data as readers
from suites.speech.audio import AudioError, load_audio
from suites.speech.data import Screen, Utterance
from suites.speech.text import CharVocab


def _tone(seconds=0.3, rate=16000, freq=440.0, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def _wav(path, wave, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate)
    return path


# -- audio ----------------------------------------------------------------------------------
def test_load_audio_resamples_and_keeps_pitch(tmp_path):
    path = _wav(tmp_path / "a.wav", _tone(0.5, 8000, 500.0), 8000)
    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32 and abs(len(wave) - 8000) <= 2
    spectrum = np.abs(np.fft.rfft(wave))
    peak_hz = np.argmax(spectrum) * 16000 / len(wave)
    assert abs(peak_hz - 500.0) < 5.0


def test_load_audio_stereo_to_mono(tmp_path):
    stereo = np.stack([_tone(0.2), np.zeros(3200, np.float32)], axis=1)
    wave = load_audio(_wav(tmp_path / "s.flac", stereo), 16000)
    np.testing.assert_allclose(wave, stereo.mean(1), atol=1e-4)  # 16-bit FLAC quantisation


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage-not-a-wav"), "unreadable or corrupt"),
        (lambda p: p.write_bytes(b""), "unreadable or corrupt"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "empty audio"),
        (lambda p: sf.write(p, np.zeros(8000, np.float32), 16000), "silent clip"),
        (lambda p: None, "file not found"),
    ],
)
def test_load_audio_bad_files_name_the_file(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=reason) as err:
        load_audio(path, 16000)
    assert str(path) in str(err.value)


def test_load_audio_too_short(tmp_path):
    path = _wav(tmp_path / "short.wav", _tone(0.01))
    with pytest.raises(AudioError, match="too short"):
        load_audio(path, 16000, min_samples=800)


# -- transcripts ----------------------------------------------------------------------------
def test_vocab_round_trip_and_blank():
    vocab = CharVocab()
    text = vocab.normalize("  Don't   STOP ")
    assert text == "don't stop"
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.blank_id == len(vocab.alphabet) == vocab.num_classes - 1
    with pytest.raises(ValueError, match="not in the alphabet"):
        vocab.encode("hi!")
    with pytest.raises(ValueError, match="repeated"):
        CharVocab("abca")


def _manifest(tmp_path, rows, header=True):
    lines = (["path\ttranscript\tspeaker"] if header else []) + rows
    path = tmp_path / "manifest.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_manifest_reader_and_screening(tmp_path):
    _wav(tmp_path / "w/a.wav", _tone())
    _wav(tmp_path / "w/b.wav", _tone())
    _wav(tmp_path / "w/c.wav", _tone())
    path = _manifest(
        tmp_path,
        ["w/a.wav\tHello World\tspk1", "w/b.wav\tcafé!\tspk1", "w/c.wav\t  \tspk2",
         "w/missing.wav\tok\tspk2", "w/a.wav\tyes"],
    )  # fmt: skip
    utts = readers.read_manifest(path)
    assert [u.speaker for u in utts] == ["spk1", "spk1", "spk2", "spk2", ""]
    with pytest.raises(ValueError, match="3 bad utterances") as err:
        screen = Screen("error")
        readers.screen_transcripts(utts, CharVocab(), screen)
        screen.finish("transcripts")
    for name in ("b.wav", "c.wav", "missing.wav"):
        assert name in str(err.value)
    screen = Screen("skip")
    kept = readers.screen_transcripts(readers.read_manifest(path), CharVocab(), screen)
    screen.finish("transcripts")
    assert [u.transcript for u in kept] == ["hello world", "yes"]
    reasons = sorted(r.split(":")[0] for _, r in screen.problems)
    assert reasons == ["characters outside the alphabet", "empty transcript", "missing audio file"]
    screen.write(tmp_path / "skipped.tsv")
    assert len((tmp_path / "skipped.tsv").read_text().splitlines()) == 3


def test_manifest_wrong_field_count_names_line(tmp_path):
    path = _manifest(tmp_path, ["a.wav\tone", "b.wav"])
    with pytest.raises(ValueError, match=r"manifest.tsv:3: expected 2 or 3"):
        readers.read_manifest(path)


def test_fsdd_layout(tmp_path):
    for name in ("7_alice_0", "7_alice_1", "0_bob_3"):
        _wav(tmp_path / "recordings" / f"{name}.wav", _tone(0.2, 8000), 8000)
    utts = readers.read_fsdd(tmp_path)
    assert [(u.transcript, u.speaker) for u in utts] == [
        ("zero", "bob"), ("seven", "alice"), ("seven", "alice"),
    ]  # fmt: skip
    _wav(tmp_path / "recordings" / "x_bad.wav", _tone(0.2, 8000), 8000)
    with pytest.raises(ValueError, match="x_bad.wav"):
        readers.read_fsdd(tmp_path)


def test_speechocean762_layout_reports_mismatches(tmp_path):
    (tmp_path / "train").mkdir()
    _wav(tmp_path / "audio/SPEAKER0001/000010011.flac", _tone())
    _wav(tmp_path / "audio/SPEAKER0002/000020022.flac", _tone())
    (tmp_path / "train/text").write_text("000010011\tWE CALL IT BEAR\n000030033\tNO AUDIO\n")
    (tmp_path / "train/wav.scp").write_text(
        "000010011\taudio/SPEAKER0001/000010011.flac\n000020022\taudio/SPEAKER0002/000020022.flac\n"
    )
    (tmp_path / "train/utt2spk").write_text("000010011 0001\n000020022 0002\n000030033 0003\n")
    screen = Screen("skip")
    utts = readers.read_speechocean762(tmp_path, screen)
    assert [(u.id, u.speaker, u.transcript) for u in utts] == [
        ("000010011", "0001", "WE CALL IT BEAR")
    ]
    reasons = sorted(r for _, r in screen.problems)
    assert reasons == [
        "audio without transcript in train/text", "transcript without audio in train/wav.scp",
    ]  # fmt: skip
    assert load_audio(utts[0].path, 16000).shape == (4800,)


def test_librispeech_layout(tmp_path):
    chapter = tmp_path / "LibriSpeech/dev-clean/84/121123"
    _wav(chapter / "84-121123-0000.flac", _tone())
    _wav(chapter / "84-121123-0001.flac", _tone())
    (chapter / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT\n"
    )
    utts = readers.read_librispeech(tmp_path)
    assert [(u.id, u.speaker, u.transcript) for u in utts] == [
        ("84-121123-0000", "84", "GO DO YOU HEAR"), ("84-121123-0001", "84", "BUT"),
    ]  # fmt: skip
    assert all(u.path.endswith(".flac") for u in utts)


def test_tfds_librispeech_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=3):
        utts = readers.read_tfds("librispeech", "dev_clean")
    assert len(utts) == 3
    for u in utts:
        assert u.audio is not None and u.audio.dtype == np.float32 and u.audio_rate == 16000
        assert np.abs(u.audio).max() <= 1.0 and u.transcript and u.path is None


# -- splits ---------------------------------------------------------------------------------
def _utts(speakers, per=10):
    return [Utterance(f"{s}_{i}", "a", s) for s in speakers for i in range(per)]


def test_speaker_disjoint_split():
    utts = _utts(["a", "b", "c", "d"])
    splits = readers.split_utterances(utts, 0, test_speakers=["d"], validation_speakers=["c"])
    spk = {k: {u.speaker for u in v} for k, v in splits.items()}
    assert spk == {"test": {"d"}, "validation": {"c"}, "train": {"a", "b"}}
    random_val = readers.split_utterances(utts, 1, test_speakers=["d"], validation_fraction=0.1)
    assert len(random_val["validation"]) == 4 and len(random_val["train"]) == 26
    assert not {u.speaker for u in random_val["validation"]} & {"d"}
    again = readers.split_utterances(utts, 1, test_speakers=["d"], validation_fraction=0.1)
    assert [u.id for u in again["validation"]] == [u.id for u in random_val["validation"]]


def test_split_errors_name_the_key():
    utts = _utts(["a", "b"])
    with pytest.raises(ValueError, match=r"data\.test_speakers: unknown speakers \['zz'\]"):
        readers.split_utterances(utts, 0, test_speakers=["zz"])
    with pytest.raises(ValueError, match="overlap"):
        readers.split_utterances(utts, 0, test_speakers=["a"], validation_speakers=["a"])
    everything = readers.split_utterances(utts, 0, test_speakers=["*"], validation_speakers=["b"])
    assert {u.speaker for u in everything["test"]} == {"a"} and not everything["train"]


# -- real data (skipped without ../shared/datasets) ------------------------------------------
@pytest.mark.realdata
def test_real_fsdd_and_speechocean762(real_data):
    fsdd = readers.read_fsdd(real_data / "fsdd")
    assert len(fsdd) == 2000
    assert {u.speaker for u in fsdd} == {"george", "jackson", "nicolas", "yweweler"}
    assert {u.transcript for u in fsdd} == set(readers.FSDD_WORDS)
    screen = Screen("error")
    so = readers.read_speechocean762(real_data / "speechocean762", screen)
    kept = readers.screen_transcripts(so, CharVocab(), screen)
    screen.finish("speechocean762")
    assert len(kept) == 1280 and len({u.speaker for u in kept}) == 64
    assert load_audio(kept[0].path, 16000).size > 16000


def _copy_splits(tmp_path, speakers, **options):
    """make_splits over 10 tone clips of speakers `speakers[i % len]`, "b" held out."""
    from suites.speech.config import DataConfig
    from suites.speech.data import make_splits

    for i in range(10):
        _wav(tmp_path / f"w/{i}.wav", _tone())
    words = ["zero", "one", "two"]
    rows = [f"w/{i}.wav\tword {words[i % 3]}\t{speakers[i % len(speakers)]}" for i in range(10)]
    cfg = DataConfig(
        source="manifest", data_dir=str(_manifest(tmp_path, rows)), test_speakers=["b"],
        validation_fraction=0.0, **options,
    )  # fmt: skip
    return make_splits(cfg, 0, tmp_path / "cache", Screen("error"))


def test_make_splits_adds_speed_perturbed_training_copies(tmp_path):
    from suites.speech.config import DataConfig

    splits = _copy_splits(tmp_path, ["a", "b"], speed_perturb=[0.9, 1.1])
    base = [u for u in splits["train"] if u.speed == 1.0]
    assert len(base) == 5 and {u.speaker for u in base} == {"a"}
    assert len(splits["train"]) == 15
    assert sorted(u.id for u in splits["train"] if u.speed == 0.9) == sorted(
        f"{u.id}@speed0.9" for u in base
    )
    assert {u.speaker for u in splits["test"]} == {"b"} and all(
        u.speed == 1.0 for u in splits["test"]
    )
    with pytest.raises(ConfigError, match="data.speed_perturb"):
        DataConfig(speed_perturb=[1.0])


def test_make_splits_adds_pitch_shifted_copies_of_real_training_clips(tmp_path):
    from suites.speech.cache import cache_path
    from suites.speech.config import FeatureConfig

    # speaker "synth:x" stands for espeak-ng clips: they get no pitch copies
    splits = _copy_splits(tmp_path, ["a", "b", "synth:x"], pitch_perturb=[-2, 3])
    base = [u for u in splits["train"] if u.pitch == 0.0]
    real = [u for u in base if u.speaker == "a"]
    assert len(base) == 7 and len(real) == 4 and len(splits["train"]) == 7 + 2 * 4
    assert sorted(u.id for u in splits["train"] if u.pitch == 3.0) == sorted(
        f"{u.id}@pitch+3" for u in real
    )
    assert {u.speaker for u in splits["train"] if u.pitch} == {"a"}
    assert all(u.pitch == 0.0 for u in splits["test"])
    fc = FeatureConfig()
    assert cache_path(tmp_path, "train", base, fc) != cache_path(
        tmp_path, "train", splits["train"], fc
    )


def test_make_splits_synth_augment_speaks_training_texts_once_per_style_slot(tmp_path):
    from suites.speech.config import DataConfig
    from suites.speech.data import make_splits

    for i in range(6):
        _wav(tmp_path / f"w/{i}.wav", _tone())
    words = ["zero", "one", "two"]
    rows = [f"w/{i}.wav\t{words[i % 3]}\t{'ab'[i % 2]}" for i in range(6)]
    cfg = DataConfig(
        source="manifest", data_dir=str(_manifest(tmp_path, rows)), test_speakers=["b"],
        validation_fraction=0.0, synth_augment=True, synth_voices=["en-us", "en+f3"],
        synth_rates=[160], synth_pitches=[40, 60], synth_styles_per_text=1,
    )  # fmt: skip
    train = make_splits(cfg, 0, tmp_path / "cache", Screen("error"))["train"]
    real = [u for u in train if not u.speaker.startswith("synth:")]
    synth = [u for u in train if u.speaker.startswith("synth:")]
    assert len(real) == 3 and {u.speaker for u in real} == {"a"}
    # the 3 distinct training texts (sorted), one style each, round robin over the 4 styles
    assert [u.transcript for u in synth] == sorted(u.transcript for u in real)
    styles = ["en-us_r160_p40", "en-us_r160_p60", "en_f3_r160_p40"]
    assert [u.speaker for u in synth] == [f"synth:{s}" for s in styles]


# -- config and corpus errors -----------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.lstm_units=0", "model.lstm_units: must be >= 1"),
        ("model.dropout=1.0", r"model.dropout: must be in \[0, 1\)"),
        ("model.test_warps=[0.9, 3.0]", r"model.test_warps\[1\]: must be in \[0.5, 2.0\]"),
        ("model.vtlp_min=1.2", "model.vtlp_min/vtlp_max: need min <= max"),
        (
            ("model.lexicon=[]", "model.export_lexicon=true"),
            "model.export_lexicon needs a non-empty model.lexicon",
        ),
        ("data.synth_styles_per_text=-1", "data.synth_styles_per_text: must be >= 0"),
        ("data.speed_perturb=[0.9, 3.0]", r"data.speed_perturb\[1\]: must be in \[0.5, 2.0\]"),
        ("data.features.win_length=999", "features.win_length must be <= n_fft"),
        ("data.features.hop_length=0", "data.features.hop_length: must be > 0"),
        ("data.alphabet=abca", "data.alphabet: alphabet has repeated characters"),
    ],
)
def test_config_values_out_of_range_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        overrides = [override] if isinstance(override, str) else list(override)
        load_config(REPO / "configs/speech/tiny.yaml", overrides=overrides)


def test_missing_corpus_raises_data_error_naming_the_folder(tmp_path):
    with pytest.raises(DataError, match=r"recordings: FSDD recordings folder not found"):
        readers.read_fsdd(tmp_path)
    with pytest.raises(DataError, match=r"manifest not found \(data.data_dir\)"):
        readers.read_manifest(tmp_path / "manifest.tsv")
    with pytest.raises(DataError, match=r"train/text: speechocean762 file not found"):
        readers.read_speechocean762(tmp_path, Screen())
    with pytest.raises(DataError, match="no \\*.trans.txt files"):
        readers.read_librispeech(tmp_path)
