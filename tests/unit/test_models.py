"""Field rules of the campaign form (chalicelib.models)."""

from __future__ import annotations

import pytest

from chalicelib.models import NAME_MAX, parse_submission

VALID = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}


def problems(**fields: object) -> dict[str, str]:
    _, found = parse_submission({**VALID, **fields})
    return found


@pytest.mark.parametrize(
    "name",
    [
        "Zoë",
        "Côté-Lévesque",
        "O'Brien",
        "Nguyễn Thị Minh Khai",
        "D’Arcy",
        "Jean-Luc St. Pierre",
        "ᐊᓂᕐᓇᖅ",  # Inuktitut syllabics
        "李小龍",
        "محمد",
        "Ṣẹ̀yẹ̀",  # combining marks
    ],
)
def test_real_names_in_every_script_pass(name: str) -> None:
    submission, found = parse_submission({**VALID, "first_name": name, "last_name": name})
    assert found == {}
    assert submission is not None
    assert submission.first_name == name


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.org",
        "Eve\nMallory",
        "<script>alert(1)</script>",
        "Eve\x00",
        "Eve\u2028Mallory",  # line separator
        "Eve\u202eevE",  # bidi override
        "{{ config }}",
        "12345",
        "---",
    ],
)
def test_control_characters_and_markup_are_refused(name: str) -> None:
    assert problems(first_name=name) == {"first_name": "invalid"}


def test_names_are_trimmed_and_inner_whitespace_collapsed() -> None:
    submission, _ = parse_submission({**VALID, "first_name": "  Anne   Marie "})
    assert submission is not None and submission.first_name == "Anne Marie"


def test_names_are_nfc_normalised() -> None:
    submission, _ = parse_submission({**VALID, "last_name": "Co\u0302te\u0301"})
    assert submission is not None and submission.last_name == "Côté"


def test_name_length_limit() -> None:
    assert problems(first_name="a" * NAME_MAX) == {}
    assert problems(first_name="a" * (NAME_MAX + 1)) == {"first_name": "too_long"}


def test_missing_and_empty_fields_are_required() -> None:
    _, found = parse_submission({})
    assert found == {"first_name": "required", "last_name": "required", "email": "required"}
    assert problems(first_name="   ", email="") == {
        "first_name": "required",
        "email": "required",
    }


@pytest.mark.parametrize("value", [123, None, ["Ada"], {"a": 1}, True])
def test_non_string_names_are_invalid(value: object) -> None:
    found = problems(first_name=value)
    assert found["first_name"] in ("invalid", "required")


def test_email_is_trimmed_and_domain_lower_cased() -> None:
    submission, _ = parse_submission({**VALID, "email": "  Ada.L@Example.ORG "})
    assert submission is not None and submission.email == "Ada.L@example.org"


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "a@b",
        "ada@example..org",
        "ada@exa mple.org",
        "a\n@example.org",
        "@example.org",
    ],
)
def test_bad_emails_are_refused(email: str) -> None:
    assert problems(email=email) == {"email": "invalid"}


def test_accented_mailbox_names_are_refused_as_such() -> None:
    # SES cannot send to SMTPUTF8 mailboxes: say so rather than fail later.
    assert problems(email="josé@example.org") == {"email": "ascii_only"}


def test_an_internationalised_domain_is_kept_in_ascii_form() -> None:
    submission, _ = parse_submission({**VALID, "email": "zoe@exämple.ca"})
    assert submission is not None and submission.email == "zoe@xn--exmple-cua.ca"


def test_overlong_email_is_refused() -> None:
    assert problems(email="a" * 250 + "@example.org") == {"email": "too_long"}


@pytest.mark.parametrize("province", ["QC", "bc", " on ", "YT"])
def test_known_provinces_pass_and_are_upper_cased(province: str) -> None:
    submission, found = parse_submission({**VALID, "province": province})
    assert found == {} and submission is not None
    assert submission.province == province.strip().upper()


@pytest.mark.parametrize("province", ["XX", "Quebec", 12, "Q C"])
def test_unknown_provinces_are_refused(province: object) -> None:
    assert problems(province=province) == {"province": "invalid"}


def test_empty_province_is_none() -> None:
    submission, _ = parse_submission({**VALID, "province": ""})
    assert submission is not None and submission.province is None


def test_language_defaults_to_english_and_accepts_french() -> None:
    english, _ = parse_submission(VALID)
    french, _ = parse_submission({**VALID, "language": "FR"})
    assert english is not None and english.language == "en"
    assert french is not None and french.language == "fr"
    assert problems(language="de") == {"language": "invalid"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("on", True), (True, True), ("true", True), ("", False), (False, False), ("off", False)],
)
def test_consent_checkbox(value: object, expected: bool) -> None:
    submission, _ = parse_submission({**VALID, "consent_updates": value})
    assert submission is not None and submission.consent_updates is expected


def test_consent_defaults_to_false_and_refuses_nonsense() -> None:
    submission, _ = parse_submission(VALID)
    assert submission is not None and submission.consent_updates is False
    assert problems(consent_updates="maybe") == {"consent_updates": "invalid"}


def test_honeypot() -> None:
    human, _ = parse_submission({**VALID, "website": ""})
    bot, _ = parse_submission({**VALID, "website": "http://spam.example"})
    assert human is not None and not human.is_bot
    assert bot is not None and bot.is_bot


def test_unknown_fields_are_ignored() -> None:
    assert problems(submit="Send", extra={"x": 1}) == {}
