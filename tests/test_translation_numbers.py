"""The real-language demo corpus: num2words / Babel renderings, seeded and distinct."""

from __future__ import annotations

import datetime

import pytest

from suites.translation.numbers import KINDS, generate_number_pairs, render


@pytest.mark.parametrize(
    ("kind", "value", "lang", "expected"),
    [
        # German puts the units before the tens and writes numbers as one word.
        ("cardinal", 347, "de", "dreihundertsiebenundvierzig"),
        ("cardinal", 347, "en", "three hundred and forty-seven"),
        ("cardinal", 347, "fr", "trois cent quarante-sept"),
        ("ordinal", 21, "en", "twenty-first"),
        ("year", 1999, "de", "neunzehnhundertneunundneunzig"),
        ("date", (datetime.date(2021, 3, 3), "long"), "de", "3. März 2021"),
        ("date", (datetime.date(2021, 3, 3), "long"), "en", "March 3, 2021"),
        ("decimal", 1234.5, "de", "1.234,5"),
        ("decimal", 1234.5, "en", "1,234.5"),
        ("decimal", 1234.5, "fr", "1 234,5"),  # narrow no-break space -> plain space
        ("currency", (12.5, "EUR"), "de", "12,50 €"),
        ("currency", (12.5, "EUR"), "en", "€12.50"),
    ],
)
def test_render_golden_values(kind, value, lang, expected):
    assert render(kind, value, lang) == expected


def test_full_dates_name_the_right_weekday():
    date = datetime.date(2021, 3, 3)
    weekday = date.strftime("%A")  # the C locale's English weekday, independent of Babel
    assert render("date", (date, "full"), "en") == f"{weekday}, March 3, 2021"
    assert render("date", (date, "full"), "de").startswith("Mittwoch, ")


def test_pairs_are_seeded_distinct_and_cover_every_kind():
    pairs = generate_number_pairs(600, "de", "en", seed=3)
    assert pairs == generate_number_pairs(600, "de", "en", seed=3)
    assert pairs != generate_number_pairs(600, "de", "en", seed=4)
    assert len({source for source, _ in pairs}) == 600
    assert all("\u00a0" not in s + t and "\u202f" not in s + t for s, t in pairs)
    # Each kind leaves a recognisable trace in the English side.
    english = [t for _, t in pairs]
    assert any(t.startswith(("€", "$")) for t in english)  # currency
    assert any(t.endswith(("th", "first", "second", "third")) for t in english)  # ordinals
    assert any("day, " in t for t in english)  # full dates
    assert any(t.replace(",", "").replace(".", "").isdigit() for t in english)  # decimals
    assert len(KINDS) == 6


def test_bad_languages_and_kinds():
    with pytest.raises(ValueError, match="data.source='xx'"):
        generate_number_pairs(10, "xx", "en", seed=0)
    with pytest.raises(ValueError, match="unknown kinds"):
        generate_number_pairs(10, "de", "en", seed=0, kinds=("roman",))
    with pytest.raises(ValueError, match="could not draw"):
        generate_number_pairs(500, "de", "en", seed=0, kinds=("ordinal",))  # only 100 exist
