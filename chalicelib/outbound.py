"""Sending on behalf of a request: suppression first, bookkeeping after.

Every message is mapped to its request (for SES delivery and bounce
events), and nothing goes to an address that hard-bounced or complained.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chalicelib import mail, store, tokens
from chalicelib.log import logger
from chalicelib.settings import get_settings


def send(
    outgoing: mail.Outgoing, request_id: str, kind: str, pacer: Pacer | None = None
) -> mail.Sent | None:
    """Send; None when the supporter's address is suppressed. Raises mail.MailError.

    Jobs pass a pacer to stay under the SES rate; the API sends at once and
    lets SES throttle it (the message is then queued).
    """
    target = get_settings().target_email.lower()
    supporters = [to.address for to in outgoing.to if to.address.lower() != target]
    if supporters and all(
        store.is_suppressed(tokens.email_fingerprint(address)) for address in supporters
    ):
        logger().info(
            "recipient suppressed; not sent", extra={"request_id": request_id, "kind": kind}
        )
        return None
    if pacer is not None:
        pacer.wait(len(outgoing.to) + len(outgoing.cc))
    sent = mail.send(outgoing)
    try:
        store.remember_message(sent.ses_message_id, request_id, kind)
    except Exception:
        # The email is out: losing its delivery events is better than
        # failing the caller, which might then send it again.
        logger().exception("message not remembered", extra={"request_id": request_id})
    return sent


class Pacer:
    """Keeps sending under the configured SES rate.

    SES counts recipients, not messages, against the sending rate, so each
    message waits for as many slots as it has recipients.
    """

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    def wait(self, recipients: int = 1) -> None:
        delay = self._next - self._clock()
        if delay > 0:
            self._sleep(delay)
        self._next = max(self._clock(), self._next) + self._interval * recipients
