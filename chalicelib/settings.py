"""Stage configuration, read once from the environment and validated.

Chalice puts each stage's ``environment_variables`` (.chalice/config.json)
into the Lambda environment. Every setting is an upper-case variable named
after its field (``table_name`` -> ``TABLE_NAME``). Secrets are never here:
``SIGNING_SECRET_PARAM`` names an SSM SecureString read at run time.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Language = Literal["en", "fr"]


class SettingsError(RuntimeError):
    """A stage setting is missing or malformed; the message names it."""


def _split_list(value: object) -> object:
    # Lists arrive as comma-separated environment strings.
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _origin(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"{value!r} is not an origin like https://campaign.example.org")
    return f"{parts.scheme}://{parts.netloc}"


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an absolute http(s) URL")
    return value


def _base_url(value: str) -> str:
    return _url(value).rstrip("/")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    stage: str
    table_name: str = Field(min_length=3)
    signing_secret_param: str = Field(min_length=1)

    # Who writes: the campaign's SES-verified sender. The supporter goes in
    # the display name, Reply-To and Cc, never in From (DMARC).
    sender_email: EmailStr
    campaign_name: str = "Take Back Your Data"
    campaign_postal_address: str = Field(min_length=5)
    campaign_contact_email: EmailStr
    campaign_website: Annotated[str, BeforeValidator(_url)]

    # Who receives the request letter.
    target_name: str = "Clearview AI"
    target_email: EmailStr = "privacy@clearview.ai"
    letter_language: Language = "en"

    # Where people are sent, and who may call the API from a browser.
    api_base_url: Annotated[str, BeforeValidator(_base_url)]
    thank_you_url_en: Annotated[str, BeforeValidator(_url)]
    thank_you_url_fr: Annotated[str, BeforeValidator(_url)]
    allowed_origins: Annotated[tuple[str, ...], BeforeValidator(_split_list)] = ()

    verification_required: bool = True
    verify_days: int = Field(default=7, ge=1, le=30)
    consent_wording_version: str = "2026-11-en-fr-2"
    # Alberta's deemed-refusal rule is unverified (legal-facts.md): the letter
    # only asserts it when an organiser has checked and switched this on.
    alberta_deemed_refusal: bool = False

    # The chase: SES sends per second it may use, days before the last
    # reminder, the final date it gives the organisation, how far back it
    # looks for missed days, and the margin it keeps before the Lambda timeout.
    send_rate_per_second: float = Field(default=1.0, gt=0, le=500)
    chase_grace_days: int = Field(default=14, ge=1, le=90)
    chase_final_days: int = Field(default=10, ge=1, le=60)
    chase_lookback_days: int = Field(default=60, ge=1, le=2000)
    chase_margin_seconds: int = Field(default=30, ge=1, le=600)

    # "stream": the API only writes and the table's stream consumer
    # (send_stored) sends within about a second; "inline": the API sends
    # during the request; "queue": all mail goes out through the retry job
    # at send_rate_per_second (for spikes beyond the SES quota). In every
    # mode the retry job sends what SES refused for now.
    send_mode: Literal["stream", "inline", "queue"] = "stream"
    retry_max_minutes: int = Field(default=60, ge=1, le=1440)

    # Personal data of finished requests is removed this many days after
    # they finish: the OPC's 6-month complaint window plus a margin.
    retention_days: int = Field(default=210, ge=1, le=3650)

    # Submissions allowed per hour from one client IP, and per email address.
    rate_limit_per_ip: int = Field(default=30, ge=1)
    rate_limit_per_email: int = Field(default=5, ge=1)

    # Optional human check (Cloudflare Turnstile or hCaptcha), verified
    # server-side with the secret named by CAPTCHA_SECRET_PARAM (SSM).
    captcha_provider: Literal["none", "turnstile", "hcaptcha"] = "none"
    captcha_secret_param: str | None = None
    captcha_verify_url: Annotated[str, BeforeValidator(_url)] | None = None

    ses_configuration_set: str | None = None
    # SES replaces our Message-ID with <MessageId@this domain>; follow-ups
    # reference both so they thread in the organisation's mailbox.
    # us-east-1 uses email.amazonses.com, other regions <region>.amazonses.com.
    ses_message_id_domain: str = "email.amazonses.com"
    # Local stage only: every sent message is also written here as .eml.
    outbox_dir: str | None = None

    @field_validator("allowed_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_origin(origin) for origin in value)

    @field_validator(
        "ses_configuration_set",
        "outbox_dir",
        "captcha_secret_param",
        "captcha_verify_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _captcha_needs_a_secret(self) -> Settings:
        if self.captcha_provider != "none" and not self.captcha_secret_param:
            raise ValueError("CAPTCHA_SECRET_PARAM is required when CAPTCHA_PROVIDER is set")
        return self

    def thank_you_url(self, language: Language) -> str:
        return self.thank_you_url_fr if language == "fr" else self.thank_you_url_en


def load(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment, naming every bad variable."""
    raw = {name: environ[name.upper()] for name in Settings.model_fields if name.upper() in environ}
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{str(error['loc'][0]).upper()}: {error['msg']}" if error["loc"] else error["msg"]
            for error in exc.errors()
        )
        raise SettingsError(f"invalid stage settings: {problems}") from None


@functools.cache
def get_settings() -> Settings:
    """The current stage's settings. Tests clear the cache between stages."""
    return load(os.environ)
