"""suites.speech.wordlm: the lexicon + word LM beam search against an exhaustive search.

On a tiny alphabet (a, b, space + blank) and few frames every CTC frame path can be listed; each
path's collapsed text is split into words, and a path counts when all its words are in the
lexicon. Its score is the path's log-probability + lm_weight * log10 P_LM(words, </s>) +
word_score * len(words), with P_LM read by hand from a small hand-written ARPA bigram (Katz
backoff). The decoder must return the words of the best path. Skips without flashlight-text.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("flashlight.lib.text.decoder", reason="flashlight-text is not installed")

from suites.speech.wordlm import WordLM, build_arpa, decode  # noqa: E402

ALPHABET = "ab "
LEXICON = ("a", "ab", "ba", "bb")
# log10 probabilities and backoffs of a bigram LM over the lexicon ("bb" only by backoff).
UNIGRAMS = {"<s>": (-99.0, -0.3), "</s>": (-0.7, 0.0), "a": (-0.6, -0.2), "ab": (-0.8, -0.1),
            "ba": (-0.9, -0.4), "bb": (-1.5, 0.0)}  # fmt: skip
BIGRAMS = {("<s>", "a"): -0.5, ("<s>", "ba"): -0.2, ("a", "ab"): -0.1, ("ab", "</s>"): -0.2,
           ("ba", "a"): -0.3, ("a", "</s>"): -0.9}  # fmt: skip


def _write_arpa(path, unigrams=UNIGRAMS, bigrams=BIGRAMS):
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines += [f"{p}\t{w}\t{b}" for w, (p, b) in unigrams.items()]
    lines += ["", "\\2-grams:"] + [f"{p}\t{h} {w}" for (h, w), p in bigrams.items()]
    path.write_text("\n".join([*lines, "", "\\end\\", ""]))
    return path


def _lm_log10(words: list[str]) -> float:
    total, history = 0.0, "<s>"
    for word in [*words, "</s>"]:
        bigram = BIGRAMS.get((history, word))
        total += bigram if bigram is not None else UNIGRAMS[history][1] + UNIGRAMS[word][0]
        history = word
    return total


def _collapse(path: tuple[int, ...], blank: int) -> str:
    kept = [k for i, k in enumerate(path) if k != blank and (i == 0 or k != path[i - 1])]
    return "".join(ALPHABET[k] for k in kept)


def _exhaustive(
    frames: np.ndarray, lm_weight: float, word_score: float, lexicon=LEXICON, lm_log10=None
) -> tuple[str, float]:
    """Best lexicon word sequence over all frame paths (and its score)."""
    lm_log10 = lm_log10 or _lm_log10
    blank = len(ALPHABET)
    best, best_score = None, -np.inf
    for path in itertools.product(range(blank + 1), repeat=frames.shape[0]):
        words = _collapse(path, blank).split()
        if not all(w in lexicon for w in words):
            continue
        score = float(frames[np.arange(frames.shape[0]), path].sum())
        score += lm_weight * lm_log10(words) + word_score * len(words)
        if score > best_score:
            best, best_score = " ".join(words), score
    return best, best_score


def _random_log_probs(rng, frames: int) -> np.ndarray:
    logits = rng.normal(0.0, 2.0, size=(frames, len(ALPHABET) + 1))
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


@pytest.mark.parametrize(("lm_weight", "word_score"), [(0.0, 0.0), (1.0, 0.0), (2.0, 1.5)])
def test_decode_finds_the_exhaustive_best(tmp_path, lm_weight, word_score):
    lm = WordLM(_write_arpa(tmp_path / "lm.arpa"), LEXICON)
    rng = np.random.default_rng(int(lm_weight * 10 + word_score))
    batch = np.stack([_random_log_probs(rng, 7) for _ in range(12)])
    lengths = np.array([7, 6, 5, 7, 4, 7, 6, 7, 3, 7, 5, 7])
    got = decode(batch, lengths, ALPHABET, lm, beam_size=500, lm_weight=lm_weight,
                 word_score=word_score, beam_threshold=1e9)  # fmt: skip
    want = [_exhaustive(b[:n], lm_weight, word_score)[0] for b, n in zip(batch, lengths)]
    assert got == want
    assert len(set(want)) > 3, "the cases exercise different word sequences"


def test_the_lm_changes_the_answer(tmp_path):
    """Where the exhaustive best differs with and without the LM, the decoder follows both."""
    lm = WordLM(_write_arpa(tmp_path / "lm.arpa"), LEXICON)
    rng = np.random.default_rng(0)
    for _ in range(200):
        frames = _random_log_probs(rng, 6)
        plain, with_lm = _exhaustive(frames, 0.0, 0.0)[0], _exhaustive(frames, 1.5, 0.0)[0]
        if plain != with_lm:
            break
    assert plain != with_lm
    args = (frames[None], [6], ALPHABET, lm)
    assert decode(*args, lm_weight=0.0, beam_threshold=1e9) == [plain]
    assert decode(*args, lm_weight=1.5, beam_threshold=1e9) == [with_lm]


def test_bad_shapes_and_alphabets_are_refused(tmp_path):
    lm = WordLM(_write_arpa(tmp_path / "lm.arpa"), LEXICON)
    frames = np.zeros((1, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"must be \[B, T, 4\]"):
        decode(np.zeros((1, 3, 5)), [3], ALPHABET, lm)
    with pytest.raises(ValueError, match="exceeds the 3 frames"):
        decode(frames, [4], ALPHABET, lm)
    with pytest.raises(ValueError, match="needs the space"):
        decode(frames, [3], "abc", lm)
    with pytest.raises(ValueError, match="no lexicon word can be spelled"):
        decode(frames, [3], "xy ", WordLM(lm.arpa, ("ab",)))


def test_build_arpa_gives_a_model_kenlm_reads_with_the_counts_it_should(tmp_path):
    path = build_arpa(["Ab ba", "ab  ab ba", "ba"], tmp_path / "words.arpa")
    text = path.read_text()
    assert text.startswith("\\data\\")
    # 4 unigrams (<s>, </s>, ab, ba); bigrams <s> ab, <s> ba, ab ba, ab ab, ba </s>.
    assert "ngram 1=4" in text and "ngram 2=5" in text
    # P(ab | <s>) = 2/3 of the kept mass 0.5 (pocketsphinx's fixed discount)
    assert f"{np.log10(2 / 3 * 0.5):.4f}\t<s> ab\t" in text
    lm = WordLM(path, ("ab", "ba"))
    # Uniform acoustics: the LM decides. P(ba, </s>) = 1/6 * 1/2 beats P(ab ba, </s>) =
    # 1/3 * 1/4 * 1/2 and P(ab, </s>) = 1/3 * 1 * 2/3 * 1/8 (the last two by backoff).
    frames = np.log(np.full((1, 6, 4), 0.25, np.float32))
    assert decode(frames, [6], ALPHABET, lm, lm_weight=1.0) == ["ba"]
    with pytest.raises(ValueError, match="no words"):
        build_arpa(["  ", ""], tmp_path / "empty.arpa")


# A second, "general" bigram model that also knows "aa" (absent from the domain model).
GENERAL_UNIGRAMS = {"<s>": (-99.0, -0.2), "</s>": (-0.5, 0.0), "a": (-0.4, -0.3),
                    "aa": (-0.9, -0.1), "ab": (-1.2, -0.2), "ba": (-0.7, 0.0),
                    "bb": (-1.1, 0.0)}  # fmt: skip
GENERAL_BIGRAMS = {("<s>", "aa"): -0.3, ("aa", "ba"): -0.2, ("a", "a"): -0.6,
                   ("ba", "</s>"): -0.1, ("<s>", "bb"): -0.9}  # fmt: skip


def _mixed_log10(words: list[str], weight: float) -> float:
    """log10 of the interpolated sentence probability, word by word, from the tables above."""

    def p(unigrams, bigrams, history, word):
        if word not in unigrams:
            return 0.0
        log10 = bigrams.get((history, word))
        if log10 is None:
            log10 = unigrams.get(history, (0.0, 0.0))[1] + unigrams[word][0]
        return 10.0**log10

    total, history = 0.0, "<s>"
    for word in [*words, "</s>"]:
        domain = p(UNIGRAMS, BIGRAMS, history, word)
        general = p(GENERAL_UNIGRAMS, GENERAL_BIGRAMS, history, word)
        total += np.log10((1 - weight) * domain + weight * general)
        history = word
    return total


@pytest.mark.parametrize("weight", [0.3, 1.0])
def test_interpolated_general_lm_finds_the_exhaustive_best(tmp_path, weight):
    pytest.importorskip("pocketsphinx", reason="pocketsphinx reads the general model")
    general = _write_arpa(tmp_path / "general.arpa", GENERAL_UNIGRAMS, GENERAL_BIGRAMS)
    lexicon = (*LEXICON, "aa") if weight < 1 else ("a", "aa", "ab", "ba", "bb")
    lm = WordLM(_write_arpa(tmp_path / "lm.arpa"), lexicon, general, weight)
    rng = np.random.default_rng(7)
    batch = np.stack([_random_log_probs(rng, 7) for _ in range(16)])
    batch[::2, :, [0, 3]] += 2.0  # half the cases lean to "a" and blank: room for "aa"
    lengths = np.array([7, 6, 5, 7, 4, 7, 6, 7, 3, 7, 5, 7, 6, 7, 7, 5])
    got = decode(batch, lengths, ALPHABET, lm, beam_size=500, lm_weight=1.5, word_score=0.5,
                 beam_threshold=1e9)  # fmt: skip
    want = [
        _exhaustive(b[:n], 1.5, 0.5, lexicon, lambda w: _mixed_log10(w, weight))[0]
        for b, n in zip(batch, lengths)
    ]
    assert got == want
    assert any("aa" in w.split() for w in want), "a word only the general model knows wins"


def test_general_words_lists_the_unigrams_of_an_arpa_model(tmp_path):
    from suites.speech.lm_mix import general_words

    general = _write_arpa(tmp_path / "general.arpa", GENERAL_UNIGRAMS, GENERAL_BIGRAMS)
    assert general_words(general) == ["a", "aa", "ab", "ba", "bb"]


def test_the_shipped_general_lm_spells_words_the_transcripts_never_had(tmp_path):
    """Frames that clearly spell "the cat sat": with pocketsphinx's English trigram mixed in the
    decoder reads them; with the transcripts' LM alone it can only answer its own words."""
    pytest.importorskip("pocketsphinx", reason="pocketsphinx ships the general model")
    from suites.speech.lm_mix import general_lm_path, general_words

    alphabet, text = "abcdefghijklmnopqrstuvwxyz' ", "the cat sat"
    frames = np.full((1, 3 * len(text), len(alphabet) + 1), -8.0, np.float32)
    for i, char in enumerate(text):  # each character, then two blanks
        frames[0, 3 * i, alphabet.index(char)] = 0.0
        frames[0, 3 * i + 1 : 3 * i + 3, -1] = 0.0
    domain = build_arpa(["we call it bear", "zero three five one"], tmp_path / "domain.arpa")
    own = ("bear", "call", "five", "it", "one", "three", "we", "zero")
    general = general_lm_path()
    words = general_words(general)
    assert len(words) > 50_000 and {"the", "cat", "sat"} <= set(words)
    mixed = WordLM(domain, tuple(sorted({*own, *words})), general, 0.5)
    args = (frames, [frames.shape[1]], alphabet)
    assert decode(*args, mixed, lm_weight=0.5, word_score=1.0) == [text]
    alone = decode(*args, WordLM(domain, own), lm_weight=0.5, word_score=1.0)[0]
    assert alone and set(alone.split()) <= set(own)
