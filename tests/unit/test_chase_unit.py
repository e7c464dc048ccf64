from __future__ import annotations

from datetime import UTC, date, datetime

from chalicelib.chase import next_stage
from chalicelib.lifecycle import Status
from chalicelib.models import RequestRecord
from chalicelib.outbound import Pacer


def make(status: Status, chase_on: date | None) -> RequestRecord:
    return RequestRecord(
        request_id="r",
        status=status,
        first_name="A",
        last_name="B",
        email="a@example.org",
        language="en",
        created_at=datetime.now(UTC),
        chase_on=chase_on,
    )


def test_next_stage_by_status_and_day() -> None:
    day = date(2027, 1, 10)
    assert next_stage(make(Status.SENT, day), day) == "follow_up"
    assert next_stage(make(Status.SENT, day), date(2027, 1, 9)) is None
    assert next_stage(make(Status.OVERDUE, day), day) == "kit"
    assert next_stage(make(Status.REFUSED, day), day) == "kit"
    assert next_stage(make(Status.KIT_SENT, day), day) == "reminder"
    assert next_stage(make(Status.ANSWERED, day), day) is None
    assert next_stage(make(Status.SENT, None), day) is None


def test_pacer_spaces_sends_at_the_configured_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(per_second=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        pacer.wait()
    assert slept == [0.5, 0.5]


def test_pacer_counts_recipients() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(per_second=10, clock=lambda: now[0], sleep=sleep)
    pacer.wait(recipients=2)  # a letter: the organisation and the supporter in Cc
    pacer.wait(recipients=1)
    assert slept == [0.2]
