"""The life of a request: every status and every allowed move, in one place.

The store applies a transition with a conditional write whose condition is
``status IN (sources)``, so two Lambdas racing on the same request (a double
click on the confirm button, an overlapping retry run) cannot both win.

    pending_verification --verify--> queued --claim_send--> sending
    sending --letter_sent--> sent
    sending --send_deferred--> queued          (throttled; retried later)
    sending --send_failed--> failed            (permanent SES error)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PENDING_VERIFICATION = "pending_verification"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Event(StrEnum):
    VERIFY = "verify"
    CLAIM_SEND = "claim_send"
    LETTER_SENT = "letter_sent"
    SEND_DEFERRED = "send_deferred"
    SEND_FAILED = "send_failed"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[Status]
    target: Status


TRANSITIONS: dict[Event, Transition] = {
    Event.VERIFY: Transition(frozenset({Status.PENDING_VERIFICATION}), Status.QUEUED),
    Event.CLAIM_SEND: Transition(frozenset({Status.QUEUED}), Status.SENDING),
    Event.LETTER_SENT: Transition(frozenset({Status.SENDING}), Status.SENT),
    Event.SEND_DEFERRED: Transition(frozenset({Status.SENDING}), Status.QUEUED),
    Event.SEND_FAILED: Transition(frozenset({Status.SENDING}), Status.FAILED),
}

# Statuses in which the organisation has (or will shortly have) the letter.
LETTER_STATUSES = frozenset({Status.SENT})


class InvalidTransition(Exception):
    """The request was not in a status the event may leave from."""

    def __init__(self, request_id: str, event: Event) -> None:
        super().__init__(f"{event} not allowed for request {request_id} in its current status")
        self.request_id = request_id
        self.event = event


def transition(event: Event) -> Transition:
    return TRANSITIONS[event]
