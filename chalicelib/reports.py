"""What the supporter reports about the organisation's answer.

Each report is a lifecycle event applied with a conditional write and
recorded with its time in the request's history. A refusal sends the
complaint kit at once; if SES is busy, the next chase run sends it.
"""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from typing import Any

from chalicelib import chase, deadlines, outbound, store
from chalicelib.journey import now
from chalicelib.lifecycle import REPORTS, Event, InvalidTransition
from chalicelib.log import logger
from chalicelib.models import RequestRecord
from chalicelib.settings import get_settings


class ReportRejected(Exception):
    """The report does not apply now; ``code`` says why (for the message)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_type(value: object) -> Event | None:
    if isinstance(value, str):
        for event in REPORTS:
            if event.value == value.strip().lower():
                return event
    return None


def _extended_due(record: RequestRecord, notice_on: date) -> date | None:
    """The new deadline, or None when the notice came after the deadline."""
    assert record.sent_at is not None and record.federal_due_date is not None
    if record.due_date is None or notice_on > record.due_date:
        return None
    sent_on = record.sent_at.date()
    laws = [(record.federal_due_date, deadlines.FEDERAL)]
    if record.provincial_due_date and record.province:
        laws.append((record.provincial_due_date, deadlines.jurisdiction_for(record.province).code))
    try:
        candidates = [deadlines.extended(due, sent_on, notice_on, code) for due, code in laws]
    except ValueError:  # inconsistent dates: treat as not in time
        return None
    if None in candidates:
        return None
    return min(day for day in candidates if day is not None)


def _changes(record: RequestRecord, kind: Event, today: date) -> dict[str, Any]:
    moment = now()
    if kind is Event.RESPONSE_RECEIVED:
        return {"answered_at": moment}
    if kind is Event.EXTENSION_NOTICE:
        if record.extended_at is not None:
            raise ReportRejected("already_extended")
        new_due = _extended_due(record, today)
        if new_due is None:
            raise ReportRejected("too_late")
        return {
            "extended_at": moment,
            "original_due_date": record.due_date,
            "due_date": new_due,
            "chase_on": new_due + timedelta(days=1),
        }
    if kind is Event.INFO_REQUESTED:
        return {"info_requested_at": moment}
    if kind is Event.INFO_PROVIDED:
        # The deadline is not reset by the law; once the information is
        # given, the chase resumes on the deadline, or tomorrow if passed.
        assert record.due_date is not None
        return {"chase_on": max(record.due_date, today) + timedelta(days=1)}
    return {"refused_at": moment, "chase_on": today}


def report(request_id: str, kind: Event) -> RequestRecord:
    record = store.get_request(request_id)
    if record is None:
        raise LookupError(request_id)
    today = now().date()
    if record.sent_at is None:
        raise ReportRejected("not_now")
    try:
        updated = store.apply(request_id, kind, now(), _changes(record, kind, today))
    except InvalidTransition:
        raise ReportRejected("not_now") from None
    logger().info("report recorded", extra={"request_id": request_id, "report": kind.value})
    if kind is Event.REFUSED:
        settings = get_settings()
        summary = chase.Summary(as_of=today)
        # If SES is busy the request stays refused and due today: the next
        # chase run sends the kit.
        with contextlib.suppress(chase.Throttled):
            chase.run_stage(
                chase.STAGES["kit"], settings, updated, today, outbound.Pacer(1000), summary
            )
        return store.get_request(request_id) or updated
    return updated
