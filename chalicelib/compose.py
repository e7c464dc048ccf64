"""Who writes to whom: each message the campaign sends, ready for ``mail``.

The letter to the organisation is sent From the campaign's verified address
with the supporter's name in the display name (a supporter's own address in
From would fail DMARC at their provider), Reply-To and Cc the supporter, so
the organisation answers the supporter directly.
"""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

from chalicelib import deadlines, i18n, letters, tokens
from chalicelib.mail import Mailbox, Outgoing
from chalicelib.models import RequestRecord
from chalicelib.settings import Settings


def confirm_url(settings: Settings, record: RequestRecord) -> str:
    email_key = tokens.email_fingerprint(record.email)
    token = tokens.issue(record.request_id, tokens.Purpose.CONFIRM, email_key)
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
    return _to_target(settings, record, rendered)


def _to_target(
    settings: Settings,
    record: RequestRecord,
    rendered: letters.Rendered,
    replying_to: tuple[str, ...] = (),
) -> Outgoing:
    """A letter to the organisation in the supporter's name; replies reach the supporter."""
    return Outgoing(
        sender=_campaign(settings, on_behalf_of=record.full_name),
        to=(Mailbox(settings.target_email, settings.target_name),),
        # No copy to an address that bounced or complained; replies still
        # name the supporter.
        cc=() if record.unmailable else (_supporter(record),),
        reply_to=(_supporter(record),),
        subject=rendered.subject,
        body=rendered.body,
        in_reply_to=replying_to[-1] if replying_to else None,
        references=replying_to,
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


def _chronology(settings: Settings, record: RequestRecord) -> list[SimpleNamespace]:
    """Dated facts for the complaint, in the supporter's language."""
    lang = record.language
    say = i18n.CHRONOLOGY[lang]
    facts = {"target": settings.target_name, "email": settings.target_email}
    entries: list[tuple[date, str]] = []
    if record.sent_at:
        entries.append(
            (record.sent_at.date(), say["sent"].format(reference=record.request_id, **facts))
        )
    if record.extended_at and record.due_date:
        when = i18n.longdate(record.due_date, lang)
        entries.append((record.extended_at.date(), say["extended"].format(date=when, **facts)))
    if record.info_requested_at:
        entries.append((record.info_requested_at.date(), say["info_requested"].format(**facts)))
    if record.refused_at:
        entries.append((record.refused_at.date(), say["refused"].format(**facts)))
    elif record.due_date:
        entries.append((record.due_date, say["due"].format(**facts)))
    if record.followed_up_on:
        final = i18n.longdate(final_date(settings, record.followed_up_on), lang)
        entries.append((record.followed_up_on, say["followed_up"].format(date=final, **facts)))
    return [SimpleNamespace(on=on, text=text) for on, text in sorted(entries, key=lambda e: e[0])]


def final_date(settings: Settings, followed_up_on: date) -> date:
    return followed_up_on + timedelta(days=settings.chase_final_days)


def _complaint_context(settings: Settings, record: RequestRecord, as_of: date) -> dict[str, Any]:
    assert record.due_date is not None and record.sent_at is not None
    federal = deadlines.JURISDICTIONS[deadlines.FEDERAL]
    provincial = deadlines.jurisdiction_for(record.province)
    basis = record.refused_at.date() if record.refused_at else record.due_date
    provincial_by = (
        deadlines.complain_by(basis, provincial) if provincial.code != deadlines.FEDERAL else None
    )
    return context(
        settings,
        record,
        sent_on=record.sent_at.date(),
        due_on=record.due_date,
        extended_to=record.due_date if record.extended_at else None,
        refused=record.refused_at is not None,
        refused_on=record.refused_at.date() if record.refused_at else None,
        followed_up_on=record.followed_up_on,
        final_on=final_date(settings, record.followed_up_on or as_of),
        opc=SimpleNamespace(name=federal.commissioner, url=federal.complaint_url),
        opc_deadline_basis=basis,
        opc_complain_by=deadlines.complain_by(basis, federal),
        provincial_complain_by=provincial_by,
        provincial_window_passed=provincial_by is not None and provincial_by < as_of,
        chronology=_chronology(settings, record),
        status_url=status_url(settings, record),
        grace_days=settings.chase_grace_days,
    )


def threading_ids(settings: Settings, record: RequestRecord) -> tuple[str, ...]:
    """The ids the organisation's copy of the letter may carry.

    SES replaces our Message-ID with one built from its own message id, so
    the follow-up names both: mail clients thread on either.
    """
    ids = [record.message_id] if record.message_id else []
    if record.ses_message_id:
        ids.append(f"<{record.ses_message_id}@{settings.ses_message_id_domain}>")
    return tuple(ids)


def follow_up_letter(settings: Settings, record: RequestRecord, as_of: date) -> Outgoing:
    rendered = letters.render_message(
        "letters/follow_up",
        settings.letter_language,
        {**_complaint_context(settings, record, as_of), "final_on": final_date(settings, as_of)},
    )
    return _to_target(settings, record, rendered, threading_ids(settings, record))


def complaint_kit(settings: Settings, record: RequestRecord, as_of: date) -> Outgoing:
    rendered = letters.render_message(
        "emails/complaint_kit", record.language, _complaint_context(settings, record, as_of)
    )
    return _to_supporter(settings, record, rendered)


def complaint_reminder(settings: Settings, record: RequestRecord, as_of: date) -> Outgoing:
    rendered = letters.render_message(
        "emails/complaint_reminder", record.language, _complaint_context(settings, record, as_of)
    )
    return _to_supporter(settings, record, rendered)
