"""Word polarity lexicons: the VADER lexicon (or a file in its format) as word -> [-1, 1].

VADER (Hutto & Gilbert 2014, MIT licence, PyPI `vaderSentiment`) rates about 7,500 English words,
slang and emoticons by their mean human polarity rating from -4 to +4. Its file has one entry per
line, `word<TAB>mean<TAB>sd<TAB>[ratings]`; any file whose lines start `word<TAB>number` reads the
same way. Ratings are divided by `scale` (4 for VADER) and clipped to [-1, 1], so they can sit next
to word vectors as an input channel (`shared.data.word_features.WordEncoder`).
"""

from __future__ import annotations

import math
from pathlib import Path

from shared.errors import DataError
from shared.log import get_logger

log = get_logger(__name__)

VADER = "vader"


def vader_lexicon_path() -> Path:
    """The `vader_lexicon.txt` shipped inside the installed `vaderSentiment` package."""
    try:
        import vaderSentiment
    except ImportError:
        raise DataError(
            "the VADER lexicon needs the vaderSentiment package (pip install vaderSentiment)"
        ) from None
    return Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"


def read_lexicon(path: str | Path = VADER, scale: float = 4.0) -> dict[str, float]:
    """Reads a `word<TAB>rating...` lexicon into word -> rating / `scale`, clipped to [-1, 1].

    Args:
        path: the lexicon file, or "vader" for the one in the `vaderSentiment` package.
        scale: the largest absolute rating of the file (4 for VADER).

    Returns:
        Lower-cased words and their polarity; the first entry of a word wins.

    Raises:
        DataError: missing or empty file, a line without a tab and a number (naming file, line).
    """
    if scale <= 0:
        raise DataError(f"lexicon scale must be > 0, got {scale}")
    path = vader_lexicon_path() if str(path) == VADER else Path(path)
    if not path.is_file():
        raise DataError(f"lexicon file not found: {path}")
    lexicon: dict[str, float] = {}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            entry = _parse_line(raw, f"{path}:{number}")
            if entry is not None and entry[0] not in lexicon:
                lexicon[entry[0]] = max(-1.0, min(1.0, entry[1] / scale))
    if not lexicon:
        raise DataError(f"{path}: the lexicon file has no entries")
    log.info("lexicon %s: %d entries", path.name, len(lexicon))
    return lexicon


def _parse_line(raw: bytes, where: str) -> tuple[str, float] | None:
    """(word, rating) of one lexicon line, None for a blank line."""
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    if not line.strip():
        return None
    fields = line.split("\t")
    if len(fields) < 2 or not fields[0].strip():
        raise DataError(f"{where}: expected 'word<TAB>rating', got {line[:60]!r}")
    try:
        rating = float(fields[1])
    except ValueError:
        raise DataError(f"{where}: rating {fields[1][:30]!r} is not a number") from None
    if not math.isfinite(rating):
        raise DataError(f"{where}: rating {fields[1][:30]!r} is not finite")
    return fields[0].strip().lower(), rating
