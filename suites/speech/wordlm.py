"""Word-level LM decoding of character CTC output: a lexicon beam search with a word n-gram LM.

The search is flashlight-text's `LexiconDecoder` (the decoder behind torchaudio's
`ctc_decoder`), the LM a KenLM model read from an ARPA file (KenLM ships inside the
`flashlight-text` wheel). Hypotheses are spelled along a trie of the lexicon's words, so only
lexicon words come out; each word's score is

    CTC log-probability of its frames + lm_weight * log10 P_LM(word | history) + word_score

and the sentence end adds `lm_weight * log10 P_LM(</s> | history)`. The space character is the
word separator: each lexicon spelling ends with it, and one extra frame that can only be a space
is appended to every utterance so that the last word ends too (it adds nothing to the score).

An ARPA LM can be built from training transcripts with `build_arpa` (pocketsphinx's `ArpaBoLM`:
a trigram with a fixed discount mass, backed off Katz-style).

    >>> lm = WordLM(build_arpa(texts, "words.arpa"), tuple(sorted(vocabulary)))  # doctest: +SKIP
    >>> decode(log_probs, lengths, alphabet, lm, lm_weight=1.0, word_score=1.0)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.log import get_logger

log = get_logger(__name__)
UNK = "<unk>"


def build_arpa(sentences: Iterable[str], path: str | Path, discount_mass: float = 0.5) -> Path:
    """Writes a word trigram ARPA file of `sentences` (lowercased, split on whitespace).

    The estimates are pocketsphinx's `ArpaBoLM` (sentence start/end added, `discount_mass` of
    each history's probability kept for backing off); the file is written in the tab-separated
    layout KenLM reads. Returns `path`.

    Raises:
        ValueError: no sentence has a word.
    """
    from pocketsphinx.lm import ArpaBoLM

    text = "\n".join(" ".join(s.lower().split()) for s in sentences)
    if not text.strip():
        raise ValueError("build_arpa: no words in the sentences")
    model = ArpaBoLM(text=text + "\n", add_start=True, discount_mass=discount_mass)
    model.compute()
    buffer = io.StringIO()
    model.write(buffer)
    path = Path(path)
    path.write_text(_kenlm_layout(buffer.getvalue()), encoding="utf-8")
    return path


def _kenlm_layout(arpa: str) -> str:
    """ArpaBoLM's space-separated ARPA -> `\\data\\` first, tabs around each n-gram's words."""
    lines = arpa.splitlines()
    out, order = [], 0
    for line in lines[lines.index("\\data\\") :]:
        fields = line.split()
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:].split("-")[0])
        elif order and len(fields) > order:
            line = f"{fields[0]}\t{' '.join(fields[1 : order + 1])}"
            line += f"\t{fields[order + 1]}" if len(fields) > order + 1 else ""
        out.append(line)
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class WordLM:
    """An ARPA word LM and the lexicon the search may spell (lowercase words).

    With `general` (a model pocketsphinx reads, e.g. `lm_mix.general_lm_path()`) and
    `general_weight` > 0, the search scores words with `lm_mix.MixedLM`: the ARPA model and
    the general one interpolated linearly, `general_weight` being the general model's share.
    """

    arpa: Path
    words: tuple[str, ...]
    general: Path | None = None
    general_weight: float = 0.0


def decode(
    log_probs: np.ndarray,
    lengths: Sequence[int] | np.ndarray,
    alphabet: str,
    lm: WordLM,
    beam_size: int = 64,
    lm_weight: float = 1.0,
    word_score: float = 0.0,
    beam_threshold: float = 25.0,
) -> list[str]:
    """The best lexicon word sequence of each utterance.

    Args:
        log_probs: `[B, T, C]` log-softmax outputs; class i is `alphabet[i]`, the blank is the
            last class (`C == len(alphabet) + 1`).
        lengths: valid frames of each utterance.
        alphabet: the output characters; must contain the space (the word separator).
        lm: the word LM and the lexicon.
        beam_size: hypotheses kept per frame.
        lm_weight: weight of the LM's log10 probabilities.
        word_score: added per word (> 0 counters the LM's preference for short outputs).
        beam_threshold: hypotheses this far below the best are dropped.

    Returns:
        One string per utterance: lexicon words separated by single spaces.

    Raises:
        ValueError: shapes that do not fit, an alphabet without a space, or no lexicon word
            that the alphabet can spell.
    """
    log_probs = np.asarray(log_probs, np.float32)
    if log_probs.ndim != 3 or log_probs.shape[2] != len(alphabet) + 1:
        raise ValueError(
            f"log_probs must be [B, T, {len(alphabet) + 1}] (alphabet + blank), "
            f"got {log_probs.shape}"
        )
    lengths = np.asarray(lengths, np.int64)
    if lengths.shape != (log_probs.shape[0],) or (lengths < 0).any():
        raise ValueError(f"lengths must be {log_probs.shape[0]} non-negative frame counts")
    if (lengths > log_probs.shape[1]).any():
        raise ValueError(f"a length exceeds the {log_probs.shape[1]} frames of log_probs")
    search = _search(lm, alphabet, beam_size, float(lm_weight), float(word_score), beam_threshold)
    return [search(frames[:n]) for frames, n in zip(log_probs, lengths, strict=True)]


@functools.lru_cache(maxsize=4)
def _search(
    lm: WordLM, alphabet: str, beam_size: int, lm_weight: float, word_score: float, threshold: float
):
    """A decoding function for one LM, alphabet and set of options (built once, then cached)."""
    from flashlight.lib.text.decoder import (
        CriterionType,
        LexiconDecoder,
        LexiconDecoderOptions,
        SmearingMode,
        Trie,
    )
    from flashlight.lib.text.dictionary import Dictionary

    if " " not in alphabet:
        raise ValueError("word LM decoding needs the space (word separator) in the alphabet")
    ids = {c: i for i, c in enumerate(alphabet)}
    space, blank = ids[" "], len(alphabet)
    words = [w for w in dict.fromkeys(lm.words) if w and all(c in ids and c != " " for c in w)]
    if len(words) < len(set(lm.words)):
        log.info("word LM: %d lexicon words the alphabet cannot spell are left out",
                 len(set(lm.words)) - len(words))  # fmt: skip
    if not words:
        raise ValueError("word LM decoding: no lexicon word can be spelled with the alphabet")
    vocab = Dictionary()
    for word in [*words, UNK]:
        vocab.add_entry(word)
    vocab.set_default_index(vocab.get_index(UNK))
    model = _language_model(lm, vocab)
    trie = Trie(blank + 1, space)
    start = model.start(False)
    for word in words:
        index = vocab.get_index(word)
        trie.insert([ids[c] for c in word] + [space], index, model.score(start, index)[1])
    trie.smear(SmearingMode.MAX)
    options = LexiconDecoderOptions(
        beam_size=beam_size, beam_size_token=blank + 1, beam_threshold=threshold,
        lm_weight=lm_weight, word_score=word_score, unk_score=float("-inf"), sil_score=0.0,
        log_add=False, criterion_type=CriterionType.CTC,
    )  # fmt: skip
    decoder = LexiconDecoder(options, trie, model, space, blank, vocab.get_index(UNK), [], False)
    closing = np.full((1, blank + 1), -1e30, np.float32)  # only a space can close
    closing[0, space] = 0.0

    def search(frames: np.ndarray) -> str:
        emissions = np.ascontiguousarray(np.concatenate([frames, closing]), np.float32)
        results = decoder.decode(emissions.ctypes.data, emissions.shape[0], emissions.shape[1])
        if not results:
            return ""
        return " ".join(vocab.get_entry(i) for i in results[0].words if i >= 0)

    search.model = model  # the decoder holds it from C++: keep a Python LM alive with it
    return search


def _language_model(lm: WordLM, vocab):
    """KenLM of the ARPA file, or its interpolation with the general model."""
    if lm.general is not None and lm.general_weight > 0:
        from suites.speech.lm_mix import MixedLM

        return MixedLM(lm.arpa, lm.general, lm.general_weight, vocab)
    from flashlight.lib.text.decoder.kenlm import KenLM

    return KenLM(str(lm.arpa), vocab)
