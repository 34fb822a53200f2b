"""Corpus-level text metrics through sacreBLEU: BLEU and chrF on detokenized, cased text.

sacreBLEU applies its own standard tokenization (13a for BLEU), so hypotheses and references are
passed as plain detokenized strings, exactly as a reader would see them. The signature strings
(e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`) say how a score was computed
and belong next to every reported number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF


@dataclass(frozen=True)
class TextScore:
    """A corpus score with the sacreBLEU signature that reproduces it."""

    score: float
    signature: str
    details: str  # sacreBLEU's one-line summary (n-gram precisions, brevity penalty, ...)


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses and references must be sequences of strings, not a string")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses but {len(references)} references (must be equal)"
        )
    if not hypotheses:
        raise ValueError("cannot score an empty corpus")


def corpus_bleu(
    hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False
) -> TextScore:
    """sacreBLEU corpus BLEU (0-100) of one hypothesis per reference (tokenize 13a, cased)."""
    _check(hypotheses, references)
    metric = BLEU(lowercase=lowercase)
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return TextScore(result.score, str(metric.get_signature()), str(result))


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> TextScore:
    """sacreBLEU corpus chrF (0-100; character 6-grams, beta 2)."""
    _check(hypotheses, references)
    metric = CHRF()
    result = metric.corpus_score(list(hypotheses), [list(references)])
    return TextScore(result.score, str(metric.get_signature()), str(result))
