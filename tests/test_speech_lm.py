"""Character n-gram LM (vs a direct Witten-Bell recursion) and LM prefix beam search (vs brute
force over every labelling)."""

from __future__ import annotations

import itertools
import zipfile
from collections import Counter

import numpy as np
import pytest

from suites.speech.charlm import CharNgramLM, normalize_sentence, read_lm_texts
from suites.speech.lmdecode import prefix_beam_search

SENTS = ["a b", "ab ba", "bab", "a", "bb a b", "abba"]


def _witten_bell(sentences, alphabet, order, history, symbol):
    """P(symbol | history) by the textbook recursion on string counts ('^' pad, '$' end)."""
    padded = ["^" * (order - 1) + s + "$" for s in sentences]
    vocab = list(alphabet) + ["$"]

    def p(h, x):
        if h is None:
            return 1.0 / len(vocab)
        n = len(h) + 1
        grams = Counter(s[i - n + 1 : i + 1] for s in padded for i in range(order - 1, len(s)))
        follow = {g[-1]: c for g, c in grams.items() if g[:-1] == h}
        lower = p(h[1:] if h else None, x)
        total = sum(follow.values())
        if total == 0:
            return lower
        return (follow.get(x, 0) + len(follow) * lower) / (total + len(follow))

    return p(history, symbol)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_char_lm_matches_witten_bell_recursion(order):
    alphabet = "ab "
    lm = CharNgramLM(SENTS, alphabet, order)
    for prefix in ["", "a", "ab", "b a", "bbb", "ab ba"]:
        got = np.exp(lm.log_probs(prefix))
        hist = ("^" * (order - 1) + prefix)[-(order - 1) :] if order > 1 else ""
        want = [_witten_bell(SENTS, alphabet, order, hist, x) for x in list(alphabet) + ["$"]]
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert got.sum() == pytest.approx(1.0)


def test_char_lm_higher_order_fits_held_out_english_better():
    train = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]
    held_out = "the cat sat on the log"
    scores = [CharNgramLM(train, " acdeghlmnost", n).sentence_logprob(held_out) for n in (1, 3)]
    assert scores[1] > scores[0] + 10  # nats: trigrams know English-like spelling
    with pytest.raises(ValueError, match="outside the alphabet"):
        CharNgramLM(["abc!"], "abc ")
    with pytest.raises(ValueError, match="order"):
        CharNgramLM(["ab"], "ab", order=0)


def test_read_lm_texts_normalises_and_drops_unspeakable_lines(tmp_path):
    alphabet = " 'abcdefghijklmnopqrstuvwxyz"
    assert normalize_sentence("Don’t go -- now!", alphabet) == "don't go now"
    assert normalize_sentence("I'm 20.", alphabet) is None
    archive = tmp_path / "pairs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("eng.txt", "Go.\tVa !\nWho?\tQui ?\nI'm 20.\tJ'ai 20 ans.\nGo.\tBouge !\n")
        z.writestr("_about.txt", "Not a sentence file.\n")
    plain = tmp_path / "more.txt"
    plain.write_text("Well-done, Tom.\n")
    assert read_lm_texts([archive, plain], alphabet) == ["go", "who", "well done tom"]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_lm_texts([tmp_path / "missing.txt"], alphabet)


def _ctc_label_probs(log_probs, alphabet):
    """{labelling: log P_ctc} by summing every alignment (brute force; blank last)."""
    blank = len(alphabet)
    out: dict[str, float] = {}
    for path in itertools.product(range(blank + 1), repeat=log_probs.shape[0]):
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        text = "".join(alphabet[c] for c in merged if c != blank)
        lp = float(sum(log_probs[t, c] for t, c in enumerate(path)))
        out[text] = np.logaddexp(out.get(text, -np.inf), lp)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_beam_search_is_exact_with_a_wide_beam(seed):
    alphabet = "ab "
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(5, 4)) * 2.0
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    ctc = _ctc_label_probs(log_probs, alphabet)
    # no LM, no bonus: the most probable labelling
    got = prefix_beam_search(log_probs, alphabet, None, 0.0, 0.0, beam_width=500, prune=-np.inf)
    assert got == max(ctc, key=ctc.get)
    # with an LM: argmax of log P_ctc + w log P_lm (with end) + bonus * length
    lm = CharNgramLM(SENTS, alphabet, 2)
    for weight, bonus in ((0.5, 0.0), (1.5, 1.0)):
        score = {t: lp + weight * lm.sentence_logprob(t) + bonus * len(t) for t, lp in ctc.items()}
        got = prefix_beam_search(log_probs, alphabet, lm, weight, bonus, 500, prune=-np.inf)
        assert got == max(score, key=score.get)
    with pytest.raises(ValueError, match="log_probs"):
        prefix_beam_search(log_probs[:, :3], alphabet)


def test_task_language_model_reads_lm_texts_under_data_dir(tmp_path):
    import json
    from pathlib import Path

    from shared.config import load_config
    from shared.errors import DataError
    from suites.speech.transcribe import language_model

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "corpus").mkdir()
    (tmp_path / "extra.txt").write_text("Go home.\nGo now!\n")
    overrides = ["model.lm_order=2", "model.lm_texts=['../extra.txt']"]
    cfg = load_config(repo / "configs/speech/tiny.yaml", overrides=overrides)
    cfg.data.data_dir = str(tmp_path / "corpus")
    artifacts = tmp_path / "run" / "artifacts"
    artifacts.mkdir(parents=True)
    (artifacts / "train_texts.json").write_text(json.dumps(["yes", "no"]))
    lm = language_model(cfg, artifacts)
    want = CharNgramLM(["yes", "no", "go home", "go now"], cfg.data.alphabet, 2)
    np.testing.assert_allclose(lm.log_probs("go "), want.log_probs("go "))
    cfg.model.lm_texts = ["../missing.txt"]
    with pytest.raises(DataError, match="model.lm_texts"):
        language_model(cfg, artifacts)
