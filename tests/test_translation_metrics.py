"""shared.metrics.text against independent implementations of BLEU (Papineni 2002) and chrF."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from shared.metrics.text import corpus_bleu, corpus_chrf

# Plain lowercase words without punctuation: sacreBLEU's 13a tokenizer leaves them as they are.
HYPS = ["the cat sat on the mat today", "a dog runs in the big park", "two men play chess outside"]
REFS = [
    "the cat sat on a mat today",
    "a dog runs through the park",
    "two men are playing chess outside",
]


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def reference_bleu(hyps: list[str], refs: list[str]) -> float:
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref in zip(hyps, refs, strict=True):
        h, r = hyp.split(), ref.split()
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, 5):
            hn, rn = _ngrams(h, n), _ngrams(r, n)
            matches[n - 1] += sum(min(c, rn[g]) for g, c in hn.items())
            totals[n - 1] += sum(hn.values())
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / 4
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return 100 * brevity * math.exp(log_precision)


def reference_chrf(hyps: list[str], refs: list[str], order: int = 6, beta: float = 2.0) -> float:
    stats = [[0, 0, 0] for _ in range(order)]
    for hyp, ref in zip(hyps, refs, strict=True):
        h, r = hyp.replace(" ", ""), ref.replace(" ", "")
        for n in range(1, order + 1):
            hn = Counter(h[i : i + n] for i in range(len(h) - n + 1))
            rn = Counter(r[i : i + n] for i in range(len(r) - n + 1))
            stats[n - 1][0] += sum(hn.values())
            stats[n - 1][1] += sum(rn.values())
            stats[n - 1][2] += sum(min(c, rn[g]) for g, c in hn.items())
    precision = sum(m / h for h, _, m in stats) / order
    recall = sum(m / r for _, r, m in stats) / order
    return 100 * (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def test_bleu_matches_reference_implementation():
    score = corpus_bleu(HYPS, REFS)
    assert score.score == pytest.approx(reference_bleu(HYPS, REFS), abs=1e-9)
    assert "tok:13a" in score.signature and "case:mixed" in score.signature
    assert corpus_bleu(REFS, REFS).score == pytest.approx(100.0)


def test_bleu_is_cased_unless_asked():
    upper = [h.upper() for h in HYPS]
    assert corpus_bleu(upper, REFS).score == pytest.approx(0.0, abs=1e-6)
    lowered = corpus_bleu(upper, REFS, lowercase=True).score
    assert lowered == pytest.approx(reference_bleu(HYPS, REFS), abs=1e-9)


def test_chrf_matches_reference_implementation():
    score = corpus_chrf(HYPS, REFS)
    assert score.score == pytest.approx(reference_chrf(HYPS, REFS), abs=1e-9)
    assert corpus_chrf(REFS, REFS).score == pytest.approx(100.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="2 hypotheses but 3 references"):
        corpus_bleu(HYPS[:2], REFS)
    with pytest.raises(ValueError, match="empty corpus"):
        corpus_chrf([], [])
    with pytest.raises(TypeError, match="not a string"):
        corpus_bleu("the cat", "the cat")
