"""Sending on behalf of a request: suppression first.

Every message is tagged with its request and kind, which SES hands back in
its delivery, bounce and complaint events; nothing goes to an address that
hard-bounced or complained.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib import mail, store, tokens
from chalicelib.log import logger
from chalicelib.settings import get_settings

# SES message tags (names and values: ASCII letters, digits, _ and -).
REQUEST_TAG = "takeback_request"
KIND_TAG = "takeback_kind"


def send(
    outgoing: mail.Outgoing,
    request_id: str,
    kind: str,
    pacer: Pacer | None = None,
    checked: bool = False,
) -> mail.Sent | None:
    """Send; None when the supporter's address is suppressed. Raises mail.MailError.

    Jobs pass a pacer to stay under the SES rate; the API sends at once and
    lets SES throttle it (the message is then queued). ``checked``: the
    caller has just checked suppression itself.
    """
    target = get_settings().target_email.lower()
    supporters = [to.address for to in outgoing.to if to.address.lower() != target]
    if (
        supporters
        and not checked
        and all(store.is_suppressed(tokens.email_fingerprint(address)) for address in supporters)
    ):
        logger().info(
            "recipient suppressed; not sent", extra={"request_id": request_id, "kind": kind}
        )
        return None
    if pacer is not None:
        pacer.wait(len(outgoing.to) + len(outgoing.cc))
    return mail.send(outgoing, {REQUEST_TAG: request_id, KIND_TAG: kind})


def owner(ses_mail: dict[str, Any]) -> tuple[str, str] | None:
    """(request id, kind) from the tags of a message in an SES event, if ours."""
    tags = ses_mail.get("tags")
    if not isinstance(tags, dict):
        return None
    request_ids, kinds = tags.get(REQUEST_TAG), tags.get(KIND_TAG)
    if not (isinstance(request_ids, list) and isinstance(kinds, list)):
        return None
    if len(request_ids) != 1 or len(kinds) != 1:
        return None
    request_id, kind = request_ids[0], kinds[0]
    if not (isinstance(request_id, str) and isinstance(kind, str)):
        return None
    return request_id, kind


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
