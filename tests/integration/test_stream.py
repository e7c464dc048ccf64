"""SEND_MODE=stream (deployed stages): the API only writes, send_stored sends.

The client fixture delivers the table's stream (read from the moto server
through the DynamoDB Streams API) to ``send_stored`` after every HTTP call,
as Lambda's event source mapping does in AWS. Here delivery is switched off
(``client.delivering = False``) to look at what the API alone does.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urljoin

import pytest

from chalicelib import aws, journey, store, tokens
from tests import faults
from tests.integration.helpers import (
    FORM_HEADERS,
    SUPPORTER,
    addressed_to,
    body,
    headers,
    link,
    post_json,
)
from tools import streams

TARGET = "privacy@clearview.ai"


def requests_in(table_items: Any) -> list[dict[str, Any]]:
    return [item for item in table_items() if item["record_type"] == "request"]


def api_calls(calls: Any) -> list[str]:
    # The signing secret is read once per warm Lambda; record_calls forgets it.
    return [call for call in calls.calls if not call.startswith("ssm.")]


def test_the_api_stores_and_send_stored_mails(client, sent_mail, table_items, record_calls) -> None:  # type: ignore[no-untyped-def]
    client.delivering = False
    with record_calls() as submission:
        response = post_json(client, "/requests", SUPPORTER)
    assert response.status_code == 202
    assert api_calls(submission) == ["dynamodb.TransactWriteItems"]
    [stored] = requests_in(table_items)
    assert stored["status"] == "pending_verification" and stored["mail_queue"] == "pending"
    assert sent_mail() == []  # nothing sent until the stream is delivered

    assert client.deliver_stream() >= 1
    [verification] = sent_mail()
    assert "mail_queue" not in requests_in(table_items)[0]  # the safety net is cleared

    confirm = link(verification, "/confirm")
    with record_calls() as confirmation:
        response = client.http.post(confirm, headers=FORM_HEADERS, body="")
    assert response.status_code == 303
    # The link carries the lock's key: one transaction, no read before it.
    assert api_calls(confirmation) == ["dynamodb.TransactWriteItems"]
    assert requests_in(table_items)[0]["status"] == "queued"
    assert len(sent_mail()) == 1

    client.deliver_stream()
    assert len(addressed_to(sent_mail(), TARGET)) == 1
    assert len(addressed_to(sent_mail(), "Zoe.Cote@example.com")) == 2  # + the sent notice
    assert requests_in(table_items)[0]["status"] == "sent"
    # The redirect the API gave works as it stands, and shows the letter sent.
    page = client.http.get(urljoin(confirm, headers(response)["location"]))
    assert page.status_code == 200 and 'data-status="sent"' in page.body.decode()


def test_a_second_click_sends_nothing_more(client, sent_mail, table_items) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    first = client.http.post(confirm, headers=FORM_HEADERS, body="")
    again = client.http.post(confirm, headers=FORM_HEADERS, body="")
    assert first.status_code == again.status_code == 303
    assert len(addressed_to(sent_mail(), TARGET)) == 1
    assert len(sent_mail()) == 3


def test_links_sent_before_the_lock_key_was_carried_still_confirm(client, sent_mail, env) -> None:  # type: ignore[no-untyped-def]
    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    old_style = tokens.issue(request_id, tokens.Purpose.CONFIRM)  # the request id alone
    response = client.http.post(
        f"/requests/{request_id}/confirm?token={old_style}", headers=FORM_HEADERS, body=""
    )
    assert response.status_code == 303
    assert len(addressed_to(sent_mail(), TARGET)) == 1


def test_a_token_carries_the_lock_key_only_for_its_own_request(client, env) -> None:  # type: ignore[no-untyped-def]
    token = tokens.issue("request-a", tokens.Purpose.CONFIRM, "a" * 64)
    assert tokens.check(token, "request-a", tokens.Purpose.CONFIRM, 7) == "a" * 64
    with pytest.raises(tokens.BadToken):
        tokens.check(token, "request-b", tokens.Purpose.CONFIRM, 7)
    with pytest.raises(tokens.BadToken):
        tokens.check(token, "request-a", tokens.Purpose.STATUS, None)
    assert (
        tokens.check(tokens.issue("r", tokens.Purpose.STATUS), "r", tokens.Purpose.STATUS, None)
        is None
    )


def test_confirming_a_deleted_request_or_with_a_bad_token_is_refused(client, sent_mail) -> None:  # type: ignore[no-untyped-def]
    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    confirm = link(sent_mail()[0], "/confirm")
    journey.forget(request_id)
    gone = client.http.post(confirm, headers=FORM_HEADERS, body="")
    assert gone.status_code == 404 and "text/html" in headers(gone)["content-type"]
    tampered = client.http.post(confirm[:-3] + "xyz", headers=FORM_HEADERS, body="")
    assert tampered.status_code == 403
    as_json = client.http.post(confirm, headers={"accept": "application/json"}, body="")
    assert as_json.status_code == 404 and "errors" in body(as_json)
    assert addressed_to(sent_mail(), TARGET) == []


def test_json_confirmation_answers_with_the_status(client, sent_mail) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    response = client.http.post(confirm, headers={"accept": "application/json"}, body="")
    assert response.status_code == 200
    assert body(response)["status"] == "queued"  # the letter goes a moment later
    assert len(addressed_to(sent_mail(), TARGET)) == 1


def test_a_suppressed_address_gets_no_confirmation_email(
    client, sent_mail, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    store.suppress(tokens.email_fingerprint(SUPPORTER["email"]), "bounce", journey.now())
    response = post_json(client, "/requests", SUPPORTER)
    assert response.status_code == 202
    assert sent_mail() == []
    [stored] = requests_in(table_items)
    assert stored["mail_suppressed"] is True and "mail_queue" not in stored


def test_send_stored_skips_what_is_not_a_new_or_verified_request(
    client, sent_mail, stage_env
) -> None:  # type: ignore[no-untyped-def]
    reader = streams.StreamReader(stage_env["TABLE_NAME"])
    batches: list[dict[str, Any]] = []
    post_json(client, "/requests", SUPPORTER)
    streams.deliver(reader, batches.append)
    records = [record for batch in batches for record in batch["Records"]]
    kinds = [r["dynamodb"].get("NewImage", {}).get("record_type", {}).get("S") for r in records]
    assert "email_lock" in kinds and "request" in kinds
    changes = list(store.request_changes(records))
    # The request as stored, then as the consumer left it (safety net cleared).
    assert journey.NEW_REQUEST.matches(changes[0])
    assert not any(journey.VERIFIED.matches(change) for change in changes)
    locks_only = {
        "Records": [
            record for record, kind in zip(records, kinds, strict=True) if kind != "request"
        ]
    }
    sent_before = len(sent_mail())
    result = client.lambda_.invoke("send_stored", locks_only)
    assert result.payload == {"verifications": 0, "letters": 0, "stopped_early": 0}
    assert len(sent_mail()) == sent_before


def test_the_stream_filter_passes_what_send_stored_acts_on() -> None:
    patterns = [json.loads(trigger.pattern()) for trigger in journey.STREAMED]
    assert [p["eventName"] for p in patterns] == [["INSERT"], ["MODIFY"]]
    # A verified request has no attempt yet; a deferred letter waits for the retry job.
    assert patterns[1]["dynamodb"]["NewImage"]["send_attempts"] == {"N": ["0"]}
    assert patterns[1]["dynamodb"]["NewImage"]["status"] == {"S": ["queued"]}


def test_a_verification_claimed_in_the_second_it_was_stored_cannot_be_claimed_again(
    client, table_items, env
) -> None:  # type: ignore[no-untyped-def]
    client.delivering = False
    request_id = body(post_json(client, "/requests", SUPPORTER))["id"]
    stored = store.get_request(request_id)
    assert stored is not None and stored.retry_at is not None
    # Times are kept to the second: a claim moving it to the same second changed nothing.
    assert journey._claim_verification(stored)
    assert not journey._claim_verification(stored)  # a replayed record, or the retry job


def test_a_confirmation_that_meets_a_concurrent_write_is_retried_not_confirmed(
    client, sent_mail, table_items
) -> None:  # type: ignore[no-untyped-def]
    post_json(client, "/requests", SUPPORTER)
    confirm = link(sent_mail()[0], "/confirm")
    conflict = faults.Fault(
        lambda call: call == 1,
        faults.error("TransactionCanceledException", reasons=["None", "TransactionConflict"]),
    )
    with faults.inject(aws.dynamodb(), "TransactWriteItems", conflict):
        busy = client.http.post(confirm, headers=FORM_HEADERS, body="")
    assert busy.status_code == 503 and conflict.injected == 1
    assert requests_in(table_items)[0]["status"] == "pending_verification"
    again = client.http.post(confirm, headers=FORM_HEADERS, body="")
    assert again.status_code == 303
    assert len(addressed_to(sent_mail(), TARGET)) == 1


def test_inline_mode_still_sends_during_the_request(make_client, sent_mail, record_calls) -> None:  # type: ignore[no-untyped-def]
    client = make_client(SEND_MODE="inline")
    client.delivering = False
    post_json(client, "/requests", SUPPORTER)
    assert len(sent_mail()) == 1
    with record_calls() as confirmation:
        client.http.post(link(sent_mail()[0], "/confirm"), headers=FORM_HEADERS, body="")
    assert len(sent_mail()) == 3
    assert "dynamodb.GetItem" not in api_calls(confirmation)  # the link carries the lock key


def test_a_batch_near_its_timeout_leaves_the_rest_to_the_retry_job(
    client, sent_mail, stage_env, env
) -> None:  # type: ignore[no-untyped-def]
    reader = streams.StreamReader(stage_env["TABLE_NAME"])
    client.delivering = False
    post_json(client, "/requests", SUPPORTER)
    batches: list[dict[str, Any]] = []
    streams.deliver(reader, batches.append)
    records = [record for batch in batches for record in batch["Records"]]
    changes = store.request_changes(records)
    seconds_left = iter([120.0, 5.0])  # at the start, then at the first record
    assert journey.on_stored(changes, lambda: next(seconds_left))["stopped_early"] == 1
    assert sent_mail() == []
    later = journey.now() + journey.SAFETY_NET
    assert journey.retry_queued(later)["verifications"] == 1
    assert len(sent_mail()) == 1


def test_scheduled_and_stream_handlers_read_their_own_lambda_context(
    make_client, sent_mail, env
) -> None:  # type: ignore[no-untyped-def]
    import app as app_module

    client = make_client(SEND_MODE="queue")  # stored due at once, for the retry job
    post_json(client, "/requests", SUPPORTER)
    # A Lambda that runs only this handler never served an HTTP request, so
    # the app object has no lambda_context: the event carries the context.
    app_module.app.__dict__.pop("lambda_context", None)

    class Context:
        """A Lambda's context: the seconds left at each look."""

        def __init__(self, *seconds: float) -> None:
            self.seconds = list(seconds)

        def get_remaining_time_in_millis(self) -> int:
            return int((self.seconds.pop(0) if len(self.seconds) > 1 else self.seconds[0]) * 1000)

    event = client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
    assert app_module.retry_queued(event, Context(240, 5))["stopped_early"] == 1
    assert sent_mail() == []
    assert app_module.retry_queued(event, Context(240))["verifications"] == 1
    assert app_module.send_stored({"Records": []}, Context(120))["verifications"] == 0
    assert app_module.purge_expired(event, Context(300)) == {"purged": 0}
