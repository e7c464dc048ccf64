"""The daily chase of requests the organisation left unanswered.

For each open request whose ``chase_on`` day has come (read day by day from
the sparse ``chase_on`` index, never a Scan), the next stage runs:

1. follow-up: a letter to the organisation, threaded to the original, citing
   the deemed refusal; then at once
2. complaint kit: an email to the supporter with what they need to complain
   (a ``refused`` report starts here);
3. reminder: after ``chase_grace_days`` with still no answer reported, one
   last reminder to the supporter; then the request is closed.

Each stage is claimed with a conditional write before its email goes out, so
reruns and overlapping runs never send a stage twice. The one window left:
if the process dies after SES accepted an email but before the write that
records it, the request stays claimed (following_up, sending_kit or
reminding) and is never sent that stage again automatically; organisers
find such requests in the stats. A throttled send gives the claim back and
ends the run, so the request is due again on the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from chalicelib import compose, mail, outbound, store
from chalicelib.journey import now, running_out
from chalicelib.lifecycle import Event, InvalidTransition, Status
from chalicelib.log import logger
from chalicelib.models import RequestRecord
from chalicelib.outbound import Pacer
from chalicelib.settings import Settings, get_settings


class Throttled(Exception):
    """SES asked us to slow down: stop this run, the rest waits for the next."""


@dataclass
class Summary:
    as_of: date
    checked: int = 0
    followed_up: int = 0
    kits: int = 0
    reminders: int = 0
    skipped: int = 0
    failed: int = 0
    deferred: int = 0
    stopped_early: bool = False
    dry_run: bool = False
    plan: list[str] = field(default_factory=list)
    read: store.ReadCount = field(default_factory=store.ReadCount)

    def lines(self) -> list[str]:
        head = f"chase as of {self.as_of.isoformat()}" + (" (dry run)" if self.dry_run else "")
        return [
            head,
            *self.plan,
            f"checked {self.checked}, follow-ups {self.followed_up}, complaint kits {self.kits}, "
            f"reminders {self.reminders}, skipped {self.skipped}, failed {self.failed}, "
            f"deferred {self.deferred}" + (", stopped early (time)" if self.stopped_early else ""),
            f"index reads: {self.read.items} items in {self.read.pages} pages",
        ]


def next_stage(record: RequestRecord, as_of: date) -> str | None:
    """What the chase does for this request today, if anything."""
    if record.chase_on is None or record.chase_on > as_of:
        return None
    return {
        Status.SENT: "follow_up",
        Status.OVERDUE: "kit",
        Status.REFUSED: "kit",
        Status.KIT_SENT: "reminder",
    }.get(record.status)


def run(
    as_of: date,
    *,
    dry_run: bool = False,
    time_left: Callable[[], float] | None = None,
) -> Summary:
    """Chase every request due on or before ``as_of``.

    ``time_left`` returns the seconds left before the Lambda timeout; the run
    stops with ``chase_margin_seconds`` to spare (at most a quarter of the
    time it started with) and the next run resumes.
    """
    settings = get_settings()
    out_of_time = running_out(time_left, settings.chase_margin_seconds)
    summary = Summary(as_of=as_of, dry_run=dry_run)
    pacer = Pacer(settings.send_rate_per_second)
    first = as_of - timedelta(days=settings.chase_lookback_days)
    for offset in range((as_of - first).days + 1):
        for record in store.due_for_chase(first + timedelta(days=offset), summary.read):
            if out_of_time():
                summary.stopped_early = True
                return summary
            summary.checked += 1
            stage = next_stage(record, as_of)
            if stage is None:
                summary.skipped += 1
            elif dry_run:
                summary.plan.append(_explain(record, stage))
            else:
                try:
                    _advance(settings, record, as_of, pacer, summary)
                except Throttled:
                    summary.deferred += 1
                    logger().warning("chase throttled by SES; the rest waits for the next run")
                    return summary
    return summary


def _explain(record: RequestRecord, stage: str) -> str:
    return (
        f"  {record.request_id}: {stage} (status {record.status.value}, "
        f"due {record.due_date}, chase on {record.chase_on})"
    )


def _advance(
    settings: Settings, record: RequestRecord, as_of: date, pacer: Pacer, summary: Summary
) -> None:
    stage = next_stage(record, as_of)
    if stage == "follow_up":
        followed_up = run_stage(FOLLOW_UP, settings, record, as_of, pacer, summary)
        if followed_up is None:
            return
        record, stage = followed_up, "kit"  # the kit goes out in the same run
    if stage in STAGES:
        run_stage(STAGES[stage], settings, record, as_of, pacer, summary)


def _send(
    request_id: str,
    claim: Event,
    outgoing: mail.Outgoing,
    pacer: Pacer,
    deferred: Event,
    restore: dict[str, object],
) -> mail.Sent | None:
    """Send a claimed stage's email.

    The claim is given back (the request is due again next run) when the
    email surely did not leave: SES throttled or unreachable, or this process
    failed before sending. When the outcome is unknown, the claim stays.
    """
    try:
        return outbound.send(outgoing, request_id, claim.value.removeprefix("claim_"), pacer)
    except mail.MailError as error:
        logger().warning(
            "chase email not sent",
            extra={"request_id": request_id, "stage": claim.value, "error": error.code},
        )
        if error.transient:
            store.apply(request_id, deferred, now(), restore)
            raise Throttled from None
        if error.maybe_sent:
            raise
        return None
    except Exception:
        store.apply(request_id, deferred, now(), restore)
        raise


def _claim(request_id: str, event: Event, summary: Summary) -> RequestRecord | None:
    try:
        return store.apply(request_id, event, now())
    except InvalidTransition:
        # Another run, or a report from the supporter, got there first.
        summary.skipped += 1
        return None


@dataclass(frozen=True)
class Stage:
    """One step of the chase: its claim, its email, and what it records."""

    claim: Event
    done: Event
    counter: str
    message: Callable[[Settings, RequestRecord, date], mail.Outgoing]
    deferred: Callable[[RequestRecord], Event]
    recorded: Callable[[Settings, date, mail.Sent | None], dict[str, object]]


FOLLOW_UP = Stage(
    claim=Event.CLAIM_FOLLOW_UP,
    done=Event.FOLLOW_UP_SENT,
    counter="followed_up",
    message=compose.follow_up_letter,
    deferred=lambda _: Event.FOLLOW_UP_DEFERRED,
    # Whether or not the organisation's address took the letter, the kit
    # follows at once; a rejection is kept for organisers to see.
    recorded=lambda _, as_of, sent: {
        "followed_up_on": as_of if sent else None,
        "follow_up_message_id": sent.message_id if sent else None,
        "failure_reason": None if sent else "follow-up rejected by SES",
        "chase_on": as_of,
    },
)
STAGES = {
    "kit": Stage(
        claim=Event.CLAIM_KIT,
        done=Event.KIT_SENT,
        counter="kits",
        message=compose.complaint_kit,
        deferred=lambda r: Event.REFUSAL_KIT_DEFERRED if r.refused_at else Event.KIT_DEFERRED,
        recorded=lambda settings, as_of, sent: {
            "kit_sent_on": as_of if sent else None,
            "chase_on": as_of + timedelta(days=settings.chase_grace_days),
        },
    ),
    "reminder": Stage(
        claim=Event.CLAIM_REMINDER,
        done=Event.REMINDER_SENT,
        counter="reminders",
        message=compose.complaint_reminder,
        deferred=lambda _: Event.REMINDER_DEFERRED,
        recorded=lambda _, as_of, sent: {"reminder_sent_on": as_of if sent else None},
    ),
}


def run_stage(
    stage: Stage,
    settings: Settings,
    record: RequestRecord,
    as_of: date,
    pacer: Pacer,
    summary: Summary,
) -> RequestRecord | None:
    """Claim, send and record one stage; None if another run had claimed it."""
    claimed = _claim(record.request_id, stage.claim, summary)
    if claimed is None:
        return None
    sent = _send(
        record.request_id,
        stage.claim,
        stage.message(settings, claimed, as_of),
        pacer,
        stage.deferred(claimed),
        {"chase_on": record.chase_on},
    )
    if sent is None:
        summary.failed += 1
    else:
        setattr(summary, stage.counter, getattr(summary, stage.counter) + 1)
    return store.apply(record.request_id, stage.done, now(), stage.recorded(settings, as_of, sent))
