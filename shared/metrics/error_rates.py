"""Recognition error rates with jiwer: character and word error rates, exact-match accuracy."""

from __future__ import annotations

from collections.abc import Sequence


def _check(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no references to score")
    empty = [i for i, r in enumerate(references) if not r.strip()]
    if empty:
        raise ValueError(f"references {empty[:10]} are empty; error rates need non-empty ones")


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate over the corpus: (S + D + I) / reference characters."""
    import jiwer

    _check(references, hypotheses)
    return float(jiwer.cer(list(references), list(hypotheses)))


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over the corpus: (S + D + I) / reference words."""
    import jiwer

    _check(references, hypotheses)
    return float(jiwer.wer(list(references), list(hypotheses)))


def sentence_accuracy(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Fraction of utterances transcribed exactly (= word accuracy for one-word utterances)."""
    _check(references, hypotheses)
    return sum(r == h for r, h in zip(references, hypotheses, strict=True)) / len(references)
