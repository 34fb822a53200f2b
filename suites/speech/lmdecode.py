"""CTC prefix beam search with a character language model (shallow fusion).

The search of Hannun et al. 2014 ("First-pass large vocabulary continuous speech recognition
using bi-directional recurrent DNNs", algorithm 1) over characters: each prefix keeps the CTC
log-probabilities of ending in a blank (`pb`) and in its last character (`pnb`); prefixes are
ranked by `log P_ctc + weight * log P_lm + bonus * len(prefix)`, and the end-of-sentence
probability of the LM is added before the final choice. `weight = 0` is plain prefix beam search.
"""

from __future__ import annotations

import numpy as np

from suites.speech.charlm import CharNgramLM

_NEG = -np.inf


def _lse(a: float, b: float) -> float:
    return float(np.logaddexp(a, b))


def _add(beams: dict[str, list[float]], prefix: str, pb: float, pnb: float) -> None:
    """Accumulates path probabilities (log) of `prefix` ending in blank / in its last char."""
    cur = beams.setdefault(prefix, [_NEG, _NEG])
    cur[0], cur[1] = _lse(cur[0], pb), _lse(cur[1], pnb)


def prefix_beam_search(
    log_probs: np.ndarray,
    alphabet: str,
    lm: CharNgramLM | None = None,
    weight: float = 0.5,
    bonus: float = 1.0,
    beam_width: int = 16,
    prune: float = -10.0,
) -> str:
    """Best transcript of one utterance's CTC output.

    Args:
        log_probs: `[T, len(alphabet) + 1]` log-softmax outputs, blank last.
        alphabet: the characters of the non-blank classes.
        lm: character LM (None: no LM, `weight` unused).
        weight: LM weight (natural-log scale).
        bonus: score added per emitted character (offsets the LM's and CTC's length penalty).
        beam_width: prefixes kept after each frame.
        prune: characters with log-probability below this at a frame are not tried there (the
            most likely character is always tried).

    Raises:
        ValueError: `log_probs` does not have `len(alphabet) + 1` classes.
    """
    log_probs = np.asarray(log_probs, np.float64)
    if log_probs.ndim != 2 or log_probs.shape[1] != len(alphabet) + 1:
        raise ValueError(
            f"log_probs must be [T, {len(alphabet) + 1}] (alphabet + blank), got {log_probs.shape}"
        )
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1, got {beam_width}")
    blank = len(alphabet)
    use_lm = lm is not None and weight != 0.0
    # prefix -> [pb, pnb]; lm_score[prefix] = weight * log P_lm(prefix) + bonus * len(prefix)
    beams: dict[str, list[float]] = {"": [0.0, _NEG]}
    lm_score: dict[str, float] = {"": 0.0}

    def ext_score(prefix: str, c: int) -> float:
        lp = lm.log_probs(prefix)[c] if use_lm else 0.0
        return lm_score[prefix] + weight * lp + bonus

    for frame in log_probs:
        best = int(np.argmax(frame[:blank]))
        chars = np.flatnonzero(frame[:blank] >= prune).tolist()
        if best not in chars:
            chars.append(best)
        nxt: dict[str, list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = _lse(pb, pnb)
            _add(nxt, prefix, total + frame[blank], _NEG)  # blank: the prefix is unchanged
            last = alphabet.index(prefix[-1]) if prefix else -1
            if last >= 0:  # repeated character without a blank in between: merged
                _add(nxt, prefix, _NEG, pnb + frame[last])
            for c in chars:
                new = prefix + alphabet[c]
                if new not in lm_score:
                    lm_score[new] = ext_score(prefix, c)
                # after a blank the same character starts a new symbol; else it would merge
                p = pb + frame[c] if c == last else total + frame[c]
                _add(nxt, new, _NEG, p)
        ranked = sorted(nxt.items(), key=lambda kv: -(_lse(*kv[1]) + lm_score[kv[0]]))
        beams = dict(ranked[:beam_width])

    def final(prefix: str) -> float:
        end = weight * lm.log_probs(prefix)[-1] if use_lm else 0.0
        return _lse(*beams[prefix]) + lm_score[prefix] + end

    return max(beams, key=final)
