"""The supporter's journey: submit, verify, and the letter going out.

Every status change goes through ``store.apply`` (a conditional write), so
whichever Lambda wins a race does the work and the others do nothing.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

from chalicelib import compose, deadlines, mail, store, tokens
from chalicelib.lifecycle import Event, InvalidTransition, Status
from chalicelib.log import logger
from chalicelib.models import RequestRecord, Submission
from chalicelib.settings import get_settings


def now() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return secrets.token_urlsafe(12)


def submit(submission: Submission) -> RequestRecord:
    """Store a request (or find the active one) and start its verification.

    A filled honeypot gets an answer that looks like success but nothing is
    stored or sent, so a bot learns nothing.
    """
    settings = get_settings()
    moment = now()
    record = RequestRecord(
        request_id=new_request_id(),
        status=Status.PENDING_VERIFICATION,
        first_name=submission.first_name,
        last_name=submission.last_name,
        email=submission.email,
        language=submission.language,
        province=submission.province,
        created_at=moment,
        consent_updates=submission.consent_updates,
        consent_given_at=moment if submission.consent_updates else None,
        consent_wording_version=(
            settings.consent_wording_version if submission.consent_updates else None
        ),
    )
    if submission.is_bot:
        logger().info("honeypot filled; nothing stored")
        return record
    expires_at = int(time.time()) + settings.verify_days * 86400
    try:
        store.create_request(record, tokens.email_fingerprint(record.email), expires_at)
    except store.DuplicateRequest as duplicate:
        logger().info("duplicate submission", extra={"request_id": duplicate.existing.request_id})
        return duplicate.existing
    logger().info("request stored", extra={"request_id": record.request_id})
    if settings.verification_required:
        _send_verification(record)
        return record
    return verify(record.request_id)


def _send_verification(record: RequestRecord) -> None:
    try:
        mail.send(compose.verification_email(get_settings(), record))
    except mail.MailError as error:
        # The request stays stored and pending; the supporter can submit again.
        logger().error(
            "verification email not sent",
            extra={"request_id": record.request_id, "error": error.code},
        )


def verify(request_id: str) -> RequestRecord:
    """Confirm the supporter's address and send the letter, at most once."""
    record = store.get_request(request_id)
    if record is None:
        raise LookupError(request_id)
    if record.status != Status.PENDING_VERIFICATION:
        return record
    try:
        store.verify(
            request_id,
            tokens.email_fingerprint(record.email),
            now(),
            {"verified_at": now()},
        )
    except InvalidTransition:
        # A second click, or a concurrent one: the first does the sending.
        return store.get_request(request_id) or record
    logger().info("request verified", extra={"request_id": request_id})
    return send_letter(request_id)


def send_letter(request_id: str) -> RequestRecord:
    """Claim a queued request and send its letter to the organisation.

    The claim (queued -> sending) is a conditional write, so two runs never
    both send. If the process dies after SES accepted the letter but before
    the ``letter_sent`` write, the request stays in ``sending``: it is never
    sent again automatically (a duplicate letter is worse than a late one).
    """
    settings = get_settings()
    try:
        record = store.apply(request_id, Event.CLAIM_SEND, now())
    except InvalidTransition:
        current = store.get_request(request_id)
        if current is None:
            raise LookupError(request_id) from None
        return current
    sent_on = now().date()
    deadline = deadlines.deadline_for(sent_on, record.province)
    letter = compose.request_letter(settings, record, sent_on, deadline.effective)
    try:
        sent = mail.send(letter)
    except mail.MailError as error:
        logger().warning("letter not sent", extra={"request_id": request_id, "error": error.code})
        if error.maybe_sent:
            # Unknown outcome: it stays in ``sending`` for an organiser to
            # check, rather than risk a second letter.
            return record
        event = Event.SEND_DEFERRED if error.transient else Event.SEND_FAILED
        return store.apply(request_id, event, now(), {"failure_reason": error.code})
    record = store.apply(
        request_id,
        Event.LETTER_SENT,
        now(),
        {
            "sent_at": now(),
            "message_id": sent.message_id,
            "ses_message_id": sent.ses_message_id,
            "due_date": deadline.effective,
            "federal_due_date": deadline.federal,
            "provincial_due_date": deadline.provincial,
            "failure_reason": None,
            "chase_on": deadline.effective + timedelta(days=1),
        },
    )
    logger().info("letter sent", extra={"request_id": request_id})
    _notify_sent(record)
    return record


def _notify_sent(record: RequestRecord) -> None:
    try:
        mail.send(compose.sent_notice(get_settings(), record))
    except mail.MailError as error:
        logger().error(
            "sent notice not delivered",
            extra={"request_id": record.request_id, "error": error.code},
        )
