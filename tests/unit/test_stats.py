"""Campaign figures, outcomes and the HTML report (issue 5)."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from chalicelib import stats
from chalicelib.lifecycle import Status
from chalicelib.models import RequestRecord
from tools import report

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SENT = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)  # a Monday
DUE = date(2026, 6, 3)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def make(number: int = 1, **fields: Any) -> RequestRecord:
    """A request; a sent one unless told otherwise."""
    values: dict[str, Any] = {
        "request_id": f"req{number:04d}",
        "status": Status.SENT,
        "first_name": f"Zoë{number}",
        "last_name": "Côté-Lévesque",
        "email": f"zoe{number}@example.org",
        "language": "fr",
        "created_at": SENT - timedelta(minutes=10),
        "province": "QC",
        "verified_at": SENT - timedelta(minutes=5),
        "sent_at": SENT,
        "due_date": DUE,
    }
    values.update(fields)
    return RequestRecord(**values)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": Status.ANSWERED, "answered_at": at(DUE, 23)}, "answered_in_time"),
        ({"status": Status.ANSWERED, "answered_at": at(DUE + timedelta(days=1), 0)}, "answered_late"),
        # Answered after the chase had started: still an answer, late.
        ({"status": Status.ANSWERED, "answered_at": at(DUE + timedelta(days=9)), "kit_sent_on": DUE},
         "answered_late"),
        # An extension moved the deadline; answered before the new one.
        ({"status": Status.ANSWERED, "due_date": DUE + timedelta(days=30),
          "extended_at": at(DUE - timedelta(days=3)), "answered_at": at(DUE + timedelta(days=20))},
         "answered_in_time"),
        # A refusal sends the kit at once: kit_sent, but refused, not deemed.
        ({"status": Status.KIT_SENT, "refused_at": at(DUE - timedelta(days=9))}, "refused"),
        ({"status": Status.REFUSED, "refused_at": at(DUE - timedelta(days=9))}, "refused"),
        ({"status": Status.INFO_REQUESTED, "info_requested_at": at(DUE - timedelta(days=20))},
         "info_requested"),
        ({"status": Status.SENT}, "deemed_refused"),  # deadline passed, nothing reported
        ({"status": Status.SENT, "due_date": TODAY}, "pending"),  # the deadline is today
        ({"status": Status.OVERDUE, "due_date": TODAY + timedelta(days=5)}, "deemed_refused"),
        ({"status": Status.FOLLOWING_UP}, "deemed_refused"),
        ({"status": Status.CLOSED}, "deemed_refused"),
        ({"status": Status.FAILED, "sent_at": None, "due_date": None}, "failed"),
        ({"status": Status.PENDING_VERIFICATION, "sent_at": None, "due_date": None,
          "verified_at": None}, "not_sent"),
        ({"status": Status.QUEUED, "sent_at": None, "due_date": None}, "not_sent"),
        ({"status": Status.SENDING, "sent_at": None, "due_date": None}, "not_sent"),
        # Forgotten before the deadline: nobody can report an answer any more.
        ({"status": Status.FORGOTTEN, "forgotten_at": at(DUE - timedelta(days=2))}, "pending"),
        ({"status": Status.FORGOTTEN, "forgotten_at": at(DUE + timedelta(days=2))}, "deemed_refused"),
        ({"status": Status.FORGOTTEN, "forgotten_at": at(TODAY), "answered_at": at(DUE)},
         "answered_in_time"),
    ],
)  # fmt: skip
def test_outcomes(fields: dict[str, Any], expected: str) -> None:
    assert stats.record_outcome(make(**fields), TODAY) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "none"),
        ({"status": Status.OVERDUE, "followed_up_on": DUE}, "follow_up"),
        ({"status": Status.KIT_SENT, "followed_up_on": DUE, "kit_sent_on": DUE}, "complaint_kit"),
        ({"status": Status.CLOSED, "kit_sent_on": DUE, "reminder_sent_on": DUE}, "closed"),
        ({"status": Status.ANSWERED, "kit_sent_on": DUE, "reminder_sent_on": DUE}, "reminder"),
    ],
)
def test_chase_stage_is_the_furthest_step(fields: dict[str, Any], expected: str) -> None:
    assert stats.record_chase_stage(make(**fields)) == expected


def campaign() -> list[RequestRecord]:
    week2 = SENT + timedelta(days=7)
    return [
        make(1, status=Status.ANSWERED, answered_at=SENT + timedelta(days=3)),
        make(2, status=Status.ANSWERED, answered_at=SENT + timedelta(days=40), language="en",
             province="ON"),
        make(3, status=Status.KIT_SENT, followed_up_on=DUE, kit_sent_on=DUE),
        make(4, status=Status.CLOSED, sent_at=week2, province=None),
        make(5, status=Status.REFUSED, refused_at=SENT + timedelta(days=2), sent_at=week2),
        make(6, status=Status.INFO_REQUESTED, info_requested_at=SENT + timedelta(days=1),
             extended_at=SENT + timedelta(days=2), language="en", province="BC"),
        make(7, status=Status.SENT, due_date=TODAY + timedelta(days=10), sent_at=week2),
        make(8, status=Status.PENDING_VERIFICATION, sent_at=None, due_date=None, verified_at=None,
             created_at=at(TODAY)),
        make(9, status=Status.FAILED, sent_at=None, due_date=None, created_at=at(TODAY)),
        # A claim left by a crash two hours ago, and one taken a minute ago.
        make(10, status=Status.SENDING, sent_at=None, due_date=None,
             history=[{"at": (NOW - timedelta(hours=2)).isoformat(), "event": "claim_send"}]),
        make(11, status=Status.FOLLOWING_UP,
             history=[{"at": (NOW - timedelta(minutes=1)).isoformat(), "event": "claim_follow_up"}]),
        make(12, status=Status.SENT, letter_bounced_at=SENT + timedelta(minutes=1)),
    ]  # fmt: skip


def test_collect_counts_everything_in_one_pass() -> None:
    figures = stats.collect(iter(campaign()), TODAY, NOW)
    assert figures.requests == 12
    assert figures.by_status["answered"] == 2 and figures.by_status["sent"] == 2
    assert figures.by_language == {"fr": 10, "en": 2}
    assert figures.by_province == {"QC": 9, "ON": 1, "BC": 1, "unknown": 1}
    assert figures.submissions_per_day == {(SENT - timedelta(minutes=10)).date(): 10, TODAY: 2}
    assert figures.verified == 11  # all but the one still pending verification
    assert figures.verification_rate == pytest.approx(11 / 12)
    assert figures.sent == 9
    assert dict(figures.outcomes) == {
        "answered_in_time": 1,
        "answered_late": 1,
        "deemed_refused": 4,  # kit_sent, closed, following_up, sent past its deadline
        "refused": 1,
        "info_requested": 1,
        "pending": 1,
        "not_sent": 2,
        "failed": 1,
    }
    assert figures.decided == 8
    assert (figures.extended, figures.info_requested) == (1, 1)
    assert figures.median_days_to_answer == (3 + 40) / 2
    assert figures.failed_letters == 1 and figures.letters_bounced == 1
    assert (figures.claimed, figures.stuck_claims) == (2, 1)
    week1, week2 = SENT.date(), SENT.date() + timedelta(days=7)
    assert set(figures.sent_per_week) == {week1, week2}
    assert sum(figures.sent_per_week[week2].values()) == 3
    assert figures.sent_per_week[week2]["refused"] == 1


@pytest.mark.parametrize(
    ("days", "median"),
    [
        ([5], 5.0),
        ([1, 9], 5.0),
        ([2, 30, 7], 7.0),
        ([0, 0, 1, 100], 0.5),
        ([3] * 50 + [90] * 49, 3.0),
    ],
)
def test_median_days_to_answer(days: list[int], median: float) -> None:
    records = [
        make(index, status=Status.ANSWERED, answered_at=SENT + timedelta(days=gap))
        for index, gap in enumerate(days)
    ]
    assert stats.collect(records, TODAY, NOW).median_days_to_answer == median


def test_no_records_gives_empty_figures() -> None:
    figures = stats.collect([], TODAY, NOW)
    data = stats.to_json(figures)
    assert data["requests"] == 0
    assert data["verification"]["rate"] is None
    assert data["compliance"]["median_days_to_answer"] is None
    assert "No letter has been sent yet" in report.render(figures, campaign="C", target="T")


def personal_data(records: list[RequestRecord]) -> set[str]:
    return {
        value
        for record in records
        for value in (record.request_id, record.first_name, record.email)
    } | {"Côté"}


def test_figures_json_is_plain_json_without_personal_data() -> None:
    records = campaign()
    data = stats.figures_json(records, TODAY)
    text = json.dumps(data)
    assert json.loads(text) == data
    assert not {value for value in personal_data(records) if value in text}
    assert data["compliance"]["deemed_refused"] == 4
    assert data["outcomes"]["answered_in_time"] == 1
    assert [week["week"] for week in data["sent_per_week"]] == ["2026-05-04", "2026-05-11"]


def test_text_output() -> None:
    text = stats.render_text(stats.collect(campaign(), TODAY, NOW))
    assert re.search(r"deemed refused \(no answer\)\s+4\n", text)
    assert re.search(r"verification rate\s+91\.7%\n", text)
    assert re.search(r"median days to answer\s+21\.5\n", text)
    assert "Stuck claims are never retried automatically" in text


def test_report_is_self_contained_and_anonymous() -> None:
    records = campaign()
    html = report.render(
        stats.collect(records, TODAY, NOW), campaign="Take <Back> & Co", target="Clearview AI"
    )
    assert html.startswith("<!doctype html>")
    assert "Take &lt;Back&gt; &amp; Co" in html and "<Back>" not in html
    assert not {value for value in personal_data(records) if value in html}
    # Nothing loaded from elsewhere, nothing run.
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=|url\(|@import""", html)
    assert "default-src 'none'" in html
    assert html.count("<svg") == 2


def test_weekly_chart_fills_empty_weeks_and_stacks_each_outcome() -> None:
    first = date(2026, 1, 5)
    per_week = {
        first: Counter({"answered_in_time": 2, "deemed_refused": 3}),
        first + timedelta(weeks=3): Counter({"pending": 4}),
    }
    svg = report.weekly_chart(per_week)
    assert svg.count("<rect") == 3
    assert "4 weeks from the week of January 5, 2026" in svg
    heights = [float(value) for value in re.findall(r'height="([\d.]+)"', svg)]
    # Bars are to scale: 2 + 3 in the first week, 4 in the fourth.
    assert heights[0] + heights[1] == pytest.approx(heights[2] * 5 / 4, rel=0.01)


def test_answered_chart_shares_add_up() -> None:
    outcomes = Counter({"answered_in_time": 1, "answered_late": 1, "deemed_refused": 2})
    svg = report.answered_chart(outcomes)
    widths = [float(value) for value in re.findall(r'width="([\d.]+)"', svg)]
    assert widths == pytest.approx([180, 180, 360], abs=0.2)
    assert "50%" in svg and "25%" in svg
