"""The life of a request: every status and every allowed move, in one place.

The store applies a transition with a conditional write whose condition is
``status IN (sources)``, so two Lambdas racing on the same request (a double
click on the confirm button, overlapping chase runs) cannot both win.

Sending::

    pending_verification --verify--> queued --claim_send--> sending
    sending --letter_sent--> sent
    sending --send_deferred--> queued           (throttled; retried later)
    sending --send_failed--> failed             (permanent SES error)

What the supporter reports (``POST /requests/{id}/events``)::

    sent|info_requested|overdue|refused|kit_sent|closed
        --response_received--> answered
    sent --extension_notice--> sent             (new due date; once, in time)
    sent|overdue|kit_sent --info_requested--> info_requested   (chase paused)
    info_requested --info_provided--> sent      (the chase resumes)
    sent|info_requested|overdue --refused--> refused

The chase (each stage claimed before its email goes out; a throttled send
gives the claim back so the next run tries again)::

    sent --claim_follow_up--> following_up --follow_up_sent--> overdue
    overdue|refused --claim_kit--> sending_kit --kit_sent--> kit_sent
    kit_sent --claim_reminder--> reminding --reminder_sent--> closed

Privacy::

    any --forget--> forgotten                   (the supporter deletes their data)
    answered|closed|failed --purge--> forgotten (retention period over)

A claim left behind by a crash after SES accepted the email stays claimed:
it is never sent twice automatically (see chase.py).
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
    ANSWERED = "answered"
    INFO_REQUESTED = "info_requested"
    REFUSED = "refused"
    FOLLOWING_UP = "following_up"
    OVERDUE = "overdue"
    SENDING_KIT = "sending_kit"
    KIT_SENT = "kit_sent"
    REMINDING = "reminding"
    CLOSED = "closed"
    FORGOTTEN = "forgotten"


class Event(StrEnum):
    VERIFY = "verify"
    CLAIM_SEND = "claim_send"
    LETTER_SENT = "letter_sent"
    SEND_DEFERRED = "send_deferred"
    SEND_FAILED = "send_failed"
    # Reports from the supporter; the first four are the public API's types.
    RESPONSE_RECEIVED = "response_received"
    EXTENSION_NOTICE = "extension_notice"
    INFO_REQUESTED = "info_requested"
    REFUSED = "refused"
    INFO_PROVIDED = "info_provided"
    # The chase.
    CLAIM_FOLLOW_UP = "claim_follow_up"
    FOLLOW_UP_SENT = "follow_up_sent"
    CLAIM_KIT = "claim_kit"
    KIT_SENT = "kit_sent"
    CLAIM_REMINDER = "claim_reminder"
    REMINDER_SENT = "reminder_sent"
    FOLLOW_UP_DEFERRED = "follow_up_deferred"
    KIT_DEFERRED = "kit_deferred"
    REFUSAL_KIT_DEFERRED = "refusal_kit_deferred"
    REMINDER_DEFERRED = "reminder_deferred"
    # Personal data removed: at the supporter's request, or by retention.
    FORGET = "forget"
    PURGE = "purge"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[Status]
    target: Status


def _move(*sources: Status, to: Status) -> Transition:
    return Transition(frozenset(sources), to)


S = Status
TRANSITIONS: dict[Event, Transition] = {
    Event.VERIFY: _move(S.PENDING_VERIFICATION, to=S.QUEUED),
    Event.CLAIM_SEND: _move(S.QUEUED, to=S.SENDING),
    Event.LETTER_SENT: _move(S.SENDING, to=S.SENT),
    Event.SEND_DEFERRED: _move(S.SENDING, to=S.QUEUED),
    Event.SEND_FAILED: _move(S.SENDING, to=S.FAILED),
    Event.RESPONSE_RECEIVED: _move(
        S.SENT, S.INFO_REQUESTED, S.OVERDUE, S.REFUSED, S.KIT_SENT, S.CLOSED, to=S.ANSWERED
    ),
    Event.EXTENSION_NOTICE: _move(S.SENT, to=S.SENT),
    Event.INFO_REQUESTED: _move(S.SENT, S.OVERDUE, S.KIT_SENT, to=S.INFO_REQUESTED),
    Event.INFO_PROVIDED: _move(S.INFO_REQUESTED, to=S.SENT),
    Event.REFUSED: _move(S.SENT, S.INFO_REQUESTED, S.OVERDUE, to=S.REFUSED),
    Event.CLAIM_FOLLOW_UP: _move(S.SENT, to=S.FOLLOWING_UP),
    Event.FOLLOW_UP_SENT: _move(S.FOLLOWING_UP, to=S.OVERDUE),
    Event.FOLLOW_UP_DEFERRED: _move(S.FOLLOWING_UP, to=S.SENT),
    Event.CLAIM_KIT: _move(S.OVERDUE, S.REFUSED, to=S.SENDING_KIT),
    Event.KIT_SENT: _move(S.SENDING_KIT, to=S.KIT_SENT),
    Event.KIT_DEFERRED: _move(S.SENDING_KIT, to=S.OVERDUE),
    Event.REFUSAL_KIT_DEFERRED: _move(S.SENDING_KIT, to=S.REFUSED),
    Event.CLAIM_REMINDER: _move(S.KIT_SENT, to=S.REMINDING),
    Event.REMINDER_SENT: _move(S.REMINDING, to=S.CLOSED),
    Event.REMINDER_DEFERRED: _move(S.REMINDING, to=S.KIT_SENT),
    Event.FORGET: Transition(frozenset(Status) - {S.FORGOTTEN}, S.FORGOTTEN),
    Event.PURGE: _move(S.ANSWERED, S.CLOSED, S.FAILED, to=S.FORGOTTEN),
}

# The reports a supporter may make, as the API names them (info_provided
# is this project's addition: it ends an info_requested pause).
REPORTS = frozenset(
    {
        Event.RESPONSE_RECEIVED,
        Event.EXTENSION_NOTICE,
        Event.INFO_REQUESTED,
        Event.REFUSED,
        Event.INFO_PROVIDED,
    }
)

# Statuses the daily chase looks at: only these carry the sparse index key
# ``chase_on``; every other status has it removed in the same write.
CHASED = frozenset({S.SENT, S.OVERDUE, S.REFUSED, S.KIT_SENT})

# Statuses after which nothing more happens: personal data is purged
# ``retention_days`` after reaching one (``purge_on``, a sparse index key).
PURGEABLE = frozenset({S.ANSWERED, S.CLOSED, S.FAILED})

# Statuses with mail waiting for the retry job (``mail_queue``, sparse).
QUEUED_MAIL = frozenset({S.PENDING_VERIFICATION, S.QUEUED})


class InvalidTransition(Exception):
    """The request was not in a status the event may leave from."""

    def __init__(self, request_id: str, event: Event) -> None:
        super().__init__(f"{event} not allowed for request {request_id} in its current status")
        self.request_id = request_id
        self.event = event


def transition(event: Event) -> Transition:
    return TRANSITIONS[event]
