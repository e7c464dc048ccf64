"""DynamoDB: the only module that knows the table's layout.

One table, partition key ``pk``, readable attribute names (organisers read
exports of it; see README "Table format"):

- ``request#<id>``: one supporter's request (``record_type = request``).
- ``email#<keyed hash>``: the duplicate lock for one email address
  (``record_type = email_lock``), pointing at the active request. The key is
  a keyed hash so the address itself is never part of a key.

``expires_at`` (epoch seconds) is the TTL attribute. TTL deletion lags by up
to days, so every read treats an item past ``expires_at`` as absent.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib import aws
from chalicelib.lifecycle import (
    CHASED,
    PURGEABLE,
    QUEUED_MAIL,
    Event,
    InvalidTransition,
    Status,
    transition,
)
from chalicelib.models import RequestRecord
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

Item = dict[str, "AttributeValueTypeDef"]

_DATETIME_FIELDS = (
    "created_at",
    "consent_given_at",
    "verified_at",
    "sent_at",
    "answered_at",
    "extended_at",
    "info_requested_at",
    "refused_at",
    "forgotten_at",
    "retry_at",
    "delivered_at",
    "letter_bounced_at",
    "supporter_bounced_at",
    "complaint_at",
    "verification_resent_at",
    "consent_withdrawn_at",
)
_DATE_FIELDS = (
    "due_date",
    "federal_due_date",
    "provincial_due_date",
    "original_due_date",
    "chase_on",
    "followed_up_on",
    "kit_sent_on",
    "reminder_sent_on",
    "purge_on",
    "delivered_on",
)
CHASE_INDEX = "chase_on-index"
RETRY_INDEX = "mail_queue-index"
PURGE_INDEX = "purge_on-index"
# What forgetting removes: everything that identifies the supporter.
PERSONAL_ATTRIBUTES = (
    "first_name",
    "last_name",
    "email",
    "email_key",
    "message_id",
    "ses_message_id",
    "follow_up_message_id",
)
_CONFLICT_RETRIES = 6


class StoreBusy(Exception):
    """The duplicate lock stayed contended: the client should retry (503)."""


class DuplicateRequest(Exception):
    """An active request already exists for this email address."""

    def __init__(self, existing: RequestRecord) -> None:
        super().__init__(existing.request_id)
        self.existing = existing


def request_key(request_id: str) -> Item:
    return {"pk": {"S": f"request#{request_id}"}}


def _lock_key(email_key: str) -> Item:
    return {"pk": {"S": f"email#{email_key}"}}


def _serialize(value: Any) -> AttributeValueTypeDef:
    from boto3.dynamodb.types import TypeSerializer

    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat(timespec="seconds")
    elif isinstance(value, date):
        value = value.isoformat()
    result: AttributeValueTypeDef = TypeSerializer().serialize(value)
    return result


def _deserialize(item: Item) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


def _to_item(record: RequestRecord, email_key: str, expires_at: int) -> Item:
    attributes = {
        name: value for name, value in vars(record).items() if value is not None and value != []
    }
    item = {name: _serialize(value) for name, value in attributes.items()}
    item.update(request_key(record.request_id))
    item["record_type"] = {"S": "request"}
    item["email_key"] = {"S": email_key}
    item["expires_at"] = {"N": str(expires_at)}
    return item


def _to_record(item: Item) -> RequestRecord:
    data = _deserialize(item)
    fields = RequestRecord.__dataclass_fields__
    values = {name: data[name] for name in fields if name in data}
    for name in _DATETIME_FIELDS:
        if name in values:
            values[name] = datetime.fromisoformat(values[name])
    for name in _DATE_FIELDS:
        if name in values:
            values[name] = date.fromisoformat(values[name])
    values["status"] = Status(values["status"])
    for counted in ("send_attempts", "verification_resends"):
        if counted in values:
            values[counted] = int(values[counted])
    for name in ("first_name", "last_name", "email"):
        values.setdefault(name, "")  # removed when the supporter was forgotten
    return RequestRecord(**values)


def record_from_item(item: Item) -> RequestRecord:
    """A request item (as DynamoDB or an export gives it) as a record."""
    return _to_record(item)


def _expired(item: Item, now: float) -> bool:
    expires = item.get("expires_at", {}).get("N")
    return expires is not None and int(expires) <= now


def _table() -> str:
    return get_settings().table_name


@dataclass(frozen=True)
class Allowance:
    """At most ``limit`` hits for ``key`` in each fixed window of ``window_seconds``."""

    key: str
    limit: int
    window_seconds: int

    def window(self, now: float) -> tuple[int, int]:
        start = int(now // self.window_seconds * self.window_seconds)
        return start, start + self.window_seconds


class OverLimit(Exception):
    def __init__(self, allowance: Allowance, retry_after: int) -> None:
        super().__init__(allowance.key)
        self.allowance = allowance
        self.retry_after = retry_after


def create_request(
    record: RequestRecord,
    email_key: str,
    expires_at: int,
    allowances: tuple[Allowance, ...] = (),
) -> bool:
    """Store a new request and its duplicate lock, both or neither.

    One transaction also counts the submission against ``allowances``
    (OverLimit when one is used up) and checks the address is not
    suppressed, so the common case is a single write. Returns whether the
    address is suppressed (the request is stored anyway: mail nothing). Raises
    DuplicateRequest when another active request holds the lock; that
    submission is not counted here (see ``count_hits``). Of twenty
    simultaneous identical submissions exactly one creates a request.
    """
    from botocore.exceptions import ClientError

    now = time.time()
    lock = {
        **_lock_key(email_key),
        "record_type": {"S": "email_lock"},
        "request_id": {"S": record.request_id},
        "expires_at": {"N": str(expires_at)},
    }
    writes: list[Any] = [
        {
            "Put": {
                "TableName": _table(),
                "Item": _to_item(record, email_key, expires_at),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {
            "Put": {
                "TableName": _table(),
                "Item": lock,
                "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
            }
        },
        *(_counted(allowance, now, conditional=True) for allowance in allowances),
    ]
    suppression_check = {
        "ConditionCheck": {
            "TableName": _table(),
            "Key": _suppression_key(email_key),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    suppressed = False
    for attempt in range(_CONFLICT_RETRIES):
        try:
            checks: list[Any] = [] if suppressed else [suppression_check]
            aws.dynamodb().transact_write_items(TransactItems=[*writes, *checks])
            return suppressed
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            failed = [
                reason.get("Code") == "ConditionalCheckFailed"
                for reason in exc.response.get("CancellationReasons", [])
            ]
        for index, allowance in enumerate(allowances, start=2):
            if index < len(failed) and failed[index]:
                raise OverLimit(allowance, _retry_after(allowance, now)) from None
        if len(failed) > 1 and failed[1]:
            existing = request_for_email(email_key)
            if existing is not None:
                raise DuplicateRequest(existing) from None
        elif len(failed) == len(writes) + 1 and failed[-1]:
            suppressed = True  # store it anyway (it is the supporter's), mail nothing
            continue
        # A concurrent transaction on the same lock or counter: let it settle.
        _back_off(attempt)
    raise StoreBusy("could not store the request: the email lock stayed contended")


def _live_item(key: Item) -> Item | None:
    """The item at ``key``, unless absent or past its TTL (deletion lags)."""
    item = aws.dynamodb().get_item(TableName=_table(), Key=key, ConsistentRead=True).get("Item")
    if item is None or _expired(item, time.time()):
        return None
    return item


def request_for_email(email_key: str) -> RequestRecord | None:
    """The open request of an address (by its fingerprint), from its lock."""
    lock = _live_item(_lock_key(email_key))
    return None if lock is None else get_request(lock["request_id"]["S"])


def get_request(request_id: str) -> RequestRecord | None:
    item = _live_item(request_key(request_id))
    return None if item is None else _to_record(item)


class _Expression:
    """An update expression's SET/REMOVE clauses and their placeholders."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValueTypeDef] = {}

    def assign(self, changes: dict[str, Any]) -> None:
        """SET each attribute to its value; REMOVE those given as None."""
        for name, value in changes.items():
            index = len(self.names)
            self.names[f"#a{index}"] = name
            if value is None:
                self.removes.append(f"#a{index}")
            else:
                self.sets.append(f"#a{index} = :a{index}")
                self.values[f":a{index}"] = _serialize(value)

    def status_in(self, statuses: frozenset[Status]) -> str:
        """A condition: the request's status is one of ``statuses``."""
        self.names["#status"] = "status"
        placeholders = []
        for index, status in enumerate(sorted(statuses)):
            self.values[f":s{index}"] = {"S": status.value}
            placeholders.append(f":s{index}")
        return f"#status IN ({', '.join(placeholders)})"

    def update(self) -> str:
        clauses = []
        if self.sets:
            clauses.append("SET " + ", ".join(self.sets))
        if self.removes:
            clauses.append("REMOVE " + ", ".join(self.removes))
        return " ".join(clauses)


def _update(
    request_id: str, event: Event, now: datetime, changes: dict[str, Any] | None
) -> dict[str, Any]:
    """The conditional update that moves one request along the lifecycle."""
    move = transition(event)
    entry = {"at": now.astimezone(UTC).isoformat(timespec="seconds"), "event": event.value}
    changes = dict(changes or {})
    if move.target not in CHASED:
        # Only open requests carry the sparse chase index key.
        changes.setdefault("chase_on", None)
    if move.target not in QUEUED_MAIL:
        changes.setdefault("mail_queue", None)
        changes.setdefault("retry_at", None)
    if move.target in PURGEABLE:
        retention = timedelta(days=get_settings().retention_days)
        changes.setdefault("purge_on", (now + retention).date())
    else:
        changes.setdefault("purge_on", None)
    expression = _Expression()
    expression.sets = [
        "#status = :target",
        "updated_at = :now",
        "history = list_append(if_not_exists(history, :none), :entry)",
    ]
    expression.values = {
        ":target": {"S": move.target.value},
        ":now": _serialize(now),
        ":none": {"L": []},
        ":entry": {"L": [_serialize(entry)]},
        ":epoch": {"N": str(int(now.timestamp()))},
    }
    expression.assign(changes)
    in_sources = expression.status_in(move.sources)
    return {
        "TableName": _table(),
        "Key": request_key(request_id),
        "UpdateExpression": expression.update(),
        "ConditionExpression": (
            "attribute_exists(pk)"
            " AND (attribute_not_exists(expires_at) OR expires_at > :epoch)"
            f" AND {in_sources}"
        ),
        "ExpressionAttributeNames": expression.names,
        "ExpressionAttributeValues": expression.values,
    }


def apply(
    request_id: str, event: Event, now: datetime, changes: dict[str, Any] | None = None
) -> RequestRecord:
    """Move a request along the lifecycle, or raise InvalidTransition.

    ``changes`` sets attributes in the same write (None removes one), so a
    status never changes without the facts that go with it.
    """
    from botocore.exceptions import ClientError

    try:
        response = aws.dynamodb().update_item(
            **_update(request_id, event, now, changes), ReturnValues="ALL_NEW"
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise InvalidTransition(request_id, event) from None
        raise
    return _to_record(response["Attributes"])


def verify(request_id: str, email_key: str, now: datetime, changes: dict[str, Any]) -> None:
    """Apply VERIFY and make the request and its duplicate lock permanent.

    One transaction: a verified request must never lose its lock to the
    unverified-request TTL, or a second letter could go out for the address.
    """
    from botocore.exceptions import ClientError

    try:
        aws.dynamodb().transact_write_items(
            TransactItems=[
                {"Update": _update(request_id, Event.VERIFY, now, {**changes, "expires_at": None})},  # type: ignore[typeddict-item]
                {
                    "Update": {
                        "TableName": _table(),
                        "Key": _lock_key(email_key),
                        "UpdateExpression": "REMOVE expires_at",
                        "ConditionExpression": "request_id = :id",
                        "ExpressionAttributeValues": {":id": {"S": request_id}},
                    }
                },
            ]
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if "TransactionConflict" in reasons:
            # Another write held the request or the lock: nothing was decided.
            raise StoreBusy("the request was being written; retry") from None
        raise InvalidTransition(request_id, Event.VERIFY) from None


@dataclass
class ReadCount:
    """Items DynamoDB read for a query run (what the chase benchmark reports)."""

    items: int = 0
    pages: int = 0


def due_for_chase(day: date, counter: ReadCount | None = None) -> Iterator[RequestRecord]:
    """Open requests whose chase falls on ``day``, from the sparse index.

    Only open requests carry ``chase_on``, so the cost follows the number of
    requests due, not the size of the table.
    """
    return _query_days(CHASE_INDEX, "chase_on", day, counter)


def _query_days(
    index: str, attribute: str, day: date, counter: ReadCount | None
) -> Iterator[RequestRecord]:
    query: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": index,
        "KeyConditionExpression": f"{attribute} = :day",
        "ExpressionAttributeValues": {":day": {"S": day.isoformat()}},
        "Limit": 100,
    }
    yield from _paginate(query, counter)


def _paginate(query: dict[str, Any], counter: ReadCount | None) -> Iterator[RequestRecord]:
    while True:
        page = aws.dynamodb().query(**query)
        if counter is not None:
            counter.items += page.get("ScannedCount", 0)
            counter.pages += 1
        for item in page.get("Items", []):
            yield _to_record(item)
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def due_for_purge(day: date, counter: ReadCount | None = None) -> Iterator[RequestRecord]:
    """Finished requests whose retention period ends on ``day``."""
    return _query_days(PURGE_INDEX, "purge_on", day, counter)


def due_for_retry(moment: datetime, counter: ReadCount | None = None) -> Iterator[RequestRecord]:
    """Requests with mail waiting, whose next attempt is due by ``moment``."""
    query: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": RETRY_INDEX,
        "KeyConditionExpression": "mail_queue = :queue AND retry_at <= :moment",
        "ExpressionAttributeValues": {
            ":queue": {"S": "pending"},
            ":moment": _serialize(moment),
        },
        "Limit": 100,
    }
    return _paginate(query, counter)


def note(
    request_id: str, changes: dict[str, Any], only_if: frozenset[Status] | None = None
) -> bool:
    """Record facts that do not change the status (delivery, bounces, queue).

    Returns False when the request is gone or not in one of ``only_if``.
    """

    expression = _Expression()
    expression.assign(changes)
    condition = "attribute_exists(pk)"
    if only_if:
        condition += " AND " + expression.status_in(only_if)
    return _update_if(request_id, expression, condition)


def _update_if(request_id: str, expression: _Expression, condition: str) -> bool:
    """Apply ``expression`` to the request if ``condition`` holds; whether it did."""
    from botocore.exceptions import ClientError

    request: dict[str, Any] = {
        "TableName": _table(),
        "Key": request_key(request_id),
        "UpdateExpression": expression.update(),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": expression.names,
    }
    if expression.values:
        request["ExpressionAttributeValues"] = expression.values
    try:
        aws.dynamodb().update_item(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def claim_resend(request_id: str, now: datetime, not_since: datetime, most: int) -> bool:
    """Whether to send the verification again: unverified only, once per
    window, ``most`` times in all (anyone can submit someone's address).

    Conditional, so a double click sends one email, not two.
    """

    expression = _Expression()
    expression.assign({"verification_resent_at": now})
    expression.sets.append(
        "verification_resends = if_not_exists(verification_resends, :zero) + :one"
    )
    expression.values.update({":zero": {"N": "0"}, ":one": {"N": "1"}, ":most": {"N": str(most)}})
    expression.values[":cutoff"] = _serialize(not_since)
    in_status = expression.status_in(frozenset({Status.PENDING_VERIFICATION}))
    return _update_if(
        request_id,
        expression,
        f"{in_status} AND created_at < :cutoff AND attribute_not_exists(mail_queue)"
        " AND (attribute_not_exists(verification_resent_at)"
        " OR verification_resent_at < :cutoff)"
        " AND (attribute_not_exists(verification_resends) OR verification_resends < :most)",
    )


def move_retry(request_id: str, seen: datetime, to: datetime) -> bool:
    """Claim an unverified request's queued email: move its next attempt
    from ``seen`` (as the caller read it) to ``to``.

    Only one caller moves it from ``seen``; the others (a replayed stream
    record, the retry job's own send having cleared the queue) get False.
    """

    expression = _Expression()
    expression.assign({"retry_at": to})
    expression.values.update({":seen": _serialize(seen), ":pending": {"S": "pending"}})
    in_status = expression.status_in(frozenset({Status.PENDING_VERIFICATION}))
    condition = f"{in_status} AND mail_queue = :pending AND retry_at = :seen"
    return _update_if(request_id, expression, condition)


@dataclass(frozen=True)
class Change:
    """A write to a request, as the table's stream reports it.

    The stream carries new images only: an old image would keep a forgotten
    supporter's name and address in the stream for its 24 hours.
    """

    inserted: bool  # the request was just stored (else: updated)
    record: RequestRecord


@dataclass(frozen=True)
class StreamTrigger:
    """A kind of write the stream consumer acts on: a request written with
    ``status`` (and ``send_attempts``, when given) by an insert or an update."""

    inserted: bool
    status: Status
    send_attempts: int | None = None

    def matches(self, change: Change) -> bool:
        return (
            change.inserted == self.inserted
            and change.record.status == self.status
            and self.send_attempts in (None, change.record.send_attempts)
        )

    def pattern(self) -> str:
        """The Lambda event filter pattern passing only these writes."""
        import json

        image: dict[str, Any] = {
            "record_type": {"S": ["request"]},
            "status": {"S": [self.status.value]},
        }
        if self.send_attempts is not None:
            image["send_attempts"] = {"N": [str(self.send_attempts)]}
        event = "INSERT" if self.inserted else "MODIFY"
        pattern = {"eventName": [event], "dynamodb": {"NewImage": image}}
        return json.dumps(pattern, separators=(",", ":"))


def request_changes(stream_records: Iterable[Mapping[str, Any]]) -> Iterator[Change]:
    """The writes to requests among a batch of DynamoDB stream records.

    Locks, counters and removals are skipped (the stream shows every item of
    the table; deployed, the event filter passes requests only).
    """
    for stream_record in stream_records:
        new = (stream_record.get("dynamodb") or {}).get("NewImage")
        if not new or new.get("record_type", {}).get("S") != "request":
            continue
        yield Change(stream_record.get("eventName") == "INSERT", _to_record(new))


def forget(
    request_id: str, email_key: str | None, event: Event, now: datetime, reason: str
) -> None:
    """Remove every personal attribute and the duplicate lock, together."""
    from botocore.exceptions import ClientError

    changes: dict[str, Any] = dict.fromkeys(PERSONAL_ATTRIBUTES)
    changes.update(
        {
            "consent_updates": False,
            "forgotten_at": now,
            "forgotten_reason": reason,
            "expires_at": None,
        }
    )
    actions: list[Any] = [{"Update": _update(request_id, event, now, changes)}]
    if email_key:
        actions.append(
            {
                "Delete": {
                    "TableName": _table(),
                    "Key": _lock_key(email_key),
                    "ConditionExpression": "attribute_not_exists(pk) OR request_id = :id",
                    "ExpressionAttributeValues": {":id": {"S": request_id}},
                }
            }
        )
    try:
        aws.dynamodb().transact_write_items(TransactItems=actions)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "TransactionCanceledException":
            raise InvalidTransition(request_id, event) from None
        raise


def _suppression_key(fingerprint: str) -> Item:
    return {"pk": {"S": f"suppressed#{fingerprint}"}}


def suppress(fingerprint: str, reason: str, now: datetime) -> None:
    """Never mail this address again (a hard bounce or a complaint)."""
    aws.dynamodb().put_item(
        TableName=_table(),
        Item={
            **_suppression_key(fingerprint),
            "record_type": {"S": "suppression"},
            "reason": {"S": reason},
            "suppressed_at": _serialize(now),
        },
    )


def is_suppressed(fingerprint: str) -> bool:
    response = aws.dynamodb().get_item(TableName=_table(), Key=_suppression_key(fingerprint))
    return "Item" in response


def _counter_key(allowance: Allowance, now: float) -> Item:
    return {"pk": {"S": f"rate#{allowance.key}#{allowance.window(now)[0]}"}}


def _counted(allowance: Allowance, now: float, conditional: bool) -> dict[str, Any]:
    """A transaction's Update that counts one hit; refused when used up if ``conditional``.

    Counters are items that expire with their window (TTL), so nothing
    needs cleaning up.
    """
    update: dict[str, Any] = {
        "TableName": _table(),
        "Key": _counter_key(allowance, now),
        "UpdateExpression": "ADD hits :one SET record_type = :type, expires_at = :expires",
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":type": {"S": "rate_counter"},
            ":expires": {"N": str(allowance.window(now)[1] + 60)},
        },
    }
    if conditional:
        update["ConditionExpression"] = "attribute_not_exists(hits) OR hits < :limit"
        update["ExpressionAttributeValues"][":limit"] = {"N": str(allowance.limit)}
    return {"Update": update}


def _retry_after(allowance: Allowance, now: float) -> int:
    return max(1, allowance.window(now)[1] - int(now))


def count_hits(allowances: tuple[Allowance, ...]) -> None:
    """Count one hit against each allowance; OverLimit if one is used up.

    For the attempts that store nothing (bad input, duplicates, bots); a
    new request is counted inside its own transaction.
    """
    now = time.time()
    for allowance in allowances:
        hits = _count_hit(allowance, now)
        if hits > allowance.limit:
            raise OverLimit(allowance, _retry_after(allowance, now))


def _count_hit(allowance: Allowance, now: float) -> int:
    from botocore.exceptions import ClientError

    for attempt in range(_CONFLICT_RETRIES):
        try:
            response = aws.dynamodb().update_item(
                **_counted(allowance, now, conditional=False)["Update"],
                ReturnValues="UPDATED_NEW",
            )
            return int(response["Attributes"]["hits"]["N"])
        except ClientError as exc:
            # A create transaction holds the counter (same IP or address
            # at the same moment); botocore does not retry this one.
            if exc.response["Error"]["Code"] != "TransactionConflictException":
                raise
            _back_off(attempt)
    raise StoreBusy("a rate counter stayed contended")


def _back_off(attempt: int) -> None:
    """Jittered, so clients that collided once do not collide again."""
    time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
