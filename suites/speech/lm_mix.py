"""A word LM that interpolates the transcripts' trigram with a general English n-gram model.

The in-domain model is the ARPA file that `wordlm.build_arpa` writes (read by KenLM); the general
one is any n-gram model pocketsphinx reads, by default the US-English trigram that ships inside
the `pocketsphinx` wheel (~72k words). Each word's probability is the linear interpolation

    P(w | h) = (1 - weight) * P_domain(w | h) + weight * P_general(w | h)

where a word outside a model's vocabulary has probability 0 in that model, so the lexicon can
hold the words of both. The class plugs into flashlight-text's decoder as a Python LM: a search
state is a flashlight `LMState`, mapped to the KenLM state and the last words it stands for.

    >>> lm = MixedLM(domain_arpa, general_lm_path(), 0.5, vocab)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path

from flashlight.lib.text.decoder import LM, LMState
from flashlight.lib.text.decoder.kenlm import KenLM

# pocketsphinx's log-zero: what `NGramModel.prob` returns for a word it does not know.
_SPHINX_LOG_ZERO = -(2**28)


def general_lm_path() -> Path:
    """The US-English trigram inside the pocketsphinx wheel.

    Raises:
        ImportError: pocketsphinx is not installed (`pip install pocketsphinx`).
    """
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us" / "en-us.lm.bin"


def _sphinx_model(path: Path):
    """A pocketsphinx `NGramModel` of `path` and its log base (ARPA, DMP or binary trie)."""
    import pocketsphinx

    logmath = pocketsphinx.LogMath(1.0001)
    return pocketsphinx.NGramModel(pocketsphinx.Config(), logmath, str(path)), logmath


def general_words(path: Path) -> list[str]:
    """The words of a general model: an ARPA file's unigrams, else the CMU dictionary beside it.

    pocketsphinx cannot list a binary model's vocabulary, so for one the candidates are the
    entries of `cmudict-en-us.dict` in the same folder that the model gives a probability.
    """
    path = Path(path)
    with open(path, "rb") as f:
        is_arpa = b"\\data\\" in f.read(4096)
    if is_arpa:
        return _arpa_unigrams(path)
    model, _ = _sphinx_model(path)
    words = []
    with open(path.parent / "cmudict-en-us.dict", encoding="utf-8") as f:
        for line in f:
            word = line.split(" ", 1)[0]
            if "(" not in word and model.prob([word]) > _SPHINX_LOG_ZERO:
                words.append(word)
    return words


def _arpa_unigrams(path: Path) -> list[str]:
    words, inside = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("\\"):
                if inside:
                    break
                inside = line.strip() == "\\1-grams:"
            elif inside and line.strip():
                words.append(line.split()[1])
    return [w for w in words if w not in ("<s>", "</s>", "<unk>")]


class MixedLM(LM):
    """flashlight LM: `(1 - weight) * KenLM(domain_arpa) + weight * general` (log10 scores).

    Args:
        domain_arpa: the in-domain ARPA model (its `<unk>` counts as probability 0).
        general: a model pocketsphinx reads.
        weight: the general model's share, in [0, 1].
        vocab: the flashlight `Dictionary` of the decoder (word index -> word).
    """

    def __init__(self, domain_arpa: Path, general: Path, weight: float, vocab):
        LM.__init__(self)
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"the general LM's weight must be in [0, 1], got {weight}")
        self._domain = KenLM(str(domain_arpa), vocab)
        self._domain_words = set(_arpa_unigrams(Path(domain_arpa)))
        self._general, logmath = _sphinx_model(Path(general))
        self._ln_base = logmath.log_to_ln(1)
        self._history = max(self._general.size() - 1, 1)
        self._weight = weight
        self._vocab = vocab
        self._states: dict[LMState, tuple[LMState, tuple[str, ...]]] = {}

    def start(self, start_with_nothing: bool) -> LMState:
        self._states.clear()  # a new utterance: the previous one's states are done
        state = LMState()
        self._states[state] = (self._domain.start(start_with_nothing), ("<s>",))
        return state

    def score(self, state: LMState, token_index: int) -> tuple[LMState, float]:
        return self._advance(state, token_index, self._vocab.get_entry(token_index))

    def finish(self, state: LMState) -> tuple[LMState, float]:
        return self._advance(state, -1, "</s>")

    def _advance(self, state: LMState, index: int, word: str) -> tuple[LMState, float]:
        domain_state, history = self._states[state]
        if index < 0:
            next_domain, domain_log10 = self._domain.finish(domain_state)
        else:
            next_domain, domain_log10 = self._domain.score(domain_state, index)
        known = index < 0 or word in self._domain_words
        p = (1 - self._weight) * (10.0**domain_log10 if known else 0.0)
        general = self._general.prob([word, *reversed(history)])
        if general > _SPHINX_LOG_ZERO:
            p += self._weight * math.exp(general * self._ln_base)
        child = state.child(index)
        self._states.setdefault(child, (next_domain, (*history, word)[-self._history :]))
        return child, math.log10(p) if p > 0 else -math.inf
