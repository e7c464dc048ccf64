"""The state machine's table is complete and consistent."""

from __future__ import annotations

from chalicelib.lifecycle import TRANSITIONS, Event, Status


def test_every_event_has_a_transition() -> None:
    assert set(TRANSITIONS) == set(Event)


def test_every_status_is_reachable_from_pending() -> None:
    reached = {Status.PENDING_VERIFICATION}
    changed = True
    while changed:
        changed = False
        for move in TRANSITIONS.values():
            if move.sources & reached and move.target not in reached:
                reached.add(move.target)
                changed = True
    assert reached == set(Status)


def test_a_letter_is_sent_only_from_sending() -> None:
    assert TRANSITIONS[Event.LETTER_SENT].sources == frozenset({Status.SENDING})
    assert TRANSITIONS[Event.CLAIM_SEND].sources == frozenset({Status.QUEUED})
