"""SES events (configuration set -> SNS -> Lambda): delivery, bounce, complaint.

- Delivery of the letter: ``delivered_at``; the legal deadline then counts
  from the delivery day (when that differs from the sending day).
- Permanent bounce of the organisation's address: the letter is marked
  undelivered and an error is logged, because the target address is wrong.
- Permanent bounce of, or complaint from, a supporter's address: nothing is
  mailed to it again.
Messages are known by the tags ``outbound.send`` gave them; events about
other messages, or requests gone since, are ignored.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import deadlines, outbound, store, tokens
from chalicelib.journey import now
from chalicelib.lifecycle import Status
from chalicelib.log import logger
from chalicelib.settings import get_settings

# The letter's deadline moves only while nothing else has happened to it.
_DEADLINE_MAY_MOVE = frozenset({Status.SENT})


def handle(message: Any) -> str:
    """Apply one SES event; returns what was done (for logs and tests)."""
    if not isinstance(message, dict):
        return "ignored: not an SES event"
    kind = message.get("eventType") or message.get("notificationType")
    ses_mail = message.get("mail")
    if not isinstance(kind, str) or not isinstance(ses_mail, dict):
        return "ignored: not an SES event"
    owner = outbound.owner(ses_mail)
    if owner is None:
        logger().info("SES event for an unknown message", extra={"event": kind})
        return "ignored: unknown message"
    request_id, sent_as = owner
    if kind == "Delivery" and sent_as == "letter":
        return _delivered(request_id, message.get("delivery") or {})
    if kind == "Bounce" and (message.get("bounce") or {}).get("bounceType") == "Permanent":
        recipients = (message.get("bounce") or {}).get("bouncedRecipients") or []
        return _bounced(request_id, sent_as, _addresses(recipients))
    if kind == "Complaint":
        recipients = (message.get("complaint") or {}).get("complainedRecipients") or []
        for address in _addresses(recipients):
            store.suppress(tokens.email_fingerprint(address), "complaint", now())
        store.note(request_id, {"complaint_at": now()})
        logger().warning("complaint: address suppressed", extra={"request_id": request_id})
        return "suppressed"
    return f"ignored: {kind}"


def _addresses(recipients: list[Any]) -> list[str]:
    return [
        recipient["emailAddress"]
        for recipient in recipients
        if isinstance(recipient, dict) and isinstance(recipient.get("emailAddress"), str)
    ]


def _delivered(request_id: str, delivery: dict[str, Any]) -> str:
    delivered_at = _timestamp(delivery.get("timestamp")) or now()
    record = store.get_request(request_id)
    if record is None or record.sent_at is None:
        return "ignored: request gone"
    changes: dict[str, Any] = {"delivered_at": delivered_at}
    delivered_on = delivered_at.date()
    if delivered_on > record.sent_at.date() and record.extended_at is None:
        deadline = deadlines.deadline_for(delivered_on, record.province)
        changes.update(
            {
                "due_date": deadline.effective,
                "federal_due_date": deadline.federal,
                "provincial_due_date": deadline.provincial,
                "chase_on": deadline.effective + timedelta(days=1),
            }
        )
        if store.note(request_id, changes, only_if=_DEADLINE_MAY_MOVE):
            return "delivered: deadline counted from delivery"
        changes = {"delivered_at": delivered_at}
    store.note(request_id, changes)
    return "delivered"


def _bounced(request_id: str, sent_as: str, addresses: list[str]) -> str:
    target = get_settings().target_email.lower()
    outcome = []
    for address in addresses:
        if address.lower() == target and sent_as in ("letter", "follow_up"):
            store.note(request_id, {"letter_bounced_at": now()})
            # The organisation's address is wrong: every letter will bounce.
            logger().error("the target's address bounced", extra={"request_id": request_id})
            outcome.append("target bounced")
        else:
            store.suppress(tokens.email_fingerprint(address), "bounce", now())
            store.note(request_id, {"supporter_bounced_at": now()})
            logger().warning("supporter address bounced", extra={"request_id": request_id})
            outcome.append("supporter suppressed")
    return ", ".join(outcome) or "ignored: no recipients"


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
