"""Campaign figures and the compliance evidence, from request records.

Everything here is a count, a rate or a date: no name, email address or
request id ever leaves this module, so its output can go to a journalist,
a regulator or ``GET /admin/stats`` as it is.

Definitions (also in docs/exports.md):

- A letter is *sent* when ``sent_at`` is set.
- *Answered in time*: the supporter reported an answer on or before
  ``due_date`` (the extended date, if the organisation gave notice of an
  extension); *answered late*: after it. Dates are UTC days, as the chase
  counts them.
- *Refused*: the supporter reported a refusal (``refused_at``) and no answer.
- *Deemed refused* (PIPEDA s.8(5)): no answer and no refusal reported, and
  the deadline has passed or the chase has already treated it as overdue.
- *Info requested*: paused, waiting on the supporter to give the identity
  information the organisation asked for.
- *Pending*: sent, deadline not yet passed.
- A request forgotten at the supporter's wish is judged on what was known
  the day it was forgotten: nobody reports an answer after that.

One pass over the records, with memory that does not grow with their number
(counters keyed by day, week, status; the median comes from a histogram).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib.models import RequestRecord

OUTCOMES = (
    "answered_in_time",
    "answered_late",
    "refused",
    "deemed_refused",
    "info_requested",
    "pending",
    "failed",
    "not_sent",
)
CHASE_STAGES = ("none", "follow_up", "complaint_kit", "reminder", "closed")

# Statuses the chase reaches only once the deadline has passed unanswered
# (or after a refusal, which outcome() counts as a refusal first): whatever
# the dates say, these requests are past their deadline.
_DEEMED_STATUSES = frozenset(
    {"overdue", "kit_sent", "closed", "following_up", "sending_kit", "reminding"}
)
# A claim is held for the seconds an email takes to go out; one still held
# after this long was left by a crash and needs an organiser (see chase.py).
CLAIMED_STATUSES = frozenset({"sending", "following_up", "sending_kit", "reminding"})
STUCK_AFTER = timedelta(hours=1)
_UNKNOWN = "unknown"


def outcome(
    status: str,
    *,
    sent: bool,
    answered_on: str | None,
    due: str | None,
    refused: bool,
    as_of: str,
) -> str:
    """The outcome of one request, from plain facts.

    Dates are ISO ``YYYY-MM-DD`` strings: exports carry them that way, and
    comparing such strings is exact and much cheaper than parsing them on
    the export's million-row path. The CSV and the statistics both call
    this, so a request never has two outcomes.
    """
    if not sent:
        return "failed" if status == "failed" else "not_sent"
    if answered_on is not None:
        return "answered_in_time" if due is None or answered_on <= due else "answered_late"
    if status == "answered":
        # Cannot happen through the store (the answer and its time are one
        # write); if it does, do not count it against the organisation.
        return "answered_in_time"
    if refused:
        return "refused"
    if status == "info_requested":
        return "info_requested"
    if status in _DEEMED_STATUSES or (due is not None and due < as_of):
        return "deemed_refused"
    return "pending"


def chase_stage(status: str, *, followed_up: bool, kit_sent: bool, reminder_sent: bool) -> str:
    """How far the chase went: the furthest step it took."""
    if status == "closed":
        return "closed"
    if reminder_sent:
        return "reminder"
    if kit_sent:
        return "complaint_kit"
    if followed_up:
        return "follow_up"
    return "none"


def _utc_day(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).date().isoformat() if moment is not None else None


def record_outcome(record: RequestRecord, today: date) -> str:
    as_of = today.isoformat()
    forgotten_on = _utc_day(record.forgotten_at)
    if forgotten_on is not None:
        as_of = min(as_of, forgotten_on)
    return outcome(
        str(record.status),
        sent=record.sent_at is not None,
        answered_on=_utc_day(record.answered_at),
        due=record.due_date.isoformat() if record.due_date else None,
        refused=record.refused_at is not None,
        as_of=as_of,
    )


def record_chase_stage(record: RequestRecord) -> str:
    return chase_stage(
        str(record.status),
        followed_up=record.followed_up_on is not None,
        kit_sent=record.kit_sent_on is not None,
        reminder_sent=record.reminder_sent_on is not None,
    )


def week_of(day: date) -> date:
    """The Monday that starts ``day``'s week."""
    return day - timedelta(days=day.weekday())


@dataclass
class Figures:
    """Everything the stats command, the report and the API show."""

    as_of: date
    requests: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_language: Counter[str] = field(default_factory=Counter)
    by_province: Counter[str] = field(default_factory=Counter)
    submissions_per_day: Counter[date] = field(default_factory=Counter)
    verified: int = 0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    extended: int = 0
    info_requested: int = 0
    answer_days: Counter[int] = field(default_factory=Counter)
    # Week (Monday) the letter went out -> outcome -> count.
    sent_per_week: dict[date, Counter[str]] = field(default_factory=dict)
    failed_letters: int = 0
    letters_bounced: int = 0
    claimed: int = 0
    stuck_claims: int = 0

    @property
    def verification_rate(self) -> float | None:
        return self.verified / self.requests if self.requests else None

    @property
    def decided(self) -> int:
        """Sent letters whose fate is known: answered, refused, or deadline passed."""
        return self.sent - self.outcomes["pending"]

    @property
    def answered(self) -> int:
        return self.outcomes["answered_in_time"] + self.outcomes["answered_late"]

    @property
    def median_days_to_answer(self) -> float | None:
        total = sum(self.answer_days.values())
        if not total:
            return None
        middle = total // 2
        if total % 2:
            return float(_nth(self.answer_days, middle))
        return (_nth(self.answer_days, middle - 1) + _nth(self.answer_days, middle)) / 2


def _nth(histogram: Counter[int], position: int) -> int:
    """The value at ``position`` (0-based) of the histogram's sorted values."""
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > position:
            return value
    raise IndexError(position)


def _claimed_since(record: RequestRecord) -> datetime | None:
    """When the request entered its current status (its last history entry)."""
    if not record.history:
        return None
    try:
        return datetime.fromisoformat(record.history[-1]["at"])
    except (KeyError, ValueError):
        return None


def collect(
    records: Iterable[RequestRecord], today: date | None = None, now: datetime | None = None
) -> Figures:
    """Count every figure in one pass over ``records``."""
    now = now or datetime.now(UTC)
    today = today or now.astimezone(UTC).date()
    figures = Figures(as_of=today)
    for record in records:
        status = str(record.status)
        figures.requests += 1
        figures.by_status[status] += 1
        figures.by_language[record.language or _UNKNOWN] += 1
        figures.by_province[record.province or _UNKNOWN] += 1
        figures.submissions_per_day[record.created_at.astimezone(UTC).date()] += 1
        if record.verified_at is not None:
            figures.verified += 1
        result = record_outcome(record, today)
        figures.outcomes[result] += 1
        if status == "failed":
            figures.failed_letters += 1
        if record.letter_bounced_at is not None:
            figures.letters_bounced += 1
        if status in CLAIMED_STATUSES:
            figures.claimed += 1
            since = _claimed_since(record)
            if since is None or now - since > STUCK_AFTER:
                figures.stuck_claims += 1
        if record.sent_at is None:
            continue
        figures.sent += 1
        week = week_of(record.sent_at.astimezone(UTC).date())
        figures.sent_per_week.setdefault(week, Counter())[result] += 1
        if record.extended_at is not None:
            figures.extended += 1
        if record.info_requested_at is not None:
            figures.info_requested += 1
        if record.answered_at is not None:
            days = (
                record.answered_at.astimezone(UTC).date() - record.sent_at.astimezone(UTC).date()
            ).days
            figures.answer_days[max(days, 0)] += 1
    return figures


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def to_json(figures: Figures) -> dict[str, Any]:
    """The figures as plain JSON types, keys sorted where order is free."""
    compliance = {
        "sent": figures.sent,
        "answered_in_time": figures.outcomes["answered_in_time"],
        "answered_late": figures.outcomes["answered_late"],
        "extended": figures.extended,
        "info_requested": figures.info_requested,
        "refused": figures.outcomes["refused"],
        "deemed_refused": figures.outcomes["deemed_refused"],
        "waiting_on_info": figures.outcomes["info_requested"],
        "pending": figures.outcomes["pending"],
        "decided": figures.decided,
        "answered_in_time_share": _share(figures.outcomes["answered_in_time"], figures.decided),
        "deemed_refused_share": _share(figures.outcomes["deemed_refused"], figures.decided),
        "median_days_to_answer": figures.median_days_to_answer,
    }
    return {
        "as_of": figures.as_of.isoformat(),
        "requests": figures.requests,
        "by_status": dict(sorted(figures.by_status.items())),
        "by_language": dict(sorted(figures.by_language.items())),
        "by_province": dict(sorted(figures.by_province.items())),
        "submissions_per_day": {
            day.isoformat(): count for day, count in sorted(figures.submissions_per_day.items())
        },
        "verification": {
            "submitted": figures.requests,
            "verified": figures.verified,
            "rate": _share(figures.verified, figures.requests),
        },
        "compliance": compliance,
        "outcomes": {name: figures.outcomes[name] for name in OUTCOMES},
        "sent_per_week": [
            {"week": week.isoformat(), **{name: outcomes[name] for name in OUTCOMES}}
            for week, outcomes in sorted(figures.sent_per_week.items())
        ],
        "operations": {
            "failed_letters": figures.failed_letters,
            "letters_bounced": figures.letters_bounced,
            "claimed": figures.claimed,
            "stuck_claims": figures.stuck_claims,
        },
    }


def figures_json(records: Iterable[RequestRecord], today: date | None = None) -> dict[str, Any]:
    """What ``GET /admin/stats`` returns: :func:`collect` as JSON types."""
    return to_json(collect(records, today))


def _table(title: str, rows: Iterable[tuple[str, object]]) -> list[str]:
    lines = [title]
    lines.extend(
        f"  {name:<32} {value:>9,}" if isinstance(value, int) else f"  {name:<32} {value:>9}"
        for name, value in rows
    )
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def render_text(figures: Figures) -> str:
    """The stats command's output: short, aligned, no personal data."""
    data = to_json(figures)
    compliance = data["compliance"]
    median = compliance["median_days_to_answer"]
    lines = [f"takeback statistics as of {data['as_of']} (UTC)", ""]
    lines += _table(
        "Compliance",
        [
            ("letters sent", figures.sent),
            ("answered within the deadline", compliance["answered_in_time"]),
            ("answered late", compliance["answered_late"]),
            ("refused", compliance["refused"]),
            ("deemed refused (no answer)", compliance["deemed_refused"]),
            ("waiting on info from supporter", compliance["waiting_on_info"]),
            ("deadline not yet passed", compliance["pending"]),
            ("deadline extended", compliance["extended"]),
            ("info requested (ever)", compliance["info_requested"]),
            ("median days to answer", "n/a" if median is None else f"{median:g}"),
        ],
    )
    lines.append("")
    lines += _table(
        "Requests",
        [
            ("submitted", figures.requests),
            ("verified", figures.verified),
            ("verification rate", _percent(figures.verification_rate)),
        ],
    )
    for title, counter in (
        ("By status", figures.by_status),
        ("By language", figures.by_language),
        ("By province", figures.by_province),
    ):
        lines.append("")
        lines += _table(title, sorted(counter.items()))
    lines.append("")
    lines += _table(
        "Submissions per day",
        [(day.isoformat(), count) for day, count in sorted(figures.submissions_per_day.items())],
    )
    lines.append("")
    lines += _table(
        "For organisers",
        [
            ("letters failed", figures.failed_letters),
            ("letters bounced", figures.letters_bounced),
            ("in a claimed status", figures.claimed),
            (f"claimed for over {STUCK_AFTER.total_seconds() / 3600:g} h", figures.stuck_claims),
        ],
    )
    if figures.stuck_claims:
        lines.append(
            "  Stuck claims are never retried automatically (the email may have gone out):"
        )
        lines.append("  export the table and look at the status column (see docs/exports.md).")
    return "\n".join(lines) + "\n"
