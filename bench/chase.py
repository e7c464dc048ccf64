#!/usr/bin/env python3
"""Chase benchmark (issue 3): what one daily chase run reads and costs, at 1x and 10x.

For each table size it starts its own moto server on a free loopback port,
provisions the local stage, fills the table with realistic request items
(BatchWriteItem from parallel threads; chalicelib's own serialisation), of
which ``--due`` are ``sent`` with ``chase_on`` spread over ``--due-days``
past days, then runs ``chalicelib.chase.run(as_of)`` once and prints:
items read and pages from the sparse ``chase_on-index`` (what DynamoDB
reads and bills; the issue's target is due + one page per due day), the run
time, emails SES accepted, and the 10x / 1x ratios.

moto's Query on a GSI walks, and first sorts, every item of the table in
Python (moto/dynamodb/models/table.py: ``Table.query`` loops over
``all_items()``, which sorts the whole table), so on moto each Query call
costs O(n log n) in the table size, although DynamoDB's does not. The honest
figure for DynamoDB is items read. The bench also times every AWS call with
botocore ``before-call``/``after-call`` hooks on the chase's own clients and
prints the run without the Query calls: wall time, and CPU time (this
process plus moto's CPU outside Query, read from /proc), which other
processes sharing the machine disturb much less than wall time. It also times the same Query
on a one-item table to estimate the run with a size-independent Query.

The chase queries one day at a time over CHASE_LOOKBACK_DAYS (the stage's
setting, else the Settings default), so one run makes lookback + 1 Query
calls however few days have requests due; on moto each is a walk of the
table. ``--lookback-days`` sets it (it must cover ``--due-days``) to keep
large tables feasible on moto.

SEND_RATE_PER_SECOND is set to 500 (the settings' maximum) so SES pacing
does not dominate; OUTBOX_DIR is emptied so no .eml files are written.
Only request items are written (no email locks or message items).

    python bench/chase.py                                  # 100,000 and 1,000,000
    python bench/chase.py --sizes 100000,1000000 --lookback-days 10
    python bench/chase.py --sizes 2000,20000 --due 200 --both   # dry run, then send
"""

from __future__ import annotations

import argparse
import base64
import functools
import itertools
import math
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402

from chalicelib import store, tokens  # noqa: E402
from chalicelib.lifecycle import Status  # noqa: E402
from chalicelib.models import RequestRecord  # noqa: E402

History = list[tuple[str, datetime]]

STAGE = "local"
BENCH_SECRET = "bench-signing-secret-not-for-production"
SEND_RATE = "500"  # Settings.send_rate_per_second allows at most 500
BATCH = 25  # BatchWriteItem's limit
CHUNK = 2_500  # items one thread builds and writes per task

FIRST_NAMES = ("Zoé", "Marc-André", "Priya", "Liam", "Amélie", "Noah", "Siobhan", "Kwame")
LAST_NAMES = ("Tremblay", "Gagnon", "O'Brien", "Nguyen", "Côté", "Singh", "MacLeod", "Roy")
PROVINCES = (None, "ON", "QC", "BC", "AB", "NS", "MB", None, "ON", "QC")
# Not due: what a campaign's table holds a few months in (one slot in 20 each).
NOT_DUE_KINDS = (
    *("answered",) * 8,
    *("sent_future",) * 4,
    *("kit_sent_future",) * 2,
    *("closed",) * 2,
    "info_requested",
    "pending_verification",
    "failed",
    "no_chase_sent",
)


# -- the table's contents -------------------------------------------------------------


@dataclass
class Plan:
    size: int
    due: int
    due_days: int
    as_of: date
    seed: int = 3

    def is_due(self, index: int) -> bool:
        # Due requests are spread evenly through the table.
        return index % (self.size // self.due) == 0 and index // (self.size // self.due) < self.due

    def due_day(self, index: int) -> date:
        ordinal = index // (self.size // self.due)
        return self.as_of - timedelta(days=1 + ordinal % self.due_days)


def _moment(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, clock_time(rng.randrange(24), rng.randrange(60)), tzinfo=UTC)


@functools.cache
def _deadline(sent_on: date, province: str | None) -> Any:
    from chalicelib import deadlines

    return deadlines.deadline_for(sent_on, province)


def _sent_on(plan: Plan, index: int, kind: str, rng: random.Random) -> date:
    if kind == "due":
        return plan.due_day(index) - timedelta(days=31)
    if kind == "sent_future":
        return plan.as_of - timedelta(days=rng.randrange(0, 25))
    if kind == "pending_verification":
        return plan.as_of
    return plan.as_of - timedelta(days=rng.randrange(20, 200))


def _letter_sent(record: RequestRecord, index: int, rng: random.Random) -> History:
    """What verify and send_letter store: the letter, its ids and deadlines."""
    verified = record.created_at + timedelta(minutes=rng.randrange(1, 60))
    sent = verified + timedelta(seconds=rng.randrange(1, 5))
    deadline = _deadline(sent.date(), record.province)
    record.status, record.verified_at, record.sent_at = Status.SENT, verified, sent
    record.message_id = f"<{rng.getrandbits(64):x}.{index}@takeback.example>"
    record.ses_message_id = f"0100{rng.getrandbits(48):012x}-{rng.getrandbits(128):032x}-000000"
    record.due_date = deadline.effective
    record.federal_due_date = deadline.federal
    record.provincial_due_date = deadline.provincial
    record.chase_on = deadline.effective + timedelta(days=1)
    record.delivered_at = sent + timedelta(seconds=rng.randrange(1, 30))
    return [("verify", verified), ("claim_send", sent), ("letter_sent", sent)]


def _answered(record: RequestRecord, at: datetime, plan: Plan, rng: random.Random) -> History:
    record.status, record.answered_at = Status.ANSWERED, at
    record.chase_on, record.purge_on = None, at.date() + timedelta(days=210)
    return [("response_received", at)]


def _kit_sent(record: RequestRecord, at: datetime, plan: Plan, rng: random.Random) -> History:
    kit_on = plan.as_of - timedelta(days=rng.randrange(0, 14))
    record.status, record.followed_up_on, record.kit_sent_on = Status.KIT_SENT, kit_on, kit_on
    record.follow_up_message_id = f"<{rng.getrandbits(64):x}.f@takeback.example>"
    record.chase_on = kit_on + timedelta(days=14)  # the reminder, after the grace period
    kit_at = _moment(kit_on, rng)
    events = ("claim_follow_up", "follow_up_sent", "claim_kit", "kit_sent")
    return [(event, kit_at) for event in events]


def _closed(record: RequestRecord, at: datetime, plan: Plan, rng: random.Random) -> History:
    record.status, record.chase_on = Status.CLOSED, None
    record.followed_up_on = record.kit_sent_on = at.date()
    record.reminder_sent_on = at.date() + timedelta(days=14)
    record.purge_on = record.reminder_sent_on + timedelta(days=210)
    return [("reminder_sent", at)]


def _info_requested(record: RequestRecord, at: datetime, plan: Plan, rng: random.Random) -> History:
    record.status, record.info_requested_at, record.chase_on = Status.INFO_REQUESTED, at, None
    return [("info_requested", at)]


def _failed(record: RequestRecord, at: datetime, plan: Plan, rng: random.Random) -> History:
    record.status, record.chase_on = Status.FAILED, None
    record.failure_reason = "MessageRejected"
    record.purge_on = at.date() + timedelta(days=210)
    return [("send_failed", at)]


def _no_chase(record: RequestRecord, at: datetime, plan: Plan, rng: random.Random) -> History:
    record.chase_on = None  # sent, but without the index key
    return []


AFTER_SENDING = {
    "answered": _answered,
    "kit_sent_future": _kit_sent,
    "closed": _closed,
    "info_requested": _info_requested,
    "failed": _failed,
    "no_chase_sent": _no_chase,
}


def request_item(plan: Plan, index: int) -> dict[str, Any]:
    """One request as the app stores it (store._to_item), due or not."""
    rng = random.Random(plan.seed * 1_000_003 + index)
    email = f"supporter{index}@example.org"
    province = PROVINCES[index % len(PROVINCES)]
    kind = "due" if plan.is_due(index) else NOT_DUE_KINDS[index % len(NOT_DUE_KINDS)]
    created = _moment(_sent_on(plan, index, kind, rng), rng)
    record = RequestRecord(
        request_id=base64.urlsafe_b64encode(rng.randbytes(12)).decode(),
        status=Status.PENDING_VERIFICATION,
        first_name=rng.choice(FIRST_NAMES),
        last_name=rng.choice(LAST_NAMES),
        email=email,
        language="fr" if province == "QC" or index % 7 == 0 else "en",
        province=province,
        created_at=created,
        consent_updates=index % 3 == 0,
    )
    if record.consent_updates:
        record.consent_given_at = created
        record.consent_wording_version = "2026-11-en-fr-1"
    history: History = []
    if kind != "pending_verification":
        history = _letter_sent(record, index, rng)
        finished = created + timedelta(days=rng.randrange(3, 20))
        if kind == "due":
            record.chase_on = plan.due_day(index)
        elif kind in AFTER_SENDING:
            history += AFTER_SENDING[kind](record, finished, plan, rng)
    record.history = [
        {"at": at.isoformat(timespec="seconds"), "event": event} for event, at in history
    ]
    item = store._to_item(record, tokens.email_fingerprint(email), int(time.time()) + 7 * 86400)
    if record.status is not Status.PENDING_VERIFICATION:
        del item["expires_at"]  # verify makes a request permanent
    item["updated_at"] = store._serialize(max([created, *(at for _, at in history)]))
    return item


def populate(plan: Plan, endpoint: str, threads: int) -> float:
    """Write the plan's requests with BatchWriteItem from ``threads`` threads."""
    from botocore.config import Config

    from tools import local_stack

    client = common.local_dynamodb(
        endpoint,
        Config(
            parameter_validation=False,
            max_pool_connections=threads,
            read_timeout=120,
            retries={"mode": "standard", "max_attempts": 10},
        ),
    )
    table = local_stack.stage_environment(STAGE)["TABLE_NAME"]
    start = time.perf_counter()
    written = [0]

    def write(first: int) -> int:
        items = [request_item(plan, index) for index in range(first, min(first + CHUNK, plan.size))]
        for offset in range(0, len(items), BATCH):
            pending = {
                table: [{"PutRequest": {"Item": item}} for item in items[offset : offset + BATCH]]
            }
            while pending:
                pending = client.batch_write_item(RequestItems=pending)["UnprocessedItems"]
        return len(items)

    with ThreadPoolExecutor(threads) as pool:
        for count in pool.map(write, range(0, plan.size, CHUNK)):
            written[0] += count
            if written[0] % 100_000 < CHUNK:
                elapsed = time.perf_counter() - start
                print(f"  .. {written[0]:,} items written in {elapsed:.0f} s", file=sys.stderr)
    return time.perf_counter() - start


# -- measuring the run ------------------------------------------------------------------


def _item_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value (approximate for numbers)."""
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return math.ceil(len(data.lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _item_bytes(element) for element in data)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode()) + _item_bytes(element) for name, element in data.items()
        )
    return len(str(data))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _item_bytes(value) for name, value in item.items())


@dataclass
class Calls:
    """Time, moto CPU time and count of every AWS call the chase made, by operation."""

    moto_pid: int
    moto_cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    query_items: int = 0
    query_bytes: int = 0
    estimated_rcu: float = 0.0
    sends_ok: int = 0

    def before(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()
        context["bench_moto_cpu"] = cpu_seconds(self.moto_pid)

    def after(self, model: Any, context: dict[str, Any], parsed: dict[str, Any], **_: Any) -> None:
        name = model.name
        self.seconds[name] += time.perf_counter() - context.get(
            "bench_started", time.perf_counter()
        )
        self.moto_cpu[name] += cpu_seconds(self.moto_pid) - context.get("bench_moto_cpu", 0.0)
        self.count[name] += 1
        status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if name == "Query":
            sizes = [item_size(item) for item in parsed.get("Items", [])]
            self.query_items += len(sizes)
            self.query_bytes += sum(sizes)
            # Eventually consistent: 0.5 RCU per 4 KB read, rounded up, per call.
            self.estimated_rcu += max(1, math.ceil(sum(sizes) / 4096)) * 0.5
        if name == "SendEmail" and status == 200:
            self.sends_ok += 1

    def attach(self, client: Any, service: str) -> None:
        client.meta.events.register(f"before-call.{service}", self.before, unique_id="bench-b")
        client.meta.events.register(f"after-call.{service}", self.after, unique_id="bench-a")

    def detach(self, client: Any, service: str) -> None:
        client.meta.events.unregister(f"before-call.{service}", unique_id="bench-b")
        client.meta.events.unregister(f"after-call.{service}", unique_id="bench-a")


@dataclass
class Setup:
    moto_pid: int
    populate_s: float
    moto_rss_mb: float
    probe_ms: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a whole process, all its threads (clock ticks)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    label: str
    size: int
    due: int
    populate_s: float
    moto_rss_mb: float
    run_s: float
    own_cpu_s: float
    moto_cpu_s: float
    moto_query_cpu_s: float
    load: tuple[float, float]
    query_s: float
    queries: int
    pacing_s: float
    items_read: int
    pages: int
    checked: int
    chased: str
    sends: int
    rcu: float
    query_kb: float
    calls: str
    probe_ms: float

    @property
    def work_s(self) -> float:
        return self.run_s - self.query_s

    @property
    def work_cpu_s(self) -> float:
        """CPU the run used outside moto's Query: this process plus moto's other calls."""
        return self.own_cpu_s + self.moto_cpu_s - self.moto_query_cpu_s

    @property
    def flat_query_s(self) -> float:
        """The run with every Query costing what it costs on a one-item table."""
        return self.work_s + self.queries * self.probe_ms / 1000


def timed_run(plan: Plan, dry_run: bool, label: str, setup: Setup) -> Result:
    from chalicelib import aws, chase

    calls = Calls(setup.moto_pid)
    slept = [0.0]

    class MeasuredPacer(chase.Pacer):
        def __init__(self, per_second: float) -> None:
            def sleep(seconds: float) -> None:
                slept[0] += seconds
                time.sleep(seconds)

            super().__init__(per_second, sleep=sleep)

    clients = ((aws.dynamodb(), "dynamodb"), (aws.sesv2(), "sesv2"))
    for client, service in clients:
        calls.attach(client, service)
    original_pacer, chase.Pacer = chase.Pacer, MeasuredPacer  # type: ignore[misc]
    try:
        load_before = os.getloadavg()[0]
        moto_cpu = cpu_seconds(setup.moto_pid)
        own_cpu = time.process_time()
        start = time.perf_counter()
        summary = chase.run(plan.as_of, dry_run=dry_run)
        elapsed = time.perf_counter() - start
        own_cpu = time.process_time() - own_cpu
        moto_cpu = cpu_seconds(setup.moto_pid) - moto_cpu
        load = (load_before, os.getloadavg()[0])
    finally:
        chase.Pacer = original_pacer  # type: ignore[misc]
        for client, service in clients:
            calls.detach(client, service)
    assert summary.read.items == calls.query_items, (summary.read.items, calls.query_items)
    return Result(
        label=label,
        size=plan.size,
        due=plan.due,
        populate_s=setup.populate_s,
        moto_rss_mb=setup.moto_rss_mb,
        run_s=elapsed,
        own_cpu_s=own_cpu,
        moto_cpu_s=moto_cpu,
        moto_query_cpu_s=calls.moto_cpu["Query"],
        load=load,
        query_s=calls.seconds["Query"],
        queries=calls.count["Query"],
        pacing_s=slept[0],
        items_read=summary.read.items,
        pages=summary.read.pages,
        checked=summary.checked,
        chased=(
            f"{len(summary.plan)} planned"
            if dry_run
            else f"{summary.followed_up} follow-ups, {summary.kits} kits, "
            f"{summary.reminders} reminders, skipped {summary.skipped}, failed {summary.failed}, "
            f"deferred {summary.deferred}"
        ),
        sends=calls.sends_ok,
        rcu=calls.estimated_rcu,
        query_kb=calls.query_bytes / 1024,
        calls=", ".join(
            f"{name} {calls.count[name]}x {calls.seconds[name]:.2f}s "
            f"({calls.seconds[name] / calls.count[name] * 1000:.1f} ms/call, "
            f"moto CPU {calls.moto_cpu[name]:.1f}s)"
            for name in sorted(calls.count, key=lambda name: -calls.seconds[name])
        ),
        probe_ms=setup.probe_ms,
    )


def warm_up(plan: Plan) -> None:
    """Pay one-off costs (imports, templates, the secret) before timing, at every size."""
    from chalicelib import compose, mail
    from chalicelib.settings import get_settings

    settings = get_settings()
    record = store._to_record(request_item(plan, 0))  # index 0 is always due
    for make in (compose.follow_up_letter, compose.complaint_kit, compose.complaint_reminder):
        mail.build(make(settings, record, plan.as_of))


def probe_query_ms(plan: Plan) -> float:
    """Median time of the chase's Query on a one-item table (same server and client).

    moto's per-call cost without its walk over the table: the closest this
    bench gets to a Query whose cost does not depend on the table's size.
    """
    from chalicelib import aws
    from tools import local_stack

    client = aws.dynamodb()
    client.create_table(**local_stack.table_definition("bench-probe"))  # type: ignore[arg-type]
    item = request_item(plan, 0)
    client.put_item(TableName="bench-probe", Item=item)
    query: dict[str, Any] = {
        "TableName": "bench-probe",
        "IndexName": store.CHASE_INDEX,
        "KeyConditionExpression": "chase_on = :day",
        "ExpressionAttributeValues": {":day": item["chase_on"]},
        "Limit": 100,
    }
    samples = []
    for _ in range(25):
        start = time.perf_counter()
        client.query(**query)
        samples.append(time.perf_counter() - start)
    client.delete_table(TableName="bench-probe")
    return statistics.median(samples) * 1000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def allow_slow_queries() -> None:
    """Give the app's DynamoDB client a read timeout moto's Query can meet.

    chalicelib.aws sets 5 s (an API Gateway request has 29 s); moto's Query
    takes longer than that from about 100,000 items, and a timed-out Query is
    retried, walking the table again. Only the timeout changes.
    """
    from botocore.config import Config

    from chalicelib import aws

    app_config = aws._config
    aws._config = lambda: app_config().merge(Config(read_timeout=3600))


def bench_size(
    plan: Plan, modes: list[bool], threads: int, log: Path, overrides: dict[str, str]
) -> Iterator[Result]:
    from chalicelib import aws
    from tools import local_stack

    port = local_stack.free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(log, "ab") as output:
        process = local_stack.start_moto(port, stdout=output, stderr=output)
    with local_stack.running([process]):
        stage_env = {
            **local_stack.stage_environment(STAGE),
            "SEND_RATE_PER_SECOND": SEND_RATE,
            "OUTBOX_DIR": "",
            **overrides,
        }
        local_stack.provision(endpoint, stage_env, secret=BENCH_SECRET)
        # What manage.py's use_stage does, pointed at this bench's moto.
        os.environ.update(stage_env)
        os.environ.update(local_stack.aws_environment(endpoint))
        aws.reset()
        print(f"populating {plan.size:,} requests ({plan.due:,} due) ...", file=sys.stderr)
        populate_s = populate(plan, endpoint, threads)
        rss = rss_mb(process.pid)
        print(f"  populated in {populate_s:.0f} s; moto RSS {rss:,.0f} MB", file=sys.stderr)
        warm_up(plan)
        setup = Setup(process.pid, populate_s, rss, probe_query_ms(plan))
        for dry_run in modes:
            label = "dry run" if dry_run else "send"
            print(f"  chase run ({label}) ...", file=sys.stderr)
            yield timed_run(plan, dry_run, label, setup)
        aws.reset()


def report(result: Result) -> None:
    print(
        f"[{result.label}] table {result.size:,} requests, due {result.due:,}\n"
        f"  populated in {result.populate_s:.0f} s (moto RSS {result.moto_rss_mb:,.0f} MB)\n"
        f"  items read {result.items_read:,} in {result.pages} pages "
        f"({result.queries} Query calls, {result.query_kb:,.0f} KB, "
        f"~{result.rcu:.1f} RCU eventually consistent, estimated)\n"
        f"  checked {result.checked:,}: {result.chased}; emails SES accepted {result.sends:,}\n"
        f"  run time {result.run_s:.2f} s = Query calls {result.query_s:.2f} s "
        f"(moto walks the whole table per call) + the rest {result.work_s:.2f} s "
        f"(of which pacing sleep {result.pacing_s:.2f} s)\n"
        f"  CPU: this process {result.own_cpu_s:.2f} s, moto {result.moto_cpu_s:.2f} s "
        f"(Query {result.moto_query_cpu_s:.2f} s); outside moto's Query "
        f"{result.work_cpu_s:.2f} s; load average {result.load[0]:.1f} -> {result.load[1]:.1f} "
        f"on {os.cpu_count()} CPUs\n"
        f"  with a size-independent Query ({result.probe_ms:.1f} ms/call, measured on a "
        f"one-item table): ~{result.flat_query_s:.2f} s\n"
        f"  AWS calls (wall): {result.calls}",
        flush=True,
    )


def compare(first: Result, second: Result) -> None:
    small, large = sorted((first, second), key=lambda result: result.size)

    def ratio(a: float, b: float) -> str:
        return f"{b / a:.2f}x" if a else "n/a"

    growth = large.size / small.size
    per_query_small = small.query_s / max(small.queries, 1)
    per_query_large = large.query_s / max(large.queries, 1)
    print(
        f"[{large.label}] {large.size:,} vs {small.size:,} requests ({growth:.0f}x the table, "
        f"same {small.due:,} due):\n"
        f"  items read     {small.items_read:,} -> {large.items_read:,} "
        f"({ratio(small.items_read, large.items_read)}); pages {small.pages} -> {large.pages}\n"
        f"  run time       {small.run_s:.2f} s -> {large.run_s:.2f} s "
        f"({ratio(small.run_s, large.run_s)}; moto's O(table) Query emulation included)\n"
        f"  without Query  {small.work_s:.2f} s -> {large.work_s:.2f} s "
        f"({ratio(small.work_s, large.work_s)}; the chase's own work)\n"
        f"  CPU w/o Query  {small.work_cpu_s:.2f} s -> {large.work_cpu_s:.2f} s "
        f"({ratio(small.work_cpu_s, large.work_cpu_s)}; this process + moto outside Query, "
        f"less disturbed by other load)\n"
        f"  flat Query     {small.flat_query_s:.2f} s -> {large.flat_query_s:.2f} s "
        f"({ratio(small.flat_query_s, large.flat_query_s)}; without Query + calls x probe)\n"
        f"  per Query call {per_query_small * 1000:.1f} ms -> {per_query_large * 1000:.1f} ms "
        f"on moto\n"
        f"  moto RSS       {small.moto_rss_mb:,.0f} MB -> {large.moto_rss_mb:,.0f} MB; "
        f"populate {small.populate_s:.0f} s -> {large.populate_s:.0f} s",
        flush=True,
    )


def main() -> int:
    from chalicelib.settings import Settings
    from tools import local_stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="table sizes, comma-separated")
    parser.add_argument("--due", type=int, default=1000, help="requests due, in every table")
    parser.add_argument("--due-days", type=int, default=10, help="past days the due ones span")
    parser.add_argument("--as-of", help="chase as if today were YYYY-MM-DD (default: today)")
    parser.add_argument("--threads", type=int, default=4, help="BatchWriteItem threads")
    parser.add_argument(
        "--lookback-days",
        type=int,
        help="set CHASE_LOOKBACK_DAYS (default: the stage's; one Query per day)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--send", dest="modes", action="store_const", const=[False], help="a real run (default)"
    )
    mode.add_argument(
        "--dry-run", dest="modes", action="store_const", const=[True], help="a dry run only"
    )
    mode.add_argument(
        "--both", dest="modes", action="store_const", const=[True, False], help="dry run, then send"
    )
    args = parser.parse_args()
    sizes = [int(size.replace("_", "")) for size in args.sizes.split(",")]
    modes: list[bool] = args.modes or [False]
    as_of = date.fromisoformat(args.as_of) if args.as_of else datetime.now(UTC).date()
    if any(size < args.due for size in sizes) or args.due < 1 or args.due_days < 1:
        parser.error("every size must hold --due requests; --due and --due-days must be >= 1")
    if args.lookback_days is not None and args.lookback_days < args.due_days:
        parser.error("--lookback-days must cover --due-days")
    os.chdir(ROOT)
    allow_slow_queries()
    overrides = {}
    if args.lookback_days is not None:
        overrides["CHASE_LOOKBACK_DAYS"] = str(args.lookback_days)
    lookback = overrides.get("CHASE_LOOKBACK_DAYS") or local_stack.stage_environment(STAGE).get(
        "CHASE_LOOKBACK_DAYS", f"{Settings.model_fields['chase_lookback_days'].default} (default)"
    )
    log = Path(tempfile.gettempdir()) / f"bench-chase-moto-{os.getpid()}.log"
    print(
        f"chase benchmark as of {as_of}: due {args.due:,} over {args.due_days} days; "
        f"SEND_RATE_PER_SECOND={SEND_RATE} (settings' max), no outbox, "
        f"CHASE_LOOKBACK_DAYS={lookback}; moto log {log}",
        flush=True,
    )
    results: dict[bool, list[Result]] = defaultdict(list)
    for size in sizes:
        plan = Plan(size=size, due=args.due, due_days=args.due_days, as_of=as_of)
        for result in bench_size(plan, modes, args.threads, log, overrides):
            report(result)
            results[result.label == "dry run"].append(result)
    for runs in results.values():
        for small, large in itertools.pairwise(runs):
            compare(small, large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
