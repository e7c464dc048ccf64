"""Each function's IAM policy grants exactly the DynamoDB actions its code calls.

Every AWS call the app makes is recorded (a botocore ``before-parameter-build`` hook on
the app's own clients) while each function does its work against the moto
server; the calls are turned into IAM actions and compared with the
function's hand-written policy in .chalice/ for dev and prod.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib import aws, chase, journey
from tests import faults
from tests.integration.helpers import SUPPORTER, body, link, post_json

CHALICE = Path(__file__).resolve().parents[2] / ".chalice"


def granted(stage: str, function: str) -> set[str]:
    config = json.loads((CHALICE / "config.json").read_text())
    policy_file = config["stages"][stage]["lambda_functions"][function]["iam_policy_file"]
    policy = json.loads((CHALICE / policy_file).read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


# What Lambda's event source mapping calls with the stream consumer's role.
STREAM_READING = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}


def check(function: str, used: set[str], by_lambda: frozenset[str] = frozenset()) -> None:
    """``by_lambda``: actions Lambda itself takes with the role, not the code."""
    for stage in ("dev", "prod"):
        allowed = granted(stage, function)
        missing = {action for action in used | by_lambda if action not in allowed}
        # SES v2's SendEmail is authorised as ses:SendEmail or ses:SendRawEmail.
        assert not missing, f"{stage} {function} lacks {sorted(missing)}"
        unused = {a for a in allowed if a.startswith("dynamodb:")} - used - by_lambda
        assert not unused, f"{stage} {function} grants unused {sorted(unused)}"


def test_api_handler(client, sent_mail, record_calls) -> None:  # type: ignore[no-untyped-def]
    client.delivering = False  # the stream consumer's calls are its own (below)
    used: set[str] = set()

    def api(step: Any) -> Any:
        with record_calls() as calls:
            result = step()
        used.update(calls.actions)
        client.deliver_stream()
        return result

    request_id = body(api(lambda: post_json(client, "/requests", SUPPORTER)))["id"]
    api(lambda: client.http.post(link(sent_mail()[0], "/confirm")))
    status = link(sent_mail()[-1], "")
    api(lambda: post_json(client, status.replace("?token=", "/events?token="), {"type": "refused"}))
    api(lambda: client.http.get("/admin/stats"))
    api(lambda: client.http.post(status.replace("?token=", "/forget?token=")))
    assert request_id
    assert "dynamodb:Scan" in used and "dynamodb:DeleteItem" in used
    check("api_handler", used)


def test_send_stored(client, sent_mail, record_calls) -> None:  # type: ignore[no-untyped-def]
    client.delivering = False
    post_json(client, "/requests", SUPPORTER)
    with record_calls() as verification:
        assert client.deliver_stream() >= 1
    client.http.post(link(sent_mail()[0], "/confirm"))
    with record_calls() as letter:
        assert client.deliver_stream() >= 1
    used = verification.actions | letter.actions
    assert "ses:SendEmail" in used and len(sent_mail()) == 3
    check("send_stored", used, frozenset(STREAM_READING))


def _sent(client, sent_mail, email: str) -> str:  # type: ignore[no-untyped-def]
    before = len(sent_mail())
    post_json(client, "/requests", {**SUPPORTER, "email": email})
    client.http.post(link(sent_mail()[before], "/confirm"))
    return link(sent_mail()[-1], "")


def test_chase_overdue(client, sent_mail, record_calls) -> None:  # type: ignore[no-untyped-def]
    _sent(client, sent_mail, "chase@example.org")
    as_of = date.today() + timedelta(days=40)
    with record_calls() as calls:
        chase.run(as_of)
        chase.run(as_of + timedelta(days=15))
    assert "dynamodb:Query" in calls.actions
    check("chase_overdue", calls.actions)


def test_retry_queued(client, sent_mail, record_calls) -> None:  # type: ignore[no-untyped-def]
    fault = faults.Fault(lambda _: True, faults.error("TooManyRequestsException", 429))
    with faults.inject(aws.sesv2(), "SendEmail", fault):
        post_json(client, "/requests", SUPPORTER)
    with record_calls() as calls:
        journey.retry_queued(datetime.now(UTC) + timedelta(minutes=5))
    assert "ses:SendEmail" in calls.actions
    check("retry_queued", calls.actions)


def test_purge_expired(client, sent_mail, record_calls) -> None:  # type: ignore[no-untyped-def]
    status = _sent(client, sent_mail, "purge@example.org")
    post_json(client, status.replace("?token=", "/events?token="), {"type": "response_received"})
    with record_calls() as calls:
        assert journey.purge_due(date.today() + timedelta(days=400), 400) == 1
    check("purge_expired", calls.actions)


def test_ses_events(client, sent_mail, table_items, record_calls) -> None:  # type: ignore[no-untyped-def]
    _sent(client, sent_mail, "events@example.org")
    [stored] = [i for i in table_items() if i["record_type"] == "request"]
    tags = {"takeback_request": [stored["request_id"]], "takeback_kind": ["letter"]}
    ses_mail = {"messageId": stored["ses_message_id"], "tags": tags}
    messages = [
        {"eventType": "Delivery", "mail": ses_mail, "delivery": {}},
        {
            "eventType": "Bounce",
            "mail": ses_mail,
            "bounce": {
                "bounceType": "Permanent",
                "bouncedRecipients": [{"emailAddress": "events@example.org"}],
            },
        },
    ]
    with record_calls() as calls:
        for message in messages:
            event = client.events.generate_sns_event(message=json.dumps(message), subject="")
            client.lambda_.invoke("ses_events", event)
    check("ses_events", calls.actions)
