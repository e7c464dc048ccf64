"""Validated input from the campaign form, and the request record."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from chalicelib.lifecycle import Status

Language = Literal["en", "fr"]
PROVINCES = frozenset(
    ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]
)
NAME_MAX = 100
EMAIL_MAX = 254

# Characters no personal name needs and that carry meaning in headers,
# markup or templates. Apostrophes, hyphens, periods and spaces stay.
_FORBIDDEN_IN_NAMES = frozenset('<>{}[]\\/@|=;:"`$%^*_~#&+!?\ufffd')
# Joiners are format characters that some scripts need inside names.
_ALLOWED_FORMAT = frozenset("\u200c\u200d")


class FieldProblem(ValueError):
    """A field value is wrong; ``code`` selects the supporter-facing message."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _clean_name(value: object) -> str:
    if not isinstance(value, str):
        raise FieldProblem("invalid")
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise FieldProblem("required")
    for char in name:
        category = unicodedata.category(char)
        # Line breaks inside a name would end up in email headers: refuse
        # them rather than guess what was meant.
        if category in ("Zl", "Zp") or char in _FORBIDDEN_IN_NAMES:
            raise FieldProblem("invalid")
        if category[0] == "C" and char not in _ALLOWED_FORMAT:
            raise FieldProblem("invalid")
    name = " ".join(name.split())
    if len(name) > NAME_MAX:
        raise FieldProblem("too_long")
    if not any(unicodedata.category(char).startswith("L") for char in name):
        raise FieldProblem("invalid")
    return name


def _clean_email(value: object) -> str:
    from email_validator import EmailNotValidError, validate_email

    if not isinstance(value, str):
        raise FieldProblem("invalid")
    address = value.strip()
    if not address:
        raise FieldProblem("required")
    if len(address) > EMAIL_MAX:
        raise FieldProblem("too_long")
    try:
        # Deliverability (DNS) is not checked: it would make every submission
        # wait on a resolver, and the verification email proves it anyway.
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        raise FieldProblem("invalid") from None
    if valid.ascii_email is None:
        # SES sends only to ASCII addresses (no SMTPUTF8 mailboxes).
        raise FieldProblem("ascii_only")
    # An internationalised domain is kept in its ASCII (punycode) form, the
    # one SES and mail headers take.
    return valid.ascii_email


def _clean_province(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().upper() not in PROVINCES:
        raise FieldProblem("invalid")
    return value.strip().upper()


def _clean_language(value: object) -> str:
    if value is None or value == "":
        return "en"
    if not isinstance(value, str) or value.strip().lower() not in ("en", "fr"):
        raise FieldProblem("invalid")
    return value.strip().lower()


def _clean_flag(value: object) -> bool:
    # HTML checkboxes send "on" (or nothing); JSON clients send booleans.
    if value is None or value == "" or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str) and value.strip().lower() in ("on", "true", "1", "yes", "oui"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("off", "false", "0", "no", "non"):
        return False
    raise FieldProblem("invalid")


def _no_check(value: object) -> object:
    return value


class Submission(BaseModel):
    """A campaign form post, cleaned. Unknown fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    first_name: Annotated[str, BeforeValidator(_clean_name)]
    last_name: Annotated[str, BeforeValidator(_clean_name)]
    email: Annotated[str, BeforeValidator(_clean_email)]
    province: Annotated[str | None, BeforeValidator(_clean_province)] = None
    language: Annotated[Language, BeforeValidator(_clean_language)] = "en"
    consent_updates: Annotated[bool, BeforeValidator(_clean_flag)] = False
    # The honeypot: any value at all means a bot filled it.
    website: Annotated[object, AfterValidator(_no_check)] = None

    @property
    def is_bot(self) -> bool:
        return self.website not in (None, "")


def parse_submission(data: dict[str, Any]) -> tuple[Submission | None, dict[str, str]]:
    """Validate a form; return the submission or every field's problem code."""
    try:
        return Submission.model_validate(data), {}
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "body"
            cause = (error.get("ctx") or {}).get("error")
            code = cause.code if isinstance(cause, FieldProblem) else "required"
            if error["type"] != "missing" and not isinstance(cause, FieldProblem):
                code = "invalid"
            problems.setdefault(name, code)
        return None, problems


@dataclass
class RequestRecord:
    """One supporter's request, as the application sees it."""

    request_id: str
    status: Status
    first_name: str
    last_name: str
    email: str
    language: Language
    created_at: datetime
    province: str | None = None
    consent_updates: bool = False
    consent_given_at: datetime | None = None
    consent_wording_version: str | None = None
    consent_withdrawn_at: datetime | None = None
    verified_at: datetime | None = None
    sent_at: datetime | None = None
    due_date: date | None = None
    federal_due_date: date | None = None
    provincial_due_date: date | None = None
    message_id: str | None = None
    ses_message_id: str | None = None
    failure_reason: str | None = None
    # What the supporter reported, and when.
    answered_at: datetime | None = None
    extended_at: datetime | None = None
    original_due_date: date | None = None
    info_requested_at: datetime | None = None
    refused_at: datetime | None = None
    # The chase: the next day it acts on this request, and what it did.
    chase_on: date | None = None
    followed_up_on: date | None = None
    follow_up_message_id: str | None = None
    kit_sent_on: date | None = None
    reminder_sent_on: date | None = None
    # Mail waiting for the retry job, and what SES told us afterwards.
    mail_queue: str | None = None
    retry_at: datetime | None = None
    send_attempts: int = 0
    delivered_at: datetime | None = None
    letter_bounced_at: datetime | None = None
    supporter_bounced_at: datetime | None = None
    complaint_at: datetime | None = None
    verification_resent_at: datetime | None = None
    verification_resends: int | None = None
    # The address was on the suppression list when the request was stored:
    # the organisation's letter may go, nothing goes to the supporter.
    mail_suppressed: bool | None = None
    # Retention and the right to be forgotten.
    purge_on: date | None = None
    forgotten_at: datetime | None = None
    forgotten_reason: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def unmailable(self) -> bool:
        """The supporter's address is not to be mailed (suppressed, bounced, complained)."""
        return bool(self.mail_suppressed or self.supporter_bounced_at or self.complaint_at)
