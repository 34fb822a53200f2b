"""Transcribing a cached split with every configured decoder, and scoring the transcripts.

Decoders: "greedy" (best path), "beam" (`tf.nn.ctc_beam_search_decoder`, `model.beam_width`),
"lexicon" (the `model.lexicon` entry of best CTC likelihood, when a lexicon is set) and "lm"
(prefix beam search with a character n-gram LM, when `model.lm_order` > 0). With
`model.test_warps` every decoder reads the outputs at each utterance's best-scoring warp.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from shared.data.sources import resolve_under
from shared.errors import DataError
from shared.metrics import error_rates as sm
from shared.task import Evaluation
from suites.speech.cache import read_cache
from suites.speech.decoding import ctc_decode, lexicon_decode, sparse_to_lists
from suites.speech.text import CharVocab
from suites.speech.warps import WarpSearch

MAX_SPEAKER_ROWS = 20  # per-speaker figures only for small speaker sets


def warp_search(config) -> WarpSearch | None:
    """The test-time VTLN of `model.test_warps` (None when off)."""
    m = config.model
    return WarpSearch(m.test_warps, config.data.features, m.vtlp_boundary) if m.test_warps else None


def split_outputs(model: keras.Model, path: Path, config, batch_size: int = 32) -> Iterator:
    """Runs `model` over a cached split: yields (ids, references, outputs) per batch."""
    dim = config.data.features.n_mels
    shapes = {"id": [], "transcript": [], "features": [None, dim], "num_frames": []}
    search = warp_search(config)
    for batch in read_cache(path, dim).padded_batch(batch_size, padded_shapes=shapes):
        lengths = tf.cast(batch["num_frames"], tf.int32)
        if search:
            out = search(model, batch["features"], lengths)
        else:
            out = model({"features": batch["features"], "feature_lengths": lengths},
                        training=False)  # fmt: skip
        ids = [x.decode() for x in batch["id"].numpy()]
        yield ids, [x.decode() for x in batch["transcript"].numpy()], out


def log_softmax_rows(out) -> list[np.ndarray]:
    """The outputs of one batch as log-probabilities `[T', classes]`, one per utterance."""
    lp = tf.nn.log_softmax(tf.cast(out["logits"], tf.float32)).numpy()
    return [x[:n] for x, n in zip(lp, np.asarray(out["logit_lengths"]), strict=True)]


def waveform_log_probs(
    model: keras.Model, waves: list[np.ndarray], config, batch_size: int = 16
) -> list[np.ndarray]:
    """Log-probabilities `[T', classes]` of raw waveforms at the model's rate, one per wave.

    Features are computed in the graph as in the export (`TFFeatureExtractor`), with the test
    warps of `model.test_warps` when set.
    """
    from suites.speech.serving import pad_batch
    from suites.speech.tf_features import TFFeatureExtractor

    extractor, search = TFFeatureExtractor(config.data.features), warp_search(config)
    log_probs: list[np.ndarray] = []
    for start in range(0, len(waves), batch_size):
        batch, lengths = pad_batch(waves[start : start + batch_size])
        feats, frames = extractor(tf.constant(batch), tf.constant(lengths))
        inputs = {"features": feats, "feature_lengths": frames}
        out = search(model, feats, frames) if search else model(inputs, training=False)
        log_probs.extend(log_softmax_rows(out))
    return log_probs


def transcribe(
    model: keras.Model, path: Path, config, beam_width: int | None = None
) -> tuple[list[str], list[str], dict[str, list[str]], list[np.ndarray]]:
    """(ids, references, decoder -> transcripts, log-probabilities per utterance) of a split.

    The "lm" decoder is not run here (see `lm_decode`); the log-probabilities are what it reads.
    """
    m = config.model
    vocab = CharVocab(config.data.alphabet)
    width = m.beam_width if beam_width is None else beam_width
    lex_ids = [vocab.encode(vocab.normalize(w)) for w in m.lexicon]
    ids, refs, log_probs = [], [], []
    hyps: dict[str, list[str]] = {"greedy": [], "beam": []} | ({"lexicon": []} if lex_ids else {})
    for batch_ids, batch_refs, out in split_outputs(model, path, config):
        n = len(batch_ids)
        for name, w in (("greedy", 0), ("beam", width)):
            decoded = ctc_decode(out["logits"], out["logit_lengths"], w)
            hyps[name].extend(vocab.decode(x) for x in sparse_to_lists(decoded, n))
        if lex_ids:
            best = lexicon_decode(out["logits"], out["logit_lengths"], lex_ids).numpy()
            hyps["lexicon"].extend(vocab.decode(lex_ids[j]) for j in best)
        log_probs.extend(log_softmax_rows(out))
        ids.extend(batch_ids)
        refs.extend(batch_refs)
    return ids, refs, hyps, log_probs


def language_model(config, artifacts_dir: Path):
    """The character n-gram LM of `model.lm_order` (training transcripts + `model.lm_texts`)."""
    from suites.speech.charlm import CharNgramLM, read_lm_texts

    m, alphabet = config.model, config.data.alphabet
    texts = json.loads((Path(artifacts_dir) / "train_texts.json").read_text())
    paths = [resolve_under(p, config.data.data_dir) for p in m.lm_texts]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"model.lm_texts: {', '.join(missing)} not found (relative entries are taken under "
            "data.data_dir; pass absolute paths or --set model.lm_order=0 to skip the LM)"
        )
    return CharNgramLM(texts + read_lm_texts(paths, alphabet), alphabet, m.lm_order)


def lm_decode(log_probs: list[np.ndarray], lm, config, weight: float, bonus: float) -> list[str]:
    """Prefix beam search with `lm` over per-utterance log-probabilities."""
    from suites.speech.lmdecode import prefix_beam_search

    alphabet, width = config.data.alphabet, config.model.beam_width
    return [prefix_beam_search(x, alphabet, lm, weight, bonus, width) for x in log_probs]


WORD_LM_FILE = "word_lm.arpa"


def build_word_lm(artifacts_dir: Path) -> Path:
    """Writes `word_lm.arpa` (a word trigram of `train_texts.json`) into the artifacts once."""
    from suites.speech.wordlm import build_arpa

    arpa = Path(artifacts_dir) / WORD_LM_FILE
    if not arpa.exists():
        texts = json.loads((Path(artifacts_dir) / "train_texts.json").read_text())
        build_arpa(texts, arpa)
    return arpa


def word_lm(artifacts_dir: Path, general_weight: float = 0.0):
    """The `wordlm.WordLM` of the artifacts: their ARPA file, the training transcripts' words.

    With `general_weight` > 0 it interpolates pocketsphinx's general English trigram, whose
    words join the lexicon (at 1 they are the whole lexicon: the transcripts' LM has no say).
    """
    from suites.speech.wordlm import WordLM

    texts = json.loads((Path(artifacts_dir) / "train_texts.json").read_text())
    words = {w for t in texts for w in t.lower().split()}
    if not general_weight:
        return WordLM(build_word_lm(artifacts_dir), tuple(sorted(words)))
    from suites.speech.lm_mix import general_lm_path, general_words

    general = general_lm_path()
    spelled = set(general_words(general))
    words = spelled if general_weight == 1 else words | spelled
    return WordLM(build_word_lm(artifacts_dir), tuple(sorted(words)), general, general_weight)


def python_decode(log_probs: list[np.ndarray], decoder: str, config, artifacts_dir: Path):
    """The "lm" or "word_lm" transcripts of per-utterance log-probabilities (run's settings)."""
    m = config.model
    if decoder == "lm":
        lm = language_model(config, artifacts_dir)
        return lm_decode(log_probs, lm, config, m.lm_weight, m.lm_bonus)
    return word_lm_decode(log_probs, word_lm(artifacts_dir, m.word_lm_general), config)


def word_lm_decode(log_probs: list[np.ndarray], lm, config) -> list[str]:
    """`wordlm.decode` of per-utterance log-probabilities (padded into one batch)."""
    from suites.speech.wordlm import decode

    m = config.model
    lengths = np.array([len(x) for x in log_probs], np.int64)
    if not len(log_probs):
        return []
    batch = np.zeros((len(log_probs), max(lengths.max(), 1), log_probs[0].shape[-1]), np.float32)
    for row, x in zip(batch, log_probs, strict=True):
        row[: len(x)] = x
    return decode(batch, lengths, config.data.alphabet, lm, m.word_lm_beam, m.word_lm_weight,
                  m.word_lm_word_score)  # fmt: skip


def score(
    ids: list[str], refs: list[str], hyps: dict[str, list[str]], speaker_of: dict[str, str]
) -> Evaluation:
    """CER, WER and exact-transcript accuracy per decoder (and per speaker for few speakers)."""
    metrics: dict[str, float] = {"utterances": len(ids)}
    for name, h in hyps.items():
        metrics[f"cer_{name}"] = sm.cer(refs, h)
        metrics[f"wer_{name}"] = sm.wer(refs, h)
        metrics[f"accuracy_{name}"] = sm.sentence_accuracy(refs, h)
    speakers = [speaker_of.get(i, "") for i in ids]
    if len(set(speakers)) <= MAX_SPEAKER_ROWS:
        for name, h in hyps.items():
            by_speaker = defaultdict(list)
            for spk, r, x in zip(speakers, refs, h, strict=True):
                by_speaker[spk].append((r, x))
            for spk, pairs in sorted(by_speaker.items()):
                r, x = zip(*pairs, strict=True)
                metrics[f"accuracy_{name}/{spk}"] = sm.sentence_accuracy(r, x)
                metrics[f"cer_{name}/{spk}"] = sm.cer(r, x)
    return Evaluation(metrics, ids, refs, hyps, columns={"speaker": speakers})
