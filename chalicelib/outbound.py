"""Sending on behalf of a request: suppression first, bookkeeping after.

Every message is mapped to its request (for SES delivery and bounce
events), and nothing goes to an address that hard-bounced or complained.
"""

from __future__ import annotations

from chalicelib import mail, store, tokens
from chalicelib.log import logger


def send(outgoing: mail.Outgoing, request_id: str, kind: str) -> mail.Sent | None:
    """Send; None when every recipient is suppressed. Raises mail.MailError."""
    if all(store.is_suppressed(tokens.email_fingerprint(to.address)) for to in outgoing.to):
        logger().info(
            "recipient suppressed; not sent", extra={"request_id": request_id, "kind": kind}
        )
        return None
    sent = mail.send(outgoing)
    try:
        store.remember_message(sent.ses_message_id, request_id, kind)
    except Exception:
        # The email is out: losing its delivery events is better than
        # failing the caller, which might then send it again.
        logger().exception("message not remembered", extra={"request_id": request_id})
    return sent
