"""Feature caches: each split's log-mel frames computed once into a TFRecord keyed by its config.

The file name holds the feature-config hash and a hash of the split's utterance list, so changing
either makes a new cache; an existing cache is reused as is. A JSON sidecar records the frame
counts and the utterances skipped for bad audio.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from shared.errors import DataError
from shared.log import get_logger
from suites.speech.audio import AudioError, check_waveform, load_audio, resample
from suites.speech.config import FeatureConfig
from suites.speech.data import Screen, Utterance
from suites.speech.features import compute_features

log = get_logger(__name__)


def cache_path(cache_dir: str | Path, split: str, utts: Sequence[Utterance], cfg: FeatureConfig):
    """`<cache_dir>/<feature key>/<split>-<utterance-list hash>.tfrecord`."""
    digest = hashlib.sha1()
    for u in utts:
        source = os.path.abspath(u.path) if u.path else u.source
        digest.update(f"{u.id}\t{source}\t{u.transcript}\t{u.speed}\t{u.pitch}\n".encode())
    return Path(cache_dir) / cfg.key() / f"{split}-{digest.hexdigest()[:12]}.tfrecord"


def utterance_waveform(utt: Utterance, cfg: FeatureConfig, min_samples: int, silence: float):
    """The utterance's mono waveform at `cfg.sample_rate` (raises AudioError on bad audio)."""
    if utt.audio is not None:
        wave = resample(np.asarray(utt.audio, np.float32), int(utt.audio_rate), cfg.sample_rate)
        check_waveform(wave, utt.source, min_samples, silence)
    else:
        wave = load_audio(utt.path, cfg.sample_rate, min_samples, silence)
    if utt.speed != 1.0:  # Kaldi-style speed perturbation: tempo and pitch change together
        wave = speed_perturb(wave, cfg.sample_rate, utt.speed)
    if utt.pitch:
        wave = pitch_shift(wave, cfg.sample_rate, utt.pitch)
    return wave


def speed_perturb(wave: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """Plays `wave` `speed` times faster: resamples from `rate * speed` to `rate`."""
    import librosa

    out = librosa.resample(wave, orig_sr=sample_rate * speed, target_sr=sample_rate)
    return out.astype(np.float32, copy=False)


def pitch_shift(wave: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shifts pitch and spectral envelope by `semitones` at the same tempo and length.

    librosa's phase-vocoder time stretch by `2 ** (-semitones / 12)` followed by resampling
    back to the original length (soxr): every frequency scales by `2 ** (semitones / 12)`,
    simulating a higher (or lower) voice, F0 and formants together.
    """
    import librosa

    # A ~32 ms phase-vocoder frame (librosa's default 2048 samples would be 256 ms at 8 kHz,
    # longer than many words, and smears their onsets).
    n_fft = 2 ** round(math.log2(0.032 * sample_rate))
    out = librosa.effects.pitch_shift(
        wave, sr=sample_rate, n_steps=semitones, res_type="soxr_hq", n_fft=n_fft,
        hop_length=n_fft // 4,
    )  # fmt: skip
    return out.astype(np.float32, copy=False)


def _example(utt: Utterance, feats: np.ndarray) -> bytes:
    f = tf.train.Feature
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "id": f(bytes_list=tf.train.BytesList(value=[utt.id.encode()])),
                "transcript": f(bytes_list=tf.train.BytesList(value=[utt.transcript.encode()])),
                "features": f(float_list=tf.train.FloatList(value=feats.ravel())),
                "num_frames": f(int64_list=tf.train.Int64List(value=[feats.shape[0]])),
            }
        )
    ).SerializeToString()


def build_cache(
    path: Path,
    utts: Sequence[Utterance],
    cfg: FeatureConfig,
    screen: Screen,
    min_seconds: float = 0.05,
    silence_threshold: float = 1e-4,
) -> dict:
    """Computes features of `utts` into `path` unless it exists; returns the sidecar metadata.

    Bad audio (unreadable, empty, shorter than `min_seconds`, peak <= `silence_threshold`) goes
    to `screen`; `screen.finish` raises or logs according to its policy after the pass.
    """
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        for source, reason in meta["skipped"]:
            screen.add(source, reason)
        return meta
    from tqdm import tqdm

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    min_samples = max(1, int(min_seconds * cfg.sample_rate))
    frames, transcripts, ids, speakers, skipped = [], [], [], [], []
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for utt in tqdm(utts, desc=f"features {path.stem}", leave=False, mininterval=2):
            try:
                wave = utterance_waveform(utt, cfg, min_samples, silence_threshold)
            except AudioError as err:
                skipped.append([utt.source, err.reason])
                screen.add(utt.source, err.reason)
                continue
            feats = compute_features(wave, cfg)
            writer.write(_example(utt, feats))
            frames.append(int(feats.shape[0]))
            transcripts.append(utt.transcript)
            ids.append(utt.id)
            speakers.append(utt.speaker)
    meta = {"count": len(frames), "frames": frames, "transcripts": transcripts, "ids": ids,
            "speakers": speakers, "skipped": skipped, "dim": cfg.n_mels}  # fmt: skip
    os.replace(tmp, path)
    meta_path.write_text(json.dumps(meta))
    return meta


def read_cache(path: str | Path, dim: int) -> tf.data.Dataset:
    """Parses a cache into dicts `{id, transcript, features [T, dim], num_frames}`."""
    spec = {
        "id": tf.io.FixedLenFeature([], tf.string),
        "transcript": tf.io.FixedLenFeature([], tf.string),
        "features": tf.io.VarLenFeature(tf.float32),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        feats = tf.reshape(tf.sparse.to_dense(ex["features"]), [-1, dim])
        n = ex["num_frames"]
        return {"id": ex["id"], "transcript": ex["transcript"], "features": feats, "num_frames": n}

    return tf.data.TFRecordDataset(str(path)).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def iter_features(path: str | Path, dim: int) -> Iterator[np.ndarray]:
    """Feature arrays of a cache, in order (for statistics)."""
    for ex in read_cache(path, dim).as_numpy_iterator():
        yield ex["features"]


def prepare_caches(config, cache_dir: Path, artifacts_dir: Path, stride: int) -> dict:
    """Reads and splits the corpus, caches features per split, writes the training artifacts.

    Writes `feature_stats.json` (once: per-band mean and deviation of the training frames),
    `train_texts.json` (the "lm" decoder's in-domain text), `data_summary.json` and, when
    utterances were skipped (`data.bad_input: skip`) or are too short for CTC, `skipped.tsv`;
    for an evaluation-only corpus (no train split) the last two get an `_eval` suffix, so the
    training reports stay. Returns {split: (cache path, metadata)} for the non-empty splits.
    """
    from suites.speech.data import SPLITS, ctc_feasible, make_splits

    cfg = config.data
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    screen = Screen(cfg.bad_input)
    splits = make_splits(cfg, config.seed, cache_dir, screen)
    screen.finish("transcripts")  # fail fast, before computing features
    audio = Screen(cfg.bad_input)
    caches = {}
    for split in SPLITS:
        if splits.get(split):
            path = cache_path(cache_dir / "features", split, splits[split], cfg.features)
            meta = build_cache(path, splits[split], cfg.features, audio, cfg.min_seconds,
                               cfg.silence_threshold)  # fmt: skip
            caches[split] = (path, meta)
    audio.finish("audio")
    train = caches.get("train", (None, None))[1]
    infeasible = [
        (i, "too short for its transcript under CTC (dropped from training)")
        for i, f, t in zip(train["ids"], train["frames"], train["transcripts"], strict=True)
        if not ctc_feasible(f, t, stride)
    ] if train else []  # fmt: skip
    if infeasible:
        log.warning("%d training utterances are too short for CTC", len(infeasible))
    suffix = "" if train else "_eval"
    if screen.problems or audio.problems or infeasible:
        problems = screen.problems + audio.problems + infeasible
        Screen("skip", problems).write(artifacts_dir / f"skipped{suffix}.tsv")
    _write_training_artifacts(caches, cfg, artifacts_dir)
    summary = {
        split: {"utterances": meta["count"], "speakers": sorted(set(meta["speakers"])),
                "hours": sum(meta["frames"]) * cfg.features.hop_length
                / cfg.features.sample_rate / 3600}
        for split, (_, meta) in caches.items()
    }  # fmt: skip
    summary["skipped"] = len(screen.problems) + len(audio.problems)
    summary["ctc_infeasible_train"] = len(infeasible)
    (artifacts_dir / f"data_summary{suffix}.json").write_text(json.dumps(summary, indent=2))
    return caches


def _write_training_artifacts(caches: dict, cfg, artifacts_dir: Path) -> None:
    """Feature statistics (kept once written) and the training transcripts of the LM."""
    from suites.speech.features import FeatureStats

    stats_file = artifacts_dir / "feature_stats.json"
    if not stats_file.exists():
        if "train" not in caches:
            raise DataError(
                f"{cfg.data_dir}: no training utterances (check data.source, data.data_dir and "
                "data.*_speakers)"
            )
        frames = iter_features(caches["train"][0], cfg.features.n_mels)
        FeatureStats.from_frames(frames).save(stats_file)
    texts_file = artifacts_dir / "train_texts.json"
    if "train" in caches and not texts_file.exists():
        texts = sorted(set(caches["train"][1]["transcripts"]))
        texts_file.write_text(json.dumps(texts, indent=0))
