"""A real-language parallel corpus generated offline: numbers, dates and amounts.

Every pair is one value rendered in two languages by the libraries that localise them for real
software: `num2words` spells numbers (cardinals, ordinals, years) and Babel (CLDR data) formats
dates, decimals and currency amounts. So the demo translates real German/French/English text -
"dreihundertsiebenundvierzig" -> "three hundred and forty-seven", "Mittwoch, 3. März 2021" ->
"Wednesday, March 3, 2021", "1.234,5" -> "1,234.5" - with the reordering (German units before
tens, day before month) and copying (digits) that translation needs, and nothing to download.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from num2words import num2words

LANGUAGES = ("en", "de", "fr")  # languages both num2words and Babel render here
KINDS = ("cardinal", "ordinal", "year", "date", "decimal", "currency")
# Babel puts (narrow) no-break spaces in French/German amounts; plain spaces keep the
# references equal to what a detokenizer can produce.
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})


def _cardinal(rng: random.Random) -> int:
    # Uniform over magnitudes, so "seven" is as likely as "forty-two thousand ...".
    high = rng.choice((20, 100, 1000, 10000, 100000))
    return rng.randint(0, high)


def _date(rng: random.Random) -> datetime.date:
    return datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(200 * 365))


_SAMPLERS: dict[str, Callable[[random.Random], object]] = {
    "cardinal": _cardinal,
    "ordinal": lambda rng: rng.randint(1, 100),
    "year": lambda rng: rng.randint(1800, 2099),
    "date": lambda rng: (_date(rng), rng.choice(("long", "full"))),
    "decimal": lambda rng: round(rng.uniform(0, 100000), rng.choice((1, 2))),
    "currency": lambda rng: (round(rng.uniform(0, 5000), 2), rng.choice(("EUR", "USD"))),
}


def render(kind: str, value: object, lang: str) -> str:
    """`value` (as drawn for `kind`) written in language `lang`.

    Raises:
        ValueError: for an unknown kind or language.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not one of {LANGUAGES}")
    if kind == "cardinal":
        text = num2words(value, lang=lang)
    elif kind == "ordinal":
        text = num2words(value, to="ordinal", lang=lang)
    elif kind == "year":
        text = num2words(value, to="year", lang=lang)
    elif kind == "date":
        date, style = value
        text = format_date(date, format=style, locale=lang)
    elif kind == "decimal":
        text = format_decimal(value, locale=lang)
    elif kind == "currency":
        amount, currency = value
        text = format_currency(amount, currency, locale=lang)
    else:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    return text.translate(_SPACES)


def generate_number_pairs(
    num: int, source: str, target: str, seed: int, kinds: tuple[str, ...] = KINDS
) -> list[tuple[str, str]]:
    """`num` distinct (source, target) pairs, kinds drawn uniformly, reproducible from `seed`.

    Raises:
        ValueError: for unknown languages/kinds, or if `num` distinct pairs cannot be drawn.
    """
    for lang, key in ((source, "data.source"), (target, "data.target")):
        if lang not in LANGUAGES:
            raise ValueError(f"{key}={lang!r}: data.format=numbers renders {LANGUAGES}")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; choose from {KINDS}")
    rng = random.Random(seed)
    seen: set[str] = set()
    pairs = []
    attempts = 0
    while len(pairs) < num:
        attempts += 1
        if attempts > 20 * num + 1000:
            raise ValueError(f"could not draw {num} distinct pairs of kinds {kinds}")
        kind = rng.choice(kinds)
        value = _SAMPLERS[kind](rng)
        pair = (render(kind, value, source), render(kind, value, target))
        if pair[0] not in seen:  # distinct sources: no test sentence is also a training one
            seen.add(pair[0])
            pairs.append(pair)
    return pairs
