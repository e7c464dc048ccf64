"""Who writes to whom: each message the campaign sends, ready for ``mail``.

The letter to the organisation is sent From the campaign's verified address
with the supporter's name in the display name (a supporter's own address in
From would fail DMARC at their provider), Reply-To and Cc the supporter, so
the organisation answers the supporter directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from types import SimpleNamespace
from typing import Any

from chalicelib import deadlines, letters, tokens
from chalicelib.mail import Mailbox, Outgoing
from chalicelib.models import RequestRecord
from chalicelib.settings import Settings


@dataclass(frozen=True)
class Links:
    confirm_url: str = ""
    status_url: str = ""


def confirm_url(settings: Settings, record: RequestRecord) -> str:
    token = tokens.issue(record.request_id, tokens.Purpose.CONFIRM)
    return f"{settings.api_base_url}/requests/{record.request_id}/confirm?token={token}"


def status_url(settings: Settings, record: RequestRecord) -> str:
    token = tokens.issue(record.request_id, tokens.Purpose.STATUS)
    return f"{settings.api_base_url}/requests/{record.request_id}?token={token}"


def _provincial(settings: Settings, province: str | None) -> Any:
    jurisdiction = deadlines.jurisdiction_for(province)
    if jurisdiction.code == "federal":
        return None
    verified = jurisdiction.deemed_refusal_verified or (
        jurisdiction.code == "AB" and settings.alberta_deemed_refusal
    )
    return SimpleNamespace(**{**vars(jurisdiction), "deemed_refusal_verified": verified})


def context(settings: Settings, record: RequestRecord, **extra: Any) -> dict[str, Any]:
    """What every template may use (see templates/README.md)."""
    return {
        "supporter": SimpleNamespace(
            first_name=record.first_name,
            last_name=record.last_name,
            full_name=record.full_name,
            email=record.email,
            province=record.province,
        ),
        "target": SimpleNamespace(name=settings.target_name, email=settings.target_email),
        "campaign": SimpleNamespace(
            name=settings.campaign_name,
            postal_address=settings.campaign_postal_address,
            contact_email=settings.campaign_contact_email,
            website=settings.campaign_website,
        ),
        "reference": record.request_id,
        "provincial": _provincial(settings, record.province),
        "verify_days": settings.verify_days,
        **extra,
    }


def _supporter(record: RequestRecord) -> Mailbox:
    return Mailbox(record.email, record.full_name)


def _campaign(settings: Settings, on_behalf_of: str | None = None) -> Mailbox:
    name = (
        f"{on_behalf_of} via {settings.campaign_name}" if on_behalf_of else settings.campaign_name
    )
    return Mailbox(settings.sender_email, name)


def request_letter(
    settings: Settings, record: RequestRecord, sent_on: date, due_on: date
) -> Outgoing:
    rendered = letters.render_message(
        "letters/request",
        settings.letter_language,
        context(settings, record, sent_on=sent_on, due_on=due_on),
    )
    return Outgoing(
        sender=_campaign(settings, on_behalf_of=record.full_name),
        to=(Mailbox(settings.target_email, settings.target_name),),
        cc=(_supporter(record),),
        reply_to=(_supporter(record),),
        subject=rendered.subject,
        body=rendered.body,
    )


def verification_email(settings: Settings, record: RequestRecord) -> Outgoing:
    rendered = letters.render_message(
        "emails/verify",
        record.language,
        context(settings, record, confirm_url=confirm_url(settings, record)),
    )
    return _to_supporter(settings, record, rendered)


def sent_notice(settings: Settings, record: RequestRecord) -> Outgoing:
    assert record.sent_at is not None and record.due_date is not None
    rendered = letters.render_message(
        "emails/sent",
        record.language,
        context(
            settings,
            record,
            sent_on=record.sent_at.date(),
            due_on=record.due_date,
            status_url=status_url(settings, record),
        ),
    )
    return _to_supporter(settings, record, rendered)


def _to_supporter(
    settings: Settings, record: RequestRecord, rendered: letters.Rendered
) -> Outgoing:
    return Outgoing(
        sender=_campaign(settings),
        to=(_supporter(record),),
        subject=rendered.subject,
        body=rendered.body,
        # Answers to these notices reach a person, not the no-reply sender.
        reply_to=(Mailbox(settings.campaign_contact_email, settings.campaign_name),),
    )
