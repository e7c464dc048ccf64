"""The supporter's journey: submit, verify, the letter going out, forgetting.

Every status change goes through ``store.apply`` (a conditional write), so
whichever Lambda wins a race does the work and the others do nothing.

Who sends depends on ``send_mode``:

- ``stream`` (deployed stages): the API only writes; a Lambda on the table's
  stream (``send_stored``) sends the confirmation email and the letter
  within about a second of the write;
- ``inline``: the API sends during the request;
- ``queue``: the retry job sends everything, at the configured SES rate.

Mail that SES refuses for now (throttling, an outage) waits in the mail
queue (``mail_queue``/``retry_at``) for the retry job. Every request is
stored already queued, ``SAFETY_NET`` ahead, so the retry job also sends
what a Lambda that stopped half-way did not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib import compose, deadlines, mail, outbound, store, tokens
from chalicelib.lifecycle import Event, InvalidTransition, Status
from chalicelib.log import logger
from chalicelib.models import RequestRecord, Submission
from chalicelib.outbound import Pacer
from chalicelib.settings import get_settings

# How long the retry job waits before healing a request whose Lambda stopped
# between storing it and sending its email.
SAFETY_NET = timedelta(minutes=5)
# A second submission of an unverified address resends its confirmation
# email when the last one is older than this.
RESEND_AFTER = timedelta(minutes=10)
# Anyone can submit someone else's address: resends are capped.
MAX_RESENDS = 2
# The writes the stream consumer sends on: a new request, and a request just
# verified (queued with no attempt yet; a deferred letter has 1 or more and
# waits for the retry job's backoff). The deployed event source mapping
# passes it only these (tools/package.py), so other writes cost nothing.
NEW_REQUEST = store.StreamTrigger(inserted=True, status=Status.PENDING_VERIFICATION)
VERIFIED = store.StreamTrigger(inserted=False, status=Status.QUEUED, send_attempts=0)
STREAMED = (NEW_REQUEST, VERIFIED)
# A stream batch or retry run stops taking work this close to its timeout;
# what it leaves stays queued for the retry job.
STOP_MARGIN_SECONDS = 10


def now() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return secrets.token_urlsafe(12)


def _queued(attempts: int, moment: datetime) -> dict[str, object]:
    """Queue fields for the next attempt: 1, 2, 4 ... minutes, capped."""
    cap = get_settings().retry_max_minutes
    delay = min(2 ** max(attempts - 1, 0), cap) if attempts else 0
    return {
        "mail_queue": "pending",
        "retry_at": moment + timedelta(minutes=delay),
        "send_attempts": attempts,
    }


def submit(submission: Submission, allowances: tuple[store.Allowance, ...] = ()) -> RequestRecord:
    """Store a request (or find the active one) and start its verification.

    Every submission counts against ``allowances`` (store.OverLimit when
    one is used up). A filled honeypot gets an answer that looks like
    success but nothing is stored or sent, so a bot learns nothing.
    """
    settings = get_settings()
    moment = now()
    queue_all = settings.send_mode == "queue" and settings.verification_required
    # The stream consumer sends when the request is stored (on_stored).
    send_now = settings.send_mode == "inline"
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
    # Stored already queued: if this Lambda fails before the verification
    # email is out, the retry job sends it (in queue mode it always does).
    record.mail_queue = "pending"
    record.retry_at = moment if queue_all else moment + SAFETY_NET
    if submission.is_bot:
        store.count_hits(allowances)
        logger().info("honeypot filled; nothing stored")
        return record
    expires_at = int(time.time()) + settings.verify_days * 86400
    email_key = tokens.email_fingerprint(record.email)
    try:
        suppressed = store.create_request(record, email_key, expires_at, allowances)
    except store.OverLimit as over:
        # The transaction counted nothing: count the other limits still, so
        # that one address over its limit does not hide an IP's attempts.
        with contextlib.suppress(store.OverLimit):
            store.count_hits(tuple(a for a in allowances if a != over.allowance))
        raise
    except store.DuplicateRequest as duplicate:
        store.count_hits(allowances)
        return _submitted_again(duplicate.existing, moment)
    logger().info("request stored", extra={"request_id": record.request_id})
    if suppressed:
        # The address hard-bounced or complained before: nothing is mailed
        # to it (the letter to the organisation still goes if no
        # verification is asked for).
        logger().info("recipient suppressed; not sent", extra={"request_id": record.request_id})
        store.note(
            record.request_id,
            {"mail_suppressed": True, "mail_queue": None, "retry_at": None},
            only_if=frozenset({Status.PENDING_VERIFICATION}),
        )
    if not settings.verification_required:
        return verify(record.request_id)
    if send_now and not suppressed:
        send_verification(record, checked=True)
    return record


def _submitted_again(existing: RequestRecord, moment: datetime) -> RequestRecord:
    """The answer to a second submission: the open request of the address.

    Someone who submits again has usually lost the email: it is sent again,
    at most once per RESEND_AFTER (not for double clicks), MAX_RESENDS times.
    """
    logger().info("duplicate submission", extra={"request_id": existing.request_id})
    if existing.status == Status.PENDING_VERIFICATION and store.claim_resend(
        existing.request_id, moment, moment - RESEND_AFTER, MAX_RESENDS
    ):
        send_verification(existing)
    return existing


def send_verification(
    record: RequestRecord, pacer: Pacer | None = None, checked: bool = False
) -> None:
    """Email the confirmation link; on a temporary failure, queue a retry.

    ``checked``: the address was just found not suppressed (at submission).
    """
    try:
        outbound.send(
            compose.verification_email(get_settings(), record),
            record.request_id,
            "verification",
            pacer,
            checked=checked,
        )
    except mail.MailError as error:
        logger().warning(
            "verification email not sent",
            extra={"request_id": record.request_id, "error": error.code},
        )
        if error.transient:
            store.note(
                record.request_id,
                _queued(record.send_attempts + 1, now()),
                only_if=frozenset({Status.PENDING_VERIFICATION}),
            )
            return
    if record.mail_queue is not None:  # the safety net, or sent by the retry job
        _leave_queue(record.request_id)


def _leave_queue(request_id: str) -> None:
    store.note(
        request_id,
        {"mail_queue": None, "retry_at": None},
        only_if=frozenset({Status.PENDING_VERIFICATION}),
    )


def verify(request_id: str, record: RequestRecord | None = None) -> RequestRecord:
    """Confirm the supporter's address and send the letter, at most once.

    ``record`` is the request as the caller just read it (saves a read).
    """
    record = record or store.get_request(request_id)
    if record is None:
        raise LookupError(request_id)
    if record.status != Status.PENDING_VERIFICATION:
        return record
    changes = _verified(request_id, tokens.email_fingerprint(record.email))
    if changes is None:
        # A second click, or a concurrent one: the first does the sending.
        return store.get_request(request_id) or record
    if get_settings().send_mode == "inline":
        return send_letter(request_id)
    return dataclasses.replace(record, status=Status.QUEUED, **changes)


def confirm(request_id: str, email_key: str) -> None:
    """Confirm from a link that carries the address's fingerprint.

    The write comes first and the request is read only when it fails (a
    second click, an expired or forgotten request): with the stream
    consumer sending, a confirmation is one transaction. LookupError when
    there is no request to confirm.
    """
    if _verified(request_id, email_key) is None:
        current = store.get_request(request_id)
        # Still pending means its lock points elsewhere (expired and reused):
        # nothing this link can confirm. (A write conflict is StoreBusy.)
        if current is None or current.status in (Status.FORGOTTEN, Status.PENDING_VERIFICATION):
            raise LookupError(request_id)
        return
    if get_settings().send_mode == "inline":
        send_letter(request_id)


def _verified(request_id: str, email_key: str) -> dict[str, Any] | None:
    """Apply VERIFY; the changes written, or None if the request was not pending."""
    moment = now()
    # Queued in the same write: should the letter not go out (a Lambda that
    # stops, a stream record lost), the retry job sends it; in queue mode
    # it always does.
    changes: dict[str, Any] = {"verified_at": moment, **_queued(0, moment)}
    if get_settings().send_mode != "queue":
        changes["retry_at"] = moment + SAFETY_NET
    try:
        store.verify(request_id, email_key, moment, changes)
    except InvalidTransition:
        return None
    logger().info("request verified", extra={"request_id": request_id})
    return changes


def send_letter(request_id: str, pacer: Pacer | None = None) -> RequestRecord:
    """Claim a queued request and send its letter to the organisation.

    The claim (queued -> sending) is a conditional write, so two runs never
    both send. If the process dies after SES accepted the letter but before
    the ``letter_sent`` write, or SES's answer is lost, the request stays in
    ``sending``: it is never sent again automatically (a duplicate letter is
    worse than a late one) and organisers see it in the stats.
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
        sent = outbound.send(letter, request_id, "letter", pacer)
    except mail.MailError as error:
        logger().warning("letter not sent", extra={"request_id": request_id, "error": error.code})
        if error.maybe_sent:
            return record
        if error.transient:
            changes = {"failure_reason": error.code, **_queued(record.send_attempts + 1, now())}
            return _settle(request_id, Event.SEND_DEFERRED, changes)
        return _settle(request_id, Event.SEND_FAILED, {"failure_reason": error.code})
    except Exception:
        # This process failed before SES had the letter: give the claim back
        # so the retry job sends it, then let the failure surface.
        changes = {"failure_reason": "interrupted", **_queued(record.send_attempts + 1, now())}
        _settle(request_id, Event.SEND_DEFERRED, changes)
        raise
    assert sent is not None  # the organisation's address is never suppressed here
    record = _settle(
        request_id,
        Event.LETTER_SENT,
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
    if record.status == Status.SENT:
        _notify_sent(record, pacer)
    return record


def _settle(request_id: str, event: Event, changes: dict[str, Any]) -> RequestRecord:
    """Record how a claimed send ended.

    Only the claimant moves a request out of ``sending``, except a supporter
    who asks to be forgotten meanwhile: then there is nothing to record.
    """
    try:
        return store.apply(request_id, event, now(), changes)
    except InvalidTransition:
        current = store.get_request(request_id)
        if current is None or current.status != Status.FORGOTTEN:
            raise
        return current


def _notify_sent(record: RequestRecord, pacer: Pacer | None) -> None:
    if record.unmailable:
        return  # suppressed at submission, or the verification email bounced or was reported
    try:
        # The address passed the suppression check at submission, and only
        # this request (its lock) mails it since: the record's own bounce
        # and complaint marks are the rest of the check.
        outbound.send(
            compose.sent_notice(get_settings(), record),
            record.request_id,
            "sent_notice",
            pacer,
            checked=True,
        )
    except mail.MailError as error:
        # Not retried: the letter is out and the status page says so.
        logger().error(
            "sent notice not delivered",
            extra={"request_id": record.request_id, "error": error.code},
        )


def on_stored(
    changes: Iterable[store.Change], time_left: Callable[[], float] | None = None
) -> dict[str, int]:
    """Stream mode: send what the API has just stored.

    A new request gets its confirmation email; a request that has just been
    verified gets its letter. The stream delivers records at least once, so
    both are claimed first (a replayed record finds the claim taken).
    """
    settings = get_settings()
    counts = {"verifications": 0, "letters": 0, "stopped_early": 0}
    if settings.send_mode != "stream":
        return counts  # the API or the retry job sends
    pacer = Pacer(settings.send_rate_per_second)
    out_of_time = running_out(time_left)
    for change in changes:
        if out_of_time():
            counts["stopped_early"] = 1  # the rest is queued: the retry job sends it
            break
        record = change.record
        if NEW_REQUEST.matches(change):
            if settings.verification_required and _claim_verification(record):
                # Not ``checked``: the suppression mark may be written after
                # the request, so the send looks it up itself.
                send_verification(record, pacer)
                counts["verifications"] += 1
        elif VERIFIED.matches(change):
            sent = send_letter(record.request_id, pacer).status == Status.SENT
            counts["letters"] += sent
    return counts


def running_out(
    time_left: Callable[[], float] | None, margin_seconds: float = STOP_MARGIN_SECONDS
) -> Callable[[], bool]:
    """Whether a run should stop taking work: within ``margin_seconds`` of
    its Lambda's timeout, or a quarter of the time it had, if that was short."""
    if time_left is None:
        return lambda: False
    margin = min(margin_seconds, time_left() / 4)
    return lambda: time_left() < margin


def _claim_verification(record: RequestRecord) -> bool:
    """Take a queued verification email: only one sender moves its next
    attempt from the time it read, so only one sends it."""
    if record.mail_queue is None or record.retry_at is None:
        return False  # suppressed, or already sent
    # Times are stored to the second: the new one must differ from the one
    # read, or a replayed record would find the claim still free.
    later = max(now() + SAFETY_NET, record.retry_at + timedelta(seconds=1))
    return store.move_retry(record.request_id, record.retry_at, later)


def retry_queued(moment: datetime, time_left: Callable[[], float] | None = None) -> dict[str, int]:
    """Send the mail waiting in the queue, at the configured SES rate."""
    pacer = Pacer(get_settings().send_rate_per_second)
    counts = {"verifications": 0, "letters": 0, "still_queued": 0, "stopped_early": 0}
    out_of_time = running_out(time_left)
    for record in store.due_for_retry(moment):
        if out_of_time():
            counts["stopped_early"] = 1
            break
        if record.status == Status.PENDING_VERIFICATION:
            # Claimed: a stream record delivered late may be sending it too.
            if _claim_verification(record):
                send_verification(record, pacer)
                counts["verifications"] += 1
        elif record.status == Status.QUEUED:
            result = send_letter(record.request_id, pacer)
            counts["letters" if result.status == Status.SENT else "still_queued"] += 1
    return counts


def withdraw_consent(record: RequestRecord) -> RequestRecord:
    """No more campaign updates; the request itself and its follow-up go on."""
    if not record.consent_updates:
        return record  # nothing to withdraw, or withdrawn already
    changes: dict[str, Any] = {"consent_updates": False, "consent_withdrawn_at": now()}
    store.note(record.request_id, changes)
    logger().info("consent withdrawn", extra={"request_id": record.request_id})
    return dataclasses.replace(record, **changes)


def forget(request_id: str) -> None:
    """Remove the supporter's personal data at once, keeping an anonymous record."""
    record = store.get_request(request_id)
    if record is None or record.status == Status.FORGOTTEN:
        raise LookupError(request_id)
    key = tokens.email_fingerprint(record.email) if record.email else None
    store.forget(request_id, key, Event.FORGET, now(), "supporter")
    logger().info("supporter forgotten", extra={"request_id": request_id})


def purge_due(as_of: date, lookback_days: int) -> int:
    """Anonymise finished requests whose retention period has ended."""
    purged = 0
    for offset in range(lookback_days, -1, -1):
        for record in store.due_for_purge(as_of - timedelta(days=offset)):
            key = tokens.email_fingerprint(record.email) if record.email else None
            try:
                store.forget(record.request_id, key, Event.PURGE, now(), "retention")
            except InvalidTransition:
                continue  # reported or forgotten meanwhile
            purged += 1
    return purged
