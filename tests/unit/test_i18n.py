from __future__ import annotations

from datetime import date

import pytest

from chalicelib import i18n


@pytest.mark.parametrize(
    ("value", "lang", "expected"),
    [
        (date(2026, 12, 28), "en", "28 December 2026"),
        (date(2026, 12, 28), "fr", "28 décembre 2026"),
        (date(2027, 2, 1), "fr", "1er février 2027"),
        (date(2027, 8, 1), "en", "1 August 2027"),
    ],
)
def test_longdate(value: date, lang: str, expected: str) -> None:
    assert i18n.longdate(value, lang) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("en-US", "en"),
        ("de-DE,fr;q=0.5", "fr"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_language_from_accept_language(header: str | None, expected: str) -> None:
    assert i18n.language_from(header) == expected


def test_every_problem_exists_in_both_languages() -> None:
    english = set(i18n._PROBLEMS["en"])
    assert english == set(i18n._PROBLEMS["fr"])
    assert set(i18n.FIELD_LABELS["en"]) == set(i18n.FIELD_LABELS["fr"])
